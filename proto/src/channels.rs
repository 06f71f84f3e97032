//! The office PC owner's policy on what a session carries, enforced by the
//! host on the client's own connection request. In the default mode the
//! host sees the client's
//! RDP in plaintext between its two TLS legs, so before the RDP server sees
//! the client's MCS Connect Initial the host takes out the static virtual
//! channels the policy forbids: `rdpdr` (drives, and with them printers,
//! smart cards and ports), `cliprdr` (the clipboard), `rdpsnd` (sound). A
//! client that ignores the policy — a modified one, or one that never heard
//! of it — gets no such channel from the server. (Raw mode carries TLS from
//! the client's own RDP client straight to the server and cannot be
//! inspected, so it is allowed only when the owner allows it.)
//!
//! Dynamic channels (MS-RDPEDYC) ride inside the static `drdynvc`, which
//! every session keeps (Display Control needs it), and the server opens
//! them by name during the session: sound (`AUDIO_PLAYBACK_DVC`), USB and
//! plug-and-play devices and others. So the host also reads the server's
//! side of the session and answers a Create Request for a forbidden one
//! itself, "no listener", as a client without it does; the client never
//! sees the request ([`DynamicGuard`]).
//!
//! Sans-I/O: [`next_message`] splits the client's bytes before the Connect
//! Initial into messages (CredSSP's DER `TSRequest`s pass unchanged),
//! [`strip`] rewrites the Connect Initial itself, [`message_len`] splits
//! either side's bytes after it, and [`DynamicGuard`] judges the server's.

use std::borrow::Cow;

use ironrdp_core::{decode, encode_vec};
use ironrdp_pdu::gcc::ConferenceCreateRequest;
use ironrdp_pdu::mcs::ConnectInitial;
use ironrdp_pdu::x224::{X224Data, X224};

/// The static channel carrying drive (and printer, smart card, port)
/// redirection.
pub const DRIVES: &str = "rdpdr";
/// The static clipboard channel.
pub const CLIPBOARD: &str = "cliprdr";
/// The static sound output channel.
pub const SOUND: &str = "rdpsnd";

/// Dynamic channels that carry sound either way: the server's sound over a
/// dynamic channel (MS-RDPEA), the microphone (MS-RDPEAI), and video
/// played here with its sound (MS-RDPEV).
pub const DYNAMIC_SOUND: &[&str] = &[
    "AUDIO_PLAYBACK_DVC",
    "AUDIO_PLAYBACK_LOSSY_DVC",
    "AUDIO_INPUT",
    "TSMF",
];
/// Dynamic channels that bring the home computer's devices to the office
/// PC, as a shared drive does: USB (MS-RDPEUSB), plug-and-play devices and
/// their files (MS-RDPEPNP), cameras (MS-RDPECAM), printers (MS-RDPEXPS).
pub const DYNAMIC_DEVICES: &[&str] = &[
    "URBDRC",
    "PNPDR",
    "FileRedirectorChannel",
    "RDCamera_Device_Enumerator",
    "XPSRD",
];

/// What the owner's policy takes out of a session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forbidden {
    /// Static channels, taken out of the Connect Initial.
    pub statics: Vec<&'static str>,
    /// Dynamic channels, refused when the server opens them.
    pub dynamics: Vec<&'static str>,
}

impl Forbidden {
    /// The channels forbidden when the policy allows (or not) drive
    /// sharing, the clipboard and sound.
    pub fn by_policy(share: bool, clipboard: bool, audio: bool) -> Self {
        let mut forbidden = Self::default();
        if !share {
            forbidden.statics.push(DRIVES);
            forbidden.dynamics.extend_from_slice(DYNAMIC_DEVICES);
        }
        if !clipboard {
            forbidden.statics.push(CLIPBOARD);
        }
        if !audio {
            forbidden.statics.push(SOUND);
            forbidden.dynamics.extend_from_slice(DYNAMIC_SOUND);
        }
        forbidden
    }

    pub fn is_empty(&self) -> bool {
        self.statics.is_empty() && self.dynamics.is_empty()
    }
}

/// The longest message accepted before the Connect Initial (CredSSP
/// messages carry a certificate's public key and NTLM tokens: a few KiB).
pub const MAX_MESSAGE: usize = 64 * 1024;

/// What the client's next bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// More bytes are needed to tell.
    NeedMore,
    /// A CredSSP message of this many bytes: forward it unchanged.
    CredSsp(usize),
    /// A TPKT packet of this many bytes: the MCS Connect Initial.
    ConnectInitial(usize),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("the client sent something other than CredSSP or a connection request")]
    Unexpected,
    #[error("the client sent a message larger than {MAX_MESSAGE} bytes before connecting")]
    TooLarge,
    #[error("the client's connection request cannot be read ({0})")]
    ConnectInitial(String),
    #[error("a side of the session sent something other than RDP")]
    Stream,
}

/// Looks at the start of `buf` (the client's bytes after TLS, before its
/// Connect Initial).
pub fn next_message(buf: &[u8]) -> Result<Next, Malformed> {
    match buf.first() {
        None => Ok(Next::NeedMore),
        // A DER SEQUENCE: CredSSP's TSRequest.
        Some(0x30) => Ok(der_length(buf)?.map_or(Next::NeedMore, Next::CredSsp)),
        // TPKT version 3.
        Some(0x03) => {
            let Some(header) = buf.get(..crate::x224::TPKT_HEADER_LEN) else {
                return Ok(Next::NeedMore);
            };
            let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
            if len < crate::x224::TPKT_HEADER_LEN {
                return Err(Malformed::Unexpected);
            }
            Ok(Next::ConnectInitial(len))
        }
        Some(_) => Err(Malformed::Unexpected),
    }
}

/// The whole length of the DER element at the start of `buf`, if its
/// header is complete.
fn der_length(buf: &[u8]) -> Result<Option<usize>, Malformed> {
    let Some(&first) = buf.get(1) else {
        return Ok(None);
    };
    let (header, content) = if first < 0x80 {
        (2, usize::from(first))
    } else {
        let octets = usize::from(first & 0x7f);
        if !(1..=3).contains(&octets) {
            return Err(Malformed::TooLarge);
        }
        let Some(bytes) = buf.get(2..2 + octets) else {
            return Ok(None);
        };
        let content = bytes.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b));
        (2 + octets, content)
    };
    let total = header + content;
    if total > MAX_MESSAGE {
        return Err(Malformed::TooLarge);
    }
    Ok(Some(total))
}

/// A Connect Initial without the forbidden channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stripped {
    /// The packet to send on.
    pub packet: Vec<u8>,
    /// The channels taken out.
    pub removed: Vec<String>,
    /// The channels left, in order (the server's channel IDs follow it).
    pub kept: Vec<String>,
}

/// Takes the channels named in `forbidden` out of the Connect Initial in
/// `tpkt` (one whole TPKT packet). The packet sent on is always the one
/// re-encoded from what was read, never the client's bytes: a server must
/// not see anything the host did not (a second network block, say, which
/// the decoder here would skip but a server might read). The
/// multitransport block goes too: sound or devices over a UDP side path
/// would bypass the host.
pub fn strip(tpkt: &[u8], forbidden: &[&str]) -> Result<Stripped, Malformed> {
    let bad = |e: &dyn std::fmt::Display| Malformed::ConnectInitial(e.to_string());
    let data = decode::<X224<X224Data<'_>>>(tpkt).map_err(|e| bad(&e))?.0;
    let initial = decode::<ConnectInitial>(data.data.as_ref()).map_err(|e| bad(&e))?;
    let mut blocks = initial.conference_create_request.gcc_blocks().clone();
    blocks.multi_transport_channel = None;
    let mut removed = Vec::new();
    let mut kept = Vec::new();
    if let Some(network) = &mut blocks.network {
        for channel in &network.channels {
            let name = channel_name(channel.name.as_bytes()).ok_or_else(|| {
                Malformed::ConnectInitial("a channel name is not plain ASCII".into())
            })?;
            match forbidden.contains(&name.as_str()) {
                true => removed.push(name),
                false => kept.push(name),
            }
        }
        network.channels.retain(|channel| {
            channel_name(channel.name.as_bytes())
                .is_some_and(|name| !forbidden.contains(&name.as_str()))
        });
    }
    let rewritten = ConnectInitial {
        conference_create_request: ConferenceCreateRequest::new(blocks).map_err(|e| bad(&e))?,
        ..initial
    };
    let body = encode_vec(&rewritten).map_err(|e| bad(&e))?;
    let packet = encode_vec(&X224(X224Data {
        data: Cow::Owned(body),
    }))
    .map_err(|e| bad(&e))?;
    Ok(Stripped {
        packet,
        removed,
        kept,
    })
}

/// A static channel's name as a server reads it (up to the first NUL),
/// lower-cased; None unless that is printable ASCII.
fn channel_name(bytes: &[u8; 8]) -> Option<String> {
    let name = bytes.split(|b| *b == 0).next().unwrap_or_default();
    name.iter()
        .all(|b| b.is_ascii_graphic())
        .then(|| String::from_utf8_lossy(name).to_ascii_lowercase())
}

/// The longest message either side may send after the Connect Initial: a
/// TPKT packet's own limit (fast-path messages are shorter still).
pub const MAX_SESSION_MESSAGE: usize = 0xffff;

/// The length of the RDP message at the start of `buf` (a TPKT packet or a
/// fast-path message) once its header is there; never shorter than that
/// header, so a caller splitting a stream always moves on.
pub fn message_len(buf: &[u8]) -> Result<Option<usize>, Malformed> {
    ironrdp_pdu::find_size(buf)
        .map(|info| info.map(|info| info.length))
        .map_err(|_| Malformed::Stream)
}

/// What to do with one message from the RDP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Send it on to the client.
    Pass,
    /// Drop it, and send `reply` to the server instead: the server asked
    /// the client to open the forbidden dynamic channel `name`.
    Refuse { name: String, reply: Vec<u8> },
}

/// Why the host cannot tell what the server is opening; it ends the
/// session rather than let a channel through unseen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unenforceable {
    #[error("the dynamic channels arrive compressed, which this host cannot inspect")]
    Compressed,
    #[error("a dynamic channel request spans several chunks")]
    Chunked,
    #[error("the RDP server opened a dynamic channel before the client joined")]
    NoUser,
    #[error("the client answered for a dynamic channel it was not offered")]
    Unoffered,
    #[error("a dynamic channel request cannot be read ({0})")]
    Malformed(String),
}

/// Watches the server's side of a session for Create Requests of
/// forbidden dynamic channels (see the module's documentation). It learns
/// the `drdynvc` channel's ID from the server's Connect Response and the
/// client's user channel (the sender of the refusal it writes) from the
/// Attach User Confirm.
#[derive(Debug, Clone)]
pub struct DynamicGuard {
    forbidden: Vec<String>,
    /// The client's static channels in order, as the server got them.
    requested: Vec<String>,
    /// The server's Connect Response was read.
    learned: bool,
    /// The IDs of `drdynvc` (a client may name it more than once).
    drdynvc: Vec<u16>,
    user: Option<u16>,
    /// Dynamic channels offered to the client and not yet answered.
    offered: std::collections::BTreeSet<u32>,
    /// Dynamic channels the host refused (their IDs).
    refused: std::collections::BTreeSet<u32>,
}

impl DynamicGuard {
    /// `requested` is the client's static channel list as sent on
    /// ([`Stripped::kept`]).
    pub fn new(requested: Vec<String>, forbidden: &[&str]) -> Self {
        Self {
            forbidden: forbidden.iter().map(|n| n.to_ascii_lowercase()).collect(),
            requested,
            learned: false,
            drdynvc: Vec::new(),
            user: None,
            offered: Default::default(),
            refused: Default::default(),
        }
    }

    /// True when no dynamic channel can be opened: nothing is forbidden, or
    /// the client did not ask for `drdynvc`.
    pub fn is_idle(&self) -> bool {
        self.forbidden.is_empty() || !self.requested.iter().any(|n| n == DYNAMIC)
    }

    /// Judges one whole message from the server ([`message_len`]).
    pub fn from_server(&mut self, message: &[u8]) -> Result<Verdict, Unenforceable> {
        use ironrdp_pdu::mcs::McsMessage;
        // Fast-path output carries only graphics and pointers.
        if self.is_idle() || message.first() != Some(&0x03) {
            return Ok(Verdict::Pass);
        }
        if !self.learned {
            self.learn_channel_ids(message)?;
            return Ok(Verdict::Pass);
        }
        // Only X.224 Data carries channels; anything else (a Disconnect
        // Request) goes on for the client to read.
        if message.get(5).is_some_and(|code| code & 0xf0 != 0xf0) {
            return Ok(Verdict::Pass);
        }
        match decode::<X224<McsMessage<'_>>>(message) {
            Ok(X224(McsMessage::AttachUserConfirm(confirm))) => {
                self.user = Some(confirm.initiator_id);
                Ok(Verdict::Pass)
            }
            Ok(X224(McsMessage::SendDataIndication(data)))
                if self.drdynvc.contains(&data.channel_id) =>
            {
                self.judge_dynamic(data.channel_id, &data.user_data)
            }
            Ok(_) => Ok(Verdict::Pass),
            // It might hide a request the client's decoder reads otherwise.
            Err(e) => Err(Unenforceable::Malformed(format!(
                "an RDP server message the host cannot read: {e}"
            ))),
        }
    }

    /// The server's first message after the Connect Initial is its Connect
    /// Response.
    fn learn_channel_ids(&mut self, message: &[u8]) -> Result<(), Unenforceable> {
        use ironrdp_pdu::mcs::ConnectResponse;
        let bad = |e: &dyn std::fmt::Display| {
            Unenforceable::Malformed(format!("the RDP server's Connect Response: {e}"))
        };
        let data = decode::<X224<X224Data<'_>>>(message).map_err(|e| bad(&e))?;
        let response = decode::<ConnectResponse>(data.0.data.as_ref()).map_err(|e| bad(&e))?;
        let ids = response.channel_ids();
        self.learned = true;
        self.drdynvc = self
            .requested
            .iter()
            .zip(ids)
            .filter(|(name, _)| *name == DYNAMIC)
            .map(|(_, id)| id)
            .collect();
        Ok(())
    }

    /// Judges one whole message from the client: an answer to a Create
    /// Request it was not shown (a guess at the ID of one the host refused),
    /// or data on a refused channel, ends the session.
    pub fn from_client(&mut self, message: &[u8]) -> Result<(), Unenforceable> {
        use ironrdp_dvc::pdu::DrdynvcClientPdu;
        use ironrdp_pdu::mcs::McsMessage;
        if self.is_idle() || message.first() != Some(&0x03) {
            return Ok(());
        }
        let Ok(X224(McsMessage::SendDataRequest(data))) = decode::<X224<McsMessage<'_>>>(message)
        else {
            return Ok(());
        };
        if !self.drdynvc.contains(&data.channel_id) {
            return Ok(());
        }
        let Some((cmd, body)) = first_dvc_pdu(&data.user_data)? else {
            return Ok(());
        };
        let bad = |e: &dyn std::fmt::Display| Unenforceable::Malformed(e.to_string());
        match cmd {
            CREATE => match decode::<DrdynvcClientPdu>(body).map_err(|e| bad(&e))? {
                DrdynvcClientPdu::Create(answer) if self.offered.remove(&answer.channel_id()) => {
                    Ok(())
                }
                _ => Err(Unenforceable::Unoffered),
            },
            DATA_FIRST | DATA | DATA_FIRST_COMPRESSED | DATA_COMPRESSED => {
                match decode::<DrdynvcClientPdu>(body).map_err(|e| bad(&e))? {
                    DrdynvcClientPdu::Data(data) if self.refused.contains(&data.channel_id()) => {
                        Err(Unenforceable::Unoffered)
                    }
                    _ => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    fn judge_dynamic(&mut self, drdynvc: u16, chunk: &[u8]) -> Result<Verdict, Unenforceable> {
        use ironrdp_dvc::pdu::{
            CreateResponsePdu, CreationStatus, DrdynvcClientPdu, DrdynvcServerPdu,
        };
        let bad = |e: &dyn std::fmt::Display| Unenforceable::Malformed(e.to_string());
        let Some((CREATE, body)) = first_dvc_pdu(chunk)? else {
            return Ok(Verdict::Pass);
        };
        let DrdynvcServerPdu::Create(request) =
            decode::<DrdynvcServerPdu>(body).map_err(|e| bad(&e))?
        else {
            return Ok(Verdict::Pass);
        };
        let name = request.channel_name().to_owned();
        if !self.forbidden.contains(&name.to_ascii_lowercase()) {
            self.refused.remove(&request.channel_id());
            self.offered.insert(request.channel_id());
            return Ok(Verdict::Pass);
        }
        self.offered.remove(&request.channel_id());
        self.refused.insert(request.channel_id());
        let Some(user) = self.user else {
            return Err(Unenforceable::NoUser);
        };
        let refusal = DrdynvcClientPdu::Create(CreateResponsePdu::new(
            request.channel_id(),
            CreationStatus::NO_LISTENER,
        ));
        let reply = ironrdp_svc::client_encode_svc_messages(vec![refusal.into()], drdynvc, user)
            .map_err(|e| bad(&e))?;
        Ok(Verdict::Refuse { name, reply })
    }
}

/// The static channel that carries the dynamic ones.
const DYNAMIC: &str = "drdynvc";

/// DVC PDU commands, the high nibble of a PDU's first byte (MS-RDPEDYC
/// 2.2.1).
const CREATE: u8 = 0x01;
const DATA_FIRST: u8 = 0x02;
const DATA: u8 = 0x03;
const DATA_FIRST_COMPRESSED: u8 = 0x06;
const DATA_COMPRESSED: u8 = 0x07;

/// The command and bytes of the DVC PDU a `drdynvc` chunk begins, if it
/// begins one. A Create PDU must come whole in one chunk, and compressed
/// chunks cannot be read: both end the session.
fn first_dvc_pdu(chunk: &[u8]) -> Result<Option<(u8, &[u8])>, Unenforceable> {
    use ironrdp_pdu::rdp::vc::{ChannelControlFlags, ChannelPduHeader};
    let mut cursor = ironrdp_core::ReadCursor::new(chunk);
    let header = <ChannelPduHeader as ironrdp_core::Decode>::decode(&mut cursor)
        .map_err(|e| Unenforceable::Malformed(e.to_string()))?;
    if header
        .flags
        .contains(ChannelControlFlags::PACKET_COMPRESSED)
    {
        return Err(Unenforceable::Compressed);
    }
    if !header.flags.contains(ChannelControlFlags::FLAG_FIRST) {
        return Ok(None);
    }
    let body = cursor.remaining();
    let Some(cmd) = body.first().map(|b| b >> 4) else {
        return Ok(None);
    };
    if cmd == CREATE && !header.flags.contains(ChannelControlFlags::FLAG_LAST) {
        return Err(Unenforceable::Chunked);
    }
    Ok(Some((cmd, body)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironrdp_pdu::gcc::{
        ChannelDef, ChannelName, ChannelOptions, ClientCoreData, ClientCoreOptionalData,
        ClientGccBlocks, ClientNetworkData, ClientSecurityData, RdpVersion,
    };

    fn connect_initial(channels: &[&str]) -> Vec<u8> {
        let names = channels
            .iter()
            .map(|name| ChannelName::from_utf8(name).unwrap())
            .collect();
        connect_initial_named(names)
    }

    fn connect_initial_named(names: Vec<ChannelName>) -> Vec<u8> {
        connect_initial_with(names, None)
    }

    fn connect_initial_with(
        names: Vec<ChannelName>,
        monitor: Option<ironrdp_pdu::gcc::ClientMonitorData>,
    ) -> Vec<u8> {
        let blocks = ClientGccBlocks {
            core: ClientCoreData {
                version: RdpVersion::V5_PLUS,
                desktop_width: 1024,
                desktop_height: 768,
                color_depth: ironrdp_pdu::gcc::ColorDepth::Bpp8,
                sec_access_sequence: ironrdp_pdu::gcc::SecureAccessSequence::Del,
                keyboard_layout: 0x409,
                client_build: 1,
                client_name: "test".into(),
                keyboard_type: ironrdp_pdu::gcc::KeyboardType::IBM_ENHANCED,
                keyboard_subtype: 0,
                keyboard_functional_keys_count: 12,
                ime_file_name: String::new(),
                optional_data: ClientCoreOptionalData::default(),
            },
            security: ClientSecurityData::no_security(),
            network: Some(ClientNetworkData {
                channels: names
                    .into_iter()
                    .map(|name| ChannelDef {
                        name,
                        options: ChannelOptions::INITIALIZED,
                    })
                    .collect(),
            }),
            cluster: None,
            monitor,
            message_channel: None,
            multi_transport_channel: None,
            monitor_extended: None,
        };
        let initial = ConnectInitial::with_gcc_blocks(blocks).unwrap();
        encode_vec(&X224(X224Data {
            data: Cow::Owned(encode_vec(&initial).unwrap()),
        }))
        .unwrap()
    }

    fn channels_of(tpkt: &[u8]) -> Vec<String> {
        let data = decode::<X224<X224Data<'_>>>(tpkt).unwrap().0;
        let initial = decode::<ConnectInitial>(data.data.as_ref()).unwrap();
        let blocks = initial.conference_create_request.gcc_blocks();
        blocks.network.as_ref().map_or_else(Vec::new, |n| {
            n.channels
                .iter()
                .map(|c| c.name.as_str().unwrap().to_owned())
                .collect()
        })
    }

    #[test]
    fn the_client_s_monitors_survive_the_rewrite() {
        use ironrdp_pdu::gcc::{ClientMonitorData, Monitor, MonitorFlags};
        let monitors = ClientMonitorData {
            monitors: vec![
                Monitor {
                    left: 0,
                    top: 0,
                    right: 1919,
                    bottom: 1079,
                    flags: MonitorFlags::PRIMARY,
                },
                Monitor {
                    left: -1280,
                    top: 0,
                    right: -1,
                    bottom: 1023,
                    flags: MonitorFlags::empty(),
                },
            ],
        };
        let names = vec![ChannelName::from_utf8("rdpdr").unwrap()];
        let request = connect_initial_with(names, Some(monitors.clone()));
        let out = strip(&request, &[DRIVES]).unwrap();
        let data = decode::<X224<X224Data<'_>>>(&out.packet).unwrap().0;
        let initial = decode::<ConnectInitial>(data.data.as_ref()).unwrap();
        let blocks = initial.conference_create_request.gcc_blocks();
        assert_eq!(blocks.monitor.as_ref(), Some(&monitors));
        assert_eq!(out.removed, ["rdpdr"]);
    }

    #[test]
    fn forbidden_channels_are_taken_out_and_the_rest_kept_in_order() {
        let request = connect_initial(&["rdpdr", "cliprdr", "drdynvc", "rdpsnd"]);
        let out = strip(&request, &[DRIVES, SOUND]).unwrap();
        assert_eq!(out.removed, ["rdpdr", "rdpsnd"]);
        assert_eq!(out.kept, ["cliprdr", "drdynvc"]);
        assert_eq!(channels_of(&out.packet), ["cliprdr", "drdynvc"]);
        assert_eq!(
            next_message(&out.packet),
            Ok(Next::ConnectInitial(out.packet.len()))
        );

        // Nothing forbidden requested: the packet passes unchanged.
        let request = connect_initial(&["drdynvc"]);
        let out = strip(&request, &[DRIVES, CLIPBOARD, SOUND]).unwrap();
        assert!(out.removed.is_empty());
        assert_eq!(out.packet, request);
    }

    #[test]
    fn messages_before_the_request_are_split_and_bounded() {
        assert_eq!(next_message(&[]), Ok(Next::NeedMore));
        assert_eq!(next_message(&[0x30]), Ok(Next::NeedMore));
        assert_eq!(next_message(&[0x30, 0x05, 1, 2]), Ok(Next::CredSsp(7)));
        assert_eq!(next_message(&[0x30, 0x82, 0x01]), Ok(Next::NeedMore));
        assert_eq!(
            next_message(&[0x30, 0x82, 0x01, 0x00]),
            Ok(Next::CredSsp(260))
        );
        assert_eq!(
            next_message(&[0x30, 0x83, 0x10, 0x00, 0x00]),
            Err(Malformed::TooLarge)
        );
        assert_eq!(next_message(&[0x30, 0x80]), Err(Malformed::TooLarge));
        assert_eq!(next_message(&[0x03, 0x00, 0x00]), Ok(Next::NeedMore));
        assert_eq!(
            next_message(&[0x03, 0x00, 0x00, 0x02]),
            Err(Malformed::Unexpected)
        );
        assert_eq!(next_message(b"GET /"), Err(Malformed::Unexpected));
        assert!(matches!(
            strip(&[0x03, 0, 0, 8, 2, 0xf0, 0x80, 0x7f], &[DRIVES]),
            Err(Malformed::ConnectInitial(_))
        ));
    }

    const DRDYNVC_ID: u16 = 1006;
    const USER_ID: u16 = 1007;

    /// The server's Connect Response for channels asked in this order.
    fn connect_response(ids: &[u16]) -> Vec<u8> {
        use ironrdp_pdu::gcc::{
            ConferenceCreateResponse, ServerCoreData, ServerGccBlocks, ServerNetworkData,
            ServerSecurityData,
        };
        use ironrdp_pdu::mcs::{ConnectResponse, DomainParameters};
        let blocks = ServerGccBlocks {
            core: ServerCoreData {
                version: RdpVersion::V5_PLUS,
                optional_data: Default::default(),
            },
            network: ServerNetworkData {
                channel_ids: ids.to_vec(),
                io_channel: 1003,
            },
            security: ServerSecurityData::no_security(),
            message_channel: None,
            multi_transport_channel: None,
        };
        let response = ConnectResponse {
            conference_create_response: ConferenceCreateResponse::new(USER_ID, blocks).unwrap(),
            called_connect_id: 1,
            domain_parameters: DomainParameters::target(),
        };
        encode_vec(&X224(X224Data {
            data: Cow::Owned(encode_vec(&response).unwrap()),
        }))
        .unwrap()
    }

    fn attach_user_confirm() -> Vec<u8> {
        use ironrdp_pdu::mcs::{AttachUserConfirm, McsMessage};
        encode_vec(&X224(McsMessage::AttachUserConfirm(AttachUserConfirm {
            result: 0,
            initiator_id: USER_ID,
        })))
        .unwrap()
    }

    /// A server's message on `channel` carrying one whole DVC PDU.
    fn on_channel(
        channel: u16,
        pdu: ironrdp_dvc::pdu::DrdynvcServerPdu,
        compressed: bool,
    ) -> Vec<u8> {
        let mut message = ironrdp_svc::SvcMessage::from(pdu);
        if compressed {
            message = message.with_flags(ironrdp_svc::ChannelFlags::from_bits_retain(0x0020_0000));
        }
        ironrdp_svc::server_encode_svc_messages(vec![message], channel, 1002).unwrap()
    }

    fn create_request(id: u32, name: &str) -> ironrdp_dvc::pdu::DrdynvcServerPdu {
        ironrdp_dvc::pdu::DrdynvcServerPdu::Create(ironrdp_dvc::pdu::CreateRequestPdu::new(
            id,
            name.to_owned(),
        ))
    }

    /// A guard for a client that asked for these channels, through the
    /// Connect Response and the Attach User Confirm.
    fn guard(forbidden: &[&str]) -> DynamicGuard {
        let mut guard = DynamicGuard::new(vec!["cliprdr".into(), "drdynvc".into()], forbidden);
        for message in [connect_response(&[1005, DRDYNVC_ID]), attach_user_confirm()] {
            assert_eq!(message_len(&message), Ok(Some(message.len())));
            assert_eq!(guard.from_server(&message), Ok(Verdict::Pass));
        }
        guard
    }

    #[test]
    fn a_forbidden_dynamic_channel_is_refused_to_the_server_and_hidden_from_the_client() {
        use ironrdp_dvc::pdu::{CreationStatus, DrdynvcClientPdu};
        use ironrdp_pdu::mcs::McsMessage;
        let forbidden = Forbidden::by_policy(true, true, false);
        let mut guard = guard(&forbidden.dynamics);

        // Display Control is allowed: the request goes to the client.
        let display = on_channel(
            DRDYNVC_ID,
            create_request(1, "Microsoft::Windows::RDS::DisplayControl"),
            false,
        );
        assert_eq!(guard.from_server(&display), Ok(Verdict::Pass));

        // Sound over a dynamic channel is not: the server hears "no
        // listener" from the client's user channel on drdynvc.
        let sound = on_channel(DRDYNVC_ID, create_request(2, "audio_playback_dvc"), false);
        let Ok(Verdict::Refuse { name, reply }) = guard.from_server(&sound) else {
            panic!("sound over a dynamic channel was let through");
        };
        assert_eq!(name, "audio_playback_dvc");
        assert_eq!(message_len(&reply), Ok(Some(reply.len())));
        let X224(McsMessage::SendDataRequest(request)) =
            decode::<X224<McsMessage<'_>>>(&reply).unwrap()
        else {
            panic!("the refusal is not a Send Data Request");
        };
        assert_eq!(
            (request.initiator_id, request.channel_id),
            (USER_ID, DRDYNVC_ID)
        );
        let answer = decode::<DrdynvcClientPdu>(&request.user_data[8..]).unwrap();
        let DrdynvcClientPdu::Create(answer) = answer else {
            panic!("the refusal is not a Create Response");
        };
        assert_eq!(answer.channel_id(), 2);
        assert_eq!(answer.creation_status(), CreationStatus::NO_LISTENER);

        // The same name on another static channel is not a DVC request;
        // fast-path output passes unread.
        let elsewhere = on_channel(1005, create_request(3, "AUDIO_PLAYBACK_DVC"), false);
        assert_eq!(guard.from_server(&elsewhere), Ok(Verdict::Pass));
        assert_eq!(
            guard.from_server(&[0x00, 0x04, 0x01, 0x02]),
            Ok(Verdict::Pass)
        );

        // What the host cannot read, it does not let through.
        let compressed = on_channel(DRDYNVC_ID, create_request(4, "URBDRC"), true);
        assert_eq!(
            guard.from_server(&compressed),
            Err(Unenforceable::Compressed)
        );
        let mut garbled = on_channel(DRDYNVC_ID, create_request(5, "URBDRC"), false);
        garbled[7] = 0xff; // no MCS message starts so
        assert!(matches!(
            guard.from_server(&garbled),
            Err(Unenforceable::Malformed(_))
        ));
        // An X.224 Disconnect Request carries no channel: it passes.
        let disconnect = [
            0x03, 0x00, 0x00, 0x0b, 0x06, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
        ];
        assert_eq!(guard.from_server(&disconnect), Ok(Verdict::Pass));
    }

    #[test]
    fn the_guard_needs_the_connect_response_and_stays_idle_without_drdynvc() {
        let sound = on_channel(DRDYNVC_ID, create_request(2, "AUDIO_PLAYBACK_DVC"), false);
        // Something else where the Connect Response belongs.
        let mut guard = DynamicGuard::new(vec!["drdynvc".into()], DYNAMIC_SOUND);
        assert!(matches!(
            guard.from_server(&sound),
            Err(Unenforceable::Malformed(_))
        ));

        // A Create Request before the client's user channel is known.
        let mut guard = DynamicGuard::new(vec!["drdynvc".into()], DYNAMIC_SOUND);
        assert_eq!(
            guard.from_server(&connect_response(&[DRDYNVC_ID])),
            Ok(Verdict::Pass)
        );
        assert_eq!(guard.from_server(&sound), Err(Unenforceable::NoUser));

        // drdynvc named twice: a request on either is read.
        let mut guard = DynamicGuard::new(vec!["drdynvc".into(), "drdynvc".into()], DYNAMIC_SOUND);
        assert_eq!(
            guard.from_server(&connect_response(&[1004, DRDYNVC_ID])),
            Ok(Verdict::Pass)
        );
        assert_eq!(guard.from_server(&attach_user_confirm()), Ok(Verdict::Pass));
        assert!(matches!(
            guard.from_server(&sound),
            Ok(Verdict::Refuse { .. })
        ));
        let first = on_channel(1004, create_request(5, "AUDIO_INPUT"), false);
        assert!(matches!(
            guard.from_server(&first),
            Ok(Verdict::Refuse { .. })
        ));

        // No drdynvc asked for, or nothing forbidden: nothing to watch.
        assert!(DynamicGuard::new(vec!["cliprdr".into()], DYNAMIC_SOUND).is_idle());
        assert!(DynamicGuard::new(vec!["drdynvc".into()], &[]).is_idle());
        assert!(Forbidden::by_policy(true, true, true).is_empty());
        let none = Forbidden::by_policy(false, false, false);
        assert_eq!(none.statics, [DRIVES, CLIPBOARD, SOUND]);
        assert!(none.dynamics.contains(&"URBDRC") && none.dynamics.contains(&"AUDIO_INPUT"));
    }

    #[test]
    fn a_channel_name_that_hides_behind_a_stray_byte_is_refused() {
        // "rdpdr", then a NUL, then a byte that is not ASCII: a server reads
        // "rdpdr"; so does the host.
        let hidden = ChannelName::new(*b"rdpdr\0\x80\0");
        let request = connect_initial_named(vec![hidden]);
        assert_eq!(strip(&request, &[DRIVES]).unwrap().removed, ["rdpdr"]);
        let odd = ChannelName::new(*b"rd\x80dr\0\0\0");
        let request = connect_initial_named(vec![odd]);
        assert!(matches!(
            strip(&request, &[DRIVES]),
            Err(Malformed::ConnectInitial(_))
        ));
    }

    /// A client's message on drdynvc carrying one whole DVC PDU.
    fn from_client_on(channel: u16, pdu: ironrdp_dvc::pdu::DrdynvcClientPdu) -> Vec<u8> {
        let message = ironrdp_svc::SvcMessage::from(pdu);
        ironrdp_svc::client_encode_svc_messages(vec![message], channel, USER_ID).unwrap()
    }

    #[test]
    fn a_client_cannot_answer_for_a_channel_it_was_not_shown() {
        use ironrdp_dvc::pdu::{
            CreateResponsePdu, CreationStatus, DataPdu, DrdynvcClientPdu, DrdynvcDataPdu,
        };
        let answer = |id| {
            from_client_on(
                DRDYNVC_ID,
                DrdynvcClientPdu::Create(CreateResponsePdu::new(id, CreationStatus::OK)),
            )
        };
        let mut guard = guard(DYNAMIC_SOUND);
        // A guess at the next ID before the server even asked.
        assert_eq!(guard.from_client(&answer(7)), Err(Unenforceable::Unoffered));

        let mut guard = self::guard(DYNAMIC_SOUND);
        let display = on_channel(
            DRDYNVC_ID,
            create_request(1, "Microsoft::Windows::RDS::DisplayControl"),
            false,
        );
        let sound = on_channel(DRDYNVC_ID, create_request(2, "AUDIO_PLAYBACK_DVC"), false);
        assert_eq!(guard.from_server(&display), Ok(Verdict::Pass));
        assert!(matches!(
            guard.from_server(&sound),
            Ok(Verdict::Refuse { .. })
        ));
        // The channel shown is answered once; the refused one not at all.
        assert_eq!(guard.from_client(&answer(1)), Ok(()));
        assert_eq!(guard.from_client(&answer(1)), Err(Unenforceable::Unoffered));
        assert_eq!(guard.from_client(&answer(2)), Err(Unenforceable::Unoffered));
        let data = |id| {
            from_client_on(
                DRDYNVC_ID,
                DrdynvcClientPdu::Data(DrdynvcDataPdu::Data(DataPdu::new(id, vec![1, 2, 3]))),
            )
        };
        assert_eq!(guard.from_client(&data(1)), Ok(()));
        assert_eq!(guard.from_client(&data(2)), Err(Unenforceable::Unoffered));
        // Input and other channels pass unread.
        assert_eq!(guard.from_client(&[0x00, 0x04, 0x01, 0x02]), Ok(()));
    }

    #[test]
    fn the_multitransport_block_does_not_reach_the_server() {
        let request = connect_initial(&["drdynvc"]);
        let data = decode::<X224<X224Data<'_>>>(&request).unwrap().0;
        let mut initial = decode::<ConnectInitial>(data.data.as_ref()).unwrap();
        let mut blocks = initial.conference_create_request.gcc_blocks().clone();
        blocks.multi_transport_channel = Some(ironrdp_pdu::gcc::MultiTransportChannelData {
            flags: ironrdp_pdu::gcc::MultiTransportFlags::TRANSPORT_TYPE_UDP_FECR,
        });
        initial.conference_create_request = ConferenceCreateRequest::new(blocks).unwrap();
        let request = encode_vec(&X224(X224Data {
            data: Cow::Owned(encode_vec(&initial).unwrap()),
        }))
        .unwrap();
        let out = strip(&request, &[]).unwrap().packet;
        let data = decode::<X224<X224Data<'_>>>(&out).unwrap().0;
        let initial = decode::<ConnectInitial>(data.data.as_ref()).unwrap();
        assert!(initial
            .conference_create_request
            .gcc_blocks()
            .multi_transport_channel
            .is_none());
    }

    #[test]
    fn session_messages_are_split_by_their_own_lengths() {
        assert_eq!(message_len(&[]), Ok(None));
        assert_eq!(message_len(&[0x03, 0x00]), Ok(None));
        assert_eq!(message_len(&[0x03, 0x00, 0x01, 0x00]), Ok(Some(256)));
        assert_eq!(
            message_len(&[0x03, 0x00, 0x00, 0x06]),
            Err(Malformed::Stream)
        );
        assert_eq!(message_len(&[0x00, 0x05]), Ok(Some(5)));
        assert_eq!(message_len(&[0x00, 0x81, 0x00]), Ok(Some(256)));
        assert_eq!(message_len(&[0x00, 0x01]), Err(Malformed::Stream));
        assert_eq!(
            message_len(&[0x03, 0x00, 0x00, 0x00]),
            Err(Malformed::Stream)
        );
        assert_eq!(
            message_len(&[0x03, 0x00, 0x00, 0x03]),
            Err(Malformed::Stream)
        );
        assert_eq!(message_len(b"GET / HTTP/1.1"), Err(Malformed::Stream));
    }
}
