use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use relay::{Limits, Relay, RelayConfig};

/// thin-relay: the meeting point for office PCs (hosts) and people at home (clients).
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

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
        /// Simultaneous connections allowed from one source address.
        #[arg(long, default_value_t = 64)]
        max_conns_per_ip: usize,
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
        Command::Serve {
            dir,
            listen,
            heartbeat_timeout,
            pairing_timeout,
            max_conns_per_ip,
            web,
            web_cert,
            web_key,
        } => {
            if let Some(web) = &web {
                if !web.join("index.html").is_file() {
                    anyhow::bail!(
                        "{} holds no index.html: build the web client with `cargo xtask web`",
                        web.display()
                    );
                }
            }
            let limits = Limits {
                heartbeat_timeout: Duration::from_secs(heartbeat_timeout),
                pairing_timeout: Duration::from_secs(pairing_timeout),
                max_conns_per_ip,
                ..Limits::default()
            };
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async {
                let relay = Relay::bind(RelayConfig {
                    dir,
                    listen,
                    limits,
                    tap: None,
                    web_dir: web,
                    web_cert: web_cert.zip(web_key),
                })
                .await?;
                println!("thin-relay listening on {}", relay.local_addr());
                tokio::select! {
                    r = relay.run() => r,
                    _ = tokio::signal::ctrl_c() => Ok(()),
                }
            })
        }
    }
}
