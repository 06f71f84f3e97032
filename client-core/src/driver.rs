//! One connection driven from a UI: the UI sends [`Command`]s and receives
//! [`UiEvent`]s over channels, and reads the remote picture from a shared
//! [`Framebuffer`] in which the changed region is marked. The same driver
//! runs natively (on a tokio runtime) and in the browser; only the
//! [`Opener`] — how the channel to the host is reached, and how to wait —
//! differs.
//!
//! When the path breaks mid-session (a Wi-Fi blip, a relay restart, a
//! laptop's sleep) the driver says so ([`UiEvent::Reconnecting`]) and opens
//! the connection again with back-off for [`RECONNECT_FOR`]; the opener's
//! resume ticket stands in for the one-time password, and the RDP server
//! puts the same user back into their session. The user can cancel.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use transport::FramedIo;

use crate::interaction::BoxFuture;
use crate::monitors::MonitorLayout;
use crate::rdp::{self, ConnectorSetup, MouseButton, RdpCredentials};
use crate::sound::{SoundSetup, Speaker};
use crate::{Admission, Answer, ConnectError, Interaction, Progress, Prompt, SessionEvent};

/// What the connection tells the UI.
#[derive(Debug)]
pub enum UiEvent {
    Progress(Progress),
    /// A question; answer it with [`Command::Answer`].
    Ask(Prompt),
    /// The host let us in; this is what it allows.
    Admitted(Admission),
    /// The remote desktop runs at this size (again, after a reconnect).
    Connected {
        width: u16,
        height: u16,
    },
    /// The connection broke (`reason`); attempt `attempt` to open it again
    /// starts in `in_secs` seconds. Prompts may follow if the office PC asks
    /// for the full logon again. [`Command::Disconnect`] gives up.
    Reconnecting {
        attempt: u32,
        in_secs: u64,
        reason: String,
    },
    /// The framebuffer changed (see [`Framebuffer::take_dirty`]).
    Frame,
    /// Text was copied on the remote PC: put it on the local clipboard.
    RemoteClipboard(String),
    /// A picture was copied on the remote PC: put it (PNG) on the local
    /// clipboard.
    RemoteImage(Vec<u8>),
    /// Clipboard text over [`proto::clipboard::MAX_TEXT_BYTES`], or a
    /// `picture` over [`proto::clipboard::MAX_IMAGE_BYTES`], was not
    /// carried: `outgoing` when it was copied on this computer.
    ClipboardTooLarge {
        bytes: usize,
        outgoing: bool,
        picture: bool,
    },
    /// A picture copied on this computer was not pasted: the office PC
    /// takes nothing from the clipboard in this session (`None`), or the
    /// picture cannot be read (why).
    ImageNotPasted(Option<String>),
    /// Text to paste was not typed on the remote PC: it takes no clipboard
    /// text in this session, and the text is longer than
    /// [`rdp::MAX_TYPED_CHARS`] characters.
    PasteTooLongToType {
        chars: usize,
    },
    /// Files were copied on the remote PC (names and sizes, and the copy's
    /// number): fetch them with [`Command::FetchFiles`] to paste them here.
    RemoteFiles {
        list: u32,
        files: Vec<proto::clipboard::RemoteFile>,
    },
    /// A fetch of the remote PC's files ended (where they are, or why
    /// not).
    FilesFetched(crate::incoming::FilesFetched),
    /// Files were not fetched, or files copied here not offered (why).
    FilesNotCarried {
        why: String,
        outgoing: bool,
    },
    /// The host allows sound but this computer cannot play it (why).
    SoundUnavailable(String),
    /// The remote PC's pointer changed: draw this one over the picture.
    Pointer(rdp::RemotePointer),
    /// The connection is over: `Ok` when the user or the remote PC ended it.
    Ended(Result<(), ConnectError>),
}

/// What the UI tells the connection.
#[derive(Debug)]
pub enum Command {
    Answer(Answer),
    Key {
        scancode: u8,
        extended: bool,
        down: bool,
    },
    Unicode {
        ch: char,
        down: bool,
    },
    MouseMove {
        x: u16,
        y: u16,
    },
    MouseButton {
        button: MouseButton,
        down: bool,
    },
    Wheel {
        units: i16,
        vertical: bool,
    },
    /// Release every key and button (the window lost focus).
    ReleaseAll,
    /// Paste this text from the local clipboard at the remote cursor (see
    /// [`rdp::RdpSession::paste`]).
    Paste(String),
    /// Paste this picture (PNG) from the local clipboard at the remote
    /// cursor (see [`rdp::RdpSession::paste_image`]).
    PasteImage(Vec<u8>),
    /// Paste these files, copied on this computer, at the remote cursor
    /// (see [`rdp::RdpSession::paste_files`]).
    PasteFiles(Vec<std::path::PathBuf>),
    /// Bring the files of the remote PC's copy number `list` into `dir`,
    /// at most `budget` bytes (see [`rdp::RdpSession::fetch_remote_files`]).
    FetchFiles {
        dir: std::path::PathBuf,
        list: u32,
        budget: u64,
    },
    /// Press Ctrl+V on the remote PC, for what its own clipboard holds
    /// (see [`rdp::RdpSession::press_paste`]).
    PressPaste,
    /// The window's picture area is now this many pixels (or, in full
    /// screen over every monitor, these monitors), at this scale (percent):
    /// the remote desktop follows where the server can resize (see
    /// [`rdp::RdpSession::resize`]), and a reconnect asks for it. The UI
    /// sends it once the window stopped changing.
    Resize {
        screens: MonitorLayout,
        scale_percent: u32,
    },
    /// Silence (or play again) the remote PC's sound.
    Mute(bool),
    Disconnect,
}

/// The remote picture as RGBA, with the region changed since the UI last
/// looked (so the UI uploads only that part).
#[derive(Debug, Default)]
pub struct Framebuffer {
    pub width: u16,
    pub height: u16,
    pub rgba: Vec<u8>,
    dirty: Option<Rect>,
}

/// Left, top, right, bottom (inclusive).
pub type Rect = (u16, u16, u16, u16);

impl Framebuffer {
    pub fn resize(&mut self, width: u16, height: u16) {
        self.width = width;
        self.height = height;
        self.rgba = vec![0; usize::from(width) * usize::from(height) * 4];
        self.dirty = Some((0, 0, width.saturating_sub(1), height.saturating_sub(1)));
    }

    /// Copies `rect` of `image` (same size as this buffer) in and marks it.
    pub fn update(&mut self, image: &[u8], (left, top, right, bottom): Rect) {
        // An image of another size (a resize not yet applied) is not ours.
        if image.len() != self.rgba.len() || self.width == 0 || self.height == 0 {
            return;
        }
        let width = usize::from(self.width);
        let (right, bottom) = (right.min(self.width - 1), bottom.min(self.height - 1));
        if left > right || top > bottom {
            return;
        }
        for row in usize::from(top)..=usize::from(bottom) {
            let start = (row * width + usize::from(left)) * 4;
            let end = (row * width + usize::from(right) + 1) * 4;
            self.rgba[start..end].copy_from_slice(&image[start..end]);
        }
        self.dirty = Some(match self.dirty {
            None => (left, top, right, bottom),
            Some((l, t, r, b)) => (l.min(left), t.min(top), r.max(right), b.max(bottom)),
        });
    }

    /// The region changed since the last call, if any.
    pub fn take_dirty(&mut self) -> Option<Rect> {
        self.dirty.take()
    }
}

pub type SharedFrame = Arc<Mutex<Framebuffer>>;

/// Reaches the host and passes its checks, asking through `ui`.
pub trait Opener<S>: Send {
    fn open<'a>(
        &'a self,
        ui: &'a mut dyn Interaction,
    ) -> BoxFuture<'a, Result<(FramedIo<S>, Admission), ConnectError>>;

    /// Waits `duration` (the platform's timer).
    fn pause(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

/// Makes the connector setup for drive sharing, once per connection (a
/// reconnect needs it again).
pub type ShareSetup = Box<dyn FnMut() -> Option<ConnectorSetup> + Send>;

/// What this computer lends the session, each used only where the host's
/// policy allows it.
#[derive(Default)]
pub struct Devices {
    /// A local folder shared with the remote PC.
    pub share: Option<ShareSetup>,
    /// The remote PC's sound played here.
    pub sound: Option<SoundSetup>,
}

/// How long the driver keeps trying to reconnect after the path broke: the
/// office PC keeps the resume ticket for five minutes after it noticed.
pub const RECONNECT_FOR: Duration = Duration::from_secs(4 * 60);
/// Waits before each reconnect attempt; the last one repeats.
const BACKOFF_SECS: [u64; 6] = [1, 2, 3, 5, 10, 15];

/// Failures of the path, which a reconnect may get past; anything else
/// (a refusal, a changed key, a cancel) ends the connection.
fn path_broke(error: &ConnectError) -> bool {
    matches!(
        error,
        ConnectError::ConnectionLost(_)
            | ConnectError::RelayUnreachable(_)
            | ConnectError::HostOffline(_)
            | ConnectError::HostTimeout(_)
            | ConnectError::HostBusy(_)
            | ConnectError::RelayFull(_)
            | ConnectError::RateLimited(_)
    )
}

/// The UI's side of a running connection.
pub struct Handle {
    pub commands: UnboundedSender<Command>,
    pub events: UnboundedReceiver<UiEvent>,
    pub frame: SharedFrame,
}

/// Everything [`run`] needs, created together with the UI's [`Handle`].
pub struct Driver {
    events: UnboundedSender<UiEvent>,
    commands: UnboundedReceiver<Command>,
    frame: SharedFrame,
    wake: Arc<dyn Fn() + Send + Sync>,
    /// The session bar's mute switch (kept across reconnects).
    muted: Arc<AtomicBool>,
    /// The screens the UI last asked for, also while there is no session:
    /// a reconnect asks for them.
    wanted_screens: Option<MonitorLayout>,
    /// Commands that came while a server message was being answered, in
    /// order (at most [`MAX_DEFERRED`]).
    deferred: std::collections::VecDeque<Command>,
    /// The broken session's auto-reconnect cookie, for the next connection.
    reconnect_cookie: Option<rdp::ReconnectCookie>,
}

/// Commands kept while the server takes its time over one message (a
/// capability exchange after a resize); mouse moves beyond that are
/// dropped (keys and buttons are kept, so none stays held).
const MAX_DEFERRED: usize = 1024;

/// Makes the two ends; `wake` asks the UI to repaint (it is called after
/// every event).
pub fn channel(wake: Arc<dyn Fn() + Send + Sync>) -> (Handle, Driver) {
    let (cmd_tx, cmd_rx) = tokio::sync::mpsc::unbounded_channel();
    let (ev_tx, ev_rx) = tokio::sync::mpsc::unbounded_channel();
    let frame = SharedFrame::default();
    (
        Handle {
            commands: cmd_tx,
            events: ev_rx,
            frame: frame.clone(),
        },
        Driver {
            events: ev_tx,
            commands: cmd_rx,
            frame,
            wake,
            muted: Arc::default(),
            wanted_screens: None,
            deferred: Default::default(),
            reconnect_cookie: None,
        },
    )
}

impl Driver {
    fn send(&self, event: UiEvent) {
        // The UI may be gone (window closed); then nobody is listening.
        let _ = self.events.send(event);
        (self.wake)();
    }
}

/// Progress and questions go to the UI; answers come back as commands.
/// Input arriving while a question is open is dropped (there is no desktop yet).
impl Interaction for Driver {
    fn progress(&mut self, step: Progress) {
        self.send(UiEvent::Progress(step));
    }

    fn ask(&mut self, prompt: Prompt) -> BoxFuture<'_, Answer> {
        Box::pin(async move {
            self.send(UiEvent::Ask(prompt));
            loop {
                match self.commands.recv().await {
                    Some(Command::Answer(answer)) => return answer,
                    None | Some(Command::Disconnect) => return Answer::Cancel,
                    Some(Command::Mute(muted)) => self.muted.store(muted, Ordering::Relaxed),
                    Some(Command::Resize { screens, .. }) => self.wanted_screens = Some(screens),
                    Some(_) => {}
                }
            }
        })
    }
}

/// Runs one connection to its end and reports it with [`UiEvent::Ended`].
/// `devices` (drive sharing, sound) are used only where the host's policy
/// allows them.
pub async fn run<S, O>(
    opener: O,
    creds: RdpCredentials,
    screens: MonitorLayout,
    devices: Devices,
    mut driver: Driver,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + Sync,
    O: Opener<S>,
{
    let result = connection(&opener, creds, screens, devices, &mut driver).await;
    driver.send(UiEvent::Ended(result));
}

/// The first session, then a new one after each break of the path.
async fn connection<S, O>(
    opener: &O,
    creds: RdpCredentials,
    screens: MonitorLayout,
    mut devices: Devices,
    driver: &mut Driver,
) -> Result<(), ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + Sync,
    O: Opener<S>,
{
    let mut creds = creds;
    let mut session = connect_once(opener, &mut creds, &screens, &mut devices, driver).await?;
    loop {
        let broke = match serve(&mut session, opener, driver).await {
            Ok(()) => return Ok(()),
            Err(error) if path_broke(&error) => error,
            Err(error) => return Err(error),
        };
        driver.reconnect_cookie = session.reconnect_cookie().cloned();
        drop(session);
        let screens = driver
            .wanted_screens
            .clone()
            .unwrap_or_else(|| screens.clone());
        match reconnect(opener, &mut creds, &screens, &mut devices, driver, broke).await? {
            Some(again) => session = again,
            None => return Ok(()),
        }
    }
}

/// Opens the channel, passes the host's checks and connects RDP.
async fn connect_once<S, O>(
    opener: &O,
    creds: &mut RdpCredentials,
    screens: &MonitorLayout,
    devices: &mut Devices,
    driver: &mut Driver,
) -> Result<rdp::RdpSession<transport::Prefixed<S>>, ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + Sync,
    O: Opener<S>,
{
    let (conn, admission) = opener.open(driver).await?;
    driver.send(UiEvent::Admitted(admission));
    if creds.password.is_empty() {
        *creds = ask_logon(creds, driver).await?;
    }
    // The host decides whether a folder may be shared, the clipboard, sound.
    let share = devices
        .share
        .as_mut()
        .filter(|_| admission.share_allowed)
        .and_then(|make| make());
    let sound = match devices.sound.as_mut().filter(|_| admission.audio_allowed) {
        Some(make) => match make() {
            Ok(player) => Some(Speaker::new(player, driver.muted.clone())),
            Err(why) => {
                driver.send(UiEvent::SoundUnavailable(why));
                None
            }
        },
        None => None,
    };
    let channels = rdp::Channels::allowed(&admission, share, sound);
    let (mut connector, x224_request) = rdp::begin(creds, screens, channels)?;
    // Back into the same Windows session, where the server gave a cookie
    // before the path broke; kept until a connection gets through (an
    // attempt may break before the server saw it), then the new session's.
    connector.auto_reconnect_cookie = driver.reconnect_cookie.clone();
    let session = rdp::connect_begun(conn, (connector, x224_request), driver).await?;
    driver.reconnect_cookie = None;
    let (width, height) = (session.width(), session.height());
    driver
        .frame
        .lock()
        .expect("not poisoned")
        .resize(width, height);
    driver.send(UiEvent::Connected { width, height });
    Ok(session)
}

/// Tries to open the connection again after `broke`, with back-off, until
/// [`RECONNECT_FOR`] has passed. `None` if the user gave up.
async fn reconnect<S, O>(
    opener: &O,
    creds: &mut RdpCredentials,
    screens: &MonitorLayout,
    devices: &mut Devices,
    driver: &mut Driver,
    broke: ConnectError,
) -> Result<Option<rdp::RdpSession<transport::Prefixed<S>>>, ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + Sync,
    O: Opener<S>,
{
    let started = web_time::Instant::now();
    let mut last = broke;
    for attempt in 1.. {
        if started.elapsed() >= RECONNECT_FOR {
            break;
        }
        let index = usize::try_from(attempt - 1).unwrap_or(usize::MAX);
        let wait = BACKOFF_SECS[index.min(BACKOFF_SECS.len() - 1)];
        driver.send(UiEvent::Reconnecting {
            attempt,
            in_secs: wait,
            reason: last.to_string(),
        });
        if !wait_unless_cancelled(opener, driver, Duration::from_secs(wait)).await {
            return Ok(None);
        }
        match connect_once(opener, creds, screens, devices, driver).await {
            Ok(session) => return Ok(Some(session)),
            Err(error) if path_broke(&error) => last = error,
            Err(error) => return Err(error),
        }
    }
    Err(last)
}

/// Waits `duration`; false if the user disconnected meanwhile.
async fn wait_unless_cancelled<S, O>(opener: &O, driver: &mut Driver, duration: Duration) -> bool
where
    O: Opener<S>,
{
    let mut pause = opener.pause(duration);
    loop {
        tokio::select! {
            () = &mut pause => return true,
            command = driver.commands.recv() => match command {
                None | Some(Command::Disconnect) => return false,
                Some(Command::Mute(muted)) => driver.muted.store(muted, Ordering::Relaxed),
                Some(Command::Resize { screens, .. }) => driver.wanted_screens = Some(screens),
                // Input has nowhere to go while there is no session.
                Some(_) => {}
            },
        }
    }
}

/// Carries one RDP session until the user or the server ends it (`Ok`) or
/// it fails.
async fn serve<S, O>(
    session: &mut rdp::RdpSession<transport::Prefixed<S>>,
    opener: &O,
    driver: &mut Driver,
) -> Result<(), ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + Sync,
    O: Opener<S>,
{
    // Input kept for a session that broke is not typed into this one (a
    // size asked then is in `wanted_screens`, which this session began with).
    driver.deferred.clear();
    // A size asked before the server's Display Control was ready.
    let mut pending_resize = None;
    loop {
        if let Some((screens, scale_percent)) = pending_resize.take_if(|_| session.can_resize()) {
            session.resize(&screens, scale_percent).await?;
        }
        // Checked as anything happens (input, frames), and every few
        // seconds while files are coming: a fetch that hears nothing for a
        // minute is over however the session goes.
        if let Some(ended) = session.check_fetch() {
            driver.send(UiEvent::FilesFetched(ended));
        }
        // The timer is made only while fetching (select! builds every
        // branch's future, even one it will not poll).
        let fetching = session.fetching();
        let fetch_check = async {
            match fetching {
                true => opener.pause(FETCH_CHECK_EVERY).await,
                false => std::future::pending().await,
            }
        };
        tokio::select! {
            () = fetch_check => {}
            // Only the read races the person's input (it is cancel-safe);
            // applying it writes answers (and after a Deactivate All runs
            // the capability exchange) to the end.
            pdu = session.read() => {
                let Some(events) = apply_unless_left(session, pdu?, driver).await? else {
                    return Ok(());
                };
                for event in events {
                    match event {
                        SessionEvent::Updated(l, t, r, b) => {
                            driver
                                .frame
                                .lock()
                                .expect("not poisoned")
                                .update(session.image(), (l, t, r, b));
                            driver.send(UiEvent::Frame);
                        }
                        SessionEvent::Ended(_) => return Ok(()),
                        SessionEvent::RemoteClipboard(text) => {
                            driver.send(UiEvent::RemoteClipboard(text));
                        }
                        SessionEvent::RemoteClipboardTooLarge(bytes) => {
                            driver.send(UiEvent::ClipboardTooLarge { bytes, outgoing: false, picture: false });
                        }
                        SessionEvent::RemoteImage(png) => driver.send(UiEvent::RemoteImage(png)),
                        SessionEvent::RemoteImageTooLarge(bytes) => {
                            driver.send(UiEvent::ClipboardTooLarge { bytes, outgoing: false, picture: true });
                        }
                        SessionEvent::TooLongToType(chars) => {
                            driver.send(UiEvent::PasteTooLongToType { chars });
                        }
                        SessionEvent::RemoteFiles { list, files } => {
                            driver.send(UiEvent::RemoteFiles { list, files })
                        }
                        SessionEvent::FilesFetched(result) => driver.send(UiEvent::FilesFetched(result)),
                        SessionEvent::Pointer(pointer) => driver.send(UiEvent::Pointer(pointer)),
                        // The UI sees the new size in the framebuffer.
                        SessionEvent::Resized(width, height) => {
                            driver.frame.lock().expect("not poisoned").resize(width, height);
                            driver.send(UiEvent::Frame);
                        }
                    }
                }
            }
            command = next_command(&mut driver.deferred, &mut driver.commands) => match command {
                None | Some(Command::Disconnect) => {
                    let _ = session.disconnect().await;
                    return Ok(());
                }
                Some(Command::Key { scancode, extended, down }) => {
                    session.key(scancode, extended, down).await?
                }
                Some(Command::Unicode { ch, down }) => session.unicode(ch, down).await?,
                Some(Command::MouseMove { x, y }) => session.mouse_move(x, y).await?,
                Some(Command::MouseButton { button, down }) => {
                    session.mouse_button(button, down).await?
                }
                Some(Command::Wheel { units, vertical }) => session.wheel(units, vertical).await?,
                Some(Command::ReleaseAll) => session.release_all().await?,
                Some(Command::Paste(text)) => {
                    if let Err(not) = session.paste(text).await? {
                        driver.send(not_pasted(not));
                    }
                }
                Some(Command::PasteImage(png)) => {
                    if let Err(not) = session.paste_image(&png).await? {
                        driver.send(not_pasted(not));
                    }
                }
                Some(Command::PressPaste) => session.press_paste().await?,
                Some(Command::PasteFiles(paths)) => {
                    if let Err(why) = session.paste_files(&paths).await? {
                        driver.send(UiEvent::FilesNotCarried { why, outgoing: true });
                    }
                }
                Some(Command::FetchFiles { dir, list, budget }) => match session.fetch_remote_files(&dir, list, budget).await? {
                    Ok(None) => {}
                    Ok(Some(result)) => driver.send(UiEvent::FilesFetched(result)),
                    Err(why) => driver.send(UiEvent::FilesNotCarried { why, outgoing: false }),
                },
                Some(Command::Resize { screens, scale_percent }) => {
                    driver.wanted_screens = Some(screens.clone());
                    pending_resize = None;
                    if !session.resize(&screens, scale_percent).await? {
                        // Asked again once Display Control is ready, if ever
                        // (where it never is, the UI scales the picture).
                        pending_resize = Some((screens, scale_percent));
                    }
                }
                Some(Command::Mute(muted)) => driver.muted.store(muted, Ordering::Relaxed),
                Some(Command::Answer(_)) => {}
            },
        }
    }
}

/// How often a fetch of the office PC's files is checked for a stall while
/// nothing else happens.
const FETCH_CHECK_EVERY: Duration = Duration::from_secs(5);

/// What the UI says about a paste that did not happen.
fn not_pasted(not: rdp::NotPasted) -> UiEvent {
    use proto::clipboard::ImageNotOffered;
    match not {
        rdp::NotPasted::TooLarge(too_large) => UiEvent::ClipboardTooLarge {
            bytes: too_large.0,
            outgoing: true,
            picture: false,
        },
        rdp::NotPasted::TooLongToType(chars) => UiEvent::PasteTooLongToType { chars },
        rdp::NotPasted::Image(ImageNotOffered::TooLarge(bytes)) => UiEvent::ClipboardTooLarge {
            bytes,
            outgoing: true,
            picture: true,
        },
        rdp::NotPasted::Image(ImageNotOffered::Unreadable(why)) => {
            UiEvent::ImageNotPasted(Some(why))
        }
        rdp::NotPasted::NoClipboard => UiEvent::ImageNotPasted(None),
    }
}

/// Answers one server message, unless the person disconnects first: a
/// server that stalls in the middle of a capability exchange must not hold
/// the app. Other commands meanwhile wait in `driver.deferred`. None when
/// the person left (the session is dropped half-way, which closes it).
async fn apply_unless_left<S>(
    session: &mut rdp::RdpSession<transport::Prefixed<S>>,
    pdu: rdp::ServerPdu,
    driver: &mut Driver,
) -> Result<Option<Vec<SessionEvent>>, ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + Sync,
{
    let apply = session.apply_pdu(pdu);
    tokio::pin!(apply);
    loop {
        tokio::select! {
            biased;
            events = &mut apply => return events.map(Some),
            command = driver.commands.recv() => match command {
                None | Some(Command::Disconnect) => return Ok(None),
                Some(Command::Mute(muted)) => driver.muted.store(muted, Ordering::Relaxed),
                Some(Command::MouseMove { .. }) if driver.deferred.len() >= MAX_DEFERRED => {}
                Some(command) => {
                    if let Command::Resize { screens, .. } = &command {
                        driver.wanted_screens = Some(screens.clone());
                    }
                    driver.deferred.push_back(command);
                }
            },
        }
    }
}

/// The next command: the deferred ones first.
async fn next_command(
    deferred: &mut std::collections::VecDeque<Command>,
    commands: &mut UnboundedReceiver<Command>,
) -> Option<Command> {
    match deferred.pop_front() {
        Some(command) => Some(command),
        None => commands.recv().await,
    }
}

/// Asks for the remote logon the user did not save.
async fn ask_logon(
    known: &RdpCredentials,
    ui: &mut Driver,
) -> Result<RdpCredentials, ConnectError> {
    let prompt = Prompt::RemoteLogon {
        user: known.user.clone(),
        domain: known.domain.clone(),
    };
    match ui.ask(prompt).await {
        Answer::Logon {
            user,
            password,
            domain,
        } => Ok(RdpCredentials {
            user,
            password: password.to_string(),
            domain: domain.filter(|d| !d.is_empty()),
        }),
        Answer::Unavailable(why) => Err(ConnectError::NotAnswered(why)),
        _ => Err(ConnectError::Cancelled),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_copy_the_rect_and_merge_the_dirty_region() {
        let mut fb = Framebuffer::default();
        fb.resize(4, 3);
        assert_eq!(fb.take_dirty(), Some((0, 0, 3, 2)));
        let image: Vec<u8> = (0..4 * 3 * 4).map(|i| i as u8).collect();
        fb.update(&image, (1, 1, 2, 1));
        fb.update(&image, (3, 2, 9, 9));
        assert_eq!(fb.take_dirty(), Some((1, 1, 3, 2)));
        assert_eq!(fb.take_dirty(), None);
        assert_eq!(
            &fb.rgba[(4 + 1) * 4..(4 + 3) * 4],
            &image[(4 + 1) * 4..(4 + 3) * 4]
        );
        assert_eq!(&fb.rgba[..4], &[0, 0, 0, 0]);
        assert_eq!(&fb.rgba[(2 * 4 + 3) * 4..], &image[(2 * 4 + 3) * 4..]);
    }
}
