//! The RDP session through ironrdp, over a pipe already paired with a host.
//!
//! The host did X.224 + TLS toward the RDP server for us (RDCleanPath); we
//! run CredSSP bound to the server key it reported, then the session.

use std::net::{Ipv4Addr, SocketAddr};

use ironrdp_connector::connection_activation::{
    ConnectionActivationFactory, ConnectionActivationState,
};
use ironrdp_connector::credssp::CredsspSequence;
use ironrdp_connector::{
    ClientConnector, ClientConnectorState, ConnectionOutcome, ConnectorErrorKind, Credentials,
    DesktopSize, Sequence as _,
};
use ironrdp_core::WriteBuf;
use ironrdp_displaycontrol::client::DisplayControlClient;
use ironrdp_displaycontrol::pdu::MonitorLayoutEntry;
use ironrdp_dvc::DrdynvcClient;
use ironrdp_graphics::image_processing::PixelFormat;
pub use ironrdp_input::MouseButton;
use ironrdp_input::{Database, MousePosition, Operation, Scancode, WheelRotations};

use ironrdp_pdu::gcc::KeyboardType;
use ironrdp_pdu::rdp::capability_sets::MajorPlatformType;
use ironrdp_pdu::rdp::client_info::CompressionType;
use ironrdp_rdcleanpath::{RDCleanPath, RDCleanPathPdu};
use ironrdp_rdpsnd::client::Rdpsnd;
use ironrdp_session::image::DecodedImage;
use ironrdp_session::{ActiveStage, ActiveStageBuilder, ActiveStageOutput};
use ironrdp_tokio::{FramedWrite as _, TokioFramed};
use proto::clipboard::{
    self, Arrived, Clip, CliprdrClient, FetchLimits, FileAsk, FileContents, ImageNotOffered,
    OfferedFile, RemoteFile, TooLarge,
};
use proto::session::{SessionMode, SessionReply, SessionRequest};
use tokio::io::{AsyncRead, AsyncWrite};
use transport::{FramedIo, Prefixed};

#[cfg(not(target_arch = "wasm32"))]
use crate::graphics;
use crate::incoming::{Abandoned, FilesFetched, Incoming};
use crate::monitors::MonitorLayout;
use crate::sound::Speaker;
use crate::{ConnectError, Interaction, Progress};

/// The remote PC's own logon (Windows user, password, optional domain).
#[derive(Clone)]
pub struct RdpCredentials {
    pub user: String,
    pub password: String,
    pub domain: Option<String>,
}

impl std::fmt::Debug for RdpCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RdpCredentials")
            .field("user", &self.user)
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

/// What one step of the session produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// These pixels changed (left, top, right, bottom — inclusive).
    Updated(u16, u16, u16, u16),
    /// The server ended the session.
    Ended(String),
    /// Text was copied on the remote PC (for the local clipboard).
    RemoteClipboard(String),
    /// Text copied on the remote PC was over the size limit: not taken (its
    /// size in bytes).
    RemoteClipboardTooLarge(usize),
    /// A picture was copied on the remote PC (PNG, for the local clipboard).
    RemoteImage(Vec<u8>),
    /// A picture copied on the remote PC was over the size limit (see
    /// [`clipboard::MAX_IMAGE_BYTES`]): not taken (its size in bytes).
    RemoteImageTooLarge(usize),
    /// Files were copied on the remote PC: their names and sizes, and the
    /// copy's number. Their bytes come when asked for with
    /// [`RdpSession::fetch_remote_files`].
    RemoteFiles { list: u32, files: Vec<RemoteFile> },
    /// A fetch of the remote PC's files ended.
    FilesFetched(FilesFetched),
    /// The remote desktop now has this size (after a resize the client asked
    /// for, or one the server made); the whole picture follows.
    Resized(u16, u16),
    /// The pointer the remote PC shows now.
    Pointer(RemotePointer),
    /// Text to paste had to be typed (the remote PC did not take it through
    /// the clipboard) and was longer than [`MAX_TYPED_CHARS`]: not typed
    /// (its length in characters).
    TooLongToType(usize),
}

/// The most characters a paste types where the clipboard cannot carry it:
/// a few pages, typed in seconds. Typing more would hold the session (and
/// the person's Disconnect) for minutes.
pub const MAX_TYPED_CHARS: usize = 10_000;

/// Why a paste did not happen; nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotPasted {
    /// Over the clipboard's limit (see [`TooLarge`]).
    TooLarge(TooLarge),
    /// It would have been typed and is longer than [`MAX_TYPED_CHARS`]
    /// (its length in characters).
    TooLongToType(usize),
    /// A picture too large or unreadable.
    Image(ImageNotOffered),
    /// A picture, and the clipboard channel is not up (the office PC's
    /// owner turned the clipboard off): a picture cannot be typed.
    NoClipboard,
}

/// What is being pasted: Ctrl+V waits until the remote PC took it.
#[derive(Debug)]
enum Pasting {
    /// Typed instead if the remote PC refuses it.
    Text(String),
    Image,
    Files,
}

/// The RDP bytes a session carried each way since it began: the server's
/// messages as read and the client's as written (the end-to-end channel's
/// own framing, the relay's TLS and the capability exchange after a resize
/// come on top).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    pub received: u64,
    pub sent: u64,
}

/// The largest pointer RDP carries (large pointers, MS-RDPBCGR 2.2.9.1.2.1.11).
pub const MAX_POINTER_EDGE: u16 = 384;

/// What a Windows server gives its client to come back into the same
/// session after a dropped connection without a new logon (MS-RDPBCGR
/// 5.5, the auto-reconnect cookie). A secret: kept in memory only.
pub use ironrdp_pdu::rdp::session_info::ServerAutoReconnect as ReconnectCookie;

/// The pointer over the remote desktop, as the remote PC sets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemotePointer {
    /// The usual arrow: the local system's.
    System,
    /// No pointer (a video, a game).
    Hidden,
    /// An image of the remote PC's (an I-beam over text, a resize arrow).
    Shape(std::sync::Arc<PointerShape>),
}

/// A pointer image: `rgba` holds `width`×`height` pixels, not
/// premultiplied, rows top-down; `hotspot` is the pixel that points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointerShape {
    pub width: u16,
    pub height: u16,
    pub hotspot: (u16, u16),
    pub rgba: Vec<u8>,
}

impl RemotePointer {
    fn from_decoded(pointer: &ironrdp_graphics::pointer::DecodedPointer) -> Self {
        if pointer.width == 0 || pointer.height == 0 {
            return Self::Hidden;
        }
        // Larger than any pointer RDP has (a server's trick to make the
        // client hold or upload too much), or not what it says: the arrow.
        let expected = usize::from(pointer.width) * usize::from(pointer.height) * 4;
        if pointer.width > MAX_POINTER_EDGE
            || pointer.height > MAX_POINTER_EDGE
            || pointer.bitmap_data.len() != expected
        {
            return Self::System;
        }
        Self::Shape(std::sync::Arc::new(PointerShape {
            width: pointer.width,
            height: pointer.height,
            hotspot: (
                pointer.hotspot_x.min(pointer.width - 1),
                pointer.hotspot_y.min(pointer.height - 1),
            ),
            rgba: pointer.bitmap_data.clone(),
        }))
    }
}

/// The largest desktop this client shows, each way (MS-RDPEDISP's limit):
/// a server asking for more would make the client hold gigabytes.
pub const MAX_DESKTOP_EDGE: u16 = 8192;

fn check_desktop_size(size: DesktopSize) -> Result<(), ConnectError> {
    let fits = |edge: u16| (1..=MAX_DESKTOP_EDGE).contains(&edge);
    if fits(size.width) && fits(size.height) {
        return Ok(());
    }
    Err(rdp_err(format!(
        "the remote PC asked for a {}×{} desktop; this app shows at most \
         {MAX_DESKTOP_EDGE}×{MAX_DESKTOP_EDGE}",
        size.width, size.height
    )))
}

/// Tracks which parts of the desktop have been drawn, to know when the first
/// complete frame has arrived.
pub struct FrameStatus {
    width: u16,
    height: u16,
    cell: u16,
    cols: u16,
    drawn: Vec<bool>,
    missing: usize,
}

impl FrameStatus {
    const CELL: u16 = 16;

    /// The picture's size it follows.
    pub fn size(&self) -> (u16, u16) {
        (self.width, self.height)
    }

    pub fn new(width: u16, height: u16) -> Self {
        let cols = width.div_ceil(Self::CELL);
        let rows = height.div_ceil(Self::CELL);
        let cells = usize::from(cols) * usize::from(rows);
        Self {
            width,
            height,
            cell: Self::CELL,
            cols,
            drawn: vec![false; cells],
            missing: cells,
        }
    }

    /// Marks the cells wholly or partly inside the rectangle as drawn.
    pub fn add(&mut self, left: u16, top: u16, right: u16, bottom: u16) {
        let rows = (self.drawn.len() / usize::from(self.cols)) as u16;
        for row in top / self.cell..=(bottom / self.cell).min(rows.saturating_sub(1)) {
            for col in left / self.cell..=(right / self.cell).min(self.cols - 1) {
                let i = usize::from(row) * usize::from(self.cols) + usize::from(col);
                if !self.drawn[i] {
                    self.drawn[i] = true;
                    self.missing -= 1;
                }
            }
        }
    }

    pub fn complete(&self) -> bool {
        self.missing == 0
    }
}

/// CredSSP here uses NTLM; a Kerberos KDC is never contacted.
struct NoKerberos;

impl ironrdp_tokio::NetworkClient for NoKerberos {
    async fn send(
        &mut self,
        _request: &ironrdp_connector::sspi::generator::NetworkRequest,
    ) -> ironrdp_connector::ConnectorResult<Vec<u8>> {
        Err(ironrdp_connector::general_err!(
            "Kerberos is not supported; use a local or NTLM account"
        ))
    }
}

/// The keyboard the RDP server is told about, so that it maps keys as the
/// user's own keyboard has them: on a Japanese 106/109 keyboard 半角/全角,
/// 変換, 無変換, カタカナ/ひらがな and ¥ work as on the office PC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keyboard {
    /// Windows input locale (KLID), e.g. 0x411 Japanese.
    pub layout: u32,
    pub kind: KeyboardType,
    pub subtype: u32,
    pub function_keys: u32,
}

impl Keyboard {
    /// US English, 101/104 keys.
    pub const US: Self = Self {
        layout: 0x0409,
        kind: KeyboardType::IBM_ENHANCED,
        subtype: 0,
        function_keys: 12,
    };
    /// Japanese 106/109 keys.
    pub const JAPANESE: Self = Self {
        layout: 0x0411,
        kind: KeyboardType::JAPANESE,
        subtype: 2,
        function_keys: 12,
    };

    /// From an XKB layout name (`jp`) or a locale (`ja_JP.UTF-8`, `ja-JP`):
    /// Japanese for Japanese, US otherwise.
    pub fn from_name(name: &str) -> Self {
        let name = name.trim().to_ascii_lowercase();
        if name.starts_with("ja") || name == "jp" || name.starts_with("jp(") {
            Self::JAPANESE
        } else {
            Self::US
        }
    }

    /// The keyboard of this computer as set by [`Keyboard::use_for_sessions`]
    /// (the apps set it at start; US if nobody did).
    pub fn local() -> Self {
        LOCAL_KEYBOARD.get().copied().unwrap_or(Self::US)
    }

    /// Sets the keyboard every later session announces (once per process:
    /// a computer's keyboard does not change while it runs).
    pub fn use_for_sessions(self) {
        let _ = LOCAL_KEYBOARD.set(self);
    }
}

static LOCAL_KEYBOARD: std::sync::OnceLock<Keyboard> = std::sync::OnceLock::new();

/// What remote-access products turn off on a line that is not the office
/// LAN: the wallpaper (a photo costs more to send than a screen of text),
/// window contents while dragging, menu animations and the cursor's shadow;
/// font smoothing stays on, since text is what people read.
fn performance_flags() -> ironrdp_pdu::rdp::client_info::PerformanceFlags {
    use ironrdp_pdu::rdp::client_info::PerformanceFlags as P;
    P::DISABLE_WALLPAPER
        | P::DISABLE_FULLWINDOWDRAG
        | P::DISABLE_MENUANIMATIONS
        | P::DISABLE_CURSOR_SHADOW
        | P::ENABLE_FONT_SMOOTHING
}

fn connector_config(
    creds: &RdpCredentials,
    screens: &MonitorLayout,
    sound: bool,
) -> ironrdp_connector::Config {
    let keyboard = Keyboard::local();
    let (width, height) = screens.desktop_size();
    ironrdp_connector::Config {
        desktop_size: DesktopSize { width, height },
        // Several monitors go in the connection, so the server gives each
        // its own screen (taskbar, maximised windows); one, as mstsc does,
        // only as the desktop's size.
        monitor_layout: (!screens.is_single()).then(|| screens.client_monitor_data()),
        desktop_scale_factor: 0,
        desktop_physical_size: None,
        desktop_orientation: None,
        device_scale_factor: None,
        monitor_extended_layout: None,
        relative_mouse_input: false,
        enable_tls: true,
        enable_credssp: true,
        enable_standard_rdp_security: false,
        credentials: Credentials::UsernamePassword {
            username: creds.user.clone(),
            password: creds.password.clone(),
        },
        domain: creds.domain.clone(),
        client_build: 0,
        client_name: "thin-client".to_owned(),
        keyboard_type: keyboard.kind,
        keyboard_subtype: keyboard.subtype,
        keyboard_functional_keys_count: keyboard.function_keys,
        keyboard_layout: keyboard.layout,
        // The link is whatever the person's home line is: the server
        // measures it as the session starts (round trip and bandwidth,
        // which ironrdp answers) and chooses its visual experience from
        // that, as for mstsc's "detect connection quality automatically".
        // A server that does not measure (xrdp, FreeRDP) goes by the
        // performance flags below.
        connection_type: ironrdp_pdu::gcc::ConnectionType::Autodetect,
        ime_file_name: String::new(),
        bitmap: None,
        dig_product_id: String::new(),
        client_dir: String::new(),
        alternate_shell: String::new(),
        work_dir: String::new(),
        remote_application_mode: false,
        rail_support_level: ironrdp_pdu::rdp::capability_sets::RailSupportLevel::empty(),
        platform: MajorPlatformType::UNIX,
        hardware_id: None,
        request_data: None,
        // A TLS-only server (xrdp) logs on with the credentials of the
        // Client Info; without this flag it shows its own login dialog.
        autologon: true,
        // Without it the server plays nothing (or on its own speakers).
        enable_audio_playback: sound,
        enable_audio_capture: false,
        performance_flags: performance_flags(),
        license_cache: None,
        timezone_info: Default::default(),
        // Bulk compression (RDP 6.1, or whatever lower level the server
        // picks; ironrdp-bulk decompresses): about a tenth of the bytes for
        // text-heavy office screens.
        compression_type: Some(CompressionType::Rdp61),
        // The server's pointer shapes come as events; the UI draws them.
        enable_server_pointer: true,
        pointer_software_rendering: false,
        multitransport_flags: None,
        // The graphics pipeline (H.264) where this build decodes it.
        support_dyn_vc_gfx_protocol: cfg!(not(target_arch = "wasm32")),
    }
}

/// The dynamic channels a connection asks for. Display Control: the
/// desktop follows the window (servers without it keep the first size, and
/// the UI scales). The graphics pipeline where this build decodes it. Each
/// is made anew whenever the server opens it: a server may close one and
/// open it again (around a reactivation), and a processor registered once
/// would be refused the second time.
pub(crate) fn dynamic_channels() -> DrdynvcClient {
    let dynamic = DrdynvcClient::new()
        .with_dynamic_channel_factory(ironrdp_displaycontrol::CHANNEL_NAME, || {
            DisplayControlClient::new(|_| Ok(Vec::new()))
        });
    #[cfg(not(target_arch = "wasm32"))]
    let dynamic =
        dynamic.with_dynamic_channel_factory(ironrdp_egfx::CHANNEL_NAME, graphics::pipeline);
    dynamic
}

fn rdp_err(e: impl std::fmt::Display) -> ConnectError {
    ConnectError::Rdp(e.to_string())
}

/// Adds something to the connection before it starts, such as the drive
/// sharing channel (see `native::share_folder`).
pub type ConnectorSetup = Box<dyn FnOnce(&mut ClientConnector) + Send>;

/// The static channels a connection asks for. Ask only for what the host
/// allows ([`Channels::allowed`]): the host takes the others out of the
/// request, and the RDP server's channel IDs are matched to the client's
/// channels by their position, so a channel asked for and taken out would
/// leave the next one with the wrong ID.
#[derive(Default)]
pub struct Channels {
    /// The clipboard (`cliprdr`).
    pub clipboard: bool,
    /// Drive sharing (see `native::share_folder`).
    pub share: Option<ConnectorSetup>,
    /// The remote PC's sound (`rdpsnd`), played here.
    pub sound: Option<Speaker>,
}

impl Channels {
    /// The clipboard, `share` and `sound` as far as the host's `admission`
    /// allows.
    pub fn allowed(
        admission: &crate::Admission,
        share: Option<ConnectorSetup>,
        sound: Option<Speaker>,
    ) -> Self {
        Self {
            clipboard: admission.clipboard_allowed,
            share: share.filter(|_| admission.share_allowed),
            sound: sound.filter(|_| admission.audio_allowed),
        }
    }
}

/// Runs the session preamble and the RDP connection over the end-to-end
/// channel.
pub async fn connect<S>(
    pipe: FramedIo<S>,
    creds: &RdpCredentials,
    screens: &MonitorLayout,
    channels: Channels,
    ui: &mut dyn Interaction,
) -> Result<RdpSession<Prefixed<S>>, ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + Sync,
{
    let begun = begin(creds, screens, channels)?;
    connect_begun(pipe, begun, ui).await
}

/// [`connect`] with a connector [`begin`] made (and its caller perhaps
/// changed).
pub async fn connect_begun<S>(
    mut pipe: FramedIo<S>,
    (connector, x224_request): (ClientConnector, Vec<u8>),
    ui: &mut dyn Interaction,
) -> Result<RdpSession<Prefixed<S>>, ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + Sync,
{
    let lost = |e: std::io::Error| ConnectError::ConnectionLost(e.to_string());
    pipe.write_all(&proto::relay::encode(&SessionRequest::Open {
        mode: SessionMode::Rdp,
    }))
    .await
    .map_err(lost)?;

    let request =
        RDCleanPathPdu::new_request(x224_request, "rdp-server".into(), String::new(), None)
            .and_then(|pdu| pdu.to_der())
            .map_err(rdp_err)?;
    pipe.write_all(&proto::encode_frame(&request))
        .await
        .map_err(lost)?;

    let read = |e: transport::ReadFrameError| {
        ConnectError::ConnectionLost(format!("the office PC closed the session ({e})"))
    };
    let reply: SessionReply =
        proto::relay::decode(&pipe.read_frame().await.map_err(read)?).map_err(rdp_err)?;
    if let SessionReply::Refused { reason } = reply {
        return Err(ConnectError::HostRefused(reason));
    }
    ui.progress(Progress::RemoteLogon);
    let response = RDCleanPathPdu::from_der(&pipe.read_frame().await.map_err(read)?)
        .map_err(rdp_err)?
        .into_enum()
        .map_err(rdp_err)?;
    let (x224_response, chain) = match response {
        RDCleanPath::Response {
            x224_connection_response,
            server_cert_chain,
            ..
        } => (x224_connection_response, server_cert_chain),
        RDCleanPath::GeneralErr(e) => return Err(ConnectError::HostRefused(e.to_string())),
        other => return Err(rdp_err(format!("unexpected RDCleanPath answer {other:?}"))),
    };
    let chain: Vec<&[u8]> = chain.iter().map(|cert| cert.as_bytes()).collect();
    let (stream, rest) = pipe.into_parts();
    let framed = TokioFramed::new(Prefixed::new(rest, stream));
    after_tls(connector, x224_response.as_bytes(), &chain, framed, ui).await
}

/// The first step of a connection: a connector asking for this desktop
/// size and logon, with these `channels`, and the X.224 request to send to
/// the RDP server.
pub fn begin(
    creds: &RdpCredentials,
    screens: &MonitorLayout,
    channels: Channels,
) -> Result<(ClientConnector, Vec<u8>), ConnectError> {
    let client_addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
    let config = connector_config(creds, screens, channels.sound.is_some());
    let mut connector = ClientConnector::new(config, client_addr);
    if channels.clipboard {
        connector.attach_static_channel::<CliprdrClient>(clipboard::channel());
    }
    if let Some(share) = channels.share {
        share(&mut connector);
    }
    if let Some(speaker) = channels.sound {
        connector.attach_static_channel(Rdpsnd::new(Box::new(speaker)));
    }
    connector.attach_static_channel(dynamic_channels());
    let mut buf = WriteBuf::new();
    let written = connector.step_no_input(&mut buf).map_err(rdp_err)?;
    let x224_request = buf.filled()[..written.size().unwrap_or(0)].to_vec();
    Ok((connector, x224_request))
}

/// The rest of a connection once the RDP server's X.224 answer came back
/// and TLS with it is up (`framed`, its certificate `chain`): the logon
/// (CredSSP bound to the server's key), the connection finalization, the
/// session. [`connect`] gets here through the host, which does X.224 and
/// TLS on the client's behalf (RDCleanPath); a client that reaches the
/// server itself would too.
pub async fn after_tls<S>(
    mut connector: ClientConnector,
    x224_response: &[u8],
    chain: &[&[u8]],
    mut framed: TokioFramed<S>,
    ui: &mut dyn Interaction,
) -> Result<RdpSession<S>, ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + Sync,
{
    let mut buf = WriteBuf::new();
    connector
        .step(x224_response, None, &mut buf)
        .map_err(rdp_err)?;
    if !connector.should_perform_security_upgrade() {
        return Err(rdp_err("the RDP server did not agree to TLS"));
    }
    let server_key = chain
        .first()
        .and_then(|cert| proto::session::server_public_key(cert))
        .ok_or_else(|| rdp_err("the RDP server's certificate is unreadable"))?;
    let upgraded = ironrdp_tokio::mark_as_upgraded(
        ironrdp_tokio::skip_connect_begin(&mut connector),
        &mut connector,
    );
    if matches!(connector.state, ClientConnectorState::Credssp { .. }) {
        logon(&mut connector, &mut framed, server_key).await?;
    }
    let outcome = ironrdp_tokio::connect_finalize(
        upgraded,
        connector,
        &mut framed,
        &mut NoKerberos,
        "rdp-server".into(),
        Vec::new(),
        None,
    )
    .await
    .map_err(|e| match e.kind() {
        ConnectorErrorKind::AccessDenied => ConnectError::LogonRefused(format!(
            "the remote PC did not accept the user name or password ({e})"
        )),
        _ => rdp_err(e),
    })?;
    let ConnectionOutcome::Connected(result) = outcome else {
        return Err(rdp_err(
            "the RDP server redirected the session elsewhere, which is not supported",
        ));
    };
    ui.progress(Progress::Connected);

    let size = result.desktop_size;
    check_desktop_size(size)?;
    let stage = ActiveStageBuilder {
        static_channels: result.static_channels,
        user_channel_id: result.user_channel_id,
        io_channel_id: result.io_channel_id,
        message_channel_id: result.message_channel_id,
        share_id: result.share_id,
        compression_type: result.compression_type,
        // The server's pointer shapes come as events; the UI draws them.
        enable_server_pointer: true,
        pointer_software_rendering: false,
    }
    .build();
    Ok(RdpSession {
        framed,
        stage,
        activation: result.activation_factory,
        image: DecodedImage::new(PixelFormat::RgbA32, size.width, size.height),
        input: Database::new(),
        frame: FrameStatus::new(size.width, size.height),
        graphics_reset: false,
        clipboard: None,
        remote_clipboard: None,
        remote_image: None,
        offered_files: Vec::new(),
        remote_files: None,
        remote_lists: 0,
        incoming: None,
        next_stream: 0,
        pointer: RemotePointer::System,
        traffic: Traffic::default(),
        reconnect_cookie: None,
        pasting: None,
    })
}

/// CredSSP (NLA), run as its own step so that a refusal reads as one: a
/// server that rejects the credentials either says so in the exchange or
/// (FreeRDP) simply closes the connection. A TLS-only server (xrdp) skips
/// it: the logon travels in the Client Info, its certificate was reported
/// by the host over the end-to-end channel, and the host's leg to it stays
/// inside the office PC (the host's policy may require NLA).
async fn logon<S>(
    connector: &mut ClientConnector,
    framed: &mut TokioFramed<S>,
    server_key: Vec<u8>,
) -> Result<(), ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + Sync,
{
    let ClientConnectorState::Credssp { selected_protocol } = connector.state else {
        return Ok(());
    };
    let refused = |e: ironrdp_connector::ConnectorError| {
        let detail = match e.kind() {
            ConnectorErrorKind::Credssp(why) => why.to_string(),
            ConnectorErrorKind::Custom => "it closed the connection during the logon".to_owned(),
            _ => e.to_string(),
        };
        ConnectError::LogonRefused(format!(
            "the remote PC did not accept the user name or password ({detail})"
        ))
    };
    let (sequence, ts_request) = CredsspSequence::init(
        connector.config.credentials.clone(),
        connector.config.domain.as_deref(),
        selected_protocol,
        "rdp-server".into(),
        server_key,
        None,
    )
    .map_err(rdp_err)?;
    let mut buf = WriteBuf::new();
    ironrdp_tokio::perform_credssp(framed, &mut NoKerberos, &mut buf, sequence, ts_request)
        .await
        .map_err(refused)?;
    connector.mark_credssp_as_done();
    Ok(())
}

/// A PDU from the server, read and not yet applied.
pub struct ServerPdu {
    action: ironrdp_pdu::Action,
    payload: ironrdp_tokio::bytes::BytesMut,
}

/// A file list the remote PC copied.
struct RemoteCopy {
    /// Which copy of the session it is (a fetch names the copy it wants).
    number: u32,
    files: Vec<RemoteFile>,
    clip_data_id: Option<u32>,
}

/// A running RDP session: decoded framebuffer plus input.
pub struct RdpSession<S> {
    framed: TokioFramed<S>,
    stage: ActiveStage,
    /// Runs the capability exchange again when the server deactivates the
    /// session (it does so to change the desktop's size).
    activation: ConnectionActivationFactory,
    image: DecodedImage,
    input: Database,
    frame: FrameStatus,
    /// The graphics pipeline cleared the picture since the last update.
    graphics_reset: bool,
    /// What this side offers on the remote clipboard, once copied.
    clipboard: Option<Clip>,
    /// The text last copied on the remote PC.
    remote_clipboard: Option<String>,
    /// The picture last copied on the remote PC (PNG).
    remote_image: Option<Vec<u8>>,
    /// The files on offer (with `clipboard`), opened when offered and read
    /// when the remote PC asks (a path swapped meanwhile changes nothing).
    offered_files: Vec<std::fs::File>,
    /// The files last copied on the remote PC.
    remote_files: Option<RemoteCopy>,
    /// How many file lists the remote PC gave (each copy's number).
    remote_lists: u32,
    /// Files of the remote PC being fetched.
    incoming: Option<Incoming>,
    /// Where the next fetch's stream IDs begin (answers to an earlier
    /// fetch are not mixed in).
    next_stream: u32,
    /// The pointer the remote PC last set.
    pointer: RemotePointer,
    traffic: Traffic,
    reconnect_cookie: Option<ReconnectCookie>,
    /// What is being pasted.
    pasting: Option<Pasting>,
}

impl<S> RdpSession<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + Sync,
{
    /// The framebuffer, RGBA, `width() * height() * 4` bytes.
    pub fn image(&self) -> &[u8] {
        self.image.data()
    }

    pub fn width(&self) -> u16 {
        self.image.width()
    }

    pub fn height(&self) -> u16 {
        self.image.height()
    }

    /// The text last copied on the remote PC (also reported as
    /// [`SessionEvent::RemoteClipboard`]).
    pub fn remote_clipboard(&self) -> Option<&str> {
        self.remote_clipboard.as_deref()
    }

    /// The picture last copied on the remote PC, as PNG (also reported as
    /// [`SessionEvent::RemoteImage`]).
    pub fn remote_image(&self) -> Option<&[u8]> {
        self.remote_image.as_deref()
    }

    /// The files last copied on the remote PC and the copy's number (also
    /// reported as [`SessionEvent::RemoteFiles`]); None when it copied
    /// something else.
    pub fn remote_files(&self) -> Option<(u32, &[RemoteFile])> {
        let copy = self.remote_files.as_ref()?;
        Some((copy.number, &copy.files))
    }

    /// Brings the files (and folders) of the remote PC's copy number `list`
    /// (see [`SessionEvent::RemoteFiles`]) into `dir`, one after another as
    /// the session goes on, at most `budget` bytes in all;
    /// [`SessionEvent::FilesFetched`] says where they are (or why not) once
    /// all came — or this returns it when nothing needed asking. Refused
    /// (why) when that copy is no longer the remote PC's, the remote PC
    /// gives no files, or a fetch is still running.
    pub async fn fetch_remote_files(
        &mut self,
        dir: &std::path::Path,
        list: u32,
        budget: u64,
    ) -> Result<Result<Option<FilesFetched>, String>, ConnectError> {
        if self.incoming.is_some() {
            return Ok(Err("files from the office PC are still coming".into()));
        }
        let Some(copied) = self.remote_files.as_ref().filter(|c| c.number == list) else {
            return Ok(Err("the office PC copied something else meanwhile".into()));
        };
        let Some(cliprdr) = self.stage.get_svc_processor_mut::<CliprdrClient>() else {
            return Ok(Err("the office PC does not allow the clipboard".into()));
        };
        let Some(largest) = clipboard::largest_file(cliprdr)
            .filter(|_| clipboard::takes_files(cliprdr) == Some(true))
        else {
            return Ok(Err(
                "the office PC's remote desktop gives no files through the clipboard".into(),
            ));
        };
        let limits = FetchLimits {
            file: largest,
            total: budget,
        };
        let first_stream = self.next_stream;
        let mut incoming = match Incoming::new(
            &copied.files,
            copied.clip_data_id,
            first_stream,
            limits,
            dir,
        ) {
            Ok(incoming) => incoming,
            Err(why) => return Ok(Err(why)),
        };
        self.next_stream = incoming.next_first_stream();
        let (ended, messages) = incoming.ask(cliprdr);
        if ended.is_none() {
            self.incoming = Some(incoming);
        }
        self.send_clipboard(messages).await?;
        Ok(Ok(ended))
    }

    /// Whether files copied on the remote PC are being fetched.
    pub fn fetching(&self) -> bool {
        self.incoming.is_some()
    }

    /// Gives up a fetch the remote PC stopped answering (see
    /// [`FETCH_STALL_LIMIT`](crate::incoming::FETCH_STALL_LIMIT)); call it
    /// now and then. Its end, when it was given up.
    pub fn check_fetch(&mut self) -> Option<FilesFetched> {
        let mut incoming = self.incoming.take_if(|incoming| incoming.stalled())?;
        Some(incoming.abandon(Abandoned::Stalled))
    }

    /// The server's auto-reconnect cookie, if it gave one: the next
    /// connection after a break offers it (see [`ReconnectCookie`]).
    pub fn reconnect_cookie(&self) -> Option<&ReconnectCookie> {
        self.reconnect_cookie.as_ref()
    }

    /// The bytes this session carried each way so far.
    pub fn traffic(&self) -> Traffic {
        self.traffic
    }

    /// The pointer the remote PC last set (also reported as
    /// [`SessionEvent::Pointer`]).
    pub fn pointer(&self) -> &RemotePointer {
        &self.pointer
    }

    /// Whether every part of the desktop has been drawn at least once.
    pub fn first_frame_complete(&self) -> bool {
        self.frame.complete()
    }

    /// Reads and applies the next PDU from the server.
    pub async fn next_events(&mut self) -> Result<Vec<SessionEvent>, ConnectError> {
        let pdu = self.read().await?;
        self.apply_pdu(pdu).await
    }

    /// Reads the next PDU from the server without applying it. Cancel-safe
    /// (a PDU read in part stays buffered), so a caller may race it against
    /// its own input and then [`apply_pdu`](Self::apply_pdu) it; applying
    /// writes answers and must not be cut short.
    pub async fn read(&mut self) -> Result<ServerPdu, ConnectError> {
        let (action, payload) = self
            .framed
            .read_pdu()
            .await
            .map_err(|e| ConnectError::ConnectionLost(lost(&e)))?;
        self.traffic.received += payload.len() as u64;
        Ok(ServerPdu { action, payload })
    }

    /// Draws a PDU from [`read`](Self::read) and answers it; a Deactivate
    /// All runs the capability exchange again, reading until it is done.
    pub async fn apply_pdu(&mut self, pdu: ServerPdu) -> Result<Vec<SessionEvent>, ConnectError> {
        #[cfg_attr(target_arch = "wasm32", allow(unused_mut))]
        let mut outputs = self
            .stage
            .process(&mut self.image, pdu.action, &pdu.payload, None)
            .map_err(rdp_err)?;
        // The graphics pipeline speaks on a dynamic channel, which slow-path
        // (X.224) messages carry.
        #[cfg(not(target_arch = "wasm32"))]
        if pdu.action == ironrdp_pdu::Action::X224 {
            let (reset, drawn) =
                graphics::composite(&mut self.stage, &mut self.image).map_err(rdp_err)?;
            self.graphics_reset |= reset;
            outputs.extend(drawn.map(ActiveStageOutput::GraphicsUpdate));
        }
        let mut events = self.apply(outputs).await?;
        self.answer_clipboard(&mut events).await?;
        Ok(events)
    }

    /// Answers the clipboard channel (see [`proto::clipboard`]): the remote
    /// side's requests for our text, and its own text when copied there.
    async fn answer_clipboard(
        &mut self,
        events: &mut Vec<SessionEvent>,
    ) -> Result<(), ConnectError> {
        let Some(cliprdr) = self.stage.get_svc_processor_mut::<CliprdrClient>() else {
            return Ok(());
        };
        let done = clipboard::answer(cliprdr, self.clipboard.as_ref()).map_err(rdp_err)?;
        let mut asks = Vec::new();
        for arrived in done.arrived {
            events.push(match arrived {
                Arrived::Text(text) => {
                    self.remote_clipboard = Some(text.clone());
                    SessionEvent::RemoteClipboard(text)
                }
                Arrived::TooLarge(bytes) => SessionEvent::RemoteClipboardTooLarge(bytes),
                Arrived::Image(png) => {
                    self.remote_image = Some(png.clone());
                    SessionEvent::RemoteImage(png)
                }
                Arrived::ImageTooLarge(bytes) => SessionEvent::RemoteImageTooLarge(bytes),
                Arrived::Unreadable(why) => {
                    tracing::warn!("the picture copied on the remote PC cannot be read: {why}");
                    continue;
                }
                Arrived::Files {
                    files,
                    clip_data_id,
                } => {
                    self.remote_lists += 1;
                    let list = self.remote_lists;
                    self.remote_files = Some(RemoteCopy {
                        number: list,
                        files: files.clone(),
                        clip_data_id,
                    });
                    SessionEvent::RemoteFiles { list, files }
                }
                Arrived::FileData { stream_id, data } => {
                    let Some(incoming) = self.incoming.as_mut() else {
                        continue;
                    };
                    let Some(mut ended) = incoming.answer(stream_id, data) else {
                        continue;
                    };
                    if ended.is_none() {
                        let cliprdr = self
                            .stage
                            .get_svc_processor_mut::<CliprdrClient>()
                            .ok_or_else(|| rdp_err("the clipboard channel went away"))?;
                        let ask;
                        (ended, ask) = incoming.ask(cliprdr);
                        asks.extend(ask);
                    }
                    match ended {
                        Some(result) => {
                            self.incoming = None;
                            SessionEvent::FilesFetched(result)
                        }
                        None => continue,
                    }
                }
            });
        }
        // The office PC's own copy replaced ours there: our files are no
        // longer on offer, and its earlier files no longer listed — nor can
        // they still be fetched (without locks, a file's place in the list
        // would now mean another file).
        if done.remote_copied {
            self.offered_files.clear();
            self.remote_files = None;
            if let Some(mut incoming) = self.incoming.take() {
                asks.clear();
                let ended = incoming.abandon(Abandoned::RemoteCopied);
                events.push(SessionEvent::FilesFetched(ended));
            }
        }
        let mut messages = done.messages;
        messages.extend(asks);
        for request in &done.file_requests {
            let contents = FileAsk::of(request).map_or(FileContents::Failed, |ask| {
                read_offered(&self.offered_files, ask)
            });
            let cliprdr = self
                .stage
                .get_svc_processor::<CliprdrClient>()
                .ok_or_else(|| rdp_err("the clipboard channel went away while answering"))?;
            messages.extend(
                clipboard::give_file_contents(cliprdr, request, contents).map_err(rdp_err)?,
            );
        }
        self.send_clipboard(messages).await?;
        // A paste waits for the office PC's answer to its offer.
        let Some(taken) = done.offer_taken else {
            return Ok(());
        };
        match self.pasting.take() {
            Some(_) if taken => self.press_paste().await?,
            Some(Pasting::Text(text)) => {
                if let Err(NotPasted::TooLongToType(chars)) = self.type_paste(&text).await? {
                    events.push(SessionEvent::TooLongToType(chars));
                }
            }
            Some(Pasting::Image) => tracing::warn!("the remote PC refused the pasted picture"),
            Some(Pasting::Files) => tracing::warn!("the remote PC refused the pasted files"),
            None => {}
        }
        Ok(())
    }

    /// Pastes `text` from this computer where the remote PC's cursor is:
    /// through the clipboard channel — the text goes on the remote
    /// clipboard, and Ctrl+V is pressed there once the remote PC has taken
    /// it, so that the paste cannot overtake the copy — or, where the
    /// channel is not up (the host's policy forbids the clipboard) or the
    /// remote PC refuses the text, typed as Unicode characters (at most
    /// [`MAX_TYPED_CHARS`]).
    pub async fn paste(&mut self, text: String) -> Result<Result<(), NotPasted>, ConnectError> {
        let ready = self
            .stage
            .get_svc_processor_mut::<CliprdrClient>()
            .is_some_and(|cliprdr| cliprdr.is_ready());
        if !ready {
            return self.type_paste(&text).await;
        }
        if let Err(too_large) = self.copy_text(text.clone()).await? {
            return Ok(Err(NotPasted::TooLarge(too_large)));
        }
        self.pasting = Some(Pasting::Text(text));
        Ok(Ok(()))
    }

    /// Pastes a picture (PNG) from this computer where the remote PC's
    /// cursor is: on the remote clipboard, then Ctrl+V there once the
    /// remote PC took it (a channel still starting offers it as it comes
    /// up).
    pub async fn paste_image(&mut self, png: &[u8]) -> Result<Result<(), NotPasted>, ConnectError> {
        if self.stage.get_svc_processor::<CliprdrClient>().is_none() {
            return Ok(Err(NotPasted::NoClipboard));
        }
        if let Err(why) = self.copy_image(png).await? {
            return Ok(Err(NotPasted::Image(why)));
        }
        self.pasting = Some(Pasting::Image);
        Ok(Ok(()))
    }

    /// Pastes files from this computer where the remote PC's cursor is
    /// (its Explorer reads them from here as it asks): on the remote
    /// clipboard (see [`copy_files`](Self::copy_files)), then Ctrl+V there
    /// once the remote PC took them.
    pub async fn paste_files(
        &mut self,
        paths: &[std::path::PathBuf],
    ) -> Result<Result<(), String>, ConnectError> {
        let copied = self.copy_files(paths).await?;
        if copied.is_ok() {
            self.pasting = Some(Pasting::Files);
        }
        Ok(copied)
    }

    /// Ctrl+V alone: Ctrl left as the person holds it, other modifiers let
    /// go for the tap and pressed again after it (Win+V opens the clipboard
    /// history, Ctrl+Shift+V pastes plain text in some programs and
    /// Ctrl+Alt+V is Paste Special; a Mac's Cmd travels as Win, and
    /// Shift+Insert is a paste too).
    pub async fn press_paste(&mut self) -> Result<(), ConnectError> {
        let key = |extended, code| Scancode::from_u8(extended, code);
        let ctrl = key(false, 0x1d);
        let v = key(false, 0x2f);
        let others = [
            key(false, 0x2a), // left Shift
            key(false, 0x36), // right Shift
            key(false, 0x38), // left Alt
            key(true, 0x38),  // right Alt
            key(true, 0x5b),  // left Win
            key(true, 0x5c),  // right Win
        ];
        let held: Vec<Scancode> = others
            .into_iter()
            .filter(|k| self.input.is_key_pressed(*k))
            .collect();
        let ctrl_held = self.input.is_key_pressed(ctrl);
        let mut ops: Vec<Operation> = held.iter().map(|k| Operation::KeyReleased(*k)).collect();
        if !ctrl_held {
            ops.push(Operation::KeyPressed(ctrl));
        }
        ops.extend([Operation::KeyPressed(v), Operation::KeyReleased(v)]);
        if !ctrl_held {
            ops.push(Operation::KeyReleased(ctrl));
        }
        ops.extend(held.iter().map(|k| Operation::KeyPressed(*k)));
        for op in ops {
            self.input(vec![op]).await?;
        }
        Ok(())
    }

    /// Types pasted `text`, unless it is longer than [`MAX_TYPED_CHARS`].
    async fn type_paste(&mut self, text: &str) -> Result<Result<(), NotPasted>, ConnectError> {
        let chars = typed(text).count();
        if chars > MAX_TYPED_CHARS {
            return Ok(Err(NotPasted::TooLongToType(chars)));
        }
        self.type_text(text).await.map(Ok)
    }

    /// Types `text` as Unicode characters (line breaks as Enter).
    /// Many characters go in one input message (a message per key press
    /// would cost ten times the bytes on a slow uplink).
    pub async fn type_text(&mut self, text: &str) -> Result<(), ConnectError> {
        let chars: Vec<char> = typed(text).collect();
        for batch in chars.chunks(64) {
            let presses = batch.iter().flat_map(|&ch| {
                [
                    Operation::UnicodeKeyPressed(ch),
                    Operation::UnicodeKeyReleased(ch),
                ]
            });
            self.input(presses.collect()).await?;
        }
        Ok(())
    }

    async fn send_clipboard(
        &mut self,
        messages: Vec<ironrdp_svc::SvcMessage>,
    ) -> Result<(), ConnectError> {
        if messages.is_empty() {
            return Ok(());
        }
        let frame = self
            .stage
            .process_svc_processor_messages::<CliprdrClient>(messages.into())
            .map_err(rdp_err)?;
        self.send(&frame).await
    }

    /// Offers `text`, copied on this computer, to the remote PC's clipboard
    /// (sent now if the channel is up, else once it is). Text over
    /// [`clipboard::MAX_TEXT_BYTES`] is refused and nothing changes.
    pub async fn copy_text(&mut self, text: String) -> Result<Result<(), TooLarge>, ConnectError> {
        if let Err(too_large) = clipboard::check_size(&text) {
            return Ok(Err(too_large));
        }
        self.offer(Clip::Text(text)).await.map(Ok)
    }

    /// Offers a picture (PNG), copied on this computer, to the remote PC's
    /// clipboard. One over [`clipboard::MAX_IMAGE_BYTES`] as a DIB, or not
    /// a readable PNG, is refused and nothing changes.
    pub async fn copy_image(
        &mut self,
        png: &[u8],
    ) -> Result<Result<(), ImageNotOffered>, ConnectError> {
        match Clip::image(png) {
            Ok(clip) => self.offer(clip).await.map(Ok),
            Err(why) => Ok(Err(why)),
        }
    }

    /// Offers files copied on this computer to the remote PC's clipboard
    /// (pasted in its Explorer, they are read from here as it asks). Only
    /// files: a folder or something unreadable is refused with why, and
    /// nothing changes.
    pub async fn copy_files(
        &mut self,
        paths: &[std::path::PathBuf],
    ) -> Result<Result<(), String>, ConnectError> {
        match self.stage.get_svc_processor::<CliprdrClient>() {
            None => return Ok(Err("the office PC does not allow the clipboard".into())),
            Some(cliprdr) if clipboard::takes_files(cliprdr) == Some(false) => {
                return Ok(Err(
                    "the office PC's remote desktop does not take files through the clipboard"
                        .into(),
                ))
            }
            Some(_) => {}
        }
        let mut offered = Vec::new();
        let mut opened = Vec::new();
        for path in paths {
            let shown = path.display();
            let (file, meta) = match std::fs::File::open(path).and_then(|f| {
                let meta = f.metadata()?;
                Ok((f, meta))
            }) {
                Ok(found) => found,
                Err(e) => return Ok(Err(format!("cannot read {shown}: {e}"))),
            };
            if !meta.is_file() {
                return Ok(Err(format!(
                    "{shown} is not a file (folders cannot be copied yet)"
                )));
            }
            if meta.len() > clipboard::MAX_OFFERED_FILE {
                return Ok(Err(format!("{shown} is larger than 4 GB")));
            }
            let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
                return Ok(Err(format!("{shown} has no file name")));
            };
            if let Err(why) = clipboard::check_file_name(&name) {
                return Ok(Err(why));
            }
            offered.push(OfferedFile {
                name,
                size: meta.len(),
            });
            opened.push(file);
        }
        self.offer(Clip::Files(offered)).await?;
        self.offered_files = opened;
        Ok(Ok(()))
    }

    /// Makes `clip` this side's clipboard (sent now if the channel is up).
    async fn offer(&mut self, clip: Clip) -> Result<(), ConnectError> {
        if !matches!(clip, Clip::Files(_)) {
            self.offered_files.clear();
        }
        let Some(cliprdr) = self.stage.get_svc_processor_mut::<CliprdrClient>() else {
            self.clipboard = Some(clip);
            return Ok(());
        };
        let messages = clipboard::offer(cliprdr, &clip).map_err(rdp_err)?;
        self.clipboard = Some(clip);
        self.send_clipboard(messages).await
    }

    async fn apply(
        &mut self,
        outputs: Vec<ActiveStageOutput>,
    ) -> Result<Vec<SessionEvent>, ConnectError> {
        let mut events = Vec::new();
        // The graphics pipeline's reset cleared the picture and may have
        // given it another size (the server's, as a Deactivate All would),
        // held to the same limit as a desktop size the server asks for.
        let (width, height) = (self.image.width(), self.image.height());
        if std::mem::take(&mut self.graphics_reset) || (width, height) != self.frame.size() {
            check_desktop_size(DesktopSize { width, height })?;
            events.push(if (width, height) == self.frame.size() {
                SessionEvent::Updated(0, 0, width - 1, height - 1)
            } else {
                SessionEvent::Resized(width, height)
            });
            self.frame = FrameStatus::new(width, height);
        }
        for output in outputs {
            match output {
                ActiveStageOutput::ResponseFrame(frame) => self.send(&frame).await?,
                ActiveStageOutput::GraphicsUpdate(r) => {
                    self.frame.add(r.left, r.top, r.right, r.bottom);
                    events.push(SessionEvent::Updated(r.left, r.top, r.right, r.bottom));
                }
                ActiveStageOutput::Terminate(reason) => {
                    events.push(SessionEvent::Ended(reason.to_string()))
                }
                ActiveStageOutput::DeactivateAll => {
                    let (width, height) = self.reactivate().await?;
                    events.push(SessionEvent::Resized(width, height));
                }
                ActiveStageOutput::AutoReconnectCookie(cookie) => {
                    self.reconnect_cookie = Some(cookie)
                }
                ActiveStageOutput::AutoReconnectFailed => self.reconnect_cookie = None,
                ActiveStageOutput::PointerDefault => {
                    self.pointer = RemotePointer::System;
                    events.push(SessionEvent::Pointer(self.pointer.clone()));
                }
                ActiveStageOutput::PointerHidden => {
                    self.pointer = RemotePointer::Hidden;
                    events.push(SessionEvent::Pointer(self.pointer.clone()));
                }
                ActiveStageOutput::PointerBitmap(pointer) => {
                    self.pointer = RemotePointer::from_decoded(&pointer);
                    events.push(SessionEvent::Pointer(self.pointer.clone()));
                }
                _ => {}
            }
        }
        Ok(events)
    }

    /// Asks the remote PC to run its desktop on `screens` (one of a size,
    /// or several monitors) with `scale_percent` (100 for a normal screen,
    /// 200 for a high-DPI one), through Display Control. Adjusted to what
    /// the protocol allows (200–8192, even width). False when the server
    /// cannot resize (no Display Control, or not ready yet): the UI scales
    /// the picture then. The new size arrives as [`SessionEvent::Resized`].
    pub async fn resize(
        &mut self,
        screens: &MonitorLayout,
        scale_percent: u32,
    ) -> Result<bool, ConnectError> {
        let encoded = if screens.is_single() {
            let (width, height) = screens.desktop_size();
            let (width, height) =
                MonitorLayoutEntry::adjust_display_size(u32::from(width), u32::from(height));
            let scale = MonitorLayoutEntry::adjust_desktop_scale_factor(scale_percent);
            self.stage.encode_resize(width, height, Some(scale), None)
        } else {
            match screens.display_control(scale_percent) {
                Ok(layout) => self.stage.encode_monitor_layout(&layout),
                // Not a layout Display Control carries: the picture is
                // scaled instead, and the session goes on.
                Err(e) => {
                    tracing::warn!(%screens, error = %e, "the monitors cannot be asked for");
                    return Ok(false);
                }
            }
        };
        let (width, height) = screens.desktop_size();
        let frame = match encoded {
            Some(Ok(frame)) => frame,
            None => return Ok(false),
            // Outside what the server said it takes: keep the size.
            Some(Err(e)) => {
                tracing::warn!(width, height, error = %e, "the remote PC cannot take this size");
                return Ok(false);
            }
        };
        self.send(&frame).await?;
        Ok(true)
    }

    /// Whether [`resize`](Self::resize) can ask now: the server's Display
    /// Control channel is open and has said what it takes.
    pub fn can_resize(&mut self) -> bool {
        self.stage.display_control_ready() == Some(true)
    }

    /// The Deactivation-Reactivation Sequence: capabilities again, the
    /// desktop at the size the server now gives. Returns that size.
    async fn reactivate(&mut self) -> Result<(u16, u16), ConnectError> {
        let mut sequence = self.activation.create();
        let mut buf = WriteBuf::new();
        loop {
            match sequence.connection_activation_state() {
                ConnectionActivationState::Finalized {
                    desktop_size,
                    share_id,
                    static_channel_chunk_size,
                    enable_server_pointer,
                    pointer_software_rendering,
                    refresh_rect_support,
                    suppress_output_support,
                    ..
                } => {
                    check_desktop_size(desktop_size)?;
                    let reactivated = self.stage.reactivate(
                        self.activation.io_channel_id(),
                        self.activation.user_channel_id(),
                        share_id,
                        enable_server_pointer,
                        pointer_software_rendering,
                        static_channel_chunk_size,
                    );
                    if !reactivated {
                        return Err(rdp_err("the remote PC's channel settings changed unusably"));
                    }
                    #[cfg(target_arch = "wasm32")]
                    let _ = (refresh_rect_support, suppress_output_support);
                    let DesktopSize { width, height } = desktop_size;
                    self.image = DecodedImage::new(PixelFormat::RgbA32, width, height);
                    self.frame = FrameStatus::new(width, height);
                    // The new picture starts empty while a graphics pipeline
                    // that outlived the reactivation may send only what
                    // changes from the old one: ask for all of it. (Bitmap
                    // servers repaint after a reactivation by themselves.)
                    #[cfg(not(target_arch = "wasm32"))]
                    if self.stage.get_dvc::<graphics::Graphics>().is_some() {
                        let frames = self
                            .stage
                            .request_full_redraw(
                                width,
                                height,
                                refresh_rect_support,
                                suppress_output_support,
                            )
                            .map_err(rdp_err)?;
                        for frame in frames {
                            self.send(&frame).await?;
                        }
                    }
                    return Ok((width, height));
                }
                ConnectionActivationState::Redirected { .. } => {
                    return Err(rdp_err(
                        "the RDP server redirected the session elsewhere, which is not supported",
                    ));
                }
                _ => {}
            }
            ironrdp_tokio::single_sequence_step(&mut self.framed, &mut sequence, &mut buf)
                .await
                .map_err(rdp_err)?;
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), ConnectError> {
        self.traffic.sent += bytes.len() as u64;
        self.framed
            .write_all(bytes)
            .await
            .map_err(|e| ConnectError::ConnectionLost(lost(&e)))
    }

    async fn input(&mut self, ops: Vec<Operation>) -> Result<(), ConnectError> {
        let events = self.input.apply(ops);
        if events.is_empty() {
            return Ok(());
        }
        let outputs = self
            .stage
            .process_fastpath_input(&mut self.image, &events)
            .map_err(rdp_err)?;
        self.apply(outputs).await.map(drop)
    }

    /// Presses or releases a key by its set-1 scancode.
    pub async fn key(
        &mut self,
        scancode: u8,
        extended: bool,
        down: bool,
    ) -> Result<(), ConnectError> {
        let code = Scancode::from_u8(extended, scancode);
        let op = if down {
            Operation::KeyPressed(code)
        } else {
            Operation::KeyReleased(code)
        };
        self.input(vec![op]).await
    }

    /// Types a character (RDP Unicode input: what an IME or a layout produced).
    pub async fn unicode(&mut self, ch: char, down: bool) -> Result<(), ConnectError> {
        let op = if down {
            Operation::UnicodeKeyPressed(ch)
        } else {
            Operation::UnicodeKeyReleased(ch)
        };
        self.input(vec![op]).await
    }

    pub async fn mouse_button(
        &mut self,
        button: MouseButton,
        down: bool,
    ) -> Result<(), ConnectError> {
        let op = if down {
            Operation::MouseButtonPressed(button)
        } else {
            Operation::MouseButtonReleased(button)
        };
        self.input(vec![op]).await
    }

    /// Turns the wheel; positive units scroll up (or right when horizontal).
    pub async fn wheel(&mut self, units: i16, vertical: bool) -> Result<(), ConnectError> {
        self.input(vec![Operation::WheelRotations(WheelRotations {
            is_vertical: vertical,
            rotation_units: units,
        })])
        .await
    }

    /// Releases every key and button held, e.g. when the window loses focus.
    pub async fn release_all(&mut self) -> Result<(), ConnectError> {
        let events = self.input.release_all();
        if events.is_empty() {
            return Ok(());
        }
        let outputs = self
            .stage
            .process_fastpath_input(&mut self.image, &events)
            .map_err(rdp_err)?;
        self.apply(outputs).await.map(drop)
    }

    pub async fn mouse_move(&mut self, x: u16, y: u16) -> Result<(), ConnectError> {
        self.input(vec![Operation::MouseMove(MousePosition { x, y })])
            .await
    }

    /// Moves to (x, y) and clicks the left button.
    pub async fn click(&mut self, x: u16, y: u16) -> Result<(), ConnectError> {
        self.input(vec![
            Operation::MouseMove(MousePosition { x, y }),
            Operation::MouseButtonPressed(MouseButton::Left),
        ])
        .await?;
        self.input(vec![Operation::MouseButtonReleased(MouseButton::Left)])
            .await
    }

    /// Ends the session politely.
    pub async fn disconnect(&mut self) -> Result<(), ConnectError> {
        let outputs = self.stage.graceful_shutdown().map_err(rdp_err)?;
        self.apply(outputs).await.map(drop)
    }
}

/// The characters typing `text` presses: line breaks as Enter, other
/// control characters (a Windows line end's CR, tabs) left out.
fn typed(text: &str) -> impl Iterator<Item = char> + '_ {
    text.chars()
        .filter(|c| !c.is_control() || *c == '\n')
        .map(|c| if c == '\n' { '\r' } else { c })
}

/// Why a running session's connection broke, in plain words. A dropped
/// connection looks the same whether the office PC went away or the relay
/// restarted, so both are named.
fn lost(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe => {
            "the connection to the office PC broke off (the PC may have been switched off \
             or disconnected, or the relay restarted); connect again"
                .to_owned()
        }
        // The keep-alive's verdict (see proto::liveness).
        TimedOut => format!(
            "the office PC stopped answering: {e} (the network may be down, or this computer \
             slept); reconnecting"
        ),
        _ => format!("the connection to the office PC failed ({e})"),
    }
}

/// The bytes or size of an offered file, as the remote PC asks (read here,
/// at most [`clipboard::MAX_FILE_CHUNK`] at a time).
fn read_offered(files: &[std::fs::File], ask: FileAsk) -> FileContents {
    use std::io::{Read as _, Seek as _};
    let read = || -> std::io::Result<FileContents> {
        match ask {
            FileAsk::Size { file } => {
                let file = files.get(file).ok_or(std::io::ErrorKind::NotFound)?;
                Ok(FileContents::Size(file.metadata()?.len()))
            }
            FileAsk::Range {
                file,
                position,
                length,
            } => {
                let mut file = files.get(file).ok_or(std::io::ErrorKind::NotFound)?;
                file.seek(std::io::SeekFrom::Start(position))?;
                let mut data = Vec::with_capacity(length as usize);
                file.take(u64::from(length)).read_to_end(&mut data)?;
                Ok(FileContents::Data(data))
            }
        }
    };
    read().unwrap_or_else(|e| {
        tracing::warn!("a file offered on the clipboard cannot be read: {e}");
        FileContents::Failed
    })
}

#[cfg(test)]
mod tests {
    use super::{check_desktop_size, read_offered, FrameStatus, Keyboard, MAX_DESKTOP_EDGE};
    use proto::clipboard::{FileAsk, FileContents};

    /// What the office PC may ask of offered files: only what was offered,
    /// at most what it asked, nothing past the end invented.
    #[test]
    fn offered_files_answer_only_what_they_hold() {
        let dir = std::env::temp_dir().join(format!("thin-offered-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.bin");
        std::fs::write(&path, vec![7u8; 3000]).unwrap();
        let files = vec![std::fs::File::open(&path).unwrap()];
        let range = |file, position, length| FileAsk::Range {
            file,
            position,
            length,
        };
        assert_eq!(
            read_offered(&files, FileAsk::Size { file: 0 }),
            FileContents::Size(3000)
        );
        assert_eq!(
            read_offered(&files, range(0, 2990, 100)),
            FileContents::Data(vec![7; 10])
        );
        assert_eq!(
            read_offered(&files, range(0, 5000, 100)),
            FileContents::Data(Vec::new())
        );
        assert_eq!(read_offered(&files, range(1, 0, 100)), FileContents::Failed);
        assert_eq!(
            read_offered(&files, FileAsk::Size { file: 9 }),
            FileContents::Failed
        );
        // The path gone after the offer: the offered file is what is read.
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"other").unwrap();
        assert_eq!(
            read_offered(&files, range(0, 0, 4)),
            FileContents::Data(vec![7; 4])
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
    use ironrdp_connector::DesktopSize;

    #[test]
    fn a_server_cannot_make_the_client_hold_a_giant_desktop() {
        let size = |width, height| DesktopSize { width, height };
        assert!(check_desktop_size(size(MAX_DESKTOP_EDGE, MAX_DESKTOP_EDGE)).is_ok());
        assert!(check_desktop_size(size(200, 200)).is_ok());
        for (w, h) in [
            (MAX_DESKTOP_EDGE + 1, 600),
            (800, u16::MAX),
            (0, 600),
            (800, 0),
        ] {
            let refused = check_desktop_size(size(w, h)).unwrap_err().to_string();
            assert!(refused.contains(&format!("{w}×{h}")), "{refused}");
        }
    }

    #[test]
    fn japanese_layouts_and_locales_give_the_japanese_keyboard() {
        for name in ["jp", "jp(OADG109A)", "ja_JP.UTF-8", "ja-JP", "ja"] {
            assert_eq!(Keyboard::from_name(name), Keyboard::JAPANESE, "{name}");
        }
        for name in ["us", "en_US.UTF-8", "de", ""] {
            assert_eq!(Keyboard::from_name(name), Keyboard::US, "{name}");
        }
        assert_eq!(Keyboard::JAPANESE.layout, 0x411);
        assert_eq!(
            Keyboard::JAPANESE.kind,
            ironrdp_pdu::gcc::KeyboardType::JAPANESE
        );
    }

    #[test]
    fn frame_completes_when_every_cell_is_drawn() {
        let mut f = FrameStatus::new(100, 40);
        f.add(0, 0, 63, 39);
        assert!(!f.complete());
        f.add(64, 0, 99, 39);
        assert!(f.complete());
    }
}
