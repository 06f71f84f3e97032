//! The host's life: register with the relay, answer session notices, and
//! reconnect with back-off after any drop, forever.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proto::channel::{Responder, StaticKey};
use proto::rate::Tally;
use proto::relay::{self, ErrorCode, FromRelay, ToRelay, PROTOCOL_VERSION};
use proto::session::{SessionMode, SessionReply, SessionRequest};
use ring::signature::Ed25519KeyPair;
use rustls::ClientConfig;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_rustls::client::TlsStream;
use tracing::{info, warn};
use transport::dial::{DialError, Proxy};
use transport::{FramedIo, SecureStream};

use crate::config::{public_key, HostConfig};
use crate::gate::Gate;
use crate::local::{LiveState, SessionCount};
use crate::lockout::{Clock, SystemClock};
use crate::rdp;
use crate::secrets::Secrets;

const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// The relay must confirm a session's data connection within this.
const PAIRING_TIMEOUT: Duration = Duration::from_secs(10);
/// A client must start the end-to-end handshake within this once paired;
/// it finishes it once its user accepted this PC's key, which may take a
/// person's time ([`crate::gate::ANSWER_TIMEOUT`]).
const FIRST_MESSAGE_TIMEOUT: Duration = Duration::from_secs(5);
/// Sessions served at once before their client is admitted, all together
/// and from one source (an IPv4 address, an IPv6 /64). Each holds a data
/// connection and a task; beyond these the host declines at once. Steps
/// that wait for a person are paid for by lockout attempts — except the
/// check of a new host key, which holds a place for at most 5 minutes —
/// and the others end within seconds; and the
/// last [`KEPT_FOR_KNOWN`] are only for addresses the host admitted before,
/// so that a flood from elsewhere does not keep the owner at home out.
pub const MAX_UNADMITTED: usize = 64;
pub const MAX_UNADMITTED_PER_SOURCE: usize = 8;
pub const KEPT_FOR_KNOWN: usize = 16;

/// Errors that retrying cannot fix; `run` returns them.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Setup(#[from] anyhow::Error),
}

struct Ctx {
    config: HostConfig,
    key: Ed25519KeyPair,
    e2e_key: StaticKey,
    gate: Gate,
    tls: Arc<ClientConfig>,
    proxy: Option<Proxy>,
    unadmitted: Arc<Mutex<Unadmitted>>,
    /// Pinned keys of TLS-only RDP servers ([`crate::server_keys`]).
    rdp_keys: std::path::PathBuf,
    /// What the settings app is told (`crate::local`).
    live: LiveState,
}

/// Sessions not yet admitted, by source.
type Unadmitted = Tally<IpAddr>;

/// Room for one session until its client is admitted (or it ends).
struct UnadmittedSlot {
    counts: Arc<Mutex<Unadmitted>>,
    source: IpAddr,
}

impl UnadmittedSlot {
    /// A place for a session from `source`, if there is one; `known`: the
    /// host admitted this address before.
    fn take(counts: &Arc<Mutex<Unadmitted>>, source: IpAddr, known: bool) -> Option<Self> {
        let source = proto::rate::source_key(source);
        let mut all = counts.lock().expect("not poisoned");
        let room = if known {
            MAX_UNADMITTED
        } else {
            MAX_UNADMITTED - KEPT_FOR_KNOWN
        };
        if all.total() >= room || !all.take(&source, MAX_UNADMITTED_PER_SOURCE) {
            return None;
        }
        Some(Self {
            counts: counts.clone(),
            source,
        })
    }
}

impl Drop for UnadmittedSlot {
    fn drop(&mut self) {
        self.counts
            .lock()
            .expect("not poisoned")
            .release(&self.source);
    }
}

/// A session the host will not serve, and what its client is told.
type Decline = (Vec<u8>, String);

/// How a host runs besides its config (tests and the demo adjust these).
pub struct RunOptions {
    /// Told whether the host is registered with the relay.
    pub online: Option<watch::Sender<bool>>,
    /// Time for OTP validity and lockouts.
    pub clock: Arc<dyn Clock>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            online: None,
            clock: Arc::new(SystemClock),
        }
    }
}

/// Runs the host until a fatal refusal (e.g. its ID belongs to another host).
pub async fn run(config_path: &Path) -> Result<(), RunError> {
    run_with(config_path, RunOptions::default()).await
}

/// Like [`run`], with [`RunOptions`].
pub async fn run_with(config_path: &Path, options: RunOptions) -> Result<(), RunError> {
    let online = options.online;
    let config = HostConfig::load(config_path)?;
    let gate = Gate::new(config_path, options.clock);
    let secrets = Secrets::load(&HostConfig::secrets_path(config_path))?;
    if secrets.password_file.is_none() {
        warn!(
            "no host password is set: every session is refused until you run \
             `thin-host set-password --config {}`",
            config_path.display()
        );
    }
    let key = config.load_key(config_path)?;
    let e2e_key = config.load_e2e_key(config_path)?;
    let tls =
        transport::tls::pinned_client_config(&config.relay_ca).map_err(anyhow::Error::from)?;
    let proxy = config
        .proxy
        .as_deref()
        .map(Proxy::parse)
        .transpose()
        .map_err(anyhow::Error::from)?;
    let ctx = Arc::new(Ctx {
        config,
        key,
        e2e_key,
        gate,
        tls,
        proxy,
        unadmitted: Arc::default(),
        rdp_keys: HostConfig::rdp_keys_path(config_path),
        live: LiveState::default(),
    });
    // The settings app's channel; the host serves sessions without it.
    #[cfg(unix)]
    {
        let (path, live) = (config_path.to_owned(), ctx.live.clone());
        tokio::spawn(async move {
            if let Err(e) = crate::local::serve(path, live).await {
                warn!("{e:#}; the settings app can only change the files while the host runs");
            }
        });
    }

    let mut backoff = Duration::from_secs(1);
    loop {
        let result = control(&ctx, online.as_ref()).await;
        if let Some(online) = &online {
            online.send_replace(false);
        }
        let problem = match &result {
            Ok(()) => "the relay connection ended; connecting again".to_owned(),
            Err(ControlError::Fatal(msg) | ControlError::Retry(msg)) => msg.clone(),
        };
        {
            let mut live = ctx.live.lock().expect("not poisoned");
            // Offline since the first failure, not the latest retry.
            if live.online || live.since.is_none() {
                live.since = Some(std::time::SystemTime::now());
            }
            live.online = false;
            live.problem = Some(problem);
        }
        match result {
            Ok(()) => backoff = Duration::from_secs(1),
            Err(ControlError::Fatal(msg)) => return Err(RunError::Refused(msg)),
            Err(ControlError::Retry(msg)) => warn!(error = %msg, "relay connection lost"),
        }
        info!(secs = backoff.as_secs(), "reconnecting to the relay");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

enum ControlError {
    Fatal(String),
    Retry(String),
}

/// Why the relay could not be dialled.
struct DialFailure {
    message: String,
    /// The host ran out of file descriptors or memory.
    exhausted: bool,
}

/// Dials one of the relay's nodes, `prefer` first when given (and the
/// configured ones if its TLS fails); returns the connection and the
/// node's address.
async fn dial_relay(
    ctx: &Ctx,
    prefer: Option<&str>,
) -> Result<(FramedIo<TlsStream<TcpStream>>, String), DialFailure> {
    let mut failure = None;
    for prefer in [prefer, None] {
        let dialled =
            transport::dial::dial_any(&ctx.config.relay, prefer, ctx.proxy.as_ref(), DIAL_TIMEOUT)
                .await;
        let (tcp, addr) = dialled.map_err(|e| DialFailure {
            exhausted: matches!(&e, DialError::Unreachable { source, .. }
                if crate::gate::is_resource_exhaustion(source)),
            message: e.to_string(),
        })?;
        match transport::tls::connect(tcp, ctx.tls.clone(), &addr).await {
            Ok(tls) => return Ok((FramedIo::new(tls), addr)),
            Err(e) => failure = Some(e),
        }
        if prefer.is_none() {
            break;
        }
    }
    Err(DialFailure {
        message: failure.map(|e| e.to_string()).unwrap_or_default(),
        exhausted: false,
    })
}

async fn read_from_relay(conn: &mut FramedIo<TlsStream<TcpStream>>) -> Result<FromRelay, String> {
    let frame = conn.read_frame().await.map_err(|e| format!("relay: {e}"))?;
    relay::decode(&frame).map_err(|e| format!("relay: {e}"))
}

/// One control connection: register, then serve until it drops. Returns
/// Ok after a registered connection ends (so back-off restarts small).
async fn control(ctx: &Arc<Ctx>, online: Option<&watch::Sender<bool>>) -> Result<(), ControlError> {
    let (mut conn, node) = dial_relay(ctx, None)
        .await
        .map_err(|e| ControlError::Retry(e.message))?;
    let hello = ToRelay::HostHello {
        version: PROTOCOL_VERSION,
        id: ctx.config.id.clone(),
        public_key: public_key(&ctx.key),
        enrolment_token: ctx.config.enrolment_token.clone(),
    };
    let io = |e: std::io::Error| ControlError::Retry(e.to_string());
    conn.write_all(&relay::encode(&hello)).await.map_err(io)?;
    let nonce = match read_from_relay(&mut conn)
        .await
        .map_err(ControlError::Retry)?
    {
        FromRelay::Challenge { nonce } => nonce,
        other => return Err(refusal(other)),
    };
    let transcript = relay::registration_transcript(&nonce, &ctx.config.id, &public_key(&ctx.key));
    let proof = ToRelay::HostProof {
        signature: ctx.key.sign(&transcript).as_ref().to_vec(),
    };
    conn.write_all(&relay::encode(&proof)).await.map_err(io)?;
    match read_from_relay(&mut conn)
        .await
        .map_err(ControlError::Retry)?
    {
        FromRelay::Registered => {}
        other => return Err(refusal(other)),
    }
    info!(id = %ctx.config.id, relay = %node, "registered; waiting for sessions");
    // A node may name itself for data connections only with a name its
    // certificate covers: a relay cannot so send the PC anywhere else.
    let names = transport::tls::peer_names(conn.get_ref());
    if let Some(online) = online {
        online.send_replace(true);
    }
    {
        let mut live = ctx.live.lock().expect("not poisoned");
        live.online = true;
        live.node = Some(node.clone());
        live.since = Some(std::time::SystemTime::now());
        live.problem = None;
    }

    let beat = Duration::from_secs(ctx.config.heartbeat_secs.max(1));
    let mut ticker = tokio::time::interval(beat);
    let mut missed = 0u32;
    // Sessions that cannot be served say so on this connection.
    let (decline_tx, mut declines) = mpsc::channel::<Decline>(MAX_UNADMITTED);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                // Three heartbeats without an answer: the link is dead.
                if missed >= 3 {
                    warn!("relay stopped answering heartbeats");
                    return Ok(());
                }
                missed += 1;
                if conn.write_all(&relay::encode(&ToRelay::Ping)).await.is_err() {
                    return Ok(());
                }
            }
            Some((session, message)) = declines.recv() => {
                let decline = ToRelay::HostDecline { session, message };
                if conn.write_all(&relay::encode(&decline)).await.is_err() {
                    return Ok(());
                }
            }
            msg = read_from_relay(&mut conn) => match msg {
                Ok(FromRelay::Pong) => missed = 0,
                Ok(FromRelay::Incoming { session, client_addr, node: own }) => {
                    info!(%client_addr, "session requested");
                    let Ok(source) = client_addr.parse::<SocketAddr>().map(|a| a.ip()) else {
                        warn!(%client_addr, "the relay sent a bad client address");
                        continue;
                    };
                    let known = ctx.gate.knows_address(source);
                    let Some(slot) = UnadmittedSlot::take(&ctx.unadmitted, source, known) else {
                        warn!(%client_addr, "declined: too many connection attempts waiting");
                        let message = "the office PC is already answering too many connection \
                                       attempts; try again in a minute";
                        let decline = ToRelay::HostDecline { session, message: message.into() };
                        if conn.write_all(&relay::encode(&decline)).await.is_err() {
                            return Ok(());
                        }
                        continue;
                    };
                    let ctx = ctx.clone();
                    let decline_tx = decline_tx.clone();
                    // A node behind one name for all says where it is
                    // itself; the data connection goes straight there (the
                    // relay's certificate must still prove it).
                    let host = |addr: &str| transport::tls::host_of(addr).to_owned();
                    let node = own
                        .filter(|own| transport::dial::is_relay_addr(own))
                        .filter(|own| names.iter().any(|n| n.eq_ignore_ascii_case(&host(own))))
                        .unwrap_or_else(|| node.clone());
                    tokio::spawn(async move {
                        let result =
                            serve_session(&ctx, &node, session, source, slot, &decline_tx).await;
                        if let Err(e) = result {
                            warn!(%client_addr, error = %e, "session failed");
                        }
                    });
                }
                // A relay node that stops, or lets this PC go.
                Ok(FromRelay::Error { message, .. }) => {
                    info!(%message, "the relay ended the connection; connecting again");
                    return Ok(());
                }
                Ok(other) => {
                    warn!(?other, "unexpected message from the relay");
                    return Ok(());
                }
                Err(e) => {
                    warn!(error = %e, "relay connection closed");
                    return Ok(());
                }
            }
        }
    }
}

fn refusal(msg: FromRelay) -> ControlError {
    match msg {
        FromRelay::Error {
            code:
                ErrorCode::IdTaken
                | ErrorCode::BadProof
                | ErrorCode::UnsupportedVersion
                | ErrorCode::EnrolmentRequired,
            message,
        } => ControlError::Fatal(format!("the relay refused this host: {message}")),
        FromRelay::Error { message, .. } => ControlError::Retry(format!("relay: {message}")),
        other => ControlError::Retry(format!("unexpected message from the relay: {other:?}")),
    }
}

/// Opens the data connection for one session and serves it; `slot` is held
/// until the client is admitted. The connection goes to `node`, the relay
/// node that announced the session, so it is paired there without a hop
/// between nodes (another node would hand it on).
async fn serve_session(
    ctx: &Ctx,
    node: &str,
    session: Vec<u8>,
    source: IpAddr,
    slot: UnadmittedSlot,
    declines: &mpsc::Sender<Decline>,
) -> Result<(), String> {
    let mut conn = match dial_relay(ctx, Some(node)).await {
        Ok((conn, _)) => conn,
        Err(e) => {
            // Tell the waiting client now rather than let it time out.
            let message = if e.exhausted {
                "the office PC is out of resources for new connections right now; try again in \
                 a minute"
            } else {
                "the office PC could not open a connection for this session; try again"
            };
            let _ = declines.try_send((session, message.into()));
            return Err(e.message);
        }
    };
    let accept = ToRelay::HostAccept {
        id: ctx.config.id.clone(),
        session: session.clone(),
    };
    let paired = async {
        conn.write_all(&relay::encode(&accept))
            .await
            .map_err(|e| e.to_string())?;
        let paired = tokio::time::timeout(PAIRING_TIMEOUT, read_from_relay(&mut conn))
            .await
            .map_err(|_| "the relay did not confirm the session in time".to_owned())?;
        match paired? {
            FromRelay::Paired => Ok(()),
            FromRelay::Error { message, .. } => Err(message),
            other => Err(format!("unexpected {other:?}")),
        }
    };
    if let Err(e) = paired.await {
        // The client is still waiting at the relay: tell it now, over the
        // control connection, rather than let it time out.
        let message = "the relay could not connect this session to the office PC right now; \
                       try again in a minute";
        let _ = declines.try_send((session, message.into()));
        return Err(e);
    }

    // Everything after pairing belongs to client and host: first the
    // end-to-end channel, then (inside it) the session.
    let mut conn = secure(conn, &ctx.e2e_key).await?;
    let context = conn.get_ref().handshake_hash().to_vec();
    let device = conn.get_ref().peer_key().to_vec();
    let admitted = ctx.gate.admit(&mut conn, source, &device, &context).await?;
    drop(slot);
    let _running = SessionCount::start(&ctx.live);
    let client_addr = source;
    info!(%client_addr, share = admitted.share_allowed, "client admitted");
    let result = serve_admitted(admitted.config(), conn, client_addr, &ctx.rdp_keys).await;
    ctx.gate.session_ended(admitted);
    info!(%client_addr, "session closed");
    result
}

/// Serves an admitted session under the policy in `config`: the client
/// says how, then its RDP flows.
async fn serve_admitted<S>(
    config: &HostConfig,
    mut conn: FramedIo<SecureStream<S>>,
    client_addr: IpAddr,
    rdp_keys: &Path,
) -> Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let frame = conn.read_frame().await.map_err(|e| e.to_string())?;
    let request: SessionRequest = relay::decode(&frame).map_err(|e| e.to_string())?;
    let SessionRequest::Open { mode } = request;
    let target = &config.target;
    info!(%client_addr, ?mode, %target, "serving session");
    match mode {
        SessionMode::Raw if !config.raw => {
            let reason = "this PC does not allow raw mode (any RDP client through a local \
                          port), because its policy cannot be enforced inside it; connect with \
                          the thin app, or ask its owner to allow it (thin-host policy --raw on)"
                .to_owned();
            reply(
                &mut conn,
                &SessionReply::Refused {
                    reason: reason.clone(),
                },
            )
            .await?;
            Err(reason)
        }
        SessionMode::Raw => rdp::serve_raw(conn, target, config.client_silence_beats()).await,
        SessionMode::Rdp => {
            let forbidden =
                proto::channels::Forbidden::by_policy(config.share, config.clipboard, config.audio);
            let silence = config.client_silence_beats();
            rdp::serve_clean_path(
                conn,
                target,
                &forbidden,
                config.require_nla,
                rdp_keys,
                silence,
            )
            .await
        }
    }
}

/// Runs the responder side of the Noise handshake over the paired pipe.
async fn secure<S>(
    mut conn: FramedIo<S>,
    key: &StaticKey,
) -> Result<FramedIo<SecureStream<S>>, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let read = |e: transport::ReadFrameError| format!("end-to-end handshake: {e}");
    let first = tokio::time::timeout(FIRST_MESSAGE_TIMEOUT, conn.read_frame())
        .await
        .map_err(|_| "the client did not start the end-to-end handshake in time".to_owned())?
        .map_err(read)?;
    let (responder, answer) = Responder::answer(key, &first).map_err(|e| e.to_string())?;
    conn.write_all(&proto::encode_frame(&answer))
        .await
        .map_err(|e| e.to_string())?;
    // The client shows a new host key's fingerprint to its user before it
    // answers: a person's time, not a machine's.
    let last = tokio::time::timeout(crate::gate::ANSWER_TIMEOUT, conn.read_frame())
        .await
        .map_err(|_| {
            format!(
                "the client did not confirm this PC's key within {} minutes",
                crate::gate::ANSWER_TIMEOUT.as_secs() / 60
            )
        })?
        .map_err(read)?;
    let channel = responder.finish(&last).map_err(|e| e.to_string())?;
    let (stream, rest) = conn.into_parts();
    Ok(FramedIo::new(SecureStream::new(stream, rest, channel)))
}

pub(crate) async fn reply<S>(conn: &mut FramedIo<S>, reply: &SessionReply) -> Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    conn.write_all(&relay::encode(reply))
        .await
        .map_err(|e| e.to_string())
}
