use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use test_desktop::TestDesktop;

/// A synthetic RDP server with NLA, a known picture and an input echo.
/// Each input event it receives is printed on stdout as `input: ...`.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[arg(long, default_value = "127.0.0.1:3389")]
    listen: SocketAddr,
    #[arg(long)]
    user: String,
    #[arg(long)]
    password: String,
    #[arg(long, default_value_t = test_desktop::DEFAULT_WIDTH)]
    width: u16,
    #[arg(long, default_value_t = test_desktop::DEFAULT_HEIGHT)]
    height: u16,
    /// Repaint the whole screen continuously (the picture slides left), to
    /// see how many frames a client keeps up with.
    #[arg(long)]
    motion: bool,
    /// Text on this desktop's clipboard at start (offered to each client
    /// as it connects; a client's copy replaces it).
    #[arg(long)]
    clipboard: Option<String>,
    /// A picture (PNG file) on this desktop's clipboard at start, instead.
    #[arg(long, conflicts_with = "clipboard")]
    clipboard_image: Option<std::path::PathBuf>,
    /// Files on this desktop's clipboard at start, instead, as if copied in
    /// its Explorer (repeat for several; read at start).
    #[arg(long, conflicts_with_all = ["clipboard", "clipboard_image"])]
    clipboard_file: Vec<std::path::PathBuf>,
    /// Play a one-second tone of this many Hz to each client that takes
    /// sound.
    #[arg(long)]
    tone: Option<u32>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = tokio::runtime::Runtime::new()
        .map_err(anyhow::Error::from)
        .and_then(|rt| {
            rt.block_on(async {
                let mut desktop =
                    TestDesktop::bind(cli.listen, &cli.user, &cli.password, cli.width, cli.height)
                        .await?;
                if cli.motion {
                    desktop = desktop.with_motion();
                }
                if let Some(text) = &cli.clipboard {
                    desktop = desktop.with_clipboard(text);
                }
                if let Some(path) = &cli.clipboard_image {
                    let png = std::fs::read(path)
                        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
                    desktop = desktop.with_clipboard_image(&png)?;
                }
                if !cli.clipboard_file.is_empty() {
                    desktop = desktop.with_clipboard_paths(&cli.clipboard_file)?;
                }
                if let Some(hz) = cli.tone {
                    desktop = desktop.with_tone(hz);
                }
                let mut echo = desktop.subscribe();
                println!("thin-test-desktop listening on {}", desktop.local_addr());
                tokio::spawn(async move {
                    while let Ok(event) = echo.recv().await {
                        println!("input: {event}");
                    }
                });
                tokio::select! {
                    r = desktop.run() => r,
                    _ = tokio::signal::ctrl_c() => Ok(()),
                }
            })
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("thin-test-desktop: {e:#}");
            ExitCode::FAILURE
        }
    }
}
