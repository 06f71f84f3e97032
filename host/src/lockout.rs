//! Slowing guessers down: consecutive failed OTP or password attempts are
//! counted per source address and for the whole host; too many in a row
//! lock the source (or the host) out for a back-off that doubles each time.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

/// Failures in a row from one source before it is locked out.
pub const SOURCE_LIMIT: u32 = 5;
/// Failures in a row from all sources together before the host locks
/// everyone out (guessing spread over many addresses).
pub const HOST_LIMIT: u32 = 20;
const FIRST_BACKOFF: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// Sources remembered at most; the least recently seen are forgotten first.
const MAX_SOURCES: usize = 10_000;

/// The host's notion of now; tests inject their own.
pub trait Clock: Send + Sync {
    fn now(&self) -> SystemTime;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

#[derive(Debug, Default, Clone)]
struct Counter {
    failures: u32,
    /// How many lockouts so far (sets the next back-off).
    level: u32,
    locked_until: Option<SystemTime>,
    last_seen: Option<SystemTime>,
}

impl Counter {
    fn remaining(&self, now: SystemTime) -> Option<Duration> {
        self.locked_until
            .and_then(|until| until.duration_since(now).ok())
            .filter(|d| !d.is_zero())
    }

    /// Counts a failure; returns the lockout it triggers, if any.
    fn fail(&mut self, now: SystemTime, limit: u32) -> Option<Duration> {
        self.last_seen = Some(now);
        self.failures += 1;
        if self.failures < limit {
            return None;
        }
        let backoff = FIRST_BACKOFF
            .saturating_mul(1u32 << self.level.min(16))
            .min(MAX_BACKOFF);
        self.level += 1;
        self.failures = 0;
        self.locked_until = Some(now + backoff);
        Some(backoff)
    }
}

/// What a failure led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// More tries allowed before a lockout.
    TriesLeft(u32),
    /// Locked out for this long.
    Locked(Duration),
}

#[derive(Default)]
pub struct Lockout {
    sources: HashMap<IpAddr, Counter>,
    host: Counter,
}

impl Lockout {
    /// How long `source` must still wait, if it (or the host) is locked.
    pub fn locked(&self, source: IpAddr, now: SystemTime) -> Option<Duration> {
        let own = self.sources.get(&source).and_then(|c| c.remaining(now));
        own.into_iter().chain(self.host.remaining(now)).max()
    }

    /// Whether `source` itself is locked (not just the whole host).
    pub fn source_locked(&self, source: IpAddr, now: SystemTime) -> bool {
        self.sources
            .get(&source)
            .and_then(|c| c.remaining(now))
            .is_some()
    }

    pub fn failure(&mut self, source: IpAddr, now: SystemTime) -> AfterFailure {
        if self.sources.len() >= MAX_SOURCES && !self.sources.contains_key(&source) {
            self.forget_oldest();
        }
        let counter = self.sources.entry(source).or_default();
        let own = counter.fail(now, SOURCE_LIMIT);
        let tries_left = SOURCE_LIMIT - counter.failures;
        let host = self.host.fail(now, HOST_LIMIT);
        match own.into_iter().chain(host).max() {
            Some(backoff) => AfterFailure::Locked(backoff),
            None => AfterFailure::TriesLeft(tries_left.min(HOST_LIMIT - self.host.failures)),
        }
    }

    /// A full success clears the source's record and the host's streak.
    pub fn success(&mut self, source: IpAddr) {
        self.sources.remove(&source);
        self.host.failures = 0;
    }

    fn forget_oldest(&mut self) {
        if let Some(oldest) = self
            .sources
            .iter()
            .min_by_key(|(_, c)| c.last_seen)
            .map(|(ip, _)| *ip)
        {
            self.sources.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn five_failures_lock_the_source_with_a_growing_backoff() {
        let mut lock = Lockout::default();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        for left in (1..5).rev() {
            assert_eq!(lock.failure(ip(1), t0), AfterFailure::TriesLeft(left));
        }
        assert_eq!(
            lock.failure(ip(1), t0),
            AfterFailure::Locked(Duration::from_secs(60))
        );
        assert_eq!(lock.locked(ip(1), t0), Some(Duration::from_secs(60)));
        assert_eq!(lock.locked(ip(2), t0), None);
        let later = t0 + Duration::from_secs(61);
        assert_eq!(lock.locked(ip(1), later), None);
        for _ in 0..4 {
            lock.failure(ip(1), later);
        }
        assert_eq!(
            lock.failure(ip(1), later),
            AfterFailure::Locked(Duration::from_secs(120))
        );
        lock.success(ip(1));
        assert_eq!(lock.locked(ip(1), later + Duration::from_secs(121)), None);
    }

    #[test]
    fn the_backoff_stops_at_an_hour() {
        let mut lock = Lockout::default();
        let mut now = SystemTime::UNIX_EPOCH;
        let mut last = Duration::ZERO;
        for _ in 0..10 {
            for _ in 0..5 {
                if let AfterFailure::Locked(d) = lock.failure(ip(1), now) {
                    last = d;
                }
            }
            now += last + Duration::from_secs(1);
        }
        assert_eq!(last, Duration::from_secs(3600));
    }

    #[test]
    fn guesses_spread_over_many_sources_lock_the_host() {
        let mut lock = Lockout::default();
        let now = SystemTime::UNIX_EPOCH;
        let mut result = AfterFailure::TriesLeft(0);
        for i in 0..HOST_LIMIT {
            result = lock.failure(ip(i as u8), now);
        }
        assert!(matches!(result, AfterFailure::Locked(_)));
        assert!(lock.locked(ip(250), now).is_some());
        assert!(!lock.source_locked(ip(250), now));
    }
}
