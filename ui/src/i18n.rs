//! Every string the UI shows, in English and Japanese. `{}` in a text is
//! filled with [`fill`]. A test checks that the bundled font has a glyph for
//! every character used here.

/// The UI language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lang {
    Ja,
    #[default]
    En,
}

impl Lang {
    /// From a locale such as `ja_JP.UTF-8`, `ja-JP` or `en-US`.
    pub fn from_locale(locale: &str) -> Self {
        if locale.to_ascii_lowercase().starts_with("ja") {
            Lang::Ja
        } else {
            Lang::En
        }
    }

    /// The language's own name, as shown in the language picker.
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::Ja => "日本語",
            Lang::En => "English",
        }
    }
}

/// Defines `T`, an app's texts in English and Japanese (the settings app
/// has its own, made the same way).
#[macro_export]
macro_rules! texts {
    ($($key:ident => $en:literal, $ja:literal;)*) => {
        /// A UI text; [`T::get`] gives it in a language.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum T { $($key),* }

        impl T {
            pub const ALL: &'static [T] = &[$(T::$key),*];

            pub fn get(self, lang: $crate::i18n::Lang) -> &'static str {
                match (self, lang) {
                    $(
                        (T::$key, $crate::i18n::Lang::En) => $en,
                        (T::$key, $crate::i18n::Lang::Ja) => $ja,
                    )*
                }
            }
        }
    };
}

texts! {
    AppTitle => "thin remote desktop", "thin リモートデスクトップ";
    Connections => "Connections", "接続先";
    Add => "Add", "追加";
    Edit => "Edit", "編集";
    Remove => "Remove", "削除";
    Connect => "Connect", "接続";
    Settings => "Settings", "設定";
    QuickConnect => "Connect by computer ID", "コンピューターIDで接続";
    NoConnections => "No connections yet. Add your office PC with its computer ID.",
        "接続先がまだありません。会社のPCをコンピューターIDで追加してください。";
    NewConnection => "New connection", "新しい接続先";
    EditConnection => "Edit connection", "接続先の編集";
    Name => "Name", "名前";
    ComputerId => "Computer ID", "コンピューターID";
    IdHelp => "1–32 characters: letters a–z, digits and '-'", "半角英字・数字・'-' で1〜32文字";
    Relay => "Relay", "中継サーバー";
    RelayDefault => "default relay from Settings", "設定の中継サーバーを使う";
    WindowsUser => "Windows user", "Windowsユーザー名";
    WindowsPassword => "Windows password", "Windowsパスワード";
    Domain => "Domain (optional)", "ドメイン (省略可)";
    ShareDrive => "Share a local folder with the remote PC", "ローカルのフォルダーをリモートPCと共有する";
    ShareFolder => "Folder to share", "共有するフォルダー";
    Save => "Save", "保存";
    Cancel => "Cancel", "キャンセル";
    Back => "Back", "戻る";
    Retry => "Try again", "再試行";
    Ok => "OK", "OK";
    InvalidId => "This computer ID is not valid: use 1–32 letters a–z, digits and '-'.",
        "このコンピューターIDは正しくありません。半角英字・数字・'-' で1〜32文字にしてください。";
    NameRequired => "Enter a name for this connection.", "この接続先の名前を入力してください。";
    RelayRequired => "Set the relay address and its CA file in Settings first.",
        "先に設定で中継サーバーのアドレスとCAファイルを指定してください。";
    ConnectingTo => "Connecting to {}", "{} に接続しています";
    StepRelay => "Relay", "中継サーバー";
    StepHost => "Office PC", "会社のPC";
    StepOtp => "One-time password", "ワンタイムパスワード";
    StepPassword => "Host password", "ホストパスワード";
    StepLogon => "Windows logon", "Windowsログオン";
    StepDesktop => "Desktop", "デスクトップ";
    StepNotNeeded => "not needed", "不要";
    OtpMailed => "A code was mailed to {}. Enter it below.", "{} に確認コードを送りました。下に入力してください。";
    OtpApp => "Enter the code from your authenticator app.", "認証アプリに表示されているコードを入力してください。";
    UseEmergency => "Use an emergency code instead", "代わりに緊急用コードを使う";
    EmergencyHelp => "Enter one of your emergency codes (each works once).",
        "緊急用コードを1つ入力してください (各コードは1回だけ使えます)。";
    Code => "Code", "コード";
    OtpWrong => "That code was wrong: {} more tries before a lockout.",
        "コードが違います。あと {} 回間違えるとロックされます。";
    OtpReused => "That code was already used: wait for the next one ({} tries left).",
        "このコードは使用済みです。次のコードを待ってください (残り {} 回)。";
    HostPasswordHelp => "Enter the host password of the office PC.", "会社のPCのホストパスワードを入力してください。";
    HostPasswordWrong => "That host password was wrong. Try again.", "ホストパスワードが違います。もう一度入力してください。";
    Password => "Password", "パスワード";
    LogonHelp => "Sign in to Windows on the office PC.", "会社のPCのWindowsにサインインします。";
    NewKeyTitle => "First connection to this computer", "このコンピューターへの初めての接続";
    NewKeyHelp => "This is the first connection to {}. If you can, check that its key fingerprint below matches what `thin-host fingerprint` shows on that PC.",
        "{} への初めての接続です。可能であれば、下の鍵の指紋が会社のPCで thin-host fingerprint を実行した表示と同じか確認してください。";
    TrustKey => "Trust and connect", "信頼して接続";
    Fingerprint => "Key fingerprint", "鍵の指紋";
    Details => "Details", "詳細";
    ErrRelayUnreachable => "The relay cannot be reached.", "中継サーバーに接続できません。";
    HintRelayUnreachable => "Check your internet connection and the relay address in Settings.",
        "インターネット接続と、設定の中継サーバーのアドレスを確認してください。";
    ErrRelayUntrusted => "The relay's certificate is not the expected one.", "中継サーバーの証明書が想定と異なります。";
    HintRelayUntrusted => "Check that the relay CA file in Settings is the one your IT staff gave you.",
        "設定の中継サーバーCAファイルが、情報システム担当者から受け取ったものか確認してください。";
    ErrRelaySetup => "The relay settings are incomplete or wrong.", "中継サーバーの設定が不完全か、間違っています。";
    HintRelaySetup => "Check the relay address and CA file in Settings.", "設定の中継サーバーのアドレスとCAファイルを確認してください。";
    ErrProxy => "The HTTP proxy refused the connection.", "HTTPプロキシーが接続を拒否しました。";
    HintProxy => "Check the proxy settings: address, user name and password.", "プロキシーの設定 (アドレス・ユーザー名・パスワード) を確認してください。";
    ErrUnknownId => "No computer with this ID is registered at the relay.", "このIDのコンピューターは中継サーバーに登録されていません。";
    HintUnknownId => "Check the computer ID.", "コンピューターIDを確認してください。";
    ErrOffline => "The office PC is offline.", "会社のPCがオフラインです。";
    HintOffline => "Make sure the PC is on and thin-host is running on it.", "PCの電源が入っていて、thin-host が動いているか確認してください。";
    ErrNoAnswer => "The office PC did not answer.", "会社のPCが応答しません。";
    HintTryLater => "Try again in a moment.", "しばらくしてから再試行してください。";
    ErrBusy => "Too many connection attempts are waiting.", "接続の要求が混み合っています。";
    ErrHostBusy => "The office PC is busy answering too many connection attempts.", "会社のPCへの接続の要求が混み合っています。";
    ErrRelayFull => "The relay is full right now.", "中継サーバーが混み合っています。";
    ErrDenied => "The relay's operator refuses connections from your network.", "中継サーバーの運用者が、このネットワークからの接続を拒否しています。";
    HintDenied => "Ask your IT staff. From another network (a phone's tethering, for example) it may work.", "情報システム担当者に相談してください。別のネットワーク (スマートフォンのテザリングなど) からなら接続できる場合があります。";
    ErrKeyChanged => "WARNING: the office PC's key has changed.", "警告: 会社のPCの鍵が変わりました。";
    HintKeyChanged => "Someone may be impersonating it, so the connection was refused. Connect only if its owner re-installed thin-host: then remove the old key below.",
        "なりすましの可能性があるため、接続を中止しました。PCの管理者が thin-host を再インストールした場合に限り、下のボタンで古い鍵を削除してから接続してください。";
    OldKey => "Pinned key", "登録済みの鍵";
    NewKey => "Key now presented", "今回提示された鍵";
    ConfirmRemovePin => "I know why the key changed", "鍵が変わった理由を確認しました";
    RemovePin => "Remove the old key", "古い鍵を削除";
    PinRemoved => "The old key was removed. The next connection pins the new one.",
        "古い鍵を削除しました。次の接続で新しい鍵が登録されます。";
    ErrNotAllowed => "The office PC does not accept connections from here.", "会社のPCはここからの接続を受け付けていません。";
    HintAskOwner => "Ask the PC's owner or your IT staff.", "PCの管理者か情報システム担当者に相談してください。";
    ErrLockedOut => "Too many failed attempts: connections are locked for {} more minute(s).",
        "失敗が多すぎるため、あと {} 分間接続がロックされています。";
    HintLockedOut => "Wait until then, and have the right codes ready.", "時間をおいて、正しいコードを用意して再試行してください。";
    ErrHostNotReady => "The office PC is not ready for connections.", "会社のPCの接続準備ができていません。";
    HintHostNotReady => "Its owner must set a host password on it (thin-host set-password).",
        "PCの管理者がホストパスワードを設定する必要があります (thin-host set-password)。";
    ErrOtp => "The one-time password was not accepted.", "ワンタイムパスワードが受け付けられませんでした。";
    HintOtp => "Connect again to use a new code.", "もう一度接続して、新しいコードを使ってください。";
    ErrHostPassword => "The host password was not accepted.", "ホストパスワードが受け付けられませんでした。";
    HintHostPassword => "Check the host password and try again.", "ホストパスワードを確認して再試行してください。";
    ErrLogon => "Windows did not accept the user name or password.", "Windowsがユーザー名またはパスワードを受け付けませんでした。";
    HintLogon => "Check the Windows user name, password and domain.", "Windowsのユーザー名・パスワード・ドメインを確認してください。";
    ErrLost => "The connection was lost.", "接続が切れました。";
    HintLost => "Check your network and connect again.", "ネットワークを確認して、もう一度接続してください。";
    ErrPromptTimedOut => "You took more than 5 minutes over {}, so the office PC stopped waiting.",
        "{}に5分をこえる時間がかかったため、会社のPCが待つのをやめました。";
    HintPromptTimedOut => "Connect again, and answer within 5 minutes.", "もう一度接続して、5分のうちに入力してください。";
    WaitedHostKey => "checking the PC's key", "PCの鍵の確認";
    WaitedOtp => "the one-time password", "ワンタイムパスワードの入力";
    WaitedHostPassword => "the host password", "ホストパスワードの入力";
    Reconnecting => "The connection broke. Connecting again by itself (attempt {})…",
        "接続が切れました。もう一度つないでいます ({} 回め)…";
    ErrOther => "The connection failed.", "接続に失敗しました。";
    HintOther => "Try again. If it keeps failing, tell your IT staff the details below.",
        "再試行してください。繰り返し失敗する場合は、下の詳細を情報システム担当者に伝えてください。";
    ErrShare => "The folder to share cannot be used.", "共有するフォルダーを使えません。";
    HintShare => "Check the folder in this connection's settings, or turn sharing off.", "接続先の設定で共有するフォルダーを確認するか、共有をオフにしてください。";
    ErrCancelled => "The connection was cancelled.", "接続をキャンセルしました。";
    Disconnect => "Disconnect", "切断";
    FitToWindow => "Fit to window", "ウィンドウに合わせる";
    ActualSize => "Actual size", "等倍";
    FullscreenHint => "Full screen: Ctrl+Alt+Shift+F (press again to leave)", "全画面表示: Ctrl+Alt+Shift+F (もう一度押すと戻ります)";
    ClipboardTooLargeOut => "The copied text is too large to paste on the remote PC ({} MB; at most 4 MB). Copy less at a time.",
        "コピーしたテキストが大きすぎるため、リモートPCに貼り付けられません ({} MB、上限 4 MB)。少しずつコピーしてください。";
    ClipboardTooLargeIn => "The text copied on the remote PC is too large to bring to this computer ({} MB; at most 4 MB). Copy less at a time.",
        "リモートPCでコピーしたテキストが大きすぎるため、このコンピューターに持ってこられません ({} MB、上限 4 MB)。少しずつコピーしてください。";
    ImageTooLargeOut => "The copied picture is too large to paste on the remote PC ({} MB; at most 40 MB). Copy a smaller part.",
        "コピーした画像が大きすぎるため、リモートPCに貼り付けられません ({} MB、上限 40 MB)。小さい範囲をコピーしてください。";
    ImageTooLargeIn => "The picture copied on the remote PC is too large to bring to this computer ({} MB; at most 40 MB). Copy a smaller part.",
        "リモートPCでコピーした画像が大きすぎるため、このコンピューターに持ってこられません ({} MB、上限 40 MB)。小さい範囲をコピーしてください。";
    ImageNoClipboard => "The picture was not pasted: the office PC does not allow the clipboard, and a picture cannot be typed.",
        "画像は貼り付けられませんでした: 会社のPCがクリップボードを許可していないため、画像は送れません。";
    ImageUnreadable => "The copied picture cannot be read ({}). Copy it again, or save it as a file.",
        "コピーした画像を読み取れません ({})。もう一度コピーするか、ファイルとして保存してください。";
    FilesComing => "Bringing {} file(s) copied on the office PC to this computer ({} MB)…",
        "会社のPCでコピーしたファイル {} 個をこのコンピューターに取り込んでいます ({} MB)…";
    FilesOnClipboard => "{} file(s) from the office PC are on this computer's clipboard: paste them into a folder.",
        "会社のPCのファイル {} 個をこのコンピューターのクリップボードに入れました。フォルダーに貼り付けてください。";
    FilesNotOnClipboard => "The files from the office PC could not be put on this computer's clipboard ({}). Use drive sharing instead.",
        "会社のPCのファイルをこのコンピューターのクリップボードに入れられませんでした ({})。代わりにドライブ共有をお使いください。";
    FilesNotFetched => "Not brought from the office PC: {} ({}).",
        "会社のPCから取り込めなかったファイル: {} ({})。";
    FilesMoreFailed => "…and {} more.", "…ほか {} 件。";
    FileWhyRefused => "the office PC could not give it", "会社のPCが渡せませんでした";
    FileWhyTooLarge => "it is larger than the clipboard carries", "クリップボードで運べる大きさを超えています";
    FileWhyBroken => "it did not arrive as the office PC announced it", "会社のPCが示した大きさどおりに届きませんでした";
    FileWhyName => "its name cannot be used on this computer", "その名前はこのコンピューターでは使えません";
    FileWhyDisk => "this computer could not save it: {}", "このコンピューターに保存できませんでした: {}";
    FilesAbandonedCopied => "The office PC's files did not come: something else was copied there meanwhile. Copy them again.",
        "会社のPCのファイルは届きませんでした: その間に別のものがコピーされました。もう一度コピーしてください。";
    FilesAbandonedStalled => "The office PC's files did not come: it stopped answering for a minute. Copy them again.",
        "会社のPCのファイルは届きませんでした: 1分間応答がありませんでした。もう一度コピーしてください。";
    FilesAbandonedDisk => "The office PC's files did not come: this computer could not save them ({}).",
        "会社のPCのファイルは届きませんでした: このコンピューターに保存できませんでした ({})。";
    FilesTooLargeIn => "The files copied on the office PC are too many or too large for the clipboard ({} files, {} MB; at most {} files and {} MB). Use drive sharing for them.",
        "会社のPCでコピーしたファイルは、クリップボードで運ぶには多すぎるか大きすぎます ({} 個、{} MB、上限 {} 個・{} MB)。ドライブ共有をお使いください。";
    FilesNotHere => "Files copied on the office PC cannot come to this computer through the clipboard here. Use the desktop app, or drive sharing.",
        "会社のPCでコピーしたファイルは、ここではクリップボードで受け取れません。デスクトップアプリかドライブ共有をお使いください。";
    FilesNotBrought => "The files copied on the office PC were not brought to this computer: {}",
        "会社のPCでコピーしたファイルをこのコンピューターに取り込めませんでした: {}";
    FilesNotPasted => "The files were not pasted on the office PC: {}",
        "ファイルは会社のPCに貼り付けられませんでした: {}";
    PasteTooLongToType => "The pasted text is too long to type on the remote PC ({} characters; at most {}). This session does not take text through the clipboard, so a paste is typed. Paste less at a time.",
        "貼り付けるテキストが長すぎるため、リモートPCで入力できません ({} 文字、上限 {} 文字)。この接続ではクリップボードが使えないので、貼り付けは文字の入力になります。少しずつ貼り付けてください。";
    ConnectedTo => "Connected to {}", "{} に接続中";
    SessionEnded => "The session ended.", "セッションが終了しました。";
    KeyHankaku => "Hankaku/Zenkaku", "半角/全角";
    KeyHenkan => "Henkan", "変換";
    KeyMuhenkan => "Muhenkan", "無変換";
    KeyKana => "Katakana/Hiragana", "カタカナ/ひらがな";
    CtrlAltDel => "Ctrl+Alt+Del", "Ctrl+Alt+Del";
    SharedFolder => "Shared folder: {}", "共有フォルダー: {}";
    ShareForbidden => "Drive sharing is off: the office PC does not allow it.", "ドライブ共有はオフです: 会社のPCが許可していません。";
    Mute => "Mute", "ミュート";
    ScreenTooLarge => "The office PC's screen ({}) is larger than this computer's graphics can show (at most {} pixels each way). Choose a smaller fixed screen size in Settings, or make the window smaller.", "会社のPCの画面 ({}) は、このコンピューターのグラフィックスで表示できる大きさ (縦横とも最大 {} ピクセル) を超えています。設定で小さい固定サイズを選ぶか、ウィンドウを小さくしてください。";
    SoundForbidden => "No sound: the office PC does not allow it.", "音声なし: 会社のPCが許可していません。";
    NoSoundDevice => "No sound: this computer has no sound output device.", "音声なし: このコンピューターには音声の出力先がありません。";
    ClipboardForbidden => "Clipboard is off: the office PC does not allow it.", "クリップボードはオフです: 会社のPCが許可していません。";
    ShareInBrowser => "Drive sharing is not available in the browser: use the desktop app for it.", "ブラウザーではドライブ共有を利用できません。デスクトップアプリを使ってください。";
    Language => "Language", "言語";
    RelayAddress => "Relay address (host:port)", "中継サーバーのアドレス (ホスト:ポート)";
    RelayCa => "Relay CA file (ca.pem)", "中継サーバーのCAファイル (ca.pem)";
    Proxy => "HTTP proxy (optional)", "HTTPプロキシー (省略可)";
    ProxyHost => "Proxy host", "プロキシーのホスト";
    ProxyPort => "Proxy port", "プロキシーのポート";
    ProxyUser => "Proxy user", "プロキシーのユーザー名";
    ProxyPassword => "Proxy password", "プロキシーのパスワード";
    ScreenSize => "Remote screen size", "リモート画面のサイズ";
    ScreenFollowsWindow => "Follow the window", "ウィンドウに合わせる";
    ScreenFixed => "Fixed:", "固定:";
    AllMonitors => "Full screen uses all my monitors", "全画面表示ですべてのモニターを使う";
    OneMonitorFound => "(this computer has one monitor now)", "(このコンピューターのモニターは今1台です)";
    Width => "Width", "幅";
    Height => "Height", "高さ";
    BadPort => "The proxy port must be a number from 1 to 65535.", "プロキシーのポートは1〜65535の数字で入力してください。";
    BadSize => "Width and height must be between 200 and 8192.", "幅と高さは200〜8192の範囲で入力してください。";
    Saved => "Settings saved.", "設定を保存しました。";
    SaveFailed => "Could not save: {}", "保存できませんでした: {}";
    StorageAt => "Settings are kept in {}", "設定の保存先: {}";
    PortableOn => "Portable mode is on: settings and host keys are kept beside the app.",
        "ポータブルモード: オン — 設定とホスト鍵はアプリと同じフォルダーに保存されます。";
    PortableOff => "Portable mode is off. To keep settings beside the app (on a USB stick, say), put a file named thin-portable.txt next to it.",
        "ポータブルモード: オフ — 設定をアプリと同じフォルダー (USBメモリーなど) に保存するには、アプリの隣に thin-portable.txt という名前のファイルを置いてください。";
    PortableInBrowser => "Portable mode is not available in the browser: nothing is installed, and settings stay in this browser for this site.",
        "ブラウザーではポータブルモードを利用できません。インストールは不要で、設定はこのサイト用にこのブラウザーに保存されます。";
    Demo => "Demo", "デモ";
    DemoCodes => "One-time password: {}    Host password: {}    Windows user: {} / password: {}",
        "ワンタイムパスワード: {}    ホストパスワード: {}    Windowsユーザー: {} / パスワード: {}";
}

/// Fills the `{}` in `template` with `args`, in order.
pub fn fill(template: &str, args: &[&str]) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    let mut args = args.iter();
    while let Some(i) = rest.find("{}") {
        out.push_str(&rest[..i]);
        out.push_str(args.next().copied().unwrap_or(""));
        rest = &rest[i + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locales() {
        assert_eq!(Lang::from_locale("ja_JP.UTF-8"), Lang::Ja);
        assert_eq!(Lang::from_locale("ja-JP"), Lang::Ja);
        assert_eq!(Lang::from_locale("en_US.UTF-8"), Lang::En);
        assert_eq!(Lang::from_locale(""), Lang::En);
    }

    #[test]
    fn every_text_is_translated_with_the_same_placeholders() {
        for t in T::ALL {
            let (en, ja) = (t.get(Lang::En), t.get(Lang::Ja));
            assert!(!en.is_empty() && !ja.is_empty(), "{t:?}");
            assert_eq!(en.matches("{}").count(), ja.matches("{}").count(), "{t:?}");
        }
    }

    #[test]
    fn fill_replaces_in_order() {
        assert_eq!(fill("{} to {}", &["a", "b"]), "a to b");
        assert_eq!(fill("no args", &["x"]), "no args");
    }
}
