//! The Windows build of thin-host (cross-compiled by `cargo xtask dist
//! --only windows`) on wine, against a Linux relay and test desktop on
//! loopback: it is configured, takes its host password, registers, and a
//! Linux thin-client works on the desktop through it — the picture checked
//! by its pixels.
//!
//! wine stands in for Windows, which cannot run here. The test is skipped
//! when no Windows build or no wine is there; CI runs it after its Windows
//! build with THIN_REQUIRE_WINE=1, which turns a skip into a failure.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const WINE: &str = "/usr/lib/wine/wine64";
const USER: &str = "erin";
const PASSWORD: &str = "Desk-top-9";

/// Rust's std for windows-gnu imports ProcessPrng from
/// bcryptprimitives.dll, which wine 8 lacks: a stub on RtlGenRandom
/// (RECIPES.md).
const PROCESS_PRNG: &str = r#"
#include <windows.h>
#include <ntsecapi.h>
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!RtlGenRandom(data, n)) return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
"#;

/// The newest Windows build of thin-host, if any.
fn windows_host() -> Option<PathBuf> {
    let built = target_dir().join("windows/x86_64-pc-windows-gnu");
    ["build-check", "release", "debug"]
        .iter()
        .map(|profile| built.join(profile).join("thin-host.exe"))
        .filter(|exe| exe.exists())
        .max_by_key(|exe| std::fs::metadata(exe).and_then(|m| m.modified()).ok())
}

fn skip(why: &str) {
    assert!(
        std::env::var_os("THIN_REQUIRE_WINE").is_none(),
        "THIN_REQUIRE_WINE is set, but {why}"
    );
    eprintln!("skipped: {why}");
}

/// A folder with the program and the stub DLL beside it, and a wine
/// prefix of its own (stopped with the test).
struct WineBox {
    dir: tempfile::TempDir,
    exe: PathBuf,
}

impl WineBox {
    fn new(program: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("thin-host.exe");
        std::fs::copy(program, &exe).unwrap();
        let source = dir.path().join("bcp.c");
        let exports = dir.path().join("bcp.def");
        std::fs::write(&source, PROCESS_PRNG).unwrap();
        std::fs::write(&exports, "LIBRARY bcryptprimitives\nEXPORTS\nProcessPrng\n").unwrap();
        let status = Command::new("x86_64-w64-mingw32-gcc")
            .args(["-shared", "-O2", "-o"])
            .arg(dir.path().join("bcryptprimitives.dll"))
            .arg(&source)
            .arg(&exports)
            .arg("-ladvapi32")
            .status()
            .unwrap();
        assert!(status.success(), "the stub DLL did not build");
        Self { dir, exe }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(WINE);
        cmd.arg(&self.exe)
            .args(args)
            .env("WINEPREFIX", self.dir.path().join("prefix"))
            .env("WINEDEBUG", "-all")
            .env("NO_COLOR", "1");
        cmd
    }

    /// Runs `thin-host.exe ARGS` with `input` on its standard input (the
    /// first run also makes the prefix: allow for it).
    fn run(&self, args: &[&str], input: &str) -> (i32, String) {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("wine runs");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while child.try_wait().unwrap().is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "wine did not finish {args:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code().unwrap_or(-1), text)
    }
}

impl Drop for WineBox {
    fn drop(&mut self) {
        let _ = Command::new("/usr/lib/wine/wineserver")
            .arg("-k")
            .env("WINEPREFIX", self.dir.path().join("prefix"))
            .status();
    }
}

#[test]
fn the_windows_host_serves_a_session_under_wine() {
    let Some(program) = windows_host() else {
        return skip("no Windows build (cargo xtask dist --profile build-check --only windows)");
    };
    if !Path::new(WINE).exists() || !is_installed("x86_64-w64-mingw32-gcc") {
        return skip("wine64 or gcc-mingw-w64-x86-64 is not installed");
    }
    let wine = WineBox::new(&program);
    let relay = RelayProc::start(&[]);
    let (_desktop, desktop_addr) = test_desktop(USER, PASSWORD);
    let config = wine.dir.path().join("host.toml");
    let config_arg = config.to_str().unwrap();
    let ca = relay.ca();
    let (code, out) = wine.run(
        &[
            "init",
            "--config",
            config_arg,
            "--id",
            "windows-pc",
            "--relay",
            &relay.addr,
            "--relay-ca",
            ca.to_str().unwrap(),
            "--target",
            &desktop_addr,
        ],
        "",
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = wine.run(
        &["set-password", "--config", config_arg],
        &format!("{HOST_PASSWORD}\n"),
    );
    assert_eq!(code, 0, "{out}");

    let mut host = Proc::start_cmd(
        "thin-host.exe",
        &mut wine.command(&["run", "--config", config_arg]),
    );
    host.wait_for("registered; waiting for sessions", Duration::from_secs(120));

    let shot = wine.dir.path().join("shot.png");
    let (code, out) =
        thin_client_connect(&relay.addr, &ca, "windows-pc", (USER, PASSWORD), &shot, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        find_picture(&shot).is_some(),
        "the test desktop's picture is not in {}",
        shot.display()
    );
    host.wait_for("client admitted", Duration::from_secs(5));
}
