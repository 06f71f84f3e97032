//! Every text the settings app shows, in English and Japanese (made like
//! the client's, `ui::i18n`; its font subset covers both).

pub use ui::i18n::{fill, Lang};

ui::texts! {
    Title => "thin-host settings", "thin-host 設定";
    Refresh => "Refresh", "更新";
    PageStatus => "Status", "状態";
    PageHostPassword => "Host password", "ホストパスワード";
    PageOtp => "One-time password", "ワンタイムパスワード";
    PageAccess => "Access list", "アクセス制限";
    PageMac => "MAC allowlist", "MACアドレス制限";
    PagePolicy => "Policies", "ポリシー";
    PageSettingsPassword => "Settings password", "設定パスワード";
    ComputerId => "Computer ID", "コンピューターID";
    Relay => "Relay", "中継サーバー";
    State => "State", "状態";
    Online => "Online: connected to {} since {}", "オンライン: {} に接続中 ({} から)";
    Offline => "Offline since {}: {}", "オフライン ({} から): {}";
    Connecting => "Connecting to the relay…", "中継サーバーに接続しています…";
    NotRunning => "The host is not running. Start it with: thin-host service start",
        "ホストが動いていません。thin-host service start で起動してください。";
    Fingerprint => "Key fingerprint (people at home see this on their first connection)",
        "鍵の指紋 (自宅から初めて接続するときに表示されます)";
    SessionsNow => "Sessions now", "現在のセッション数";
    Recent => "Recent connection attempts", "最近の接続の試み";
    NoRecent => "None yet.", "まだありません。";
    Time => "Time", "時刻";
    Source => "From", "接続元";
    Step => "Check", "確認";
    Result => "Result", "結果";
    StatusUnreadable => "The settings cannot be read: {}", "設定を読み込めません: {}";
    Locked => "These settings are locked with a settings password. Enter it to change them; the status stays visible.",
        "この設定は設定パスワードで保護されています。変更するには入力してください。状態はいつでも表示されます。";
    EnterSettingsPassword => "Enter the settings password", "設定パスワードを入力";
    Unlock => "Unlock", "ロック解除";
    Lock => "Lock", "ロック";
    NewPassword => "New password", "新しいパスワード";
    Again => "Again", "もう一度";
    Save => "Save", "保存";
    PasswordRule => "At least 8 characters with upper- and lower-case letters, digits and symbols, and not easy to guess.",
        "8文字以上で、英大文字・英小文字・数字・記号を含み、推測されにくいものにしてください。";
    PasswordStrong => "✓ Strong enough.", "✓ 十分な強さです。";
    PasswordWeak => "× Not accepted yet: {}", "× まだ使えません: {}";
    PasswordsDiffer => "× The two passwords differ.", "× 2つのパスワードが一致しません。";
    PasswordIsSet => "A host password is set.", "ホストパスワードは設定済みです。";
    PasswordNotSet => "No host password is set: every connection is refused until you set one.",
        "ホストパスワードが未設定です。設定するまで、すべての接続が拒否されます。";
    OtpOff => "One-time passwords are off: only the host password is asked.",
        "ワンタイムパスワードはオフです。ホストパスワードだけが求められます。";
    OtpTotp => "An authenticator app's codes are asked ({} emergency codes left).",
        "認証アプリのコードが求められます (緊急用コード残り {} 個)。";
    OtpEmail => "A code is mailed for every connection ({} emergency codes left).",
        "接続のたびにコードがメールで送られます (緊急用コード残り {} 個)。";
    SetUpAuthenticator => "Set up an authenticator app", "認証アプリを設定する";
    ScanThis => "1. Scan this code with the authenticator app (or type the key below into it).",
        "1. 認証アプリでこのコードを読み取ってください (または下のキーを入力してください)。";
    Key => "Key", "キー";
    EnterCurrentCode => "2. Enter the code the app shows now. Codes are switched on only when it matches.",
        "2. アプリに今表示されているコードを入力してください。一致したときだけ有効になります。";
    Code => "Code", "コード";
    TurnOn => "Turn on", "有効にする";
    TurnOff => "Turn one-time passwords off", "ワンタイムパスワードをオフにする";
    MailTitle => "Or mail a code for every connection:", "または、接続のたびにコードをメールで送る:";
    MailTo => "Send codes to (e-mail)", "コードの送信先 (メールアドレス)";
    MailServer => "Mail server (host:port)", "メールサーバー (ホスト:ポート)";
    MailUser => "Mail server user (optional)", "メールサーバーのユーザー名 (省略可)";
    MailPassword => "Mail server password (optional)", "メールサーバーのパスワード (省略可)";
    MailFrom => "Sender (empty: the address above)", "送信者 (空欄: 上のアドレス)";
    TlsStarttls => "STARTTLS (usually port 587)", "STARTTLS (通常はポート587)";
    TlsTls => "TLS (usually port 465)", "TLS (通常はポート465)";
    TlsNone => "No encryption (a mail server in this office only)", "暗号化なし (社内のメールサーバーのみ)";
    SendTestMail => "Send a test mail", "テストメールを送る";
    TestMailSent => "A test mail was sent to {}. Check that it arrived, then turn mailed codes on.",
        "{} にテストメールを送りました。届いたことを確認してから有効にしてください。";
    TurnOnMail => "Turn on mailed codes", "メールのコードを有効にする";
    CodeDoesNotMatch => "That code does not belong to this key. Check that the app shows this PC and that the phone's clock is right, then enter the code shown now.",
        "このコードはこのキーのものではありません。アプリにこのPCが表示されていること、スマートフォンの時刻が正しいことを確認し、今表示されているコードを入力してください。";
    EmergencyTitle => "Emergency codes: each works once instead of a one-time password. They are shown only now.",
        "緊急用コード: ワンタイムパスワードの代わりに各1回使えます。表示されるのは今だけです。";
    SaveAs => "Save as file", "ファイルに保存";
    Print => "Print", "印刷";
    SavedTo => "Saved to {}", "{} に保存しました";
    Printed => "Sent to the printer.", "プリンターに送りました。";
    Done => "Done", "完了";
    Priority => "Priority", "優先度";
    Action => "Action", "動作";
    Network => "Network", "ネットワーク";
    NewNetwork => "Network (e.g. 192.0.2.0/24)", "ネットワーク (例: 192.0.2.0/24)";
    Allow => "Allow", "許可";
    Deny => "Deny", "拒否";
    Add => "Add", "追加";
    Remove => "Remove", "削除";
    AnythingElse => "Anything else is allowed.", "それ以外はすべて許可されます。";
    BadNetwork => "\"{}\" is not a network. Write an address range like 192.0.2.0/24 or 2001:db8::/32, or one address.",
        "「{}」はネットワークとして読めません。192.0.2.0/24 や 2001:db8::/32 のような範囲か、1つのアドレスを入力してください。";
    BadPriority => "The priority must be a whole number from 0 to 4294967295.", "優先度は0〜4294967295の整数で入力してください。";
    MacHelp => "Only devices with these MAC addresses may connect. Empty: any device.",
        "ここにあるMACアドレスの機器だけが接続できます。空のときはどの機器も接続できます。";
    BadMac => "\"{}\" is not a MAC address. Write it like 00:1a:2b:3c:4d:5e.",
        "「{}」はMACアドレスとして読めません。00:1a:2b:3c:4d:5e のように入力してください。";
    PolicyShare => "Clients may share a local drive with this PC", "クライアントがローカルのドライブをこのPCと共有できる";
    PolicyClipboard => "The clipboard may cross between the two computers", "2台のコンピューター間でクリップボードを使える";
    PolicyAudio => "This PC's sound plays at the client", "このPCの音声をクライアントで再生する";
    PolicyRaw => "Raw mode: any RDP client through a local port (the switches above cannot be enforced inside it)",
        "生モード: ローカルポート経由で任意のRDPクライアントを使える (上の設定はその中では強制できません)";
    PolicyNla => "The RDP server must check the logon first (NLA)", "RDPサーバーが先にログオンを確認する (NLA)";
    PolicyNext => "Changes apply to the next connection.", "変更は次の接続から適用されます。";
    Syslog => "Also send audit events to syslog (host:port, UDP; empty: off)",
        "監査イベントをsyslogにも送る (ホスト:ポート、UDP。空欄でオフ)";
    Apply => "Apply", "適用";
    SettingsPasswordHelp => "With a settings password, this app shows only the status until it is entered, so that others at this PC cannot loosen what IT set.",
        "設定パスワードを設定すると、入力するまでこのアプリは状態だけを表示します。このPCを使う他の人が、情報システム担当者の設定を緩められないようにします。";
    SettingsPasswordShort => "× At least 8 characters.", "× 8文字以上にしてください。";
    RemoveSettingsPassword => "Remove the settings password", "設定パスワードを削除";
    Changed => "Saved. It applies to the next connection.", "保存しました。次の接続から適用されます。";
    Refused => "Not changed: {}", "変更されませんでした: {}";
    Working => "Working…", "処理中…";
    FirstRunTitle => "Set up this PC for remote access (step {} of 5)", "このPCのリモートアクセスの設定 (手順 {} / 5)";
    FirstRunId => "Choose the computer ID that people at home will type. If your IT staff assigned one, use it.",
        "自宅から接続するときに入力するコンピューターIDを決めてください。情報システム担当者から指定がある場合はそれを使います。";
    IdHelp => "1–32 characters: letters a–z, digits and '-'", "半角英字・数字・'-' で1〜32文字";
    BadId => "This computer ID is not valid: use 1–32 letters a–z, digits and '-'.",
        "このコンピューターIDは正しくありません。半角英字・数字・'-' で1〜32文字にしてください。";
    FirstRunRelay => "The relay this PC keeps its connection to, and the relay's CA file (ca.pem) from your IT staff.",
        "このPCが接続を保つ中継サーバーと、情報システム担当者から受け取った中継サーバーのCAファイル (ca.pem) を指定してください。";
    RelayAddress => "Relay address (host:port)", "中継サーバーのアドレス (ホスト:ポート)";
    RelayCa => "Relay CA file (ca.pem)", "中継サーバーのCAファイル (ca.pem)";
    RdpTarget => "RDP server on this PC (host:port)", "このPCのRDPサーバー (ホスト:ポート)";
    InitFailed => "These settings cannot be used: {}", "この設定は使えません: {}";
    FirstRunPassword => "Set the host password: people at home type it at every connection.",
        "ホストパスワードを設定してください。自宅から接続するたびに入力します。";
    FirstRunOtp => "One-time passwords (recommended): set up an authenticator app on the owner's phone, or go on without.",
        "ワンタイムパスワード (推奨): 所有者のスマートフォンの認証アプリを設定してください。設定せずに進むこともできます。";
    Next => "Next", "次へ";
    FirstRunDone => "Done. At home, people connect with:", "設定が終わりました。自宅からは次の情報で接続します:";
    HomeId => "Computer ID: {}", "コンピューターID: {}";
    HomeRelay => "Relay: {}", "中継サーバー: {}";
    HomeOtpApp => "One-time password: the code the authenticator app shows", "ワンタイムパスワード: 認証アプリに表示されるコード";
    HomeOtpMail => "One-time password: the code mailed at each connection", "ワンタイムパスワード: 接続のたびにメールで届くコード";
    HomeOtpNone => "One-time password: none (turn it on later for more safety)", "ワンタイムパスワード: なし (安全のため、後で有効にしてください)";
    HomePassword => "Host password: the one set here", "ホストパスワード: ここで設定したもの";
    ServiceHint => "To have this PC reachable from boot, run as administrator: thin-host service install, then thin-host service start.",
        "PCの起動時から接続できるようにするには、管理者として thin-host service install と thin-host service start を実行してください。";
}
