use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use client_core::interaction::BoxFuture;
use client_core::native::{self, FilePins, RelayTarget};
use client_core::{
    screenshot, Answer, ConnectError, Interaction, PinStore, Progress, Prompt, RdpCredentials,
};
use transport::dial::Proxy;

/// thin-client: reach your office PC through the relay.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Connect to a computer ID: save the first complete frame (--screenshot),
    /// or open a local port for any RDP client (--listen).
    Connect(Box<ConnectArgs>),
    /// Remove a pinned host key (after its owner re-installed thin-host).
    ForgetHost {
        /// The pin's name, computer-id@relay, as the warning printed it.
        pin: String,
        #[arg(long)]
        known_hosts: Option<PathBuf>,
    },
    /// List the pinned host keys.
    KnownHosts {
        #[arg(long)]
        known_hosts: Option<PathBuf>,
    },
    /// Start relay, host and test desktop in this process and connect to them.
    Demo {
        /// Where to save the first complete frame as PNG.
        #[arg(long)]
        screenshot: Option<PathBuf>,
    },
}

#[derive(Args)]
struct ConnectArgs {
    /// Relay address, host:port.
    #[arg(long)]
    relay: String,
    /// The relay CA (ca.pem), the only certificate trusted for the relay.
    #[arg(long)]
    relay_ca: PathBuf,
    /// The computer ID of the office PC.
    #[arg(long)]
    id: String,
    /// HTTP proxy: http://[user:password@]host:port
    #[arg(long)]
    proxy: Option<String>,
    /// Remote PC logon user.
    #[arg(long, required_unless_present = "listen")]
    rdp_user: Option<String>,
    /// Remote PC logon password.
    #[arg(long, required_unless_present = "listen")]
    rdp_password: Option<String>,
    /// Remote PC logon domain.
    #[arg(long)]
    rdp_domain: Option<String>,
    /// Save the first complete frame as PNG here.
    #[arg(long, required_unless_present = "listen")]
    screenshot: Option<PathBuf>,
    /// Raw mode: listen here (e.g. 127.0.0.1:13389) and carry each RDP client
    /// connection through the relay.
    #[arg(long, conflicts_with_all = ["screenshot", "rdp_user", "rdp_password"])]
    listen: Option<String>,
    /// Desktop size WIDTHxHEIGHT.
    #[arg(long, default_value = "1024x768", value_parser = parse_size)]
    size: (u16, u16),
    /// The pinned host keys (default: known_hosts in the config folder).
    #[arg(long)]
    known_hosts: Option<PathBuf>,
    /// Seconds to wait for the first complete frame.
    #[arg(long, default_value_t = 30)]
    frame_timeout: u64,
}

fn parse_size(s: &str) -> Result<(u16, u16), String> {
    let (w, h) = s.split_once('x').ok_or("use WIDTHxHEIGHT, e.g. 1280x720")?;
    let w: u16 = w.parse().map_err(|_| "bad width")?;
    let h: u16 = h.parse().map_err(|_| "bad height")?;
    if !(200..=8192).contains(&w) || !(200..=8192).contains(&h) {
        return Err("width and height must be between 200 and 8192".into());
    }
    Ok((w, h))
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("thin-client: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(Cli::parse())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("thin-client: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The terminal: progress on stderr; a new host key is trusted on first use
/// and its fingerprint shown so it can be compared with the host's.
struct Terminal;

impl Interaction for Terminal {
    fn progress(&mut self, step: Progress) {
        let text = match step {
            Progress::RelayConnected => "connected to the relay",
            Progress::HostNotified => "the office PC is online; waiting for it to answer",
            Progress::Paired => "connected to the office PC",
            Progress::Secured => "end-to-end encryption with the office PC is set up",
            Progress::RemoteLogon => "logging on to the remote desktop",
            Progress::Connected => "remote desktop connected",
        };
        eprintln!("… {text}");
    }

    fn ask(&mut self, prompt: Prompt) -> BoxFuture<'_, Answer> {
        Box::pin(async move {
            match prompt {
                Prompt::NewHostKey { id, fingerprint } => {
                    eprintln!(
                        "first connection to '{id}': its key {fingerprint} is now pinned \
                         (`thin-host fingerprint` on that PC shows the same)"
                    );
                    Answer::Accept
                }
            }
        })
    }
}

fn pins_at(path: Option<PathBuf>) -> FilePins {
    path.map_or_else(FilePins::default_location, |path| FilePins { path })
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Connect(args) => {
            let relay = RelayTarget {
                addr: args.relay,
                ca: args.relay_ca,
                proxy: args.proxy.as_deref().map(Proxy::parse).transpose()?,
            };
            if let Some(listen) = args.listen {
                let listener = tokio::net::TcpListener::bind(&listen)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
                println!(
                    "listening on {}: point your RDP client there to reach '{}'",
                    listener.local_addr()?,
                    args.id
                );
                let pins = Arc::new(pins_at(args.known_hosts));
                let ui: Box<dyn Interaction> = Box::new(Terminal);
                let ui = Arc::new(tokio::sync::Mutex::new(ui));
                tokio::select! {
                    r = native::serve_raw(listener, relay, args.id, pins, ui) => r?,
                    _ = tokio::signal::ctrl_c() => {}
                }
                return Ok(());
            }
            let creds = RdpCredentials {
                user: args.rdp_user.unwrap_or_default(),
                password: args.rdp_password.unwrap_or_default(),
                domain: args.rdp_domain,
            };
            let shot = args
                .screenshot
                .expect("clap requires --screenshot without --listen");
            screenshot_session(
                &relay,
                &args.id,
                &creds,
                args.size,
                Duration::from_secs(args.frame_timeout),
                &pins_at(args.known_hosts),
                &shot,
            )
            .await
        }
        Command::ForgetHost { pin, known_hosts } => {
            let pins = pins_at(known_hosts);
            let mut hosts = pins.load().map_err(anyhow::Error::msg)?;
            if !hosts.forget(&pin) {
                anyhow::bail!(
                    "no pin named '{pin}' in {} (see `thin-client known-hosts`)",
                    pins.path.display()
                );
            }
            pins.save(&hosts).map_err(anyhow::Error::msg)?;
            println!("removed the pin for {pin}; the next connection pins the new key");
            Ok(())
        }
        Command::KnownHosts { known_hosts } => {
            let pins = pins_at(known_hosts);
            for (name, fingerprint) in pins.load().map_err(anyhow::Error::msg)?.list() {
                println!("{name} {fingerprint}");
            }
            Ok(())
        }
        Command::Demo { screenshot } => {
            eprintln!("starting the demo: relay, office PC agent and test desktop on loopback …");
            let demo = client_core::demo::Demo::start().await?;
            let shot = screenshot.unwrap_or_else(|| PathBuf::from("demo.png"));
            screenshot_session(
                &demo.relay,
                &demo.id,
                &demo.rdp,
                (1024, 768),
                Duration::from_secs(30),
                &demo.pins,
                &shot,
            )
            .await
        }
    }
}

async fn screenshot_session(
    relay: &RelayTarget,
    id: &str,
    creds: &RdpCredentials,
    size: (u16, u16),
    frame_timeout: Duration,
    pins: &dyn PinStore,
    shot: &std::path::Path,
) -> anyhow::Result<()> {
    let (session, timings) =
        native::connect_and_wait_frame(relay, id, creds, size, frame_timeout, pins, &mut Terminal)
            .await
            .map_err(|e: ConnectError| anyhow::anyhow!(e))?;
    screenshot::save_png(shot, session.image(), session.width(), session.height())
        .map_err(|e| anyhow::anyhow!("cannot save {}: {e}", shot.display()))?;
    println!("pairing_ms={}", timings.pairing.as_millis());
    println!("first_frame_ms={}", timings.first_frame.as_millis());
    println!("screenshot={}", shot.display());
    let _ = session.disconnect().await;
    Ok(())
}
