//! `thin-host service`: the systemd unit it writes is one systemd accepts
//! (`systemd-analyze verify`, which needs no running systemd), and every
//! command says in words what it did or why it cannot. systemd itself does
//! not run on these machines, so starting the unit is not shown here; the
//! unit goes to a folder of the test's own (THIN_HOST_UNIT_DIR).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

/// `thin-host service ARGS` run from the copy `exe`, with its units in
/// `units`: exit code and output.
fn service(exe: &Path, units: &Path, args: &[&str]) -> (i32, String) {
    let mut cmd = Command::new(exe);
    cmd.arg("service")
        .args(args)
        .env("THIN_HOST_UNIT_DIR", units);
    Proc::start_cmd("thin-host", &mut cmd).wait_exit(Duration::from_secs(30))
}

/// `systemd-analyze verify UNIT`: what it found wrong with the unit itself
/// (nothing when all is well; remarks on other units are not ours).
fn verify(unit: &Path) -> String {
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(unit)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    let name = unit.file_name().unwrap().to_str().unwrap();
    said.lines()
        .filter(|line| line.contains(name))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_service_unit_is_one_systemd_accepts_and_each_command_says_what_it_did() {
    if !real_peer_programs(&["systemd-analyze"], "systemd") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let units = work.path().join("units");
    std::fs::create_dir(&units).unwrap();
    let relay = work.path().join("relay");
    let (code, out) = run("thin-relay", &["init", "--dir", relay.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    // The service cannot see home folders, where a checkout may be: it
    // runs a copy of thin-host from the test's own folder.
    let exe = work.path().join("thin-host");
    std::fs::copy(bin("thin-host"), &exe).unwrap();
    let service = |units: &Path, args: &[&str]| service(&exe, units, args);
    // A folder with a space, as "Program Files" would have, and the signs a
    // unit file gives meanings to.
    let folder = work.path().join("office pc 100% $HOME \"x\"");
    std::fs::create_dir(&folder).unwrap();
    let config = folder.join("host.toml");
    let ca = relay.join("ca.pem");
    init_host(&config, "service-pc", "127.0.0.1:4433", &ca, None, &[]);
    let config = config.to_str().unwrap();

    // Without a config there is nothing to serve: said so, no unit.
    let missing = work.path().join("none.toml");
    let (code, out) = service(&units, &["install", "--config", missing.to_str().unwrap()]);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("create it first with `thin-host init"),
        "{out}"
    );
    let unit = units.join("thin-host.service");
    assert!(!unit.exists());

    let (code, out) = service(&units, &["install", "--config", config]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("where systemd does not look"), "{out}");
    assert_eq!(
        verify(&unit),
        "",
        "systemd-analyze found fault with the unit"
    );
    let text = std::fs::read_to_string(&unit).unwrap();
    // systemd would expand these itself: written doubled.
    assert!(text.contains("100%% $$HOME \\\"x\\\""), "{text}");
    assert!(!text.contains("systemd-inhibit"), "{text}");

    let (code, out) = service(&units, &["status"]);
    assert_eq!(code, 0, "{out}");
    for expected in [
        "service: installed",
        "state unknown",
        &format!("config: {config}"),
        "computer ID: service-pc",
        "relay: 127.0.0.1:4433",
    ] {
        assert!(out.contains(expected), "{expected:?} in {out}");
    }
    assert!(!out.contains("keeps the PC awake"), "{out}");
    let (code, out) = service(&units, &["start"]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("cannot be started or stopped here"), "{out}");

    // Installed again, keeping the PC awake: the same checks hold.
    let (code, out) = service(&units, &["install", "--config", config, "--keep-awake"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        verify(&unit),
        "",
        "systemd-analyze found fault with the unit"
    );
    let (_, out) = service(&units, &["status"]);
    assert!(out.contains("keeps the PC awake: yes"), "{out}");

    let (code, out) = service(&units, &["uninstall"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("config and keys are kept"), "{out}");
    assert!(!unit.exists());
    assert!(Path::new(config).exists());
    let (_, out) = service(&units, &["status"]);
    assert!(out.contains("service: not installed"), "{out}");
    let (code, out) = service(&units, &["uninstall"]);
    assert_ne!(code, 0, "{out}");
}
