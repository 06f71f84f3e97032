//! Outbound TCP, optionally through an HTTP CONNECT proxy (how office PCs
//! usually reach the internet).

use std::io;
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest proxy response header we read before giving up.
const MAX_PROXY_RESPONSE: usize = 8 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("cannot reach {addr}: {source}")]
    Unreachable { addr: String, source: io::Error },
    #[error("no answer from {addr} within {secs} s")]
    Timeout { addr: String, secs: u64 },
    #[error("bad proxy address {0:?}: use http://[user:password@]host:port")]
    BadProxyUrl(String),
    #[error("the proxy refused the connection to {target}: {status}")]
    ProxyRefused { target: String, status: String },
    #[error(
        "the proxy asks for a user name and password; give them as http://user:password@host:port"
    )]
    ProxyAuthRequired,
    #[error("the proxy did not accept the user name and password ({status})")]
    ProxyAuthRefused { status: String },
    #[error("the proxy sent a malformed answer")]
    ProxyMalformed,
}

/// An HTTP proxy that supports CONNECT, with optional basic authentication.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    pub addr: String,
    pub auth: Option<(String, String)>,
}

impl std::fmt::Debug for Proxy {
    // Never print the proxy password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("addr", &self.addr)
            .field("user", &self.auth.as_ref().map(|(u, _)| u))
            .finish()
    }
}

impl Proxy {
    /// Parses `http://[user:password@]host:port`.
    pub fn parse(raw: &str) -> Result<Self, DialError> {
        let bad = || DialError::BadProxyUrl(redact_credentials(raw));
        let url = url::Url::parse(raw).map_err(|_| bad())?;
        if url.scheme() != "http" {
            return Err(bad());
        }
        let host = url.host_str().ok_or_else(bad)?;
        let port = url.port_or_known_default().ok_or_else(bad)?;
        let auth = if url.username().is_empty() {
            None
        } else {
            let decode = |s: &str| percent_decode(s).ok_or_else(bad);
            Some((
                decode(url.username())?,
                decode(url.password().unwrap_or(""))?,
            ))
        };
        Ok(Self {
            addr: format!("{host}:{port}"),
            auth,
        })
    }
}

/// `raw` with the password of its user information hidden
/// (`http://alice:***@proxy:3128`), for messages and logs. Text that is not
/// a valid URL is redacted too: everything between `://` (or the start)
/// and the last `@` after the user name's colon.
pub fn redact_credentials(raw: &str) -> String {
    let (scheme, rest) = match raw.find("://") {
        Some(i) => raw.split_at(i + 3),
        None => ("", raw),
    };
    let Some(at) = rest.rfind('@') else {
        return raw.to_owned();
    };
    let (userinfo, host) = rest.split_at(at);
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}{user}:***{host}"),
        None => raw.to_owned(),
    }
}

fn percent_decode(s: &str) -> Option<String> {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
}

/// Connects to `addr`, through `proxy` when given, within `timeout`.
pub async fn dial(
    addr: &str,
    proxy: Option<&Proxy>,
    timeout: Duration,
) -> Result<TcpStream, DialError> {
    let work = async {
        match proxy {
            None => connect(addr).await,
            Some(proxy) => {
                let mut stream = connect(&proxy.addr).await?;
                proxy_connect(&mut stream, proxy, addr).await?;
                Ok(stream)
            }
        }
    };
    let first_hop = proxy.map_or(addr, |p| p.addr.as_str()).to_owned();
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| DialError::Timeout {
            addr: first_hop,
            secs: timeout.as_secs(),
        })?
}

/// Where the next call of [`dial_any`] starts in its list. Seeded at random
/// per process, so office PCs restarted together do not all pick the first
/// node.
fn next_start() -> usize {
    use std::hash::BuildHasher as _;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::OnceLock;
    static NEXT: OnceLock<AtomicUsize> = OnceLock::new();
    NEXT.get_or_init(|| {
        let seed = std::collections::hash_map::RandomState::new().hash_one(std::process::id());
        AtomicUsize::new(seed as usize)
    })
    .fetch_add(1, Ordering::Relaxed)
}

/// Whether `addr` is one relay address, `host:port` (a name, an IPv4
/// address or a bracketed IPv6 one), short enough for a DNS name.
pub fn is_relay_addr(addr: &str) -> bool {
    let Some((host, port)) = addr.rsplit_once(':') else {
        return false;
    };
    let host_ok = !host.is_empty()
        && host.len() <= 255
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']'));
    host_ok && port.parse::<u16>().is_ok_and(|p| p > 0)
}

/// The addresses of the list `addrs` in the order to try them: each once,
/// from the `start`th on (round), and `prefer` first.
fn dial_order<'a>(addrs: &'a str, start: usize, prefer: Option<&'a str>) -> Vec<&'a str> {
    let mut list: Vec<&str> = Vec::new();
    for addr in addrs.split(',').map(str::trim) {
        if !addr.is_empty() && !list.contains(&addr) {
            list.push(addr);
        }
    }
    if !list.is_empty() {
        let start = start % list.len();
        list.rotate_left(start);
    }
    if let Some(prefer) = prefer {
        list.retain(|a| *a != prefer);
        list.insert(0, prefer);
    }
    list
}

/// Connects to one of `addrs`: a relay's address, or several relay nodes'
/// separated by commas (`a.example.jp:4433,b.example.jp:4433`). `prefer`,
/// one of them or a node's own address behind them, is tried first (a
/// host's data connection goes to the node that holds its control
/// connection, so a session takes no extra hop); otherwise each call starts
/// at the next address, so peers spread over the nodes. One that is down is
/// passed over. Returns the stream and the address it reached.
pub async fn dial_any(
    addrs: &str,
    prefer: Option<&str>,
    proxy: Option<&Proxy>,
    timeout: Duration,
) -> Result<(TcpStream, String), DialError> {
    let list = dial_order(addrs, next_start(), prefer);
    if list.is_empty() {
        return Err(DialError::Unreachable {
            addr: addrs.to_owned(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "no address given"),
        });
    }
    let mut last = None;
    for addr in list {
        match dial(addr, proxy, timeout).await {
            Ok(stream) => return Ok((stream, addr.to_owned())),
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("the list is not empty"))
}

async fn connect(addr: &str) -> Result<TcpStream, DialError> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|source| DialError::Unreachable {
            addr: addr.to_owned(),
            source,
        })?;
    stream.set_nodelay(true).ok();
    Ok(stream)
}

async fn proxy_connect(
    stream: &mut TcpStream,
    proxy: &Proxy,
    target: &str,
) -> Result<(), DialError> {
    let unreachable = |source| DialError::Unreachable {
        addr: proxy.addr.clone(),
        source,
    };
    let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some((user, password)) = &proxy.auth {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        request.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(unreachable)?;

    // Read byte by byte so nothing after the header (the tunnel's first bytes)
    // is swallowed.
    let mut header = Vec::with_capacity(256);
    while !header.ends_with(b"\r\n\r\n") {
        if header.len() >= MAX_PROXY_RESPONSE {
            return Err(DialError::ProxyMalformed);
        }
        let byte = stream.read_u8().await.map_err(unreachable)?;
        header.push(byte);
    }
    let (code, status_line) = proxy_status(&header)?;
    match code {
        200..=299 => Ok(()),
        // 407 is the standard answer; some proxies (tinyproxy) send 401.
        401 | 407 if proxy.auth.is_some() => Err(DialError::ProxyAuthRefused {
            status: status_line,
        }),
        401 | 407 => Err(DialError::ProxyAuthRequired),
        _ => Err(DialError::ProxyRefused {
            target: target.to_owned(),
            status: status_line,
        }),
    }
}

/// The status code and status line of a proxy's answer to CONNECT
/// (`HTTP/1.1 200 Connection established`).
pub fn proxy_status(header: &[u8]) -> Result<(u16, String), DialError> {
    let status_line = header
        .split(|b| *b == b'\n')
        .next()
        .map(|l| String::from_utf8_lossy(l).trim().to_owned())
        .ok_or(DialError::ProxyMalformed)?;
    let code = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or(DialError::ProxyMalformed)?;
    Ok((code, status_line))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Successive calls start at successive nodes; the preferred one comes
    /// first; an address listed twice is tried once.
    #[test]
    fn dial_order_spreads_and_prefers() {
        let list = "a:1, b:1,c:1,b:1";
        let firsts: Vec<&str> = (7..13)
            .map(|start| dial_order(list, start, None)[0])
            .collect();
        assert_eq!(firsts, ["b:1", "c:1", "a:1", "b:1", "c:1", "a:1"]);
        assert_eq!(dial_order(list, 1, Some("a:1")), ["a:1", "b:1", "c:1"]);
        assert_eq!(
            dial_order(list, 1, Some("z:1")),
            ["z:1", "b:1", "c:1", "a:1"]
        );
        assert!(dial_order(" , ", 3, None).is_empty());
        assert_eq!(dial_order(" , ", 3, Some("z:1")), ["z:1"]);
    }

    #[test]
    fn relay_addresses() {
        for good in ["relay-a.example.jp:443", "10.0.0.11:4433", "[::1]:4433"] {
            assert!(is_relay_addr(good), "{good}");
        }
        let long = format!("{}:443", "a".repeat(300));
        for bad in [
            "relay.example.jp",
            ":443",
            "a b:443",
            "a:0",
            "a:99999",
            "a,b:1",
            &long,
        ] {
            assert!(!is_relay_addr(bad), "{bad}");
        }
    }

    /// Several nodes: the preferred one is reached on every call, and one
    /// that is down is passed over.
    #[test]
    fn dial_any_prefers_and_passes_over() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let a = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let b = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            // Bound but not listening: its port refuses connections and no
            // other program can take it meanwhile.
            let refusing = tokio::net::TcpSocket::new_v4().unwrap();
            refusing.bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let down = refusing.local_addr().unwrap().to_string();
            let (a, b) = (
                a.local_addr().unwrap().to_string(),
                b.local_addr().unwrap().to_string(),
            );
            let list = format!("{down}, {a},{b}");
            let t = Duration::from_secs(2);
            for _ in 0..6 {
                let (_, at) = dial_any(&list, Some(&b), None, t).await.unwrap();
                assert_eq!(at, b);
                let (_, at) = dial_any(&list, None, None, t).await.unwrap();
                assert_ne!(at, down);
            }
            let (_, at) = dial_any(&list, Some(&down), None, t).await.unwrap();
            assert_ne!(at, down, "a preferred node that is down is passed over");
            assert!(dial_any(" , ", None, None, t).await.is_err());
        });
    }

    #[test]
    fn proxy_urls() {
        let p = Proxy::parse("http://alice:p%40ss@proxy.example:3128").unwrap();
        assert_eq!(p.addr, "proxy.example:3128");
        assert_eq!(p.auth, Some(("alice".into(), "p@ss".into())));
        assert!(!format!("{p:?}").contains("p@ss"));
        assert_eq!(Proxy::parse("http://proxy:8080").unwrap().auth, None);
        assert!(Proxy::parse("socks5://proxy:1080").is_err());
        assert!(Proxy::parse("proxy:8080").is_err());
    }

    #[test]
    fn errors_never_show_a_proxy_password() {
        for raw in [
            "http://alice:S3cret@proxy:port",
            "htp://alice:S3cret@proxy:3128",
            "http://alice:S3cret/x@y@proxy:3128",
            "alice:S3cret@proxy:3128",
            "http://alice:S3cret@proxy with space:3128",
        ] {
            let err = Proxy::parse(raw).unwrap_err().to_string();
            assert!(!err.contains("S3cret"), "{err}");
            assert!(err.contains("alice:***@"), "{err}");
        }
        assert_eq!(redact_credentials("http://proxy:3128"), "http://proxy:3128");
        assert_eq!(
            redact_credentials("http://bob@proxy:3128"),
            "http://bob@proxy:3128"
        );
    }

    #[test]
    fn proxy_answers() {
        let (code, line) = proxy_status(b"HTTP/1.1 407 Proxy Auth\r\nX: y\r\n\r\n").unwrap();
        assert_eq!((code, line.as_str()), (407, "HTTP/1.1 407 Proxy Auth"));
        assert!(proxy_status(b"HTTP/1.1 abc\r\n\r\n").is_err());
        assert!(proxy_status(b"\r\n\r\n").is_err());
    }
}
