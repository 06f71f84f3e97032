//! Length-prefixed frames: a 4-byte big-endian length, then the payload.
//!
//! Control messages are small, so a frame is capped at [`MAX_FRAME_LEN`]; a
//! peer announcing more is refused before any payload is buffered.

use thiserror::Error;

/// Largest payload accepted in one frame (control messages, RDCleanPath PDUs
/// with a certificate chain).
pub const MAX_FRAME_LEN: usize = 64 * 1024;

const HEADER_LEN: usize = 4;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("empty frame")]
    Empty,
}

/// Prefixes `payload` with its length.
///
/// Panics only if the caller builds a payload above [`MAX_FRAME_LEN`], which
/// is a programming error (all payloads we send are bounded).
pub fn encode_frame(payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() <= MAX_FRAME_LEN, "outgoing frame too large");
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Incremental decoder: feed bytes as they arrive, take complete frames out.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
}

impl FrameDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Returns the next complete frame, `Ok(None)` if more bytes are needed,
    /// or an error if the peer announced an invalid length.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let Some(header) = self.buf.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        if len > MAX_FRAME_LEN {
            return Err(FrameError::TooLarge {
                len,
                max: MAX_FRAME_LEN,
            });
        }
        if len == 0 {
            return Err(FrameError::Empty);
        }
        if self.buf.len() < HEADER_LEN + len {
            return Ok(None);
        }
        let frame = self.buf[HEADER_LEN..HEADER_LEN + len].to_vec();
        self.buf.drain(..HEADER_LEN + len);
        Ok(Some(frame))
    }

    /// Bytes received and not yet taken out as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Whether part of a frame has been received.
    pub fn has_partial(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Bytes received after the last complete frame (handed over when the
    /// connection switches from framed messages to a raw pipe).
    pub fn take_remaining(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_split_across_pushes() {
        let wire = [encode_frame(b"hello"), encode_frame(b"world!")].concat();
        let mut dec = FrameDecoder::new();
        let mut frames = Vec::new();
        for byte in wire {
            dec.push(&[byte]);
            while let Some(f) = dec.next_frame().unwrap() {
                frames.push(f);
            }
        }
        assert_eq!(frames, vec![b"hello".to_vec(), b"world!".to_vec()]);
        assert!(dec.take_remaining().is_empty());
    }

    #[test]
    fn oversized_length_is_refused_before_buffering() {
        let mut dec = FrameDecoder::new();
        dec.push(&(MAX_FRAME_LEN as u32 + 1).to_be_bytes());
        assert_eq!(
            dec.next_frame(),
            Err(FrameError::TooLarge {
                len: MAX_FRAME_LEN + 1,
                max: MAX_FRAME_LEN
            })
        );
    }

    #[test]
    fn empty_frame_is_an_error() {
        let mut dec = FrameDecoder::new();
        dec.push(&[0, 0, 0, 0]);
        assert_eq!(dec.next_frame(), Err(FrameError::Empty));
    }

    #[test]
    fn leftover_bytes_are_kept() {
        let mut dec = FrameDecoder::new();
        dec.push(&[encode_frame(b"x"), b"raw".to_vec()].concat());
        assert_eq!(dec.next_frame().unwrap(), Some(b"x".to_vec()));
        assert_eq!(dec.take_remaining(), b"raw".to_vec());
    }
}
