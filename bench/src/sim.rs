//! Simulated peers speaking the real protocol: hosts that register with an
//! Ed25519 key and answer session notices, clients that pair by ID, and a
//! plain TLS server for the direct baselines.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use proto::pairing::{ClientPairing, PairingEvent};
use proto::relay::{self, FromRelay, ToRelay, PROTOCOL_VERSION};
use proto::ComputerId;
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::{ClientConfig, ServerConfig};
use tokio_rustls::TlsAcceptor;
use transport::{FramedIo, Prefixed};

/// A pipe end after pairing (or a direct TLS connection).
pub trait Pipe: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Pipe for T {}
pub type BoxPipe = Box<dyn Pipe>;

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

/// Where peers connect and how they check the relay's certificate.
#[derive(Clone)]
pub struct Relay {
    pub addr: SocketAddr,
    pub tls: Arc<ClientConfig>,
}

impl Relay {
    pub fn new(addr: SocketAddr, ca: &Path) -> anyhow::Result<Self> {
        Ok(Self {
            addr,
            tls: transport::tls::pinned_client_config(ca)?,
        })
    }

    async fn dial(&self) -> anyhow::Result<FramedIo<Tls>> {
        Ok(FramedIo::new(tls_connect(self.addr, &self.tls).await?))
    }
}

pub async fn tls_connect(addr: SocketAddr, tls: &Arc<ClientConfig>) -> anyhow::Result<Tls> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    Ok(transport::tls::connect(tcp, tls.clone(), &addr.to_string()).await?)
}

async fn read_msg(conn: &mut FramedIo<Tls>) -> anyhow::Result<FromRelay> {
    let frame = conn.read_frame().await?;
    Ok(relay::decode(&frame)?)
}

/// A simulated office PC: a computer ID and the key bound to it.
pub struct Host {
    pub id: ComputerId,
    key: Ed25519KeyPair,
}

impl Host {
    pub fn new(n: usize) -> anyhow::Result<Self> {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| anyhow::anyhow!("keygen"))?;
        let key =
            Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| anyhow::anyhow!("bad key"))?;
        Ok(Self {
            id: ComputerId::parse(&format!("bench-pc-{n}"))?,
            key,
        })
    }

    pub fn public_key(&self) -> Vec<u8> {
        self.key.public_key().as_ref().to_vec()
    }

    /// Registers with the relay; returns the control connection.
    pub async fn register(&self, relay: &Relay) -> anyhow::Result<Control> {
        let mut conn = relay.dial().await?;
        let hello = ToRelay::HostHello {
            version: PROTOCOL_VERSION,
            id: self.id.clone(),
            public_key: self.public_key(),
            enrolment_token: None,
        };
        conn.write_all(&relay::encode(&hello)).await?;
        let FromRelay::Challenge { nonce } = read_msg(&mut conn).await? else {
            bail!("no challenge");
        };
        let transcript = relay::registration_transcript(&nonce, &self.id, &self.public_key());
        let proof = ToRelay::HostProof {
            signature: self.key.sign(&transcript).as_ref().to_vec(),
        };
        conn.write_all(&relay::encode(&proof)).await?;
        match read_msg(&mut conn).await? {
            FromRelay::Registered => Ok(Control {
                conn,
                id: self.id.clone(),
            }),
            other => bail!("not registered: {other:?}"),
        }
    }
}

/// A registered host's control connection.
pub struct Control {
    conn: FramedIo<Tls>,
    id: ComputerId,
}

impl Control {
    /// Waits for the next session notice and opens its data connection;
    /// returns the host's end of the pipe.
    pub async fn accept(&mut self, relay: &Relay) -> anyhow::Result<BoxPipe> {
        let session = loop {
            match read_msg(&mut self.conn).await? {
                FromRelay::Incoming { session, .. } => break session,
                FromRelay::Pong => continue,
                other => bail!("unexpected {other:?}"),
            }
        };
        let mut data = relay.dial().await?;
        let accept = ToRelay::HostAccept {
            id: self.id.clone(),
            session,
        };
        data.write_all(&relay::encode(&accept)).await?;
        match read_msg(&mut data).await? {
            FromRelay::Paired => {}
            other => bail!("not paired: {other:?}"),
        }
        let (stream, rest) = data.into_parts();
        Ok(Box::new(Prefixed::new(rest, stream)))
    }
}

/// A client asking the relay for `id`; returns its end of the pipe.
pub async fn pair(relay: &Relay, id: &ComputerId) -> anyhow::Result<BoxPipe> {
    let mut tls = tls_connect(relay.addr, &relay.tls).await?;
    let (mut pairing, hello) = ClientPairing::start(id);
    tls.write_all(&hello).await?;
    let mut buf = [0u8; 1024];
    loop {
        let n = tls.read(&mut buf).await?;
        if n == 0 {
            bail!("the relay closed the connection while pairing");
        }
        for event in pairing.receive(&buf[..n])? {
            if let PairingEvent::Paired { leftover } = event {
                return Ok(Box::new(Prefixed::new(leftover, tls)));
            }
        }
    }
}

/// A TLS server with the relay's certificate, for the direct baselines:
/// the same TLS a user's connection has, minus the relay.
pub struct DirectServer {
    pub addr: SocketAddr,
    listener: TcpListener,
    acceptor: TlsAcceptor,
}

impl DirectServer {
    pub async fn bind(relay_dir: &Path) -> anyhow::Result<Self> {
        let config: Arc<ServerConfig> = transport::tls::relay_server_config(
            &relay_dir.join(::relay::CERT_FILE),
            &relay_dir.join(::relay::KEY_FILE),
            None,
        )?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        Ok(Self {
            addr: listener.local_addr()?,
            listener,
            acceptor: TlsAcceptor::from(config),
        })
    }

    pub async fn accept(&self) -> anyhow::Result<BoxPipe> {
        let (tcp, _) = self.listener.accept().await?;
        tcp.set_nodelay(true)?;
        let tls = self.acceptor.accept(tcp).await.context("TLS accept")?;
        Ok(Box::new(tls))
    }
}
