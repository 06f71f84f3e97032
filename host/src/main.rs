use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use host::{HostConfig, InitOptions};

/// thin-host: the agent on the office PC. It dials out to the relay; no inbound port is opened.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the host's config file and identity key.
    Init {
        #[arg(long)]
        config: PathBuf,
        /// Computer ID: 1-32 characters of a-z, 0-9 and '-'.
        #[arg(long)]
        id: String,
        /// Relay address, host:port.
        #[arg(long)]
        relay: String,
        /// The relay CA (ca.pem from `thin-relay init`).
        #[arg(long)]
        relay_ca: PathBuf,
        /// The RDP server to forward sessions to (default 127.0.0.1:3389).
        #[arg(long)]
        target: Option<String>,
        /// HTTP proxy: http://[user:password@]host:port
        #[arg(long)]
        proxy: Option<String>,
    },
    /// Show this host's key fingerprint, which clients pin on first connection.
    Fingerprint {
        #[arg(long)]
        config: PathBuf,
    },
    /// Stay connected to the relay and serve sessions.
    Run {
        #[arg(long)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match Cli::parse().command {
        Command::Init {
            config,
            id,
            relay,
            relay_ca,
            target,
            proxy,
        } => HostConfig::init(
            &config,
            InitOptions {
                id,
                relay,
                relay_ca,
                target,
                proxy,
            },
        )
        .map(|c| println!("host '{}' configured in {}", c.id, config.display())),
        Command::Fingerprint { config } => HostConfig::load(&config)
            .and_then(|c| c.load_e2e_key(&config))
            .map(|key| println!("{}", proto::channel::fingerprint(key.public()))),
        Command::Run { config } => tokio::runtime::Runtime::new()
            .map_err(anyhow::Error::from)
            .and_then(|rt| {
                rt.block_on(async {
                    tokio::select! {
                        r = host::run(&config) => r.map_err(anyhow::Error::from),
                        _ = tokio::signal::ctrl_c() => Ok(()),
                    }
                })
            }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("thin-host: {e:#}");
            ExitCode::FAILURE
        }
    }
}
