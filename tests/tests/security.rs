//! The end-to-end channel and the host's checks, through real processes.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

const USER: &str = "dave";
const PASSWORD: &str = "Rdp-pass-77";

fn connect(relay: &RelayProc, id: &str, known_hosts: &Path, shot: &Path) -> (i32, String) {
    let ca = relay.ca();
    run(
        "thin-client",
        &[
            "connect",
            "--relay",
            &relay.addr,
            "--relay-ca",
            ca.to_str().unwrap(),
            "--id",
            id,
            "--rdp-user",
            USER,
            "--rdp-password",
            PASSWORD,
            "--host-password-file",
            host_password_file(),
            "--screenshot",
            shot.to_str().unwrap(),
            "--known-hosts",
            known_hosts.to_str().unwrap(),
        ],
    )
}

fn fingerprint(config: &Path) -> String {
    let (code, out) = run(
        "thin-host",
        &["fingerprint", "--config", config.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out}");
    out.trim().to_owned()
}

#[test]
fn a_changed_host_key_is_refused_until_the_pin_is_removed() {
    let work = tempfile::tempdir().unwrap();
    let known_hosts = work.path().join("known_hosts");
    let shot = work.path().join("shot.png");
    let relay = RelayProc::start(&[]);
    let (_desktop, desktop_addr) = test_desktop(USER, PASSWORD);
    let mut host = HostProc::start(work.path(), &relay, "pinned-pc", &desktop_addr);
    let old = fingerprint(&host.config);

    // First use: accepted and recorded.
    let (code, out) = connect(&relay, "pinned-pc", &known_hosts, &shot);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&old),
        "the new key's fingerprint was not shown: {out}"
    );
    let pins = std::fs::read_to_string(&known_hosts).unwrap();
    assert!(
        pins.contains(&format!("pinned-pc@{}", relay.addr)),
        "{pins}"
    );

    // The host comes back with another end-to-end key (same relay identity,
    // as after a re-install that kept only the relay key, or an impostor).
    host.proc.kill();
    let other = work.path().join("other.toml");
    let ca = relay.ca();
    let (code, out) = run(
        "thin-host",
        &[
            "init",
            "--config",
            other.to_str().unwrap(),
            "--id",
            "other-pc",
            "--relay",
            &relay.addr,
            "--relay-ca",
            ca.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}");
    let e2e_key = |config: &Path| config.with_extension("e2e.key");
    std::fs::copy(e2e_key(&other), e2e_key(&host.config)).unwrap();
    let new = fingerprint(&host.config);
    assert_ne!(old, new);
    let mut restarted = Proc::start(
        "thin-host",
        &["run", "--config", host.config.to_str().unwrap()],
    );
    restarted.wait_for("registered; waiting for sessions", Duration::from_secs(20));

    let (code, out) = connect(&relay, "pinned-pc", &known_hosts, &shot);
    assert_ne!(code, 0);
    let warning = out
        .lines()
        .find(|l| l.starts_with("thin-client:"))
        .unwrap_or_default();
    assert!(
        warning.contains("WARNING: the key of computer 'pinned-pc' has changed"),
        "{out}"
    );
    assert!(
        warning.contains(&format!("pinned {old}, now {new}")),
        "{out}"
    );
    // The pin is untouched by the refusal.
    assert_eq!(std::fs::read_to_string(&known_hosts).unwrap(), pins);

    // Removing the pin on purpose lets the new key in.
    let pin = format!("pinned-pc@{}", relay.addr);
    let (code, out) = run(
        "thin-client",
        &[
            "forget-host",
            &pin,
            "--known-hosts",
            known_hosts.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = connect(&relay, "pinned-pc", &known_hosts, &shot);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&new), "{out}");
}
