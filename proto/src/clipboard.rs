//! Text and pictures through the RDP clipboard channel (MS-RDPECLIP, on
//! ironrdp-cliprdr), the same for both ends: the client and the test
//! desktop. Text crosses as `CF_UNICODETEXT`, pictures as `CF_DIB` (what
//! every Windows program reads and writes; ironrdp-cliprdr-format converts
//! to and from PNG, which is what the apps hold).
//!
//! The channel reports what the other side asked for through callbacks that
//! cannot reach their owner's state, so [`CallRecorder`] only writes them
//! down; after each step of the channel its owner calls [`answer`] with the
//! text it offers, which turns the calls into the messages to send and the
//! text that arrived.

use ironrdp_cliprdr::backend::CliprdrBackend;
use ironrdp_cliprdr::pdu::{
    ClipboardFileAttributes, ClipboardFormat, ClipboardFormatId, ClipboardFormatName,
    ClipboardGeneralCapabilityFlags, FileContentsFlags, FileContentsRequest, FileContentsResponse,
    FileDescriptor, FormatDataRequest, FormatDataResponse, LockDataId, OwnedFormatDataResponse,
};
use ironrdp_cliprdr::{Cliprdr, Role};
pub use ironrdp_cliprdr::{CliprdrClient, CliprdrServer};
use ironrdp_pdu::PduResult;
use ironrdp_svc::SvcMessage;

mod fetch;
pub use fetch::{FetchFailure, FetchLimits, Fetched, FileFetch};

/// The most clipboard text carried either way, in UTF-16 bytes (about two
/// million characters: a long document, not a database dump). Larger text
/// is refused with [`Arrived::TooLarge`] or [`TooLarge`].
pub const MAX_TEXT_BYTES: usize = 4 << 20;

/// The largest picture carried either way, as a DIB: a 4K screenshot (33
/// MB at 32 bits a pixel) fits. Larger ones are refused with
/// [`Arrived::ImageTooLarge`] or [`ImageNotOffered::TooLarge`].
pub const MAX_IMAGE_BYTES: usize = 40 << 20;

/// What one side copied and offers the other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clip {
    /// Text (checked with [`check_size`]).
    Text(String),
    /// A picture, made with [`Clip::image`].
    Image(Dib),
    /// Files (names and sizes; their owner reads their bytes when the other
    /// side asks, see [`Answered::file_requests`]).
    Files(Vec<OfferedFile>),
}

/// A file offered on the clipboard: its name, without folders, and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedFile {
    pub name: String,
    pub size: u64,
}

/// A file or folder the other side copied. Its name has no folders in it
/// (ironrdp-cliprdr splits a path from the wire and drops drive letters
/// and `..`), but may still be one a file system here refuses: check it
/// with [`check_file_name`]. Its bytes are asked for with
/// [`ask_file_contents`] by `index`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    pub index: i32,
    pub name: String,
    /// The folders it is in within what was copied, `\` between them
    /// (None at the top).
    pub folder: Option<String>,
    /// A folder (its files follow in the list).
    pub is_folder: bool,
    /// As the other side says: to be checked against what arrives.
    pub size: Option<u64>,
}

/// The most bytes one file-contents answer carries: what a request is
/// served with, however much it asked.
pub const MAX_FILE_CHUNK: u32 = 1 << 20;

/// What to answer a request for a file's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileContents {
    Size(u64),
    Data(Vec<u8>),
    /// The file cannot be read (gone, no permission).
    Failed,
}

/// A picture as the clipboard channel carries it (`CF_DIB`), within
/// [`MAX_IMAGE_BYTES`].
#[derive(Clone, PartialEq, Eq)]
pub struct Dib(Vec<u8>);

impl std::fmt::Debug for Dib {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Dib({} bytes)", self.0.len())
    }
}

/// Why a picture copied here is not offered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageNotOffered {
    #[error(
        "the copied picture is too large for the remote clipboard ({0} bytes; at most \
         {MAX_IMAGE_BYTES})"
    )]
    TooLarge(usize),
    #[error("the copied picture cannot be read: {0}")]
    Unreadable(String),
}

impl Clip {
    /// A picture from its PNG bytes.
    pub fn image(png: &[u8]) -> Result<Clip, ImageNotOffered> {
        let (width, height) = png_size(png).map_err(ImageNotOffered::Unreadable)?;
        // The DIB's pixels, before converting: a huge picture is refused
        // without being decoded.
        let bytes = usize::try_from(u64::from(width) * u64::from(height) * 4).unwrap_or(usize::MAX);
        if bytes > MAX_IMAGE_BYTES {
            return Err(ImageNotOffered::TooLarge(bytes));
        }
        let dib = ironrdp_cliprdr_format::bitmap::png_to_cf_dib(png)
            .map_err(|e| ImageNotOffered::Unreadable(e.to_string()))?;
        if dib.len() > MAX_IMAGE_BYTES {
            return Err(ImageNotOffered::TooLarge(dib.len()));
        }
        Ok(Clip::Image(Dib(dib)))
    }

    fn formats(clip: Option<&Clip>) -> Vec<ClipboardFormat> {
        match clip {
            Some(Clip::Text(_)) => vec![ClipboardFormat::new(ClipboardFormatId::CF_UNICODETEXT)],
            Some(Clip::Image(_)) => vec![ClipboardFormat::new(ClipboardFormatId::CF_DIB)],
            // Files go with `Cliprdr::initiate_file_copy` (see `announce`).
            Some(Clip::Files(_)) | None => Vec::new(),
        }
    }
}

/// A PNG's width and height, from its header.
pub fn png_size(png: &[u8]) -> Result<(u32, u32), String> {
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let reader = decoder.read_info().map_err(|e| e.to_string())?;
    let info = reader.info();
    Ok((info.width, info.height))
}

/// Encodes `rgba` (`width`×`height`, 8 bits a channel) as PNG.
pub fn png_from_rgba(width: u32, height: u32, rgba: &[u8]) -> Result<Vec<u8>, String> {
    let mut png = Vec::new();
    let mut encoder = png::Encoder::new(&mut png, width, height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(rgba).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(png)
}

/// Decodes a PNG to RGBA, 8 bits a channel: width, height, pixels. At most
/// [`MAX_IMAGE_BYTES`] of pixels.
pub fn rgba_from_png(png: &[u8]) -> Result<(u32, u32, Vec<u8>), String> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    decoder.set_limits(png::Limits {
        bytes: MAX_IMAGE_BYTES,
    });
    let mut reader = decoder.read_info().map_err(|e| e.to_string())?;
    let (width, height) = (reader.info().width, reader.info().height);
    if u64::from(width) * u64::from(height) * 4 > MAX_IMAGE_BYTES as u64 {
        return Err(format!("the picture is too large ({width}×{height})"));
    }
    let size = reader
        .output_buffer_size()
        .ok_or("the picture is too large")?;
    let mut pixels = vec![0; size];
    let info = reader.next_frame(&mut pixels).map_err(|e| e.to_string())?;
    pixels.truncate(info.buffer_size());
    let rgba = match info.color_type {
        png::ColorType::Rgba => pixels,
        png::ColorType::Rgb => pixels
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        png::ColorType::GrayscaleAlpha => pixels
            .chunks_exact(2)
            .flat_map(|p| [p[0], p[0], p[0], p[1]])
            .collect(),
        png::ColorType::Grayscale => pixels.iter().flat_map(|&g| [g, g, g, 255]).collect(),
        png::ColorType::Indexed => return Err("a paletted PNG was not expanded".into()),
    };
    Ok((info.width, info.height, rgba))
}

/// A picture's size and a digest of its pixels (`64x48 rgba-sha256=…`),
/// the same whatever encoding carried it: for logs and tests.
pub fn describe_image(png: &[u8]) -> String {
    match rgba_from_png(png) {
        Ok((width, height, rgba)) => format!("{width}x{height} rgba-sha256={}", digest(&rgba)),
        Err(e) => format!("unreadable picture ({e})"),
    }
}

/// The first 8 bytes of `bytes`' SHA-256, in hex: enough to tell whether
/// what crossed is what left, in logs and tests.
pub fn digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    first_bytes_hex(&sha2::Sha256::digest(bytes))
}

/// [`digest`] of a file, read a piece at a time, with its size.
pub fn digest_file(path: &std::path::Path) -> std::io::Result<(u64, String)> {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    let size = std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok((size, first_bytes_hex(&hasher.finalize())))
}

/// A hash's first 8 bytes in hex.
fn first_bytes_hex(hash: &[u8]) -> String {
    hash[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// What the other side asked for, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    /// The channel is up (server: the client sent its first format list).
    Ready,
    /// The server is ready for the client's first format list.
    AnnounceLocal,
    /// The other side copied something: whether as Unicode text, and the
    /// picture format it offers (`CF_DIBV5`, which keeps what Windows puts
    /// in bit masks, before `CF_DIB`).
    RemoteCopied {
        text: bool,
        image: Option<ClipboardFormatId>,
        files: Option<ClipboardFormatId>,
    },
    /// The other side wants the contents of a file we offered.
    FileRequest(FileContentsRequest),
    /// The other side's copied files (the list we asked for).
    RemoteFiles {
        files: Vec<RemoteFile>,
        clip_data_id: Option<u32>,
    },
    /// Contents of the other side's file (None: it could not give them).
    FileData {
        stream_id: u32,
        data: Option<Vec<u8>>,
    },
    /// The other side pastes: it wants our data in this format.
    SendLocal(ClipboardFormatId),
    /// Our request for the other side's text was answered.
    Received(Option<Vec<u8>>),
    /// The other side took (or refused) the clipboard we offered.
    OfferAnswered(bool),
}

/// Writes down what the channel reports (see the module's comment).
#[derive(Debug, Default)]
pub struct CallRecorder {
    calls: Vec<Call>,
    /// The formats asked of the other side, in order: each answer is for
    /// the first (a peer may copy twice before the first answer comes);
    /// None for a file list (whose answer ironrdp-cliprdr reads itself,
    /// unless it fails).
    asked: std::collections::VecDeque<Option<ClipboardFormatId>>,
    /// What both sides agreed to, once they did.
    negotiated: Option<ClipboardGeneralCapabilityFlags>,
}

ironrdp_core::impl_as_any!(CallRecorder);

impl CliprdrBackend for CallRecorder {
    fn temporary_directory(&self) -> &str {
        // Only file paths would need it, and files go as streams.
        ".thin-clipboard"
    }

    fn client_capabilities(&self) -> ClipboardGeneralCapabilityFlags {
        // Files as streams of bytes, never as paths on this computer, and
        // past 2 GB (64-bit positions).
        ClipboardGeneralCapabilityFlags::STREAM_FILECLIP_ENABLED
            | ClipboardGeneralCapabilityFlags::FILECLIP_NO_FILE_PATHS
            | ClipboardGeneralCapabilityFlags::HUGE_FILE_SUPPORT_ENABLED
    }

    fn on_ready(&mut self) {
        self.calls.push(Call::Ready);
    }

    fn on_request_format_list(&mut self) {
        self.calls.push(Call::AnnounceLocal);
    }

    fn on_format_list_response(&mut self, ok: bool) {
        self.calls.push(Call::OfferAnswered(ok));
    }

    fn on_process_negotiated_capabilities(&mut self, flags: ClipboardGeneralCapabilityFlags) {
        self.negotiated = Some(flags);
    }

    fn on_remote_copy(&mut self, formats: &[ClipboardFormat]) {
        let has = |id| formats.iter().any(|f| f.id == id);
        let image = [ClipboardFormatId::CF_DIBV5, ClipboardFormatId::CF_DIB]
            .into_iter()
            .find(|id| has(*id));
        let files = formats
            .iter()
            .find(|f| {
                f.name
                    .as_ref()
                    .is_some_and(|n| n.value() == ClipboardFormatName::FILE_LIST.value())
            })
            .map(|f| f.id);
        self.calls.push(Call::RemoteCopied {
            text: has(ClipboardFormatId::CF_UNICODETEXT),
            image,
            files,
        });
    }

    fn on_format_data_request(&mut self, request: FormatDataRequest) {
        self.calls.push(Call::SendLocal(request.format));
    }

    fn on_format_data_response(&mut self, response: FormatDataResponse<'_>) {
        let data = (!response.is_error()).then(|| response.data().to_vec());
        self.calls.push(Call::Received(data));
    }

    fn on_file_contents_request(&mut self, request: FileContentsRequest) {
        self.calls.push(Call::FileRequest(request));
    }

    fn on_file_contents_response(&mut self, response: FileContentsResponse<'_>) {
        self.calls.push(Call::FileData {
            stream_id: response.stream_id(),
            data: (!response.is_error()).then(|| response.data().to_vec()),
        });
    }

    fn on_remote_file_list(&mut self, files: &[FileDescriptor], clip_data_id: Option<u32>) {
        let files = files
            .iter()
            .zip(0..)
            .map(|(file, index)| RemoteFile {
                index,
                name: file.name.clone(),
                folder: file.relative_path.clone().filter(|path| !path.is_empty()),
                is_folder: file
                    .attributes
                    .is_some_and(|a| a.contains(ClipboardFileAttributes::DIRECTORY)),
                size: file.file_size,
            })
            .collect();
        self.calls.push(Call::RemoteFiles {
            files,
            clip_data_id,
        });
    }
    fn on_lock(&mut self, _: LockDataId) {}
    fn on_unlock(&mut self, _: LockDataId) {}
}

/// A new clipboard channel of either role that carries text and pictures.
pub fn channel<R: Role>() -> Cliprdr<R> {
    Cliprdr::new(Box::new(CallRecorder::default()))
}

/// What arrived from the other side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arrived {
    Text(String),
    /// Text over [`MAX_TEXT_BYTES`]: not taken (the size in bytes).
    TooLarge(usize),
    /// A picture, as PNG.
    Image(Vec<u8>),
    /// A picture over [`MAX_IMAGE_BYTES`]: not taken (the size in bytes).
    ImageTooLarge(usize),
    /// A picture that is not a readable DIB: not taken (why).
    Unreadable(String),
    /// The other side copied files: their names and sizes (the bytes come
    /// when asked for with [`ask_file_contents`]).
    Files {
        files: Vec<RemoteFile>,
        clip_data_id: Option<u32>,
    },
    /// Bytes of a file asked for (None: the other side could not give
    /// them).
    FileData {
        stream_id: u32,
        data: Option<Vec<u8>>,
    },
}

/// Local text over [`MAX_TEXT_BYTES`], not offered (the size in bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the copied text is too large for the remote clipboard ({0} bytes; at most {MAX_TEXT_BYTES})"
)]
pub struct TooLarge(pub usize);

/// Checks that `text` may be offered to the other side.
pub fn check_size(text: &str) -> Result<(), TooLarge> {
    let bytes = text.encode_utf16().count() * 2;
    if bytes > MAX_TEXT_BYTES {
        return Err(TooLarge(bytes));
    }
    Ok(())
}

/// Offers `text` (checked with [`check_size`]) as this side's clipboard;
/// before the channel is ready nothing is sent (the offer goes with the
/// first format list, from [`answer`]).
pub fn offer<R: Role>(cliprdr: &mut Cliprdr<R>, clip: &Clip) -> PduResult<Vec<SvcMessage>> {
    if !cliprdr.is_ready() {
        return Ok(Vec::new());
    }
    announce(cliprdr, Some(clip))
}

/// The format list for `local`: files through ironrdp-cliprdr's file copy
/// (which answers the file list itself); where the other side takes no
/// files, an empty list (nothing on offer).
fn announce<R: Role>(cliprdr: &mut Cliprdr<R>, local: Option<&Clip>) -> PduResult<Vec<SvcMessage>> {
    if let Some(Clip::Files(files)) = local.filter(|_| cliprdr.is_ready()) {
        let descriptors = files
            .iter()
            .map(|f| FileDescriptor::new(f.name.clone()).with_file_size(f.size))
            .collect();
        if let Ok(list) = cliprdr.initiate_file_copy(descriptors) {
            return Ok(list.into());
        }
    }
    Ok(cliprdr.initiate_copy(&Clip::formats(local))?.into())
}

/// Whether the other side takes files (streams), once the channel's
/// capabilities are agreed (None before).
pub fn takes_files<R: Role>(cliprdr: &Cliprdr<R>) -> Option<bool> {
    let flags = cliprdr.downcast_backend::<CallRecorder>()?.negotiated?;
    Some(flags.contains(ClipboardGeneralCapabilityFlags::STREAM_FILECLIP_ENABLED))
}

/// Whether `name` can be a file's name on Windows (the office PC's, or a
/// home computer's): Windows refuses `\ / : * ? " < > |`, a trailing dot
/// or space and device names (CON, LPT1, COM¹ …), and a longer name than
/// 259 characters does not fit the list. Characters that change how a
/// name shows without being seen (right-to-left overrides, zero widths:
/// "invoice\u{202E}fdp.exe" shows as "invoiceexe.pdf") are refused too.
pub fn check_file_name(name: &str) -> Result<(), String> {
    // As it would be read: only what cannot be seen is spelt out.
    let shown: String = name
        .chars()
        .map(|c| match c.is_control() || INVISIBLE.contains(&c) {
            true => c.escape_unicode().to_string(),
            false => c.to_string(),
        })
        .collect();
    let bad = name
        .chars()
        .find(|c| "\\/:*?\"<>|".contains(*c) || c.is_control());
    if let Some(c) = bad {
        return Err(format!(
            "'{shown}' has '{}', which Windows does not allow in a file name",
            c.escape_debug()
        ));
    }
    if let Some(c) = name.chars().find(|c| INVISIBLE.contains(c)) {
        return Err(format!(
            "'{shown}' has an invisible character ({}) that hides its real name",
            c.escape_unicode()
        ));
    }
    if name.is_empty() || name.ends_with(['.', ' ']) || name.chars().count() > 259 {
        return Err(format!("'{shown}' is not a name Windows takes for a file"));
    }
    let stem = name
        .split('.')
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    let device = ["CONIN$", "CONOUT$", "COM0", "LPT0"].contains(&stem.as_str())
        || ["COM", "LPT"].iter().any(|port| {
            stem.strip_prefix(port)
                .is_some_and(|n| ["¹", "²", "³"].contains(&n))
        });
    if device || ironrdp_cliprdr::is_windows_device_name(name) {
        return Err(format!("'{shown}' is a device name on Windows"));
    }
    Ok(())
}

/// Format characters that change how a name shows while not being seen.
const INVISIBLE: &[char] = &[
    '\u{00AD}', '\u{061C}', '\u{180E}', '\u{200B}', '\u{200C}', '\u{200D}', '\u{200E}', '\u{200F}',
    '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2060}', '\u{2061}', '\u{2062}',
    '\u{2063}', '\u{2064}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', '\u{FEFF}',
];

/// The largest file offered or fetched: 4 GiB.
pub const MAX_OFFERED_FILE: u64 = u32::MAX as u64;

/// The largest file the channel can carry once its capabilities are
/// agreed: [`MAX_OFFERED_FILE`] where both sides take 64-bit positions,
/// else 2 GiB (ironrdp-cliprdr sends no request from further in). None
/// before the capabilities are agreed.
pub fn largest_file<R: Role>(cliprdr: &Cliprdr<R>) -> Option<u64> {
    let flags = cliprdr.downcast_backend::<CallRecorder>()?.negotiated?;
    let huge = ClipboardGeneralCapabilityFlags::HUGE_FILE_SUPPORT_ENABLED;
    Some(match flags.contains(huge) {
        true => MAX_OFFERED_FILE,
        false => 1 << 31,
    })
}

/// What a request for a file we offered asks: its size, or bytes from it
/// (at most [`MAX_FILE_CHUNK`]), by the file's place in our offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileAsk {
    Size {
        file: usize,
    },
    Range {
        file: usize,
        position: u64,
        length: u32,
    },
}

impl FileAsk {
    /// None for a request no file of ours can answer: a negative index, or
    /// one tagged with a lock of an earlier offer (locks are not offered,
    /// and the files it means may not be these).
    pub fn of(request: &FileContentsRequest) -> Option<FileAsk> {
        if request.data_id.is_some() {
            return None;
        }
        let file = usize::try_from(request.index).ok()?;
        Some(match request.flags.contains(FileContentsFlags::SIZE) {
            true => FileAsk::Size { file },
            false => FileAsk::Range {
                file,
                position: request.position,
                length: request.requested_size.min(MAX_FILE_CHUNK),
            },
        })
    }
}

/// Answers the other side's `request` for a file we offered.
pub fn give_file_contents<R: Role>(
    cliprdr: &Cliprdr<R>,
    request: &FileContentsRequest,
    contents: FileContents,
) -> PduResult<Vec<SvcMessage>> {
    let id = request.stream_id;
    let response = match contents {
        FileContents::Size(size) => FileContentsResponse::new_size_response(id, size),
        FileContents::Data(data) => FileContentsResponse::new_data_response(id, data),
        FileContents::Failed => FileContentsResponse::new_error(id),
    };
    Ok(cliprdr.submit_file_contents(response)?.into())
}

/// Asks the other side for `size` bytes (at most [`MAX_FILE_CHUNK`]) of its
/// file `index` from `position`; they arrive as [`Arrived::FileData`]
/// with this `stream_id`. Gives how many bytes were asked (no more may
/// come) with the messages.
pub fn ask_file_contents<R: Role>(
    cliprdr: &mut Cliprdr<R>,
    stream_id: u32,
    file: &RemoteFile,
    position: u64,
    size: u32,
    clip_data_id: Option<u32>,
) -> PduResult<(u32, Vec<SvcMessage>)> {
    // Not past the end the other side gave (ironrdp-cliprdr holds requests
    // to it).
    let requested_size = file
        .size
        .map_or(size, |total| {
            u32::try_from(total.saturating_sub(position))
                .unwrap_or(u32::MAX)
                .min(size)
        })
        .min(MAX_FILE_CHUNK);
    let request = FileContentsRequest {
        stream_id,
        index: file.index,
        flags: FileContentsFlags::RANGE,
        position,
        requested_size,
        data_id: clip_data_id,
    };
    let messages = cliprdr.request_file_contents(request)?.into();
    Ok((requested_size, messages))
}

/// What [`answer`] did.
#[derive(Debug, Default)]
pub struct Answered {
    /// To send on the channel.
    pub messages: Vec<SvcMessage>,
    /// Text from the other side.
    pub arrived: Vec<Arrived>,
    /// Whether the other side took our last offer, if it answered it.
    pub offer_taken: Option<bool>,
    /// The other side asks for the contents of files we offered: answer
    /// each with [`give_file_contents`].
    pub file_requests: Vec<FileContentsRequest>,
    /// The other side offered text, a picture or files (it arrives in
    /// `arrived` later).
    pub text_offered: bool,
    /// The other side copied something, whatever it is: what it copied
    /// before is no longer on offer there.
    pub remote_copied: bool,
}

/// Answers what the other side asked for since the last call, offering
/// `local` as this side's clipboard. The other side's copy is fetched as
/// soon as it is made, text where it has text, else a picture (a person
/// expects it at once; the size limits keep it bounded).
pub fn answer<R: Role>(cliprdr: &mut Cliprdr<R>, local: Option<&Clip>) -> PduResult<Answered> {
    let (calls, mut asked) = cliprdr
        .downcast_backend_mut::<CallRecorder>()
        .map(|recorder| {
            let asked = std::mem::take(&mut recorder.asked);
            (std::mem::take(&mut recorder.calls), asked)
        })
        .unwrap_or_default();
    let mut done = Answered::default();
    let (messages, arrived) = (&mut done.messages, &mut done.arrived);
    for call in calls {
        if matches!(call, Call::RemoteCopied { .. }) {
            done.remote_copied = true;
        }
        match call {
            Call::AnnounceLocal => messages.extend(announce(cliprdr, local)?),
            // A client's first list goes out before the channel is ready,
            // which files cannot: they follow once it is.
            Call::Ready
                if (R::is_server() && local.is_some()) || matches!(local, Some(Clip::Files(_))) =>
            {
                messages.extend(announce(cliprdr, local)?);
            }
            Call::Ready
            | Call::RemoteCopied {
                text: false,
                image: None,
                files: None,
            } => {}
            // Out of order (before the channel is up): nothing can be asked
            // or answered yet, and the session goes on.
            Call::RemoteCopied { .. } | Call::SendLocal(_) if !cliprdr.is_ready() => {}
            // Files before a picture (Explorer puts icons beside them); the
            // list (names and sizes, not the bytes) comes to the channel
            // itself, not as format data.
            Call::RemoteCopied {
                text: false,
                files: Some(list),
                ..
            } => {
                done.text_offered = true;
                asked.push_back(None);
                messages.extend(Vec::<SvcMessage>::from(cliprdr.initiate_paste(list)?));
            }
            Call::RemoteCopied { text, image, .. } => {
                done.text_offered = true;
                let format = match (text, image) {
                    (true, _) | (false, None) => ClipboardFormatId::CF_UNICODETEXT,
                    (false, Some(image)) => image,
                };
                asked.push_back(Some(format));
                messages.extend(Vec::<SvcMessage>::from(cliprdr.initiate_paste(format)?));
            }
            Call::FileRequest(request) => done.file_requests.push(request),
            Call::RemoteFiles {
                files,
                clip_data_id,
            } => {
                if asked.front() == Some(&None) {
                    asked.pop_front();
                }
                arrived.push(Arrived::Files {
                    files,
                    clip_data_id,
                });
            }
            Call::FileData { stream_id, data } => {
                arrived.push(Arrived::FileData { stream_id, data })
            }
            Call::SendLocal(format) => {
                let response = match local {
                    Some(Clip::Text(text)) if format == ClipboardFormatId::CF_UNICODETEXT => {
                        OwnedFormatDataResponse::new_unicode_string(text)
                    }
                    Some(Clip::Image(Dib(dib))) if format == ClipboardFormatId::CF_DIB => {
                        OwnedFormatDataResponse::new_data(dib.clone())
                    }
                    _ => OwnedFormatDataResponse::new_error(),
                };
                messages.extend(Vec::<SvcMessage>::from(
                    cliprdr.submit_format_data(response)?,
                ));
            }
            // An answer to nothing asked is not ours to believe.
            // A file list that failed or did not parse comes this way: its
            // bytes are not text.
            Call::Received(Some(data)) => {
                if let Some(Some(format)) = asked.pop_front() {
                    arrived.push(arrival(format, &data));
                }
            }
            // The other side could not give its data after all.
            Call::Received(None) => {
                asked.pop_front();
            }
            Call::OfferAnswered(taken) => done.offer_taken = Some(taken),
        }
    }
    if let Some(recorder) = cliprdr.downcast_backend_mut::<CallRecorder>() {
        recorder.asked = asked;
    }
    Ok(done)
}

/// What `data`, answering our request for `format`, brings.
fn arrival(format: ClipboardFormatId, data: &[u8]) -> Arrived {
    use ironrdp_cliprdr_format::bitmap::{dib_to_png, dibv5_to_png};
    let picture = format == ClipboardFormatId::CF_DIB || format == ClipboardFormatId::CF_DIBV5;
    match format {
        _ if picture && data.len() > MAX_IMAGE_BYTES => Arrived::ImageTooLarge(data.len()),
        ClipboardFormatId::CF_DIBV5 => {
            dibv5_to_png(data).map_or_else(|e| Arrived::Unreadable(e.to_string()), Arrived::Image)
        }
        ClipboardFormatId::CF_DIB => {
            dib_to_png(data).map_or_else(|e| Arrived::Unreadable(e.to_string()), Arrived::Image)
        }
        // The text may be MAX_TEXT_BYTES, then its 2-byte terminator.
        _ if data.len() > MAX_TEXT_BYTES + 2 => Arrived::TooLarge(data.len()),
        _ => Arrived::Text(utf16_text(data)),
    }
}

/// UTF-16LE up to the first NUL (the format's terminator); unpaired
/// surrogates become U+FFFD.
fn utf16_text(data: &[u8]) -> String {
    let units = data
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .take_while(|&unit| unit != 0);
    char::decode_utf16(units)
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironrdp_svc::SvcProcessor;

    /// Carries every message of one side to the other, answering after each
    /// step, until both are quiet; returns the text each side received.
    fn converse(
        client: &mut CliprdrClient,
        client_text: Option<&Clip>,
        server: &mut CliprdrServer,
        server_text: Option<&Clip>,
        mut to_client: Vec<SvcMessage>,
    ) -> (Vec<Arrived>, Vec<Arrived>) {
        let (mut at_client, mut at_server) = (Vec::new(), Vec::new());
        let mut to_server = Vec::new();
        for _ in 0..50 {
            if to_client.is_empty() && to_server.is_empty() {
                return (at_client, at_server);
            }
            for message in std::mem::take(&mut to_client) {
                let payload = message.encode_unframed_pdu().unwrap();
                to_server.extend(client.process(&payload).unwrap());
                let done = answer(client, client_text).unwrap();
                to_server.extend(done.messages);
                at_client.extend(done.arrived);
            }
            for message in std::mem::take(&mut to_server) {
                let payload = message.encode_unframed_pdu().unwrap();
                to_client.extend(server.process(&payload).unwrap());
                let done = answer(server, server_text).unwrap();
                to_client.extend(done.messages);
                at_server.extend(done.arrived);
            }
        }
        panic!("the clipboard conversation did not settle");
    }

    #[test]
    fn text_crosses_both_ways() {
        let mut client = channel();
        let mut server = channel();
        let start = server.start().unwrap();
        let home = Clip::Text("ホームの文字 ✓".into());
        let office = Clip::Text("オフィスの文字 ✓".into());
        let (at_client, at_server) =
            converse(&mut client, Some(&home), &mut server, Some(&office), start);
        assert_eq!(at_client, [Arrived::Text("オフィスの文字 ✓".into())]);
        assert_eq!(at_server, [Arrived::Text("ホームの文字 ✓".into())]);

        // A later copy on the client reaches the server, which takes it.
        let copy = offer(&mut client, &home).unwrap();
        let mut to_client = Vec::new();
        for message in copy {
            to_client.extend(
                server
                    .process(&message.encode_unframed_pdu().unwrap())
                    .unwrap(),
            );
        }
        let done = answer(&mut server, None).unwrap();
        assert!(
            !done.messages.is_empty(),
            "the server asks for the new text"
        );
        to_client.extend(done.messages);
        for message in to_client {
            client
                .process(&message.encode_unframed_pdu().unwrap())
                .unwrap();
        }
        let done = answer(&mut client, Some(&home)).unwrap();
        assert_eq!(done.offer_taken, Some(true));
    }

    /// Files offered by the client reach the server as a list, and their
    /// bytes come in ranges as the server asks, answered from the client's
    /// own reads; a read that fails is refused, not invented.
    #[test]
    fn files_cross_from_the_client_in_ranges() {
        const SIZE: usize = 2_500_000;
        let contents: Vec<u8> = (0..SIZE).map(|b| (b * 7 % 251) as u8).collect();
        let home = Clip::Files(vec![
            OfferedFile {
                name: "見積書.xlsx".into(),
                size: SIZE as u64,
            },
            OfferedFile {
                name: "gone.txt".into(),
                size: 10,
            },
        ]);
        let mut client: CliprdrClient = channel();
        let mut server: CliprdrServer = channel();
        let mut to_client = server.start().unwrap();
        let mut to_server = Vec::new();
        let mut listed: Option<(Vec<RemoteFile>, Option<u32>)> = None;
        let mut received: Vec<u8> = Vec::new();
        let mut failed = false;
        for _ in 0..100 {
            for message in std::mem::take(&mut to_client) {
                let payload = message.encode_unframed_pdu().unwrap();
                to_server.extend(client.process(&payload).unwrap());
                let done = answer(&mut client, Some(&home)).unwrap();
                to_server.extend(done.messages);
                for request in done.file_requests {
                    let answer = match request.index {
                        0 => {
                            let start = request.position as usize;
                            let end = (start + request.requested_size as usize).min(SIZE);
                            FileContents::Data(contents[start..end].to_vec())
                        }
                        _ => FileContents::Failed,
                    };
                    to_server.extend(give_file_contents(&client, &request, answer).unwrap());
                }
            }
            for message in std::mem::take(&mut to_server) {
                let payload = message.encode_unframed_pdu().unwrap();
                to_client.extend(server.process(&payload).unwrap());
                let done = answer(&mut server, None).unwrap();
                to_client.extend(done.messages);
                for arrived in done.arrived {
                    match arrived {
                        Arrived::Files {
                            files,
                            clip_data_id,
                        } => {
                            assert_eq!(files.len(), 2);
                            assert_eq!(files[0].name, "見積書.xlsx");
                            assert_eq!(files[0].size, Some(SIZE as u64));
                            let ask = ask_file_contents(
                                &mut server,
                                1,
                                &files[0],
                                0,
                                u32::MAX,
                                clip_data_id,
                            );
                            to_client.extend(ask.unwrap().1);
                            listed = Some((files, clip_data_id));
                        }
                        Arrived::FileData {
                            stream_id: 1,
                            data: Some(data),
                        } => {
                            assert!(data.len() <= MAX_FILE_CHUNK as usize);
                            received.extend(data);
                            let (files, clip) = listed.as_ref().unwrap();
                            let (file, id, at) = match received.len() < SIZE {
                                true => (&files[0], 1, received.len() as u64),
                                false => (&files[1], 2, 0),
                            };
                            let ask = ask_file_contents(&mut server, id, file, at, u32::MAX, *clip);
                            to_client.extend(ask.unwrap().1);
                        }
                        Arrived::FileData {
                            stream_id: 2,
                            data: None,
                        } => failed = true,
                        other => panic!("{other:?}"),
                    }
                }
            }
            if to_client.is_empty() && to_server.is_empty() {
                break;
            }
        }
        assert!(listed.is_some(), "no file list arrived");
        assert!(received == contents, "{} bytes arrived", received.len());
        assert!(failed, "the unreadable file was not refused");
    }

    /// Files offered by the server come home with a [`FileFetch`]: whole,
    /// in ranges, an empty one without asking; a file the server cannot
    /// read, one over the fetch's limits (of a file, of all together), one
    /// that grows past its announced size (or gives more than asked) and
    /// one that ends short of it are refused, and the fetch goes on past
    /// them.
    #[test]
    fn files_cross_from_the_server_with_a_fetch() {
        const SIZE: usize = 2_300_000;
        let big: Vec<u8> = (0..SIZE).map(|b| (b * 13 % 251) as u8).collect();
        let offered = [
            ("議事録.docx", SIZE as u64),
            ("empty.txt", 0),
            ("unreadable.txt", 10),
            ("huge.iso", 3_000_001),
            ("grows.log", 4),
            ("short.txt", 10),
            ("over-total.bin", 20),
            ("after.txt", 5),
        ];
        let office = Clip::Files(
            offered
                .iter()
                .map(|(name, size)| OfferedFile {
                    name: (*name).into(),
                    size: *size,
                })
                .collect(),
        );
        // What the server's owner answers: the truth, except for the
        // unreadable file and the one that gives more than it announced.
        let serve = |request: &FileContentsRequest| match FileAsk::of(request) {
            Some(FileAsk::Range {
                file: 0,
                position,
                length,
            }) => {
                let start = position as usize;
                let end = (start + length as usize).min(SIZE);
                FileContents::Data(big[start..end].to_vec())
            }
            Some(FileAsk::Range { file: 4, .. }) => FileContents::Data(b"longer".to_vec()),
            Some(FileAsk::Range {
                file: 5,
                position: 0,
                ..
            }) => FileContents::Data(b"shor".to_vec()),
            Some(FileAsk::Range { file: 5, .. }) => FileContents::Data(Vec::new()),
            Some(FileAsk::Range { file: 7, .. }) => FileContents::Data(b"after".to_vec()),
            _ => FileContents::Failed,
        };
        let mut client: CliprdrClient = channel();
        let mut server: CliprdrServer = channel();
        let mut to_client = server.start().unwrap();
        let mut to_server = Vec::new();
        let mut fetch: Option<FileFetch> = None;
        let mut fetched: Vec<Fetched> = Vec::new();
        for _ in 0..100 {
            for message in std::mem::take(&mut to_client) {
                let payload = message.encode_unframed_pdu().unwrap();
                to_server.extend(client.process(&payload).unwrap());
                let done = answer(&mut client, None).unwrap();
                to_server.extend(done.messages);
                for arrived in done.arrived {
                    let taken = match arrived {
                        Arrived::Files {
                            files,
                            clip_data_id,
                        } => {
                            assert_eq!(files.len(), offered.len());
                            let limits = FetchLimits {
                                file: 3_000_000,
                                total: SIZE as u64 + 10,
                            };
                            fetch = Some(FileFetch::new(files, clip_data_id, 7, limits));
                            Vec::new()
                        }
                        Arrived::FileData { stream_id, data } => {
                            let fetch = fetch.as_mut().expect("a list first");
                            assert_eq!(fetch.take(stream_id + 100, None), None, "not ours");
                            fetch.take(stream_id, data).expect("an answer of the fetch")
                        }
                        other => panic!("{other:?}"),
                    };
                    fetched.extend(taken);
                    let (settled, ask) = fetch.as_mut().unwrap().ask(&mut client);
                    fetched.extend(settled);
                    to_server.extend(ask);
                }
            }
            for message in std::mem::take(&mut to_server) {
                let payload = message.encode_unframed_pdu().unwrap();
                to_client.extend(server.process(&payload).unwrap());
                let done = answer(&mut server, Some(&office)).unwrap();
                to_client.extend(done.messages);
                for request in &done.file_requests {
                    let contents = serve(request);
                    to_client.extend(give_file_contents(&server, request, contents).unwrap());
                }
            }
            if to_client.is_empty() && to_server.is_empty() {
                break;
            }
        }
        let fetch = fetch.expect("the list arrived");
        assert!(fetch.is_done());
        assert_eq!(fetch.next_first_stream(), 7 + offered.len() as u32);
        let mut first = Vec::new();
        let mut ends = Vec::new();
        for step in fetched {
            match step {
                Fetched::Data { file: 0, data } => first.extend(data),
                Fetched::Data { file: 5, data } => assert_eq!(data, b"shor"),
                Fetched::Data { file: 7, data } => assert_eq!(data, b"after"),
                Fetched::Data { file, .. } => panic!("bytes of file {file}"),
                end => ends.push(end),
            }
        }
        assert!(first == big, "{} bytes of the first file", first.len());
        let failed = |file, why| Fetched::Failed { file, why };
        assert_eq!(
            ends,
            [
                Fetched::Done {
                    file: 0,
                    bytes: SIZE as u64
                },
                Fetched::Done { file: 1, bytes: 0 },
                failed(2, FetchFailure::Refused),
                failed(3, FetchFailure::TooLarge(10)),
                failed(4, FetchFailure::Overlong),
                failed(5, FetchFailure::Truncated),
                failed(6, FetchFailure::TooLarge(6)),
                Fetched::Done { file: 7, bytes: 5 },
            ]
        );
    }

    #[test]
    fn file_names_windows_refuses_are_refused_and_locked_requests_too() {
        for bad in [
            "a:b.txt",
            "a\\b",
            "CON",
            "com1.txt",
            "end.",
            "end ",
            "",
            "q?.txt",
            "COM¹.txt",
            "conout$",
            "LPT0",
            "invoice\u{202E}fdp.exe",
            "zero\u{200B}width",
        ] {
            assert!(check_file_name(bad).is_err(), "{bad}");
        }
        for good in ["見積書.xlsx", "report v2.pdf", ".profile", "a.b.c"] {
            assert!(check_file_name(good).is_ok(), "{good}");
        }
        let mut request = FileContentsRequest {
            stream_id: 1,
            index: 0,
            flags: FileContentsFlags::RANGE,
            position: 5,
            requested_size: u32::MAX,
            data_id: None,
        };
        assert_eq!(
            FileAsk::of(&request),
            Some(FileAsk::Range {
                file: 0,
                position: 5,
                length: MAX_FILE_CHUNK
            })
        );
        request.flags = FileContentsFlags::SIZE;
        assert_eq!(FileAsk::of(&request), Some(FileAsk::Size { file: 0 }));
        request.data_id = Some(3);
        assert_eq!(FileAsk::of(&request), None);
        request.data_id = None;
        request.index = -1;
        assert_eq!(FileAsk::of(&request), None);
    }

    /// A file list that fails comes back as format data: it does not take
    /// the place of the text asked after it.
    #[test]
    fn a_failed_file_list_does_not_take_the_text_s_answer() {
        let mut server: CliprdrServer = channel();
        let recorder = server.downcast_backend_mut::<CallRecorder>().unwrap();
        recorder
            .asked
            .extend([None, Some(ClipboardFormatId::CF_UNICODETEXT)]);
        recorder.calls.extend([
            Call::Received(Some(vec![0xff; 6])),
            Call::Received(Some(vec![0x41, 0, 0, 0])),
        ]);
        let arrived = answer(&mut server, None).unwrap().arrived;
        assert_eq!(arrived, [Arrived::Text("A".into())]);
    }

    /// A 3×2 picture, every channel of it different, partly transparent.
    fn picture() -> (Vec<u8>, Vec<u8>) {
        let rgba: Vec<u8> = (0..24u8).map(|i| i * 10 + 5).collect();
        (png_from_rgba(3, 2, &rgba).unwrap(), rgba)
    }

    #[test]
    fn pictures_cross_both_ways_pixel_for_pixel() {
        let (png, rgba) = picture();
        let grey = png_from_rgba(1, 1, &[9, 9, 9, 255]).unwrap();
        let mut client = channel();
        let mut server = channel();
        let start = server.start().unwrap();
        let (home, office) = (Clip::image(&png).unwrap(), Clip::image(&grey).unwrap());
        let (at_client, at_server) =
            converse(&mut client, Some(&home), &mut server, Some(&office), start);
        let [Arrived::Image(from_office)] = &at_client[..] else {
            panic!("{at_client:?}");
        };
        let [Arrived::Image(from_home)] = &at_server[..] else {
            panic!("{at_server:?}");
        };
        assert_eq!(
            rgba_from_png(from_office).unwrap(),
            (1, 1, vec![9, 9, 9, 255])
        );
        // CF_DIB has no transparency (as between Windows programs): the
        // colours arrive exact, every pixel opaque.
        let opaque: Vec<u8> = rgba
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect();
        assert_eq!(rgba_from_png(from_home).unwrap(), (3, 2, opaque.clone()));
        let opaque_png = png_from_rgba(3, 2, &opaque).unwrap();
        assert_eq!(describe_image(from_home), describe_image(&opaque_png));
    }

    /// Text wins where the other side copied both (a spreadsheet's cells
    /// come as text and as a picture of them).
    #[test]
    fn text_is_taken_before_a_picture_of_it() {
        let mut client: CliprdrClient = channel();
        let recorder = client.downcast_backend_mut::<CallRecorder>().unwrap();
        recorder.calls.push(Call::RemoteCopied {
            text: true,
            image: Some(ClipboardFormatId::CF_DIB),
            files: None,
        });
        // (Not ready: nothing is asked; the choice is seen on a ready one.)
        let mut server: CliprdrServer = channel();
        let start = server.start().unwrap();
        let _ = converse(&mut client, None, &mut server, None, start);
        let recorder = client.downcast_backend_mut::<CallRecorder>().unwrap();
        recorder.calls.push(Call::RemoteCopied {
            text: true,
            image: Some(ClipboardFormatId::CF_DIB),
            files: None,
        });
        let done = answer(&mut client, None).unwrap();
        assert!(done.text_offered);
        let recorder = client.downcast_backend_mut::<CallRecorder>().unwrap();
        assert_eq!(recorder.asked, [Some(ClipboardFormatId::CF_UNICODETEXT)]);
    }

    /// A peer that copies twice before the first answer (Word and Firefox
    /// send two format lists at once): each answer is read as what was
    /// asked first; an answer to nothing asked is dropped.
    #[test]
    fn answers_are_matched_to_requests_in_order() {
        let (png, _) = picture();
        let Clip::Image(Dib(dib)) = Clip::image(&png).unwrap() else {
            unreachable!()
        };
        let text: Vec<u8> = "abc"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .chain([0, 0])
            .collect();
        let mut client: CliprdrClient = channel();
        let recorder = client.downcast_backend_mut::<CallRecorder>().unwrap();
        recorder.asked.extend([
            Some(ClipboardFormatId::CF_UNICODETEXT),
            Some(ClipboardFormatId::CF_DIB),
        ]);
        recorder.calls.extend([
            Call::Received(Some(text.clone())),
            Call::Received(Some(dib)),
            Call::Received(Some(text)),
        ]);
        let arrived = answer(&mut client, None).unwrap().arrived;
        assert!(
            matches!(&arrived[..], [Arrived::Text(t), Arrived::Image(_)] if t == "abc"),
            "{arrived:?}"
        );
        // A failed answer takes its request with it.
        let recorder = client.downcast_backend_mut::<CallRecorder>().unwrap();
        recorder.asked.extend([
            Some(ClipboardFormatId::CF_DIB),
            Some(ClipboardFormatId::CF_UNICODETEXT),
        ]);
        recorder.calls.extend([
            Call::Received(None),
            Call::Received(Some(vec![0x41, 0, 0, 0])),
        ]);
        let arrived = answer(&mut client, None).unwrap().arrived;
        assert_eq!(arrived, [Arrived::Text("A".into())]);
    }

    /// A picture over the limit, or one that is not a DIB, is not taken;
    /// one too large to offer is refused before it is decoded.
    #[test]
    fn pictures_have_limits_and_broken_ones_are_refused() {
        let mut client: CliprdrClient = channel();
        let mut arrive = |data: Vec<u8>| {
            let recorder = client.downcast_backend_mut::<CallRecorder>().unwrap();
            recorder.asked.push_back(Some(ClipboardFormatId::CF_DIB));
            recorder.calls.push(Call::Received(Some(data)));
            answer(&mut client, None).unwrap().arrived
        };
        assert_eq!(
            arrive(vec![0; MAX_IMAGE_BYTES + 1]),
            [Arrived::ImageTooLarge(MAX_IMAGE_BYTES + 1)]
        );
        assert!(matches!(
            &arrive(vec![1, 2, 3])[..],
            [Arrived::Unreadable(_)]
        ));
        let mut header = [0u8; 40];
        header[0] = 40;
        header[4..8].copy_from_slice(&i32::MAX.to_le_bytes());
        assert!(matches!(
            &arrive(header.to_vec())[..],
            [Arrived::Unreadable(_)]
        ));

        // A 4000×3000 picture is 48 MB of pixels: refused from its header.
        let mut huge = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut huge, 4000, 3000);
            encoder.set_color(png::ColorType::Grayscale);
            let mut writer = encoder.write_header().unwrap();
            writer.write_image_data(&vec![0; 4000 * 3000]).unwrap();
        }
        assert_eq!(
            Clip::image(&huge),
            Err(ImageNotOffered::TooLarge(48_000_000))
        );
        assert!(matches!(
            Clip::image(b"not a png"),
            Err(ImageNotOffered::Unreadable(_))
        ));
    }

    #[test]
    fn nothing_is_offered_when_nothing_was_copied() {
        let mut client = channel();
        let mut server = channel();
        let start = server.start().unwrap();
        let (at_client, at_server) = converse(&mut client, None, &mut server, None, start);
        assert!(at_client.is_empty() && at_server.is_empty());
        assert!(client.is_ready());
    }

    /// A peer that copies and asks for data before the channel is up gets
    /// nothing, and the channel is not broken for it.
    #[test]
    fn out_of_order_messages_are_ignored() {
        let mut client: CliprdrClient = channel();
        let mut server: CliprdrServer = channel();
        let secret = Clip::Text("secret".into());
        let mut early =
            Vec::<SvcMessage>::from(server.initiate_copy(&Clip::formats(Some(&secret))).unwrap());
        early.push(
            ironrdp_cliprdr::pdu::ClipboardPdu::FormatDataRequest(FormatDataRequest {
                format: ClipboardFormatId::CF_UNICODETEXT,
            })
            .into(),
        );
        for message in early {
            let payload = message.encode_unframed_pdu().unwrap();
            let _ = client.process(&payload);
            let done = answer(&mut client, Some(&secret)).unwrap();
            assert!(done.messages.is_empty() && done.arrived.is_empty());
        }
        // The channel still comes up as usual afterwards.
        let start = server.start().unwrap();
        let late = Clip::Text("late".into());
        let (at_client, _) = converse(&mut client, None, &mut server, Some(&late), start);
        assert_eq!(at_client, [Arrived::Text("late".into())]);
    }

    /// Text of exactly the limit arrives (with its terminator); more does not.
    #[test]
    fn the_limit_holds_for_arriving_text() {
        let mut client: CliprdrClient = channel();
        let mut arrive = |data: Vec<u8>| {
            let recorder = client.downcast_backend_mut::<CallRecorder>().unwrap();
            recorder
                .asked
                .push_back(Some(ClipboardFormatId::CF_UNICODETEXT));
            recorder.calls.push(Call::Received(Some(data)));
            answer(&mut client, None).unwrap().arrived
        };
        let mut at_limit = "a"
            .repeat(MAX_TEXT_BYTES / 2)
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect::<Vec<u8>>();
        at_limit.extend([0, 0]);
        let arrived = arrive(at_limit.clone());
        assert!(matches!(&arrived[..], [Arrived::Text(t)] if t.len() == MAX_TEXT_BYTES / 2));
        at_limit.extend([0x41, 0]);
        assert_eq!(arrive(at_limit), [Arrived::TooLarge(MAX_TEXT_BYTES + 4)]);
    }

    #[test]
    fn sizes_and_text_decoding() {
        assert!(check_size(&"a".repeat(MAX_TEXT_BYTES / 2)).is_ok());
        assert_eq!(
            check_size(&"a".repeat(MAX_TEXT_BYTES / 2 + 1)),
            Err(TooLarge(MAX_TEXT_BYTES + 2))
        );
        assert_eq!(utf16_text(&[0x41, 0, 0x42, 0, 0, 0, 0x43, 0]), "AB");
        assert_eq!(utf16_text(&[0x00, 0xd8, 0x41, 0]), "\u{fffd}A");
        assert_eq!(utf16_text(&[0x41]), "");
    }
}
