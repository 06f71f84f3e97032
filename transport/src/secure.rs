//! A byte stream through the end-to-end channel: what is written is sealed
//! into Noise messages (one frame each), what is read is opened from them.
//! RDP and everything else after the handshake runs over this.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use proto::channel::{Channel, MAX_PLAINTEXT};
use proto::{encode_frame, FrameDecoder};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::Unread;

pub struct SecureStream<S> {
    inner: S,
    channel: Channel,
    /// Ciphertext frames received but not yet complete.
    incoming: FrameDecoder,
    /// Opened plaintext not yet read by the caller.
    plain: Unread,
    /// A sealed frame not yet fully written to `inner`.
    outgoing: Vec<u8>,
    out_pos: usize,
    read_eof: bool,
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

impl<S> SecureStream<S> {
    /// Wraps `inner`; `leftover` are bytes already read from it after the
    /// handshake (the start of the first sealed frame).
    pub fn new(inner: S, leftover: Vec<u8>, channel: Channel) -> Self {
        let mut incoming = FrameDecoder::new();
        incoming.push(&leftover);
        Self {
            inner,
            channel,
            incoming,
            plain: Unread::default(),
            outgoing: Vec::new(),
            out_pos: 0,
            read_eof: false,
        }
    }

    /// The other end's static key (see [`Channel::peer_key`]).
    pub fn peer_key(&self) -> &[u8] {
        self.channel.peer_key()
    }

    /// The channel's handshake hash (for binding authentication to it).
    pub fn handshake_hash(&self) -> &[u8] {
        self.channel.handshake_hash()
    }
}

impl<S: AsyncWrite + Unpin> SecureStream<S> {
    /// Writes out what is left of the last sealed frame.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.out_pos < self.outgoing.len() {
            let n =
                ready!(Pin::new(&mut self.inner).poll_write(cx, &self.outgoing[self.out_pos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out_pos += n;
        }
        self.outgoing.clear();
        self.out_pos = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for SecureStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.plain.read_into(buf) {
                return Poll::Ready(Ok(()));
            }
            if let Some(frame) = this.incoming.next_frame().map_err(invalid)? {
                this.plain.set(this.channel.open(&frame).map_err(invalid)?);
                continue;
            }
            if this.read_eof {
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; 16 * 1024];
            let mut chunk_buf = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut chunk_buf))?;
            if chunk_buf.filled().is_empty() {
                // A clean end only between frames; a cut frame is an error.
                if this.incoming.has_partial() {
                    return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
                }
                this.read_eof = true;
            } else {
                this.incoming.push(chunk_buf.filled());
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for SecureStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_drain(cx))?;
        let n = buf.len().min(MAX_PLAINTEXT);
        let sealed = this.channel.seal(&buf[..n]).map_err(invalid)?;
        this.outgoing = encode_frame(&sealed);
        this.out_pos = 0;
        // The data is accepted; if `inner` is busy the rest goes out on the
        // next write or flush.
        if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::channel::{Initiator, Responder, StaticKey};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn channels() -> (Channel, Channel) {
        let key = StaticKey::generate().unwrap();
        let (mut c, m1) = Initiator::start().unwrap();
        let (h, m2) = Responder::answer(&key, &m1).unwrap();
        c.read_answer(&m2).unwrap();
        let (m3, c) = c.finish().unwrap();
        (c, h.finish(&m3).unwrap())
    }

    #[tokio::test]
    async fn large_writes_arrive_whole_and_sealed() {
        let (a, b) = tokio::io::duplex(4096);
        let (ca, cb) = channels();
        let mut left = SecureStream::new(a, Vec::new(), ca);
        let mut right = SecureStream::new(b, Vec::new(), cb);
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            left.write_all(&sent).await.unwrap();
            left.shutdown().await.unwrap();
        });
        let mut got = Vec::new();
        right.read_to_end(&mut got).await.unwrap();
        writer.await.unwrap();
        assert_eq!(got, data);
    }

    #[tokio::test]
    async fn a_cut_frame_is_an_error_not_a_clean_end() {
        let (_, cb) = channels();
        let mut half = encode_frame(&[0u8; 100]);
        half.truncate(50);
        let mut right = SecureStream::new(&half[..], Vec::new(), cb);
        let mut got = Vec::new();
        let err = right.read_to_end(&mut got).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn forged_frames_are_refused() {
        let (_, cb) = channels();
        let forged = encode_frame(&[0u8; 100]);
        let mut right = SecureStream::new(&forged[..], Vec::new(), cb);
        let mut got = Vec::new();
        let err = right.read_to_end(&mut got).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
