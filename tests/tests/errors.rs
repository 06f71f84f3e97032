//! Every failure gets its clear error, and the relay keeps serving.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use proto::relay::{self, ErrorCode, FromRelay};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const USER: &str = "bob";
const PASSWORD: &str = "Corr3ct-horse";

fn connect(
    relay_addr: &str,
    ca: &std::path::Path,
    id: &str,
    password: &str,
    out: &std::path::Path,
) -> (i32, String) {
    let extra = ["--frame-timeout", "20"];
    thin_client_connect(relay_addr, ca, id, (USER, password), out, &extra)
}

/// Sends raw bytes to the relay over TLS and returns the relay's answer.
fn relay_answer(relay: &RelayProc, bytes: Vec<u8>) -> FromRelay {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let config = transport::tls::pinned_client_config(&relay.ca()).unwrap();
        let tcp = tokio::net::TcpStream::connect(&relay.addr).await.unwrap();
        let mut tls = transport::tls::connect(tcp, Arc::clone(&config), &relay.addr)
            .await
            .unwrap();
        tls.write_all(&bytes).await.unwrap();
        let mut len = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(10), tls.read_exact(&mut len))
            .await
            .unwrap()
            .unwrap();
        let mut frame = vec![0u8; u32::from_be_bytes(len) as usize];
        tls.read_exact(&mut frame).await.unwrap();
        relay::decode(&frame).unwrap()
    })
}

#[test]
fn each_failure_has_its_clear_error_and_the_relay_keeps_serving() {
    let relay = RelayProc::start(&[]);
    let (_desktop, desktop_addr) = test_desktop(USER, PASSWORD);
    let work = tempfile::tempdir().unwrap();
    let shot = work.path().join("shot.png");
    let mut host = HostProc::start(work.path(), &relay, "pc-1", &desktop_addr);

    // Unknown computer ID.
    let (code, out) = connect(&relay.addr, &relay.ca(), "no-such-pc", PASSWORD, &shot);
    assert_ne!(code, 0);
    assert!(
        out.contains("unknown computer ID: no computer with ID 'no-such-pc'"),
        "{out}"
    );

    // Malformed computer ID: refused before dialing.
    let (code, out) = connect(&relay.addr, &relay.ca(), "bad id!", PASSWORD, &shot);
    assert_ne!(code, 0);
    assert!(out.contains("invalid computer ID"), "{out}");

    // Wrong relay CA: a CA from another relay is not trusted.
    let other = tempfile::tempdir().unwrap();
    let (c, o) = run(
        "thin-relay",
        &["init", "--dir", other.path().to_str().unwrap()],
    );
    assert_eq!(c, 0, "{o}");
    let (code, out) = connect(
        &relay.addr,
        &other.path().join("ca.pem"),
        "pc-1",
        PASSWORD,
        &shot,
    );
    assert_ne!(code, 0);
    assert!(out.contains("relay certificate not trusted"), "{out}");

    // Relay unreachable.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let (code, out) = connect(&closed, &relay.ca(), "pc-1", PASSWORD, &shot);
    assert_ne!(code, 0);
    assert!(out.contains("relay unreachable"), "{out}");

    // Wrong RDP password.
    let (code, out) = connect(&relay.addr, &relay.ca(), "pc-1", "wrong-password", &shot);
    assert_ne!(code, 0);
    assert!(out.contains("remote logon refused"), "{out}");
    assert_eq!(
        out.lines()
            .filter(|l| l.starts_with("thin-client:"))
            .count(),
        1,
        "{out}"
    );

    // A second host claiming the taken ID (with its own key) is refused.
    let config2 = work.path().join("impostor.toml");
    let ca = relay.ca();
    let (c, o) = run(
        "thin-host",
        &[
            "init",
            "--config",
            config2.to_str().unwrap(),
            "--id",
            "PC-1",
            "--relay",
            &relay.addr,
            "--relay-ca",
            ca.to_str().unwrap(),
        ],
    );
    assert_eq!(c, 0, "{o}");
    let (code, out) = run("thin-host", &["run", "--config", config2.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(
        out.contains("computer ID 'pc-1' is already registered to another host"),
        "{out}"
    );

    // Oversized and garbage frames get error frames, not a crash.
    let oversized = relay_answer(&relay, u32::MAX.to_be_bytes().to_vec());
    assert!(
        matches!(
            oversized,
            FromRelay::Error {
                code: ErrorCode::FrameTooLarge,
                ..
            }
        ),
        "{oversized:?}"
    );
    let garbage = relay_answer(&relay, proto::encode_frame(b"\x00\xffnot json"));
    assert!(
        matches!(
            garbage,
            FromRelay::Error {
                code: ErrorCode::BadRequest,
                ..
            }
        ),
        "{garbage:?}"
    );

    // The relay still serves: the real host is reachable.
    let (code, out) = connect(&relay.addr, &relay.ca(), "pc-1", PASSWORD, &shot);
    assert_eq!(code, 0, "{out}");

    // Host offline: the relay notices the dropped control connection.
    host.proc.kill();
    let mut out = String::new();
    for _ in 0..50 {
        let (code, o) = connect(&relay.addr, &relay.ca(), "pc-1", PASSWORD, &shot);
        assert_ne!(code, 0);
        out = o;
        if out.contains("computer offline") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        out.contains("computer offline: computer 'pc-1' is offline"),
        "{out}"
    );
}

#[test]
fn a_silent_host_is_marked_offline_after_the_heartbeat_timeout() {
    let relay = RelayProc::start(&["--heartbeat-timeout", "2"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Register by hand (real key, real proof), then go silent.
    let answer = rt.block_on(async {
        let config = transport::tls::pinned_client_config(&relay.ca()).unwrap();
        let tcp = tokio::net::TcpStream::connect(&relay.addr).await.unwrap();
        let tls = transport::tls::connect(tcp, config, &relay.addr)
            .await
            .unwrap();
        let mut conn = transport::FramedIo::new(tls);
        let key = ring_key();
        let id = proto::ComputerId::parse("quiet-pc").unwrap();
        let public = ring::signature::KeyPair::public_key(&key).as_ref().to_vec();
        conn.write_all(&relay::encode(&relay::ToRelay::HostHello {
            version: relay::PROTOCOL_VERSION,
            id: id.clone(),
            public_key: public.clone(),
            enrolment_token: None,
        }))
        .await
        .unwrap();
        let FromRelay::Challenge { nonce } =
            relay::decode(&conn.read_frame().await.unwrap()).unwrap()
        else {
            panic!()
        };
        let signature = key
            .sign(&relay::registration_transcript(&nonce, &id, &public))
            .as_ref()
            .to_vec();
        conn.write_all(&relay::encode(&relay::ToRelay::HostProof { signature }))
            .await
            .unwrap();
        let answer: FromRelay = relay::decode(&conn.read_frame().await.unwrap()).unwrap();
        // Silence: the relay must drop us within the timeout.
        let closed = tokio::time::timeout(Duration::from_secs(10), conn.read_frame()).await;
        (answer, closed.is_ok())
    });
    assert_eq!(answer.0, FromRelay::Registered);
    assert!(answer.1, "the relay kept a silent host online");
    let work = tempfile::tempdir().unwrap();
    let (code, out) = connect(
        &relay.addr,
        &relay.ca(),
        "quiet-pc",
        PASSWORD,
        &work.path().join("x.png"),
    );
    assert_ne!(code, 0);
    assert!(out.contains("computer offline"), "{out}");
}

fn ring_key() -> ring::signature::Ed25519KeyPair {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
}
