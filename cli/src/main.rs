//! thin-client: the client on the command line: connect (with a screenshot or
//! a local raw-mode port for any RDP client), forget a pinned host key, and the
//! headless demo.

mod recording;
mod screenshot;

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use client_core::interaction::BoxFuture;
use client_core::interaction::OtpWrong;
use client_core::native::{self, FilePins, RdpOptions, RelayTarget};
use client_core::{
    Answer, ConnectError, Interaction, MonitorLayout, OtpKind, PinStore, Progress, Prompt,
    RdpCredentials,
};
use proto::ComputerId;
use transport::dial::Proxy;
use zeroize::Zeroizing;

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
        /// The pin's name (computer-id@relay-identity) as the warning printed it, or a
        /// computer ID to forget its pins at every relay.
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
    /// Several monitors instead of one desktop size, as xrandr writes them
    /// (the first is the primary): 1920x1080+0+0,1280x1024+1920+0. The
    /// remote PC gives each its own screen; the screenshot shows them all.
    #[arg(long, conflicts_with = "size", value_parser = parse_monitors)]
    monitors: Option<MonitorLayout>,
    /// The one-time password (or an emergency code), if the host asks for one.
    #[arg(long)]
    otp: Option<String>,
    /// File holding the host password (asked on the terminal if not given).
    #[arg(long)]
    host_password_file: Option<PathBuf>,
    /// Share this local folder with the remote PC (if the office PC allows it).
    #[arg(long, conflicts_with = "listen")]
    share: Option<PathBuf>,
    /// The pinned host keys (default: known_hosts in the config folder).
    #[arg(long)]
    known_hosts: Option<PathBuf>,
    /// Seconds to wait for the first complete frame.
    #[arg(long, default_value_t = 30)]
    frame_timeout: u64,
    /// Keep the session running this many seconds after the first frame
    /// (e.g. to use a shared folder from the remote PC).
    #[arg(long, default_value_t = 0)]
    hold: u64,
    /// Put this text on the remote PC's clipboard once connected (the text
    /// copied on the remote PC is printed as remote_clipboard=…).
    #[arg(long, conflicts_with = "listen")]
    copy_text: Option<String>,
    /// Put this picture (a PNG file) on the remote PC's clipboard once
    /// connected (a picture copied on the remote PC is printed as
    /// remote_clipboard_image=WxH rgba-sha256=…).
    #[arg(long, conflicts_with_all = ["listen", "copy_text"])]
    copy_image: Option<PathBuf>,
    /// Put these files on the remote PC's clipboard once connected (repeat
    /// for several); pasted in its Explorer, they are read from here, so
    /// keep the session with --hold meanwhile.
    #[arg(long, conflicts_with_all = ["listen", "copy_text", "copy_image"])]
    copy_file: Vec<PathBuf>,
    /// Bring the files copied on the remote PC (now, or while the session
    /// is held with --hold) into this folder, as pasting them here would;
    /// prints remote_clipboard_file="NAME" N bytes sha256=… for each.
    #[arg(long, conflicts_with = "listen")]
    paste_files: Option<PathBuf>,
    /// Once connected, ask the remote PC to resize its desktop to
    /// WIDTHxHEIGHT, or to monitors written as for --monitors (Display
    /// Control, as when the app's window changes size or goes full screen
    /// over every monitor); prints resized=WxH, and the screenshot has the
    /// new size.
    #[arg(long, conflicts_with = "listen", value_parser = parse_screens)]
    resize: Option<MonitorLayout>,
    /// Take the remote PC's sound (where its host allows it) and write it
    /// to this WAV file at the end; prints sound_frames=N.
    #[arg(long, conflicts_with = "listen")]
    sound_out: Option<PathBuf>,
    /// Write the remote PC's pointer, as it is at the end, to this PNG
    /// (with transparency). The pointer is printed either way:
    /// pointer=WxH hotspot=X,Y, pointer=hidden or pointer=system.
    #[arg(long, conflicts_with = "listen")]
    pointer_out: Option<PathBuf>,
    /// Print the session's RDP traffic each second of --hold
    /// (stats: in=… kbit/s out=… kbit/s) and its totals at the end
    /// (received_bytes=, sent_bytes=, in_kbps= and out_kbps= over the hold).
    #[arg(long, conflicts_with = "listen")]
    stats: bool,
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

fn parse_monitors(s: &str) -> Result<MonitorLayout, String> {
    MonitorLayout::parse(s).map_err(|e| e.to_string())
}

/// WIDTHxHEIGHT, or monitors with their places.
fn parse_screens(s: &str) -> Result<MonitorLayout, String> {
    match s.contains(['+', '-', ',']) {
        true => parse_monitors(s),
        false => parse_size(s).map(MonitorLayout::from),
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    native::detect_keyboard(None).use_for_sessions();
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

/// The terminal: progress on stderr; answers from flags, or asked on the
/// terminal when there is one. A new host key is trusted on first use and
/// its fingerprint shown so it can be compared with the host's.
#[derive(Default)]
struct Terminal {
    otp: Option<String>,
    host_password: Option<Zeroizing<String>>,
    interactive: bool,
}

impl Terminal {
    fn from_flags(
        otp: Option<String>,
        password_file: Option<&std::path::Path>,
    ) -> anyhow::Result<Self> {
        let host_password = match password_file {
            Some(path) => Some(Zeroizing::new(
                std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?
                    .trim_end_matches(['\r', '\n'])
                    .to_owned(),
            )),
            None => None,
        };
        Ok(Self {
            otp,
            host_password,
            interactive: std::io::stdin().is_terminal(),
        })
    }
}

fn is_otp_format(code: &str) -> bool {
    code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())
}

/// Reads a line from the terminal (visible, or hidden for secrets).
async fn read_line(prompt: String, hidden: bool) -> Option<Zeroizing<String>> {
    tokio::task::spawn_blocking(move || {
        if hidden {
            return rpassword::prompt_password(prompt).ok().map(Zeroizing::new);
        }
        eprint!("{prompt}");
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).ok()?;
        Some(Zeroizing::new(line.trim().to_owned()))
    })
    .await
    .ok()
    .flatten()
    .filter(|s| !s.is_empty())
}

impl Terminal {
    fn otp_answer(&mut self, kind: OtpKind, last: Option<OtpWrong>) -> Result<Answer, String> {
        if last.is_none() {
            if let Some(code) = self.otp.take() {
                let code = Zeroizing::new(code);
                return Ok(if is_otp_format(&code) {
                    Answer::Otp(code)
                } else {
                    Answer::EmergencyCode(code)
                });
            }
        }
        if !self.interactive {
            return Ok(match last {
                Some(_) => Answer::Cancel,
                None => Answer::Unavailable(
                    "this computer asks for a one-time password: give --otp CODE".into(),
                ),
            });
        }
        if let Some(wrong) = last {
            eprintln!("{wrong}");
        }
        Err(match kind {
            OtpKind::Totp => "code from your authenticator app".to_owned(),
            OtpKind::Email { masked_to } => format!("code mailed to {masked_to}"),
        })
    }

    fn password_answer(&mut self, retry: bool) -> Option<Answer> {
        if !retry {
            if let Some(password) = self.host_password.take() {
                return Some(Answer::Secret(password));
            }
        }
        if !self.interactive {
            return Some(match retry {
                true => Answer::Cancel,
                false => Answer::Unavailable(
                    "this computer asks for its host password: give --host-password-file FILE"
                        .into(),
                ),
            });
        }
        if retry {
            eprintln!("that host password was wrong; try again");
        }
        None
    }
}

impl Interaction for Terminal {
    fn progress(&mut self, step: Progress) {
        let text = match step {
            Progress::RelayConnected => "connected to the relay",
            Progress::HostNotified => "the office PC is online; waiting for it to answer",
            Progress::Paired => "connected to the office PC",
            Progress::Secured => "end-to-end encryption with the office PC is set up",
            Progress::OtpAccepted => "one-time password accepted",
            Progress::Admitted => "host password accepted",
            Progress::ShareRefused => {
                "the office PC does not allow sharing a folder; continuing without"
            }
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
                Prompt::Otp { kind, last, .. } => match self.otp_answer(kind, last) {
                    Ok(answer) => answer,
                    Err(ask) => {
                        match read_line(format!("{ask} (or an emergency code): "), false).await {
                            Some(code) if is_otp_format(&code) => Answer::Otp(code),
                            Some(code) => Answer::EmergencyCode(code),
                            None => Answer::Cancel,
                        }
                    }
                },
                // The CLI takes the logon from --rdp-user/--rdp-password.
                Prompt::RemoteLogon { .. } => {
                    Answer::Unavailable("give --rdp-user and --rdp-password".into())
                }
                Prompt::HostPassword { retry } => match self.password_answer(retry) {
                    Some(answer) => answer,
                    None => match read_line("host password: ".into(), true).await {
                        Some(p) => Answer::Secret(p),
                        None => Answer::Cancel,
                    },
                },
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
                let terminal = Terminal::from_flags(args.otp, args.host_password_file.as_deref())?;
                let ui: Box<dyn Interaction> = Box::new(terminal);
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
            let mut terminal = Terminal::from_flags(args.otp, args.host_password_file.as_deref())?;
            let rdp = RdpOptions {
                creds,
                screens: args.monitors.unwrap_or_else(|| args.size.into()),
                frame_timeout: Duration::from_secs(args.frame_timeout),
                share: args.share,
            };
            screenshot_session(
                &relay,
                &args.id,
                &rdp,
                &pins_at(args.known_hosts),
                &mut terminal,
                Plan {
                    shot: &shot,
                    hold: Duration::from_secs(args.hold),
                    copy_text: args.copy_text,
                    copy_image: args.copy_image.as_deref(),
                    copy_files: &args.copy_file,
                    paste_files: args.paste_files.as_deref(),
                    resize: args.resize,
                    sound_out: args.sound_out.as_deref(),
                    pointer_out: args.pointer_out.as_deref(),
                    stats: args.stats,
                },
            )
            .await
        }
        Command::ForgetHost { pin, known_hosts } => {
            let pins = pins_at(known_hosts);
            let mut hosts = pins.load().map_err(anyhow::Error::msg)?;
            // A bare computer ID forgets its pins at every relay.
            let removed = match ComputerId::parse(&pin) {
                Ok(id) if !pin.contains('@') => hosts.forget_id(&id),
                _ if hosts.forget(&pin) => vec![pin.clone()],
                _ => Vec::new(),
            };
            if removed.is_empty() {
                anyhow::bail!(
                    "no pin named '{pin}' in {} (see `thin-client known-hosts`)",
                    pins.path.display()
                );
            }
            pins.save(&hosts).map_err(anyhow::Error::msg)?;
            for name in removed {
                println!("removed the pin for {name}; the next connection pins the new key");
            }
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
            let demo = demo::Demo::start().await?;
            let shot = screenshot.unwrap_or_else(|| PathBuf::from("demo.png"));
            let rdp = RdpOptions {
                creds: demo.rdp.clone(),
                screens: MonitorLayout::single(1024, 768),
                frame_timeout: Duration::from_secs(30),
                share: None,
            };
            screenshot_session(
                &demo.relay,
                &demo.id,
                &rdp,
                &demo.pins,
                &mut Terminal {
                    otp: Some(demo.next_otp()),
                    host_password: Some(Zeroizing::new(demo.host_password.clone())),
                    interactive: false,
                },
                Plan {
                    shot: &shot,
                    hold: Duration::ZERO,
                    copy_text: None,
                    copy_image: None,
                    copy_files: &[],
                    paste_files: None,
                    resize: None,
                    sound_out: None,
                    pointer_out: None,
                    stats: false,
                },
            )
            .await
        }
    }
}

/// What to do in a session once its picture is there.
struct Plan<'a> {
    /// Save the picture here (again at the end of `hold`).
    shot: &'a std::path::Path,
    /// Keep the session this long.
    hold: Duration,
    /// Put this text on the remote clipboard.
    copy_text: Option<String>,
    /// Put this picture (PNG file) on the remote clipboard.
    copy_image: Option<&'a std::path::Path>,
    /// Put these files on the remote clipboard.
    copy_files: &'a [PathBuf],
    /// Bring the remote PC's copied files into this folder.
    paste_files: Option<&'a std::path::Path>,
    /// Ask for these screens once connected.
    resize: Option<MonitorLayout>,
    /// Record the remote PC's sound here.
    sound_out: Option<&'a std::path::Path>,
    /// Save the remote PC's pointer here.
    pointer_out: Option<&'a std::path::Path>,
    /// Print the traffic.
    stats: bool,
}

async fn screenshot_session(
    relay: &RelayTarget,
    id: &str,
    rdp: &RdpOptions,
    pins: &dyn PinStore,
    terminal: &mut Terminal,
    Plan {
        shot,
        hold,
        copy_text,
        copy_image,
        copy_files,
        paste_files,
        resize,
        sound_out,
        pointer_out,
        stats,
    }: Plan<'_>,
) -> anyhow::Result<()> {
    let (speaker, recorded) = match sound_out {
        Some(_) => {
            let (player, recorded) = recording::Recorder::player();
            let speaker = client_core::sound::Speaker::new(player, Default::default());
            (Some(speaker), Some(recorded))
        }
        None => (None, None),
    };
    let (mut session, timings) =
        native::connect_with_sound(relay, id, rdp, speaker, pins, terminal)
            .await
            .map_err(|e: ConnectError| anyhow::anyhow!(e))?;
    let finish = |session: &client_core::RdpSession<_>| -> anyhow::Result<()> {
        print_remote_clipboard(session.remote_clipboard());
        if let Some(png) = session.remote_image() {
            println!(
                "remote_clipboard_image={}",
                proto::clipboard::describe_image(png)
            );
        }
        print_pointer(session.pointer(), pointer_out)?;
        if let (Some(path), Some(recorded)) = (sound_out, &recorded) {
            let recorded = recorded.lock().expect("not poisoned");
            println!("sound_frames={}", recorded.frames());
            if recorded.frames() > 0 {
                recorded
                    .write_wav(path)
                    .map_err(|e| anyhow::anyhow!("cannot save {}: {e}", path.display()))?;
            }
        }
        Ok(())
    };
    // The first complete frame may not be the real picture yet (servers
    // that capture a screen paint black first): wait for it to settle.
    let settled = native::wait_settled(&mut session, SETTLE_QUIET, SETTLE_LIMIT)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    if let Some(screens) = resize {
        let resized = native::resize_and_wait(&mut session, &screens, RESIZE_LIMIT)
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
        let Some((width, height)) = resized else {
            anyhow::bail!(
                "the remote PC did not change its desktop size within {} s: it cannot resize \
                 (no Display Control); the app scales the picture instead",
                RESIZE_LIMIT.as_secs()
            );
        };
        println!("resized={width}x{height}");
        native::wait_settled(&mut session, SETTLE_QUIET, SETTLE_LIMIT)
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
    } else if !settled {
        eprintln!(
            "the remote picture kept changing (or stayed black) for {} s; saving it as it is",
            SETTLE_LIMIT.as_secs()
        );
    }
    let save = |session: &client_core::RdpSession<_>| {
        screenshot::save_png(shot, session.image(), session.width(), session.height())
            .map_err(|e| anyhow::anyhow!("cannot save {}: {e}", shot.display()))
    };
    save(&session)?;
    println!("pairing_ms={}", timings.pairing.as_millis());
    println!("first_frame_ms={}", timings.first_frame.as_millis());
    println!("screenshot={}", shot.display());
    if let Some(text) = copy_text {
        session
            .copy_text(text)
            .await
            .map_err(|e| anyhow::anyhow!(e))??;
    }
    if let Some(path) = copy_image {
        let png = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        session
            .copy_image(&png)
            .await
            .map_err(|e| anyhow::anyhow!(e))??;
    }
    if !copy_files.is_empty() {
        session
            .copy_files(copy_files)
            .await
            .map_err(|e| anyhow::anyhow!(e))?
            .map_err(|e| anyhow::anyhow!(e))?;
    }
    if let (Some(dir), Some((list, _))) = (paste_files, session.remote_files()) {
        fetch_files(&mut session, dir, list).await?;
    }
    if hold.is_zero() {
        finish(&session)?;
        let _ = session.disconnect().await;
        return Ok(());
    }
    let held = hold;
    let hold = tokio::time::sleep(hold);
    tokio::pin!(hold);
    let second = Duration::from_secs(1);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + second, second);
    // A slow message (a resize's capability exchange) delays the next line;
    // each line divides by the time it really covers.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let at_start = session.traffic();
    let (mut last, mut last_at) = (at_start, std::time::Instant::now());
    loop {
        if let Some(ended) = session.check_fetch() {
            print_fetched(&ended);
        }
        tokio::select! {
            _ = &mut hold => break,
            _ = tick.tick(), if stats => {
                let now = session.traffic();
                let took = last_at.elapsed();
                println!(
                    "stats: in={:.1} kbit/s out={:.1} kbit/s",
                    kbit(now.received - last.received, took),
                    kbit(now.sent - last.sent, took),
                );
                (last, last_at) = (now, std::time::Instant::now());
            }
            // Only the read races the timers (it is cancel-safe).
            pdu = session.read() => {
                let pdu = pdu.map_err(|e| anyhow::anyhow!(e))?;
                for event in session.apply_pdu(pdu).await.map_err(|e| anyhow::anyhow!(e))? {
                    match event {
                        client_core::SessionEvent::Ended(_) => return Ok(()),
                        client_core::SessionEvent::RemoteClipboardTooLarge(bytes) => eprintln!(
                            "the text copied on the remote PC is too large to take ({bytes} bytes)"
                        ),
                        client_core::SessionEvent::RemoteFiles { list, .. } => {
                            if let Some(dir) = paste_files {
                                fetch_files(&mut session, dir, list).await?;
                            }
                        }
                        client_core::SessionEvent::FilesFetched(result) => print_fetched(&result),
                        _ => {}
                    }
                }
            }
        }
    }
    if stats {
        let total = session.traffic();
        println!(
            "received_bytes={} sent_bytes={}",
            total.received, total.sent
        );
        println!(
            "in_kbps={:.1} out_kbps={:.1}",
            kbit(total.received - at_start.received, held),
            kbit(total.sent - at_start.sent, held),
        );
    }
    // The picture as it was at the end of the hold.
    save(&session)?;
    finish(&session)?;
    let _ = session.disconnect().await;
    Ok(())
}

/// Starts bringing the remote PC's copied files into `dir` (printed as
/// they all came, see [`print_fetched`]).
async fn fetch_files<S>(
    session: &mut client_core::RdpSession<S>,
    dir: &std::path::Path,
    list: u32,
) -> anyhow::Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + Sync,
{
    // Asked for by name: as much as the office PC copied (each file within
    // the channel's limit).
    let started = session
        .fetch_remote_files(dir, list, u64::MAX)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    match started {
        Ok(Some(result)) => print_fetched(&result),
        Ok(None) => {}
        Err(why) => eprintln!("the remote PC's files were not fetched: {why}"),
    }
    Ok(())
}

/// Each fetched file with its size and digest; each that did not come
/// with why.
fn print_fetched(result: &client_core::incoming::FilesFetched) {
    for path in &result.saved {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if path.is_dir() {
            println!("remote_clipboard_folder={name:?}");
            continue;
        }
        match proto::clipboard::digest_file(path) {
            Ok((bytes, digest)) => {
                println!("remote_clipboard_file={name:?} {bytes} bytes sha256={digest}")
            }
            Err(e) => eprintln!("cannot read {}: {e}", path.display()),
        }
    }
    for (name, why) in &result.failed {
        println!("remote_clipboard_file_failed={name:?}: {why}");
    }
    if let Some(why) = &result.abandoned {
        println!("remote_clipboard_files_abandoned: {why}");
    }
}

/// `bytes` over `time` in kbit/s.
fn kbit(bytes: u64, time: Duration) -> f64 {
    bytes as f64 * 8.0 / 1000.0 / time.as_secs_f64().max(0.001)
}

fn print_pointer(
    pointer: &client_core::rdp::RemotePointer,
    save_to: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    use client_core::rdp::RemotePointer;
    match pointer {
        RemotePointer::System => println!("pointer=system"),
        RemotePointer::Hidden => println!("pointer=hidden"),
        RemotePointer::Shape(shape) => {
            let (x, y) = shape.hotspot;
            println!("pointer={}x{} hotspot={x},{y}", shape.width, shape.height);
            if let Some(path) = save_to {
                screenshot::save_rgba_png(path, &shape.rgba, shape.width, shape.height)?;
            }
        }
    }
    Ok(())
}

/// The text copied on the remote PC, if any (JSON-quoted: one line).
fn print_remote_clipboard(text: Option<&str>) {
    if let Some(text) = text {
        println!("remote_clipboard={}", serde_json::Value::from(text));
    }
}

/// How long `--resize` waits for the remote PC's new size.
const RESIZE_LIMIT: Duration = Duration::from_secs(10);
/// The screenshot waits for the picture to stay unchanged this long…
const SETTLE_QUIET: Duration = Duration::from_millis(700);
/// …but no longer than this after the first complete frame.
const SETTLE_LIMIT: Duration = Duration::from_secs(5);
