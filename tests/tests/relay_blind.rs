//! The relay learns nothing it could use. Passively: every byte it forwards
//! after pairing, each direction kept whole, for a native client and for a
//! browser's WebSocket, is searched for the secrets and the picture that
//! crossed it. Actively: a relay that answers the end-to-end handshake with
//! a key of its own (it holds the relay's certificate, as its operator or a
//! thief would) is refused before the client sends any secret.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use client_core::known_hosts::MemoryPins;
use client_core::native::{self, RdpOptions, RelayTarget};
use client_core::{ConnectError, RdpCredentials, Scripted};
use common::*;
use relay::tap::Direction;

const RDP_USER: &str = "blind-test-user";
const RDP_PASSWORD: &str = "Rdp-Secret-4711";

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// What the relay forwarded, per direction, each kept as one stream so that
/// a secret split across reads is still found.
#[derive(Default)]
struct Captured {
    to_host: Vec<u8>,
    to_client: Vec<u8>,
}

fn rdp_options() -> RdpOptions {
    RdpOptions {
        creds: RdpCredentials {
            user: RDP_USER.into(),
            password: RDP_PASSWORD.into(),
            domain: None,
        },
        screens: (1024, 768).into(),
        frame_timeout: Duration::from_secs(30),
        share: None,
    }
}

/// A relay in this process with a tap, and a host asking for TOTP.
struct World {
    _work: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    relay_dir: std::path::PathBuf,
    relay_addr: String,
    captured: Arc<Mutex<Captured>>,
    totp_secret: Vec<u8>,
    _desktop: Proc,
    _host: Proc,
}

impl World {
    fn start(id: &str) -> Self {
        let work = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let captured = Arc::new(Mutex::new(Captured::default()));
        let relay_dir = work.path().join("relay");
        relay::init(&relay_dir, &["127.0.0.1".into()]).unwrap();
        let tap: relay::tap::Tap = {
            let captured = captured.clone();
            Arc::new(move |direction, bytes: &[u8]| {
                let mut captured = captured.lock().unwrap();
                match direction {
                    Direction::ClientToHost => captured.to_host.extend_from_slice(bytes),
                    Direction::HostToClient => captured.to_client.extend_from_slice(bytes),
                }
            })
        };
        let relay_addr = rt.block_on(async {
            let relay = relay::Relay::bind(relay::RelayConfig {
                tap: Some(tap),
                ..relay::RelayConfig::new(relay_dir.clone(), "127.0.0.1:0".parse().unwrap())
            })
            .await
            .unwrap();
            let addr = relay.local_addr();
            tokio::spawn(relay.run());
            addr.to_string()
        });

        let (desktop, desktop_addr) = test_desktop(RDP_USER, RDP_PASSWORD);
        let ca = relay_dir.join(relay::CA_FILE);
        let config = work.path().join(format!("{id}.toml"));
        let c = config.to_str().unwrap();
        init_host(&config, id, &relay_addr, &ca, Some(&desktop_addr), &[]);
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
        Self {
            _work: work,
            rt,
            relay_dir,
            relay_addr,
            captured,
            totp_secret,
            _desktop: desktop,
            _host: host,
        }
    }

    fn target(&self) -> RelayTarget {
        RelayTarget {
            addr: self.relay_addr.clone(),
            ca: self.relay_dir.join(relay::CA_FILE),
            proxy: None,
        }
    }

    /// The authenticator code `steps` steps from now (each is used once).
    fn otp(&self, steps: u64) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let at = now + steps * host::otp::STEP_SECS;
        host::otp::totp_code(&self.totp_secret, at, host::otp::DIGITS)
    }

    /// Everything a relay operator must not learn from these sessions.
    fn secrets(&self, otps: &[String]) -> Vec<(String, Vec<u8>)> {
        let tile = test_desktop::encoded_tile(1024, 768, 448, 320);
        let picture_piece = tile[tile.len() / 2..tile.len() / 2 + 48].to_vec();
        let mut secrets = vec![
            (
                "the host password".into(),
                HOST_PASSWORD.as_bytes().to_vec(),
            ),
            ("the host password (UTF-16)".into(), utf16(HOST_PASSWORD)),
            ("the RDP user name".into(), RDP_USER.as_bytes().to_vec()),
            ("the RDP user name (UTF-16)".into(), utf16(RDP_USER)),
            ("the RDP password".into(), RDP_PASSWORD.as_bytes().to_vec()),
            ("the RDP password (UTF-16)".into(), utf16(RDP_PASSWORD)),
            ("a piece of the desktop picture".into(), picture_piece),
        ];
        for otp in otps {
            secrets.push((
                format!("the one-time password {otp}"),
                otp.clone().into_bytes(),
            ));
        }
        secrets
    }
}

#[test]
fn the_relay_forwards_only_ciphertext_for_native_and_browser_clients() {
    let world = World::start("blind-pc");
    let pins = MemoryPins::default();

    // A whole session from the native client: OTP, host password, RDP
    // logon, the picture.
    let native_otp = world.otp(0);
    world.rt.block_on(async {
        let mut answers = Scripted {
            otp: Some(native_otp.clone()),
            host_password: Some(HOST_PASSWORD.into()),
        };
        let (mut session, _) = native::connect_and_wait_frame(
            &world.target(),
            "blind-pc",
            &rdp_options(),
            &pins,
            &mut answers,
        )
        .await
        .expect("the native session runs");
        session.disconnect().await.unwrap();
    });
    let native = std::mem::take(&mut *world.captured.lock().unwrap());

    // The same through the WebSocket a browser uses, with the next code.
    let web_otp = world.otp(1);
    world.rt.block_on(async {
        let mut config =
            (*transport::tls::pinned_client_config(&world.target().ca).unwrap()).clone();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let tcp = tokio::net::TcpStream::connect(&world.relay_addr)
            .await
            .unwrap();
        let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .unwrap();
        let url = format!("wss://{}/ws", world.relay_addr);
        let (ws, _) = tokio_tungstenite::client_async(url, tls).await.unwrap();
        let stream = relay::web::WsBytes::new(ws);
        let mut answers = Scripted {
            otp: Some(web_otp.clone()),
            host_password: Some(HOST_PASSWORD.into()),
        };
        let id = proto::ComputerId::parse("blind-pc").unwrap();
        let pipe = client_core::pairing::pair(stream, &id, &mut answers)
            .await
            .unwrap();
        let channel =
            client_core::secure::secure(pipe, "blind-pc", "blind-pc@web", &pins, &mut answers)
                .await
                .unwrap();
        let mut conn = transport::FramedIo::new(channel);
        let resumption = client_core::auth::Resumption::default();
        let admission =
            client_core::auth::authenticate(&mut conn, Vec::new(), &mut answers, &resumption)
                .await
                .expect("admitted over the WebSocket");
        let rdp = rdp_options();
        let channels = client_core::rdp::Channels::allowed(&admission, None, None);
        let mut session =
            client_core::rdp::connect(conn, &rdp.creds, &rdp.screens, channels, &mut answers)
                .await
                .expect("the RDP session runs over the WebSocket");
        native::wait_first_frame(&mut session, rdp.frame_timeout)
            .await
            .unwrap();
        session.disconnect().await.unwrap();
    });
    let web = std::mem::take(&mut *world.captured.lock().unwrap());

    let secrets = world.secrets(&[native_otp, web_otp]);
    for (path, captured) in [("native", &native), ("WebSocket", &web)] {
        // Each direction carried the session: at least the picture's worth
        // one way, the logon and input the other.
        assert!(
            captured.to_client.len() > 100_000,
            "{path}: only {} bytes to the client",
            captured.to_client.len()
        );
        assert!(
            captured.to_host.len() > 1_000,
            "{path}: {} bytes to the host",
            captured.to_host.len()
        );
        for (what, needle) in &secrets {
            assert!(
                !contains(&captured.to_host, needle),
                "{path}: the relay saw {what} on its way to the host"
            );
            assert!(
                !contains(&captured.to_client, needle),
                "{path}: the relay saw {what} on its way to the client"
            );
        }
    }
}

/// A relay gone bad: it holds the relay's certificate and key, pairs the
/// client with itself and answers the end-to-end handshake with its own
/// key. Returns what the client sent after the relay's answer.
async fn impostor_relay(relay_dir: &std::path::Path) -> (String, tokio::task::JoinHandle<Vec<u8>>) {
    use proto::relay::{self as msgs, FromRelay};
    let tls = transport::tls::relay_server_config(
        &relay_dir.join(relay::CERT_FILE),
        &relay_dir.join(relay::KEY_FILE),
        None,
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let tls = tokio_rustls::TlsAcceptor::from(tls)
            .accept(tcp)
            .await
            .unwrap();
        let mut conn = transport::FramedIo::new(tls);
        let _hello = conn.read_frame().await.unwrap();
        conn.write_all(&msgs::encode(&FromRelay::HostNotified))
            .await
            .unwrap();
        conn.write_all(&msgs::encode(&FromRelay::Paired))
            .await
            .unwrap();
        let first = conn.read_frame().await.unwrap();
        let own_key = proto::channel::StaticKey::generate().unwrap();
        let (_responder, answer) = proto::channel::Responder::answer(&own_key, &first).unwrap();
        conn.write_all(&proto::encode_frame(&answer)).await.unwrap();
        // Whatever the client sends now would be its secrets.
        let mut after = Vec::new();
        while let Ok(Ok(frame)) =
            tokio::time::timeout(Duration::from_secs(10), conn.read_frame()).await
        {
            after.extend_from_slice(&frame);
        }
        after
    });
    (addr, task)
}

#[test]
fn a_relay_that_answers_with_its_own_key_is_refused_and_learns_no_secret() {
    let world = World::start("guarded-pc");
    let pins = MemoryPins::default();
    let otp = world.otp(0);
    let mut answers = Scripted {
        otp: Some(otp.clone()),
        host_password: Some(HOST_PASSWORD.into()),
    };
    // First the real host, through the real relay: its key is pinned.
    world.rt.block_on(async {
        let (mut session, _) = native::connect_and_wait_frame(
            &world.target(),
            "guarded-pc",
            &rdp_options(),
            &pins,
            &mut answers,
        )
        .await
        .expect("the first session runs");
        session.disconnect().await.unwrap();
    });

    // Then the impostor, at another address with the same certificate: the
    // pin is the relay CA's, so the address does not matter.
    let next_otp = world.otp(1);
    let mut answers = Scripted {
        otp: Some(next_otp.clone()),
        host_password: Some(HOST_PASSWORD.into()),
    };
    let (result, after) = world.rt.block_on(async {
        let (addr, impostor) = impostor_relay(&world.relay_dir).await;
        let target = RelayTarget {
            addr,
            ..world.target()
        };
        let result = native::connect_and_wait_frame(
            &target,
            "guarded-pc",
            &rdp_options(),
            &pins,
            &mut answers,
        )
        .await
        .map(|_| ());
        (result, impostor.await.unwrap())
    });
    let Err(ConnectError::HostKeyChanged { id, .. }) = result else {
        panic!("the impostor was not refused: {result:?}");
    };
    assert_eq!(id, "guarded-pc");
    assert!(
        after.is_empty(),
        "the client sent {} bytes to the impostor",
        after.len()
    );
    for (what, needle) in world.secrets(&[otp, next_otp]) {
        assert!(!contains(&after, &needle), "the impostor learned {what}");
    }
}
