//! Native transport: TCP (optionally through an HTTP proxy) and TLS 1.3 to
//! the relay with its pinned CA; the raw-mode local port.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use proto::relay;
use proto::session::{SessionMode, SessionReply, SessionRequest};
use proto::ComputerId;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::client::TlsStream;
use tracing::{info, warn};
use transport::dial::{DialError, Proxy};
use transport::tls::TlsConnectError;
use transport::{FramedIo, Prefixed};

use crate::rdp::{self, RdpCredentials, RdpSession};
use crate::{ConnectError, Progress};

const DIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the relay is and how to reach and trust it.
#[derive(Debug, Clone)]
pub struct RelayTarget {
    pub addr: String,
    pub ca: PathBuf,
    pub proxy: Option<Proxy>,
}

pub type RelayStream = TlsStream<TcpStream>;
pub type Pipe = Prefixed<RelayStream>;

/// TCP (+ proxy) + TLS 1.3 to the relay.
pub async fn dial_relay(relay: &RelayTarget) -> Result<RelayStream, ConnectError> {
    let config = transport::tls::pinned_client_config(&relay.ca)
        .map_err(|e| ConnectError::RelayCa(e.to_string()))?;
    let tcp = transport::dial::dial(&relay.addr, relay.proxy.as_ref(), DIAL_TIMEOUT)
        .await
        .map_err(|e| match e {
            DialError::Unreachable { .. } | DialError::Timeout { .. } => {
                ConnectError::RelayUnreachable(e.to_string())
            }
            other => ConnectError::Proxy(other.to_string()),
        })?;
    transport::tls::connect(tcp, config, &relay.addr)
        .await
        .map_err(|e| match e {
            TlsConnectError::Untrusted(why) => ConnectError::RelayUntrusted(why),
            other => ConnectError::RelayUnreachable(other.to_string()),
        })
}

/// Dials the relay and pairs with `id`.
pub async fn open_pipe(
    relay: &RelayTarget,
    id: &str,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<Pipe, ConnectError> {
    let id = ComputerId::parse(id)?;
    let stream = dial_relay(relay).await?;
    progress(Progress::RelayConnected);
    crate::pairing::pair(stream, &id, progress).await
}

/// How long the steps of a connection took.
#[derive(Debug, Clone, Copy)]
pub struct Timings {
    /// From dialing the relay to the open pipe.
    pub pairing: Duration,
    /// From dialing the relay to the first complete frame.
    pub first_frame: Duration,
}

/// Connects to `id` and waits for the first complete frame.
pub async fn connect_and_wait_frame(
    relay: &RelayTarget,
    id: &str,
    creds: &RdpCredentials,
    size: (u16, u16),
    frame_timeout: Duration,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<(RdpSession<Prefixed<Pipe>>, Timings), ConnectError> {
    let started = Instant::now();
    let pipe = open_pipe(relay, id, progress).await?;
    let pairing = started.elapsed();
    let mut session = rdp::connect(pipe, creds, size, progress).await?;
    wait_first_frame(&mut session, frame_timeout).await?;
    let timings = Timings {
        pairing,
        first_frame: started.elapsed(),
    };
    Ok((session, timings))
}

/// Processes server output until every part of the desktop was drawn.
pub async fn wait_first_frame<S>(
    session: &mut RdpSession<S>,
    limit: Duration,
) -> Result<(), ConnectError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + Sync,
{
    let work = async {
        while !session.first_frame_complete() {
            for event in session.next_events().await? {
                if let crate::SessionEvent::Ended(reason) = event {
                    return Err(ConnectError::ConnectionLost(format!(
                        "the remote PC ended the session: {reason}"
                    )));
                }
            }
        }
        Ok(())
    };
    tokio::time::timeout(limit, work).await.map_err(|_| {
        ConnectError::Rdp(format!("no complete picture within {} s", limit.as_secs()))
    })?
}

/// Raw mode: every connection to `listener` is carried through the relay as
/// a plain byte pipe to the host's RDP server, so any RDP client can use it.
pub async fn serve_raw(
    listener: TcpListener,
    relay: RelayTarget,
    id: String,
) -> std::io::Result<()> {
    loop {
        let (mut local, peer) = listener.accept().await?;
        local.set_nodelay(true).ok();
        let relay = relay.clone();
        let id = id.clone();
        tokio::spawn(async move {
            match open_raw(&relay, &id).await {
                Ok(mut pipe) => {
                    info!(%peer, "RDP client connected through the relay");
                    let _ = tokio::io::copy_bidirectional(&mut local, &mut pipe).await;
                    info!(%peer, "RDP client disconnected");
                }
                Err(e) => warn!(%peer, error = %e, "cannot open the pipe"),
            }
        });
    }
}

async fn open_raw(relay: &RelayTarget, id: &str) -> Result<Prefixed<Pipe>, ConnectError> {
    let pipe = open_pipe(relay, id, &mut |_| {}).await?;
    let lost = |e: std::io::Error| ConnectError::ConnectionLost(e.to_string());
    let mut framed = FramedIo::new(pipe);
    framed
        .write_all(&relay::encode(&SessionRequest::Open {
            mode: SessionMode::Raw,
        }))
        .await
        .map_err(lost)?;
    let frame = framed
        .read_frame()
        .await
        .map_err(|e| ConnectError::ConnectionLost(e.to_string()))?;
    match relay::decode::<SessionReply>(&frame).map_err(|e| ConnectError::Rdp(e.to_string()))? {
        SessionReply::Ready => {
            let (stream, rest) = framed.into_parts();
            Ok(Prefixed::new(rest, stream))
        }
        SessionReply::Refused { reason } => Err(ConnectError::HostRefused(reason)),
    }
}
