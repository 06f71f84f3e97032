//! A hostile client of our own protocol, for tests that play the attacker:
//! it speaks to the relay and the host with `proto` directly, from any
//! loopback source address, and does what a real client never would —
//! stops half-way, sends messages out of order, floods.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use proto::auth::{opaque, ClientMsg, HostMsg};
use proto::channel::Initiator;
use proto::pairing::{ClientPairing, PairingError, PairingEvent};
use proto::relay::ErrorCode;
use proto::ComputerId;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;
use transport::{FramedIo, Prefixed, SecureStream};

pub type Pipe = Prefixed<TlsStream<TcpStream>>;
pub type Channel = FramedIo<SecureStream<Pipe>>;

/// Where the attacker aims: a relay it trusts like a client does, and an ID.
#[derive(Clone)]
pub struct Target {
    pub relay: SocketAddr,
    pub tls: Arc<tokio_rustls::rustls::ClientConfig>,
    pub id: ComputerId,
}

impl Target {
    pub fn new(relay: &str, ca: &std::path::Path, id: &str) -> Self {
        Self {
            relay: relay.parse().expect("a socket address"),
            tls: transport::tls::pinned_client_config(ca).expect("the relay CA loads"),
            id: ComputerId::parse(id).unwrap(),
        }
    }
}

/// What stopped an attempt before the host's checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// The relay answered with an error.
    Relay(ErrorCode, String),
    /// The connection failed or closed without a word.
    Silent(String),
}

/// TCP from `source` (bound on loopback), TLS with the relay's CA.
pub async fn dial_from(target: &Target, source: IpAddr) -> Result<TlsStream<TcpStream>, Stopped> {
    let silent = |e: std::io::Error| Stopped::Silent(e.to_string());
    let socket = TcpSocket::new_v4().map_err(silent)?;
    socket.bind(SocketAddr::new(source, 0)).map_err(silent)?;
    let tcp = tokio::time::timeout(Duration::from_secs(10), socket.connect(target.relay))
        .await
        .map_err(|_| Stopped::Silent("connect timed out".into()))?
        .map_err(silent)?;
    tcp.set_nodelay(true).ok();
    transport::tls::connect(tcp, target.tls.clone(), &target.relay.to_string())
        .await
        .map_err(|e| Stopped::Silent(e.to_string()))
}

/// Asks the relay for the target's ID from `source`; the pipe to its host,
/// or what the relay said.
pub async fn pair_from(target: &Target, source: IpAddr) -> Result<Pipe, Stopped> {
    let mut tls = dial_from(target, source).await?;
    let (mut pairing, hello) = ClientPairing::start(&target.id);
    tls.write_all(&hello)
        .await
        .map_err(|e| Stopped::Silent(e.to_string()))?;
    let mut buf = [0u8; 1024];
    loop {
        let read = tokio::time::timeout(Duration::from_secs(30), tls.read(&mut buf)).await;
        let n = match read {
            Ok(Ok(0)) => return Err(Stopped::Silent("the relay closed the connection".into())),
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Err(Stopped::Silent(e.to_string())),
            Err(_) => return Err(Stopped::Silent("no answer from the relay".into())),
        };
        match pairing.receive(&buf[..n]) {
            Ok(events) => {
                for event in events {
                    if let PairingEvent::Paired { leftover } = event {
                        return Ok(Prefixed::new(leftover, tls));
                    }
                }
            }
            Err(PairingError::Refused { code, message }) => {
                return Err(Stopped::Relay(code, message))
            }
            Err(e) => return Err(Stopped::Silent(e.to_string())),
        }
    }
}

/// The end-to-end handshake, accepting whatever host key is shown, as a
/// device never seen before; the channel and its handshake hash (the
/// password exchange's context).
pub async fn secure(pipe: Pipe) -> anyhow::Result<(Channel, Vec<u8>)> {
    secure_as(pipe, &proto::channel::StaticKey::generate()?).await
}

/// [`secure`] as the device `device`.
pub async fn secure_as(
    pipe: Pipe,
    device: &proto::channel::StaticKey,
) -> anyhow::Result<(Channel, Vec<u8>)> {
    let mut conn = FramedIo::new(pipe);
    let (mut initiator, first) = Initiator::start_with(device)?;
    conn.write_all(&proto::encode_frame(&first)).await?;
    let answer = conn.read_frame().await?;
    initiator.read_answer(&answer)?;
    let (last, channel) = initiator.finish()?;
    conn.write_all(&proto::encode_frame(&last)).await?;
    let (stream, rest) = conn.into_parts();
    let stream = SecureStream::new(stream, rest, channel);
    let context = stream.handshake_hash().to_vec();
    Ok((FramedIo::new(stream), context))
}

pub async fn send(conn: &mut Channel, msg: &ClientMsg) -> anyhow::Result<()> {
    let json = serde_json::to_vec(msg)?;
    conn.write_all(&proto::encode_frame(&json)).await?;
    Ok(())
}

/// The host's next message; `None` if it hung up or said nothing for 30 s.
pub async fn recv(conn: &mut Channel) -> Option<HostMsg> {
    let frame = tokio::time::timeout(Duration::from_secs(30), conn.read_frame())
        .await
        .ok()?
        .ok()?;
    serde_json::from_slice(&frame).ok()
}

/// Sends an OPAQUE credential request for `guess` and, if a challenge comes
/// back, tests the guess offline as an attacker would: `Some(true)` if the
/// guess was the password, `Some(false)` if not, `None` if the host answered
/// with something else (`last` holds it).
pub async fn guess(
    conn: &mut Channel,
    context: &[u8],
    password: &str,
    last: &mut Option<HostMsg>,
) -> anyhow::Result<Option<(bool, Vec<u8>)>> {
    let (state, request) = opaque::client_start(password.as_bytes())?;
    send(conn, &ClientMsg::PasswordStart { request }).await?;
    match recv(conn).await {
        Some(HostMsg::PasswordChallenge { response }) => {
            match opaque::client_finish(state, password.as_bytes(), &response, context) {
                Ok(finalization) => Ok(Some((true, finalization))),
                Err(opaque::OpaqueError::WrongPassword) => Ok(Some((false, Vec::new()))),
                Err(e) => Err(e.into()),
            }
        }
        other => {
            *last = other;
            Ok(None)
        }
    }
}

/// A host's Ed25519 identity, made up for the test.
pub fn host_key() -> ring::signature::Ed25519KeyPair {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
}

pub type Control = FramedIo<TlsStream<TcpStream>>;

/// Registers `id` with `key` from `source` as a host does, presenting
/// `token` if given; the control connection, or what the relay said.
pub async fn register_from(
    target: &Target,
    source: IpAddr,
    id: &str,
    key: &ring::signature::Ed25519KeyPair,
    token: Option<&str>,
) -> Result<Control, Stopped> {
    use proto::relay::{self, FromRelay, ToRelay, PROTOCOL_VERSION};
    use ring::signature::KeyPair as _;
    let silent = |e: &dyn std::fmt::Display| Stopped::Silent(e.to_string());
    let mut conn = FramedIo::new(dial_from(target, source).await?);
    let id = ComputerId::parse(id).unwrap();
    let public_key = key.public_key().as_ref().to_vec();
    let hello = ToRelay::HostHello {
        version: PROTOCOL_VERSION,
        id: id.clone(),
        public_key: public_key.clone(),
        enrolment_token: token.map(str::to_owned),
    };
    conn.write_all(&relay::encode(&hello))
        .await
        .map_err(|e| silent(&e))?;
    let read = |frame: Result<Vec<u8>, transport::ReadFrameError>| -> Result<FromRelay, Stopped> {
        let frame = frame.map_err(|e| silent(&e))?;
        match relay::decode(&frame).map_err(|e| silent(&e))? {
            FromRelay::Error { code, message } => Err(Stopped::Relay(code, message)),
            other => Ok(other),
        }
    };
    let FromRelay::Challenge { nonce } = read(conn.read_frame().await)? else {
        return Err(Stopped::Silent("no challenge".into()));
    };
    let transcript = relay::registration_transcript(&nonce, &id, &public_key);
    let proof = ToRelay::HostProof {
        signature: key.sign(&transcript).as_ref().to_vec(),
    };
    conn.write_all(&relay::encode(&proof))
        .await
        .map_err(|e| silent(&e))?;
    match read(conn.read_frame().await)? {
        FromRelay::Registered => Ok(conn),
        other => Err(Stopped::Silent(format!("not registered: {other:?}"))),
    }
}

/// Sends a heartbeat on a control connection; whether the relay answered.
pub async fn ping(conn: &mut Control) -> bool {
    use proto::relay::{self, FromRelay, ToRelay};
    if conn
        .write_all(&relay::encode(&ToRelay::Ping))
        .await
        .is_err()
    {
        return false;
    }
    let frame = tokio::time::timeout(Duration::from_secs(10), conn.read_frame()).await;
    matches!(
        frame
            .ok()
            .and_then(|f| f.ok())
            .map(|f| relay::decode::<FromRelay>(&f)),
        Some(Ok(FromRelay::Pong))
    )
}

/// Logs on from `source` with the host password `password` (no one-time
/// password asked); whether the host admitted the session.
pub async fn log_on(target: &Target, source: IpAddr, password: &str) -> bool {
    let Ok(pipe) = pair_from(target, source).await else {
        return false;
    };
    let Ok((mut conn, context)) = secure(pipe).await else {
        return false;
    };
    if send(
        &mut conn,
        &ClientMsg::Hello {
            macs: vec![],
            resume: None,
        },
    )
    .await
    .is_err()
        || recv(&mut conn).await != Some(HostMsg::PasswordRequired)
    {
        return false;
    }
    let mut last = None;
    let Ok(Some((true, finalization))) = guess(&mut conn, &context, password, &mut last).await
    else {
        return false;
    };
    if send(&mut conn, &ClientMsg::PasswordFinish { finalization })
        .await
        .is_err()
    {
        return false;
    }
    matches!(recv(&mut conn).await, Some(HostMsg::Welcome { .. }))
}
