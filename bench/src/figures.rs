//! The figures, each printed beside its baseline from the same run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::task::JoinSet;

use crate::client;
use crate::relay_child::RelayProcess;
use crate::sim::{self, BoxPipe, Control, DirectServer, Host, Relay};

/// How much each measurement does.
pub struct Sizes {
    /// Bytes sent through one session alone.
    pub one_session_bytes: u64,
    /// Bytes sent through each of 16 sessions at once.
    pub per_session_of_16_bytes: u64,
    /// 64-byte round trips.
    pub round_trips: usize,
    /// How long pairings (and direct connections) are counted.
    pub pairing_time: Duration,
    /// Idle hosts registered for the memory figure.
    pub idle_hosts: usize,
    /// Throughput runs of each kind; the median is reported.
    pub rounds: usize,
    /// Connections (of each kind) timed to their first picture.
    pub first_frames: usize,
    /// The test desktop's size for the client's figures.
    pub desktop: (u16, u16),
    /// Frames counted for the frame rates.
    pub frames: usize,
    /// How long each office scene's traffic is counted.
    pub office_time: Duration,
    /// Pairings timed one after another for the cluster's latencies.
    pub timed_pairings: usize,
    /// Computer IDs written to the directory for Redis's memory per host.
    pub directory_ids: usize,
}

impl Sizes {
    pub fn full() -> Self {
        Self {
            one_session_bytes: 1 << 29,
            per_session_of_16_bytes: 1 << 26,
            round_trips: 5_000,
            pairing_time: Duration::from_secs(3),
            idle_hosts: 10_000,
            rounds: 3,
            first_frames: 5,
            desktop: FULL_HD,
            frames: 300,
            office_time: Duration::from_secs(20),
            timed_pairings: 500,
            directory_ids: 100_000,
        }
    }

    pub fn quick() -> Self {
        Self {
            one_session_bytes: 4 << 20,
            per_session_of_16_bytes: 1 << 20,
            round_trips: 100,
            pairing_time: Duration::from_millis(300),
            idle_hosts: 100,
            rounds: 1,
            first_frames: 1,
            desktop: FULL_HD,
            frames: 4,
            office_time: Duration::from_secs(8),
            timed_pairings: 20,
            directory_ids: 1_000,
        }
    }
}

/// 1920×1080, the screen the client's frame rate is measured on.
const FULL_HD: (u16, u16) = (1920, 1080);

pub fn figure(name: &str, value: f64) {
    println!("{name}={value:.1}");
}

pub fn bytes_figure(name: &str, bytes: u64) {
    println!("{name}={bytes}");
}

/// Parallel sessions in the throughput figures.
const SESSION_COUNTS: [usize; 2] = [1, 16];
/// Clients pairing at once while pairings are counted.
const PAIRING_CLIENTS: usize = 4;

/// The groups of figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Group {
    /// The relay against direct TLS: throughput, round trips, pairings.
    Relay,
    /// The relay's memory with and without idle hosts.
    Memory,
    /// The client through relay + host against straight to the desktop:
    /// first picture, frames per second, CPU per frame.
    Client,
    /// What an office scene costs on the wire, through the graphics
    /// pipeline and with bitmaps only (real RDP servers: the FreeRDP 2 and
    /// 3 shadow servers).
    Office,
    /// Relay nodes on one Redis: pairings through one node and across
    /// nodes, Redis memory per registered host, a node's memory per idle
    /// host against a relay of its own.
    Cluster,
}

pub async fn run(sizes: &Sizes, only: Option<Group>) -> anyhow::Result<()> {
    let wanted = |group| only.is_none_or(|only| only == group);
    if wanted(Group::Relay) {
        relay_figures(sizes).await?;
    }
    if wanted(Group::Memory) {
        memory_figures(sizes).await?;
    }
    if wanted(Group::Client) {
        client_figures(sizes).await?;
    }
    if wanted(Group::Cluster) {
        crate::cluster::figures(sizes).await?;
    }
    use crate::office::Shadow;
    for (shadow, prefix) in [(Shadow::FreeRdp2, "office"), (Shadow::FreeRdp3, "office3")] {
        if wanted(Group::Office) && crate::office::available(shadow) {
            let office = crate::office::bandwidth(shadow, sizes.office_time).await?;
            figure(&format!("{prefix}_scroll_kbps"), office.scrolling);
            figure(
                &format!("{prefix}_scroll_bitmaps_kbps"),
                office.scrolling_bitmaps,
            );
            figure(&format!("{prefix}_still_kbps"), office.still);
        }
    }
    Ok(())
}

async fn relay_figures(sizes: &Sizes) -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let dir = work.path().join("relay");
    // Hosts for the throughput sessions, plus one for latency and pairing.
    let (hosts, _process, relay) = relay_with_hosts(&dir, SESSION_COUNTS[1] + 1).await?;
    let direct = Arc::new(DirectServer::bind(&dir).await?);
    let mut controls = Vec::new();
    for host in &hosts {
        controls.push(host.register(&relay).await?);
    }
    let spare = controls.pop().context("no host")?;

    for sessions in SESSION_COUNTS {
        let bytes = if sessions == 1 {
            sizes.one_session_bytes
        } else {
            sizes.per_session_of_16_bytes
        };
        // Alternating, so both see the same machine; medians of the runs.
        let (mut relayed, mut direct_runs) = (Vec::new(), Vec::new());
        for _ in 0..sizes.rounds.max(1) {
            let (mbps, back) = relay_throughput(&relay, &hosts, controls, sessions, bytes).await?;
            controls = back;
            relayed.push(mbps);
            direct_runs.push(direct_throughput(&direct, &relay, sessions, bytes).await?);
        }
        let (through_relay, direct_mbps) = (median(relayed), median(direct_runs));
        figure(&format!("relay_throughput_mbps_{sessions}"), through_relay);
        figure(
            &format!("direct_tls_throughput_mbps_{sessions}"),
            direct_mbps,
        );
        println!(
            "relay_throughput_ratio_{sessions}={:.3}",
            through_relay / direct_mbps
        );
    }

    let (relay_rtt, spare) =
        relay_round_trips(&relay, &hosts[SESSION_COUNTS[1]], spare, sizes).await?;
    let direct_rtt = direct_round_trips(&direct, &relay, sizes).await?;
    for (name, mut samples) in [("relay", relay_rtt), ("direct", direct_rtt)] {
        samples.sort_unstable();
        figure(&format!("{name}_rtt_us_p50"), percentile(&samples, 50));
        figure(&format!("{name}_rtt_us_p99"), percentile(&samples, 99));
    }

    let pairings = pairings_per_s(&relay, &hosts[SESSION_COUNTS[1]], spare, sizes).await?;
    let connects = direct_connects_per_s(&direct, &relay, sizes).await?;
    figure("pairings_per_s", pairings);
    figure("direct_tls_connects_per_s", connects);
    Ok(())
}

async fn memory_figures(sizes: &Sizes) -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let (empty, full) = idle_hosts(work.path(), sizes.idle_hosts).await?;
    bytes_figure("relay_rss_bytes_no_hosts", empty);
    bytes_figure("relay_rss_bytes_idle_hosts", full);
    let per_host = full.saturating_sub(empty) / sizes.idle_hosts.max(1) as u64;
    bytes_figure("idle_host_bytes", per_host);
    Ok(())
}

async fn client_figures(sizes: &Sizes) -> anyhow::Result<()> {
    let (relayed, direct) = client::first_frame_ms(sizes.desktop, sizes.first_frames).await?;
    figure("first_frame_ms", relayed);
    figure("direct_first_frame_ms", direct);
    let (relayed, direct) = client::frame_rates(sizes.desktop, sizes.frames).await?;
    figure("client_fps_1080p", relayed.fps);
    figure("client_cpu_ms_per_frame", relayed.cpu_ms_per_frame);
    figure("direct_fps_1080p", direct.fps);
    figure("direct_cpu_ms_per_frame", direct.cpu_ms_per_frame);
    Ok(())
}

/// `count` simulated hosts and a relay child in `dir` that already has
/// their keys bound to their IDs (enrolled earlier, as in steady state).
async fn relay_with_hosts(
    dir: &std::path::Path,
    count: usize,
) -> anyhow::Result<(Vec<Host>, RelayProcess, Relay)> {
    std::fs::create_dir(dir)?;
    let hosts = (0..count)
        .map(Host::new)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let bindings: Vec<_> = hosts
        .iter()
        .map(|h| (h.id.to_string(), h.public_key()))
        .collect();
    let process = RelayProcess::start(dir, &bindings).await?;
    let relay = Relay::new(process.addr, &process.ca)?;
    Ok((hosts, process, relay))
}

pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_unstable_by(f64::total_cmp);
    values[values.len() / 2]
}

pub fn percentile(sorted_us: &[u64], p: usize) -> f64 {
    let i = (sorted_us.len() * p / 100).min(sorted_us.len().saturating_sub(1));
    sorted_us.get(i).copied().unwrap_or_default() as f64
}

/// Receives one transfer (an 8-byte length, then the bytes) and acks it.
async fn sink(mut pipe: BoxPipe) -> anyhow::Result<()> {
    let mut left = pipe.read_u64().await?;
    let mut buf = vec![0u8; 64 * 1024];
    while left > 0 {
        let n = pipe.read(&mut buf).await?;
        anyhow::ensure!(n > 0, "the transfer broke off");
        left = left.saturating_sub(n as u64);
    }
    pipe.write_u8(1).await?;
    pipe.flush().await?;
    Ok(())
}

/// Sends `bytes` and waits for the ack.
async fn send(mut pipe: BoxPipe, bytes: u64) -> anyhow::Result<()> {
    let chunk = vec![0x5au8; 64 * 1024];
    pipe.write_u64(bytes).await?;
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        pipe.write_all(&chunk[..n]).await?;
        left -= n as u64;
    }
    pipe.flush().await?;
    anyhow::ensure!(pipe.read_u8().await? == 1, "no ack");
    Ok(())
}

/// Sends `bytes` down every pipe at once; returns how long until the last
/// transfer was acknowledged.
async fn send_all(pipes: Vec<BoxPipe>, bytes: u64) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut senders = JoinSet::new();
    for pipe in pipes {
        senders.spawn(send(pipe, bytes));
    }
    while let Some(sent) = senders.join_next().await {
        sent??;
    }
    Ok(started.elapsed())
}

fn mbps(bytes: u64, took: Duration) -> f64 {
    bytes as f64 * 8.0 / took.as_secs_f64() / 1e6
}

/// `sessions` clients each send `bytes` to their own host through the
/// relay at once; returns the total rate and the control connections.
async fn relay_throughput(
    relay: &Relay,
    hosts: &[Host],
    controls: Vec<Control>,
    sessions: usize,
    bytes: u64,
) -> anyhow::Result<(f64, Vec<Control>)> {
    let mut receivers = JoinSet::new();
    let mut rest = Vec::new();
    for (i, mut control) in controls.into_iter().enumerate() {
        if i >= sessions {
            rest.push(control);
            continue;
        }
        let relay = relay.clone();
        receivers.spawn(async move {
            let pipe = control.accept(&relay).await?;
            sink(pipe).await?;
            anyhow::Ok(control)
        });
    }
    let mut pipes = Vec::new();
    for host in &hosts[..sessions] {
        pipes.push(sim::pair(relay, &host.id).await?);
    }
    let took = send_all(pipes, bytes).await?;
    let mut controls = Vec::new();
    while let Some(control) = receivers.join_next().await {
        controls.push(control??);
    }
    controls.extend(rest);
    Ok((mbps(bytes * sessions as u64, took), controls))
}

async fn direct_throughput(
    direct: &Arc<DirectServer>,
    relay: &Relay,
    sessions: usize,
    bytes: u64,
) -> anyhow::Result<f64> {
    let server = direct.clone();
    let receivers = tokio::spawn(async move {
        let mut sinks = JoinSet::new();
        for _ in 0..sessions {
            sinks.spawn(sink(server.accept().await?));
        }
        while let Some(done) = sinks.join_next().await {
            done??;
        }
        anyhow::Ok(())
    });
    let mut pipes = Vec::new();
    for _ in 0..sessions {
        let tls = sim::tls_connect(direct.addr, &relay.tls).await?;
        pipes.push(Box::new(tls) as BoxPipe);
    }
    let took = send_all(pipes, bytes).await?;
    receivers.await??;
    Ok(mbps(bytes * sessions as u64, took))
}

/// Echoes 64-byte messages until the other end leaves.
async fn echo(mut pipe: BoxPipe) -> anyhow::Result<()> {
    let mut buf = [0u8; 64];
    while pipe.read_exact(&mut buf).await.is_ok() {
        pipe.write_all(&buf).await?;
        pipe.flush().await?;
    }
    Ok(())
}

/// Microseconds of each 64-byte round trip.
async fn round_trips(mut pipe: BoxPipe, rounds: usize) -> anyhow::Result<Vec<u64>> {
    let mut samples = Vec::with_capacity(rounds);
    let mut buf = [7u8; 64];
    for _ in 0..rounds {
        let started = Instant::now();
        pipe.write_all(&buf).await?;
        pipe.flush().await?;
        pipe.read_exact(&mut buf).await?;
        samples.push(started.elapsed().as_micros() as u64);
    }
    Ok(samples)
}

async fn relay_round_trips(
    relay: &Relay,
    host: &Host,
    mut control: Control,
    sizes: &Sizes,
) -> anyhow::Result<(Vec<u64>, Control)> {
    let server = {
        let relay = relay.clone();
        tokio::spawn(async move {
            echo(control.accept(&relay).await?).await?;
            anyhow::Ok(control)
        })
    };
    let pipe = sim::pair(relay, &host.id).await?;
    let samples = round_trips(pipe, sizes.round_trips).await?;
    Ok((samples, server.await??))
}

async fn direct_round_trips(
    direct: &Arc<DirectServer>,
    relay: &Relay,
    sizes: &Sizes,
) -> anyhow::Result<Vec<u64>> {
    let server = direct.clone();
    let echoing = tokio::spawn(async move { echo(server.accept().await?).await });
    let pipe = Box::new(sim::tls_connect(direct.addr, &relay.tls).await?);
    let samples = round_trips(pipe, sizes.round_trips).await?;
    echoing.await??;
    Ok(samples)
}

/// Exchanges one byte each way (both ends are really there), then leaves.
pub async fn touch(mut pipe: BoxPipe, first: bool) -> anyhow::Result<()> {
    if first {
        pipe.write_u8(1).await?;
        pipe.flush().await?;
        pipe.read_u8().await?;
    } else {
        pipe.read_u8().await?;
        pipe.write_u8(1).await?;
        pipe.flush().await?;
    }
    Ok(())
}

/// Completed client-to-host pairings per second, `PAIRING_CLIENTS` at once.
async fn pairings_per_s(
    relay: &Relay,
    host: &Host,
    mut control: Control,
    sizes: &Sizes,
) -> anyhow::Result<f64> {
    let answering = {
        let relay = relay.clone();
        tokio::spawn(async move {
            let mut sessions = JoinSet::new();
            while let Ok(pipe) = control.accept(&relay).await {
                sessions.spawn(touch(pipe, false));
            }
        })
    };
    let count = count_for(sizes.pairing_time, |_| {
        let relay = relay.clone();
        let id = host.id.clone();
        async move { touch(sim::pair(&relay, &id).await?, true).await }
    })
    .await?;
    answering.abort();
    Ok(count)
}

async fn direct_connects_per_s(
    direct: &Arc<DirectServer>,
    relay: &Relay,
    sizes: &Sizes,
) -> anyhow::Result<f64> {
    let server = direct.clone();
    let answering = tokio::spawn(async move {
        let mut sessions = JoinSet::new();
        while let Ok(pipe) = server.accept().await {
            sessions.spawn(touch(pipe, false));
        }
    });
    let addr = direct.addr;
    let count = count_for(sizes.pairing_time, |_| {
        let tls = relay.tls.clone();
        async move { touch(Box::new(sim::tls_connect(addr, &tls).await?), true).await }
    })
    .await?;
    answering.abort();
    Ok(count)
}

/// Runs `attempt` from `PAIRING_CLIENTS` loops for `time`; returns the
/// completed attempts per second.
pub async fn count_for<F, Fut>(time: Duration, attempt: F) -> anyhow::Result<f64>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let started = Instant::now();
    let deadline = started + time;
    let mut running = JoinSet::new();
    let mut done = 0usize;
    for i in 0..PAIRING_CLIENTS {
        running.spawn(attempt(i));
    }
    // Bounded: at most a million attempts whatever the clock says.
    while let Some(finished) = running.join_next().await {
        finished??;
        done += 1;
        if Instant::now() < deadline && done < 1_000_000 {
            running.spawn(attempt(done));
        }
    }
    Ok(done as f64 / started.elapsed().as_secs_f64())
}

/// The relay's resident memory with no hosts, and with `count` registered
/// idle hosts (connected, TLS up, registered, silent).
pub async fn idle_hosts(work: &std::path::Path, count: usize) -> anyhow::Result<(u64, u64)> {
    let (hosts, process, relay) = relay_with_hosts(&work.join("idle-relay"), count).await?;
    rss_with_idle(&process, &relay, hosts).await
}

/// The resident memory of the relay `process` (reached as `relay`) before
/// and after `hosts` register and stay idle.
pub async fn rss_with_idle(
    process: &RelayProcess,
    relay: &Relay,
    hosts: Vec<Host>,
) -> anyhow::Result<(u64, u64)> {
    let count = hosts.len();
    // Warm the relay up (runtime threads, TLS) before the first reading.
    for host in hosts.iter().take(8) {
        drop(host.register(relay).await?);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let empty = process.rss()?;

    let hosts: Vec<Arc<Host>> = hosts.into_iter().map(Arc::new).collect();
    let mut controls = Vec::with_capacity(count);
    for batch in hosts.chunks(256) {
        let mut registering = JoinSet::new();
        for host in batch {
            let (host, relay) = (host.clone(), (*relay).clone());
            registering.spawn(async move { host.register(&relay).await });
        }
        while let Some(control) = registering.join_next().await {
            controls.push(control??);
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let full = process.rss()?;
    drop(controls);
    Ok((empty, full))
}
