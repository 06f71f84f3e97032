//! Length-prefixed frames over a byte stream.

use proto::{FrameDecoder, FrameError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

#[derive(Debug, thiserror::Error)]
pub enum ReadFrameError {
    #[error("connection closed")]
    Closed,
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A stream plus the decoder holding bytes read past the last frame.
pub struct FramedIo<S> {
    stream: S,
    decoder: FrameDecoder,
}

impl<S: AsyncRead + AsyncWrite + Unpin> FramedIo<S> {
    pub fn new(stream: S) -> Self {
        Self {
            stream,
            decoder: FrameDecoder::new(),
        }
    }

    /// Reads one whole frame's payload.
    pub async fn read_frame(&mut self) -> Result<Vec<u8>, ReadFrameError> {
        // Frames read here are small (control, pairing, handshake); the
        // buffer lives in every waiting reader's future, such as each idle
        // host's at the relay, so it stays small too.
        let mut buf = [0u8; 1024];
        loop {
            if let Some(frame) = self.decoder.next_frame()? {
                return Ok(frame);
            }
            let n = self.stream.read(&mut buf).await?;
            if n == 0 {
                return Err(ReadFrameError::Closed);
            }
            self.decoder.push(&buf[..n]);
        }
    }

    /// Writes already-encoded frame bytes and flushes them.
    pub async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    /// Gives back the stream and any bytes read past the last frame.
    pub fn into_parts(mut self) -> (S, Vec<u8>) {
        let rest = self.decoder.take_remaining();
        (self.stream, rest)
    }

    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }
}
