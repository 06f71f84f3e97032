//! One connection driven from a UI: the UI sends [`Command`]s and receives
//! [`UiEvent`]s over channels, and reads the remote picture from a shared
//! [`Framebuffer`] in which the changed region is marked. The same driver
//! runs natively (on a tokio runtime) and in the browser; only the
//! [`Opener`] — how the channel to the host is reached — differs.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use transport::FramedIo;

use crate::interaction::BoxFuture;
use crate::rdp::{self, ConnectorSetup, MouseButton, RdpCredentials};
use crate::{Admission, Answer, ConnectError, Interaction, Progress, Prompt, SessionEvent};

/// What the connection tells the UI.
#[derive(Debug)]
pub enum UiEvent {
    Progress(Progress),
    /// A question; answer it with [`Command::Answer`].
    Ask(Prompt),
    /// The host let us in; this is what it allows.
    Admitted(Admission),
    /// The remote desktop runs at this size.
    Connected {
        width: u16,
        height: u16,
    },
    /// The framebuffer changed (see [`Framebuffer::take_dirty`]).
    Frame,
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
}

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
                    Some(_) => {}
                }
            }
        })
    }
}

/// Runs one connection to its end and reports it with [`UiEvent::Ended`].
/// `share` adds drive sharing, used only if the host's policy allows it.
pub async fn run<S, O>(
    opener: O,
    creds: RdpCredentials,
    size: (u16, u16),
    share: Option<ConnectorSetup>,
    mut driver: Driver,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + Sync,
    O: Opener<S>,
{
    let result = session(&opener, &creds, size, share, &mut driver).await;
    driver.send(UiEvent::Ended(result));
}

async fn session<S, O>(
    opener: &O,
    creds: &RdpCredentials,
    size: (u16, u16),
    share: Option<ConnectorSetup>,
    driver: &mut Driver,
) -> Result<(), ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + Sync,
    O: Opener<S>,
{
    let (conn, admission) = opener.open(driver).await?;
    driver.send(UiEvent::Admitted(admission));
    let creds = if creds.password.is_empty() {
        ask_logon(creds, driver).await?
    } else {
        creds.clone()
    };
    // The host decides whether a folder may be shared.
    let share = share.filter(|_| admission.share_allowed);
    let mut session = rdp::connect(conn, &creds, size, share, driver).await?;
    let (width, height) = (session.width(), session.height());
    driver
        .frame
        .lock()
        .expect("not poisoned")
        .resize(width, height);
    driver.send(UiEvent::Connected { width, height });

    loop {
        tokio::select! {
            events = session.next_events() => {
                for event in events? {
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
                    }
                }
            }
            command = driver.commands.recv() => match command {
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
                Some(Command::Answer(_)) => {}
            },
        }
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
