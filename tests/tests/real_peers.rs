//! Real RDP peers through relay and host: the FreeRDP shadow server (a real
//! RDP server with NLA, shadowing an Xvfb display) and xfreerdp (a real RDP
//! client) through `thin-client connect --listen`.
//!
//! These need Debian's `xvfb x11-xserver-utils freerdp2-shadow-x11
//! winpr-utils freerdp2-x11` (installed by `.ci/run`). Without them the tests
//! fail and say what to install; set THIN_SKIP_REAL_PEERS=1 to skip them
//! deliberately on a machine that cannot have them.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

const USER: &str = "tester";
const PASSWORD: &str = "Secr3t!pw";
/// The colour the test paints on the shadowed X display.
const ROOT_COLOUR: [u8; 3] = [0x33, 0x66, 0xcc];
const PROGRAMS: &[&str] = &[
    "Xvfb",
    "xsetroot",
    "freerdp-shadow-cli",
    "winpr-hash",
    "xfreerdp",
];

fn real_peers_available() -> bool {
    real_peer_programs(
        PROGRAMS,
        "xvfb x11-xserver-utils freerdp2-shadow-x11 winpr-utils freerdp2-x11",
    )
}

/// The FreeRDP shadow server with NLA (user and password in a SAM file),
/// showing `xvfb`'s display painted in ROOT_COLOUR.
fn shadow_server(xvfb: &Xvfb, dir: &Path) -> (Proc, String) {
    let sam = dir.join("sam.txt");
    let hash = Command::new("winpr-hash")
        .args(["-u", USER, "-p", PASSWORD, "-f", "sam"])
        .output()
        .unwrap();
    assert!(hash.status.success(), "winpr-hash failed");
    std::fs::write(&sam, hash.stdout).unwrap();

    // Seen here once in many runs: the shadow server fails to open a display
    // that answers xset; it is started again (at most three times).
    let mut attempts = 0;
    let (proc, addr) = loop {
        attempts += 1;
        let port = free_port();
        let mut proc = Proc::start_cmd(
            "freerdp-shadow-cli",
            Command::new("freerdp-shadow-cli")
                .args([
                    "/bind-address:127.0.0.1",
                    &format!("/port:{port}"),
                    "-auth",
                    "/sec:nla",
                    &format!("/sam-file:{}", sam.display()),
                ])
                .env("DISPLAY", &xvfb.display)
                .env("HOME", dir),
        );
        let addr = format!("127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&addr).is_err() && !proc.exited() {
            assert!(
                std::time::Instant::now() < deadline,
                "nothing listens on {addr}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        if !proc.exited() {
            break (proc, addr);
        }
        let (_, out) = proc.wait_exit(Duration::from_secs(5));
        assert!(attempts < 3, "freerdp-shadow-cli did not start:\n{out}");
        eprintln!("freerdp-shadow-cli ended at start (attempt {attempts}); again:\n{out}");
        std::thread::sleep(Duration::from_millis(500));
    };
    // Painted once the server watches the display, so that it sees the change.
    let [r, g, b] = ROOT_COLOUR;
    let status = Command::new("xsetroot")
        .args(["-solid", &format!("#{r:02x}{g:02x}{b:02x}")])
        .env("DISPLAY", &xvfb.display)
        .status()
        .unwrap();
    assert!(status.success(), "xsetroot failed");
    (proc, addr)
}

#[test]
fn freerdp_shadow_server_through_relay_and_host() {
    if !real_peers_available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let xvfb = Xvfb::start();
    let (_shadow, shadow_addr) = shadow_server(&xvfb, work.path());
    let relay = RelayProc::start(&[]);
    let _host = HostProc::start(work.path(), &relay, "shadow-pc", &shadow_addr);

    let shot = work.path().join("shadow.png");
    let ca = relay.ca();
    let connect = |password: &str| {
        thin_client_connect(&relay.addr, &ca, "shadow-pc", (USER, password), &shot, &[])
    };

    // The shadow server captures the display only once a client is
    // connected, so its first complete frame is black: the screenshot must
    // wait for the real picture. One connection, no retries.
    let (code, out) = connect(PASSWORD);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("first_frame_ms="), "{out}");
    let (w, h, rgb) = read_png(&shot);
    assert_eq!((w, h), (1024, 768));
    // The shadowed display's colour arrives (allowing for lossy codecs).
    let wrong_pixels: Vec<_> = [(10, 10), (512, 384), (1000, 700), (100, 600)]
        .into_iter()
        .filter_map(|(x, y)| {
            let i = ((y * w + x) * 3) as usize;
            let pixel = [rgb[i], rgb[i + 1], rgb[i + 2]];
            let close = pixel
                .iter()
                .zip(ROOT_COLOUR)
                .all(|(got, want)| got.abs_diff(want) <= 8);
            (!close).then_some((x, y, pixel))
        })
        .collect();
    assert!(
        wrong_pixels.is_empty(),
        "(x, y, pixel) not {ROOT_COLOUR:?}: {wrong_pixels:?}"
    );

    let (code, out) = connect("not-the-password");
    assert_ne!(code, 0);
    assert!(out.contains("remote logon refused"), "{out}");
}

/// RDP clients open several connections (an NLA check, the session, a
/// reconnect): each must get through with the one logon the user gave —
/// the first with the one-time password, the next ones with the host's
/// resume ticket — and a wrong Windows password must fail at the RDP server,
/// not at our gate.
#[test]
fn xfreerdp_through_raw_mode_again_and_again() {
    if !real_peers_available() || !real_peer_programs(&["oathtool"], "oathtool") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let xvfb = Xvfb::start();
    let (_shadow, shadow_addr) = shadow_server(&xvfb, work.path());
    let relay = RelayProc::start(&[]);
    let host = HostProc::start(work.path(), &relay, "raw-pc", &shadow_addr);
    let (_, _, secret) = enrol_totp(&host.config);
    let otp = oathtool(&secret);

    let ca = relay.ca();
    let mut client = Proc::start_cmd(
        "thin-client",
        Command::new(bin("thin-client"))
            .args(["connect", "--relay", &relay.addr, "--relay-ca"])
            .arg(&ca)
            .args([
                "--id",
                "raw-pc",
                "--host-password-file",
                host_password_file(),
            ])
            .args(["--otp", &otp, "--listen", "127.0.0.1:0"])
            // Each connection through the pipe is logged at info.
            .env("RUST_LOG", "info"),
    );
    let line = client.wait_for("listening on ", Duration::from_secs(20));
    let local = addr_after(&line, "listening on ");
    let raw = |switch: &str| {
        let config = host.config.to_str().unwrap();
        let (code, out) = run(
            "thin-host",
            &["policy", "--config", config, "--raw", switch],
        );
        assert_eq!(code, 0, "{out}");
    };

    // xfreerdp keeps its known-hosts file under $HOME: give it its own.
    let auth_only = |password: &str| {
        let mut xfreerdp = Proc::start_cmd(
            "xfreerdp",
            Command::new("timeout")
                .args(["30", "xfreerdp"])
                .arg(format!("/v:{local}"))
                .arg(format!("/u:{USER}"))
                .arg(format!("/p:{password}"))
                .args(["/cert:ignore", "/sec:nla", "+auth-only"])
                .env("DISPLAY", &xvfb.display)
                .env("HOME", work.path()),
        );
        xfreerdp.wait_exit(Duration::from_secs(40))
    };
    // Raw mode is off unless the owner allows it: the host cannot enforce
    // its policy inside another client's TLS.
    let (code, out) = auth_only(PASSWORD);
    assert_ne!(code, 0, "raw mode worked against the host's policy:\n{out}");
    client.wait_for("does not allow raw mode", Duration::from_secs(10));
    raw("on");

    for round in 1..=2 {
        let (code, out) = auth_only(PASSWORD);
        assert_eq!(
            code, 0,
            "xfreerdp could not log on through the relay (connection {round}):\n{out}"
        );
        client.wait_for("RDP client disconnected", Duration::from_secs(10));
    }
    // The pipe opens (the ticket stands in for the used code) and the RDP
    // server itself refuses the wrong Windows password.
    let (code, out) = auth_only("not-the-password");
    assert_ne!(code, 0, "a wrong password logged on:\n{out}");
    client.wait_for(
        "RDP client connected through the relay",
        Duration::from_secs(10),
    );
    let (code, out) = auth_only(PASSWORD);
    assert_eq!(code, 0, "the fourth connection failed:\n{out}");

    let audit = std::fs::read_to_string(host.config.with_extension("audit.log")).unwrap();
    let resumed = audit
        .lines()
        .filter(|l| l.contains("skipped: resume ticket"))
        .count();
    assert_eq!(resumed, 4, "{audit}");
    assert!(!audit.contains("\"result\":\"fail\""), "{audit}");
}
