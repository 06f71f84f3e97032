//! Serving a session toward the local RDP server.
//!
//! RDP mode (the default) follows IronRDP's RDCleanPath shape: the host
//! sends the client's X.224 request, reads the answer, does the TLS
//! handshake with the RDP server itself and returns the server's certificate
//! chain; from then on the client's bytes are RDP plaintext that the host
//! encrypts toward the server. The client checks the server key through
//! CredSSP, so the host need not trust the server's (usually self-signed)
//! certificate itself.

use std::sync::Arc;
use std::time::Duration;

use ironrdp_rdcleanpath::{RDCleanPath, RDCleanPathPdu};
use proto::channels::{message_len, DynamicGuard, Forbidden, Verdict};
use proto::session::SessionReply;
use proto::x224;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring as provider, WebPkiSupportedAlgorithms};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use transport::secure::tokio_sleep;
use transport::{FramedIo, Prefixed, SecureStream};

use crate::service::reply;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

async fn connect_target(target: &str) -> Result<TcpStream, String> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target))
        .await
        .map_err(|_| format!("the office PC's RDP server at {target} did not answer"))?
        .map_err(|e| format!("the office PC's RDP server at {target} is not reachable ({e}); is Remote Desktop enabled?"))?;
    stream.set_nodelay(true).ok();
    Ok(stream)
}

async fn refuse<S>(conn: &mut FramedIo<S>, reason: String) -> String
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let _ = reply(
        conn,
        &SessionReply::Refused {
            reason: reason.clone(),
        },
    )
    .await;
    reason
}

/// A plain byte pipe to the RDP server (for any RDP client).
pub async fn serve_raw<S>(
    mut conn: FramedIo<SecureStream<S>>,
    target: &str,
    silence_beats: u32,
) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut server = match connect_target(target).await {
        Ok(s) => s,
        Err(reason) => return Err(refuse(&mut conn, reason).await),
    };
    reply(&mut conn, &SessionReply::Ready).await?;
    let mut client = session_pipe(conn, silence_beats);
    pump(&mut client, &mut server).await
}

/// The channel as a byte pipe for the session, with the keep-alive on
/// (see [`proto::liveness`]): a client that vanished without a word is let
/// go after `silence_beats`, and a still session keeps its path open.
fn session_pipe<S>(conn: FramedIo<SecureStream<S>>, silence_beats: u32) -> Prefixed<SecureStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut stream, rest) = conn.into_parts();
    stream.keep_alive(tokio_sleep(), silence_beats);
    Prefixed::new(rest, stream)
}

/// RDCleanPath: X.224 + TLS on the client's behalf, then plaintext RDP,
/// without the channels `forbidden` names (see [`proto::channels`]); with
/// `require_nla`, only if the RDP server checks the logon itself.
pub async fn serve_clean_path<S>(
    mut conn: FramedIo<SecureStream<S>>,
    target: &str,
    forbidden: &Forbidden,
    require_nla: bool,
    server_keys: &std::path::Path,
    silence_beats: u32,
) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let frame = conn.read_frame().await.map_err(|e| e.to_string())?;
    let request = RDCleanPathPdu::from_der(&frame)
        .ok()
        .and_then(|pdu| pdu.into_enum().ok());
    // The destination in the request is ignored on purpose: a client may only
    // reach the RDP server this host is configured for.
    let Some(RDCleanPath::Request {
        x224_connection_request,
        ..
    }) = request
    else {
        return Err(refuse(&mut conn, "malformed RDCleanPath request".into()).await);
    };

    let (tls, x224_response, chain) =
        match handshake(target, x224_connection_request.as_bytes()).await {
            Ok(done) => done,
            Err(reason) => return Err(refuse(&mut conn, reason).await),
        };
    match x224::server_logon(&x224_response) {
        Ok(x224::ServerLogon::Nla) => {
            // Written down, so that a stand-in answering without NLA later
            // is refused rather than pinned.
            use crate::server_keys::{check, Checked, Shown};
            match check(server_keys, target, Shown::Nla) {
                Ok(Checked::Pinned(_)) => {
                    tracing::info!(%target, "this RDP server checks the logon itself (NLA)")
                }
                Ok(Checked::Same) => {}
                // CredSSP still protects this session; the log says why
                // the record could not be kept.
                Err(_) => {}
            }
        }
        Ok(x224::ServerLogon::TlsOnly) if !require_nla => {
            // Nothing else stands between the Windows password and a
            // stand-in for the server: its key is pinned on first use.
            let key = chain
                .first()
                .and_then(|cert| proto::session::server_public_key(cert));
            let Some(key) = key else {
                let reason = format!("the RDP server at {target} showed no readable certificate");
                return Err(refuse(&mut conn, reason).await);
            };
            let shown = crate::server_keys::Shown::TlsOnly(&key);
            match crate::server_keys::check(server_keys, target, shown) {
                Ok(crate::server_keys::Checked::Pinned(fingerprint)) => tracing::info!(
                    %target,
                    %fingerprint,
                    "pinned the key of this RDP server, which does not check the logon itself"
                ),
                Ok(crate::server_keys::Checked::Same) => {}
                Err(reason) => {
                    tracing::warn!(%target, %reason, "the RDP server's key changed");
                    return Err(refuse(&mut conn, reason).await);
                }
            }
        }
        Ok(x224::ServerLogon::TlsOnly) => {
            let reason = "the office PC's RDP server does not check the logon itself (no \
                          network-level logon, NLA) and this PC's policy requires it; turn NLA \
                          on in its Remote Desktop settings, or ask its owner to allow TLS-only \
                          servers (thin-host policy --require-nla off)"
                .to_owned();
            return Err(refuse(&mut conn, reason).await);
        }
        Err(why) => return Err(refuse(&mut conn, format!("{why} at {target}")).await),
    }
    let response = RDCleanPathPdu::new_response(target.to_owned(), x224_response, chain)
        .and_then(|pdu| pdu.to_der())
        .map_err(|e| e.to_string())?;
    reply(&mut conn, &SessionReply::Ready).await?;
    conn.write_all(&proto::encode_frame(&response))
        .await
        .map_err(|e| e.to_string())?;

    let mut client = session_pipe(conn, silence_beats);
    let mut server = tls;
    if forbidden.is_empty() {
        return pump(&mut client, &mut server).await;
    }
    let Some((kept, rest)) = enforce_channels(&mut client, &mut server, &forbidden.statics).await?
    else {
        return Ok(());
    };
    let guard = DynamicGuard::new(kept, &forbidden.dynamics);
    if guard.is_idle() {
        let io = |e: std::io::Error| e.to_string();
        server.write_all(&rest).await.map_err(io)?;
        server.flush().await.map_err(io)?;
        return pump(&mut client, &mut server).await;
    }
    guarded_pump(&mut client, &mut server, rest, guard).await
}

/// Carries both directions until the client's MCS Connect Initial has gone
/// to the server without the `forbidden` static channels (CredSSP, a
/// dialogue, passes unchanged meanwhile); returns the channels it kept and
/// the client's bytes read after the request, or None if a side closed
/// first.
async fn enforce_channels<A, B>(
    client: &mut A,
    server: &mut B,
    forbidden: &[&str],
) -> Result<Option<(Vec<String>, Vec<u8>)>, String>
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    use proto::channels::{next_message, strip, Next};
    let mut pending = Vec::new();
    let mut from_client = vec![0u8; 16 * 1024];
    let mut from_server = vec![0u8; 16 * 1024];
    let io = |e: std::io::Error| e.to_string();
    loop {
        loop {
            let message = next_message(&pending).map_err(|e| e.to_string())?;
            match message {
                Next::CredSsp(len) if pending.len() >= len => {
                    server.write_all(&pending[..len]).await.map_err(io)?;
                    server.flush().await.map_err(io)?;
                    pending.drain(..len);
                }
                Next::ConnectInitial(len) if pending.len() >= len => {
                    let stripped = strip(&pending[..len], forbidden).map_err(|e| e.to_string())?;
                    if !stripped.removed.is_empty() {
                        tracing::warn!(
                            channels = stripped.removed.join(","),
                            "the client asked for channels this PC's policy forbids; taken out"
                        );
                    }
                    server.write_all(&stripped.packet).await.map_err(io)?;
                    server.flush().await.map_err(io)?;
                    return Ok(Some((stripped.kept, pending.split_off(len))));
                }
                _ => break,
            }
        }
        tokio::select! {
            read = client.read(&mut from_client) => match read.map_err(io)? {
                0 => return Ok(None),
                n => pending.extend_from_slice(&from_client[..n]),
            },
            read = server.read(&mut from_server) => match read.map_err(io)? {
                0 => return Ok(None),
                n => {
                    client.write_all(&from_server[..n]).await.map_err(io)?;
                    client.flush().await.map_err(io)?;
                }
            },
        }
    }
}

/// Carries the rest of the session message by message, each direction on
/// its own (neither waits for the other, as a plain pump would not), so
/// that the `guard` sees every message whole. A refusal the server
/// direction decides goes to the client direction, which writes it to the
/// server between two of the client's messages. `rest` is what the client
/// sent after its Connect Initial.
async fn guarded_pump<A, B>(
    client: A,
    server: B,
    rest: Vec<u8>,
    guard: DynamicGuard,
) -> Result<(), String>
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let guard = std::sync::Mutex::new(guard);
    let judge = |f: &mut dyn FnMut(&mut DynamicGuard) -> Result<Verdict, String>| {
        f(&mut guard.lock().expect("not poisoned"))
    };
    let (mut client_in, mut client_out) = tokio::io::split(client);
    let (mut server_in, mut server_out) = tokio::io::split(server);
    // The server asks rarely (a few channels per session): unbounded is fine.
    let (refusals_tx, mut refusals) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let io = |e: std::io::Error| e.to_string();

    let upstream = async {
        let mut buf = rest;
        buf.reserve(MESSAGE_BUFFER);
        loop {
            let whole = whole_messages(&buf, |message| {
                judge(&mut |guard| {
                    guard
                        .from_client(message)
                        .map(|()| Verdict::Pass)
                        .map_err(|e| e.to_string())
                })
            })?;
            if whole.end > 0 {
                server_out.write_all(&buf[..whole.end]).await.map_err(io)?;
                server_out.flush().await.map_err(io)?;
                buf.drain(..whole.end);
            }
            tokio::select! {
                read = client_in.read_buf(&mut buf) => if read.map_err(io)? == 0 {
                    return Ok(());
                },
                Some(refusal) = refusals.recv() => {
                    server_out.write_all(&refusal).await.map_err(io)?;
                    server_out.flush().await.map_err(io)?;
                }
            }
        }
    };

    let downstream = async {
        let mut buf = Vec::with_capacity(MESSAGE_BUFFER);
        loop {
            if server_in.read_buf(&mut buf).await.map_err(io)? == 0 {
                return Ok(());
            }
            let whole = whole_messages(&buf, |message| {
                judge(&mut |guard| guard.from_server(message).map_err(|e| e.to_string()))
            })?;
            let mut start = 0;
            for (at, len, name, reply) in whole.refused {
                tracing::warn!(
                    channel = name,
                    "the RDP server offered a channel this PC's policy forbids; refused"
                );
                client_out.write_all(&buf[start..at]).await.map_err(io)?;
                let _ = refusals_tx.send(reply);
                start = at + len;
            }
            client_out
                .write_all(&buf[start..whole.end])
                .await
                .map_err(io)?;
            client_out.flush().await.map_err(io)?;
            buf.drain(..whole.end);
        }
    };

    tokio::select! {
        done = upstream => done,
        done = downstream => done,
    }
}

/// Room for the largest RDP message and the start of the next.
const MESSAGE_BUFFER: usize = 2 * proto::channels::MAX_SESSION_MESSAGE;

/// The complete messages at the start of a buffer.
struct Whole {
    /// Where the last complete message ends.
    end: usize,
    /// (offset, length, channel name, reply to the server) of each refused.
    refused: Vec<(usize, usize, String, Vec<u8>)>,
}

/// Splits `buf` into messages and judges each complete one.
fn whole_messages(
    buf: &[u8],
    mut judge: impl FnMut(&[u8]) -> Result<Verdict, String>,
) -> Result<Whole, String> {
    let mut whole = Whole {
        end: 0,
        refused: Vec::new(),
    };
    while let Some(len) = message_len(&buf[whole.end..]).map_err(|e| e.to_string())? {
        let Some(message) = buf.get(whole.end..whole.end + len) else {
            break;
        };
        if let Verdict::Refuse { name, reply } = judge(message)? {
            whole.refused.push((whole.end, len, name, reply));
        }
        whole.end += len;
    }
    Ok(whole)
}

pub type ServerTls = tokio_rustls::client::TlsStream<TcpStream>;

/// X.224 and TLS with the RDP server at `target` for a client: sends the
/// client's X.224 request, returns TLS to the server, the server's X.224
/// answer and its certificate chain (the client checks the key in CredSSP).
pub async fn handshake(
    target: &str,
    x224_request: &[u8],
) -> Result<(ServerTls, Vec<u8>, Vec<Vec<u8>>), String> {
    let mut tcp = connect_target(target).await?;
    let io = |e: std::io::Error| format!("the RDP server at {target} closed the connection ({e})");
    tcp.write_all(x224_request).await.map_err(io)?;
    let x224_response = tokio::time::timeout(CONNECT_TIMEOUT, read_tpkt(&mut tcp))
        .await
        .map_err(|_| format!("the RDP server at {target} did not answer the connection request"))?
        .map_err(io)?;

    let config = ClientConfig::builder_with_provider(Arc::new(provider::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServerCert(
            provider::default_provider().signature_verification_algorithms,
        )))
        .with_no_client_auth();
    let host = transport::tls::host_of(target);
    let name = ServerName::try_from(host.to_owned())
        .unwrap_or_else(|_| ServerName::try_from("rdp-server").expect("valid"));
    let tls = tokio::time::timeout(
        CONNECT_TIMEOUT,
        TlsConnector::from(Arc::new(config)).connect(name, tcp),
    )
    .await
    .map_err(|_| format!("TLS with the RDP server at {target} timed out"))?
    .map_err(|e| {
        format!(
            "the RDP server at {target} refused TLS ({e}); it may require another security mode"
        )
    })?;
    let chain = tls
        .get_ref()
        .1
        .peer_certificates()
        .unwrap_or_default()
        .iter()
        .map(|c| c.as_ref().to_vec())
        .collect::<Vec<_>>();
    if chain.is_empty() {
        return Err(format!("the RDP server at {target} sent no certificate"));
    }
    Ok((tls, x224_response, chain))
}

/// Reads one TPKT packet (X.224 Connection Confirm).
async fn read_tpkt(tcp: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut header = [0u8; x224::TPKT_HEADER_LEN];
    tcp.read_exact(&mut header).await?;
    let len = x224::tpkt_len(header)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    let mut packet = header.to_vec();
    packet.resize(len, 0);
    tcp.read_exact(&mut packet[x224::TPKT_HEADER_LEN..]).await?;
    Ok(packet)
}

/// Accepts any certificate but still checks the handshake signatures; the
/// client authenticates the server key inside CredSSP.
#[derive(Debug)]
struct AnyServerCert(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// Copies both ways until either side leaves. A peer that drops without a
/// TLS close_notify is an ordinary end of session, not an error.
async fn pump<A, B>(a: &mut A, b: &mut B) -> Result<(), String>
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    match tokio::io::copy_bidirectional(a, b).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_messages_stop_at_a_partial_one_and_note_each_refusal() {
        let mut buf = vec![0x00, 0x03, 0xaa]; // fast-path, 3 bytes
        buf.extend([0x03, 0x00, 0x00, 0x07, 0x02, 0xf0, 0x80]); // TPKT, 7 bytes: refused
        buf.extend([0x00, 0x04, 0xcc]); // fast-path, 4 bytes: one short
        let whole = whole_messages(&buf, |message| {
            Ok(if message[0] == 0x03 {
                Verdict::Refuse {
                    name: "URBDRC".into(),
                    reply: vec![1],
                }
            } else {
                Verdict::Pass
            })
        })
        .unwrap();
        assert_eq!(whole.end, 10);
        assert_eq!(whole.refused, [(3, 7, "URBDRC".to_owned(), vec![1])]);
        assert!(whole_messages(b"GET / HTTP/1.1", |_| Ok(Verdict::Pass)).is_err());
    }
}
