//! Browsers and native peers on the relay's one port, without a browser:
//! HTTPS requests for the web client's files (and the bad ones), and the
//! pairing protocol over the `/ws` WebSocket next to a native host on the
//! same port. (tests/browser.rs does the same with a real Chromium.)

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use client_core::{ConnectError, Scripted};
use common::*;
use proto::ComputerId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// A TLS connection as a browser makes it (ALPN http/1.1), trusting the
/// relay's CA.
async fn browser_tls(relay: &RelayProc) -> TlsStream<TcpStream> {
    let mut config = (*transport::tls::pinned_client_config(&relay.ca()).unwrap()).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(&relay.addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap()
}

/// Sends `request` and reads the whole answer (the relay closes after it).
async fn http(relay: &RelayProc, request: &[u8]) -> (String, Vec<u8>) {
    let mut tls = browser_tls(relay).await;
    tls.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut answer))
        .await
        .expect("the relay answers and closes")
        .ok();
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    (head, answer[split + 4..].to_vec())
}

fn web_folder(dir: &Path) {
    std::fs::write(dir.join("index.html"), "<!DOCTYPE html><title>thin</title>").unwrap();
    std::fs::write(dir.join("web_bg.wasm"), b"\0asm-plain").unwrap();
    std::fs::write(dir.join("web_bg.wasm.gz"), b"gzipped-wasm").unwrap();
    std::fs::write(dir.join("NotoSansJP-ui.otf"), b"OTTO-font").unwrap();
}

#[test]
fn the_relay_serves_files_and_a_websocket_beside_native_hosts() {
    let work = tempfile::tempdir().unwrap();
    let web = work.path().join("web");
    std::fs::create_dir(&web).unwrap();
    web_folder(&web);
    let relay = RelayProc::start(&["--web", web.to_str().unwrap()]);
    // A native host registered on the same port.
    let (_desktop, desktop_addr) = test_desktop("u", "p");
    let _host = HostProc::start(work.path(), &relay, "ws-pc", &desktop_addr);
    let rt = tokio::runtime::Runtime::new().unwrap();

    rt.block_on(async {
        let (head, body) = http(&relay, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains("Content-Type: text/html"), "{head}");
        assert!(
            head.contains("Content-Security-Policy: default-src 'self'"),
            "{head}"
        );
        assert_eq!(body, b"<!DOCTYPE html><title>thin</title>");

        // The compressed copy when the browser takes gzip, else the plain one.
        let get_wasm = b"GET /web_bg.wasm HTTP/1.1\r\nAccept-Encoding: gzip, br\r\n\r\n";
        let (head, body) = http(&relay, get_wasm).await;
        assert!(head.contains("Content-Encoding: gzip"), "{head}");
        assert!(head.contains("Content-Type: application/wasm"), "{head}");
        assert_eq!(body, b"gzipped-wasm");
        let (head, body) = http(&relay, b"GET /web_bg.wasm HTTP/1.1\r\n\r\n").await;
        assert!(!head.contains("Content-Encoding"), "{head}");
        assert_eq!(body, b"\0asm-plain");

        // The UI's font, which the loader fetches beside the module.
        let (head, body) = http(&relay, b"GET /NotoSansJP-ui.otf HTTP/1.1\r\n\r\n").await;
        assert!(head.contains("Content-Type: font/otf"), "{head}");
        assert_eq!(body, b"OTTO-font");

        // HEAD: the length of the file, no body.
        let (head, body) = http(&relay, b"HEAD / HTTP/1.1\r\n\r\n").await;
        assert!(head.contains("Content-Length: 34"), "{head}");
        assert!(body.is_empty());

        // What a browser must not get, and requests that are not ours.
        for (request, status) in [
            (&b"GET /../relay.key HTTP/1.1\r\n\r\n"[..], "404"),
            (b"GET /.hidden HTTP/1.1\r\n\r\n", "404"),
            (b"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "405"),
            (b"GET / HTTP/1.1\r\nBad header line\r\n\r\n", "400"),
        ] {
            let (head, _) = http(&relay, request).await;
            assert!(head.starts_with(&format!("HTTP/1.1 {status}")), "{head}");
        }
        let mut huge = b"GET / HTTP/1.1\r\nX: ".to_vec();
        huge.extend(std::iter::repeat_n(b'a', 20_000));
        huge.extend(b"\r\n\r\n");
        let (head, _) = http(&relay, &huge).await;
        assert!(head.starts_with("HTTP/1.1 400"), "{head}");

        // The pairing protocol over the WebSocket: an unknown ID is refused
        // in words, a registered host is paired.
        for (id, registered) in [("nobody-here", false), ("ws-pc", true)] {
            let tls = browser_tls(&relay).await;
            let url = format!("wss://{}/ws", relay.addr);
            let (ws, _) = tokio_tungstenite::client_async(url, tls).await.unwrap();
            let stream = relay::web::WsBytes::new(ws);
            let id = ComputerId::parse(id).unwrap();
            let paired = client_core::pairing::pair(stream, &id, &mut Scripted::default()).await;
            match (registered, paired) {
                (true, Ok(_)) => {}
                (false, Err(ConnectError::UnknownId(_))) => {}
                (_, Err(e)) => panic!("{id}: {e}"),
                (false, Ok(_)) => panic!("an unknown ID was paired"),
            }
        }
    });
}
