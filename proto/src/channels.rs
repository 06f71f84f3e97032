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
//! Sans-I/O: [`next_message`] splits the client's bytes before the Connect
//! Initial into messages (CredSSP's DER `TSRequest`s pass unchanged), and
//! [`strip`] rewrites the Connect Initial itself.

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

/// Takes the channels named in `forbidden` out of the Connect Initial in
/// `tpkt` (one whole TPKT packet); returns the packet to send on and the
/// names of the channels taken out.
pub fn strip(tpkt: &[u8], forbidden: &[&str]) -> Result<(Vec<u8>, Vec<String>), Malformed> {
    let bad = |e: &dyn std::fmt::Display| Malformed::ConnectInitial(e.to_string());
    let data = decode::<X224<X224Data<'_>>>(tpkt).map_err(|e| bad(&e))?.0;
    let initial = decode::<ConnectInitial>(data.data.as_ref()).map_err(|e| bad(&e))?;
    let mut blocks = initial.conference_create_request.gcc_blocks().clone();
    let mut removed = Vec::new();
    if let Some(network) = &mut blocks.network {
        network.channels.retain(|channel| {
            let name = channel
                .name
                .as_str()
                .unwrap_or_default()
                .to_ascii_lowercase();
            let keep = !forbidden.contains(&name.as_str());
            if !keep {
                removed.push(name);
            }
            keep
        });
    }
    if removed.is_empty() {
        return Ok((tpkt.to_vec(), removed));
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
    Ok((packet, removed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironrdp_pdu::gcc::{
        ChannelDef, ChannelName, ChannelOptions, ClientCoreData, ClientCoreOptionalData,
        ClientGccBlocks, ClientNetworkData, ClientSecurityData, RdpVersion,
    };

    fn connect_initial(channels: &[&str]) -> Vec<u8> {
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
                channels: channels
                    .iter()
                    .map(|name| ChannelDef {
                        name: ChannelName::from_utf8(name).unwrap(),
                        options: ChannelOptions::INITIALIZED,
                    })
                    .collect(),
            }),
            cluster: None,
            monitor: None,
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
    fn forbidden_channels_are_taken_out_and_the_rest_kept_in_order() {
        let request = connect_initial(&["rdpdr", "cliprdr", "drdynvc", "rdpsnd"]);
        let (out, removed) = strip(&request, &[DRIVES, SOUND]).unwrap();
        assert_eq!(removed, ["rdpdr", "rdpsnd"]);
        assert_eq!(channels_of(&out), ["cliprdr", "drdynvc"]);
        assert_eq!(next_message(&out), Ok(Next::ConnectInitial(out.len())));

        // Nothing forbidden requested: the packet passes unchanged.
        let request = connect_initial(&["drdynvc"]);
        let (out, removed) = strip(&request, &[DRIVES, CLIPBOARD, SOUND]).unwrap();
        assert!(removed.is_empty());
        assert_eq!(out, request);
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
}
