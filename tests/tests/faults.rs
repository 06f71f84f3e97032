//! Faults under way: the office PC's host dies in the middle of a session,
//! the relay restarts while a session runs, and a thousand idle or
//! half-open connections sit on the relay while a person connects.

mod common;

use std::io::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::*;

const USER: &str = "dai";
const PASSWORD: &str = "Fault-T0lerant";

/// A `thin-client connect` that stays in the session for a minute after
/// its first frame.
fn session(relay: &RelayProc, id: &str, shot: &std::path::Path) -> Proc {
    let logon = (USER, PASSWORD);
    let hold = ["--hold", "60"];
    let args = thin_client_connect_args(&relay.addr, &relay.ca(), id, logon, shot, &hold);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut proc = Proc::start("thin-client", &args);
    proc.wait_for("first_frame_ms=", Duration::from_secs(60));
    proc
}

/// The one-line error a failed client printed (standard error; its
/// standard output may interleave with it in any order).
fn error_line(out: &str) -> &str {
    out.lines()
        .rev()
        .find(|l| l.starts_with("thin-client: "))
        .unwrap_or("")
}

#[test]
fn a_host_killed_mid_session_is_reported_to_the_client() {
    let work = tempfile::tempdir().unwrap();
    let relay = RelayProc::start(&[]);
    let (_desktop, desktop_addr) = test_desktop(USER, PASSWORD);
    let mut host = HostProc::start(work.path(), &relay, "fragile-pc", &desktop_addr);
    let mut client = session(&relay, "fragile-pc", &work.path().join("shot.png"));

    host.proc.kill();
    let (code, out) = client.wait_exit(Duration::from_secs(30));
    assert_ne!(
        code, 0,
        "the client took a dead host for a normal end:\n{out}"
    );
    let line = error_line(&out);
    eprintln!("the client said: {line}");
    assert!(line.contains("thin-client: "), "{out}");
    assert!(line.contains("broke off"), "{line}");
}

/// The relay restarted while it carries two sessions and five hosts.
#[test]
fn the_relay_restarting_under_load_is_reported_and_everyone_comes_back() {
    let work = tempfile::tempdir().unwrap();
    let mut relay = RelayProc::start(&[]);
    let (_desktop, desktop_addr) = test_desktop(USER, PASSWORD);
    let ids = [
        "steady-pc",
        "busy-pc-1",
        "busy-pc-2",
        "busy-pc-3",
        "busy-pc-4",
    ];
    let mut hosts: Vec<HostProc> = ids
        .iter()
        .map(|id| HostProc::start(work.path(), &relay, id, &desktop_addr))
        .collect();
    let shot = work.path().join("shot.png");
    let mut clients = [
        session(&relay, "steady-pc", &shot),
        session(&relay, "busy-pc-1", &work.path().join("busy.png")),
    ];

    relay.restart();
    for client in &mut clients {
        let (code, out) = client.wait_exit(Duration::from_secs(30));
        assert_ne!(
            code, 0,
            "the client took a relay restart for a normal end:\n{out}"
        );
        eprintln!("the client said: {}", error_line(&out));
        assert!(error_line(&out).contains("broke off"), "{out}");
    }

    // Every host registers again by itself; the person connects again.
    for host in &mut hosts {
        host.proc
            .wait_for("registered; waiting for sessions", Duration::from_secs(30));
    }
    let mut last = String::new();
    for _ in 0..40 {
        let (code, out) = thin_client_connect(
            &relay.addr,
            &relay.ca(),
            "steady-pc",
            (USER, PASSWORD),
            &shot,
            &[],
        );
        if code == 0 {
            assert!(
                find_picture(&shot).is_some(),
                "no picture after reconnecting"
            );
            return;
        }
        last = out;
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("could not connect again after the relay restarted: {last}");
}

/// A thousand sockets held open on the relay from 20 loopback addresses
/// (under the relay's 64-per-address limit): half never speak, half send
/// the first bytes of a TLS ClientHello and stall.
fn idle_connections(relay: &str) -> Vec<TcpStream> {
    let relay: SocketAddr = relay.parse().unwrap();
    let mut held = Vec::new();
    for i in 0..1000u32 {
        let source: SocketAddr = format!("127.0.{}.{}:0", 1 + i % 20 / 10, 2 + i % 10)
            .parse()
            .unwrap();
        let socket = match source {
            SocketAddr::V4(_) => {
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap()
            }
            SocketAddr::V6(_) => unreachable!(),
        };
        socket.bind(&source.into()).unwrap();
        socket
            .connect_timeout(&relay.into(), Duration::from_secs(5))
            .unwrap();
        let mut stream: TcpStream = socket.into();
        if i % 2 == 1 {
            // A TLS record header and the start of a ClientHello.
            stream
                .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
                .unwrap();
        }
        held.push(stream);
    }
    held
}

#[test]
fn a_thousand_idle_connections_do_not_stop_a_session() {
    raise_fd_limit();
    let work = tempfile::tempdir().unwrap();
    let relay = RelayProc::start(&[]);
    let (_desktop, desktop_addr) = test_desktop(USER, PASSWORD);
    let _host = HostProc::start(work.path(), &relay, "busy-pc", &desktop_addr);
    let held = idle_connections(&relay.addr);

    let shot = work.path().join("shot.png");
    let (code, out) = thin_client_connect(
        &relay.addr,
        &relay.ca(),
        "busy-pc",
        (USER, PASSWORD),
        &shot,
        &[],
    );
    assert_eq!(code, 0, "{out}");
    assert!(find_picture(&shot).is_some(), "no picture");
    assert_eq!(held.len(), 1000);
}

/// This test holds a thousand sockets, the relay as many: take the hard
/// limit on open files (children inherit it).
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        let mut limit = std::mem::zeroed::<libc::rlimit>();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
