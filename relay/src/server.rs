//! The relay's accept loop, the three connection roles and the splice.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use proto::relay::{self, ErrorCode, FromRelay, ToRelay, PROTOCOL_VERSION, TOKEN_LEN};
use proto::{ComputerId, FrameError};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{UnparsedPublicKey, ED25519};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};
use transport::{FramedIo, Prefixed, ReadFrameError};

use crate::registry::{Claim, Notice, OnlineHost, Registry};
use crate::tap::{Direction, Tap, Tapped};
use crate::{CERT_FILE, KEY_FILE};

/// Bounds that keep one misbehaving peer from costing the relay much.
#[derive(Debug, Clone)]
pub struct Limits {
    /// TLS handshake plus the first message.
    pub handshake_timeout: Duration,
    /// A host that sends nothing for this long is marked offline.
    pub heartbeat_timeout: Duration,
    /// How long a client waits for its host to open the data connection.
    pub pairing_timeout: Duration,
    /// Simultaneous connections from one source address.
    pub max_conns_per_ip: usize,
    /// Bytes buffered per direction while splicing.
    pub splice_buffer: usize,
    /// Session notices queued for one host before clients are told to retry.
    pub pending_per_host: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            heartbeat_timeout: Duration::from_secs(45),
            pairing_timeout: Duration::from_secs(15),
            max_conns_per_ip: 64,
            splice_buffer: 64 * 1024,
            pending_per_host: 8,
        }
    }
}

#[derive(Clone)]
pub struct RelayConfig {
    pub dir: PathBuf,
    pub listen: SocketAddr,
    pub limits: Limits,
    /// The web client's files, served to browsers on the same port.
    pub web_dir: Option<PathBuf>,
    /// A publicly trusted certificate and key for browsers (native peers
    /// keep the relay's own, which they pin).
    pub web_cert: Option<(PathBuf, PathBuf)>,
    /// Observer of forwarded bytes (tests only; see [`crate::tap`]).
    pub tap: Option<Tap>,
}

/// Any byte stream to a peer: TLS directly, or a WebSocket inside TLS.
pub(crate) trait PeerStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> PeerStream for T {}
type Stream = Box<dyn PeerStream>;

/// A data connection handed from the host's task to the waiting client's.
type DataConn = (Stream, Vec<u8>);

struct Shared {
    limits: Limits,
    tap: Option<Tap>,
    web_dir: Option<PathBuf>,
    registry: Mutex<Registry>,
    pending: Mutex<HashMap<Vec<u8>, PendingSession>>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    next_conn: AtomicU64,
    rng: SystemRandom,
}

struct PendingSession {
    id: ComputerId,
    deliver: oneshot::Sender<DataConn>,
}

/// A bound relay, ready to [`run`](Relay::run).
pub struct Relay {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
}

impl Relay {
    /// Loads the relay's certificate and registry and binds the listen address.
    pub async fn bind(config: RelayConfig) -> anyhow::Result<Self> {
        let tls = transport::tls::relay_server_config(
            &config.dir.join(CERT_FILE),
            &config.dir.join(KEY_FILE),
            config
                .web_cert
                .as_ref()
                .map(|(c, k)| (c.as_path(), k.as_path())),
        )
        .with_context(|| {
            format!(
                "cannot load the relay certificate from {} (run `thin-relay init --dir {}` first)",
                config.dir.display(),
                config.dir.display()
            )
        })?;
        let registry = Registry::load(&config.dir)?;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        Ok(Self {
            listener,
            acceptor: TlsAcceptor::from(tls),
            shared: Arc::new(Shared {
                limits: config.limits,
                tap: config.tap,
                web_dir: config.web_dir,
                registry: Mutex::new(registry),
                pending: Mutex::new(HashMap::new()),
                per_ip: Mutex::new(HashMap::new()),
                next_conn: AtomicU64::new(1),
                rng: SystemRandom::new(),
            }),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    /// Accepts connections until the task is dropped.
    pub async fn run(self) -> anyhow::Result<()> {
        info!(addr = %self.local_addr(), "relay listening");
        loop {
            let (tcp, peer) = match self.listener.accept().await {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off briefly.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Some(slot) = IpSlot::take(&self.shared, peer.ip()) else {
                warn!(%peer, "too many connections from this address; dropped");
                continue;
            };
            let shared = self.shared.clone();
            let acceptor = self.acceptor.clone();
            tokio::spawn(async move {
                let _slot = slot;
                tcp.set_nodelay(true).ok();
                if let Err(e) = handle(shared, acceptor, tcp, peer).await {
                    debug!(%peer, error = %e, "connection ended with error");
                }
            });
        }
    }
}

/// Counts a connection against its source address; released on drop.
struct IpSlot {
    shared: Arc<Shared>,
    ip: IpAddr,
}

impl IpSlot {
    fn take(shared: &Arc<Shared>, ip: IpAddr) -> Option<Self> {
        let mut per_ip = shared.per_ip.lock().unwrap();
        let count = per_ip.entry(ip).or_insert(0);
        if *count >= shared.limits.max_conns_per_ip {
            return None;
        }
        *count += 1;
        Some(Self {
            shared: shared.clone(),
            ip,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut per_ip = self.shared.per_ip.lock().unwrap();
        if let Some(count) = per_ip.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

async fn send_error(conn: &mut FramedIo<Stream>, code: ErrorCode, message: impl Into<String>) {
    let message = message.into();
    debug!(?code, %message, "refusing peer");
    let _ = conn
        .write_all(&relay::encode(&FromRelay::Error { code, message }))
        .await;
}

/// Reads one message, answering malformed input with an error frame.
async fn read_msg(conn: &mut FramedIo<Stream>) -> Option<ToRelay> {
    match conn.read_frame().await {
        Ok(frame) => match relay::decode::<ToRelay>(&frame) {
            Ok(msg) => Some(msg),
            Err(e) => {
                send_error(conn, ErrorCode::BadRequest, e.to_string()).await;
                None
            }
        },
        Err(ReadFrameError::Frame(e @ FrameError::TooLarge { .. })) => {
            send_error(conn, ErrorCode::FrameTooLarge, e.to_string()).await;
            None
        }
        Err(ReadFrameError::Frame(e)) => {
            send_error(conn, ErrorCode::BadRequest, e.to_string()).await;
            None
        }
        Err(_) => None,
    }
}

async fn handle(
    shared: Arc<Shared>,
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
) -> anyhow::Result<()> {
    let limit = shared.limits.handshake_timeout;
    let first = tokio::time::timeout(limit, async {
        let mut tls = acceptor.accept(tcp).await?;
        let start = crate::web::sniff(&mut tls).await?;
        anyhow::Ok((tls, start))
    })
    .await;
    let (tls, start) = match first {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => {
            debug!(%peer, error = %e, "TLS handshake failed");
            return Ok(());
        }
        Err(_) => {
            debug!(%peer, "nothing received within the handshake timeout");
            return Ok(());
        }
    };
    // One port for everything: browsers speak HTTP (static files, and the
    // pairing protocol over a WebSocket on /ws); hosts and native clients
    // speak the framed protocol directly.
    let stream = Prefixed::new(start.bytes, tls);
    if start.http {
        let web = shared.web_dir.clone();
        // Browsers' path, allocated only when taken (see `serve_peer`).
        return Box::pin(async move {
            if let Some(ws) = crate::web::serve_http(stream, web.as_deref(), peer, limit).await? {
                serve_peer(shared, Box::new(ws), peer).await;
            }
            Ok(())
        })
        .await;
    }
    serve_peer(shared, Box::new(stream), peer).await;
    Ok(())
}

/// Runs the relay protocol with a host or a client on any byte stream.
async fn serve_peer(shared: Arc<Shared>, stream: Stream, peer: SocketAddr) {
    let mut conn = FramedIo::new(stream);
    let Ok(msg) = tokio::time::timeout(shared.limits.handshake_timeout, read_msg(&mut conn)).await
    else {
        debug!(%peer, "no hello within the handshake timeout");
        return;
    };
    // Hellos carry the protocol version; anything else is refused first.
    let version = match &msg {
        Some(ToRelay::HostHello { version, .. } | ToRelay::ClientHello { version, .. }) => {
            Some(*version)
        }
        _ => None,
    };
    if let Some(version) = version {
        if !check_version(&mut conn, version).await {
            return;
        }
    }
    // A task is as big as its largest state: the paths a host's control
    // connection does not take are allocated only when taken, so that
    // thousands of idle hosts do not each carry room for a client's splice.
    match msg {
        Some(ToRelay::HostHello { id, public_key, .. }) => {
            host_control(shared, conn, peer, id, public_key).await
        }
        Some(ToRelay::HostAccept { id, session }) => {
            Box::pin(host_data(shared, conn, peer, id, session)).await
        }
        Some(ToRelay::ClientHello { id, .. }) => Box::pin(client(shared, conn, peer, id)).await,
        Some(other) => {
            send_error(
                &mut conn,
                ErrorCode::BadRequest,
                format!("unexpected first message {}", kind(&other)),
            )
            .await;
        }
        None => {}
    }
}

fn kind(msg: &ToRelay) -> &'static str {
    match msg {
        ToRelay::HostHello { .. } => "host_hello",
        ToRelay::HostProof { .. } => "host_proof",
        ToRelay::Ping => "ping",
        ToRelay::HostAccept { .. } => "host_accept",
        ToRelay::ClientHello { .. } => "client_hello",
    }
}

async fn check_version(conn: &mut FramedIo<Stream>, version: u32) -> bool {
    if version == PROTOCOL_VERSION {
        return true;
    }
    send_error(
        conn,
        ErrorCode::UnsupportedVersion,
        format!("this relay speaks protocol version {PROTOCOL_VERSION}, not {version}; update the program"),
    )
    .await;
    false
}

fn random_token(rng: &SystemRandom) -> Vec<u8> {
    let mut token = vec![0u8; TOKEN_LEN];
    rng.fill(&mut token).expect("system RNG works");
    token
}

/// A host's control connection: prove key ownership, claim the ID, then
/// relay session notices and answer heartbeats until it goes quiet.
async fn host_control(
    shared: Arc<Shared>,
    mut conn: FramedIo<Stream>,
    peer: SocketAddr,
    id: ComputerId,
    public_key: Vec<u8>,
) {
    let nonce = random_token(&shared.rng);
    if conn
        .write_all(&relay::encode(&FromRelay::Challenge {
            nonce: nonce.clone(),
        }))
        .await
        .is_err()
    {
        return;
    }
    let proof = tokio::time::timeout(shared.limits.handshake_timeout, read_msg(&mut conn)).await;
    let Ok(Some(ToRelay::HostProof { signature })) = proof else {
        send_error(&mut conn, ErrorCode::BadRequest, "expected host_proof").await;
        return;
    };
    let transcript = relay::registration_transcript(&nonce, &id, &public_key);
    if UnparsedPublicKey::new(&ED25519, &public_key)
        .verify(&transcript, &signature)
        .is_err()
    {
        warn!(%peer, %id, "host registration with a bad signature refused");
        send_error(
            &mut conn,
            ErrorCode::BadProof,
            "the host's key proof is invalid",
        )
        .await;
        return;
    }

    let conn_id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    let (notice_tx, mut notices) = mpsc::channel(shared.limits.pending_per_host);
    let claim = {
        let mut registry = shared.registry.lock().unwrap();
        let claim = registry.claim(&id, &public_key);
        if let Ok(Claim::New | Claim::Known) = claim {
            // A reconnecting host replaces its stale control connection.
            registry.online.insert(
                id.clone(),
                OnlineHost {
                    conn: conn_id,
                    notices: notice_tx,
                },
            );
        }
        claim
    };
    match claim {
        Ok(Claim::New) => info!(%peer, %id, "new computer ID bound to its host key"),
        Ok(Claim::Known) => {}
        Ok(Claim::Taken) => {
            warn!(%peer, %id, "claim of a computer ID bound to another key refused");
            send_error(
                &mut conn,
                ErrorCode::IdTaken,
                format!(
                    "computer ID '{id}' is already registered to another host; choose another ID"
                ),
            )
            .await;
            return;
        }
        Err(e) => {
            warn!(error = %e, "cannot save the host registry");
            send_error(
                &mut conn,
                ErrorCode::Internal,
                "the relay cannot save its registry",
            )
            .await;
            return;
        }
    }
    if conn
        .write_all(&relay::encode(&FromRelay::Registered))
        .await
        .is_err()
    {
        mark_offline(&shared, &id, conn_id);
        return;
    }
    info!(%peer, %id, "host online");

    let heartbeat = shared.limits.heartbeat_timeout;
    let reason = loop {
        tokio::select! {
            msg = tokio::time::timeout(heartbeat, read_msg(&mut conn)) => match msg {
                Ok(Some(ToRelay::Ping)) => {
                    if conn.write_all(&relay::encode(&FromRelay::Pong)).await.is_err() {
                        break "write failed";
                    }
                }
                Ok(Some(other)) => {
                    send_error(&mut conn, ErrorCode::BadRequest, format!("unexpected {}", kind(&other))).await;
                    break "protocol error";
                }
                Ok(None) => break "disconnected",
                Err(_) => break "heartbeat timeout",
            },
            notice = notices.recv() => match notice {
                Some(notice) => {
                    let Notice { session, client_addr } = *notice;
                    let msg = FromRelay::Incoming { session, client_addr };
                    if conn.write_all(&relay::encode(&msg)).await.is_err() {
                        break "write failed";
                    }
                }
                // Replaced by a newer connection of the same host.
                None => break "replaced by a new connection",
            },
        }
    };
    mark_offline(&shared, &id, conn_id);
    info!(%peer, %id, reason, "host offline");
}

fn mark_offline(shared: &Shared, id: &ComputerId, conn_id: u64) {
    let mut registry = shared.registry.lock().unwrap();
    if registry.online.get(id).is_some_and(|h| h.conn == conn_id) {
        registry.online.remove(id);
    }
}

/// A host's data connection for one session: hand it to the waiting client.
async fn host_data(
    shared: Arc<Shared>,
    mut conn: FramedIo<Stream>,
    peer: SocketAddr,
    id: ComputerId,
    session: Vec<u8>,
) {
    let pending = {
        let mut pending = shared.pending.lock().unwrap();
        match pending.get(&session) {
            Some(p) if p.id == id => pending.remove(&session),
            _ => None,
        }
    };
    let Some(pending) = pending else {
        send_error(
            &mut conn,
            ErrorCode::UnknownSession,
            "no client is waiting for this session",
        )
        .await;
        return;
    };
    if conn
        .write_all(&relay::encode(&FromRelay::Paired))
        .await
        .is_err()
    {
        return;
    }
    debug!(%peer, %id, "host data connection joined");
    let _ = pending.deliver.send(conn.into_parts());
}

/// A client asking for a computer: find its host, wait for it, splice.
async fn client(shared: Arc<Shared>, mut conn: FramedIo<Stream>, peer: SocketAddr, id: ComputerId) {
    let host = {
        let registry = shared.registry.lock().unwrap();
        if !registry.is_known(&id) {
            Err((
                ErrorCode::UnknownId,
                format!("no computer with ID '{id}' is registered at this relay; check the ID"),
            ))
        } else if let Some(host) = registry.online.get(&id) {
            Ok(host.notices.clone())
        } else {
            Err((
                ErrorCode::HostOffline,
                format!("computer '{id}' is offline: its host agent is not connected to the relay"),
            ))
        }
    };
    let notices = match host {
        Ok(n) => n,
        Err((code, message)) => {
            info!(%peer, %id, ?code, "client refused");
            send_error(&mut conn, code, message).await;
            return;
        }
    };

    let session = random_token(&shared.rng);
    let (deliver, delivered) = oneshot::channel();
    shared.pending.lock().unwrap().insert(
        session.clone(),
        PendingSession {
            id: id.clone(),
            deliver,
        },
    );
    let forget = || {
        shared.pending.lock().unwrap().remove(&session);
    };
    let notice = Box::new(Notice {
        session: session.clone(),
        client_addr: peer.to_string(),
    });
    if notices.try_send(notice).is_err() {
        forget();
        send_error(
            &mut conn,
            ErrorCode::RateLimited,
            format!("computer '{id}' has too many connection attempts waiting; try again shortly"),
        )
        .await;
        return;
    }
    if conn
        .write_all(&relay::encode(&FromRelay::HostNotified))
        .await
        .is_err()
    {
        forget();
        return;
    }

    let host_conn = match tokio::time::timeout(shared.limits.pairing_timeout, delivered).await {
        Ok(Ok(host_conn)) => host_conn,
        _ => {
            forget();
            info!(%peer, %id, "host did not answer in time");
            let secs = shared.limits.pairing_timeout.as_secs();
            send_error(
                &mut conn,
                ErrorCode::Timeout,
                format!("computer '{id}' did not answer within {secs} s; try again"),
            )
            .await;
            return;
        }
    };
    if conn
        .write_all(&relay::encode(&FromRelay::Paired))
        .await
        .is_err()
    {
        return;
    }
    info!(%peer, %id, "paired");
    let (client_stream, client_rest) = conn.into_parts();
    let (host_stream, host_rest) = host_conn;
    splice(
        &shared,
        peer,
        &id,
        (client_stream, client_rest),
        (host_stream, host_rest),
    )
    .await;
}

/// Copies bytes both ways with bounded buffers until either side closes.
/// Logs only sizes and durations, never contents.
async fn splice(
    shared: &Shared,
    peer: SocketAddr,
    id: &ComputerId,
    client: DataConn,
    host: DataConn,
) {
    let started = Instant::now();
    let client = Prefixed::new(client.1, client.0);
    let host = Prefixed::new(host.1, host.0);
    let size = shared.limits.splice_buffer;
    let copied = match &shared.tap {
        None => {
            let (mut client, mut host) = (client, host);
            tokio::io::copy_bidirectional_with_sizes(&mut client, &mut host, size, size).await
        }
        Some(tap) => {
            let mut client = Tapped::new(client, tap.clone(), Direction::ClientToHost);
            let mut host = Tapped::new(host, tap.clone(), Direction::HostToClient);
            tokio::io::copy_bidirectional_with_sizes(&mut client, &mut host, size, size).await
        }
    };
    match copied {
        Ok((up, down)) => {
            info!(%peer, %id, up, down, secs = started.elapsed().as_secs(), "session ended")
        }
        Err(e) => {
            info!(%peer, %id, error = %e, secs = started.elapsed().as_secs(), "session ended")
        }
    }
}
