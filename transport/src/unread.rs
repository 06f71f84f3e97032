//! Bytes a stream has received but its reader has not taken yet: the part
//! every message-to-bytes adapter (sealed frames, WebSocket messages, bytes
//! read ahead) has in common.

use tokio::io::ReadBuf;

#[derive(Debug, Default)]
pub struct Unread {
    bytes: Vec<u8>,
    pos: usize,
}

impl Unread {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self { bytes, pos: 0 }
    }

    /// Replaces what is left with `bytes` (the next message).
    pub fn set(&mut self, bytes: Vec<u8>) {
        *self = Self::new(bytes);
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    /// Moves as much as fits into `buf`; false when there was nothing.
    pub fn read_into(&mut self, buf: &mut ReadBuf<'_>) -> bool {
        if self.is_empty() {
            return false;
        }
        let n = (self.bytes.len() - self.pos).min(buf.remaining());
        buf.put_slice(&self.bytes[self.pos..self.pos + n]);
        self.pos += n;
        if self.is_empty() {
            // Give the memory back once it is all read.
            *self = Self::default();
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_out_bytes_in_pieces_then_nothing() {
        let mut unread = Unread::new(b"hello".to_vec());
        let mut small = [0u8; 3];
        let mut buf = ReadBuf::new(&mut small);
        assert!(unread.read_into(&mut buf));
        assert_eq!(buf.filled(), b"hel");
        let mut rest = [0u8; 8];
        let mut buf = ReadBuf::new(&mut rest);
        assert!(unread.read_into(&mut buf));
        assert_eq!(buf.filled(), b"lo");
        assert!(unread.is_empty());
        assert!(!unread.read_into(&mut buf));
        unread.set(b"next".to_vec());
        assert!(!unread.is_empty());
    }
}
