//! Keep-alive on the end-to-end channel, sans-I/O.
//!
//! A path that dies without a word (a Wi-Fi link gone, a laptop lid shut, a
//! NAT that forgot the connection) leaves TCP waiting for many minutes; a
//! still remote desktop sends nothing to tell. So once the session runs,
//! each end sends an empty sealed message whenever it has sent nothing for
//! one beat ([`BEAT`]), and counts the beats in which nothing arrived: after
//! its limit the path is taken for dead. The client gives up first
//! ([`CLIENT_GIVES_UP_AFTER`]) and reconnects; the host waits much longer
//! ([`HOST_GIVES_UP_AFTER`] by default), so it never cuts a session its
//! client still believes in — also not a browser tab in the background,
//! whose timers may fire only once a minute — and still frees what a
//! vanished client held.
//!
//! Each end sends its first keep-alive at once, and holds the other end to
//! the limit only after hearing one from it: an end of an older version,
//! which never beats, is not cut for its silence, and neither end counts
//! while the other has not started yet.
//!
//! The caller owns the timer: it calls [`Liveness::tick`] once per beat.

use core::time::Duration;

/// How often an end that has nothing else to send sends a keep-alive.
pub const BEAT: Duration = Duration::from_secs(5);
/// Beats without a message before the client takes the path for dead (20 s).
pub const CLIENT_GIVES_UP_AFTER: u32 = 4;
/// Beats without a message before the host ends the session by default
/// (3 minutes).
pub const HOST_GIVES_UP_AFTER: u32 = 36;

// The client reconnects before the host would cut its session.
const _: () = assert!(HOST_GIVES_UP_AFTER > CLIENT_GIVES_UP_AFTER);

/// What to do at a beat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    /// Something was sent since the last beat: nothing to do.
    Quiet,
    /// Nothing was sent since the last beat: send a keep-alive.
    KeepAlive,
    /// Nothing arrived for the limit's number of beats.
    Dead,
}

/// Counts beats of silence in each direction.
#[derive(Debug, Clone)]
pub struct Liveness {
    gives_up_after: u32,
    silent_beats: u32,
    sent_since_beat: bool,
    /// A keep-alive came from the other end: it beats, and is held to the
    /// limit.
    peer_beats: bool,
}

impl Liveness {
    /// Takes the path for dead after `gives_up_after` silent beats (at least 1).
    pub fn new(gives_up_after: u32) -> Self {
        Self {
            gives_up_after: gives_up_after.max(1),
            silent_beats: 0,
            sent_since_beat: false,
            peer_beats: false,
        }
    }

    /// A message arrived (`keep_alive` if it was one).
    pub fn heard(&mut self, keep_alive: bool) {
        self.silent_beats = 0;
        self.peer_beats |= keep_alive;
    }

    /// A message (data or keep-alive) went out.
    pub fn sent(&mut self) {
        self.sent_since_beat = true;
    }

    /// One beat passed.
    pub fn tick(&mut self) -> Beat {
        self.silent_beats = self.silent_beats.saturating_add(1);
        if self.peer_beats && self.silent_beats >= self.gives_up_after {
            return Beat::Dead;
        }
        if std::mem::take(&mut self.sent_since_beat) {
            Beat::Quiet
        } else {
            Beat::KeepAlive
        }
    }

    /// How long the other end has been silent at most, for messages.
    pub fn silence(&self) -> Duration {
        BEAT * self.silent_beats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_end_sends_a_keep_alive_each_beat_and_a_busy_one_does_not() {
        let mut live = Liveness::new(CLIENT_GIVES_UP_AFTER);
        live.heard(true);
        assert_eq!(live.tick(), Beat::KeepAlive);
        live.heard(false);
        live.sent();
        assert_eq!(live.tick(), Beat::Quiet);
        live.heard(false);
        assert_eq!(live.tick(), Beat::KeepAlive);
    }

    #[test]
    fn silence_for_the_limit_is_death_and_any_message_resets_it() {
        let mut live = Liveness::new(3);
        live.heard(true);
        assert_eq!(live.tick(), Beat::KeepAlive);
        assert_eq!(live.tick(), Beat::KeepAlive);
        live.heard(false);
        assert_eq!(live.tick(), Beat::KeepAlive);
        live.sent();
        assert_eq!(live.tick(), Beat::Quiet);
        assert_eq!(live.tick(), Beat::Dead);
        assert_eq!(live.silence(), BEAT * 3);
    }

    #[test]
    fn an_end_that_never_beats_is_never_taken_for_dead() {
        // An older version, or one that has not started beating yet.
        let mut live = Liveness::new(2);
        live.heard(false);
        for _ in 0..10 {
            assert_eq!(live.tick(), Beat::KeepAlive);
        }
        live.heard(true);
        assert_eq!(live.tick(), Beat::KeepAlive);
        assert_eq!(live.tick(), Beat::Dead);
    }
}
