//! Native transport: TCP (optionally through an HTTP proxy) and TLS 1.3 to
//! the relay with its pinned CA; the raw-mode local port.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proto::liveness::CLIENT_GIVES_UP_AFTER;
use proto::relay;
use proto::session::{SessionMode, SessionReply, SessionRequest};
use proto::ComputerId;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::client::TlsStream;
use tracing::{info, warn};
use transport::dial::{DialError, Proxy};
use transport::tls::TlsConnectError;
use transport::{FramedIo, Prefixed, SecureStream};
use zeroize::Zeroizing;

use crate::auth::Resumption;
use crate::interaction::BoxFuture;
use crate::known_hosts::{ca_identity, pin_name};
use crate::monitors::MonitorLayout;
use crate::rdp::{self, RdpCredentials, RdpSession};
use crate::sound::Speaker;
use crate::{Admission, Answer, ConnectError, Interaction, KnownHosts, PinStore, Progress, Prompt};

const DIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the relay is and how to reach and trust it.
#[derive(Debug, Clone)]
pub struct RelayTarget {
    pub addr: String,
    pub ca: PathBuf,
    pub proxy: Option<Proxy>,
}

pub type RelayStream = TlsStream<TcpStream>;
pub type Pipe = Prefixed<RelayStream>;
/// The end-to-end channel to the host, through the relay.
pub type Channel = SecureStream<Pipe>;

/// TCP (+ proxy) + TLS 1.3 to the relay.
pub async fn dial_relay(relay: &RelayTarget) -> Result<RelayStream, ConnectError> {
    let config = transport::tls::pinned_client_config(&relay.ca)
        .map_err(|e| ConnectError::RelayCa(e.to_string()))?;
    let (tcp, addr) =
        transport::dial::dial_any(&relay.addr, None, relay.proxy.as_ref(), DIAL_TIMEOUT)
            .await
            .map_err(|e| match e {
                DialError::Unreachable { .. } | DialError::Timeout { .. } => {
                    ConnectError::RelayUnreachable(e.to_string())
                }
                other => ConnectError::Proxy(other.to_string()),
            })?;
    transport::tls::connect(tcp, config, &addr)
        .await
        .map_err(|e| match e {
            TlsConnectError::Untrusted(why) => ConnectError::RelayUntrusted(why),
            other => ConnectError::RelayUnreachable(other.to_string()),
        })
}

/// Pins kept in a text file (see [`crate::known_hosts`]).
pub struct FilePins {
    pub path: PathBuf,
}

impl FilePins {
    /// `known_hosts` in the client's config folder.
    pub fn default_location() -> Self {
        Self {
            path: config_dir().join("known_hosts"),
        }
    }
}

/// The client's config folder: `$THIN_CONFIG_DIR`, else the platform's
/// (e.g. `~/.config/thin`, `%APPDATA%\thin`).
pub fn config_dir() -> PathBuf {
    match std::env::var_os("THIN_CONFIG_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => dirs::config_dir()
            .unwrap_or_else(|| PathBuf::from("."))
            .join("thin"),
    }
}

impl PinStore for FilePins {
    fn load(&self) -> Result<KnownHosts, String> {
        keep_private(&self.path);
        match std::fs::read_to_string(&self.path) {
            Ok(text) => {
                KnownHosts::parse(&text).map_err(|e| format!("{}: {e}", self.path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KnownHosts::default()),
            Err(e) => Err(format!("cannot read {}: {e}", self.path.display())),
        }
    }

    fn save(&self, hosts: &KnownHosts) -> Result<(), String> {
        // Which computers someone reaches, and through which relays, is
        // nobody else's business.
        files::write_atomic(&self.path, hosts.to_text().as_bytes(), files::Mode::Secret)
            .map_err(|e| format!("cannot write {}: {e}", self.path.display()))
    }

    /// `device.key` beside the pins (mode 0600). Made with `create_new`: of
    /// two programs starting at once, both end up with the one written first.
    fn device_secret(&self) -> Result<Zeroizing<Vec<u8>>, String> {
        let path = self.path.with_file_name("device.key");
        let read = || -> Result<Option<Zeroizing<Vec<u8>>>, String> {
            match std::fs::read(&path) {
                Ok(bytes) if bytes.len() == 32 => Ok(Some(Zeroizing::new(bytes))),
                Ok(_) => Err(format!(
                    "{} is damaged; delete it and this device is new to the office PCs",
                    path.display()
                )),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(format!("cannot read {}: {e}", path.display())),
            }
        };
        if let Some(secret) = read()? {
            return Ok(secret);
        }
        let secret = proto::channel::random_secret().map_err(|e| e.to_string())?;
        match create_private(&path, &secret) {
            Ok(()) => Ok(secret),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                // Another program made it a moment ago; give it time to finish.
                std::thread::sleep(std::time::Duration::from_millis(50));
                read()?.ok_or_else(|| format!("{} vanished", path.display()))
            }
            Err(e) => Err(format!("cannot write {}: {e}", path.display())),
        }
    }
}

/// Writes a new file only the user can read; fails if it exists.
fn create_private(path: &std::path::Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Makes a pins file an earlier version wrote readable by others private.
fn keep_private(path: &std::path::Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// The MAC addresses of this machine's network interfaces, for hosts that
/// allow only registered devices (at most as many as a host reads).
pub fn local_macs() -> Vec<String> {
    let Ok(all) = mac_address::MacAddressIterator::new() else {
        return Vec::new();
    };
    let mut macs: Vec<String> = all
        .filter(|m| m.bytes() != [0; 6])
        .map(|m| m.to_string().to_ascii_lowercase())
        .collect();
    macs.sort();
    macs.dedup();
    macs.truncate(proto::auth::MAX_MACS);
    macs
}

/// Dials the relay, pairs with `id`, opens the end-to-end channel and passes
/// the host's checks. Returns the channel, ready for the session request.
pub async fn open_channel(
    relay: &RelayTarget,
    id: &str,
    pins: &dyn PinStore,
    ui: &mut dyn Interaction,
    resumption: &Resumption,
) -> Result<(FramedIo<Channel>, Admission), ConnectError> {
    let id = ComputerId::parse(id)?;
    let stream = dial_relay(relay).await?;
    ui.progress(Progress::RelayConnected);
    let pipe = crate::pairing::pair(stream, &id, ui).await?;
    let pin = pin_for(relay, &id, pins)?;
    let macs = local_macs();
    let (mut conn, admission) =
        crate::auth::enter(pipe, id.as_str(), &pin, pins, macs, ui, resumption).await?;
    // A path that dies without a word is noticed within seconds.
    conn.get_mut()
        .keep_alive(transport::secure::tokio_sleep(), CLIENT_GIVES_UP_AFTER);
    Ok((conn, admission))
}

/// The name of computer `id`'s pin at `relay`: keyed by the relay's CA, so
/// any spelling of the relay's address finds it. A pin an older version
/// kept under the address is carried over first.
pub fn pin_for(
    relay: &RelayTarget,
    id: &ComputerId,
    pins: &dyn PinStore,
) -> Result<String, ConnectError> {
    let ca =
        transport::tls::load_certs(&relay.ca).map_err(|e| ConnectError::RelayCa(e.to_string()))?;
    let first = ca.first().ok_or_else(|| {
        ConnectError::RelayCa(format!("{} holds no certificate", relay.ca.display()))
    })?;
    let pin = pin_name(&ca_identity(first.as_ref()), id);
    let mut known = pins.load().map_err(ConnectError::Pins)?;
    if known.adopt(&pin, &pin_name(&relay.addr, id)) {
        pins.save(&known).map_err(ConnectError::Pins)?;
    }
    Ok(pin)
}

/// How long the steps of a connection took.
#[derive(Debug, Clone, Copy)]
pub struct Timings {
    /// From dialing the relay to the open pipe.
    pub pairing: Duration,
    /// From dialing the relay to the first complete frame.
    pub first_frame: Duration,
}

/// Timestamps the pairing step while passing progress on.
struct Timed<'a> {
    ui: &'a mut dyn Interaction,
    started: Instant,
    paired: Option<Duration>,
}

impl Interaction for Timed<'_> {
    fn progress(&mut self, step: Progress) {
        if step == Progress::Paired {
            self.paired = Some(self.started.elapsed());
        }
        self.ui.progress(step);
    }

    fn ask(&mut self, prompt: Prompt) -> BoxFuture<'_, Answer> {
        self.ui.ask(prompt)
    }
}

/// A player for the remote PC's sound on this computer's default output
/// device (cpal: WASAPI on Windows, ALSA on Linux), or why there is none.
pub fn speaker() -> Result<crate::sound::Player, String> {
    use ironrdp_rdpsnd_native::{list_devices, Direction};
    if list_devices(Direction::Output).is_empty() {
        return Err("this computer has no sound output device".to_owned());
    }
    Ok(Box::new(ironrdp_rdpsnd_native::cpal::RdpsndBackend::new()))
}

/// What to ask of the remote desktop.
#[derive(Debug, Clone)]
pub struct RdpOptions {
    pub creds: RdpCredentials,
    /// The desktop's screens: one of a size, or several monitors.
    pub screens: MonitorLayout,
    /// How long to wait for the first complete picture.
    pub frame_timeout: Duration,
    /// A local folder to share with the remote PC, if its host allows it.
    pub share: Option<PathBuf>,
}

/// Connects to `id` and waits for the first complete frame.
pub async fn connect_and_wait_frame(
    relay: &RelayTarget,
    id: &str,
    rdp: &RdpOptions,
    pins: &dyn PinStore,
    ui: &mut dyn Interaction,
) -> Result<(RdpSession<Prefixed<Channel>>, Timings), ConnectError> {
    connect_with_sound(relay, id, rdp, None, pins, ui).await
}

/// [`connect_and_wait_frame`], with the remote PC's sound going to `sound`
/// where the host allows it.
pub async fn connect_with_sound(
    relay: &RelayTarget,
    id: &str,
    rdp: &RdpOptions,
    sound: Option<Speaker>,
    pins: &dyn PinStore,
    ui: &mut dyn Interaction,
) -> Result<(RdpSession<Prefixed<Channel>>, Timings), ConnectError> {
    let started = Instant::now();
    let mut timed = Timed {
        ui,
        started,
        paired: None,
    };
    let share = rdp
        .share
        .as_deref()
        .map(share_folder)
        .transpose()
        .map_err(ConnectError::Share)?;
    let resumption = Resumption::default();
    let (channel, admission) = open_channel(relay, id, pins, &mut timed, &resumption).await?;
    if share.is_some() && !admission.share_allowed {
        timed.ui.progress(Progress::ShareRefused);
    }
    let channels = rdp::Channels::allowed(&admission, share, sound);
    let mut session = rdp::connect(channel, &rdp.creds, &rdp.screens, channels, &mut timed).await?;
    wait_first_frame(&mut session, rdp.frame_timeout).await?;
    let timings = Timings {
        pairing: timed.paired.unwrap_or_default(),
        first_frame: started.elapsed(),
    };
    Ok((session, timings))
}

/// After the first complete frame: keeps drawing until the picture has not
/// changed for `quiet`, and is not all black (RDP servers that capture a
/// screen, such as FreeRDP's shadow server, or xrdp, paint black first), or
/// until `limit` has passed. Returns whether it settled.
pub async fn wait_settled<S>(
    session: &mut RdpSession<S>,
    quiet: Duration,
    limit: Duration,
) -> Result<bool, ConnectError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + Sync,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let until = (tokio::time::Instant::now() + quiet).min(deadline);
        match tokio::time::timeout_at(until, session.next_events()).await {
            Err(_) if tokio::time::Instant::now() >= deadline => return Ok(false),
            Err(_) if !all_black(session.image()) => return Ok(true),
            Err(_) => {}
            Ok(events) => {
                for event in events? {
                    if let crate::SessionEvent::Ended(reason) = event {
                        return Err(ConnectError::ConnectionLost(format!(
                            "the remote PC ended the session: {reason}"
                        )));
                    }
                }
            }
        }
    }
}

/// Asks the remote PC for a desktop on `screens` (see
/// [`RdpSession::resize`]) as soon as its Display Control channel is ready,
/// and waits for the new size. `None` when it did not change within
/// `limit` (the server cannot resize).
pub async fn resize_and_wait<S>(
    session: &mut RdpSession<S>,
    screens: &MonitorLayout,
    limit: Duration,
) -> Result<Option<(u16, u16)>, ConnectError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + Sync,
{
    let deadline = tokio::time::Instant::now() + limit;
    let mut asked = false;
    loop {
        asked = asked || session.resize(screens, 100).await?;
        // Not asked yet: look again soon (the channel opens after logon).
        let until = match asked {
            true => deadline,
            false => (tokio::time::Instant::now() + Duration::from_millis(100)).min(deadline),
        };
        match tokio::time::timeout_at(until, session.next_events()).await {
            Err(_) if tokio::time::Instant::now() >= deadline => return Ok(None),
            Err(_) => {}
            Ok(events) => {
                for event in events? {
                    match event {
                        crate::SessionEvent::Resized(w, h) => return Ok(Some((w, h))),
                        crate::SessionEvent::Ended(reason) => {
                            return Err(ConnectError::ConnectionLost(format!(
                                "the remote PC ended the session: {reason}"
                            )))
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

fn all_black(rgba: &[u8]) -> bool {
    rgba.chunks_exact(4).all(|p| p[..3] == [0, 0, 0])
}

/// Processes server output until every part of the desktop was drawn.
pub async fn wait_first_frame<S>(
    session: &mut RdpSession<S>,
    limit: Duration,
) -> Result<(), ConnectError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + Sync,
{
    let work = async {
        while !session.first_frame_complete() {
            for event in session.next_events().await? {
                if let crate::SessionEvent::Ended(reason) = event {
                    return Err(ConnectError::ConnectionLost(format!(
                        "the remote PC ended the session: {reason}"
                    )));
                }
            }
        }
        Ok(())
    };
    tokio::time::timeout(limit, work).await.map_err(|_| {
        ConnectError::Rdp(format!("no complete picture within {} s", limit.as_secs()))
    })?
}

/// Raw mode: every connection to `listener` is carried through the relay as
/// a plain byte pipe to the host's RDP server, so any RDP client can use it.
/// RDP clients open several connections (a logon check, the session,
/// reconnects): the first asks the user (`ui`) the host's questions, the
/// next ones come back with the host's resume ticket and the host password
/// proven before, so the user is not asked again while tickets last.
/// Connections take turns.
pub async fn serve_raw(
    listener: TcpListener,
    relay: RelayTarget,
    id: String,
    pins: Arc<dyn PinStore>,
    ui: Arc<tokio::sync::Mutex<Box<dyn Interaction>>>,
) -> std::io::Result<()> {
    let resumption = Arc::new(Resumption::default());
    loop {
        let (mut local, peer) = listener.accept().await?;
        local.set_nodelay(true).ok();
        let relay = relay.clone();
        let id = id.clone();
        let pins = pins.clone();
        let ui = ui.clone();
        let resumption = resumption.clone();
        tokio::spawn(async move {
            let opened = {
                let mut ui = ui.lock().await;
                open_raw(&relay, &id, pins.as_ref(), ui.as_mut(), &resumption).await
            };
            match opened {
                Ok(mut pipe) => {
                    info!(%peer, "RDP client connected through the relay");
                    let _ = tokio::io::copy_bidirectional(&mut local, &mut pipe).await;
                    info!(%peer, "RDP client disconnected");
                }
                Err(e) => warn!(%peer, error = %e, "cannot open the pipe"),
            }
        });
    }
}

async fn open_raw(
    relay: &RelayTarget,
    id: &str,
    pins: &dyn PinStore,
    ui: &mut dyn Interaction,
    resumption: &Resumption,
) -> Result<Prefixed<Channel>, ConnectError> {
    let (mut framed, _admission) = open_channel(relay, id, pins, ui, resumption).await?;
    let lost = |e: std::io::Error| ConnectError::ConnectionLost(e.to_string());
    framed
        .write_all(&relay::encode(&SessionRequest::Open {
            mode: SessionMode::Raw,
        }))
        .await
        .map_err(lost)?;
    let frame = framed
        .read_frame()
        .await
        .map_err(|e| ConnectError::ConnectionLost(e.to_string()))?;
    match relay::decode::<SessionReply>(&frame).map_err(|e| ConnectError::Rdp(e.to_string()))? {
        SessionReply::Ready => {
            let (stream, rest) = framed.into_parts();
            Ok(Prefixed::new(rest, stream))
        }
        SessionReply::Refused { reason } => Err(ConnectError::HostRefused(reason)),
    }
}

/// This computer's keyboard: the X server's layout where there is one
/// (`setxkbmap -query`), else the locale (`LC_ALL`, `LC_CTYPE`, `LANG`, or
/// what the system reports).
pub fn detect_keyboard(system_locale: Option<String>) -> rdp::Keyboard {
    let xkb = std::env::var_os("DISPLAY")
        .and_then(|_| {
            std::process::Command::new("setxkbmap")
                .arg("-query")
                .stderr(std::process::Stdio::null())
                .output()
                .ok()
        })
        .and_then(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .find_map(|l| l.strip_prefix("layout:").map(|v| v.trim().to_owned()))
        });
    let locale = ["LC_ALL", "LC_CTYPE", "LANG"]
        .into_iter()
        .filter_map(|var| std::env::var(var).ok())
        .find(|v| !v.is_empty() && v != "C" && v != "POSIX")
        .or(system_locale);
    // The first layout XKB lists is the one in use when it starts.
    match xkb.as_deref().and_then(|l| l.split(',').next()) {
        Some(layout) => rdp::Keyboard::from_name(layout),
        None => rdp::Keyboard::from_name(&locale.unwrap_or_default()),
    }
}

/// Opens connections for [`crate::driver`] natively.
pub struct NativeOpener {
    pub relay: RelayTarget,
    pub id: String,
    pub pins: Arc<dyn PinStore>,
    /// Lets the driver's reconnects skip the one-time password.
    pub resumption: Resumption,
}

impl crate::driver::Opener<Channel> for NativeOpener {
    fn open<'a>(
        &'a self,
        ui: &'a mut dyn Interaction,
    ) -> BoxFuture<'a, Result<(FramedIo<Channel>, Admission), ConnectError>> {
        Box::pin(open_channel(
            &self.relay,
            &self.id,
            self.pins.as_ref(),
            ui,
            &self.resumption,
        ))
    }

    fn pause(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// The name the shared folder has on the remote PC ("thin on <client>").
pub const SHARE_NAME: &str = "thin";

/// Shares `folder` with the remote PC through RDP drive redirection: the
/// remote side may read and write inside it and nowhere else.
pub fn share_folder(folder: &std::path::Path) -> Result<crate::rdp::ConnectorSetup, String> {
    use ironrdp_rdpdr::backend::RdpdrBackendFactory as _;

    let folder = std::fs::canonicalize(folder)
        .map_err(|e| format!("cannot share {}: {e}", folder.display()))?;
    if !folder.is_dir() {
        return Err(format!(
            "cannot share {}: it is not a folder",
            folder.display()
        ));
    }
    #[cfg(unix)]
    let factory = ironrdp_rdpdr_native::backend::NixRdpdrBackendFactory::new(
        folder.to_string_lossy().into_owned(),
    )
    .with_drive(1, SHARE_NAME.to_owned());
    #[cfg(windows)]
    let factory = {
        let drive = ironrdp_rdpdr_native::RedirectedDrive::new(1, SHARE_NAME, &folder, false)
            .map_err(|e| format!("cannot share {}: {e:?}", folder.display()))?;
        ironrdp_rdpdr_native::WindowsRdpdrBackendFactory::new(drive)
    };
    let product = factory
        .build_rdpdr_backend()
        .map_err(|e| format!("cannot share {}: {e}", folder.display()))?;
    let (backend, drives) = product.into_parts();
    let drives = drives
        .iter()
        .map(|d| (d.device_id(), d.name().to_owned()))
        .collect();
    let computer = hostname();
    Ok(Box::new(move |connector| {
        let rdpdr = ironrdp_rdpdr::Rdpdr::new(backend, computer).with_drives(Some(drives));
        connector.attach_static_channel(rdpdr);
    }))
}

/// This computer's name, as the remote PC shows the share's owner.
fn hostname() -> String {
    std::env::var("COMPUTERNAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "thin-client".to_owned())
}
