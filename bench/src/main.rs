//! `thin-bench`: what the relay costs, measured against what a user would
//! otherwise get, in the same run on loopback. Prints one `name=value` line
//! per figure (see docs/performance.md for the figures and how to read them).
//!
//! The relay runs as a child process (this binary again, `relay-child`), so
//! its memory can be read from /proc and it competes for the CPU as a real
//! relay would. Hosts and clients are simulated here with the real protocol
//! (`sim`): TLS 1.3 on both legs, Ed25519 registration, pairing by ID.

mod client;
mod cluster;
mod figures;
mod office;
mod relay_child;
mod sim;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(version, about = "Measures the relay against direct TLS on loopback")]
struct Cli {
    /// Small sizes, for checking that every figure can be produced (the
    /// figures are then too noisy to compare).
    #[arg(long)]
    quick: bool,
    /// Idle hosts registered for `idle_host_bytes`.
    #[arg(long)]
    hosts: Option<usize>,
    /// Only this group of figures.
    #[arg(long, value_enum)]
    only: Option<figures::Group>,
    #[command(subcommand)]
    child: Option<Child>,
}

#[derive(Subcommand)]
enum Child {
    /// Runs a relay for the bench (internal).
    #[command(hide = true)]
    RelayChild {
        #[arg(long)]
        dir: std::path::PathBuf,
        /// One node of several on this Redis.
        #[arg(long)]
        directory: Option<String>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    match cli.child {
        Some(Child::RelayChild { dir, directory }) => {
            runtime.block_on(relay_child::serve(dir, directory))
        }
        None => {
            let sizes = if cli.quick {
                figures::Sizes::quick()
            } else {
                figures::Sizes::full()
            };
            let sizes = figures::Sizes {
                idle_hosts: cli.hosts.unwrap_or(sizes.idle_hosts),
                ..sizes
            };
            relay_child::raise_fd_limit();
            runtime.block_on(figures::run(&sizes, cli.only))
        }
    }
}
