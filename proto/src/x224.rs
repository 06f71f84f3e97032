//! What the host reads of the RDP server's X.224 Connection Confirm: its
//! TPKT header (RFC 1006: version 3, a reserved byte, the packet's length
//! including the header, big-endian) and the security the server chose.

use thiserror::Error;

/// The largest Connection Confirm the host accepts (they are about 19 bytes).
pub const MAX_X224_LEN: usize = 1024;

pub const TPKT_HEADER_LEN: usize = 4;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("not an RDP server (TPKT header {0:02x?})")]
pub struct NotRdp(pub [u8; TPKT_HEADER_LEN]);

/// The whole packet's length announced by a TPKT `header`.
pub fn tpkt_len(header: [u8; TPKT_HEADER_LEN]) -> Result<usize, NotRdp> {
    let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
    if header[0] != 3 || !(TPKT_HEADER_LEN..=MAX_X224_LEN).contains(&len) {
        return Err(NotRdp(header));
    }
    Ok(len)
}

/// How the RDP server chose to check the logon, from its Connection Confirm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerLogon {
    /// Network-level logon (CredSSP) before the session starts.
    Nla,
    /// TLS only: the logon is sent in the session's first data (xrdp, or
    /// Windows set to the "SSL" security layer).
    TlsOnly,
}

/// The logon the server chose in a whole Connection Confirm `packet`; an
/// error for a negotiation failure, standard RDP security or a malformed
/// packet.
pub fn server_logon(packet: &[u8]) -> Result<ServerLogon, String> {
    use ironrdp_pdu::nego::{ConnectionConfirm, SecurityProtocol};
    use ironrdp_pdu::x224::X224;
    let confirm = ironrdp_core::decode::<X224<ConnectionConfirm>>(packet)
        .map_err(|e| format!("unreadable X.224 answer ({e})"))?
        .0;
    match confirm {
        ConnectionConfirm::Response { protocol, .. }
            if protocol.intersects(SecurityProtocol::HYBRID | SecurityProtocol::HYBRID_EX) =>
        {
            Ok(ServerLogon::Nla)
        }
        ConnectionConfirm::Response { protocol, .. }
            if protocol.contains(SecurityProtocol::SSL) =>
        {
            Ok(ServerLogon::TlsOnly)
        }
        ConnectionConfirm::Response { .. } => Err(
            "the RDP server offers neither TLS nor NLA (standard RDP security is not supported)"
                .into(),
        ),
        ConnectionConfirm::Failure { code } => {
            Err(format!("the RDP server refused the connection ({code:?})"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logon_kinds() {
        // TPKT + X.224 CC + RDP_NEG_RSP selecting `protocol`.
        let confirm = |protocol: u8| {
            vec![
                3, 0, 0, 19, 14, 0xd0, 0, 0, 0x12, 0x34, 0, 2, 0x1f, 8, 0, protocol, 0, 0, 0,
            ]
        };
        assert_eq!(server_logon(&confirm(2)), Ok(ServerLogon::Nla));
        assert_eq!(server_logon(&confirm(8 | 2)), Ok(ServerLogon::Nla));
        assert_eq!(server_logon(&confirm(1)), Ok(ServerLogon::TlsOnly));
        assert!(server_logon(&confirm(0)).is_err(), "standard RDP security");
        assert!(server_logon(&confirm(2)[..12]).is_err(), "cut short");
        assert!(server_logon(b"HTTP/1.1 200 OK\r\n").is_err());
    }

    #[test]
    fn headers() {
        assert_eq!(tpkt_len([3, 0, 0, 19]), Ok(19));
        assert_eq!(tpkt_len([3, 0, 0, 4]), Ok(4));
        assert!(tpkt_len([3, 0, 0, 3]).is_err());
        assert!(tpkt_len([3, 0, 4, 1]).is_err(), "over 1 KiB");
        assert!(tpkt_len(*b"HTTP").is_err());
    }
}
