//! What an office scene costs on the wire: a terminal on a FreeRDP shadow
//! server (2 or 3: real RDP servers, shadowing an Xvfb screen) printing a
//! line of text ten times a second, so the screen scrolls as a document or
//! a log does, through relay and host — as the client connects (the
//! graphics pipeline with H.264, bulk compression on), and the same run's
//! baseline with the graphics pipeline off (bitmap updates, as the client
//! connected before); and the same screen when nothing moves. The figures
//! count RDP bytes from the server (what the client reads; the end-to-end
//! channel's and TLS's framing add a few per cent).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use client_core::known_hosts::MemoryPins;
use client_core::native;
use client_core::{RdpCredentials, Scripted};
use demo::{Demo, DemoOptions};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

/// A FreeRDP shadow server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shadow {
    /// FreeRDP 2 (Debian's `freerdp2-shadow-x11`).
    FreeRdp2,
    /// FreeRDP 3 (`freerdp3-shadow-x11`, in bookworm-backports).
    FreeRdp3,
}

impl Shadow {
    /// The server, and the program that hashes its users' passwords.
    fn programs(self) -> [&'static str; 2] {
        match self {
            Shadow::FreeRdp2 => ["freerdp-shadow-cli", "winpr-hash"],
            Shadow::FreeRdp3 => ["freerdp-shadow-cli3", "winpr-hash3"],
        }
    }

    fn packages(self) -> &'static str {
        match self {
            Shadow::FreeRdp2 => "xvfb freerdp2-shadow-x11 winpr-utils xterm",
            Shadow::FreeRdp3 => {
                "xvfb xterm; -t bookworm-backports freerdp3-shadow-x11 winpr3-utils"
            }
        }
    }

    /// Its options besides address and users: FreeRDP 2 needs `-auth` for
    /// NLA; FreeRDP 3 refuses to negotiate with it.
    fn options(self) -> &'static [&'static str] {
        match self {
            Shadow::FreeRdp2 => &["-auth", "/sec:nla"],
            Shadow::FreeRdp3 => &["/sec:nla"],
        }
    }
}

const USER: &str = "office";
const PASSWORD: &str = "Office-Scene-1";

/// Kilobits per second the client receives.
pub struct Bandwidth {
    pub scrolling: f64,
    /// The baseline: bitmap updates, no graphics pipeline.
    pub scrolling_bitmaps: f64,
    pub still: f64,
}

/// How the client asks for the picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Picture {
    /// As the client connects: the graphics pipeline (H.264) where the
    /// server has it.
    AsConnected,
    /// Bitmap updates only (with bulk compression).
    Bitmaps,
}

/// Whether this machine has the programs (a note on stderr if not).
pub fn available(shadow: Shadow) -> bool {
    let [server, hasher] = shadow.programs();
    let missing: Vec<_> = ["Xvfb", "xterm", server, hasher]
        .into_iter()
        .filter(|p| {
            !std::process::Command::new("sh")
                .args(["-c", &format!("command -v {p}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect();
    if !missing.is_empty() {
        let packages = shadow.packages();
        eprintln!("office scene skipped: {missing:?} missing (apt-get install {packages})");
    }
    missing.is_empty()
}

/// Measures each case for `time`.
pub async fn bandwidth(shadow: Shadow, time: Duration) -> anyhow::Result<Bandwidth> {
    let work = tempfile::tempdir()?;
    let (_x, display) = xvfb().await?;
    let (_shadow, server) = shadow_server(shadow, work.path(), &display).await?;
    let demo = Demo::start_with(DemoOptions {
        otp: false,
        rdp_server: Some(server),
        ..Default::default()
    })
    .await?;
    let still = received_kbps(&demo, Picture::AsConnected, time).await?;
    let _terminal = scrolling_terminal(&display)?;
    // The terminal's window appearing is not part of the scene.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let scrolling = received_kbps(&demo, Picture::AsConnected, time).await?;
    let scrolling_bitmaps = received_kbps(&demo, Picture::Bitmaps, time).await?;
    Ok(Bandwidth {
        scrolling,
        scrolling_bitmaps,
        still,
    })
}

/// Connects through relay and host, waits for the first picture and a
/// second more, then counts what arrives for `time`.
async fn received_kbps(demo: &Demo, picture: Picture, time: Duration) -> anyhow::Result<f64> {
    let mut answers = Scripted {
        otp: None,
        host_password: Some(demo.host_password.clone()),
    };
    let pins = MemoryPins::default();
    let (channel, _) = native::open_channel(
        &demo.relay,
        &demo.id,
        &pins,
        &mut answers,
        &Default::default(),
    )
    .await?;
    let creds = RdpCredentials {
        user: USER.into(),
        password: PASSWORD.into(),
        domain: None,
    };
    let (mut connector, request) =
        client_core::rdp::begin(&creds, &(1024, 768).into(), Default::default())?;
    if picture == Picture::Bitmaps {
        connector.config.support_dyn_vc_gfx_protocol = false;
    }
    let mut session =
        client_core::rdp::connect_begun(channel, (connector, request), &mut answers).await?;
    native::wait_first_frame(&mut session, Duration::from_secs(30)).await?;
    // The rest of the first picture is not part of the scene.
    follow(&mut session, Duration::from_secs(4)).await?;
    let before = session.traffic().received;
    let started = Instant::now();
    follow(&mut session, time).await?;
    let bytes = session.traffic().received - before;
    let seconds = started.elapsed().as_secs_f64();
    let _ = session.disconnect().await;
    Ok(bytes as f64 * 8.0 / 1000.0 / seconds)
}

/// Takes what the server sends for `time`.
async fn follow<S>(session: &mut client_core::RdpSession<S>, time: Duration) -> anyhow::Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + Sync,
{
    let until = tokio::time::Instant::now() + time;
    while let Ok(pdu) = tokio::time::timeout_at(until, session.read()).await {
        session.apply_pdu(pdu?).await?;
    }
    Ok(())
}

/// An Xvfb screen of 1024×768 (its display name).
async fn xvfb() -> anyhow::Result<(Child, String)> {
    let mut x = Command::new("Xvfb")
        .args(["-displayfd", "1", "-screen", "0", "1024x768x24"])
        .args(["-nolisten", "tcp", "-noreset"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("Xvfb")?;
    let mut lines = BufReader::new(x.stdout.take().context("Xvfb's output")?).lines();
    let number = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .context("Xvfb did not start within 20 s")??
        .context("Xvfb stopped")?;
    Ok((x, format!(":{}", number.trim())))
}

/// A FreeRDP shadow server on `display`, with NLA and one user.
async fn shadow_server(
    shadow: Shadow,
    work: &Path,
    display: &str,
) -> anyhow::Result<(Child, SocketAddr)> {
    let [server, hasher] = shadow.programs();
    let hash = std::process::Command::new(hasher)
        .args(["-u", USER, "-p", PASSWORD, "-f", "sam"])
        .output()
        .context(hasher)?;
    if !hash.status.success() {
        bail!("winpr-hash failed ({})", hash.status);
    }
    let sam = work.join("sam.txt");
    std::fs::write(&sam, &hash.stdout)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut shadow = Command::new(server)
        .args(["/bind-address:127.0.0.1", &format!("/port:{port}")])
        .args(shadow.options())
        .arg(format!("/sam-file:{}", sam.display()))
        .env("DISPLAY", display)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("freerdp-shadow-cli")?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        if let Some(status) = shadow.try_wait()? {
            bail!("the FreeRDP shadow server stopped ({status}); is port {port} taken?");
        }
        if Instant::now() > deadline {
            bail!("the FreeRDP shadow server did not listen within 20 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok((shadow, addr))
}

/// An 80×24 terminal printing a numbered line of prose every 100 ms.
fn scrolling_terminal(display: &str) -> anyhow::Result<Child> {
    const SCRIPT: &str = "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); \
        echo \"$i  The quarterly figures for the Osaka and Nagoya offices are attached.\"; \
        sleep 0.1; done";
    Command::new("xterm")
        .args(["-geometry", "80x24+0+0", "-e", "sh", "-c", SCRIPT])
        .env("DISPLAY", display)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("xterm")
}
