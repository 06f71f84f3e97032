//! What operators watch: Prometheus metrics (OpenMetrics text) served on an
//! admin address of their choosing (`thin-relay serve --metrics ADDR`),
//! never on the public port. Counts only: no computer ID, address or byte
//! of content appears in them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, warn};

/// One label: its name and value.
type Label = [(&'static str, &'static str); 1];

/// The relay's metrics, updated where things happen.
pub struct Metrics {
    registry: Registry,
    hosts_online: Gauge,
    sessions_active: Gauge,
    /// Pairing requests by outcome (`paired`, or why not).
    pairings: Family<Label, Counter>,
    /// Host registrations by outcome.
    registrations: Family<Label, Counter>,
    /// Bytes carried by ended sessions, by direction.
    bytes: Family<Label, Counter>,
    /// From a client's request to its host's data connection joining.
    pairing_seconds: Histogram,
    tls_handshake_failures: Counter,
    /// Connections to the cluster port that were not from a node.
    cluster_handshake_failures: Counter,
    /// Connections and requests refused by a limit, by limit.
    refused: Family<Label, Counter>,
    /// The registry (this node's directory of IDs) could not be written.
    directory_errors: Counter,
}

/// Why a pairing did not happen (the `outcome` label).
#[derive(Clone, Copy)]
pub enum Pairing {
    Paired,
    UnknownId,
    HostOffline,
    Declined,
    Timeout,
    Busy,
    /// Refused by a limit (see the `refused` family for which).
    Refused,
    /// The client's or the host's network is refused by the operator.
    Denied,
    /// The shared directory (Redis) could not be reached.
    DirectoryDown,
}

impl Pairing {
    fn label(self) -> &'static str {
        match self {
            Pairing::Paired => "paired",
            Pairing::UnknownId => "unknown_id",
            Pairing::HostOffline => "host_offline",
            Pairing::Declined => "declined",
            Pairing::Timeout => "timeout",
            Pairing::Busy => "busy",
            Pairing::Refused => "refused",
            Pairing::Denied => "denied",
            Pairing::DirectoryDown => "directory_down",
        }
    }
}

/// A limit that refused something (the `limit` label).
#[derive(Clone, Copy)]
pub enum Limit {
    /// Connections at once from one address.
    PerAddress,
    /// Connections at once in all.
    Full,
    /// Pairing requests from one address.
    PairingsPerAddress,
    /// Pairing requests for one computer ID.
    PairingsPerId,
    /// Hosts or their data connections from one address.
    HostsPerAddress,
    /// Sessions of clients at one address.
    SessionsPerAddress,
    /// Requests waiting for one host.
    PendingPerHost,
    /// New computer IDs without an enrolment token.
    NewIds,
    /// A network the operator refuses.
    Denied,
    /// Hosts at this node (`--max-hosts`).
    Hosts,
    /// Sessions at this node (`--max-sessions`).
    Sessions,
    /// Unauthenticated connections at once on the cluster port.
    ClusterHandshakes,
    /// Data connections from one address that could not be handed on to
    /// another node.
    FailedHandOns,
}

impl Limit {
    fn label(self) -> &'static str {
        match self {
            Limit::PerAddress => "connections_per_address",
            Limit::Full => "relay_full",
            Limit::PairingsPerAddress => "pairings_per_address",
            Limit::PairingsPerId => "pairings_per_id",
            Limit::HostsPerAddress => "hosts_per_address",
            Limit::SessionsPerAddress => "sessions_per_address",
            Limit::PendingPerHost => "pending_per_host",
            Limit::Hosts => "hosts",
            Limit::Sessions => "sessions",
            Limit::NewIds => "new_ids",
            Limit::Denied => "denied_network",
            Limit::ClusterHandshakes => "cluster_handshakes",
            Limit::FailedHandOns => "failed_hand_ons",
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("thin_relay");
        let hosts_online = Gauge::default();
        registry.register(
            "hosts_online",
            "Hosts whose control connection is on this node",
            hosts_online.clone(),
        );
        let sessions_active = Gauge::default();
        registry.register(
            "sessions_active",
            "Paired sessions being spliced now",
            sessions_active.clone(),
        );
        let pairings = Family::default();
        registry.register("pairings", "Pairing requests by outcome", pairings.clone());
        let registrations = Family::default();
        registry.register(
            "host_registrations",
            "Host registrations by outcome",
            registrations.clone(),
        );
        let bytes = Family::default();
        registry.register(
            "relayed_bytes",
            "Bytes carried by ended sessions, by direction",
            bytes.clone(),
        );
        // 1 ms to about 16 s.
        let pairing_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        registry.register(
            "pairing_seconds",
            "Time from a client's request to its host joining",
            pairing_seconds.clone(),
        );
        let tls_handshake_failures = Counter::default();
        registry.register(
            "tls_handshake_failures",
            "Connections whose TLS handshake failed or timed out",
            tls_handshake_failures.clone(),
        );
        let cluster_handshake_failures = Counter::default();
        registry.register(
            "cluster_handshake_failures",
            "Connections to the cluster port whose mutual TLS handshake failed (not a node)",
            cluster_handshake_failures.clone(),
        );
        let refused = Family::default();
        registry.register(
            "refused",
            "Connections and requests refused by a limit, by limit",
            refused.clone(),
        );
        let directory_errors = Counter::default();
        registry.register(
            "directory_errors",
            "Failures to write the directory of computer IDs",
            directory_errors.clone(),
        );
        Self {
            registry,
            hosts_online,
            sessions_active,
            pairings,
            registrations,
            bytes,
            pairing_seconds,
            tls_handshake_failures,
            cluster_handshake_failures,
            refused,
            directory_errors,
        }
    }
}

impl Metrics {
    pub fn pairing(&self, outcome: Pairing) {
        self.pairings
            .get_or_create(&[("outcome", outcome.label())])
            .inc();
    }

    pub fn paired_after(&self, waited: Duration) {
        self.pairing_seconds.observe(waited.as_secs_f64());
    }

    /// `outcome`: `new`, `known`, `taken`, `released`, `refused`, `error`.
    pub fn registration(&self, outcome: &'static str) {
        self.registrations
            .get_or_create(&[("outcome", outcome)])
            .inc();
    }

    pub fn refused(&self, limit: Limit) {
        self.refused
            .get_or_create(&[("limit", limit.label())])
            .inc();
    }

    pub fn tls_handshake_failed(&self) {
        self.tls_handshake_failures.inc();
    }

    pub fn cluster_handshake_failed(&self) {
        self.cluster_handshake_failures.inc();
    }

    pub fn directory_error(&self) {
        self.directory_errors.inc();
    }

    /// A session began; it counts as active until the guard is dropped,
    /// which adds the bytes it carried.
    pub fn session(self: &Arc<Self>) -> ActiveSession {
        self.sessions_active.inc();
        ActiveSession {
            metrics: self.clone(),
            up: 0,
            down: 0,
        }
    }

    /// The metrics as OpenMetrics text, with the hosts online now.
    pub fn encode(&self, hosts_online: usize) -> String {
        self.hosts_online
            .set(i64::try_from(hosts_online).unwrap_or(i64::MAX));
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}

/// A session being spliced (see [`Metrics::session`]).
pub struct ActiveSession {
    metrics: Arc<Metrics>,
    /// Bytes from the client to the host, and back.
    pub up: u64,
    pub down: u64,
}

impl Drop for ActiveSession {
    fn drop(&mut self) {
        // Bytes first: a scrape that sees the session ended sees its bytes.
        let bytes = &self.metrics.bytes;
        bytes
            .get_or_create(&[("direction", "client_to_host")])
            .inc_by(self.up);
        bytes
            .get_or_create(&[("direction", "host_to_client")])
            .inc_by(self.down);
        self.metrics.sessions_active.dec();
    }
}

/// Longest request head a scraper may send.
const MAX_REQUEST: usize = 8 * 1024;
/// Time a scraper has to send its request, and to take the answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Scrapes served at once; a connection past them is closed at once, so
/// idle connections cannot queue ahead of the operator's scraper.
const MAX_SCRAPES: usize = 8;

/// Serves `GET /metrics` on `listener` (plain HTTP/1.1, one request per
/// connection) until the task is dropped; `snapshot` gives the text.
pub async fn serve(listener: TcpListener, snapshot: impl Fn() -> String + Send + Sync + 'static) {
    let snapshot = Arc::new(snapshot);
    let scrapes = Arc::new(tokio::sync::Semaphore::new(MAX_SCRAPES));
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                warn!(error = %e, "metrics: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = scrapes.clone().try_acquire_owned() else {
            debug!(%peer, "metrics: too many scrapes at once; closed");
            continue;
        };
        let snapshot = snapshot.clone();
        tokio::spawn(async move {
            let answered = tokio::time::timeout(REQUEST_TIMEOUT, answer(tcp, &*snapshot)).await;
            if !matches!(answered, Ok(Ok(()))) {
                debug!(%peer, "metrics: request not answered");
            }
            drop(permit);
        });
    }
}

async fn answer(
    mut tcp: TcpStream,
    snapshot: &(dyn Fn() -> String + Send + Sync),
) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let path = loop {
        let n = tcp.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&head) {
            Ok(httparse::Status::Complete(_)) => {
                break (request.method, request.path.map(str::to_owned));
            }
            Ok(httparse::Status::Partial) if head.len() < MAX_REQUEST => continue,
            _ => break (None, None),
        }
    };
    let (status, kind, body) = match path {
        (Some("GET"), Some(path)) if path == "/metrics" || path.starts_with("/metrics?") => (
            "200 OK",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            snapshot(),
        ),
        (Some("GET"), Some(_)) => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "only /metrics is served here\n".to_owned(),
        ),
        _ => (
            "400 Bad Request",
            "text/plain; charset=utf-8",
            "send GET /metrics\n".to_owned(),
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    // The answer has its own time (the request's is spent).
    tokio::time::timeout(REQUEST_TIMEOUT, async {
        tcp.write_all(response.as_bytes()).await?;
        tcp.shutdown().await
    })
    .await
    .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

/// Refuses a metrics address that is the public one: metrics are for
/// operators only. Warns when it may be reachable from the internet.
pub fn check_address(addr: SocketAddr, public: SocketAddr) -> anyhow::Result<()> {
    // Port 0 on both sides means "any free port": two different ones.
    let same_port = addr.port() == public.port() && addr.port() != 0;
    let same_ip =
        addr.ip() == public.ip() || addr.ip().is_unspecified() || public.ip().is_unspecified();
    if same_port && same_ip {
        anyhow::bail!(
            "--metrics must not be the public address {public}: metrics are for operators only"
        );
    }
    let private = match addr.ip() {
        std::net::IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        std::net::IpAddr::V6(v6) => v6.is_loopback() || v6.is_unique_local(),
    };
    if !private {
        warn!(
            %addr,
            "metrics are served on an address that may be reachable from the internet; \
             they show how busy the relay is: prefer loopback or a private network"
        );
    }
    Ok(())
}

/// Binds the metrics address.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen for metrics on {addr}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_address_cannot_serve_metrics() {
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        let public = addr("0.0.0.0:443");
        assert!(check_address(addr("127.0.0.1:443"), public).is_err());
        assert!(check_address(addr("0.0.0.0:443"), public).is_err());
        assert!(check_address(addr("127.0.0.1:9464"), public).is_ok());
        // Two free ports are two ports.
        assert!(check_address(addr("127.0.0.1:0"), addr("127.0.0.1:0")).is_ok());
        assert!(check_address(addr("127.0.0.2:9464"), addr("127.0.0.1:9464")).is_ok());
    }
}
