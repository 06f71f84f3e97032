//! The network between the parts: a host and a client behind a real HTTP
//! CONNECT proxy (tinyproxy, with basic auth), and a host that comes back by
//! itself after the relay restarts.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

const USER: &str = "carol";
const PASSWORD: &str = "Pr0xy-desk!";
const PROXY_USER: &str = "alice";
const PROXY_PASSWORD: &str = "s3cret-proxy";

fn connect(relay: &RelayProc, id: &str, proxy: Option<&str>, shot: &Path) -> (i32, String) {
    let extra = match proxy {
        Some(proxy) => vec!["--proxy", proxy],
        None => Vec::new(),
    };
    thin_client_connect(&relay.addr, &relay.ca(), id, (USER, PASSWORD), shot, &extra)
}

/// tinyproxy on a free loopback port, requiring PROXY_USER/PROXY_PASSWORD.
fn tinyproxy(dir: &Path) -> (Proc, String) {
    let port = free_port();
    let conf = dir.join("tinyproxy.conf");
    std::fs::write(
        &conf,
        format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 60\nMaxClients 50\n\
             BasicAuth {PROXY_USER} {PROXY_PASSWORD}\nAllow 127.0.0.1\nLogLevel Connect\n"
        ),
    )
    .unwrap();
    let proc = Proc::start_cmd(
        "tinyproxy",
        Command::new("tinyproxy").arg("-d").arg("-c").arg(&conf),
    );
    let addr = format!("127.0.0.1:{port}");
    wait_listening(&addr, Duration::from_secs(20));
    (proc, addr)
}

#[test]
fn host_and_client_reach_the_relay_through_an_authenticating_proxy() {
    if !real_peer_programs(&["tinyproxy"], "tinyproxy") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (mut proxy, proxy_addr) = tinyproxy(work.path());
    let good = format!("http://{PROXY_USER}:{PROXY_PASSWORD}@{proxy_addr}");
    let bad = format!("http://{PROXY_USER}:wrong@{proxy_addr}");
    let relay = RelayProc::start(&[]);
    let (_desktop, desktop_addr) = test_desktop(USER, PASSWORD);

    // The host registers only through the proxy.
    let host = HostProc::start_with(
        work.path(),
        &relay,
        "proxied-pc",
        &desktop_addr,
        &["--proxy", &good],
    );
    proxy.wait_for(&format!("CONNECT {}", relay.addr), Duration::from_secs(5));
    // The proxy password is in the host's config: it must not be world-readable.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&host.config)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "host config is readable by others");
    }

    let shot = work.path().join("shot.png");
    let (code, out) = connect(&relay, "proxied-pc", Some(&good), &shot);
    assert_eq!(code, 0, "{out}");

    let (code, out) = connect(&relay, "proxied-pc", Some(&bad), &shot);
    assert_ne!(code, 0);
    assert!(
        out.contains("HTTP proxy: the proxy did not accept the user name and password"),
        "{out}"
    );
    assert!(
        !out.contains("wrong"),
        "the proxy password was printed: {out}"
    );
}

#[test]
fn host_registers_again_after_the_relay_restarts() {
    let work = tempfile::tempdir().unwrap();
    let mut relay = RelayProc::start(&[]);
    let (_desktop, desktop_addr) = test_desktop(USER, PASSWORD);
    let mut host = HostProc::start(work.path(), &relay, "steady-pc", &desktop_addr);
    let shot = work.path().join("shot.png");

    relay.restart();
    // The host notices the drop and registers again on its own (back-off
    // starts at 1 s); the relay kept the ID's key binding across the restart.
    host.proc
        .wait_for("relay connection closed", Duration::from_secs(10));
    let mut out = String::new();
    for _ in 0..40 {
        let (code, o) = connect(&relay, "steady-pc", None, &shot);
        if code == 0 {
            return;
        }
        assert!(o.contains("computer offline"), "{o}");
        out = o;
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("the host did not come back after the relay restarted: {out}");
}
