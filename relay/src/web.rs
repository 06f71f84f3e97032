//! Browsers on the relay's one port: the web client's static files, and a
//! WebSocket on `/ws` that carries the same pairing protocol as native
//! connections (as binary messages).

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tracing::debug;
use transport::{Prefixed, Unread};

/// Longest HTTP request head read (request line and headers).
const MAX_HEAD: usize = 8 * 1024;
const MAX_HEADERS: usize = 64;
/// WebSocket messages carry at most one protocol frame (64 KiB + header).
const MAX_WS_MESSAGE: usize = 128 * 1024;

/// The first bytes of a connection and what they say it is.
pub struct Start {
    pub http: bool,
    pub bytes: Vec<u8>,
}

/// Reads what arrives first: an HTTP request starts with a method name in
/// capitals; the native protocol with a frame length whose first byte is 0.
pub async fn sniff<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<Start> {
    let mut buf = vec![0u8; 1024];
    let n = stream.read(&mut buf).await?;
    if n == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    buf.truncate(n);
    Ok(Start {
        http: buf[0].is_ascii_uppercase(),
        bytes: buf,
    })
}

/// Answers one HTTP request. Returns the WebSocket when the request was an
/// upgrade on `/ws`; files and errors are answered here and end the
/// connection.
pub async fn serve_http<S>(
    mut stream: S,
    web_dir: Option<&Path>,
    peer: SocketAddr,
    limit: Duration,
) -> anyhow::Result<Option<WsBytes<Prefixed<S>>>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let head = match tokio::time::timeout(limit, read_head(&mut stream)).await {
        Ok(Ok(head)) => head,
        Ok(Err(e)) => return bad_request(&mut stream, peer, &e).await,
        Err(_) => return Ok(None),
    };
    let request = match parse_request(&head) {
        Ok(request) => request,
        Err(e) => return bad_request(&mut stream, peer, &e).await,
    };
    let (method, path) = (request.method.as_str(), request.path.as_str());
    if path == "/ws" && request.websocket {
        // Hand the whole request to the WebSocket handshake.
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_WS_MESSAGE))
            .max_frame_size(Some(MAX_WS_MESSAGE));
        let ws =
            tokio_tungstenite::accept_async_with_config(Prefixed::new(head, stream), Some(config))
                .await?;
        debug!(%peer, "browser connected over WebSocket");
        return Ok(Some(WsBytes::new(ws)));
    }
    if method != "GET" && method != "HEAD" {
        respond(
            &mut stream,
            405,
            "text/plain",
            b"method not allowed\n",
            None,
            false,
        )
        .await?;
        return Ok(None);
    }
    let Some(dir) = web_dir else {
        let body = b"this relay serves no web client (start it with --web DIR)\n";
        respond(&mut stream, 404, "text/plain", body, None, false).await?;
        return Ok(None);
    };
    match static_file(dir, path, request.gzip_ok) {
        Some((file, content_type, gzipped)) => {
            // Off the runtime's threads: the module is megabytes.
            let body = tokio::fs::read(&file).await?;
            let head_only = method == "HEAD";
            let encoding = gzipped.then_some("gzip");
            respond(&mut stream, 200, content_type, &body, encoding, head_only).await?;
        }
        None => respond(&mut stream, 404, "text/plain", b"not found\n", None, false).await?,
    }
    Ok(None)
}

/// Tells a browser the relay cannot take it now (503), in words.
pub async fn unavailable<S: AsyncWrite + Unpin>(stream: &mut S, message: &str) -> io::Result<()> {
    let body = format!("{message}\n");
    respond(
        stream,
        503,
        "text/plain; charset=utf-8",
        body.as_bytes(),
        None,
        false,
    )
    .await
}

/// Answers 400 to a request that cannot be read or parsed.
async fn bad_request<S, T>(
    stream: &mut S,
    peer: SocketAddr,
    problem: &(dyn std::fmt::Display + Sync),
) -> anyhow::Result<Option<T>>
where
    S: AsyncWrite + Unpin,
{
    debug!(%peer, %problem, "bad HTTP request");
    respond(stream, 400, "text/plain", b"bad request\n", None, false).await?;
    Ok(None)
}

/// What the relay needs of a browser's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// Without query or fragment.
    pub path: String,
    /// Asks to upgrade to a WebSocket.
    pub websocket: bool,
    /// Takes gzip-compressed bodies.
    pub gzip_ok: bool,
}

/// Parses a request head (up to and including its blank line).
pub fn parse_request(head: &[u8]) -> Result<Request, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err("incomplete".to_owned()),
        Err(e) => return Err(e.to_string()),
    }
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
    };
    let path = request.path.unwrap_or("/");
    Ok(Request {
        method: request.method.unwrap_or("").to_owned(),
        path: path.split(['?', '#']).next().unwrap_or("/").to_owned(),
        websocket: header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")),
        gzip_ok: header("accept-encoding").is_some_and(|v| v.contains("gzip")),
    })
}

/// Reads up to the end of the request head (bounded).
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > MAX_HEAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request head too large",
            ));
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(head)
}

/// The file below `dir` that a URL path names: plain names only (no `..`,
/// no hidden files, no backslashes, no drive letters).
pub fn file_for(dir: &Path, path: &str) -> Option<PathBuf> {
    let path = if path == "/" { "/index.html" } else { path };
    let mut file = dir.to_owned();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        if part.starts_with('.') || part.contains('\\') || part.contains(':') {
            return None;
        }
        file.push(part);
    }
    Some(file)
}

/// The file for a URL path, its content type, and whether it is the
/// gzip-compressed copy.
fn static_file(dir: &Path, path: &str, gzip_ok: bool) -> Option<(PathBuf, &'static str, bool)> {
    let file = file_for(dir, path)?;
    let content_type = match file.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css; charset=utf-8",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        Some("otf") => "font/otf",
        _ => "application/octet-stream",
    };
    if gzip_ok {
        let gz = PathBuf::from(format!("{}.gz", file.display()));
        if gz.is_file() {
            return Some((gz, content_type, true));
        }
    }
    file.is_file().then_some((file, content_type, false))
}

/// Writes a whole response; `head_only` sends the head of a GET's answer
/// (HEAD requests).
async fn respond<S: AsyncWrite + Unpin>(
    stream: &mut S,
    status: u16,
    content_type: &str,
    body: &[u8],
    encoding: Option<&str>,
    head_only: bool,
) -> io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        503 => "Service Unavailable",
        _ => "Method Not Allowed",
    };
    let encoding = encoding
        .map(|e| format!("Content-Encoding: {e}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\n\
         Content-Type: {content_type}\r\n\
         Content-Length: {}\r\n\
         {encoding}\
         Vary: Accept-Encoding\r\n\
         Cache-Control: no-cache\r\n\
         X-Content-Type-Options: nosniff\r\n\
         Referrer-Policy: no-referrer\r\n\
         Content-Security-Policy: default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
         style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data: blob:\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    if !head_only {
        stream.write_all(body).await?;
    }
    stream.flush().await?;
    stream.shutdown().await
}

/// A WebSocket as a byte stream: binary messages in, binary messages out.
pub struct WsBytes<S> {
    ws: WebSocketStream<S>,
    /// The rest of the last binary message.
    unread: Unread,
}

impl<S> WsBytes<S> {
    pub fn new(ws: WebSocketStream<S>) -> Self {
        Self {
            ws,
            unread: Unread::default(),
        }
    }
}

fn ws_err(e: tokio_tungstenite::tungstenite::Error) -> io::Error {
    io::Error::other(e)
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsBytes<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.unread.read_into(buf) {
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut this.ws).poll_next(cx)) {
                Some(Ok(Message::Binary(data))) => this.unread.set(data.to_vec()),
                Some(Ok(Message::Close(_))) | None => return Poll::Ready(Ok(())),
                Some(Ok(Message::Text(_))) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "text message on the relay's WebSocket",
                    )))
                }
                // Pings are answered by tungstenite itself.
                Some(Ok(_)) => {}
                Some(Err(e)) => return Poll::Ready(Err(ws_err(e))),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsBytes<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let ws = &mut self.ws;
        ready!(Pin::new(&mut *ws).poll_ready(cx)).map_err(ws_err)?;
        let n = buf.len().min(64 * 1024);
        Pin::new(&mut *ws)
            .start_send(Message::Binary(buf[..n].to_vec().into()))
            .map_err(ws_err)?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_flush(cx).map_err(ws_err)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_close(cx).map_err(ws_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_files_below_the_folder_are_served() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "<html>").unwrap();
        std::fs::write(dir.path().join("app.wasm"), "w").unwrap();
        std::fs::write(dir.path().join("app.wasm.gz"), "gz").unwrap();
        std::fs::write(dir.path().join(".secret"), "s").unwrap();
        let (file, ty, gz) = static_file(dir.path(), "/", false).unwrap();
        assert_eq!(
            (file.file_name().unwrap().to_str().unwrap(), ty, gz),
            ("index.html", "text/html; charset=utf-8", false)
        );
        assert!(static_file(dir.path(), "/app.wasm", true).unwrap().2);
        assert!(!static_file(dir.path(), "/app.wasm", false).unwrap().2);
        assert!(static_file(dir.path(), "/../etc/passwd", false).is_none());
        assert!(static_file(dir.path(), "/.secret", false).is_none());
        assert!(static_file(dir.path(), "/a\\..\\b", false).is_none());
        assert!(static_file(dir.path(), "/missing.js", false).is_none());
    }
}
