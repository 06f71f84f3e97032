//! The portable zip: unpacked into a folder and run with an empty, fake
//! HOME (and TMPDIR), the app connects through a real relay and host and
//! writes only inside its own folder.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

const USER: &str = "frank";
const PASSWORD: &str = "Port-able-5";

fn files_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

#[test]
fn the_unpacked_zip_runs_and_writes_only_inside_its_folder() {
    if !real_peer_programs(&["Xvfb", "xdotool"], "xvfb xdotool") {
        return;
    }
    // The zip as `cargo xtask dist` packs it, around the thin-desktop this
    // test run built (a release build would take minutes).
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let exe = bin("thin-desktop");
    let out = Command::new(cargo)
        .args([
            "xtask",
            "dist",
            "--profile",
            "dev",
            "--only",
            "linux",
            "--exe",
        ])
        .arg(&exe)
        .current_dir(root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let zip_path = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(zip_path.ends_with("-linux-x86_64.zip"), "{zip_path}");

    let unpacked = tempfile::tempdir().unwrap();
    zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap())
        .unwrap()
        .extract(unpacked.path())
        .unwrap();
    let folder = std::fs::read_dir(unpacked.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    for name in [
        "thin-desktop",
        "thin-portable.txt",
        "README.txt",
        "LICENSE-NotoSansCJK.txt",
        "LICENSE-OpenH264.txt",
    ] {
        assert!(folder.join(name).exists(), "{name} missing from the zip");
    }

    // What IT staff prepare: the relay CA and a connection in data/.
    let relay = RelayProc::start(&[]);
    let (_desktop, desktop_addr) = test_desktop(USER, PASSWORD);
    let work = tempfile::tempdir().unwrap();
    let _host = HostProc::start(work.path(), &relay, "portable-pc", &desktop_addr);
    let data = folder.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::copy(relay.ca(), data.join("ca.pem")).unwrap();
    let settings = serde_json::json!({
        "lang": "ja",
        "relay": relay.addr,
        "relay_ca": "ca.pem",
        "connections": [{"name": "Office", "id": "portable-pc", "user": USER}],
    });
    std::fs::write(data.join("settings.json"), settings.to_string()).unwrap();

    let x = Xvfb::sized(1400, 950);
    let home = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut app = Proc::start_cmd(
        "thin-desktop",
        Command::new(folder.join("thin-desktop"))
            .args(["--connect", "Office"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap())
            .env("DISPLAY", &x.display)
            .env("LIBGL_ALWAYS_SOFTWARE", "1")
            .env("HOME", home.path())
            .env("TMPDIR", tmp.path()),
    );
    let limit = Duration::from_secs(60);
    app.wait_for("prompt=NewHostKey", limit);
    let key = |args: &[&str]| {
        let status = Command::new("xdotool")
            .args(args)
            .env("DISPLAY", &x.display)
            .status()
            .unwrap();
        assert!(status.success());
    };
    key(&[
        "search",
        "--sync",
        "--name",
        "thin",
        "windowfocus",
        "--sync",
    ]);
    key(&["key", "Return"]);
    for (prompt, answer) in [
        ("prompt=HostPassword", HOST_PASSWORD),
        ("prompt=RemoteLogon", PASSWORD),
    ] {
        app.wait_for(prompt, limit);
        std::thread::sleep(Duration::from_millis(300));
        key(&["type", "--delay", "20", answer]);
        key(&["key", "Return"]);
    }
    app.wait_for("session connected", limit);
    std::thread::sleep(Duration::from_secs(1));
    app.kill();

    // Everything it wrote is in data/; HOME and TMPDIR stay empty.
    assert_eq!(
        files_under(home.path()),
        Vec::<String>::new(),
        "written to HOME"
    );
    assert_eq!(
        files_under(tmp.path()),
        Vec::<String>::new(),
        "written to TMPDIR"
    );
    let pins = std::fs::read_to_string(data.join("known_hosts")).unwrap();
    assert!(pins.contains("portable-pc@ca-"), "{pins}");
    // The device's own key is kept beside the pins, private.
    #[cfg(unix)]
    for private in ["known_hosts", "device.key"] {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(data.join(private))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{private} is readable by others");
    }
    assert!(std::fs::read_to_string(data.join("thin-desktop.log"))
        .unwrap()
        .contains("portable=true"));
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("settings.json")).unwrap()).unwrap();
    assert_eq!(
        saved["fullscreen_hint_seen"], true,
        "settings were not saved beside the app"
    );
    for file in files_under(&folder) {
        let inside = Path::new(&file).strip_prefix(&folder).unwrap();
        assert!(
            inside.starts_with("data") || folder.join(inside).parent() == Some(&folder),
            "unexpected file {file}"
        );
    }
}
