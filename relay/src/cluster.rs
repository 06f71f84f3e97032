//! A relay node among others: the shared directory, and the cluster port on
//! which nodes hand each other clients whose host is connected elsewhere.
//!
//! A client may reach any node. If its host's control connection is at
//! another node, the client's node dials that node's cluster port (TLS 1.3,
//! both sides proving a certificate from the relay CA) and asks for the
//! host there; the host's node pairs as it does for its own clients and
//! splices its end, the client's node splices the other. Both only ever
//! carry the end-to-end channel's ciphertext. See docs/architecture.md for
//! why nodes splice rather than redirect clients.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::RwLock;
use std::time::Duration;

use proto::relay::{self, NodeRequest};
use rustls::pki_types::ServerName;
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::directory::Directory;
use crate::{certs, CA_FILE, CERT_FILE, KEY_FILE};

/// How long dialling another node and its TLS handshake may take.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(5);

/// The operator's choice of directory and cluster port.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// `redis://host:port[/db]`.
    pub directory: String,
    /// Where this node listens for other nodes, and how they reach it.
    pub addr: SocketAddr,
    /// Where office PCs reach this very node when they know the relay by
    /// a name or load balancer that stands for all nodes (host:port).
    pub public: Option<String>,
}

/// Both sides of the cluster port's TLS, from the relay's own certificate.
struct Tls {
    acceptor: TlsAcceptor,
    connector: TlsConnector,
}

pub struct Cluster {
    pub directory: Directory,
    tls: RwLock<Tls>,
    /// A name the relay certificate covers: every node's certificate does,
    /// whatever address it is dialled at.
    server_name: ServerName<'static>,
    /// See [`ClusterConfig::public`].
    pub public: Option<String>,
}

fn load_tls(dir: &Path) -> anyhow::Result<Tls> {
    let (cert, key, ca) = (dir.join(CERT_FILE), dir.join(KEY_FILE), dir.join(CA_FILE));
    let server = transport::tls::cluster_server_config(&cert, &key, &ca)?;
    let client = transport::tls::cluster_client_config(&cert, &key, &ca)?;
    Ok(Tls {
        acceptor: TlsAcceptor::from(server),
        connector: TlsConnector::from(client),
    })
}

impl Cluster {
    /// Binds the cluster port of the relay in `dir` and opens the directory;
    /// a presence lasts `presence` unless renewed.
    pub async fn start(
        dir: &Path,
        config: &ClusterConfig,
        presence: Duration,
    ) -> anyhow::Result<(Self, TcpListener)> {
        if config.addr.ip().is_unspecified() {
            anyhow::bail!(
                "--cluster-addr {} is not an address other nodes can reach; give this node's own \
                 address (for example 10.0.0.11:4434)",
                config.addr
            );
        }
        if let Some(public) = config.public.as_deref() {
            if !transport::dial::is_relay_addr(public) {
                anyhow::bail!(
                    "--public-addr {public:?} is not host:port (for example relay-a.example.jp:443)"
                );
            }
        }
        let tls = load_tls(dir)?;
        let names = certs::names(dir).map_err(anyhow::Error::msg)?;
        if let Some(public) = config.public.as_deref() {
            // Office PCs check the node's certificate there, and follow
            // only a name it covers.
            let host = transport::tls::host_of(public);
            if !names.iter().any(|n| n.eq_ignore_ascii_case(host)) {
                anyhow::bail!(
                    "--public-addr {public}: the relay certificate does not cover {host} (it \
                     covers {}); renew it with --name {host} among its names",
                    names.join(", ")
                );
            }
        }
        let name = names.first().ok_or_else(|| {
            anyhow::anyhow!("the relay certificate names no host; renew it with --name")
        })?;
        let server_name = ServerName::try_from(name.clone())
            .map_err(|_| anyhow::anyhow!("the relay certificate's name {name:?} is not valid"))?;
        let listener = TcpListener::bind(config.addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on --cluster-addr {}: {e}", config.addr))?;
        let node = listener.local_addr()?.to_string();
        let directory = Directory::open(&config.directory, node, presence)?;
        Ok((
            Self {
                directory,
                tls: RwLock::new(tls),
                server_name,
                public: config.public.clone(),
            },
            listener,
        ))
    }

    /// After the relay certificate was renewed.
    pub fn reload(&self, dir: &Path) -> anyhow::Result<()> {
        *self.tls.write().expect("not poisoned") = load_tls(dir)?;
        Ok(())
    }

    pub fn acceptor(&self) -> TlsAcceptor {
        self.tls.read().expect("not poisoned").acceptor.clone()
    }

    /// Sends `request` to the node at `node`; the connection, ready for the
    /// answers.
    pub async fn ask(
        &self,
        node: &str,
        request: &NodeRequest,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
        let connector = self.tls.read().expect("not poisoned").connector.clone();
        let dial = async {
            let tcp = TcpStream::connect(node).await.map_err(|e| e.to_string())?;
            tcp.set_nodelay(true).ok();
            connector
                .connect(self.server_name.clone(), tcp)
                .await
                .map_err(|e| e.to_string())
        };
        let tls = tokio::time::timeout(DIAL_TIMEOUT, dial)
            .await
            .map_err(|_| format!("no answer within {} s", DIAL_TIMEOUT.as_secs()))??;
        let mut tls = tls;
        tls.write_all(&relay::encode(request))
            .await
            .map_err(|e| e.to_string())?;
        Ok(tls)
    }
}
