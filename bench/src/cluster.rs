//! `--only cluster`: relay nodes on one real `redis-server`. Pairings
//! through one node (the baseline) against pairings whose client and host
//! are at different nodes; the directory's memory per registered host;
//! a node's memory per idle host against a relay of its own.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use proto::ComputerId;
use relay::directory::Directory;
use tokio::process::{Child, Command};
use tokio::task::JoinSet;

use crate::figures::{self, bytes_figure, count_for, figure, percentile, touch, Sizes};
use crate::relay_child::RelayProcess;
use crate::sim::{self, Host, Relay};

/// A `redis-server` of the bench's own, keeping nothing on disk.
struct RedisServer {
    _child: Child,
    port: u16,
}

impl RedisServer {
    /// None when Redis is not installed.
    async fn start() -> anyhow::Result<Option<Self>> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let args = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ];
        let child = match Command::new("redis-server")
            .args(args)
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
        {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let server = Self {
            _child: child,
            port,
        };
        for _ in 0..100 {
            if server.used_memory().await.is_ok() {
                return Ok(Some(server));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("redis-server did not answer within 10 s")
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Bytes Redis holds for its data (`INFO memory`'s `used_memory`).
    async fn used_memory(&self) -> anyhow::Result<u64> {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "info", "memory"])
            .output()
            .await
            .context("cannot run redis-cli")?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .context("no used_memory in INFO")
    }
}

pub async fn figures(sizes: &Sizes) -> anyhow::Result<()> {
    let Some(redis) = RedisServer::start().await? else {
        eprintln!("cluster figures skipped: redis-server is not installed");
        return Ok(());
    };
    let work = tempfile::tempdir()?;
    let dir = |name: &str| -> anyhow::Result<std::path::PathBuf> {
        let dir = work.path().join(name);
        std::fs::create_dir(&dir)?;
        Ok(dir)
    };
    let (a_dir, b_dir) = (dir("a")?, dir("b")?);
    let a = RelayProcess::node(&a_dir, None, &redis.url()).await?;
    let b = RelayProcess::node(&b_dir, Some(&a_dir), &redis.url()).await?;
    let (at_a, at_b) = (Relay::new(a.addr, &a.ca)?, Relay::new(b.addr, &b.ca)?);

    // The host is at node A; the client at A (one node) or B (across).
    for (name, client_node, number) in [("same_node", &at_a, 0), ("across_nodes", &at_b, 1)] {
        let (per_s, mut waits) = pairings(&at_a, client_node, number, sizes).await?;
        waits.sort_unstable();
        figure(&format!("cluster_pairings_per_s_{name}"), per_s);
        figure(
            &format!("cluster_pairing_us_p50_{name}"),
            percentile(&waits, 50),
        );
        figure(
            &format!("cluster_pairing_us_p99_{name}"),
            percentile(&waits, 99),
        );
    }
    drop((a, b));

    let per_id = directory_bytes_per_host(&redis, sizes.directory_ids).await?;
    bytes_figure("redis_bytes_per_registered_host", per_id);

    // A node's memory per idle host, beside a relay with its own file.
    let c_dir = dir("c")?;
    let c = RelayProcess::node(&c_dir, Some(&a_dir), &redis.url()).await?;
    let at_c = Relay::new(c.addr, &c.ca)?;
    let hosts = (0..sizes.idle_hosts)
        .map(|n| Host::new(1_000_000 + n))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (empty, full) = figures::rss_with_idle(&c, &at_c, hosts).await?;
    bytes_figure(
        "cluster_idle_host_bytes",
        full.saturating_sub(empty) / sizes.idle_hosts.max(1) as u64,
    );
    drop(c);
    let (empty, full) = figures::idle_hosts(&dir("single")?, sizes.idle_hosts).await?;
    bytes_figure(
        "single_relay_idle_host_bytes",
        full.saturating_sub(empty) / sizes.idle_hosts.max(1) as u64,
    );
    Ok(())
}

/// Pairings with the host (number `number`) registered at `host_node` and
/// the client at `client_node`: completed per second (a few at once), and
/// the wait of each of `sizes.timed_pairings` pairings one at a time, µs.
async fn pairings(
    host_node: &Relay,
    client_node: &Relay,
    number: usize,
    sizes: &Sizes,
) -> anyhow::Result<(f64, Vec<u64>)> {
    let host = Host::new(number)?;
    let mut control = host.register(host_node).await?;
    let answering = {
        let relay = host_node.clone();
        tokio::spawn(async move {
            let mut sessions = JoinSet::new();
            while let Ok(pipe) = control.accept(&relay).await {
                sessions.spawn(touch(pipe, false));
            }
        })
    };
    let id: ComputerId = host.id.clone();
    let mut waits = Vec::with_capacity(sizes.timed_pairings);
    for _ in 0..sizes.timed_pairings {
        let asked = Instant::now();
        let pipe = sim::pair(client_node, &id).await?;
        waits.push(asked.elapsed().as_micros() as u64);
        touch(pipe, true).await?;
    }
    let per_s = count_for(sizes.pairing_time, |_| {
        let (relay, id) = (client_node.clone(), id.clone());
        async move { touch(sim::pair(&relay, &id).await?, true).await }
    })
    .await?;
    answering.abort();
    Ok((per_s, waits))
}

/// Redis's memory per computer ID that a host registered (its binding and
/// its presence), from `count` IDs claimed through the relay's own
/// directory code.
async fn directory_bytes_per_host(redis: &RedisServer, count: usize) -> anyhow::Result<u64> {
    let directory = std::sync::Arc::new(Directory::open(
        &redis.url(),
        "127.0.0.1:4434".to_owned(),
        Duration::from_secs(600),
    )?);
    let before = redis.used_memory().await?;
    for batch in (0..count).collect::<Vec<_>>().chunks(512) {
        let mut claims = JoinSet::new();
        for &n in batch {
            let directory = directory.clone();
            claims.spawn(async move {
                let id = ComputerId::parse(&format!("office-pc-{n:06}"))?;
                // An Ed25519 public key's size; its bytes do not matter.
                let mut key = [0u8; 32];
                key[..8].copy_from_slice(&(n as u64).to_le_bytes());
                directory.claim(&id, &key).await?;
                anyhow::Ok(())
            });
        }
        while let Some(done) = claims.join_next().await {
            done??;
        }
    }
    let after = redis.used_memory().await?;
    Ok(after.saturating_sub(before) / count.max(1) as u64)
}
