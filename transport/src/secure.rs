//! A byte stream through the end-to-end channel: what is written is sealed
//! into Noise messages (one frame each), what is read is opened from them.
//! RDP and everything else after the handshake runs over this.
//!
//! Once the session runs, [`SecureStream::keep_alive`] turns on the
//! keep-alive of [`proto::liveness`]: an empty sealed message is one. The
//! beats are kept while the stream is read or written (a session always
//! reads), so a dead path shows as an error of kind `TimedOut`. A keep-alive
//! goes out with the reader's or writer's waker: use the stream (or both
//! halves of a split) from one task.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use proto::channel::{Channel, MAX_PLAINTEXT};
use proto::liveness::{Beat, Liveness, BEAT};
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
    /// The keep-alive, once turned on (a mutex only so that the stream
    /// stays `Sync`; it is reached through `&mut self`).
    heartbeat: Option<Mutex<Heartbeat>>,
    /// A keep-alive arrived, maybe before this end turned its own on: the
    /// other end beats.
    heard_keep_alive: bool,
}

/// A future that completes after the given time: the platform's timer.
pub type Sleep = Arc<dyn Fn(Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// The timer's side of the keep-alive.
struct Heartbeat {
    liveness: Liveness,
    sleep: Sleep,
    next_beat: Pin<Box<dyn Future<Output = ()> + Send>>,
    /// A keep-alive sits in `outgoing`, not yet written out.
    queued: bool,
    /// The first keep-alive went out (it tells the other end this one beats).
    announced: bool,
}

/// tokio's timer, for [`SecureStream::keep_alive`] on native platforms.
#[cfg(not(target_arch = "wasm32"))]
pub fn tokio_sleep() -> Sleep {
    Arc::new(|duration| Box::pin(tokio::time::sleep(duration)))
}

/// The most received ciphertext read ahead while a write waits (see
/// `poll_read_ahead`): a few messages, not a flood.
const READ_AHEAD_MAX: usize = 256 * 1024;

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
            heartbeat: None,
            heard_keep_alive: false,
        }
    }

    /// Turns the keep-alive on (see [`proto::liveness`]): a keep-alive
    /// goes out in each beat in which nothing else did, and reading fails
    /// with `TimedOut` once nothing arrived for `gives_up_after` beats.
    /// Turn it on only once the session runs: before that a person may
    /// be answering a question while nothing reads.
    pub fn keep_alive(&mut self, sleep: Sleep, gives_up_after: u32) {
        let next_beat = sleep(BEAT);
        let mut liveness = Liveness::new(gives_up_after);
        if self.heard_keep_alive {
            liveness.heard(true);
        }
        self.heartbeat = Some(Mutex::new(Heartbeat {
            liveness,
            sleep,
            next_beat,
            queued: false,
            announced: false,
        }));
    }

    fn heartbeat(&mut self) -> Option<&mut Heartbeat> {
        let beat = self.heartbeat.as_mut()?;
        Some(beat.get_mut().unwrap_or_else(|e| e.into_inner()))
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

impl<S: AsyncRead + AsyncWrite + Unpin> SecureStream<S> {
    /// While a write waits on a slow or dead uplink nothing reads: takes in
    /// what has arrived (as ciphertext, opened later in order by the
    /// reader), so that the other end's messages count as heard and a long
    /// write on a slow line is not taken for a dead path, then keeps the
    /// beats. Err when the other end went silent.
    fn poll_write_side(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if self.heartbeat.is_none() {
            return Ok(());
        }
        let mut chunk = [0u8; 16 * 1024];
        while self.incoming.buffered() < READ_AHEAD_MAX {
            let mut chunk_buf = ReadBuf::new(&mut chunk);
            match Pin::new(&mut self.inner).poll_read(cx, &mut chunk_buf) {
                // An end (or an error) is for the reader to report.
                Poll::Ready(Ok(())) if !chunk_buf.filled().is_empty() => {
                    self.incoming.push(chunk_buf.filled());
                    if let Some(beat) = self.heartbeat() {
                        beat.liveness.heard(false);
                    }
                }
                _ => break,
            }
        }
        self.poll_heartbeat(cx)
    }

    /// Keeps the beats: queues a keep-alive where one is due and writes it
    /// out as far as `inner` takes it now (the rest goes with the next
    /// write, or the next read). Err when the other end went silent.
    fn poll_heartbeat(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        let idle = self.outgoing.is_empty();
        let Some(beat) = self.heartbeat() else {
            return Ok(());
        };
        let mut due = false;
        while beat.next_beat.as_mut().poll(cx).is_ready() {
            beat.next_beat = (beat.sleep)(BEAT);
            match beat.liveness.tick() {
                Beat::Quiet => {}
                Beat::KeepAlive => due = true,
                Beat::Dead => {
                    let silence = beat.liveness.silence().as_secs();
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("nothing arrived through the connection for {silence} seconds"),
                    ));
                }
            }
        }
        // Never into the middle of a frame the write side has not finished.
        let queue = (due || !beat.announced) && idle && !beat.queued;
        // (Not counted as sent: the next idle beat sends one again.)
        if queue {
            beat.queued = true;
            beat.announced = true;
        }
        let queued = beat.queued;
        if queue {
            let sealed = self.channel.seal(&[]).map_err(invalid)?;
            self.outgoing = encode_frame(&sealed);
            self.out_pos = 0;
        }
        if !queued {
            return Ok(());
        }
        if let Poll::Ready(done) = self.poll_drain(cx) {
            done?;
            // Pushes it through a TLS layer's buffer; a busy socket sends it
            // with the next write.
            let _ = Pin::new(&mut self.inner).poll_flush(cx)?;
        }
        Ok(())
    }

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
        if let Some(beat) = self.heartbeat() {
            beat.queued = false;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for SecureStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.poll_heartbeat(cx)?;
        loop {
            if this.plain.read_into(buf) {
                return Poll::Ready(Ok(()));
            }
            if let Some(frame) = this.incoming.next_frame().map_err(invalid)? {
                // An empty message is a keep-alive: heard, nothing to read.
                let plain = this.channel.open(&frame).map_err(invalid)?;
                let keep_alive = plain.is_empty();
                this.heard_keep_alive |= keep_alive;
                this.plain.set(plain);
                if let Some(beat) = this.heartbeat() {
                    beat.liveness.heard(keep_alive);
                }
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

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for SecureStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        // A writer stuck on a dead path (a full send buffer) learns it too.
        this.poll_write_side(cx)?;
        ready!(this.poll_drain(cx))?;
        let n = buf.len().min(MAX_PLAINTEXT);
        let sealed = this.channel.seal(&buf[..n]).map_err(invalid)?;
        this.outgoing = encode_frame(&sealed);
        this.out_pos = 0;
        if let Some(beat) = this.heartbeat() {
            beat.liveness.sent();
        }
        // The data is accepted; if `inner` is busy the rest goes out on the
        // next write or flush.
        if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_write_side(cx)?;
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_write_side(cx)?;
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

    /// A stream that yields `bytes` and swallows what is written.
    fn only_reads(bytes: &[u8]) -> impl AsyncRead + AsyncWrite + Unpin + '_ {
        tokio::io::join(bytes, tokio::io::sink())
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
        let mut right = SecureStream::new(only_reads(&half), Vec::new(), cb);
        let mut got = Vec::new();
        let err = right.read_to_end(&mut got).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn forged_frames_are_refused() {
        let (_, cb) = channels();
        let forged = encode_frame(&[0u8; 100]);
        let mut right = SecureStream::new(only_reads(&forged), Vec::new(), cb);
        let mut got = Vec::new();
        let err = right.read_to_end(&mut got).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    /// A still session (nothing to send either way) for two minutes:
    /// the keep-alives keep both ends content, and data still arrives
    /// whole after them.
    #[tokio::test(start_paused = true)]
    async fn idle_ends_keep_each_other_alive() {
        use proto::liveness::{CLIENT_GIVES_UP_AFTER, HOST_GIVES_UP_AFTER};
        let (a, b) = tokio::io::duplex(4096);
        let (ca, cb) = channels();
        let mut client = SecureStream::new(a, Vec::new(), ca);
        let mut host = SecureStream::new(b, Vec::new(), cb);
        client.keep_alive(tokio_sleep(), CLIENT_GIVES_UP_AFTER);
        host.keep_alive(tokio_sleep(), HOST_GIVES_UP_AFTER);
        let host_side = tokio::spawn(async move {
            let mut got = [0u8; 5];
            host.read_exact(&mut got).await.map(|_| got)
        });
        let mut buf = [0u8; 16];
        let still = tokio::time::timeout(Duration::from_secs(120), client.read(&mut buf)).await;
        assert!(still.is_err(), "the client's read ended: {still:?}");
        assert!(!host_side.is_finished());
        client.write_all(b"hello").await.unwrap();
        client.flush().await.unwrap();
        // The client keeps reading (and beating) while the host takes it.
        let read = tokio::time::timeout(Duration::from_secs(1), client.read(&mut buf));
        let (got, _) = tokio::join!(host_side, read);
        assert_eq!(&got.unwrap().unwrap(), b"hello");
    }

    /// The other end went away without a word (its packets are lost, no
    /// reset comes) after it had beaten once: reading fails after the
    /// client's limit, not never.
    #[tokio::test(start_paused = true)]
    async fn a_silent_peer_is_taken_for_dead_after_the_limit() {
        use proto::liveness::CLIENT_GIVES_UP_AFTER;
        let (a, mut peer) = tokio::io::duplex(4096);
        let (ca, mut cb) = channels();
        peer.write_all(&encode_frame(&cb.seal(&[]).unwrap()))
            .await
            .unwrap();
        let mut client = SecureStream::new(a, Vec::new(), ca);
        client.keep_alive(tokio_sleep(), CLIENT_GIVES_UP_AFTER);
        let started = tokio::time::Instant::now();
        let mut buf = [0u8; 16];
        let err = client.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(err.to_string().contains("20 seconds"), "{err}");
        assert_eq!(started.elapsed(), BEAT * CLIENT_GIVES_UP_AFTER);
    }

    /// An end of an older version never beats: it is not cut for its
    /// silence (a still desktop sends nothing), while this end still beats.
    #[tokio::test(start_paused = true)]
    async fn a_peer_that_never_beats_is_not_cut() {
        use proto::liveness::CLIENT_GIVES_UP_AFTER;
        let (a, mut old_peer) = tokio::io::duplex(4096);
        let (ca, _) = channels();
        let mut client = SecureStream::new(a, Vec::new(), ca);
        client.keep_alive(tokio_sleep(), CLIENT_GIVES_UP_AFTER);
        let mut buf = [0u8; 16];
        let still = tokio::time::timeout(Duration::from_secs(300), client.read(&mut buf)).await;
        assert!(still.is_err(), "the client's read ended: {still:?}");
        // It announced itself at once and beat each idle beat since.
        let mut sent = vec![0u8; 4096];
        let n = old_peer.read(&mut sent).await.unwrap();
        let mut frames = FrameDecoder::new();
        frames.push(&sent[..n]);
        let mut count = 0;
        while frames.next_frame().unwrap().is_some() {
            count += 1;
        }
        assert!(count >= 300 / BEAT.as_secs(), "{count} keep-alives");
    }

    /// Without the keep-alive turned on (an end that predates it, or the
    /// steps before the session), keep-alives are read past as nothing.
    #[tokio::test]
    async fn keep_alives_are_nothing_to_an_end_without_one() {
        let (mut ca, cb) = channels();
        let mut wire = Vec::new();
        for _ in 0..3 {
            wire.extend(encode_frame(&ca.seal(&[]).unwrap()));
        }
        wire.extend(encode_frame(&ca.seal(b"data").unwrap()));
        let mut right = SecureStream::new(only_reads(&wire), Vec::new(), cb);
        let mut got = Vec::new();
        right.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"data");
    }

    /// The other end turned its keep-alive on first (the client does at
    /// admission, the host only with the RDP leg): its announcement, read
    /// before this end turned its own on, still counts, so a path that dies
    /// at once is noticed.
    #[tokio::test(start_paused = true)]
    async fn an_announcement_read_before_turning_on_counts() {
        use proto::liveness::HOST_GIVES_UP_AFTER;
        let (a, mut client) = tokio::io::duplex(4096);
        let (mut ca, cb) = channels();
        let mut wire = encode_frame(&ca.seal(&[]).unwrap());
        wire.extend(encode_frame(&ca.seal(b"request").unwrap()));
        client.write_all(&wire).await.unwrap();
        let mut host = SecureStream::new(a, Vec::new(), cb);
        let mut request = [0u8; 7];
        host.read_exact(&mut request).await.unwrap();
        host.keep_alive(tokio_sleep(), HOST_GIVES_UP_AFTER);
        let started = tokio::time::Instant::now();
        let err = host.read(&mut request).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert_eq!(started.elapsed(), BEAT * HOST_GIVES_UP_AFTER);
    }

    /// A write stuck on a dead uplink (nothing drains it) ends with
    /// `TimedOut` once the other end, which had beaten, is silent too;
    /// while the other end's messages keep arriving, a slow write is not
    /// taken for a dead path.
    #[tokio::test(start_paused = true)]
    async fn a_stuck_write_learns_of_a_dead_path_and_a_slow_one_does_not() {
        use proto::liveness::CLIENT_GIVES_UP_AFTER;
        let (a, peer) = tokio::io::duplex(64 * 1024);
        let (ca, mut cb) = channels();
        // The peer beats (and never reads what the client writes).
        let (peer_in, mut peer_out) = tokio::io::split(peer);
        let beating = tokio::spawn(async move {
            for _ in 0..1000 {
                let beat = encode_frame(&cb.seal(&[]).unwrap());
                if peer_out.write_all(&beat).await.is_err() {
                    return;
                }
                tokio::time::sleep(BEAT).await;
            }
        });
        let mut client = SecureStream::new(a, Vec::new(), ca);
        client.keep_alive(tokio_sleep(), CLIENT_GIVES_UP_AFTER);
        // The client reads the peer's first beat (it beats, so it is held
        // to the limit), then writes more than anything drains.
        let mut nothing = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(1), client.read(&mut nothing)).await;
        assert!(read.is_err(), "{read:?}");
        let big = vec![7u8; 1 << 20];
        let slow = tokio::time::timeout(Duration::from_secs(60), client.write_all(&big)).await;
        assert!(slow.is_err(), "the stuck write ended: {slow:?}");
        // Now the peer falls silent too.
        beating.abort();
        let started = tokio::time::Instant::now();
        let err = client.write_all(&big).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(started.elapsed() <= BEAT * (CLIENT_GIVES_UP_AFTER + 1));
        drop(peer_in);
    }
}
