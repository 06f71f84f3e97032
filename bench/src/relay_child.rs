//! The relay under test, in a process of its own: started by the bench as
//! `thin-bench relay-child --dir DIR`, it prints its address on stdout and
//! serves until it is killed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use proto::ComputerId;
use relay::{Limits, Relay, RelayConfig};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Serves the relay in `dir`; with `directory`, as one node of several on
/// that Redis (its cluster port on loopback).
pub async fn serve(dir: PathBuf, directory: Option<String>) -> anyhow::Result<()> {
    let cluster = directory.map(|directory| relay::cluster::ClusterConfig {
        directory,
        addr: "127.0.0.1:0".parse().expect("an address"),
        public: None,
    });
    let config = RelayConfig {
        cluster,
        limits: Limits {
            // Every simulated peer comes from 127.0.0.1, and the figures
            // are how many pairings the relay can do, not how many it lets
            // one address do.
            max_conns_per_ip: usize::MAX,
            max_host_conns_per_ip: usize::MAX,
            max_sessions_per_ip: usize::MAX,
            pairing_per_ip: None,
            pairing_per_id: None,
            new_ids_per_ip: None,
            new_ids_total: None,
            // Idle hosts do not ping while they are counted.
            heartbeat_timeout: Duration::from_secs(600),
            ..Limits::default()
        },
        ..RelayConfig::new(dir, "127.0.0.1:0".parse()?)
    };
    let relay = Relay::bind(config).await?;
    let mut stop = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    println!("{}", relay.local_addr());
    tokio::select! {
        served = relay.run() => served,
        // A normal exit, so that a profiler around the child (valgrind
        // --trace-children) writes its report.
        _ = stop.recv() => Ok(()),
    }
}

/// A running relay child; killed when dropped.
pub struct RelayProcess {
    child: Child,
    pub addr: SocketAddr,
    pub ca: PathBuf,
}

impl RelayProcess {
    /// Starts a relay whose registry already binds `bindings` (computer
    /// ID, Ed25519 public key): hosts enrolled before, as in steady state.
    pub async fn start(dir: &Path, bindings: &[(String, Vec<u8>)]) -> anyhow::Result<Self> {
        relay::init(dir, &["127.0.0.1".to_owned()])?;
        let registry = bindings
            .iter()
            .map(|(id, key)| Ok(relay::Binding::new(ComputerId::parse(id)?, key).line()))
            .collect::<anyhow::Result<String>>()?;
        std::fs::write(dir.join(relay::REGISTRY_FILE), registry)?;
        Self::spawn(dir, None).await
    }

    /// Starts a relay node on the Redis at `directory`, with the CA and
    /// certificate of the node in `first` (none: it makes them).
    pub async fn node(dir: &Path, first: Option<&Path>, directory: &str) -> anyhow::Result<Self> {
        match first {
            None => relay::init(dir, &["127.0.0.1".to_owned()])?,
            Some(first) => {
                for file in [relay::CA_FILE, relay::CERT_FILE, relay::KEY_FILE] {
                    std::fs::copy(first.join(file), dir.join(file))?;
                }
            }
        }
        Self::spawn(dir, Some(directory)).await
    }

    async fn spawn(dir: &Path, directory: Option<&str>) -> anyhow::Result<Self> {
        let mut command = Command::new(std::env::current_exe()?);
        command.args(["relay-child", "--dir"]).arg(dir);
        if let Some(directory) = directory {
            command.args(["--directory", directory]);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start the relay child")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut line = String::new();
        tokio::time::timeout(
            Duration::from_secs(20),
            BufReader::new(stdout).read_line(&mut line),
        )
        .await
        .context("the relay child did not start in 20 s")??;
        let addr = line
            .trim()
            .parse()
            .with_context(|| format!("the relay child said {line:?}"))?;
        Ok(Self {
            child,
            addr,
            ca: dir.join(relay::CA_FILE),
        })
    }

    /// Resident memory of the relay process, in bytes.
    pub fn rss(&self) -> anyhow::Result<u64> {
        let pid = self.child.id().context("the relay child exited")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .context("no VmRSS in /proc/PID/status")?;
        Ok(kib * 1024)
    }
}

impl Drop for RelayProcess {
    /// Asks the child to stop and gives it up to 5 s; `kill_on_drop` ends
    /// it after that.
    fn drop(&mut self) {
        let Some(pid) = self.child.id().and_then(|pid| i32::try_from(pid).ok()) else {
            return;
        };
        // SAFETY: kill only sends a signal to our own child.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Thousands of simulated hosts need as many sockets: take the hard limit.
pub fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        let mut limit = std::mem::zeroed::<libc::rlimit>();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
