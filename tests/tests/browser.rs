//! The browser client in a real browser: the relay serves the web build
//! (`cargo xtask web`) on its one port with a web certificate of its own, and
//! Debian's Chromium, driven by playwright-core (tests/browser/session.mjs),
//! connects like a person: computer ID, host key, TOTP code from oathtool,
//! host password, Windows logon, all typed. The screenshots must show the
//! test desktop's picture and the keys and a click must reach it, while a native client
//! and the hosts use the same relay port. Screenshots are kept in
//! target/screenshots/.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use common::*;
use sha2::Digest as _;

const PROGRAMS: &[&str] = &["chromium", "chromedriver", "node", "npm", "oathtool"];
const PACKAGES: &str = "chromium chromium-driver nodejs npm oathtool";
const USER: &str = "hanako";
const PASSWORD: &str = "Web-Rdp-58";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// `cargo xtask <args>` from the workspace root; panics with its output.
fn xtask(args: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .arg("xtask")
        .args(args)
        .current_dir(workspace())
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo xtask {args:?} failed");
}

/// One cargo at a time on the wasm build (both tests here need it, and
/// the first one installs wasm-bindgen-cli).
static WASM_BUILD: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The web client's folder (`cargo xtask web` does nothing when it is up to
/// date).
fn web_build() -> PathBuf {
    let _one = WASM_BUILD.lock().unwrap_or_else(|e| e.into_inner());
    xtask(&["web"]);
    workspace().join("target/web")
}

/// The pieces that only run in a browser (storage of settings and host
/// keys, the WebSocket stream), tested inside headless Chromium by
/// `wasm-bindgen-test` (web/tests/in_browser.rs); they reuse the web
/// build's compiled crates.
#[test]
fn the_browser_only_pieces_pass_their_tests_in_chromium() {
    if !real_peer_programs(PROGRAMS, PACKAGES) {
        return;
    }
    web_build();
    let _one = WASM_BUILD.lock().unwrap_or_else(|e| e.into_inner());
    xtask(&["web-test"]);
}

/// playwright-core from the lockfile in tests/browser (npm registry).
fn playwright() -> PathBuf {
    let dir = workspace().join("tests/browser");
    if !dir.join("node_modules/playwright-core").is_dir() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .status()
            .expect("npm runs");
        assert!(status.success(), "npm ci in {} failed", dir.display());
    }
    dir
}

/// A certificate for the browser side (as a public CA would issue), and
/// the hash of its key, which is all Chromium is told to trust.
fn web_certificate(dir: &Path) -> (PathBuf, PathBuf, String) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let cert = dir.join("web-cert.pem");
    let key = dir.join("web-key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    let spki = sha2::Sha256::digest(certified.key_pair.public_key_der());
    (
        cert,
        key,
        base64::engine::general_purpose::STANDARD.encode(spki),
    )
}

/// Enrols TOTP on the host; returns the secret the authenticator app gets.
fn enrol_totp(config: &Path) -> String {
    let (code, out) = run(
        "thin-host",
        &["otp", "totp", "--config", config.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out}");
    out.lines()
        .find(|l| l.starts_with("otpauth://totp/"))
        .and_then(|uri| {
            uri.split(['?', '&'])
                .find_map(|p| p.strip_prefix("secret="))
        })
        .expect("the enrolment prints the otpauth URI with its secret")
        .to_owned()
}

#[test]
fn a_person_at_chromium_reaches_the_desktop_through_the_relay_s_one_port() {
    if !real_peer_programs(PROGRAMS, PACKAGES) {
        return;
    }
    let web = web_build();
    let scripts = playwright();
    let work = tempfile::tempdir().unwrap();
    let (cert, key, spki) = web_certificate(work.path());
    let relay = RelayProc::start(&[
        "--web",
        web.to_str().unwrap(),
        "--web-cert",
        cert.to_str().unwrap(),
        "--web-key",
        key.to_str().unwrap(),
    ]);
    const OFFICE: &str = "会社のPCでコピー ✓ office";
    const HOME: &str = "ブラウザーからペースト ✓ home";
    let (mut desktop, desktop_addr) =
        test_desktop_with(USER, PASSWORD, &["--clipboard", OFFICE, "--tone", "440"]);
    let host = HostProc::start(work.path(), &relay, "web-pc", &desktop_addr);
    let secret = enrol_totp(&host.config);
    // A second office PC for a native client, on the same relay port.
    let (_desktop2, desktop2_addr) = test_desktop(USER, PASSWORD);
    let _host2 = HostProc::start(work.path(), &relay, "native-pc", &desktop2_addr);

    let shots = target_dir().join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let done = work.path().join("done");
    let run_browser = |locale: &str, only_list: bool| {
        Proc::start_cmd(
            "chromium",
            Command::new("node")
                .arg(scripts.join("session.mjs"))
                .current_dir(&scripts)
                .env("THIN_URL", format!("https://{}/", relay.addr))
                .env("THIN_SPKI", &spki)
                .env("THIN_LOCALE", locale)
                .env("THIN_ID", "web-pc")
                .env("THIN_TOTP_SECRET", &secret)
                .env("THIN_HOST_PASSWORD", HOST_PASSWORD)
                .env("THIN_RDP_USER", USER)
                .env("THIN_RDP_PASSWORD", PASSWORD)
                .env("THIN_OUT", &shots)
                .env("THIN_DONE", &done)
                .env("THIN_PASTE", HOME)
                .env("THIN_ONLY_LIST", if only_list { "1" } else { "" }),
        )
    };

    // English: the page loads and shows the list (the full flow runs in
    // Japanese below).
    let mut english = run_browser("en-US", true);
    let (code, out) = english.wait_exit(Duration::from_secs(120));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("loaded_ms="), "{out}");

    let mut browser = run_browser("ja-JP", false);
    let loaded = browser.wait_for("loaded_ms=", Duration::from_secs(120));
    eprintln!("page {loaded}");
    browser.wait_for("step: web-pc — thin", Duration::from_secs(120));
    let mut found = None;
    for i in 0..10 {
        browser.wait_for(&format!("screenshot {i}"), Duration::from_secs(30));
        let shot = shots.join(format!("browser-ja-JP-session-{i}.png"));
        if let Some(at) = find_picture(&shot) {
            found = Some((shot, at));
            break;
        }
    }
    let (shot, at) = found.expect("the test desktop's picture never appeared in the browser");
    eprintln!("picture at {at:?} in {}", shot.display());

    // The relay still serves native clients while the browser session runs.
    let native_shot = work.path().join("native.png");
    let logon = (USER, PASSWORD);
    let (code, out) = thin_client_connect(
        &relay.addr,
        &relay.ca(),
        "native-pc",
        logon,
        &native_shot,
        &[],
    );
    assert_eq!(code, 0, "native client next to the browser: {out}");

    // The office PC's tone plays through Web Audio (the person typed on
    // the page, so the browser allows sound).
    desktop.wait_for(
        "input: tone sent as IMA ADPCM 22050 Hz 2 ch",
        Duration::from_secs(20),
    );
    browser.wait_for("sound: playing 22050 Hz 2 ch", Duration::from_secs(20));

    // Keys typed in the browser reach the remote desktop (a character as
    // Unicode, an arrow key as its scancode), and so does a mouse click.
    browser.wait_for("keys and click sent", Duration::from_secs(30));
    desktop.wait_for("input: unicode U+0061 down", Duration::from_secs(20));
    desktop.wait_for("input: key 0x4b extended down", Duration::from_secs(20));
    desktop.wait_for("input: click left ", Duration::from_secs(20));
    // The clipboard both ways, through the browser's Clipboard API.
    browser.wait_for(
        &format!("browser clipboard: \"{OFFICE}\""),
        Duration::from_secs(20),
    );
    browser.wait_for("pasted", Duration::from_secs(20));
    desktop.wait_for(
        &format!("input: clipboard \"{HOME}\""),
        Duration::from_secs(20),
    );
    desktop.wait_for("input: key 0x2f down", Duration::from_secs(20));
    // A larger page: the remote desktop follows, its picture painted over
    // the new area (the whole page's width: the session has no margin).
    browser.wait_for("page resized", Duration::from_secs(20));
    desktop.wait_for("input: resized to 1500x", Duration::from_secs(20));
    let followed = (0..8).any(|i| {
        browser.wait_for(&format!("resized screenshot {i}"), Duration::from_secs(30));
        let shot = shots.join(format!("browser-ja-JP-resized-{i}.png"));
        picture_reaches(&shot, (1400, 850))
    });
    assert!(
        followed,
        "the remote desktop did not follow the larger page"
    );
    std::fs::write(&done, "").unwrap();
    let (code, out) = browser.wait_exit(Duration::from_secs(60));
    assert_eq!(code, 0, "{out}");
}
