//! Connection acceptance (ironrdp-acceptor), bitmap output and input echo.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context as _};
use ironrdp_acceptor::{Acceptor, BeginResult};
use ironrdp_connector::{ConnectorResult, DesktopSize};
use ironrdp_core::{decode, WriteCursor};
use ironrdp_graphics::rdp6::BitmapStreamEncoder;
use ironrdp_pdu::bitmap::{BitmapData, BitmapUpdateData, CompressedDataHeader, Compression};
use ironrdp_pdu::fast_path::{
    EncryptionFlags, FastPathHeader, FastPathUpdatePdu, Fragmentation, UpdateCode,
};
use ironrdp_pdu::geometry::InclusiveRectangle;
use ironrdp_pdu::input::fast_path::{
    FastPathInput, FastPathInputEvent, KeyboardFlags as FpKeyFlags,
};
use ironrdp_pdu::input::mouse::PointerFlags;
use ironrdp_pdu::input::InputEvent;
use ironrdp_pdu::mcs::{DisconnectReason, McsMessage, SendDataIndication};
use ironrdp_pdu::nego::SecurityProtocol;
use ironrdp_pdu::rdp::capability_sets::{self as caps, CapabilitySet};
use ironrdp_pdu::rdp::client_info::Credentials;
use ironrdp_pdu::rdp::headers::{
    ServerDeactivateAll, ShareControlHeader, ShareControlPdu, ShareDataPdu,
};
use ironrdp_pdu::x224::X224;
use ironrdp_pdu::Action;
use ironrdp_tokio::{FramedWrite as _, TokioFramed};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use crate::drive::DriveObserver;
use crate::picture::{Canvas, Rect};
use crate::sound::{tone_blocks, ToneSource};
use ironrdp_displaycontrol::pdu::{DisplayControlCapabilities, DisplayControlMonitorLayout};
use ironrdp_displaycontrol::server::{DisplayControlHandler, DisplayControlServer};
use ironrdp_dvc::DrdynvcServer;
use ironrdp_rdpdr::server::RdpdrServer;
use ironrdp_rdpsnd::server::RdpsndServer;
use ironrdp_svc::StaticChannelSet;
use proto::clipboard::{
    Arrived, Clip, CliprdrServer, FetchLimits, Fetched, FileAsk, FileContents, FileFetch,
};

/// Tile edge for bitmap updates: a 64×64 planar tile always fits one
/// fast-path update, so no fragmentation is needed.
const TILE: u16 = 64;

/// Motion mode: distinct frames, each the picture moved this much further.
const MOTION_FRAMES: u16 = 4;
const MOTION_STEP: u16 = 16;

/// An input event as the test desktop understood it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputEcho {
    Key {
        scancode: u16,
        extended: bool,
        down: bool,
    },
    Unicode {
        code: u16,
        down: bool,
    },
    Click {
        x: u16,
        y: u16,
        button: &'static str,
    },
    Wheel {
        units: i16,
    },
    /// The client shared a drive under this name.
    Drive {
        name: String,
    },
    /// A file or folder at the top of a shared drive.
    DriveFile {
        name: String,
    },
    /// The client offered text for this desktop's clipboard (it follows
    /// as [`InputEcho::Clipboard`]).
    ClipboardOffered,
    /// Text the client copied, now on this desktop's clipboard.
    Clipboard {
        text: String,
    },
    /// Text or a picture the client copied was over the size limit (bytes).
    ClipboardTooLarge {
        bytes: usize,
    },
    /// A picture the client copied, now on this desktop's clipboard: its
    /// size and pixels' digest ([`proto::clipboard::describe_image`]).
    ClipboardImage {
        described: String,
    },
    /// A picture the client copied could not be read (why).
    ClipboardUnreadable {
        why: String,
    },
    /// A file the client copied, fetched whole as Explorer does on a
    /// paste: its name, size and digest (SHA-256, first 8 bytes in hex).
    ClipboardFile {
        name: String,
        bytes: usize,
        sha256: String,
    },
    /// A file the client copied that it could not give, or that was over
    /// the desktop's limit.
    ClipboardFileFailed {
        name: String,
    },
    /// The client asked for a new desktop size (Display Control) and the
    /// desktop now runs at this size.
    Resized {
        width: u16,
        height: u16,
    },
    /// The tone went to the client's sound channel in this format.
    ToneSent {
        format: String,
    },
    /// A resize began and, on purpose, never finishes.
    ResizeStalled,
    /// A client came back with the auto-reconnect cookie this desktop gave
    /// (whether its logon ID is the one given).
    AutoReconnect {
        logon_id: u32,
        ours: bool,
    },
    /// The client took a dynamic channel the desktop offered.
    DynamicChannelOpened {
        name: &'static str,
    },
    /// The client has several monitors (in its connection, or later over
    /// Display Control): the desktop runs over all of them, as Windows
    /// gives a multi-monitor client one screen per monitor.
    Monitors {
        monitors: Vec<ClientMonitor>,
        over_display_control: bool,
    },
}

/// One of the client's monitors: left, top, width, height (the primary
/// at 0, 0).
pub type ClientMonitor = (i32, i32, u32, u32);

/// The rectangle around `monitors`: its width and height.
fn monitors_size(monitors: &[ClientMonitor]) -> (u32, u32) {
    let (mut left, mut top, mut right, mut bottom) = (i64::MAX, i64::MAX, i64::MIN, i64::MIN);
    for &(l, t, w, h) in monitors {
        left = left.min(l.into());
        top = top.min(t.into());
        right = right.max(i64::from(l) + i64::from(w));
        bottom = bottom.max(i64::from(t) + i64::from(h));
    }
    let edge = |v: i64| u32::try_from(v).unwrap_or(0);
    (edge(right - left), edge(bottom - top))
}

impl fmt::Display for InputEcho {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let updown = |down: bool| if down { "down" } else { "up" };
        match self {
            InputEcho::Key {
                scancode,
                extended,
                down,
            } => {
                let ext = if *extended { " extended" } else { "" };
                write!(f, "key 0x{scancode:02x}{ext} {}", updown(*down))
            }
            InputEcho::Unicode { code, down } => {
                write!(f, "unicode U+{code:04X} {}", updown(*down))
            }
            InputEcho::Click { x, y, button } => write!(f, "click {button} {x},{y}"),
            InputEcho::Wheel { units } => write!(f, "wheel {units}"),
            InputEcho::Drive { name } => write!(f, "drive announced: {name}"),
            InputEcho::DriveFile { name } => write!(f, "drive file: {name}"),
            InputEcho::ClipboardOffered => write!(f, "clipboard offered"),
            InputEcho::Clipboard { text } => write!(f, "clipboard {text:?}"),
            InputEcho::ClipboardTooLarge { bytes } => write!(f, "clipboard too large: {bytes}"),
            InputEcho::ClipboardImage { described } => write!(f, "clipboard image {described}"),
            InputEcho::ClipboardUnreadable { why } => write!(f, "clipboard unreadable: {why}"),
            InputEcho::ClipboardFile {
                name,
                bytes,
                sha256,
            } => write!(f, "clipboard file {name:?} {bytes} bytes sha256={sha256}"),
            InputEcho::ClipboardFileFailed { name } => {
                write!(f, "clipboard file {name:?} not fetched")
            }
            InputEcho::Resized { width, height } => write!(f, "resized to {width}x{height}"),
            InputEcho::ToneSent { format } => write!(f, "tone sent as {format}"),
            InputEcho::ResizeStalled => write!(f, "resize stalled on purpose"),
            InputEcho::AutoReconnect { logon_id, ours } => write!(
                f,
                "auto-reconnect cookie for logon {logon_id:#x} ({})",
                if *ours { "ours" } else { "unknown" }
            ),
            InputEcho::DynamicChannelOpened { name } => write!(f, "dynamic channel opened: {name}"),
            InputEcho::Monitors {
                monitors,
                over_display_control,
            } => {
                let via = match over_display_control {
                    true => "over display control",
                    false => "at logon",
                };
                write!(f, "{} monitors {via}:", monitors.len())?;
                for (left, top, width, height) in monitors {
                    write!(f, " {width}x{height}{left:+}{top:+}")?;
                }
                Ok(())
            }
        }
    }
}

/// Observes a running test desktop.
#[derive(Clone)]
pub struct TestDesktopHandle {
    echo: broadcast::Sender<InputEcho>,
}

impl TestDesktopHandle {
    /// Input events received from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<InputEcho> {
        self.echo.subscribe()
    }
}

pub struct TestDesktop {
    listener: TcpListener,
    tls: TlsAcceptor,
    public_key: Vec<u8>,
    user: String,
    password: String,
    size: DesktopSize,
    echo: broadcast::Sender<InputEcho>,
    motion: bool,
    /// This desktop's clipboard: offered to each client as it connects (as
    /// Windows announces its clipboard), replaced by what a client copies.
    clipboard: Arc<Mutex<Option<Clip>>>,
    /// The bytes of the files on `clipboard`, when it offers files.
    offered_files: Arc<Vec<Vec<u8>>>,
    /// The user's desktop while no client is connected: like a Windows
    /// session, it outlives a dropped connection, and the next logon of
    /// the user gets it back with whatever input drew on it.
    kept: Mutex<Option<Canvas>>,
    /// A tone (Hz) played to each client whose sound channel comes up.
    tone: Option<u32>,
    /// Stops answering after a resize's Deactivate All (see
    /// [`TestDesktop::with_stalled_resize`]).
    stall_on_resize: bool,
}

impl TestDesktop {
    /// Binds `addr` with a fresh self-signed certificate, as RDP servers have.
    pub async fn bind(
        addr: SocketAddr,
        user: &str,
        password: &str,
        width: u16,
        height: u16,
    ) -> anyhow::Result<Self> {
        let cert = rcgen::generate_simple_self_signed(vec!["thin-test-desktop".to_owned()])?;
        let cert_der = CertificateDer::from(cert.cert.der().to_vec());
        let public_key =
            proto::session::server_public_key(&cert_der).context("own certificate unreadable")?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_pair.serialize_der()));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert_der], key)?;
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        if width < TILE || height < TILE || !width.is_multiple_of(4) {
            bail!("the desktop must be at least {TILE}×{TILE} and its width a multiple of 4");
        }
        Ok(Self {
            listener,
            tls: TlsAcceptor::from(Arc::new(config)),
            public_key,
            user: user.to_owned(),
            password: password.to_owned(),
            size: DesktopSize { width, height },
            echo: broadcast::channel(256).0,
            motion: false,
            clipboard: Arc::default(),
            offered_files: Arc::default(),
            kept: Mutex::new(None),
            tone: None,
            stall_on_resize: false,
        })
    }

    /// Motion mode: after the first picture, the whole screen is repainted
    /// again and again (the picture sliding left) as fast as the client
    /// takes it, like a full-screen video. Input is still echoed; the marks
    /// it draws last until the next frame. For measuring how many frames a
    /// client keeps up with.
    pub fn with_motion(mut self) -> Self {
        self.motion = true;
        self
    }

    /// A server that hangs in the middle of a resize: it sends the
    /// Deactivate All and then never runs the capability exchange, reading
    /// and dropping what the client sends until it leaves. Echoes
    /// [`InputEcho::ResizeStalled`].
    pub fn with_stalled_resize(mut self) -> Self {
        self.stall_on_resize = true;
        self
    }

    /// Plays a one-second tone of `hz` to each client that takes sound
    /// (RDP's `rdpsnd` channel), as a Windows PC plays its sounds.
    pub fn with_tone(mut self, hz: u32) -> Self {
        self.tone = Some(hz);
        self
    }

    /// Puts `text` on this desktop's clipboard, as if copied on it.
    pub fn with_clipboard(self, text: &str) -> Self {
        *self.clipboard.lock().expect("not poisoned") = Some(Clip::Text(text.to_owned()));
        self
    }

    /// Puts a picture (PNG) on this desktop's clipboard, as if copied on it.
    pub fn with_clipboard_image(self, png: &[u8]) -> anyhow::Result<Self> {
        *self.clipboard.lock().expect("not poisoned") = Some(Clip::image(png)?);
        Ok(self)
    }

    /// Puts these files on this desktop's clipboard (read now), as if
    /// copied in its Explorer: a client fetches them as it pastes.
    pub fn with_clipboard_paths(self, paths: &[std::path::PathBuf]) -> anyhow::Result<Self> {
        let mut files = Vec::new();
        for path in paths {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            files.push((name.into_owned(), bytes));
        }
        self.with_clipboard_files(files)
    }

    /// Puts files (name and contents) on this desktop's clipboard, as if
    /// copied in its Explorer: a client fetches them as it pastes.
    pub fn with_clipboard_files(mut self, files: Vec<(String, Vec<u8>)>) -> anyhow::Result<Self> {
        for (name, _) in &files {
            proto::clipboard::check_file_name(name).map_err(anyhow::Error::msg)?;
        }
        let (listed, contents): (Vec<_>, Vec<_>) = files
            .into_iter()
            .map(|(name, bytes)| {
                let size = bytes.len() as u64;
                (proto::clipboard::OfferedFile { name, size }, bytes)
            })
            .unzip();
        *self.clipboard.lock().expect("not poisoned") = Some(Clip::Files(listed));
        self.offered_files = Arc::new(contents);
        Ok(self)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound")
    }

    /// Input events from every connection, in order.
    pub fn subscribe(&self) -> broadcast::Receiver<InputEcho> {
        self.echo.subscribe()
    }

    /// A handle that outlives [`run`](Self::run) taking the desktop.
    pub fn handle(&self) -> TestDesktopHandle {
        TestDesktopHandle {
            echo: self.echo.clone(),
        }
    }

    /// Serves connections until dropped. The user's desktop, with the marks
    /// input drew, is kept when a connection ends and shown to the next one
    /// (motion mode always starts afresh).
    pub async fn run(self) -> anyhow::Result<()> {
        let this = Arc::new(self);
        loop {
            let (tcp, peer) = this.listener.accept().await?;
            let this = this.clone();
            // The acceptor's futures are not Send: each connection gets its
            // own thread with a single-threaded runtime.
            let tcp = tcp.into_std()?;
            std::thread::spawn(move || {
                let result = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(anyhow::Error::from)
                    .and_then(|rt| {
                        rt.block_on(async {
                            let tcp = TcpStream::from_std(tcp)?;
                            this.serve(tcp).await
                        })
                    });
                match result {
                    Ok(()) => info!(%peer, "RDP client disconnected"),
                    Err(e) => warn!(%peer, error = format!("{e:#}"), "RDP connection failed"),
                }
            });
        }
    }

    fn capabilities(&self) -> Vec<CapabilitySet> {
        vec![
            CapabilitySet::General(caps::General {
                extra_flags: caps::GeneralExtraFlags::FASTPATH_OUTPUT_SUPPORTED,
                refresh_rect_support: true,
                ..Default::default()
            }),
            CapabilitySet::Bitmap(caps::Bitmap {
                pref_bits_per_pix: 32,
                desktop_width: self.size.width,
                desktop_height: self.size.height,
                desktop_resize_flag: false,
                drawing_flags: caps::BitmapDrawingFlags::empty(),
            }),
            CapabilitySet::Order(caps::Order::new(
                caps::OrderFlags::empty(),
                caps::OrderSupportExFlags::empty(),
                2048,
                224,
            )),
            CapabilitySet::Pointer(caps::Pointer {
                color_pointer_cache_size: 32,
                pointer_cache_size: 32,
            }),
            CapabilitySet::Input(caps::Input {
                input_flags: caps::InputFlags::SCANCODES
                    | caps::InputFlags::MOUSEX
                    | caps::InputFlags::FASTPATH_INPUT
                    | caps::InputFlags::UNICODE
                    | caps::InputFlags::FASTPATH_INPUT_2,
                keyboard_layout: 0,
                keyboard_type: None,
                keyboard_subtype: 0,
                keyboard_function_key: 12,
                keyboard_ime_filename: String::new(),
            }),
            CapabilitySet::VirtualChannel(caps::VirtualChannel {
                flags: caps::VirtualChannelFlags::NO_COMPRESSION,
                chunk_size: None,
            }),
            CapabilitySet::MultiFragmentUpdate(caps::MultifragmentUpdate {
                max_request_size: 8 * 1024 * 1024,
            }),
        ]
    }

    async fn serve(&self, tcp: TcpStream) -> anyhow::Result<()> {
        tcp.set_nodelay(true).ok();
        let creds = Credentials {
            username: self.user.clone(),
            password: self.password.clone(),
            domain: None,
        };
        let mut acceptor = Acceptor::new(
            SecurityProtocol::HYBRID | SecurityProtocol::HYBRID_EX,
            self.size,
            self.capabilities(),
            Some(creds),
        );
        acceptor.attach_static_channel(RdpdrServer::new(Box::new(DriveObserver::new(
            self.echo.clone(),
        ))));
        acceptor.attach_static_channel::<CliprdrServer>(proto::clipboard::channel());
        let tone = self.tone.map(|hz| {
            let (source, chosen) = ToneSource::new();
            acceptor.attach_static_channel(RdpsndServer::new(Box::new(source)));
            Tone {
                hz,
                chosen,
                sent: false,
            }
        });
        let (wishes, resize_wishes) = std::sync::mpsc::channel();
        let mut dynamic = DrdynvcServer::new().with_dynamic_channel(DisplayControlServer::new(
            Box::new(SizeWishes(wishes, self.echo.clone())),
        ));
        if self.tone.is_some() {
            // Windows offers its sound over a dynamic channel first.
            let (name, echo) = (proto::channels::DYNAMIC_SOUND[0], self.echo.clone());
            dynamic = dynamic.with_dynamic_channel(ChannelProbe::new(name, move || {
                let _ = echo.send(InputEcho::DynamicChannelOpened { name });
            }));
        }
        acceptor.attach_static_channel(dynamic);
        let begin = ironrdp_acceptor::accept_begin(TokioFramed::new(tcp), &mut acceptor)
            .await
            .context("X.224 negotiation")?;
        let BeginResult::ShouldUpgrade(tcp) = begin else {
            bail!("client did not negotiate TLS/NLA");
        };
        let tls = self.tls.accept(tcp).await.context("TLS handshake")?;
        let mut framed = TokioFramed::new(tls);
        acceptor.mark_security_upgrade_as_done();
        ironrdp_acceptor::accept_credssp(
            &mut framed,
            &mut acceptor,
            &mut NoKerberos,
            "rdp-client".to_owned().into(),
            self.public_key.clone(),
            None,
        )
        .await
        .context("NLA logon refused")?;
        let (framed, result) = ironrdp_acceptor::accept_finalize(framed, &mut acceptor)
            .await
            .context("connection finalization")?;
        let size = self.size;
        let kept = match self.motion {
            true => None,
            false => self.kept.lock().expect("not poisoned").take(),
        };
        let resumed = kept.is_some();
        info!(
            user = %self.user,
            resumed,
            "RDP client logged on (keyboard layout {:#06x}, type {})",
            result.keyboard_layout,
            result.keyboard_type.0
        );
        // A kept desktop has the size it was last resized to.
        let canvas = kept
            .filter(|kept| (kept.width, kept.height) == (size.width, size.height))
            .unwrap_or_else(|| Canvas::new(size.width, size.height));
        let mut session = Session {
            framed,
            canvas,
            io_channel: result.io_channel_id,
            user_channel: result.user_channel_id,
            channels: result.static_channels,
            echo: self.echo.clone(),
            clipboard: self.clipboard.clone(),
            offered_files: self.offered_files.clone(),
            acceptor: Some(acceptor),
            resize_wishes,
            tone,
            stall_on_resize: self.stall_on_resize,
            download: None,
        };
        // A client with several monitors gets a desktop over all of them.
        let monitors: Vec<ClientMonitor> = result
            .client_monitors
            .iter()
            .map(|m| {
                let edge = |from: i32, to: i32| u32::try_from(i64::from(to) - i64::from(from) + 1);
                Ok((
                    m.left,
                    m.top,
                    edge(m.left, m.right)?,
                    edge(m.top, m.bottom)?,
                ))
            })
            .collect::<Result<_, std::num::TryFromIntError>>()
            .context("a monitor of the client ends before it begins")?;
        let spanned = (monitors.len() > 1).then(|| monitors_size(&monitors));
        if spanned.is_some() {
            info!(count = monitors.len(), "the client has several monitors");
            let _ = self.echo.send(InputEcho::Monitors {
                monitors,
                over_display_control: false,
            });
        }
        if let Some(cookie) = &result.auto_reconnect {
            let _ = self.echo.send(InputEcho::AutoReconnect {
                logon_id: cookie.logon_id,
                ours: cookie.logon_id == LOGON_ID,
            });
        }
        // Before the channels start: their first answers must not come
        // in the middle of the capability exchange.
        if let Some((width, height)) = spanned {
            session.resize(width, height).await?;
        }
        session.start_channels().await?;
        session.framed.write_all(&encode_pointer()?).await?;
        session.give_reconnect_cookie().await?;
        for event in result.input_events {
            session.handle_fast_path_input(&event).await?;
        }
        if self.motion {
            return session.run_in_motion().await;
        }
        let result = session.run().await;
        *self.kept.lock().expect("not poisoned") = Some(session.canvas);
        result
    }
}

/// CredSSP here is NTLM only; a Kerberos KDC is never contacted.
struct NoKerberos;

impl ironrdp_tokio::NetworkClient for NoKerberos {
    async fn send(
        &mut self,
        _request: &ironrdp_connector::sspi::generator::NetworkRequest,
    ) -> ConnectorResult<Vec<u8>> {
        Err(ironrdp_connector::general_err!(
            "Kerberos is not supported by the test desktop"
        ))
    }
}

struct Session<S> {
    framed: TokioFramed<S>,
    canvas: Canvas,
    io_channel: u16,
    user_channel: u16,
    /// Static virtual channels the client joined (drive redirection).
    channels: StaticChannelSet,
    echo: broadcast::Sender<InputEcho>,
    clipboard: Arc<Mutex<Option<Clip>>>,
    offered_files: Arc<Vec<Vec<u8>>>,
    /// The finished connection's acceptor: it runs the capability exchange
    /// again when the desktop changes size.
    acceptor: Option<Acceptor>,
    /// Sizes the client asked for over Display Control.
    resize_wishes: std::sync::mpsc::Receiver<(u32, u32)>,
    /// The tone to play once the sound channel is up.
    tone: Option<Tone>,
    stall_on_resize: bool,
    /// Files the client copied, being fetched.
    download: Option<Download>,
}

/// The most bytes of one file the test desktop fetches.
const MAX_FETCHED_FILE: u64 = 64 << 20;

/// Files a client copied, fetched one after another (as Explorer does
/// when a person pastes them), kept in memory to be echoed.
struct Download {
    fetch: FileFetch,
    /// What arrived of the file being fetched.
    data: Vec<u8>,
}

impl Download {
    /// Asks for the next range (if any file is left), echoing the files
    /// settled on the way (those that arrived whole or failed).
    fn ask(
        &mut self,
        cliprdr: &mut CliprdrServer,
        echo: &broadcast::Sender<InputEcho>,
    ) -> Vec<ironrdp_svc::SvcMessage> {
        let (settled, messages) = self.fetch.ask(cliprdr);
        self.echo(settled, echo);
        messages
    }

    fn echo(&mut self, fetched: Vec<Fetched>, echo: &broadcast::Sender<InputEcho>) {
        for step in fetched {
            let name = |file: usize| self.fetch.files()[file].name.clone();
            let event = match step {
                Fetched::Data { data, .. } => {
                    self.data.extend(data);
                    continue;
                }
                Fetched::Done { file, bytes } => InputEcho::ClipboardFile {
                    name: name(file),
                    bytes: usize::try_from(bytes).unwrap_or(usize::MAX),
                    sha256: proto::clipboard::digest(&std::mem::take(&mut self.data)),
                },
                Fetched::Failed { file, .. } => {
                    self.data.clear();
                    InputEcho::ClipboardFileFailed { name: name(file) }
                }
            };
            let _ = echo.send(event);
        }
    }
}

/// What a client asks of a file this desktop offers.
fn serve_file(files: &[Vec<u8>], ask: FileAsk) -> FileContents {
    match ask {
        FileAsk::Size { file } => files
            .get(file)
            .map_or(FileContents::Failed, |f| FileContents::Size(f.len() as u64)),
        FileAsk::Range {
            file,
            position,
            length,
        } => {
            let Some(bytes) = files.get(file) else {
                return FileContents::Failed;
            };
            let start = usize::try_from(position)
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            let end = start.saturating_add(length as usize).min(bytes.len());
            FileContents::Data(bytes[start..end].to_vec())
        }
    }
}

struct Tone {
    hz: u32,
    /// The format the client took (set when the channel comes up).
    chosen: Arc<Mutex<Option<ironrdp_rdpsnd::pdu::AudioFormat>>>,
    sent: bool,
}

/// Display Control's handler: passes the size the client's monitors take
/// together on to the session, which resizes between PDUs.
struct SizeWishes(
    std::sync::mpsc::Sender<(u32, u32)>,
    broadcast::Sender<InputEcho>,
);

impl DisplayControlHandler for SizeWishes {
    fn monitor_layout(&self, layout: DisplayControlMonitorLayout) {
        let monitors: Vec<ClientMonitor> = layout
            .monitors()
            .iter()
            .map(|m| {
                let (left, top) = m.position().unwrap_or_default();
                let (width, height) = m.dimensions();
                (left, top, width, height)
            })
            .collect();
        if monitors.is_empty() {
            return;
        }
        let _ = self.0.send(monitors_size(&monitors));
        if monitors.len() > 1 {
            let _ = self.1.send(InputEcho::Monitors {
                monitors,
                over_display_control: true,
            });
        }
    }

    /// As many monitors as RDP carries, each up to 8192×8192 (as Windows).
    fn capabilities(&self) -> ironrdp_pdu::PduResult<DisplayControlCapabilities> {
        DisplayControlCapabilities::new(16, 8192, 8192).map_err(|e| ironrdp_pdu::decode_err!(e))
    }
}

/// The logon ID in this desktop's auto-reconnect cookies.
const LOGON_ID: u32 = 0x7468_696e;

/// A dynamic channel that only tells when it opens, on either end: the
/// test desktop offers one to see who takes it (the host must refuse what
/// its policy forbids, whatever the client does), and a test client takes
/// one to see what it is given.
pub struct ChannelProbe {
    name: &'static str,
    opened: Box<dyn Fn() + Send>,
}

impl ChannelProbe {
    pub fn new(name: &'static str, opened: impl Fn() + Send + 'static) -> Self {
        Self {
            name,
            opened: Box::new(opened),
        }
    }
}

ironrdp_core::impl_as_any!(ChannelProbe);

impl ironrdp_dvc::DvcProcessor for ChannelProbe {
    fn channel_name(&self) -> &str {
        self.name
    }

    fn start(&mut self, _channel_id: u32) -> ironrdp_pdu::PduResult<Vec<ironrdp_dvc::DvcMessage>> {
        (self.opened)();
        Ok(Vec::new())
    }

    fn process(
        &mut self,
        _channel_id: u32,
        _payload: &[u8],
    ) -> ironrdp_pdu::PduResult<Vec<ironrdp_dvc::DvcMessage>> {
        Ok(Vec::new())
    }
}

impl ironrdp_dvc::DvcServerProcessor for ChannelProbe {}
impl ironrdp_dvc::DvcClientProcessor for ChannelProbe {}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + Sync> Session<S> {
    async fn run(&mut self) -> anyhow::Result<()> {
        let full = (0, 0, self.canvas.width, self.canvas.height);
        self.send_rect(full).await?;
        loop {
            let pdu = match self.framed.read_pdu().await {
                Ok(pdu) => pdu,
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            if self.handle_pdu(pdu).await? {
                return Ok(());
            }
        }
    }

    /// Like [`run`](Self::run), but repaints the whole screen without pause,
    /// reading input between frames. The frames are encoded once, so the
    /// client, not this server's encoder, sets the pace.
    async fn run_in_motion(&mut self) -> anyhow::Result<()> {
        let full = (0, 0, self.canvas.width, self.canvas.height);
        self.send_rect(full).await?;
        let (width, height) = (self.canvas.width, self.canvas.height);
        let frames = (1..=MOTION_FRAMES)
            .map(|k| encode_rect(&Canvas::shifted(width, height, k * MOTION_STEP), full))
            .collect::<anyhow::Result<Vec<_>>>()?;
        for frame in frames.iter().cycle() {
            match self.framed.write_all(frame).await {
                Ok(()) => {}
                Err(e) if gone(&e) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
            // Input waiting now, without blocking the next frame (reading a
            // PDU is cancel-safe: partial input stays buffered).
            while let Ok(read) = tokio::time::timeout(Duration::ZERO, self.framed.read_pdu()).await
            {
                let pdu = match read {
                    Ok(pdu) => pdu,
                    Err(e) if gone(&e) => return Ok(()),
                    Err(e) => return Err(e.into()),
                };
                if self.handle_pdu(pdu).await? {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Returns true when the client asked to disconnect.
    async fn handle_pdu(
        &mut self,
        (action, frame): (Action, impl AsRef<[u8]>),
    ) -> anyhow::Result<bool> {
        let frame = frame.as_ref();
        match action {
            Action::FastPath => {
                self.handle_fast_path_input(frame).await?;
                Ok(false)
            }
            Action::X224 => self.handle_x224(frame).await,
        }
    }

    /// Lets each joined channel open its conversation (RDPDR starts with
    /// the server's announce).
    async fn start_channels(&mut self) -> anyhow::Result<()> {
        let ids: Vec<u16> = self
            .channels
            .iter_mut()
            .filter_map(|(_, _, id)| id)
            .collect();
        for id in ids {
            let Some(channel) = self.channels.get_by_channel_id_mut(id) else {
                continue;
            };
            let messages = channel.start().map_err(|e| anyhow::anyhow!("{e}"))?;
            self.send_channel(id, messages).await?;
        }
        Ok(())
    }

    /// Data on a static channel: hand it to the channel and send the answers.
    async fn handle_channel(&mut self, id: u16, payload: &[u8]) -> anyhow::Result<()> {
        let Some(channel) = self.channels.get_by_channel_id_mut(id) else {
            debug!(channel = id, "data on an unknown channel");
            return Ok(());
        };
        let mut messages = channel
            .process(payload)
            .map_err(|e| anyhow::anyhow!("channel {id}: {e}"))?;
        if let Some(rdpdr) = channel.channel_processor_downcast_mut::<RdpdrServer>() {
            messages.extend(crate::drive::follow_up(rdpdr).map_err(|e| anyhow::anyhow!("{e}"))?);
        }
        if let Some(cliprdr) = channel.channel_processor_downcast_mut::<CliprdrServer>() {
            let mut clipboard = self.clipboard.lock().expect("not poisoned");
            let done = proto::clipboard::answer(cliprdr, clipboard.as_ref())
                .map_err(|e| anyhow::anyhow!("clipboard: {e}"))?;
            messages.extend(done.messages);
            if done.text_offered {
                let _ = self.echo.send(InputEcho::ClipboardOffered);
            }
            // Files of ours the client pastes: served while they are still
            // what this desktop's clipboard offers.
            for request in &done.file_requests {
                let contents = match (clipboard.as_ref(), FileAsk::of(request)) {
                    (Some(Clip::Files(_)), Some(ask)) => serve_file(&self.offered_files, ask),
                    _ => FileContents::Failed,
                };
                messages.extend(
                    proto::clipboard::give_file_contents(cliprdr, request, contents)
                        .map_err(|e| anyhow::anyhow!("clipboard: {e}"))?,
                );
            }
            for arrived in done.arrived {
                let echo = match arrived {
                    Arrived::Text(text) => {
                        *clipboard = Some(Clip::Text(text.clone()));
                        InputEcho::Clipboard { text }
                    }
                    Arrived::Image(png) => {
                        *clipboard = Clip::image(&png).ok();
                        let described = proto::clipboard::describe_image(&png);
                        InputEcho::ClipboardImage { described }
                    }
                    Arrived::TooLarge(bytes) | Arrived::ImageTooLarge(bytes) => {
                        InputEcho::ClipboardTooLarge { bytes }
                    }
                    Arrived::Unreadable(why) => InputEcho::ClipboardUnreadable { why },
                    Arrived::Files {
                        files,
                        clip_data_id,
                    } => {
                        let first_stream = self
                            .download
                            .as_ref()
                            .map_or(0, |d| d.fetch.next_first_stream());
                        let limits = FetchLimits {
                            file: MAX_FETCHED_FILE,
                            total: MAX_FETCHED_FILE,
                        };
                        let fetch = FileFetch::new(files, clip_data_id, first_stream, limits);
                        let mut download = Download {
                            fetch,
                            data: Vec::new(),
                        };
                        messages.extend(download.ask(cliprdr, &self.echo));
                        self.download = Some(download);
                        continue;
                    }
                    Arrived::FileData { stream_id, data } => {
                        let Some(download) = self.download.as_mut() else {
                            continue;
                        };
                        let Some(fetched) = download.fetch.take(stream_id, data) else {
                            continue;
                        };
                        download.echo(fetched, &self.echo);
                        messages.extend(download.ask(cliprdr, &self.echo));
                        continue;
                    }
                };
                let _ = self.echo.send(echo);
            }
        }
        if let Some(rdpsnd) = channel.channel_processor_downcast_mut::<RdpsndServer>() {
            if let Some(tone) = self.tone.as_mut().filter(|t| !t.sent && rdpsnd.is_ready()) {
                let format = tone.chosen.lock().expect("not poisoned").clone();
                if let Some(format) = format {
                    tone.sent = true;
                    for (i, block) in tone_blocks(tone.hz, &format)?.into_iter().enumerate() {
                        let ts = u32::try_from(i)? * 100;
                        let wave = rdpsnd.wave(block, ts).map_err(|e| anyhow::anyhow!("{e}"))?;
                        messages.extend(Vec::<ironrdp_svc::SvcMessage>::from(wave));
                    }
                    let format = crate::sound::describe(&format);
                    let _ = self.echo.send(InputEcho::ToneSent { format });
                }
            }
        }
        self.send_channel(id, messages).await?;
        // Only the last of several quick wishes matters.
        if let Some((width, height)) = self.resize_wishes.try_iter().last() {
            self.resize(width, height).await?;
        }
        Ok(())
    }

    /// Runs the desktop at a new size, as Windows does when a client asks
    /// over Display Control: Deactivate All, the capability exchange again
    /// with the new size, a fresh desktop painted whole. Sizes are kept to
    /// 200–8192 (MS-RDPEDISP) and the width to a multiple of 4 (bitmap rows).
    async fn resize(&mut self, width: u32, height: u32) -> anyhow::Result<()> {
        let fit = |v: u32| u16::try_from(v.clamp(200, 8192)).expect("at most 8192");
        let size = DesktopSize {
            width: fit(width) & !3,
            height: fit(height),
        };
        if (size.width, size.height) == (self.canvas.width, self.canvas.height) {
            return Ok(());
        }
        self.send_share_control(ShareControlPdu::ServerDeactivateAll(ServerDeactivateAll))
            .await?;
        if self.stall_on_resize {
            let _ = self.echo.send(InputEcho::ResizeStalled);
            while self.framed.read_pdu().await.is_ok() {}
            bail!("the client left during the stalled resize");
        }
        let consumed = self
            .acceptor
            .take()
            .context("no connection to reactivate")?;
        let channels = std::mem::take(&mut self.channels);
        let mut acceptor = Acceptor::new_deactivation_reactivation(consumed, channels, size)
            .context("reactivation")?;
        let mut buf = ironrdp_core::WriteBuf::new();
        let result = loop {
            if let Some(result) = acceptor.get_result() {
                break result;
            }
            ironrdp_tokio::single_sequence_step(&mut self.framed, &mut acceptor, &mut buf)
                .await
                .context("capability exchange after a resize")?;
        };
        self.channels = result.static_channels;
        self.acceptor = Some(acceptor);
        self.canvas = Canvas::new(size.width, size.height);
        info!(width = size.width, height = size.height, "desktop resized");
        let _ = self.echo.send(InputEcho::Resized {
            width: size.width,
            height: size.height,
        });
        let full = (0, 0, size.width, size.height);
        self.send_rect(full).await
    }

    /// Gives the client an auto-reconnect cookie, as Windows does after a
    /// logon (Save Session Info, logon info extended). The test desktop
    /// only checks that the logon ID comes back, not the verifier.
    async fn give_reconnect_cookie(&mut self) -> anyhow::Result<()> {
        use ironrdp_pdu::rdp::headers::{CompressionFlags, ShareDataHeader, StreamPriority};
        use ironrdp_pdu::rdp::session_info::{
            InfoData, InfoType, LogonExFlags, LogonInfoExtended, SaveSessionInfoPdu,
            ServerAutoReconnect,
        };
        let info = SaveSessionInfoPdu {
            info_type: InfoType::LogonExtended,
            info_data: InfoData::LogonExtended(LogonInfoExtended {
                present_fields_flags: LogonExFlags::AUTO_RECONNECT_COOKIE,
                auto_reconnect: Some(ServerAutoReconnect {
                    logon_id: LOGON_ID,
                    random_bits: *b"thin-test-cookie",
                }),
                errors_info: None,
            }),
        };
        self.send_share_control(ShareControlPdu::Data(ShareDataHeader {
            share_data_pdu: ShareDataPdu::SaveSessionInfo(info),
            stream_priority: StreamPriority::Medium,
            compression_flags: CompressionFlags::empty(),
            compression_type: ironrdp_pdu::rdp::client_info::CompressionType::K8,
        }))
        .await
    }

    /// Sends one share control PDU on the I/O channel (slow path).
    async fn send_share_control(&mut self, pdu: ShareControlPdu) -> anyhow::Result<()> {
        let header = ShareControlHeader {
            share_id: 0,
            pdu_source: self.io_channel,
            share_control_pdu: pdu,
        };
        let indication = SendDataIndication {
            initiator_id: self.user_channel,
            channel_id: self.io_channel,
            user_data: ironrdp_core::encode_vec(&header)?.into(),
        };
        self.framed
            .write_all(&ironrdp_core::encode_vec(&X224(indication))?)
            .await?;
        Ok(())
    }

    async fn send_channel(
        &mut self,
        id: u16,
        messages: Vec<ironrdp_svc::SvcMessage>,
    ) -> anyhow::Result<()> {
        if messages.is_empty() {
            return Ok(());
        }
        let bytes = ironrdp_svc::server_encode_svc_messages(messages, id, self.user_channel)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        self.framed.write_all(&bytes).await?;
        Ok(())
    }

    async fn handle_fast_path_input(&mut self, frame: &[u8]) -> anyhow::Result<()> {
        let input: FastPathInput = decode(frame).context("bad fast-path input")?;
        for event in input.input_events() {
            let echo = match event {
                FastPathInputEvent::KeyboardEvent(flags, code) => Some(InputEcho::Key {
                    scancode: u16::from(*code),
                    extended: flags.contains(FpKeyFlags::EXTENDED),
                    down: !flags.contains(FpKeyFlags::RELEASE),
                }),
                FastPathInputEvent::UnicodeKeyboardEvent(flags, code) => Some(InputEcho::Unicode {
                    code: *code,
                    down: !flags.contains(FpKeyFlags::RELEASE),
                }),
                FastPathInputEvent::MouseEvent(mouse) => mouse_echo(
                    mouse.flags,
                    mouse.number_of_wheel_rotation_units,
                    mouse.x_position,
                    mouse.y_position,
                ),
                _ => None,
            };
            if let Some(echo) = echo {
                self.apply(echo).await?;
            }
        }
        Ok(())
    }

    /// Returns true when the client asked to disconnect.
    async fn handle_x224(&mut self, frame: &[u8]) -> anyhow::Result<bool> {
        let message: X224<McsMessage<'_>> = decode(frame).context("bad X.224 PDU")?;
        match message.0 {
            McsMessage::SendDataRequest(data) if data.channel_id == self.io_channel => {
                let control: ShareControlHeader =
                    decode(data.user_data.as_ref()).context("bad share control PDU")?;
                if let ShareControlPdu::Data(header) = control.share_control_pdu {
                    match header.share_data_pdu {
                        ShareDataPdu::Input(input) => {
                            for event in input.0 {
                                let echo = match event {
                                    InputEvent::ScanCode(key) => Some(InputEcho::Key {
                                        scancode: key.key_code,
                                        extended: key.flags.contains(
                                            ironrdp_pdu::input::scan_code::KeyboardFlags::EXTENDED,
                                        ),
                                        down: !key.flags.contains(
                                            ironrdp_pdu::input::scan_code::KeyboardFlags::RELEASE,
                                        ),
                                    }),
                                    InputEvent::Mouse(m) => mouse_echo(
                                        m.flags,
                                        m.number_of_wheel_rotation_units,
                                        m.x_position,
                                        m.y_position,
                                    ),
                                    _ => None,
                                };
                                if let Some(echo) = echo {
                                    self.apply(echo).await?;
                                }
                            }
                        }
                        ShareDataPdu::ShutdownRequest => return Ok(true),
                        ShareDataPdu::RefreshRectangle(_) => {
                            let full = (0, 0, self.canvas.width, self.canvas.height);
                            self.send_rect(full).await?;
                        }
                        other => debug!(pdu = ironrdp_core::name(&other), "ignored share data PDU"),
                    }
                }
            }
            McsMessage::SendDataRequest(data) => {
                let payload = data.user_data.to_vec();
                self.handle_channel(data.channel_id, &payload).await?;
            }
            McsMessage::DisconnectProviderUltimatum(ultimatum) => {
                return Ok(ultimatum.reason == DisconnectReason::UserRequested);
            }
            _ => debug!("ignored MCS message"),
        }
        Ok(false)
    }

    async fn apply(&mut self, echo: InputEcho) -> anyhow::Result<()> {
        let dirty = match &echo {
            InputEcho::Click { x, y, .. } if *x < self.canvas.width && *y < self.canvas.height => {
                Some(self.canvas.mark_click(*x, *y))
            }
            InputEcho::Key {
                scancode,
                down: true,
                ..
            } => Some(self.canvas.mark_key(*scancode)),
            _ => None,
        };
        let _ = self.echo.send(echo);
        if let Some(rect) = dirty {
            self.send_rect(rect).await?;
        }
        Ok(())
    }

    /// Sends `rect` of the canvas as planar-coded tiles.
    async fn send_rect(&mut self, rect: Rect) -> anyhow::Result<()> {
        let out = encode_rect(&self.canvas, rect)?;
        self.framed.write_all(&out).await?;
        Ok(())
    }
}

/// The client went away (its end of the connection closed).
fn gone(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe
    )
}

/// `rect` of the canvas as planar-coded tiles, one fast-path update each.
fn encode_rect(canvas: &Canvas, (left, top, width, height): Rect) -> anyhow::Result<Vec<u8>> {
    // Bitmap widths must be multiples of 4: widen the rectangle to fit.
    let right = (left + width).next_multiple_of(4).min(canvas.width);
    let left = left - left % 4;
    let width = right - left;
    let mut out = Vec::new();
    let mut ty = top;
    while ty < top + height {
        let th = TILE.min(top + height - ty);
        let mut tx = left;
        while tx < left + width {
            let tw = TILE.min(left + width - tx);
            encode_tile(canvas, (tx, ty, tw, th), &mut out)?;
            tx += tw;
        }
        ty += th;
    }
    Ok(out)
}

fn mouse_echo(flags: PointerFlags, wheel: i16, x: u16, y: u16) -> Option<InputEcho> {
    if flags.intersects(PointerFlags::VERTICAL_WHEEL | PointerFlags::HORIZONTAL_WHEEL) {
        return Some(InputEcho::Wheel { units: wheel });
    }
    if !flags.contains(PointerFlags::DOWN) {
        return None;
    }
    let button = if flags.contains(PointerFlags::LEFT_BUTTON) {
        "left"
    } else if flags.contains(PointerFlags::RIGHT_BUTTON) {
        "right"
    } else if flags.contains(PointerFlags::MIDDLE_BUTTON_OR_WHEEL) {
        "middle"
    } else {
        return None;
    };
    Some(InputEcho::Click { x, y, button })
}

/// The exact bytes (fast-path bitmap update) the desktop sends for the
/// 64×64 tile at (`x`, `y`) of a fresh picture: what would cross the wire in
/// plaintext RDP, for tests that prove it does not.
pub fn encoded_tile(width: u16, height: u16, x: u16, y: u16) -> Vec<u8> {
    let canvas = Canvas::new(width, height);
    let mut out = Vec::new();
    encode_tile(&canvas, (x, y, TILE, TILE), &mut out).expect("the test picture encodes");
    out
}

/// Appends one fast-path bitmap update carrying the tile, RDP 6.0 planar
/// coded with RLE (raw planes if RLE would not fit).
fn encode_tile(canvas: &Canvas, (x, y, w, h): Rect, out: &mut Vec<u8>) -> anyhow::Result<()> {
    // Bitmap rows go bottom-up.
    let pixels: Vec<[u8; 3]> = (y..y + h)
        .rev()
        .flat_map(|row| (x..x + w).map(move |col| (col, row)))
        .map(|(col, row)| canvas.get(col, row))
        .collect();
    let plane = |c: usize| pixels.iter().map(move |p| p[c]);
    let raw_len = usize::from(w) * usize::from(h) * 3 + 2;
    let mut planar = vec![0u8; raw_len * 2];
    let mut encoder = BitmapStreamEncoder::new(usize::from(w), usize::from(h));
    let len =
        match encoder.encode_channels_stream((plane(0), plane(1), plane(2)), &mut planar, true) {
            Ok(len) if len <= raw_len => len,
            _ => encoder
                .encode_channels_stream((plane(0), plane(1), plane(2)), &mut planar, false)
                .map_err(|e| anyhow::anyhow!("planar encoding failed: {e:?}"))?,
        };

    let data = BitmapData {
        rectangle: InclusiveRectangle {
            left: x,
            top: y,
            right: x + w - 1,
            bottom: y + h - 1,
        },
        width: w,
        height: h,
        bits_per_pixel: 32,
        compression_flags: Compression::BITMAP_COMPRESSION,
        compressed_data_header: Some(CompressedDataHeader {
            main_body_size: u16::try_from(len)?,
            scan_width: w,
            uncompressed_size: u16::try_from(usize::from(w) * usize::from(h) * 4)?,
        }),
        bitmap_data: &planar[..len],
    };
    let mut body = vec![0u8; len + 64];
    let mut cursor = WriteCursor::new(&mut body);
    BitmapUpdateData::encode_header(1, &mut cursor).map_err(|e| anyhow::anyhow!("{e}"))?;
    ironrdp_core::encode_cursor(&data, &mut cursor).map_err(|e| anyhow::anyhow!("{e}"))?;
    let body_len = cursor.pos();
    out.extend(fast_path_update(UpdateCode::Bitmap, &body[..body_len])?);
    Ok(())
}

/// The desktop's pointer ([`crate::pointer_pixel`]) as a fast-path New
/// Pointer update: 32 bits per pixel with alpha, BGRA rows bottom-up, no
/// AND mask.
fn encode_pointer() -> anyhow::Result<Vec<u8>> {
    use ironrdp_pdu::pointer::{ColorPointerAttribute, Point16, PointerAttribute};
    let (width, height) = crate::POINTER_SIZE;
    let xor_mask: Vec<u8> = (0..height)
        .rev()
        .flat_map(|y| (0..width).map(move |x| crate::pointer_pixel(x, y)))
        .flat_map(|[r, g, b, a]| [b, g, r, a])
        .collect();
    let pointer = PointerAttribute {
        xor_bpp: 32,
        color_pointer: ColorPointerAttribute {
            cache_index: 0,
            hot_spot: Point16 {
                x: crate::POINTER_HOTSPOT.0,
                y: crate::POINTER_HOTSPOT.1,
            },
            width,
            height,
            xor_mask: &xor_mask,
            and_mask: &[],
        },
    };
    let body = ironrdp_core::encode_vec(&pointer).map_err(|e| anyhow::anyhow!("{e}"))?;
    fast_path_update(UpdateCode::NewPointer, &body)
}

/// One fast-path update message carrying `data`.
fn fast_path_update(update_code: UpdateCode, data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let update = FastPathUpdatePdu {
        fragmentation: Fragmentation::Single,
        update_code,
        compression_flags: None,
        compression_type: None,
        data,
    };
    let header = FastPathHeader::new(
        EncryptionFlags::empty(),
        ironrdp_core::Encode::size(&update),
    );
    let mut pdu =
        vec![0u8; ironrdp_core::Encode::size(&header) + ironrdp_core::Encode::size(&update)];
    let mut cursor = WriteCursor::new(&mut pdu);
    ironrdp_core::encode_cursor(&header, &mut cursor).map_err(|e| anyhow::anyhow!("{e}"))?;
    ironrdp_core::encode_cursor(&update, &mut cursor).map_err(|e| anyhow::anyhow!("{e}"))?;
    let written = cursor.pos();
    pdu.truncate(written);
    Ok(pdu)
}
