//! The client's figures: how long until the first complete picture, and how
//! many frames per second it decodes and presents while the test desktop
//! repaints its whole screen — through relay and host, and straight to the
//! test desktop (the baseline: an RDP client on the office LAN).
//!
//! Relay, host and test desktop run in this process (`client_core::demo`);
//! each client runs on a thread of its own so its CPU time can be read.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use client_core::driver::Framebuffer;
use client_core::known_hosts::MemoryPins;
use client_core::native::{self, RelayTarget};
use client_core::{RdpCredentials, RdpSession, Scripted, SessionEvent};
use demo::{Demo, DemoOptions};
use tokio::io::{AsyncRead, AsyncWrite};
use transport::{FramedIo, Prefixed};

/// How long a connection may take to show its first picture.
const FIRST_FRAME_LIMIT: Duration = Duration::from_secs(30);

/// Where the client connects.
#[derive(Clone)]
enum Route {
    /// Through the relay and the host, as a person at home connects.
    Relay {
        relay: RelayTarget,
        id: String,
        host_password: String,
    },
    /// Straight to the RDP server: X.224 and TLS done here the way the host
    /// does them for a client, then the same client code.
    Direct(SocketAddr),
}

/// Frames decoded and presented per second, and the client's CPU per frame.
pub struct FrameRate {
    pub fps: f64,
    pub cpu_ms_per_frame: f64,
}

/// Median time to the first complete picture through relay + host and
/// straight to the desktop, over `runs` connections of each (alternating).
/// The host asks for its password but no authenticator code: each code works
/// once, and the check is one HMAC.
pub async fn first_frame_ms(size: (u16, u16), runs: usize) -> anyhow::Result<(f64, f64)> {
    let demo = Demo::start_with(DemoOptions {
        desktop_size: size,
        motion: false,
        otp: false,
        ..Default::default()
    })
    .await?;
    let (relayed, direct) = (relay_route(&demo), Route::Direct(demo.desktop_addr));
    let (mut through_relay, mut straight) = (Vec::new(), Vec::new());
    for _ in 0..runs.max(1) {
        for (route, samples) in [(&relayed, &mut through_relay), (&direct, &mut straight)] {
            let (creds, route) = (demo.rdp.clone(), route.clone());
            let took = on_own_thread(move || async move {
                let started = Instant::now();
                let mut session = connect(&route, &creds, size).await?;
                let took = started.elapsed();
                session.disconnect().await?;
                Ok(took)
            })
            .await?;
            samples.push(took.as_secs_f64() * 1000.0);
        }
    }
    Ok((
        crate::figures::median(through_relay),
        crate::figures::median(straight),
    ))
}

/// Frame rate through relay + host and straight to a desktop of `size` that
/// repaints its whole screen without pause, counting `frames` frames.
pub async fn frame_rates(
    size: (u16, u16),
    frames: usize,
) -> anyhow::Result<(FrameRate, FrameRate)> {
    let demo = Demo::start_with(DemoOptions {
        desktop_size: size,
        motion: true,
        otp: false,
        ..Default::default()
    })
    .await?;
    let mut rates = Vec::new();
    for route in [relay_route(&demo), Route::Direct(demo.desktop_addr)] {
        let creds = demo.rdp.clone();
        rates.push(
            on_own_thread(move || async move {
                let mut session = connect(&route, &creds, size).await?;
                let rate = count_frames(&mut session, frames).await;
                session.disconnect().await.ok();
                rate
            })
            .await?,
        );
    }
    let direct = rates.pop().context("no direct rate")?;
    let relayed = rates.pop().context("no relayed rate")?;
    Ok((relayed, direct))
}

fn relay_route(demo: &Demo) -> Route {
    Route::Relay {
        relay: demo.relay.clone(),
        id: demo.id.clone(),
        host_password: demo.host_password.clone(),
    }
}

/// Both routes' sessions, boxed to one type.
type Session = RdpSession<Prefixed<Box<dyn Stream>>>;
trait Stream: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Stream for T {}

/// Connects and waits for the first complete picture.
async fn connect(
    route: &Route,
    creds: &RdpCredentials,
    size: (u16, u16),
) -> anyhow::Result<Session> {
    let mut session = match route {
        Route::Relay {
            relay,
            id,
            host_password,
        } => {
            // What `native::connect_and_wait_frame` does, with the channel boxed.
            let mut answers = Scripted {
                otp: None,
                host_password: Some(host_password.clone()),
            };
            let pins = MemoryPins::default();
            let resumption = Default::default();
            let (channel, _) =
                native::open_channel(relay, id, &pins, &mut answers, &resumption).await?;
            let (stream, rest) = channel.into_parts();
            let boxed: Box<dyn Stream> = Box::new(Prefixed::new(rest, stream));
            let channels = Default::default();
            client_core::rdp::connect(
                FramedIo::new(boxed),
                creds,
                &size.into(),
                channels,
                &mut answers,
            )
            .await?
        }
        Route::Direct(addr) => {
            let (connector, request) =
                client_core::rdp::begin(creds, &size.into(), Default::default())?;
            let (tls, response, chain) = host::rdp::handshake(&addr.to_string(), &request)
                .await
                .map_err(anyhow::Error::msg)?;
            let chain: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();
            let boxed: Box<dyn Stream> = Box::new(tls);
            let framed = ironrdp_tokio::TokioFramed::new(Prefixed::new(Vec::new(), boxed));
            let mut answers = Scripted::default();
            client_core::rdp::after_tls(connector, &response, &chain, framed, &mut answers).await?
        }
    };
    native::wait_first_frame(&mut session, FIRST_FRAME_LIMIT).await?;
    Ok(session)
}

/// Reads the desktop's updates until `frames` whole screens have arrived,
/// doing per frame what the app does: each update copied into the shared
/// framebuffer (the session driver's work), then the changed region turned
/// into an image for the texture (the UI's; the GPU copy is not measured).
async fn count_frames(session: &mut Session, frames: usize) -> anyhow::Result<FrameRate> {
    let (width, height) = (session.width(), session.height());
    let screen = u64::from(width) * u64::from(height);
    let mut framebuffer = Framebuffer::default();
    framebuffer.resize(width, height);
    let (mut area, mut presented) = (0u64, 0usize);
    let (started, cpu_before) = (Instant::now(), thread_cpu_time());
    let limit = Duration::from_secs(60);
    while presented < frames {
        let events = tokio::time::timeout(
            limit.saturating_sub(started.elapsed()),
            session.next_events(),
        )
        .await
        .with_context(|| format!("only {presented} frames within {} s", limit.as_secs()))??;
        for event in events {
            match event {
                SessionEvent::Updated(l, t, r, b) => {
                    framebuffer.update(session.image(), (l, t, r, b));
                    area += u64::from(r - l + 1) * u64::from(b - t + 1);
                }
                SessionEvent::Ended(reason) => {
                    bail!("the test desktop ended the session: {reason}")
                }
                // The demo's desktop copies nothing, and nobody resizes.
                SessionEvent::RemoteClipboard(_)
                | SessionEvent::RemoteClipboardTooLarge(_)
                | SessionEvent::RemoteImage(_)
                | SessionEvent::RemoteImageTooLarge(_)
                | SessionEvent::RemoteFiles { .. }
                | SessionEvent::FilesFetched(_)
                | SessionEvent::TooLongToType(_)
                | SessionEvent::Pointer(_) => {}
                SessionEvent::Resized(..) => bail!("the test desktop changed its size"),
            }
        }
        while area >= screen {
            area -= screen;
            presented += 1;
            std::hint::black_box(ui::take_changes(&mut framebuffer, false));
        }
    }
    let (took, cpu) = (started.elapsed(), thread_cpu_time() - cpu_before);
    Ok(FrameRate {
        fps: presented as f64 / took.as_secs_f64(),
        cpu_ms_per_frame: cpu.as_secs_f64() * 1000.0 / presented as f64,
    })
}

/// Runs the future `work` makes on a thread of its own (with its own
/// runtime), so that the thread's CPU time is the client's alone.
async fn on_own_thread<T, W, F>(work: W) -> anyhow::Result<T>
where
    T: Send + 'static,
    W: FnOnce() -> F + Send + 'static,
    F: std::future::Future<Output = anyhow::Result<T>>,
{
    tokio::task::spawn_blocking(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(work())
    })
    .await?
}

/// CPU time this thread has used.
fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for the call to fill.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) } == 0;
    if !ok {
        return Duration::ZERO;
    }
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}
