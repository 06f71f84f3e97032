//! Text through the RDP clipboard channel (MS-RDPECLIP, on ironrdp-cliprdr),
//! the same for both ends: the client and the test desktop.
//!
//! The channel reports what the other side asked for through callbacks that
//! cannot reach their owner's state, so [`CallRecorder`] only writes them
//! down; after each step of the channel its owner calls [`answer`] with the
//! text it offers, which turns the calls into the messages to send and the
//! text that arrived.

use ironrdp_cliprdr::backend::CliprdrBackend;
use ironrdp_cliprdr::pdu::{
    ClipboardFormat, ClipboardFormatId, ClipboardGeneralCapabilityFlags, FileContentsRequest,
    FileContentsResponse, FormatDataRequest, FormatDataResponse, LockDataId,
    OwnedFormatDataResponse,
};
use ironrdp_cliprdr::{Cliprdr, Role};
pub use ironrdp_cliprdr::{CliprdrClient, CliprdrServer};
use ironrdp_pdu::PduResult;
use ironrdp_svc::SvcMessage;

/// The most clipboard text carried either way, in UTF-16 bytes (about two
/// million characters: a long document, not a database dump). Larger text
/// is refused with [`Arrived::TooLarge`] or [`TooLarge`].
pub const MAX_TEXT_BYTES: usize = 4 << 20;

/// What the other side asked for, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    /// The channel is up (server: the client sent its first format list).
    Ready,
    /// The server is ready for the client's first format list.
    AnnounceLocal,
    /// The other side copied something; `text` if it has Unicode text.
    RemoteCopied { text: bool },
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
}

ironrdp_core::impl_as_any!(CallRecorder);

impl CliprdrBackend for CallRecorder {
    fn temporary_directory(&self) -> &str {
        // Only files need it, and no files are offered.
        ".thin-clipboard"
    }

    fn client_capabilities(&self) -> ClipboardGeneralCapabilityFlags {
        ClipboardGeneralCapabilityFlags::empty()
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

    fn on_process_negotiated_capabilities(&mut self, _: ClipboardGeneralCapabilityFlags) {}

    fn on_remote_copy(&mut self, formats: &[ClipboardFormat]) {
        let text = formats
            .iter()
            .any(|f| f.id == ClipboardFormatId::CF_UNICODETEXT);
        self.calls.push(Call::RemoteCopied { text });
    }

    fn on_format_data_request(&mut self, request: FormatDataRequest) {
        self.calls.push(Call::SendLocal(request.format));
    }

    fn on_format_data_response(&mut self, response: FormatDataResponse<'_>) {
        let data = (!response.is_error()).then(|| response.data().to_vec());
        self.calls.push(Call::Received(data));
    }

    // Files are neither offered nor fetched: nothing to answer.
    fn on_file_contents_request(&mut self, _: FileContentsRequest) {}
    fn on_file_contents_response(&mut self, _: FileContentsResponse<'_>) {}
    fn on_lock(&mut self, _: LockDataId) {}
    fn on_unlock(&mut self, _: LockDataId) {}
}

/// A new clipboard channel of either role that carries text.
pub fn channel<R: Role>() -> Cliprdr<R> {
    Cliprdr::new(Box::new(CallRecorder::default()))
}

/// Text that arrived from the other side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arrived {
    Text(String),
    /// Over [`MAX_TEXT_BYTES`]: not taken (the size in bytes).
    TooLarge(usize),
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
pub fn offer<R: Role>(cliprdr: &mut Cliprdr<R>) -> PduResult<Vec<SvcMessage>> {
    if !cliprdr.is_ready() {
        return Ok(Vec::new());
    }
    Ok(cliprdr.initiate_copy(&text_formats(true))?.into())
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
    /// The other side offered text (it arrives in `arrived` later).
    pub text_offered: bool,
}

/// Answers what the other side asked for since the last call, offering
/// `local` (text already checked with [`check_size`]) as this side's
/// clipboard. The other side's text is fetched as soon as it is copied
/// (text is small; a person expects it at once).
pub fn answer<R: Role>(cliprdr: &mut Cliprdr<R>, local: Option<&str>) -> PduResult<Answered> {
    let calls = cliprdr
        .downcast_backend_mut::<CallRecorder>()
        .map(|recorder| std::mem::take(&mut recorder.calls))
        .unwrap_or_default();
    let mut done = Answered::default();
    let (messages, arrived) = (&mut done.messages, &mut done.arrived);
    for call in calls {
        match call {
            Call::AnnounceLocal => {
                let list = cliprdr.initiate_copy(&text_formats(local.is_some()))?;
                messages.extend(Vec::<SvcMessage>::from(list));
            }
            Call::Ready if R::is_server() && local.is_some() => {
                messages.extend(Vec::<SvcMessage>::from(
                    cliprdr.initiate_copy(&text_formats(true))?,
                ));
            }
            Call::Ready | Call::RemoteCopied { text: false } => {}
            // Out of order (before the channel is up): nothing can be asked
            // or answered yet, and the session goes on.
            Call::RemoteCopied { .. } | Call::SendLocal(_) if !cliprdr.is_ready() => {}
            Call::RemoteCopied { text: true } => {
                done.text_offered = true;
                messages.extend(Vec::<SvcMessage>::from(
                    cliprdr.initiate_paste(ClipboardFormatId::CF_UNICODETEXT)?,
                ));
            }
            Call::SendLocal(format) => {
                let response = match local {
                    Some(text) if format == ClipboardFormatId::CF_UNICODETEXT => {
                        OwnedFormatDataResponse::new_unicode_string(text)
                    }
                    _ => OwnedFormatDataResponse::new_error(),
                };
                messages.extend(Vec::<SvcMessage>::from(
                    cliprdr.submit_format_data(response)?,
                ));
            }
            // The text may be MAX_TEXT_BYTES, then its 2-byte terminator.
            Call::Received(Some(data)) if data.len() > MAX_TEXT_BYTES + 2 => {
                arrived.push(Arrived::TooLarge(data.len()));
            }
            Call::Received(Some(data)) => arrived.push(Arrived::Text(utf16_text(&data))),
            // The other side could not give its data after all.
            Call::Received(None) => {}
            Call::OfferAnswered(taken) => done.offer_taken = Some(taken),
        }
    }
    Ok(done)
}

fn text_formats(text: bool) -> Vec<ClipboardFormat> {
    match text {
        true => vec![ClipboardFormat::new(ClipboardFormatId::CF_UNICODETEXT)],
        false => Vec::new(),
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
        client_text: Option<&str>,
        server: &mut CliprdrServer,
        server_text: Option<&str>,
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
        let (at_client, at_server) = converse(
            &mut client,
            Some("ホームの文字 ✓"),
            &mut server,
            Some("オフィスの文字 ✓"),
            start,
        );
        assert_eq!(at_client, [Arrived::Text("オフィスの文字 ✓".into())]);
        assert_eq!(at_server, [Arrived::Text("ホームの文字 ✓".into())]);

        // A later copy on the client reaches the server, which takes it.
        let copy = offer(&mut client).unwrap();
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
        let done = answer(&mut client, Some("ホームの文字 ✓")).unwrap();
        assert_eq!(done.offer_taken, Some(true));
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
        let mut early = Vec::<SvcMessage>::from(server.initiate_copy(&text_formats(true)).unwrap());
        early.push(
            ironrdp_cliprdr::pdu::ClipboardPdu::FormatDataRequest(FormatDataRequest {
                format: ClipboardFormatId::CF_UNICODETEXT,
            })
            .into(),
        );
        for message in early {
            let payload = message.encode_unframed_pdu().unwrap();
            let _ = client.process(&payload);
            let done = answer(&mut client, Some("secret")).unwrap();
            assert!(done.messages.is_empty() && done.arrived.is_empty());
        }
        // The channel still comes up as usual afterwards.
        let start = server.start().unwrap();
        let (at_client, _) = converse(&mut client, None, &mut server, Some("late"), start);
        assert_eq!(at_client, [Arrived::Text("late".into())]);
    }

    /// Text of exactly the limit arrives (with its terminator); more does not.
    #[test]
    fn the_limit_holds_for_arriving_text() {
        let mut client: CliprdrClient = channel();
        let mut arrive = |data: Vec<u8>| {
            let recorder = client.downcast_backend_mut::<CallRecorder>().unwrap();
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
