use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::{Parser, Subcommand};
use proto::rate::Rate;
use proto::ComputerId;
use relay::cluster::ClusterConfig;
use relay::{Limits, Relay, RelayConfig};

/// thin-relay: the meeting point for office PCs (hosts) and people at home (clients).
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Create the relay CA (DIR/ca.pem, which clients and hosts pin) and the relay certificate.
    Init {
        #[arg(long)]
        dir: PathBuf,
        /// DNS names or IP addresses the certificate covers (default: localhost, 127.0.0.1, ::1).
        #[arg(long = "name")]
        names: Vec<String>,
    },
    /// Accept hosts and clients.
    Serve {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value = "0.0.0.0:4433")]
        listen: SocketAddr,
        /// Seconds of silence after which a host is considered offline.
        #[arg(long, default_value_t = 45)]
        heartbeat_timeout: u64,
        /// Seconds a client waits for its host to answer.
        #[arg(long, default_value_t = 15)]
        pairing_timeout: u64,
        /// Simultaneous not-yet-proven connections from one source address
        /// (registered hosts and paired sessions have their own, higher allowance).
        #[arg(long, default_value_t = 64)]
        max_conns_per_ip: usize,
        /// Connections at once in all (default: what the file-descriptor limit allows).
        #[arg(long)]
        max_connections: Option<usize>,
        /// New computer IDs one address (IPv4, or IPv6 /48) may register without an enrolment
        /// token: this many at once, and this many an hour after that (0: no limit).
        #[arg(long, default_value_t = 20)]
        new_ids_per_hour: u32,
        /// New computer IDs registered without an enrolment token from anywhere, in the same
        /// way (0: no limit).
        #[arg(long, default_value_t = 1000)]
        new_ids_total_per_hour: u32,
        /// Bind new computer IDs only for hosts with an enrolment token (`thin-relay token new`).
        #[arg(long)]
        closed: bool,
        /// Serve the web client from this folder (`cargo xtask web` builds it).
        #[arg(long)]
        web: Option<PathBuf>,
        /// A publicly trusted certificate (PEM) for browsers; native clients and
        /// hosts keep using the relay's own, which they pin.
        #[arg(long, requires = "web_key")]
        web_cert: Option<PathBuf>,
        /// The key of --web-cert (PEM).
        #[arg(long, requires = "web_cert")]
        web_key: Option<PathBuf>,
        /// Serve Prometheus metrics (GET /metrics) on this admin address, e.g.
        /// 127.0.0.1:9464; never on the public port. Off by default.
        #[arg(long)]
        metrics: Option<SocketAddr>,
        /// Refuse the networks in this file (one CIDR a line, optionally after "hosts" or
        /// "clients"); read again when it changes or on SIGHUP.
        #[arg(long)]
        deny_file: Option<PathBuf>,
        /// Serve one population of hosts with other relay nodes: computer IDs and which node
        /// holds each online host live in this Redis (redis://host:port). Needs --cluster-addr.
        #[arg(long, requires = "cluster_addr", value_name = "URL")]
        directory: Option<String>,
        /// This node's own address for the other nodes (TLS both ways with certificates from
        /// the relay CA; all nodes share its ca.pem), for example 10.0.0.11:4434.
        #[arg(long, requires = "directory")]
        cluster_addr: Option<SocketAddr>,
        /// Where office PCs reach this very node (host:port, a name its certificate covers),
        /// when they know the relay by one name or load balancer for all nodes: a session's
        /// data connection then comes straight here instead of being handed on between nodes.
        #[arg(long, requires = "directory", value_name = "HOST:PORT")]
        public_addr: Option<String>,
        /// Office PCs registered at this node at once; more are told the relay is full (and
        /// try another node). Default: as many as the connections allow.
        #[arg(long)]
        max_hosts: Option<usize>,
        /// Sessions at this node at once; more clients are told the relay is full, try again.
        /// Default: as many as the connections allow.
        #[arg(long)]
        max_sessions: Option<usize>,
        /// On SIGTERM or Ctrl+C: stop accepting, send the office PCs to another node, and give
        /// sessions under way this many seconds to end before stopping.
        #[arg(long, default_value_t = 60)]
        drain_timeout: u64,
    },
    /// Issue a new relay certificate from the same CA (hosts and clients keep their ca.pem);
    /// a running relay picks it up within a minute.
    Renew {
        #[arg(long)]
        dir: PathBuf,
        /// DNS names or IP addresses to cover (default: those of the current certificate).
        #[arg(long = "name")]
        names: Vec<String>,
        /// Days the new certificate is valid (at most 398).
        #[arg(long, default_value_t = 365)]
        days: u64,
    },
    /// Release a computer ID from the host key it is bound to (audited); that key cannot claim
    /// it again. Works on a running relay.
    Unbind {
        #[arg(long)]
        dir: PathBuf,
        id: String,
        /// Release it in the relay nodes' shared directory (redis://host:port) directly, whether
        /// or not a node runs here; hosts holding it at any node are let go at their next
        /// heartbeat.
        #[arg(long, value_name = "URL")]
        directory: Option<String>,
    },
    /// Enrolment tokens for hosts (required for new IDs with `serve --closed`).
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Issue a token; give it to `thin-host init --enrol-token`.
    New {
        #[arg(long)]
        dir: PathBuf,
        /// The only computer ID it may bind.
        #[arg(long)]
        id: Option<String>,
        /// How many new IDs it may bind.
        #[arg(long, default_value_t = 1)]
        uses: u32,
        /// Days it is valid.
        #[arg(long, default_value_t = 7)]
        days: u64,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("thin-relay: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn date(at: SystemTime) -> String {
    time::OffsetDateTime::from(at).date().to_string()
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Init { dir, mut names } => {
            if names.is_empty() {
                names = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
            }
            relay::init(&dir, &names)?;
            println!(
                "relay CA written to {} — give this file to every host and client",
                dir.join(relay::CA_FILE).display()
            );
            Ok(())
        }
        Command::Renew { dir, names, days } => {
            let until = relay::renew(&dir, &names, Duration::from_secs(days * 24 * 3600))?;
            relay::oplog::record(
                &dir,
                "renew",
                serde_json::json!({ "by": relay::admin::operator_name(), "until": date(until) }),
            );
            println!(
                "new relay certificate valid until {}; hosts and clients keep their ca.pem",
                date(until)
            );
            Ok(())
        }
        Command::Unbind { dir, id, directory } => {
            let id = ComputerId::parse(&id)?;
            let message = match directory {
                Some(url) => tokio::runtime::Runtime::new()?
                    .block_on(relay::admin::unbind_in_directory(&dir, &url, &id))?,
                None => relay::admin::unbind(&dir, &id)?,
            };
            println!("{message}");
            Ok(())
        }
        Command::Token(TokenCommand::New {
            dir,
            id,
            uses,
            days,
        }) => {
            if !dir.join(relay::CA_FILE).exists() {
                anyhow::bail!(
                    "{} is not a relay folder (run `thin-relay init --dir {}` first)",
                    dir.display(),
                    dir.display()
                );
            }
            let id = id.map(|id| ComputerId::parse(&id)).transpose()?;
            let validity = Duration::from_secs(days.max(1) * 24 * 3600);
            let issued = relay::tokens::issue(&dir, id.clone(), uses, validity, SystemTime::now())?;
            relay::oplog::record(
                &dir,
                "token_new",
                serde_json::json!({
                    "by": relay::admin::operator_name(),
                    "id": id,
                    "uses": uses.max(1),
                    "until": date(issued.expires),
                }),
            );
            println!("{}", issued.token);
            eprintln!(
                "valid until {} for {} new computer ID(s){}; give it to `thin-host init --enrol-token`",
                date(issued.expires),
                uses.max(1),
                id.map(|id| format!(" (only '{id}')")).unwrap_or_default()
            );
            Ok(())
        }
        Command::Serve {
            dir,
            listen,
            heartbeat_timeout,
            pairing_timeout,
            max_conns_per_ip,
            max_connections,
            new_ids_per_hour,
            new_ids_total_per_hour,
            closed,
            web,
            web_cert,
            web_key,
            metrics,
            deny_file,
            directory,
            cluster_addr,
            public_addr,
            max_hosts,
            max_sessions,
            drain_timeout,
        } => {
            if let Some(web) = &web {
                if !web.join("index.html").is_file() {
                    anyhow::bail!(
                        "{} holds no index.html: build the web client with `cargo xtask web`",
                        web.display()
                    );
                }
            }
            raise_fd_limit();
            let limits = Limits {
                heartbeat_timeout: Duration::from_secs(heartbeat_timeout),
                pairing_timeout: Duration::from_secs(pairing_timeout),
                max_conns_per_ip,
                max_connections,
                new_ids_per_ip: per_hour(new_ids_per_hour),
                new_ids_total: per_hour(new_ids_total_per_hour),
                max_hosts,
                max_sessions,
                ..Limits::default()
            };
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async {
                let relay = Relay::bind(RelayConfig {
                    limits,
                    closed,
                    web_dir: web,
                    web_cert: web_cert.zip(web_key),
                    metrics,
                    deny_file,
                    cluster: directory
                        .zip(cluster_addr)
                        .map(|(directory, addr)| ClusterConfig {
                            directory,
                            addr,
                            public: public_addr,
                        }),
                    ..RelayConfig::new(dir.clone(), listen)
                })
                .await?;
                println!("thin-relay listening on {}", relay.local_addr());
                if let Some(addr) = relay.cluster_addr() {
                    println!("thin-relay cluster port on {addr}");
                }
                if let Some(addr) = relay.metrics_addr() {
                    println!("thin-relay metrics on http://{addr}/metrics");
                }
                let operator = relay.operator();
                let control = async move {
                    #[cfg(unix)]
                    if let Err(e) = relay::admin::serve(&dir, operator).await {
                        tracing::warn!(
                            error = %format!("{e:#}"),
                            "no control socket: `thin-relay unbind` needs the relay stopped"
                        );
                    }
                    #[cfg(not(unix))]
                    drop((dir, operator));
                    std::future::pending::<()>().await
                };
                let drain = Duration::from_secs(drain_timeout);
                tokio::select! {
                    r = relay.run_until(stop_asked(), drain) => r,
                    () = control => Ok(()),
                }
            })
        }
    }
}

/// SIGTERM (a service manager stopping the relay) or Ctrl+C.
async fn stop_asked() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    eprintln!("thin-relay stopping: draining");
}

/// `n` at once and `n` an hour after that; none for 0.
fn per_hour(n: u32) -> Option<Rate> {
    (n > 0).then(|| Rate {
        burst: n,
        interval: Duration::from_secs_f64(3600.0 / f64::from(n)),
    })
}

/// Every connection is a file descriptor: use all the system allows.
fn raise_fd_limit() {
    #[cfg(unix)]
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::info!(limit, "file-descriptor limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the file-descriptor limit"),
    }
}
