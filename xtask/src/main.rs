//! `cargo xtask <command>`: chores that are not part of the build.
//!
//! - `dist [--profile PROFILE] [--only linux|windows]`: build
//!   thin-desktop and thin-host for Linux and (cross-compiled) Windows and
//!   pack `dist/thin-host-<version>-<os>-x86_64.zip` (the office PC's:
//!   thin-host and how to set it up) and
//!   `dist/thin-desktop-<version>-<os>-x86_64.zip`: the executable, the
//!   portable-mode marker, a short README, the font licence and OpenH264's
//!   licence with its patent notice. Unpacked, it
//!   runs with no install and keeps everything beside itself. The Windows
//!   build needs Debian's `rustc-web cargo-web rust-web-src
//!   gcc-mingw-w64-x86-64 g++-mingw-w64-x86-64` (see RECIPES.md; OpenH264
//!   is C++).
//! - `web [--out DIR]`: build the browser client into
//!   `target/web` (or DIR), the folder `thin-relay serve --web` serves;
//!   prints the gzipped size of the module (see `web.rs`).
//! - `web-test`: the web crate's wasm-bindgen tests in headless Chromium.
//! - `font`: regenerate `assets/fonts/NotoSansJP-ui.otf`, the subset of
//!   Noto Sans CJK JP holding every character in the UI's source (plus
//!   ASCII, kana and Japanese punctuation). Needs Debian's `fonts-noto-cjk`
//!   and `python3-fonttools`; run it after changing UI texts.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _};

mod fuzz;
mod web;

const NOTO_CJK: &str = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc";
const FONT_OUT: &str = "assets/fonts/NotoSansJP-ui.otf";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace")
        .to_owned()
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("font") => font(),
        Some("dist") => dist(&args[1..]),
        Some("web") => web::build(&web::options(&args[1..])?),
        Some("web-test") => web::test(),
        Some("fuzz") => fuzz::run_all(&fuzz::options(&args[1..])?),
        _ => bail!(
            "usage: cargo xtask font | dist [--profile release|dev] [--only linux|windows] \
             | web [--out DIR] | web-test | fuzz [--seconds N] [TARGET...]"
        ),
    }
}

/// Characters the UI needs: everything in the translations, plus ranges
/// users see in any Japanese text.
fn ui_characters() -> anyhow::Result<BTreeSet<char>> {
    let mut chars = BTreeSet::new();
    // The client's texts and the host settings app's, in every module.
    let mut folders = vec![root().join("ui/src"), root().join("host-settings/src")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder)? {
            let path = entry?.path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let source = std::fs::read_to_string(&path)?;
                chars.extend(source.chars().filter(|c| !c.is_ascii_control()));
            }
        }
    }
    let ranges = [
        (0x20, 0x7e),     // ASCII
        (0xa0, 0xff),     // Latin-1 (names users type)
        (0x2010, 0x2027), // dashes, quotes, • (egui's password dots), …
        (0x3000, 0x303f), // CJK punctuation
        (0x3040, 0x309f), // hiragana
        (0x30a0, 0x30ff), // katakana
        (0xff01, 0xff5e), // full-width ASCII
        (0xff61, 0xff9f), // half-width katakana
    ];
    for (from, to) in ranges {
        chars.extend((from..=to).filter_map(char::from_u32));
    }
    chars.extend("々〆〇ー・「」『』【】〜…※→←↑↓○×△□".chars());
    Ok(chars)
}

fn font() -> anyhow::Result<()> {
    if !Path::new(NOTO_CJK).exists() {
        bail!("{NOTO_CJK} is missing: apt-get install fonts-noto-cjk python3-fonttools");
    }
    let chars = ui_characters()?;
    let unicodes: Vec<String> = chars
        .iter()
        .map(|c| format!("U+{:04X}", u32::from(*c)))
        .collect();
    let out = root().join(FONT_OUT);
    run(Command::new("/usr/bin/python3")
        .args(["-m", "fontTools.subset", NOTO_CJK, "--font-number=0"])
        .arg(format!("--unicodes={}", unicodes.join(",")))
        .arg(format!("--output-file={}", out.display()))
        .args(["--layout-features=*", "--name-IDs=*"]))
    .context("python3 -m fontTools.subset failed")?;
    let size = std::fs::metadata(&out)?.len();
    println!(
        "{} characters → {} ({} KiB)",
        chars.len(),
        out.display(),
        size / 1024
    );
    Ok(())
}

const VERSION: &str = env!("CARGO_PKG_VERSION");
const WINDOWS: &str = "x86_64-pc-windows-gnu";

/// Which zips to make and how to build what goes in them.
struct DistOptions {
    profile: String,
    linux: bool,
    windows: bool,
    /// Pack this already built executable instead of building one.
    exe: Option<PathBuf>,
}

fn dist_options(args: &[String]) -> anyhow::Result<DistOptions> {
    let mut options = DistOptions {
        profile: "release".into(),
        linux: true,
        windows: true,
        exe: None,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next().map(String::as_str)) {
            ("--profile", Some(p)) => options.profile = p.into(),
            ("--only", Some("linux")) => options.windows = false,
            ("--only", Some("windows")) => options.linux = false,
            ("--exe", Some(path)) => options.exe = Some(PathBuf::from(path)),
            _ => bail!(
                "usage: cargo xtask dist [--profile release|dev|build-check] \
                 [--only linux|windows [--exe PATH]]"
            ),
        }
    }
    Ok(options)
}

fn profile_dir(profile: &str) -> &str {
    if profile == "dev" {
        "debug"
    } else {
        profile
    }
}

/// `bin` of crate `krate` at exactly `version`, installed into
/// target/tools on first use (`locked`: with the crate's own lockfile).
fn tool(krate: &str, bin: &str, version: &str, locked: bool) -> anyhow::Result<PathBuf> {
    let tools = root().join("target/tools");
    let path = tools.join("bin").join(bin);
    let installed = Command::new(&path)
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok());
    // "wasm-bindgen 0.2.130", "cargo-fuzz 0.13.2"
    if installed.is_some_and(|text| text.split_whitespace().nth(1) == Some(version)) {
        return Ok(path);
    }
    println!("installing {krate} {version} into {}", tools.display());
    let mut install = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    install
        .args(["install", krate, "--force", "--version", version, "--root"])
        .arg(&tools);
    if locked {
        install.arg("--locked");
    }
    run(&mut install)?;
    Ok(path)
}

/// Runs `cmd`; the error names the program when it cannot start or fails.
fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {:?}", cmd.get_program()))?;
    if !status.success() {
        bail!("{:?} failed ({status})", cmd.get_program());
    }
    Ok(())
}

/// Cargo with Debian's rustc, which builds std itself for targets rustup may
/// not have here (RECIPES.md), in its own target dir so the native build's
/// cache stays valid.
fn debian_cargo(target_dir: &str) -> Command {
    let mut cmd = Command::new("/usr/bin/cargo");
    cmd.current_dir(root())
        .env("RUSTC", "/usr/bin/rustc")
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_TARGET_DIR", root().join(target_dir));
    cmd
}

/// Where the mingw C++ compiler keeps its static runtime.
fn mingw_cxx_libs() -> anyhow::Result<PathBuf> {
    let out = Command::new("x86_64-w64-mingw32-g++")
        .arg("-print-file-name=libstdc++.a")
        .output()
        .context("x86_64-w64-mingw32-g++ (apt-get install g++-mingw-w64-x86-64)")?;
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    match path.parent() {
        Some(dir) if path.is_absolute() => Ok(dir.to_owned()),
        _ => bail!("x86_64-w64-mingw32-g++ has no static libstdc++"),
    }
}

/// Builds thin-desktop, thin-host and thin-host-settings (one cargo run,
/// shared dependencies); the folder they are in.
fn cargo_build(profile: &str, windows: bool) -> anyhow::Result<PathBuf> {
    let mut cmd = if windows {
        let mut cmd = debian_cargo("target/windows");
        cmd.env(
            "CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER",
            "x86_64-w64-mingw32-gcc",
        )
        // OpenH264 is C++: its runtime goes into the executable, since a
        // portable zip cannot count on libstdc++-6.dll being there.
        .env("CXXSTDLIB_x86_64_pc_windows_gnu", "static=stdc++")
        .env(
            "CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUSTFLAGS",
            format!("-L native={}", mingw_cxx_libs()?.display()),
        )
        .args(["build", "--target", WINDOWS, "-Zbuild-std=std,panic_abort"]);
        cmd
    } else {
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.current_dir(root()).arg("build");
        cmd
    };
    run(cmd.args([
        "--locked",
        "--profile",
        profile,
        "-p",
        "desktop",
        "--bin",
        "thin-desktop",
        "-p",
        "host",
        "--bin",
        "thin-host",
        "-p",
        "host-settings",
        "--bin",
        "thin-host-settings",
    ]))
    .context("building thin-desktop, thin-host and thin-host-settings failed")?;
    Ok(if windows {
        root()
            .join("target/windows")
            .join(WINDOWS)
            .join(profile_dir(profile))
    } else {
        root().join("target").join(profile_dir(profile))
    })
}

/// `name` as an executable's file name on the target.
fn exe_name(name: &str, windows: bool) -> String {
    if windows {
        format!("{name}.exe")
    } else {
        name.to_owned()
    }
}

const README: &str = "thin-desktop — portable\r\n\
\r\n\
日本語\r\n\
  このフォルダーのまま使えます (インストール不要)。thin-desktop を起動してください。\r\n\
  設定・登録した鍵・ログは data フォルダーに保存され、ほかの場所には書き込みません。\r\n\
  情報システム担当者から受け取った ca.pem は data フォルダーに置き、設定で ca.pem と指定します。\r\n\
  削除するときは、このフォルダーごと削除してください。\r\n\
  動作を試すには: thin-desktop --demo\r\n\
\r\n\
English\r\n\
  Runs from this folder with no install: start thin-desktop.\r\n\
  Settings, pinned host keys and logs are kept in the data folder, and nothing is written anywhere else.\r\n\
  Put the ca.pem from your IT staff in the data folder and enter ca.pem as the relay CA in Settings.\r\n\
  To remove it, delete this folder.\r\n\
  To try it out: thin-desktop --demo\r\n";

/// Put before OpenH264's licence in the zip: what the program takes from it,
/// and the patent position of a build from source.
const OPENH264_NOTICE: &str =
    "thin-desktop decodes H.264 video with OpenH264 (Cisco Systems), compiled\r\n\
from its source into the program, under the licence below. Cisco pays the H.264\r\n\
(AVC) patent royalties only for the OpenH264 binaries it distributes itself; for a\r\n\
build from source such as this one, whoever distributes it is responsible for any\r\n\
patent licence H.264 needs where it is used.\r\n\
\r\n\
thin-desktop は H.264 映像の復号に OpenH264 (Cisco Systems) を使っています。ソースから\r\n\
プログラムに組み込んでおり、下記のライセンスに従います。Cisco が H.264 (AVC) の特許\r\n\
使用料を負担するのは Cisco 自身が配布するバイナリだけです。このようにソースから作った\r\n\
ものについては、配布する者が、使用する国で必要な特許ライセンスに責任を負います。\r\n\
\r\n\
--------------------------------------------------------------------------------\r\n\
\r\n";

/// A zip in dist/ holding the folder `name` with the executable `exe`:
/// the zip writer and the options for plain files in it.
fn zip_with(
    name: &str,
    exe: &Path,
    compress: bool,
) -> anyhow::Result<(
    zip::ZipWriter<std::fs::File>,
    zip::write::SimpleFileOptions,
    PathBuf,
)> {
    use std::io::Write as _;
    let dist = root().join("dist");
    std::fs::create_dir_all(&dist)?;
    let out = dist.join(format!("{name}.zip"));
    let file = std::fs::File::create(&out)?;
    let mut zip = zip::ZipWriter::new(file);
    // Test builds are big and short-lived: store them, compress releases.
    let method = if compress {
        zip::CompressionMethod::Deflated
    } else {
        zip::CompressionMethod::Stored
    };
    let plain = zip::write::SimpleFileOptions::default()
        .compression_method(method)
        .unix_permissions(0o644);
    let exe_name = exe
        .file_name()
        .expect("a file")
        .to_string_lossy()
        .into_owned();
    zip.start_file(format!("{name}/{exe_name}"), plain.unix_permissions(0o755))?;
    zip.write_all(&std::fs::read(exe).with_context(|| format!("cannot read {}", exe.display()))?)?;
    Ok((zip, plain, out))
}

const HOST_README: &str = "thin-host — the office PC's side\r\n\
\r\n\
日本語\r\n\
  会社の PC で、管理者として次の順に実行します (ID・リレーは情報システム担当者に確認):\r\n\
    thin-host init --id office-pc-42 --relay relay.example.jp:443 --relay-ca ca.pem\r\n\
    thin-host set-password        (接続時に入力するホストパスワード)\r\n\
    thin-host otp totp            (認証アプリのワンタイムパスワード)\r\n\
    thin-host service install     (PC の起動時から接続を待ちます)\r\n\
    thin-host service start\r\n\
  状態の確認: thin-host service status、または設定アプリ thin-host-settings\r\n\
  (状態の表示・ホストパスワード・認証アプリ・アクセス制限・ポリシーを画面で設定)\r\n\
\r\n\
English\r\n\
  On the office PC, as an administrator, in this order (ask IT for the ID and relay):\r\n\
    thin-host init --id office-pc-42 --relay relay.example.jp:443 --relay-ca ca.pem\r\n\
    thin-host set-password        (the host password asked at each connection)\r\n\
    thin-host otp totp            (one-time passwords from an authenticator app)\r\n\
    thin-host service install     (waits for connections from boot on)\r\n\
    thin-host service start\r\n\
  To check: thin-host service status, or the settings app thin-host-settings\r\n\
  (status, host password, authenticator, access lists and policies on screen)\r\n";

/// The office PC's zip: thin-host, its settings app and how to set it up.
fn pack_host(programs: &[PathBuf; 2], os: &str, compress: bool) -> anyhow::Result<PathBuf> {
    use std::io::Write as _;
    let name = format!("thin-host-{VERSION}-{os}-x86_64");
    let [host, settings] = programs;
    let (mut zip, plain, out) = zip_with(&name, host, compress)?;
    let exe_name = settings.file_name().expect("a file").to_string_lossy();
    zip.start_file(format!("{name}/{exe_name}"), plain.unix_permissions(0o755))?;
    zip.write_all(
        &std::fs::read(settings).with_context(|| format!("cannot read {}", settings.display()))?,
    )?;
    zip.start_file(format!("{name}/LICENSE-NotoSansCJK.txt"), plain)?;
    zip.write_all(&std::fs::read(
        root().join("assets/fonts/LICENSE-NotoSansCJK.txt"),
    )?)?;
    zip.start_file(format!("{name}/README.txt"), plain)?;
    zip.write_all(HOST_README.as_bytes())?;
    zip.finish()?;
    Ok(out)
}

fn pack(exe: &Path, os: &str, compress: bool) -> anyhow::Result<PathBuf> {
    use std::io::Write as _;
    let name = format!("thin-desktop-{VERSION}-{os}-x86_64");
    let (mut zip, plain, out) = zip_with(&name, exe, compress)?;
    zip.start_file(format!("{name}/thin-portable.txt"), plain)?;
    zip.write_all(
        "This file turns on portable mode: everything stays in the data folder beside it.\r\n\
         このファイルがあるとポータブルモードになり、すべてが隣の data フォルダーに保存されます。\r\n"
            .as_bytes(),
    )?;
    zip.start_file(format!("{name}/README.txt"), plain)?;
    zip.write_all(README.as_bytes())?;
    zip.start_file(format!("{name}/LICENSE-NotoSansCJK.txt"), plain)?;
    zip.write_all(&std::fs::read(
        root().join("assets/fonts/LICENSE-NotoSansCJK.txt"),
    )?)?;
    zip.start_file(format!("{name}/LICENSE-OpenH264.txt"), plain)?;
    zip.write_all(OPENH264_NOTICE.as_bytes())?;
    zip.write_all(&std::fs::read(root().join("assets/LICENSE-OpenH264.txt"))?)?;
    zip.finish()?;
    Ok(out)
}

fn dist(args: &[String]) -> anyhow::Result<()> {
    let options = dist_options(args)?;
    if options.exe.is_some() && options.linux == options.windows {
        bail!("--exe needs --only linux or --only windows");
    }
    for (os, wanted, windows) in [
        ("linux", options.linux, false),
        ("windows", options.windows, true),
    ] {
        if !wanted {
            continue;
        }
        let compress = options.profile == "release";
        let exe = match &options.exe {
            Some(exe) => exe.clone(),
            None => {
                let built = cargo_build(&options.profile, windows)?;
                let programs =
                    ["thin-host", "thin-host-settings"].map(|p| built.join(exe_name(p, windows)));
                let host = pack_host(&programs, os, compress)?;
                println!("{}", host.display());
                built.join(exe_name("thin-desktop", windows))
            }
        };
        let zip = pack(&exe, os, compress)?;
        println!("{}", zip.display());
    }
    Ok(())
}
