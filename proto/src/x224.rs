//! The one piece of RDP the host reads itself: the TPKT header of the RDP
//! server's X.224 Connection Confirm (RFC 1006: version 3, a reserved byte,
//! the packet's length including the header, big-endian).

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        assert_eq!(tpkt_len([3, 0, 0, 19]), Ok(19));
        assert_eq!(tpkt_len([3, 0, 0, 4]), Ok(4));
        assert!(tpkt_len([3, 0, 0, 3]).is_err());
        assert!(tpkt_len([3, 0, 4, 1]).is_err(), "over 1 KiB");
        assert!(tpkt_len(*b"HTTP").is_err());
    }
}
