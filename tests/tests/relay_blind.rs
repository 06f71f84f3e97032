//! The relay learns nothing it could use: every byte it forwards after
//! pairing is captured (the relay's test tap) and searched for the secrets
//! and the picture that crossed it.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use client_core::known_hosts::MemoryPins;
use client_core::native::{self, RdpOptions, RelayTarget};
use client_core::{RdpCredentials, Scripted};
use common::*;

const RDP_USER: &str = "blind-test-user";
const RDP_PASSWORD: &str = "Rdp-Secret-4711";

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn the_relay_forwards_only_ciphertext() {
    let work = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();

    // The relay, in this process, with a tap on everything it forwards.
    let captured = Arc::new(Mutex::new(Vec::<u8>::new()));
    let relay_dir = work.path().join("relay");
    relay::init(&relay_dir, &["127.0.0.1".into()]).unwrap();
    let tap: relay::tap::Tap = {
        let captured = captured.clone();
        Arc::new(move |_, bytes: &[u8]| captured.lock().unwrap().extend_from_slice(bytes))
    };
    let relay_addr = rt.block_on(async {
        let relay = relay::Relay::bind(relay::RelayConfig {
            dir: relay_dir.clone(),
            listen: "127.0.0.1:0".parse().unwrap(),
            limits: relay::Limits::default(),
            tap: Some(tap),
            web_dir: None,
            web_cert: None,
        })
        .await
        .unwrap();
        let addr = relay.local_addr();
        tokio::spawn(relay.run());
        addr.to_string()
    });

    // Host and test desktop as processes; the host asks for TOTP.
    let (_desktop, desktop_addr) = test_desktop(RDP_USER, RDP_PASSWORD);
    let ca = relay_dir.join(relay::CA_FILE);
    let config = work.path().join("blind-pc.toml");
    let c = config.to_str().unwrap();
    init_host(
        &config,
        "blind-pc",
        &relay_addr,
        &ca,
        Some(&desktop_addr),
        &[],
    );
    set_host_password(&config, HOST_PASSWORD);
    let (code, out) = run("thin-host", &["otp", "totp", "--config", c]);
    assert_eq!(code, 0, "{out}");
    let secrets: serde_json::Value =
        serde_json::from_slice(&std::fs::read(config.with_extension("secrets.json")).unwrap())
            .unwrap();
    use base64::Engine as _;
    let totp_secret = base64::engine::general_purpose::STANDARD
        .decode(secrets["totp"]["secret"].as_str().unwrap())
        .unwrap();
    let mut host = Proc::start("thin-host", &["run", "--config", c]);
    host.wait_for("registered; waiting for sessions", Duration::from_secs(20));

    // A whole session: OTP, host password, RDP logon, the picture.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let otp = host::otp::totp_code(&totp_secret, now, 6);
    let rdp = RdpOptions {
        creds: RdpCredentials {
            user: RDP_USER.into(),
            password: RDP_PASSWORD.into(),
            domain: None,
        },
        size: (1024, 768),
        frame_timeout: Duration::from_secs(30),
        share: None,
    };
    let target = RelayTarget {
        addr: relay_addr.clone(),
        ca: ca.clone(),
        proxy: None,
    };
    rt.block_on(async {
        let mut answers = Scripted {
            otp: Some(otp.clone()),
            host_password: Some(HOST_PASSWORD.into()),
        };
        let (session, _) = native::connect_and_wait_frame(
            &target,
            "blind-pc",
            &rdp,
            &MemoryPins::default(),
            &mut answers,
        )
        .await
        .expect("the session runs");
        session.disconnect().await.unwrap();
    });
    drop(host);
    let captured = captured.lock().unwrap().clone();

    // The tap saw the session: at least the whole picture's worth of bytes.
    assert!(
        captured.len() > 100_000,
        "only {} bytes captured",
        captured.len()
    );

    // A piece of the picture exactly as the desktop encodes it.
    let tile = test_desktop::encoded_tile(1024, 768, 448, 320);
    let picture_piece = &tile[tile.len() / 2..tile.len() / 2 + 48];

    let secrets: Vec<(&str, Vec<u8>)> = vec![
        ("the one-time password", otp.clone().into_bytes()),
        ("the host password", HOST_PASSWORD.as_bytes().to_vec()),
        ("the host password (UTF-16)", utf16(HOST_PASSWORD)),
        ("the RDP user name", RDP_USER.as_bytes().to_vec()),
        ("the RDP user name (UTF-16)", utf16(RDP_USER)),
        ("the RDP password (UTF-16)", utf16(RDP_PASSWORD)),
        ("a piece of the desktop picture", picture_piece.to_vec()),
    ];
    for (what, needle) in &secrets {
        assert!(!contains(&captured, needle), "the relay saw {what}");
    }
}
