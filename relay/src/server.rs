//! The relay's accept loop, the three connection roles and the splice.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use proto::rate::Rate;
use proto::relay::{
    self, ErrorCode, FromRelay, NodeRequest, ToRelay, MAX_DECLINE_MESSAGE, PROTOCOL_VERSION,
    TOKEN_LEN,
};
use proto::{ComputerId, FrameError};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{UnparsedPublicKey, ED25519};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, error, info, warn};
use transport::{FramedIo, Prefixed, ReadFrameError};

use crate::cluster::{Cluster, ClusterConfig};
use crate::deny::{self, DenyList, Role};
use crate::directory::{self, Imported, Renewal, Unreachable, Whereabouts};
use crate::limits::{self, Connections, Evict, Keyed, Kind, PerAddress, Slot};
use crate::metrics::{self, Limit, Metrics, Pairing};
use crate::registry::{Claim, Entry, ImportNeed, Notice, OnlineHost, Registry};
use crate::tap::{Counted, Direction, Tap, Tapped};
use crate::{certs, cluster, oplog, tokens, CERT_FILE, KEY_FILE};

/// Bounds that keep one misbehaving peer from costing the relay much.
#[derive(Debug, Clone)]
pub struct Limits {
    /// TLS handshake plus the first message.
    pub handshake_timeout: Duration,
    /// A host that sends nothing for this long is marked offline.
    pub heartbeat_timeout: Duration,
    /// How long a client waits for its host to open the data connection.
    pub pairing_timeout: Duration,
    /// Connections at once, all together; `None`: as many as the
    /// file-descriptor limit allows (`thin-relay serve` raises it to the
    /// hard limit at start).
    pub max_connections: Option<usize>,
    /// Simultaneous connections from one source address that have not
    /// proven anything yet (clients before pairing, hosts before their key
    /// proof).
    pub max_conns_per_ip: usize,
    /// Simultaneous host connections from one source address: registered
    /// hosts and their data connections (an office behind one NAT address).
    pub max_host_conns_per_ip: usize,
    /// Simultaneous paired sessions of clients at one source address (a
    /// carrier-grade NAT puts many homes behind one).
    pub max_sessions_per_ip: usize,
    /// Bytes buffered per direction while splicing.
    pub splice_buffer: usize,
    /// Session notices queued for one host before clients are told to retry.
    pub pending_per_host: usize,
    /// Pairing requests from one source address (`None`: unlimited).
    pub pairing_per_ip: Option<Rate>,
    /// Pairing requests for one computer ID from addresses that asked for
    /// it in the last minute already. An address's first request in a
    /// minute is not held to it, so that requests from elsewhere cannot
    /// keep the owner out.
    pub pairing_per_id: Option<Rate>,
    /// New computer IDs bound for hosts from one address (an IPv4 address,
    /// an IPv6 /48) without an enrolment token.
    pub new_ids_per_ip: Option<Rate>,
    /// New computer IDs bound without an enrolment token, from anywhere.
    pub new_ids_total: Option<Rate>,
    /// Hosts registered at this node at once (`None`: as many as the
    /// connections allow); more are told the relay is full, and try
    /// another node.
    pub max_hosts: Option<usize>,
    /// Sessions paired or relayed by this node at once (`None`: as many
    /// as the connections allow); more are told the relay is full.
    pub max_sessions: Option<usize>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            heartbeat_timeout: Duration::from_secs(45),
            pairing_timeout: Duration::from_secs(15),
            max_connections: None,
            max_conns_per_ip: 64,
            max_host_conns_per_ip: 4096,
            max_sessions_per_ip: 256,
            splice_buffer: 64 * 1024,
            pending_per_host: 8,
            pairing_per_ip: Some(Rate {
                burst: 10,
                interval: Duration::from_secs(2),
            }),
            pairing_per_id: Some(Rate {
                burst: 30,
                interval: Duration::from_secs(1),
            }),
            new_ids_per_ip: Some(Rate {
                burst: 20,
                interval: Duration::from_secs(180),
            }),
            new_ids_total: Some(Rate {
                burst: 1000,
                interval: Duration::from_millis(3600),
            }),
            max_hosts: None,
            max_sessions: None,
        }
    }
}

/// Wrong enrolment tokens from one address (an IPv4 address, an IPv6 /48).
const TOKEN_FAILURES: Rate = Rate {
    burst: 5,
    interval: Duration::from_secs(60),
};

/// First requests from new addresses for one ID that are not held to the
/// per-ID limit: enough for a person among a crowd, not a way around it.
const FIRST_PAIRINGS: Rate = Rate {
    burst: 60,
    interval: Duration::from_secs(1),
};

/// How long an address counts as having asked for an ID already.
const RECENT_PAIRING: Rate = Rate {
    burst: 1,
    interval: Duration::from_secs(60),
};

/// Connections refused at once with a message; more are just closed.
const MAX_REFUSING: usize = 32;
/// How long a refused connection gets to hear why.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(3);
/// Connections waiting to be accepted by the kernel (a relay restart with
/// thousands of hosts reconnecting at once must not overflow it).
const LISTEN_BACKLOG: u32 = 4096;

#[derive(Clone)]
pub struct RelayConfig {
    pub dir: PathBuf,
    pub listen: SocketAddr,
    pub limits: Limits,
    /// New computer IDs are bound only with an enrolment token.
    pub closed: bool,
    /// The web client's files, served to browsers on the same port.
    pub web_dir: Option<PathBuf>,
    /// A publicly trusted certificate and key for browsers (native peers
    /// keep the relay's own, which they pin).
    pub web_cert: Option<(PathBuf, PathBuf)>,
    /// Observer of forwarded bytes (tests only; see [`crate::tap`]).
    pub tap: Option<Tap>,
    /// Where operators read the metrics (see [`crate::metrics`]); none by
    /// default, and never the public address.
    pub metrics: Option<SocketAddr>,
    /// Networks refused (see [`crate::deny`]), reloaded when the file
    /// changes or on SIGHUP.
    pub deny_file: Option<PathBuf>,
    /// One node of several sharing a directory (see [`crate::cluster`]);
    /// none: a relay on its own, with its bindings in its folder.
    pub cluster: Option<ClusterConfig>,
}

impl RelayConfig {
    /// The relay of folder `dir` on `listen`: default limits, open
    /// enrolment, no web client.
    pub fn new(dir: PathBuf, listen: SocketAddr) -> Self {
        Self {
            dir,
            listen,
            limits: Limits::default(),
            closed: false,
            web_dir: None,
            web_cert: None,
            tap: None,
            metrics: None,
            deny_file: None,
            cluster: None,
        }
    }
}

/// Any byte stream to a peer: TLS directly, or a WebSocket inside TLS.
pub(crate) trait PeerStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> PeerStream for T {}
type Stream = Box<dyn PeerStream>;

/// A host's data connection handed to the waiting client's task, with the
/// place it holds at the relay.
type DataConn = (Stream, Vec<u8>, Held);

/// What a waiting client gets: its host's data connection, or why not.
type Delivery = Result<DataConn, (ErrorCode, String, Pairing)>;

/// A handed-over connection's place at the relay, kept by the task that
/// splices it.
struct Held {
    /// None for a connection another node handed over (that node holds
    /// its place).
    _slot: Option<Slot>,
}

struct Shared {
    dir: PathBuf,
    limits: Limits,
    closed: bool,
    tap: Option<Tap>,
    web_dir: Option<PathBuf>,
    web_cert: Option<(PathBuf, PathBuf)>,
    /// Replaced when the certificate is renewed.
    acceptor: RwLock<TlsAcceptor>,
    registry: Mutex<Registry>,
    pending: Mutex<HashMap<Vec<u8>, PendingSession>>,
    conns: Arc<Connections>,
    refusing: AtomicUsize,
    pairing_per_ip: Keyed<IpAddr>,
    pairing_per_id: Keyed<ComputerId>,
    /// Which addresses asked for which IDs lately.
    recent_pairings: Keyed<(ComputerId, IpAddr)>,
    /// First requests from an address that pass the per-ID limit.
    first_pairings_per_id: Keyed<ComputerId>,
    /// Data connections that could not be handed on to another node, per
    /// source address: each cost a directory look-up (and maybe a
    /// connection between nodes), and a real host's never fail this way.
    failed_hand_ons: Keyed<IpAddr>,
    new_ids_per_ip: Keyed<IpAddr>,
    new_ids_total: Keyed<()>,
    /// Enrolment tokens that did not work, per address.
    token_failures: Keyed<IpAddr>,
    /// New IDs are bound one at a time (tokens are redeemed once).
    enrolment: tokio::sync::Mutex<()>,
    next_conn: AtomicU64,
    rng: SystemRandom,
    metrics: Arc<Metrics>,
    deny: RwLock<DenyList>,
    /// With other nodes: bindings and presence live in the directory (the
    /// registry keeps only this node's online hosts).
    cluster: Option<Arc<Cluster>>,
    /// Sessions being paired or relayed here (see [`SessionPlace`]).
    sessions: AtomicUsize,
    /// Stopping: hosts are let go and told why.
    draining: std::sync::atomic::AtomicBool,
}

/// A session's place at this node, against `--max-sessions` and for the
/// drain to wait on; given back when dropped.
struct SessionPlace(Arc<Shared>);

impl SessionPlace {
    fn take(shared: &Arc<Shared>) -> Option<Self> {
        let max = shared.limits.max_sessions.unwrap_or(usize::MAX);
        shared
            .sessions
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()?;
        Some(Self(shared.clone()))
    }
}

impl Drop for SessionPlace {
    fn drop(&mut self) {
        self.0.sessions.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What a peer is told when this node has no room for another session.
const SESSIONS_FULL: &str = "the relay is full right now; try again in a minute";

struct PendingSession {
    id: ComputerId,
    deliver: oneshot::Sender<Delivery>,
}

/// A bound relay, ready to [`run`](Relay::run).
pub struct Relay {
    listener: TcpListener,
    metrics: Option<TcpListener>,
    deny_watch: Option<deny::Watched>,
    cluster: Option<TcpListener>,
    shared: Arc<Shared>,
}

fn load_tls(
    dir: &Path,
    web_cert: Option<&(PathBuf, PathBuf)>,
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    transport::tls::relay_server_config(
        &dir.join(CERT_FILE),
        &dir.join(KEY_FILE),
        web_cert.map(|(c, k)| (c.as_path(), k.as_path())),
    )
    .with_context(|| {
        format!(
            "cannot load the relay certificate from {} (run `thin-relay init --dir {}` first)",
            dir.display(),
            dir.display()
        )
    })
}

/// A listener with a backlog deep enough for reconnect storms.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// The soft limit on open files, where the platform has one.
fn fd_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        rlimit::getrlimit(rlimit::Resource::NOFILE)
            .ok()
            .map(|(soft, _)| soft)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

impl Relay {
    /// Loads the relay's certificate and registry and binds the listen address.
    pub async fn bind(config: RelayConfig) -> anyhow::Result<Self> {
        let tls = load_tls(&config.dir, config.web_cert.as_ref())?;
        certs::warn_if_expiring(&config.dir);
        let registry = Registry::load(&config.dir)?;
        if let Some(addr) = config.metrics {
            metrics::check_address(addr, config.listen)?;
        }
        let (deny_watch, deny) = match config.deny_file {
            Some(path) => {
                let (watch, list) = deny::Watched::start(path).map_err(anyhow::Error::msg)?;
                (Some(watch), list)
            }
            None => (None, DenyList::default()),
        };
        let listener =
            listen(config.listen).with_context(|| format!("cannot listen on {}", config.listen))?;
        let metrics = match config.metrics {
            Some(addr) => Some(metrics::bind(addr).await?),
            None => None,
        };
        let (cluster, cluster_listener) = match &config.cluster {
            Some(wanted) => {
                let presence = config.limits.heartbeat_timeout;
                let (cluster, listener) = Cluster::start(&config.dir, wanted, presence).await?;
                (Some(Arc::new(cluster)), Some(listener))
            }
            None => (None, None),
        };
        let limits = config.limits;
        let by_fds = fd_limit().map(limits::connections_for_fd_limit);
        let max_connections = match (limits.max_connections, by_fds) {
            (Some(wanted), Some(possible)) if wanted > possible => {
                warn!(
                    wanted,
                    possible, "the file-descriptor limit allows fewer connections than asked for"
                );
                possible
            }
            (Some(wanted), _) => wanted,
            (None, Some(possible)) => possible,
            (None, None) => 100_000,
        };
        info!(
            max_connections,
            fd_limit = fd_limit().unwrap_or(0),
            "connection limit"
        );
        let conns = Arc::new(Connections::new(
            max_connections,
            PerAddress {
                open: limits.max_conns_per_ip,
                host: limits.max_host_conns_per_ip,
                client: limits.max_sessions_per_ip,
            },
        ));
        Ok(Self {
            listener,
            metrics,
            deny_watch,
            cluster: cluster_listener,
            shared: Arc::new(Shared {
                dir: config.dir,
                closed: config.closed,
                tap: config.tap,
                web_dir: config.web_dir,
                web_cert: config.web_cert,
                acceptor: RwLock::new(TlsAcceptor::from(tls)),
                registry: Mutex::new(registry),
                pending: Mutex::new(HashMap::new()),
                conns,
                refusing: AtomicUsize::new(0),
                pairing_per_ip: Keyed::new(limits.pairing_per_ip),
                pairing_per_id: Keyed::new(limits.pairing_per_id),
                recent_pairings: Keyed::new(Some(RECENT_PAIRING)),
                first_pairings_per_id: Keyed::new(limits.pairing_per_id.map(|_| FIRST_PAIRINGS)),
                failed_hand_ons: Keyed::new(limits.pairing_per_id),
                new_ids_per_ip: Keyed::new(limits.new_ids_per_ip),
                new_ids_total: Keyed::new(limits.new_ids_total),
                token_failures: Keyed::new(Some(TOKEN_FAILURES)),
                enrolment: tokio::sync::Mutex::new(()),
                next_conn: AtomicU64::new(1),
                rng: SystemRandom::new(),
                metrics: Arc::default(),
                deny: RwLock::new(deny),
                cluster,
                sessions: AtomicUsize::new(0),
                draining: std::sync::atomic::AtomicBool::new(false),
                limits,
            }),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    /// Where the metrics are served, when asked for.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Where other relay nodes reach this one, when it is one of several.
    pub fn cluster_addr(&self) -> Option<SocketAddr> {
        self.cluster.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The operator's handle on this relay (its control socket uses it).
    pub fn operator(&self) -> Operator {
        Operator {
            shared: self.shared.clone(),
        }
    }

    /// Accepts connections until the task is dropped.
    pub async fn run(self) -> anyhow::Result<()> {
        self.run_until(std::future::pending(), Duration::ZERO).await
    }

    /// Accepts connections until `stop`, then drains: no new connections,
    /// hosts told to move to another node, sessions under way given up to
    /// `drain_limit` to end.
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()>,
        drain_limit: Duration,
    ) -> anyhow::Result<()> {
        let shared = self.shared.clone();
        tokio::select! {
            run = self.accept() => run,
            () = stop => {
                drain(&shared, drain_limit).await;
                Ok(())
            }
        }
    }

    async fn accept(self) -> anyhow::Result<()> {
        info!(addr = %self.local_addr(), "relay listening");
        tokio::spawn(watch_certificate(Arc::downgrade(&self.shared)));
        if let Some(watch) = self.deny_watch {
            tokio::spawn(watch_deny_file(Arc::downgrade(&self.shared), watch));
        }
        let _cluster = self.cluster.map(|listener| {
            let import = import_registry(&self.shared).map(|task| AbortOnDrop(tokio::spawn(task)));
            let serve = AbortOnDrop(tokio::spawn(serve_cluster(self.shared.clone(), listener)));
            (import, serve)
        });
        let _metrics = self.metrics.map(|listener| {
            let shared = Arc::downgrade(&self.shared);
            AbortOnDrop(tokio::spawn(metrics::serve(listener, move || {
                let Some(shared) = shared.upgrade() else {
                    return String::new();
                };
                let online = shared.registry.lock().expect("not poisoned").online.len();
                shared.metrics.encode(online)
            })))
        });
        loop {
            let (tcp, peer) = match self.listener.accept().await {
                Ok(conn) => conn,
                Err(e) => {
                    // The limits keep descriptors in reserve; if the system
                    // as a whole runs out, back off briefly.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let conn_id = self.shared.next_conn.fetch_add(1, Ordering::Relaxed);
            let acceptor = self.shared.acceptor.read().expect("not poisoned").clone();
            let denied = self.shared.denied(peer.ip(), None);
            if let Some(net) = denied {
                self.shared.metrics.refused(Limit::Denied);
                debug!(%peer, %net, "connection from a denied network");
                let message = deny::refusal(&net);
                refuse_connection(&self.shared, acceptor, tcp, ErrorCode::Denied, message);
                continue;
            }
            match self.shared.conns.admit(peer.ip(), conn_id) {
                Ok((slot, evict)) => {
                    let shared = self.shared.clone();
                    tokio::spawn(async move {
                        tcp.set_nodelay(true).ok();
                        if let Err(e) = handle(shared, acceptor, tcp, peer, slot, evict).await {
                            debug!(%peer, error = %e, "connection ended with error");
                        }
                    });
                }
                Err(refusal) => {
                    debug!(%peer, ?refusal, "connection refused");
                    let (limit, code, message) = match refusal {
                        limits::Refusal::PerAddress => (
                            Limit::PerAddress,
                            ErrorCode::RateLimited,
                            "too many connections from your address at once; close some and try again",
                        ),
                        limits::Refusal::Full => (
                            Limit::Full,
                            ErrorCode::RelayFull,
                            "the relay is full right now; try again in a minute",
                        ),
                    };
                    self.shared.metrics.refused(limit);
                    refuse_connection(&self.shared, acceptor, tcp, code, message.to_owned());
                }
            }
        }
    }
}

/// How often the drain looks whether its sessions have ended.
const DRAIN_CHECK: Duration = Duration::from_millis(100);

/// Lets every host go (told this node stops, so they reconnect at another;
/// their presence withdrawn) and waits up to `limit` for the sessions
/// under way to end.
async fn drain(shared: &Arc<Shared>, limit: Duration) {
    shared.draining.store(true, Ordering::Release);
    let hosts: Vec<ComputerId> = {
        let mut registry = shared.registry.lock().expect("not poisoned");
        registry.online.drain().map(|(id, _)| id).collect()
    };
    info!(
        hosts = hosts.len(),
        "draining: hosts told to move to another node"
    );
    if let Some(cluster) = &shared.cluster {
        withdraw(cluster, hosts).await;
    }
    let deadline = Instant::now() + limit;
    loop {
        let left = shared.sessions.load(Ordering::Acquire);
        if left == 0 {
            info!("drained: no session under way");
            return;
        }
        if Instant::now() >= deadline {
            warn!(
                sessions = left,
                "drain limit reached: sessions under way are cut"
            );
            return;
        }
        tokio::time::sleep(DRAIN_CHECK).await;
    }
}

/// Withdraws the presence of hosts this node let go (their control loops
/// no longer find them), a few hundred at a time.
async fn withdraw(cluster: &Arc<Cluster>, hosts: Vec<ComputerId>) {
    let mut withdrawn = tokio::task::JoinSet::new();
    for chunk in hosts.chunks(256) {
        for id in chunk {
            let (cluster, id) = (cluster.clone(), id.clone());
            withdrawn.spawn(async move { cluster.directory.leave(&id).await });
        }
        while withdrawn.join_next().await.is_some() {}
    }
}

/// A task that ends with its owner.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What the operator may do to a running relay.
#[derive(Clone)]
pub struct Operator {
    shared: Arc<Shared>,
}

impl Operator {
    /// Releases `id` from its host key; see [`unbind`]. With other nodes,
    /// in the shared directory: a host connected at another node is let go
    /// when that node next renews its presence.
    pub async fn unbind(&self, id: &ComputerId, by: &str) -> anyhow::Result<String> {
        let shared = &self.shared;
        let Some(cluster) = &shared.cluster else {
            let mut registry = shared.registry.lock().expect("not poisoned");
            return unbind(&shared.dir, &mut registry, id, by);
        };
        let key = cluster.directory.unbind(id).await?;
        let Some(key) = key else {
            anyhow::bail!("computer ID '{id}' is not bound in this relay's directory");
        };
        shared
            .registry
            .lock()
            .expect("not poisoned")
            .online
            .remove(id);
        Ok(released(&shared.dir, id, &key, by))
    }
}

/// Releases `id` in `registry` (of the relay folder `dir`): its host goes
/// offline and its key may not claim the ID again. Audited.
pub fn unbind(
    dir: &Path,
    registry: &mut Registry,
    id: &ComputerId,
    by: &str,
) -> anyhow::Result<String> {
    let key = registry
        .unbind(id)
        .with_context(|| format!("cannot save the registry in {}", dir.display()))?;
    let Some(key) = key else {
        anyhow::bail!("computer ID '{id}' is not bound at this relay");
    };
    Ok(released(dir, id, &key, by))
}

/// Audits the release of `id` from `key`; what the operator is told.
pub(crate) fn released(dir: &Path, id: &ComputerId, key: &[u8], by: &str) -> String {
    let fingerprint = proto::channel::fingerprint(key);
    oplog::record(
        dir,
        "unbind",
        serde_json::json!({ "id": id, "key": fingerprint, "by": by }),
    );
    warn!(%id, key = %fingerprint, by, "computer ID released by the operator");
    format!(
        "computer ID '{id}' released (it was bound to host key {fingerprint}); that key cannot \
         claim it again"
    )
}

impl Shared {
    /// The directory of a node that imports its file (only nodes do).
    fn import_directory(&self) -> &crate::directory::Directory {
        &self
            .cluster
            .as_ref()
            .expect("a node of a cluster")
            .directory
    }

    /// The denied network `ip` is in, for `role` (None: before the peer
    /// said who it is).
    fn denied(&self, ip: IpAddr, role: Option<Role>) -> Option<ipnet::IpNet> {
        self.deny.read().expect("not poisoned").refuses(ip, role)
    }
}

/// When a watcher of the relay's files looks again: every `every`, or at
/// once on SIGHUP (the operator's "read your files again").
struct Wake {
    tick: tokio::time::Interval,
    #[cfg(unix)]
    hangup: Option<tokio::signal::unix::Signal>,
}

impl Wake {
    fn new(every: Duration) -> Self {
        Self {
            tick: tokio::time::interval(every),
            #[cfg(unix)]
            hangup: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok(),
        }
    }

    /// Waits for the next look; true when the operator asked for it.
    async fn next(&mut self) -> bool {
        #[cfg(unix)]
        let hangup = &mut self.hangup;
        let asked = async move {
            #[cfg(unix)]
            if let Some(hangup) = hangup {
                hangup.recv().await;
                return;
            }
            std::future::pending::<()>().await
        };
        tokio::select! {
            _ = self.tick.tick() => false,
            () = asked => true,
        }
    }
}

/// Reads the deny file again when it changes (looked at every few
/// seconds) or on SIGHUP; a file that cannot be read keeps the old list.
async fn watch_deny_file(shared: std::sync::Weak<Shared>, mut watched: deny::Watched) {
    let mut wake = Wake::new(deny::CHECK_EVERY);
    loop {
        let forced = wake.next().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        match watched.reload(forced) {
            None => {}
            Some(Ok(list)) => {
                // Hosts of a network refused now are let go (their
                // control connections end; they are refused when they
                // come back). Sessions under way run to their end.
                let mut registry = shared.registry.lock().expect("not poisoned");
                let refused: Vec<ComputerId> = registry
                    .online
                    .iter()
                    .filter(|(_, host)| list.refuses(host.addr, Some(Role::Host)).is_some())
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in &refused {
                    registry.online.remove(id);
                }
                drop(registry);
                let let_go = refused.len();
                if let Some(cluster) = shared.cluster.clone() {
                    tokio::spawn(async move { withdraw(&cluster, refused).await });
                }
                info!(
                    file = %watched.path.display(),
                    networks = list.len(),
                    hosts_let_go = let_go,
                    "deny list reloaded"
                );
                *shared.deny.write().expect("not poisoned") = list;
            }
            Some(Err(e)) => warn!(error = %e, "the deny list in force stays"),
        }
    }
}

/// Reloads the certificate when `thin-relay renew` replaced it (checked
/// every minute, or at once on SIGHUP), and warns (at start and daily) when
/// it is about to expire.
async fn watch_certificate(shared: std::sync::Weak<Shared>) {
    let modified = |dir: &Path| {
        std::fs::metadata(dir.join(CERT_FILE))
            .and_then(|m| m.modified())
            .ok()
    };
    let Some(dir) = shared.upgrade().map(|s| s.dir.clone()) else {
        return;
    };
    let mut seen = modified(&dir);
    let mut last_warning = Instant::now();
    let mut wake = Wake::new(Duration::from_secs(60));
    loop {
        let forced = wake.next().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let now = modified(&dir);
        if forced || now != seen {
            match load_tls(&dir, shared.web_cert.as_ref()) {
                Ok(tls) => {
                    *shared.acceptor.write().expect("not poisoned") = TlsAcceptor::from(tls);
                    if let Some(cluster) = &shared.cluster {
                        if let Err(e) = cluster.reload(&dir) {
                            warn!(error = %format!("{e:#}"), "cannot reload the cluster port's certificate");
                        }
                    }
                    info!("relay certificate reloaded");
                    certs::warn_if_expiring(&dir);
                    seen = now;
                }
                Err(e) => warn!(error = %format!("{e:#}"), "cannot reload the relay certificate"),
            }
        }
        if last_warning.elapsed() >= Duration::from_secs(24 * 3600) {
            certs::warn_if_expiring(&dir);
            last_warning = Instant::now();
        }
    }
}

/// Tells a connection the relay will not take it, in its own protocol, if
/// not too many are being refused already; else just closes it.
fn refuse_connection(
    shared: &Arc<Shared>,
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    code: ErrorCode,
    message: String,
) {
    if shared.refusing.fetch_add(1, Ordering::Relaxed) >= MAX_REFUSING {
        shared.refusing.fetch_sub(1, Ordering::Relaxed);
        return;
    }
    let shared = shared.clone();
    tokio::spawn(async move {
        let _ = tokio::time::timeout(REFUSAL_TIMEOUT, async {
            let mut tls = acceptor.accept(tcp).await?;
            let start = crate::web::sniff(&mut tls).await?;
            if start.http {
                crate::web::unavailable(&mut tls, &message).await?;
            } else {
                let mut conn: FramedIo<Stream> = FramedIo::new(Box::new(tls));
                send_error(&mut conn, code, message).await;
            }
            anyhow::Ok(())
        })
        .await;
        shared.refusing.fetch_sub(1, Ordering::Relaxed);
    });
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

/// Until a connection's first message it may be evicted to make room.
async fn handle(
    shared: Arc<Shared>,
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    mut evict: Evict,
) -> anyhow::Result<()> {
    let limit = shared.limits.handshake_timeout;
    let first = tokio::select! {
        first = tokio::time::timeout(limit, async {
            let mut tls = acceptor.accept(tcp).await?;
            let start = crate::web::sniff(&mut tls).await?;
            anyhow::Ok((tls, start))
        }) => first,
        _ = &mut evict => {
            debug!(%peer, "evicted before its first message: the relay is full");
            return Ok(());
        }
    };
    let (tls, start) = match first {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => {
            shared.metrics.tls_handshake_failed();
            debug!(%peer, error = %e, "TLS handshake failed");
            return Ok(());
        }
        Err(_) => {
            shared.metrics.tls_handshake_failed();
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
            let ws = tokio::select! {
                ws = crate::web::serve_http(stream, web.as_deref(), peer, limit) => ws?,
                _ = &mut evict => return Ok(()),
            };
            if let Some(ws) = ws {
                serve_peer(shared, Box::new(ws), peer, slot, evict).await;
            }
            Ok(())
        })
        .await;
    }
    serve_peer(shared, Box::new(stream), peer, slot, evict).await;
    Ok(())
}

/// Runs the relay protocol with a host or a client on any byte stream.
async fn serve_peer(
    shared: Arc<Shared>,
    stream: Stream,
    peer: SocketAddr,
    slot: Slot,
    mut evict: Evict,
) {
    let mut conn = FramedIo::new(stream);
    let first = tokio::select! {
        first = tokio::time::timeout(shared.limits.handshake_timeout, read_msg(&mut conn)) => first,
        _ = &mut evict => {
            debug!(%peer, "evicted before its first message: the relay is full");
            return;
        }
    };
    let Ok(msg) = first else {
        debug!(%peer, "no hello within the handshake timeout");
        return;
    };
    slot.settle();
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
    let role = match &msg {
        Some(ToRelay::HostHello { .. } | ToRelay::HostAccept { .. }) => Some(Role::Host),
        Some(ToRelay::ClientHello { .. }) => Some(Role::Client),
        _ => None,
    };
    if let Some(net) = role.and_then(|role| shared.denied(peer.ip(), Some(role))) {
        shared.metrics.refused(Limit::Denied);
        info!(%peer, %net, ?role, "refused: a denied network");
        // A client waiting for this host hears why at once.
        if let Some(ToRelay::HostAccept { id, session }) = &msg {
            if let Some(pending) = take_pending(&shared, id, session) {
                let message = "the office PC's network is refused by this relay's operator; \
                               ask your IT staff";
                let denied = (ErrorCode::Denied, message.to_owned(), Pairing::Denied);
                let _ = pending.deliver.send(Err(denied));
            }
        }
        send_error(&mut conn, ErrorCode::Denied, deny::refusal(&net)).await;
        return;
    }
    // A task is as big as its largest state: the paths a host's control
    // connection does not take are allocated only when taken, so that
    // thousands of idle hosts do not each carry room for a client's splice.
    match msg {
        Some(ToRelay::HostHello {
            id,
            public_key,
            enrolment_token,
            ..
        }) => {
            let hello = HostClaim {
                id,
                public_key,
                token: enrolment_token,
            };
            host_control(shared, conn, peer, slot, hello).await
        }
        Some(ToRelay::HostAccept { id, session }) => {
            let from = Source::Peer { addr: peer, slot };
            Box::pin(host_data(shared, conn, from, id, session)).await
        }
        Some(ToRelay::ClientHello { id, .. }) => {
            Box::pin(client(shared, conn, peer, slot, id)).await
        }
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
        ToRelay::HostDecline { .. } => "host_decline",
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

/// What a host's hello claims.
struct HostClaim {
    id: ComputerId,
    public_key: Vec<u8>,
    token: Option<String>,
}

/// A host's control connection: prove key ownership, claim the ID, then
/// relay session notices and answer heartbeats until it goes quiet.
async fn host_control(
    shared: Arc<Shared>,
    mut conn: FramedIo<Stream>,
    peer: SocketAddr,
    mut slot: Slot,
    claim: HostClaim,
) {
    let HostClaim {
        id,
        public_key,
        token,
    } = claim;
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
        shared.metrics.registration("bad_proof");
        send_error(
            &mut conn,
            ErrorCode::BadProof,
            "the host's key proof is invalid",
        )
        .await;
        return;
    }
    if let Some(max) = shared.limits.max_hosts {
        let full = {
            let registry = shared.registry.lock().unwrap();
            registry.online.len() >= max && !registry.online.contains_key(&id)
        };
        if full {
            shared.metrics.refused(Limit::Hosts);
            shared.metrics.registration("full");
            let message = "this relay node serves as many office PCs as it may; the office PC \
                           tries again (at another node, if it knows one)";
            send_error(&mut conn, ErrorCode::RelayFull, message).await;
            return;
        }
    }
    // New IDs are bound one at a time: the check, the token and the claim
    // belong together (a token is used once; a used token binds its ID).
    let mut valid_token = None;
    let claimable = match claimable(&shared, &id, &public_key).await {
        Ok(claimable) => claimable,
        Err(e) => return directory_down(&shared, &mut conn, peer, &id, e).await,
    };
    let enrolling = if claimable {
        let enrolling = shared.enrolment.lock().await;
        let still = match self::claimable(&shared, &id, &public_key).await {
            Ok(claimable) => claimable,
            Err(e) => return directory_down(&shared, &mut conn, peer, &id, e).await,
        };
        if still {
            match may_bind(&shared, peer, &id, token.as_deref()).await {
                Ok(token) => valid_token = token,
                Err((code, message)) => {
                    warn!(%peer, %id, %message, "new computer ID refused");
                    shared.metrics.registration("refused");
                    if code == ErrorCode::RateLimited {
                        shared.metrics.refused(Limit::NewIds);
                    }
                    send_error(&mut conn, code, message).await;
                    return;
                }
            }
        }
        Some(enrolling)
    } else {
        None
    };

    let conn_id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    let (notice_tx, mut notices) = mpsc::channel(shared.limits.pending_per_host);
    let online = OnlineHost {
        conn: conn_id,
        addr: peer.ip(),
        notices: notice_tx,
    };
    // A reconnecting host replaces its stale control connection.
    let go_online = |registry: &mut Registry, claim: &Result<Claim, String>| {
        if let Ok(Claim::New | Claim::Known) = claim {
            registry.online.insert(id.clone(), online);
        }
    };
    let claim = match &shared.cluster {
        Some(cluster) => {
            let claim = cluster.directory.claim(&id, &public_key).await;
            let claim = claim.map_err(|e| e.to_string()).map(|(claim, elsewhere)| {
                if let Some(node) = elsewhere {
                    tokio::spawn(let_go_at(cluster.clone(), node, id.clone()));
                }
                claim
            });
            go_online(&mut shared.registry.lock().unwrap(), &claim);
            claim
        }
        None => {
            let mut registry = shared.registry.lock().unwrap();
            let claim = registry.claim(&id, &public_key);
            let claim = claim.map_err(|e| format!("cannot save the host registry: {e}"));
            go_online(&mut registry, &claim);
            claim
        }
    };
    if let (Ok(Claim::New), Some(valid)) = (&claim, valid_token) {
        record_token_use(&shared, peer, &id, valid).await;
    }
    drop(enrolling);
    shared.metrics.registration(match &claim {
        Ok(Claim::New) => "new",
        Ok(Claim::Known) => "known",
        Ok(Claim::Taken) => "taken",
        Ok(Claim::Released) => "released",
        Err(_) => "error",
    });
    let refused = match claim {
        Ok(Claim::New) => {
            info!(%peer, %id, "new computer ID bound to its host key");
            None
        }
        Ok(Claim::Known) => None,
        Ok(Claim::Taken) => {
            warn!(%peer, %id, "claim of a computer ID bound to another key refused");
            Some((
                ErrorCode::IdTaken,
                format!(
                    "computer ID '{id}' is already registered to another host; choose another ID"
                ),
            ))
        }
        Ok(Claim::Released) => {
            warn!(%peer, %id, "claim of a released computer ID by its old key refused");
            Some((
                ErrorCode::IdTaken,
                format!(
                    "the relay's operator released computer ID '{id}' from this host; ask them, \
                     or choose another ID"
                ),
            ))
        }
        Err(e) => {
            warn!(%id, error = %e, "cannot bind a computer ID");
            shared.metrics.directory_error();
            let message = match shared.cluster {
                Some(_) => DIRECTORY_DOWN,
                None => "the relay cannot save its registry",
            };
            Some((ErrorCode::Internal, message.to_owned()))
        }
    };
    if let Some((code, message)) = refused {
        send_error(&mut conn, code, message).await;
        return;
    }
    // Only a host that holds its ID counts as one.
    if !slot.prove(Kind::Host) {
        shared.metrics.refused(Limit::HostsPerAddress);
        mark_offline(&shared, &id, conn_id);
        let message = "too many hosts are connected from your address; ask the relay's operator";
        send_error(&mut conn, ErrorCode::RateLimited, message).await;
        return;
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
    // With other nodes, each heartbeat renews the host's presence in the
    // directory, one renewal at a time, without holding up its notices.
    let mut renewal: Option<RenewalCall> = None;
    let reason = loop {
        tokio::select! {
            msg = tokio::time::timeout(heartbeat, read_msg(&mut conn)) => match msg {
                Ok(Some(ToRelay::Ping)) => {
                    if conn.write_all(&relay::encode(&FromRelay::Pong)).await.is_err() {
                        break "write failed";
                    }
                    if let (Some(cluster), None) = (&shared.cluster, &renewal) {
                        renewal = Some(renew(cluster.clone(), id.clone(), public_key.clone()));
                    }
                }
                Ok(Some(ToRelay::HostDecline { session, message })) => {
                    decline(&shared, &id, &session, message);
                }
                Ok(Some(other)) => {
                    send_error(&mut conn, ErrorCode::BadRequest, format!("unexpected {}", kind(&other))).await;
                    break "protocol error";
                }
                Ok(None) => break "disconnected",
                Err(_) => break "heartbeat timeout",
            },
            renewed = async { renewal.as_mut().expect("checked").await }, if renewal.is_some() => {
                renewal = None;
                match renewed {
                    Ok(Renewal::Held) => {}
                    Ok(Renewal::Lost) => break "released by the operator",
                    Err(e) => {
                        // Kept online here; renewed again at the next
                        // heartbeat, once the directory is back.
                        shared.metrics.directory_error();
                        warn!(%id, error = %e, "cannot renew a host's presence");
                    }
                }
            }
            notice = notices.recv() => match notice {
                Some(notice) => {
                    let Notice { session, client_addr } = *notice;
                    let node = shared.cluster.as_ref().and_then(|c| c.public.clone());
                    let msg = FromRelay::Incoming { session, client_addr, node };
                    if conn.write_all(&relay::encode(&msg)).await.is_err() {
                        break "write failed";
                    }
                }
                // Replaced by a newer connection of the same host,
                // released by the operator, or this node is stopping.
                None if shared.draining.load(Ordering::Acquire) => {
                    let message = "this relay node is stopping; connect to another";
                    send_error(&mut conn, ErrorCode::RelayFull, message).await;
                    break "the relay node is stopping";
                }
                None => break "replaced or released",
            },
        }
    };
    mark_offline(&shared, &id, conn_id);
    info!(%peer, %id, reason, "host offline");
}

/// Tells the node that held the presence of `id` until this node's claim to
/// let go of its older control connection: the host may have lost it
/// without that node noticing (a network that dropped it half-way), and
/// that node would otherwise keep announcing sessions into it until its
/// heartbeat timeout.
async fn let_go_at(cluster: Arc<Cluster>, node: String, id: ComputerId) {
    let request = NodeRequest::LetGo {
        version: PROTOCOL_VERSION,
        id: id.clone(),
    };
    match cluster.ask(&node, &request).await {
        Ok(mut told) => {
            let _ = tokio::io::AsyncWriteExt::shutdown(&mut told).await;
        }
        // Its own heartbeat timeout lets go in the end.
        Err(e) => debug!(%id, %node, error = %e, "cannot tell the host's former node"),
    }
}

/// Another node holds the host of `id` now: let go of its control
/// connection here, unless the directory says the host is back here.
async fn let_go_here(shared: &Shared, id: &ComputerId, from: SocketAddr) {
    let Some(cluster) = &shared.cluster else {
        return;
    };
    // The connection here now: one that comes while the directory is asked
    // is the host back here, and stays.
    let Some(held) = shared
        .registry
        .lock()
        .unwrap()
        .online
        .get(id)
        .map(|h| h.conn)
    else {
        return;
    };
    match cluster.directory.find(id).await {
        Ok(Whereabouts::At(node)) if node != cluster.directory.node() => {
            let mut registry = shared.registry.lock().unwrap();
            if registry.online.get(id).is_some_and(|h| h.conn == held) {
                registry.online.remove(id);
                info!(%id, %node, "host registered at another node; its older connection here let go");
            }
        }
        Ok(_) => {}
        Err(e) => debug!(%id, %from, error = %e, "cannot check where a host is now"),
    }
}

/// What a host is told when the directory cannot be reached.
const DIRECTORY_DOWN: &str = "the relay cannot reach its directory of computers right now; the \
                              office PC tries again by itself";

/// A renewal of a host's presence under way.
type RenewalCall =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Renewal, Unreachable>> + Send>>;

fn renew(cluster: Arc<Cluster>, id: ComputerId, key: Vec<u8>) -> RenewalCall {
    Box::pin(async move { cluster.directory.renew(&id, &key).await })
}

/// Whether `id` is free for `key` to claim as a new binding.
async fn claimable(shared: &Shared, id: &ComputerId, key: &[u8]) -> Result<bool, Unreachable> {
    match &shared.cluster {
        Some(cluster) => cluster.directory.claimable(id, key).await,
        None => Ok(shared.registry.lock().unwrap().claimable(id, key)),
    }
}

/// Refuses a registration the directory could not answer (the host tries
/// again with its back-off).
async fn directory_down(
    shared: &Shared,
    conn: &mut FramedIo<Stream>,
    peer: SocketAddr,
    id: &ComputerId,
    e: Unreachable,
) {
    warn!(%peer, %id, error = %e, "registration refused: no directory");
    shared.metrics.directory_error();
    shared.metrics.registration("directory_down");
    send_error(conn, ErrorCode::Internal, DIRECTORY_DOWN).await;
}

/// Whether a host at `peer` may bind the new ID `id`: with a valid token
/// always (returned, to be recorded once the ID is bound); without one only
/// on an open relay, and only so many per address and in all. Wrong tokens
/// are limited per address.
async fn may_bind(
    shared: &Shared,
    peer: SocketAddr,
    id: &ComputerId,
    token: Option<&str>,
) -> Result<Option<tokens::Valid>, (ErrorCode, String)> {
    let enrolment_key = limits::enrolment_key(peer.ip());
    let too_many = |wait: Duration| {
        (
            ErrorCode::RateLimited,
            format!(
                "too many new computer IDs were registered lately; try again in {} s, or ask \
                 the relay's operator for an enrolment token",
                wait.as_secs().max(1)
            ),
        )
    };
    let take_new_id = || {
        shared.new_ids_per_ip.take(&enrolment_key)?;
        shared.new_ids_total.take(&())
    };
    let refused = |e: tokens::TokenError| {
        (
            ErrorCode::EnrolmentRequired,
            format!(
                "{e}; ask the relay's operator for one (thin-relay token new) and give it to \
                 thin-host init --enrol-token"
            ),
        )
    };
    match (token, shared.closed) {
        (None, false) => return take_new_id().map(|()| None).map_err(too_many),
        (None, true) => return Err(refused(tokens::TokenError::Missing)),
        (Some(_), _) => {}
    }
    // Guessing tokens costs the guesser: after a few wrong ones, an address
    // is refused before any token it sends is even looked up.
    if !shared.token_failures.has_room(&enrolment_key) {
        return Err((
            ErrorCode::RateLimited,
            "too many wrong enrolment tokens came from your address; try again in a few \
             minutes"
                .to_owned(),
        ));
    }
    let (dir, token_text, claimed) = (shared.dir.clone(), token.map(str::to_owned), id.clone());
    let checked = tokio::task::spawn_blocking(move || {
        tokens::check(&dir, token_text.as_deref(), &claimed, SystemTime::now())
    })
    .await
    .unwrap_or(Err(tokens::TokenError::Unknown));
    checked.map(Some).map_err(|e| {
        let _ = shared.token_failures.take(&enrolment_key);
        refused(e)
    })
}

/// The token bound `id`: its use is saved (and audited) before the host is
/// told it is registered.
async fn record_token_use(
    shared: &Shared,
    peer: SocketAddr,
    id: &ComputerId,
    valid: tokens::Valid,
) {
    let (dir, bound) = (shared.dir.clone(), id.clone());
    let recorded = tokio::task::spawn_blocking(move || tokens::record_use(&dir, &valid, &bound))
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))
        .and_then(|saved| saved);
    if let Err(e) = recorded {
        warn!(%id, error = %e, "cannot record the use of an enrolment token");
    }
    oplog::record(
        &shared.dir,
        "token_used",
        serde_json::json!({ "id": id, "source": peer.ip() }),
    );
}

/// The host will not serve `session`: tell its waiting client why.
fn decline(shared: &Shared, id: &ComputerId, session: &[u8], mut message: String) {
    let Some(pending) = take_pending(shared, id, session) else {
        return;
    };
    if message.len() > MAX_DECLINE_MESSAGE {
        let mut end = MAX_DECLINE_MESSAGE;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    info!(%id, %message, "host declined a session");
    let declined = (ErrorCode::HostBusy, message, Pairing::Declined);
    let _ = pending.deliver.send(Err(declined));
}

/// The waiting client of `session`, if it asked for `id`.
fn take_pending(shared: &Shared, id: &ComputerId, session: &[u8]) -> Option<PendingSession> {
    let mut pending = shared.pending.lock().unwrap();
    match pending.get(session) {
        Some(p) if p.id == *id => pending.remove(session),
        _ => None,
    }
}

fn mark_offline(shared: &Shared, id: &ComputerId, conn_id: u64) {
    let mut registry = shared.registry.lock().unwrap();
    if registry.online.get(id).is_none_or(|h| h.conn != conn_id) {
        return;
    }
    registry.online.remove(id);
    drop(registry);
    if let Some(cluster) = shared.cluster.clone() {
        let id = id.clone();
        tokio::spawn(async move {
            if let Err(e) = cluster.directory.leave(&id).await {
                // Its presence expires by itself.
                debug!(%id, error = %e, "cannot withdraw a host's presence");
            }
        });
    }
}

/// A data connection from `addr` could not be handed on: counted against
/// its address.
fn hand_on_failed(shared: &Shared, addr: SocketAddr) {
    let _ = shared
        .failed_hand_ons
        .take(&limits::enrolment_key(addr.ip()));
}

/// A host's data connection for one session: hand it to the waiting client.
async fn host_data(
    shared: Arc<Shared>,
    mut conn: FramedIo<Stream>,
    from: Source,
    id: ComputerId,
    session: Vec<u8>,
) {
    let Some(pending) = take_pending(&shared, &id, &session) else {
        // With other nodes, the client may wait at the node that holds the
        // host's control connection (a load balancer chose this one).
        if let (Source::Peer { addr, slot }, Some(cluster)) = (from, &shared.cluster) {
            if !shared
                .failed_hand_ons
                .has_room(&limits::enrolment_key(addr.ip()))
            {
                shared.metrics.refused(Limit::FailedHandOns);
                let message = "too many connections from this address for sessions no client \
                               waits for; try again in a minute";
                send_error(&mut conn, ErrorCode::RateLimited, message).await;
                return;
            }
            match cluster.directory.find(&id).await {
                Ok(Whereabouts::At(node)) if node != cluster.directory.node() => {
                    let at = (node, addr, slot);
                    return accept_through(&shared, conn, at, id, session).await;
                }
                Ok(_) => hand_on_failed(&shared, addr),
                Err(e) => {
                    warn!(peer = %addr, %id, error = %e, "cannot hand a data connection on");
                    shared.metrics.directory_error();
                    send_error(&mut conn, ErrorCode::Internal, DIRECTORY_DOWN).await;
                    return;
                }
            }
        }
        send_error(
            &mut conn,
            ErrorCode::UnknownSession,
            "no client is waiting for this session",
        )
        .await;
        return;
    };
    let (peer, slot) = match from {
        Source::Peer { addr, mut slot } => {
            if !slot.prove(Kind::Host) {
                shared.metrics.refused(Limit::HostsPerAddress);
                let message = "too many connections from the office PC's address";
                let busy = (ErrorCode::HostBusy, message.into(), Pairing::Busy);
                let _ = pending.deliver.send(Err(busy));
                send_error(&mut conn, ErrorCode::RateLimited, message).await;
                return;
            }
            (addr.to_string(), Some(slot))
        }
        Source::Node(node) => (node.to_string(), None),
    };
    if conn
        .write_all(&relay::encode(&FromRelay::Paired))
        .await
        .is_err()
    {
        return;
    }
    debug!(%peer, %id, "host data connection joined");
    let (stream, rest) = conn.into_parts();
    let _ = pending
        .deliver
        .send(Ok((stream, rest, Held { _slot: slot })));
}

/// Where a connection comes from: a peer connected here (holding its
/// place), or another node on the cluster port.
enum Source {
    Peer { addr: SocketAddr, slot: Slot },
    Node(SocketAddr),
}

/// A host's data connection for a session whose client waits at the node
/// `at.0`: hand it to that node and splice.
async fn accept_through(
    shared: &Arc<Shared>,
    mut conn: FramedIo<Stream>,
    (node, peer, mut slot): (String, SocketAddr, Slot),
    id: ComputerId,
    session: Vec<u8>,
) {
    if !slot.prove(Kind::Host) {
        shared.metrics.refused(Limit::HostsPerAddress);
        let message = "too many connections from the office PC's address";
        send_error(&mut conn, ErrorCode::RateLimited, message).await;
        return;
    }
    let cluster = shared.cluster.as_ref().expect("only with other nodes");
    let request = NodeRequest::Accept {
        version: PROTOCOL_VERSION,
        id: id.clone(),
        session,
    };
    let answer = async {
        let upstream = cluster.ask(&node, &request).await?;
        let mut upstream: FramedIo<Stream> = FramedIo::new(Box::new(upstream));
        let frame = tokio::time::timeout(cluster::DIAL_TIMEOUT, upstream.read_frame())
            .await
            .map_err(|_| "no answer in time".to_owned())?
            .map_err(|e| e.to_string())?;
        let answer = relay::decode::<FromRelay>(&frame).map_err(|e| e.to_string())?;
        Ok::<_, String>((upstream, answer))
    };
    let upstream = match answer.await {
        Ok((upstream, FromRelay::Paired)) => upstream,
        Ok((_, FromRelay::Error { code, message })) => {
            hand_on_failed(shared, peer);
            send_error(&mut conn, code, message).await;
            return;
        }
        Ok((_, other)) => {
            warn!(%peer, %id, %node, ?other, "unexpected answer from another node");
            send_error(&mut conn, ErrorCode::Internal, "the relay lost the session").await;
            return;
        }
        Err(e) => {
            warn!(%peer, %id, %node, error = %e, "cannot hand a data connection to its node");
            let message = "the relay node the client waits at cannot be reached";
            send_error(&mut conn, ErrorCode::UnknownSession, message).await;
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
    debug!(%peer, %id, %node, "host data connection handed to another node");
    let (host_stream, host_rest) = conn.into_parts();
    let (node_stream, node_rest) = upstream.into_parts();
    let peer = peer.to_string();
    splice(
        shared,
        &peer,
        &id,
        (node_stream, node_rest),
        (host_stream, host_rest),
    )
    .await;
}

/// A client asking for a computer: find its host, wait for it, splice.
async fn client(
    shared: Arc<Shared>,
    mut conn: FramedIo<Stream>,
    peer: SocketAddr,
    slot: Slot,
    id: ComputerId,
) {
    let asked = Instant::now();
    let source = proto::rate::source_key(peer.ip());
    if let Err(wait) = shared.pairing_per_ip.take(&source) {
        info!(%peer, %id, "pairing refused: too many from this address");
        shared.metrics.refused(Limit::PairingsPerAddress);
        shared.metrics.pairing(Pairing::Refused);
        let message = format!(
            "too many connection attempts from your address; try again in {} s",
            wait.as_secs().max(1)
        );
        send_error(&mut conn, ErrorCode::RateLimited, message).await;
        return;
    }
    // Only an address that asked for this ID within the last minute
    // competes for the ID's budget: requests from elsewhere cannot use up
    // a newcomer's first try.
    // So many first requests per ID pass this way, and no more.
    let pair = (id.clone(), source);
    let asked_before = !shared.recent_pairings.idle(&pair);
    let _ = shared.recent_pairings.take(&pair);
    let first_request = !asked_before && shared.first_pairings_per_id.take(&id).is_ok();
    let per_id = if first_request {
        Ok(())
    } else {
        shared.pairing_per_id.take(&id)
    };
    if let Err(wait) = per_id {
        info!(%peer, %id, "pairing refused: too many for this computer");
        shared.metrics.refused(Limit::PairingsPerId);
        shared.metrics.pairing(Pairing::Refused);
        let message = format!(
            "computer '{id}' is receiving too many connection attempts; try again in {} s",
            wait.as_secs().max(1)
        );
        send_error(&mut conn, ErrorCode::RateLimited, message).await;
        return;
    }
    let (here, known) = {
        let registry = shared.registry.lock().unwrap();
        let here = registry.online.get(&id).map(|host| host.notices.clone());
        (here, registry.is_known(&id))
    };
    let unknown = || {
        let message =
            format!("no computer with ID '{id}' is registered at this relay; check the ID");
        (ErrorCode::UnknownId, message, Pairing::UnknownId)
    };
    let offline = || {
        let message =
            format!("computer '{id}' is offline: its host agent is not connected to the relay");
        (ErrorCode::HostOffline, message, Pairing::HostOffline)
    };
    let Some(_place) = SessionPlace::take(&shared) else {
        info!(%peer, %id, "pairing refused: no room for another session at this node");
        shared.metrics.refused(Limit::Sessions);
        shared.metrics.pairing(Pairing::Refused);
        send_error(&mut conn, ErrorCode::RelayFull, SESSIONS_FULL).await;
        return;
    };
    let (code, message, outcome) = match (here, &shared.cluster) {
        (Some(notices), _) => {
            let asker = Asker::Client { peer, slot };
            return pair_here(&shared, conn, asker, id, notices, asked).await;
        }
        (None, None) if known => offline(),
        (None, None) => unknown(),
        (None, Some(cluster)) => match cluster.directory.find(&id).await {
            Ok(Whereabouts::At(node)) if node != cluster.directory.node() => {
                let at = (node, asked);
                return Box::pin(pair_through(&shared, conn, peer, slot, id, at)).await;
            }
            Ok(Whereabouts::Unknown) => unknown(),
            // Present here by the directory, not by this node: gone.
            Ok(Whereabouts::At(_) | Whereabouts::Offline) => offline(),
            Err(e) => {
                warn!(%peer, %id, error = %e, "cannot look a computer up");
                shared.metrics.directory_error();
                let message = format!(
                    "the relay cannot look up computer '{id}' right now (its directory is \
                     unreachable); try again in a minute"
                );
                (ErrorCode::Internal, message, Pairing::DirectoryDown)
            }
        },
    };
    info!(%peer, %id, ?code, "client refused");
    shared.metrics.pairing(outcome);
    send_error(&mut conn, code, message).await;
}

/// Who asks for a host at this node: a client connected here, or another
/// node for a client connected there (which holds that client's place and
/// counts its pairing).
enum Asker {
    Client { peer: SocketAddr, slot: Slot },
    Node { client_addr: String },
}

impl Asker {
    fn addr(&self) -> String {
        match self {
            Asker::Client { peer, .. } => peer.to_string(),
            Asker::Node { client_addr } => client_addr.clone(),
        }
    }

    fn pairing(&self, shared: &Shared, outcome: Pairing) {
        if let Asker::Client { .. } = self {
            shared.metrics.pairing(outcome);
        }
    }
}

/// Asks the host connected here (its notices: `notices`) for a session and
/// splices it with the asker's connection.
async fn pair_here(
    shared: &Arc<Shared>,
    mut conn: FramedIo<Stream>,
    mut asker: Asker,
    id: ComputerId,
    notices: mpsc::Sender<Box<Notice>>,
    asked: Instant,
) {
    let peer = asker.addr();
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
        client_addr: peer.clone(),
    });
    if notices.try_send(notice).is_err() {
        forget();
        shared.metrics.refused(Limit::PendingPerHost);
        asker.pairing(shared, Pairing::Refused);
        send_error(
            &mut conn,
            ErrorCode::RateLimited,
            format!("computer '{id}' has too many connection attempts waiting; try again shortly"),
        )
        .await;
        return;
    }
    // Only the host's own entry keeps its notices open (when it is let go,
    // its control connection ends even with sessions under way).
    drop(notices);
    if conn
        .write_all(&relay::encode(&FromRelay::HostNotified))
        .await
        .is_err()
    {
        forget();
        return;
    }

    let host_conn = match tokio::time::timeout(shared.limits.pairing_timeout, delivered).await {
        Ok(Ok(Ok(host_conn))) => host_conn,
        Ok(Ok(Err((code, message, outcome)))) => {
            info!(%peer, %id, ?code, "host declined the session");
            asker.pairing(shared, outcome);
            send_error(&mut conn, code, message).await;
            return;
        }
        _ => {
            forget();
            info!(%peer, %id, "host did not answer in time");
            asker.pairing(shared, Pairing::Timeout);
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
    let (host_stream, host_rest, _host_held) = host_conn;
    if let Asker::Client { slot, .. } = &mut asker {
        if !slot.prove(Kind::Client) {
            shared.metrics.refused(Limit::SessionsPerAddress);
            shared.metrics.pairing(Pairing::Refused);
            let message = "too many sessions from your address at once";
            send_error(&mut conn, ErrorCode::RateLimited, message).await;
            return;
        }
    }
    if conn
        .write_all(&relay::encode(&FromRelay::Paired))
        .await
        .is_err()
    {
        return;
    }
    info!(%peer, %id, "paired");
    if let Asker::Client { .. } = asker {
        shared.metrics.pairing(Pairing::Paired);
        shared.metrics.paired_after(asked.elapsed());
    }
    let (client_stream, client_rest) = conn.into_parts();
    splice(
        shared,
        &peer,
        &id,
        (client_stream, client_rest),
        (host_stream, host_rest),
    )
    .await;
}

/// The client's host is connected at the node `at.0`: ask that node for
/// it, pass its answers on, and splice the client with it.
async fn pair_through(
    shared: &Arc<Shared>,
    mut conn: FramedIo<Stream>,
    peer: SocketAddr,
    mut slot: Slot,
    id: ComputerId,
    (node, asked): (String, Instant),
) {
    let cluster = shared.cluster.as_ref().expect("only with other nodes");
    let request = NodeRequest::Forward {
        version: PROTOCOL_VERSION,
        id: id.clone(),
        client_addr: peer.to_string(),
    };
    let upstream = match cluster.ask(&node, &request).await {
        Ok(upstream) => upstream,
        Err(e) => {
            // A node that died leaves presences behind until they expire;
            // its hosts come back at other nodes.
            warn!(%peer, %id, %node, error = %e, "cannot reach the host's relay node");
            shared.metrics.pairing(Pairing::HostOffline);
            let message = format!(
                "computer '{id}' is connected to another relay node that cannot be reached; \
                 try again in a minute"
            );
            send_error(&mut conn, ErrorCode::HostOffline, message).await;
            return;
        }
    };
    let mut upstream: FramedIo<Stream> = FramedIo::new(Box::new(upstream));
    // Longer than the other node's own wait for its host.
    let patience = shared.limits.pairing_timeout + cluster::DIAL_TIMEOUT;
    loop {
        let answer = tokio::time::timeout(patience, upstream.read_frame()).await;
        let answer = match answer {
            Ok(Ok(frame)) => relay::decode::<FromRelay>(&frame).ok(),
            _ => None,
        };
        match answer {
            Some(FromRelay::HostNotified) => {
                let notified = relay::encode(&FromRelay::HostNotified);
                if conn.write_all(&notified).await.is_err() {
                    return;
                }
            }
            Some(FromRelay::Paired) => break,
            Some(FromRelay::Error { code, message }) => {
                info!(%peer, %id, %node, ?code, "the host's node refused the session");
                shared.metrics.pairing(match code {
                    ErrorCode::HostOffline => Pairing::HostOffline,
                    ErrorCode::Timeout => Pairing::Timeout,
                    ErrorCode::HostBusy => Pairing::Declined,
                    ErrorCode::Denied => Pairing::Denied,
                    _ => Pairing::Refused,
                });
                send_error(&mut conn, code, message).await;
                return;
            }
            _ => {
                warn!(%peer, %id, %node, "the host's node broke off");
                shared.metrics.pairing(Pairing::HostOffline);
                let message = format!("the relay lost its way to computer '{id}'; try again");
                send_error(&mut conn, ErrorCode::HostOffline, message).await;
                return;
            }
        }
    }
    if !slot.prove(Kind::Client) {
        shared.metrics.refused(Limit::SessionsPerAddress);
        shared.metrics.pairing(Pairing::Refused);
        let message = "too many sessions from your address at once";
        send_error(&mut conn, ErrorCode::RateLimited, message).await;
        return;
    }
    if conn
        .write_all(&relay::encode(&FromRelay::Paired))
        .await
        .is_err()
    {
        return;
    }
    info!(%peer, %id, %node, "paired through another node");
    shared.metrics.pairing(Pairing::Paired);
    shared.metrics.paired_after(asked.elapsed());
    let (client_stream, client_rest) = conn.into_parts();
    let (node_stream, node_rest) = upstream.into_parts();
    let peer = peer.to_string();
    splice(
        shared,
        &peer,
        &id,
        (client_stream, client_rest),
        (node_stream, node_rest),
    )
    .await;
}

/// Longest client address another node may pass on.
const MAX_CLIENT_ADDR: usize = 64;

/// Connections on the cluster port that have not yet proved to be a node:
/// at most this many wait at once (the oldest makes room for a new one),
/// only so many of them from one address, each for so long.
const MAX_CLUSTER_HANDSHAKES: usize = 64;
const CLUSTER_HANDSHAKES_PER_ADDRESS: usize = 8;
const CLUSTER_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);

/// How often one ID of a relay's file may be refused by Redis itself
/// before the import goes on without it (a connection problem is waited
/// out instead).
const IMPORT_TRIES: u32 = 3;

/// A relay that was one process before it became a node brings the
/// bindings and releases of its own file into the shared directory (where
/// the directory has nothing for them), so its office PCs stay known and a
/// closed relay does not ask them for enrolment tokens. Claims and look-ups
/// wait meanwhile (a squatter could otherwise take a known PC's ID first);
/// what the directory has already is left alone. Done once per file: the
/// task to run, if the file has news for the directory.
fn import_registry(shared: &Arc<Shared>) -> Option<impl Future<Output = ()> + use<>> {
    let cluster = shared.cluster.as_ref()?;
    let (need, entries) = {
        let registry = shared.registry.lock().expect("not poisoned");
        let need = registry.import_need();
        if need == ImportNeed::Nothing {
            return None;
        }
        (need, registry.entries())
    };
    let mut note = [0u8; 12];
    shared.rng.fill(&mut note).ok()?;
    let note: String = note.iter().map(|b| format!("{b:02x}")).collect();
    cluster.directory.hold();
    let shared = Arc::downgrade(shared);
    Some(async move {
        if let ImportNeed::IfLost(earlier) = &need {
            if !lost_earlier_import(&shared, earlier).await {
                return;
            }
        }
        let mut outcome = Imports::default();
        let mut refused = 0;
        let mut marked: Option<Instant> = None;
        let mut left = entries.as_slice();
        while let Some(Entry { id, key, released }) = left.first() {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let directory = shared.import_directory();
            // Every node holds new IDs while the mark lasts; renewed well
            // before it runs out.
            let stale = marked.is_none_or(|at| at.elapsed() > directory::IMPORT_MARK / 3);
            let mark = if stale {
                directory.importing().await
            } else {
                Ok(())
            };
            let imported = match mark {
                Ok(()) => {
                    if stale {
                        marked = Some(Instant::now());
                    }
                    directory.import(id, key.as_deref(), released).await
                }
                Err(e) => Err(e),
            };
            match imported {
                Ok(imported) => outcome.count(id, imported),
                Err(e) if e.answered() && refused + 1 >= IMPORT_TRIES => {
                    error!(%id, error = %e, "this ID of hosts.jsonl cannot be brought into the directory; going on without it");
                    outcome.failed += 1;
                }
                Err(e) => {
                    refused += u32::from(e.answered());
                    drop(shared);
                    if e.answered() {
                        warn!(%id, error = %e, "Redis refused this ID of hosts.jsonl; trying again");
                    } else {
                        warn!(error = %e, "cannot bring hosts.jsonl into the directory yet; retrying");
                    }
                    tokio::time::sleep(IMPORT_RETRY).await;
                    continue;
                }
            }
            refused = 0;
            left = &left[1..];
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let directory = shared.import_directory();
        if let Err(e) = directory.imported().await {
            warn!(error = %e, "cannot lift the import mark; it lapses by itself within 30 s");
        }
        let Imports {
            added,
            there,
            released,
            other,
            conflicts,
            failed,
        } = outcome;
        info!(
            added,
            already_there = there,
            released,
            held_by_another = other,
            conflicts,
            failed,
            "the relay's own bindings are in the shared directory"
        );
        if failed == 0 {
            let noted = match directory.note_import(&note).await {
                Ok(()) => shared
                    .registry
                    .lock()
                    .expect("not poisoned")
                    .mark_imported(&note),
                Err(e) => Err(e.into()),
            };
            if let Err(e) = noted {
                warn!(error = %e, "the import is done but cannot be noted; it runs again at the next start");
            }
        }
        shared.import_directory().release();
    })
}

/// Whether the directory lost the import noted as `earlier` (asked until
/// Redis answers); when it did not, claims go ahead at once.
async fn lost_earlier_import(shared: &std::sync::Weak<Shared>, earlier: &str) -> bool {
    loop {
        let Some(shared) = shared.upgrade() else {
            return false;
        };
        let directory = shared.import_directory();
        match directory.has_import(earlier).await {
            Ok(true) => {
                info!("hosts.jsonl is in the shared directory since an earlier start; not again");
                directory.release();
                return false;
            }
            Ok(false) => {
                warn!("the shared directory no longer knows this node's hosts.jsonl (a new or emptied Redis): bringing it in again");
                return true;
            }
            Err(e) => {
                drop(shared);
                warn!(error = %e, "cannot ask the directory about hosts.jsonl yet; retrying");
                tokio::time::sleep(IMPORT_RETRY).await;
            }
        }
    }
}

/// How long the import waits for Redis before it tries again.
const IMPORT_RETRY: Duration = Duration::from_secs(2);

/// What an import did, ID by ID.
#[derive(Default)]
struct Imports {
    added: usize,
    there: usize,
    released: usize,
    other: usize,
    conflicts: usize,
    failed: usize,
}

impl Imports {
    fn count(&mut self, id: &ComputerId, imported: Imported) {
        match imported {
            Imported::Added => self.added += 1,
            Imported::AlreadyThere => self.there += 1,
            Imported::Released => self.released += 1,
            Imported::HeldByAnother => {
                self.other += 1;
                warn!(%id, "the directory binds this ID to another key, which keeps it");
            }
            Imported::Conflict => {
                self.conflicts += 1;
                warn!(%id, "hosts.jsonl and the directory disagree whether this ID's key is released; the directory is left as it is (thin-relay unbind --directory settles it)");
            }
        }
    }
}

/// Accepts other nodes on the cluster port until the task is dropped.
async fn serve_cluster(shared: Arc<Shared>, listener: TcpListener) {
    // Nodes' connections are authenticated by the handshake; until then a
    // stranger could hold them open, so only so many wait at once, and a
    // flood from many addresses pushes out its own oldest rather than lock
    // the nodes out (a node's handshake takes milliseconds).
    let per_address = PerAddress {
        open: CLUSTER_HANDSHAKES_PER_ADDRESS,
        host: 0,
        client: 0,
    };
    let handshakes = Arc::new(Connections::new(MAX_CLUSTER_HANDSHAKES, per_address));
    let mut next = 0u64;
    loop {
        let (tcp, from) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                warn!(error = %e, "cluster port: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        next += 1;
        let Ok(handshake) = handshakes.admit(from.ip(), next) else {
            debug!(%from, "cluster port: too many handshakes from this address");
            shared.metrics.refused(Limit::ClusterHandshakes);
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            tcp.set_nodelay(true).ok();
            forwarded(shared, tcp, from, handshake).await;
        });
    }
}

/// Another node asks for a host connected here for its client; `handshake`
/// is held until the peer proved to be a node.
async fn forwarded(
    shared: Arc<Shared>,
    tcp: TcpStream,
    from: SocketAddr,
    (handshake, evict): (Slot, Evict),
) {
    let Some(cluster) = shared.cluster.clone() else {
        return;
    };
    let acceptor = cluster.acceptor();
    let first = tokio::time::timeout(CLUSTER_HANDSHAKE_TIMEOUT, async {
        let tls = acceptor.accept(tcp).await.map_err(|e| e.to_string())?;
        let mut conn: FramedIo<Stream> = FramedIo::new(Box::new(tls));
        let frame = conn.read_frame().await.map_err(|e| e.to_string())?;
        Ok::<_, String>((conn, frame))
    });
    let first = tokio::select! {
        first = first => first,
        _ = evict => {
            debug!(%from, "cluster port: made room for a newer connection");
            shared.metrics.refused(Limit::ClusterHandshakes);
            return;
        }
    };
    let (mut conn, frame) = match first {
        Ok(Ok(first)) => first,
        Ok(Err(e)) => {
            shared.metrics.cluster_handshake_failed();
            debug!(%from, error = %e, "cluster port: a peer that is not a node of this relay");
            return;
        }
        Err(_) => {
            shared.metrics.cluster_handshake_failed();
            debug!(%from, "cluster port: nothing within the handshake timeout");
            return;
        }
    };
    drop(handshake);
    let (id, mut client_addr) = match relay::decode::<NodeRequest>(&frame) {
        Ok(NodeRequest::Forward {
            version,
            id,
            client_addr,
        }) if check_version(&mut conn, version).await => (id, client_addr),
        Ok(NodeRequest::Accept {
            version,
            id,
            session,
        }) if check_version(&mut conn, version).await => {
            return host_data(shared, conn, Source::Node(from), id, session).await;
        }
        Ok(NodeRequest::LetGo { version, id }) if check_version(&mut conn, version).await => {
            return let_go_here(&shared, &id, from).await;
        }
        Ok(_) => return,
        Err(e) => {
            send_error(&mut conn, ErrorCode::BadRequest, e.to_string()).await;
            return;
        }
    };
    if client_addr.len() > MAX_CLIENT_ADDR || !client_addr.is_ascii() {
        client_addr = "unknown".to_owned();
    }
    let here = {
        let registry = shared.registry.lock().unwrap();
        registry.online.get(&id).map(|host| host.notices.clone())
    };
    let Some(notices) = here else {
        let message =
            format!("computer '{id}' is offline: its host agent is not connected to the relay");
        send_error(&mut conn, ErrorCode::HostOffline, message).await;
        return;
    };
    let Some(_place) = SessionPlace::take(&shared) else {
        shared.metrics.refused(Limit::Sessions);
        send_error(&mut conn, ErrorCode::RelayFull, SESSIONS_FULL).await;
        return;
    };
    debug!(%from, %id, "pairing for a client of another node");
    let asker = Asker::Node { client_addr };
    pair_here(&shared, conn, asker, id, notices, Instant::now()).await;
}

/// Copies bytes both ways with bounded buffers until either side closes.
/// Logs only sizes and durations, never contents.
async fn splice(
    shared: &Shared,
    peer: &str,
    id: &ComputerId,
    client: (Stream, Vec<u8>),
    host: (Stream, Vec<u8>),
) {
    let started = Instant::now();
    let mut active = shared.metrics.session();
    let mut client = Counted::new(Prefixed::new(client.1, client.0));
    let mut host = Counted::new(Prefixed::new(host.1, host.0));
    let size = shared.limits.splice_buffer;
    let copied = match &shared.tap {
        None => tokio::io::copy_bidirectional_with_sizes(&mut client, &mut host, size, size).await,
        Some(tap) => {
            let mut client = Tapped::new(&mut client, tap.clone(), Direction::ClientToHost);
            let mut host = Tapped::new(&mut host, tap.clone(), Direction::HostToClient);
            tokio::io::copy_bidirectional_with_sizes(&mut client, &mut host, size, size).await
        }
    };
    // Bytes read from each side (what reached the other, give or take the
    // last buffer when a side broke off).
    let (up, down) = (client.read, host.read);
    (active.up, active.down) = (up, down);
    let secs = started.elapsed().as_secs();
    match copied {
        Ok(_) => info!(%peer, %id, up, down, secs, "session ended"),
        Err(e) => info!(%peer, %id, up, down, secs, error = %e, "session ended"),
    }
}
