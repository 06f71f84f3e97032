//! Slowing guessers down without letting them lock the owner out.
//!
//! The host takes an *attempt* before every question about a secret (a
//! one-time password, the host password) and gives it back only when the
//! answer proves the secret: an attempt the client abandons, breaks off or
//! answers wrongly stays counted. Attempts are limited twice:
//!
//! - **per source** (an IPv4 address, an IPv6 /64): [`SOURCE_LIMIT`] in a
//!   row that prove nothing lock the source out for 1 minute, doubling with
//!   each lockout up to 1 hour; each quiet hour forgives one doubling.
//! - **per host, in three budgets by who is asking** ([`Standing`]): a
//!   session that has proven the one-time password, a source the host
//!   admitted in the last 30 days, and anyone else. Each budget holds
//!   [`HOST_RATE`]`.burst` attempts and regains one every
//!   [`HOST_RATE`]`.interval`. Strangers guessing from any number of
//!   addresses share one budget, so together they get at most 10 attempts
//!   at once and 10 an hour after that, and they can empty only their own
//!   budget: the owner, with the one-time password or from a place they
//!   connected from before, draws on another.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

pub use proto::rate::{describe_source, source_key};
use proto::rate::{Bucket, Rate};

/// Attempts in a row from one source that prove nothing before it is locked.
pub const SOURCE_LIMIT: u32 = 5;
const FIRST_BACKOFF: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// Each quiet period this long forgives one doubling of a source's back-off.
const FORGIVE_AFTER: Duration = Duration::from_secs(3600);
/// The host-wide budget of each [`Standing`].
pub const HOST_RATE: Rate = Rate {
    burst: 10,
    interval: Duration::from_secs(6 * 60),
};
/// How long a source counts as known after it was admitted.
pub const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 3600);
/// Sources remembered at most; the least recently active are forgotten first.
const MAX_SOURCES: usize = 10_000;
const MAX_KNOWN: usize = 1_000;

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

/// Who is asking, which decides the host-wide budget an attempt draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Nothing known about the source.
    Stranger,
    /// The host admitted a session from this source in the last 30 days.
    Known,
    /// This session has proven the one-time password.
    Verified,
}

impl Standing {
    fn index(self) -> usize {
        match self {
            Standing::Stranger => 0,
            Standing::Known => 1,
            Standing::Verified => 2,
        }
    }
}

/// What is locked, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locked {
    pub wait: Duration,
    pub scope: Scope,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// This source, after its own failures.
    Source,
    /// Everyone of this standing, after failures from many places.
    Host(Standing),
}

/// One attempt taken by [`Lockout::begin`]; hand it to
/// [`Lockout::proven`] if the secret was proven, else just drop it.
#[derive(Debug)]
pub struct Charge {
    source: IpAddr,
    standing: Standing,
    /// This attempt started the source's lockout.
    locked_source: bool,
}

#[derive(Debug, Clone)]
struct SourceRecord {
    /// Attempts in a row that proved nothing (pending ones included).
    in_a_row: u32,
    /// Lockouts so far, less those forgiven (sets the next back-off).
    level: u32,
    locked_until: Option<SystemTime>,
    /// When the last attempt began; quiet time is counted from here.
    last: SystemTime,
}

impl SourceRecord {
    fn new(now: SystemTime) -> Self {
        Self {
            in_a_row: 0,
            level: 0,
            locked_until: None,
            last: now,
        }
    }

    fn remaining(&self, now: SystemTime) -> Option<Duration> {
        self.locked_until
            .and_then(|until| until.duration_since(now).ok())
            .filter(|d| !d.is_zero())
    }

    /// Forgives one doubling per [`FORGIVE_AFTER`] of quiet: no attempt
    /// and no lockout running.
    fn forgive(&mut self, now: SystemTime) {
        let quiet_since = self
            .locked_until
            .map_or(self.last, |until| until.max(self.last));
        let quiet = now.duration_since(quiet_since).unwrap_or_default();
        let periods = (quiet.as_secs() / FORGIVE_AFTER.as_secs()) as u32;
        if periods > 0 {
            self.level = self.level.saturating_sub(periods);
            self.last = quiet_since + FORGIVE_AFTER * periods;
            self.locked_until = None;
        }
    }
}

fn backoff(level: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1u32 << level.min(16))
        .min(MAX_BACKOFF)
}

fn since_epoch(now: SystemTime) -> Duration {
    now.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
}

#[derive(Default)]
pub struct Lockout {
    sources: HashMap<IpAddr, SourceRecord>,
    budgets: [Bucket; 3],
    /// Source key → when a session from it was last admitted.
    known: HashMap<IpAddr, SystemTime>,
}

impl Lockout {
    /// Whether `source` was admitted recently.
    pub fn standing(&self, source: IpAddr, now: SystemTime) -> Standing {
        let key = source_key(source);
        match self.known.get(&key) {
            Some(at) if now.duration_since(*at).unwrap_or_default() < KNOWN_FOR => Standing::Known,
            _ => Standing::Stranger,
        }
    }

    /// Whether an attempt could begin now, without taking one.
    pub fn check(&self, source: IpAddr, standing: Standing, now: SystemTime) -> Result<(), Locked> {
        let key = source_key(source);
        if let Some(wait) = self.sources.get(&key).and_then(|r| r.remaining(now)) {
            return Err(Locked {
                wait,
                scope: Scope::Source,
            });
        }
        let budget = &self.budgets[standing.index()];
        if budget.available(HOST_RATE, since_epoch(now)) == 0 {
            let mut probe = *budget;
            let wait = probe
                .take(HOST_RATE, since_epoch(now))
                .err()
                .unwrap_or_default();
            return Err(Locked {
                wait,
                scope: Scope::Host(standing),
            });
        }
        Ok(())
    }

    /// Takes an attempt for `source` before the host asks for a secret.
    pub fn begin(
        &mut self,
        source: IpAddr,
        standing: Standing,
        now: SystemTime,
    ) -> Result<Charge, Locked> {
        let key = source_key(source);
        if let Some(record) = self.sources.get_mut(&key) {
            record.forgive(now);
        }
        self.check(source, standing, now)?;
        self.budgets[standing.index()]
            .take(HOST_RATE, since_epoch(now))
            .expect("checked above");
        if self.sources.len() >= MAX_SOURCES && !self.sources.contains_key(&key) {
            forget_oldest(&mut self.sources, |r| r.last);
        }
        let record = self
            .sources
            .entry(key)
            .or_insert_with(|| SourceRecord::new(now));
        record.in_a_row += 1;
        record.last = now;
        let locked_source = record.in_a_row >= SOURCE_LIMIT;
        if locked_source {
            record.locked_until = Some(now + backoff(record.level));
            record.level += 1;
            record.in_a_row = 0;
        }
        Ok(Charge {
            source: key,
            standing,
            locked_source,
        })
    }

    /// The attempt proved its secret: it no longer counts.
    pub fn proven(&mut self, charge: Charge) {
        self.budgets[charge.standing.index()].give_back(HOST_RATE);
        if let Some(record) = self.sources.get_mut(&charge.source) {
            if charge.locked_source {
                record.locked_until = None;
                record.level = record.level.saturating_sub(1);
                record.in_a_row = SOURCE_LIMIT - 1;
            } else {
                record.in_a_row = record.in_a_row.saturating_sub(1);
            }
        }
    }

    /// A session from `source` was admitted: its failures are forgotten and
    /// it counts as known for [`KNOWN_FOR`].
    pub fn admitted(&mut self, source: IpAddr, now: SystemTime) {
        let key = source_key(source);
        self.sources.remove(&key);
        if self.known.len() >= MAX_KNOWN && !self.known.contains_key(&key) {
            forget_oldest(&mut self.known, |at| *at);
        }
        self.known.insert(key, now);
    }

    /// Attempts left before a lockout, counting the one `charge` holds: 1
    /// when it is the last.
    pub fn tries_left(&self, charge: &Charge, now: SystemTime) -> u32 {
        if charge.locked_source {
            return 1;
        }
        let own = self.sources.get(&charge.source).map_or(SOURCE_LIMIT, |r| {
            SOURCE_LIMIT - r.in_a_row.min(SOURCE_LIMIT)
        });
        let budget = &self.budgets[charge.standing.index()];
        own.min(budget.available(HOST_RATE, since_epoch(now))) + 1
    }
}

fn forget_oldest<V>(map: &mut HashMap<IpAddr, V>, when: impl Fn(&V) -> SystemTime) {
    if let Some(oldest) = map.iter().min_by_key(|(_, v)| when(v)).map(|(k, _)| *k) {
        map.remove(&oldest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    fn t0() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000)
    }

    fn mins(m: u64) -> Duration {
        Duration::from_secs(60 * m)
    }

    /// Begins `n` attempts that are never proven.
    fn fail(lock: &mut Lockout, source: IpAddr, standing: Standing, n: u32, now: SystemTime) {
        for i in 0..n {
            lock.begin(source, standing, now)
                .unwrap_or_else(|e| panic!("attempt {} refused: {e:?}", i + 1));
        }
    }

    #[test]
    fn five_in_a_row_lock_the_source_with_a_growing_backoff() {
        let mut lock = Lockout::default();
        let s = Standing::Stranger;
        let first = lock.begin(ip(1), s, t0()).unwrap();
        assert_eq!(lock.tries_left(&first, t0()), SOURCE_LIMIT);
        fail(&mut lock, ip(1), s, 3, t0());
        let fifth = lock.begin(ip(1), s, t0()).unwrap();
        assert_eq!(lock.tries_left(&fifth, t0()), 1, "the fifth is the last");
        let locked = lock.begin(ip(1), s, t0()).unwrap_err();
        assert_eq!(locked.scope, Scope::Source);
        assert_eq!(locked.wait, mins(1));
        // Another source is not affected.
        assert!(lock.check(ip(2), s, t0()).is_ok());
        let later = t0() + mins(1);
        assert!(lock.check(ip(1), s, later).is_ok());
        // Half an hour later the host budget is full again; the back-off
        // doubles (half an hour is not quiet long enough to forgive).
        let later = later + mins(30);
        fail(&mut lock, ip(1), s, 5, later);
        assert_eq!(lock.begin(ip(1), s, later).unwrap_err().wait, mins(2));
    }

    #[test]
    fn a_proven_attempt_does_not_count_and_admission_clears_the_source() {
        let mut lock = Lockout::default();
        let s = Standing::Stranger;
        fail(&mut lock, ip(1), s, 4, t0());
        let fifth = lock.begin(ip(1), s, t0()).unwrap();
        // The fifth started a lockout, but it proves the secret: undone.
        assert!(lock.check(ip(1), s, t0()).is_err());
        lock.proven(fifth);
        assert!(lock.check(ip(1), s, t0()).is_ok());
        let again = lock.begin(ip(1), s, t0()).unwrap();
        assert_eq!(lock.tries_left(&again, t0()), 1);
        lock.proven(again);
        lock.admitted(ip(1), t0());
        let fresh = lock.begin(ip(1), Standing::Known, t0()).unwrap();
        assert_eq!(lock.tries_left(&fresh, t0()), SOURCE_LIMIT);
        assert_eq!(lock.standing(ip(1), t0()), Standing::Known);
        assert_eq!(lock.standing(ip(1), t0() + KNOWN_FOR), Standing::Stranger);
    }

    #[test]
    fn back_off_levels_decay_with_quiet_hours() {
        let mut lock = Lockout::default();
        let s = Standing::Known;
        let mut now = t0();
        // Four lockouts in a row: 1, 2, 4, 8 minutes (the budget refills meanwhile).
        for expected in [1, 2, 4, 8] {
            fail(&mut lock, ip(1), s, 5, now);
            let wait = lock.check(ip(1), s, now).unwrap_err().wait;
            assert_eq!(wait, mins(expected));
            now += mins(60);
        }
        // Three quiet hours after the last lockout ended forgive three of
        // the four doublings.
        now += mins(128);
        fail(&mut lock, ip(1), s, 5, now);
        assert_eq!(lock.check(ip(1), s, now).unwrap_err().wait, mins(2));
        // A day of quiet forgives everything.
        now += mins(24 * 60);
        fail(&mut lock, ip(1), s, 5, now);
        assert_eq!(lock.check(ip(1), s, now).unwrap_err().wait, mins(1));
    }

    #[test]
    fn the_backoff_stops_at_an_hour() {
        let mut lock = Lockout::default();
        let mut now = t0();
        let mut last = Duration::ZERO;
        for _ in 0..10 {
            fail(&mut lock, ip(1), Standing::Stranger, 5, now);
            last = lock.check(ip(1), Standing::Stranger, now).unwrap_err().wait;
            // Back again as soon as it may, with the host budget full.
            now += last.max(mins(30));
        }
        assert_eq!(last, mins(60));
    }

    #[test]
    fn strangers_from_many_addresses_get_ten_at_once_then_ten_an_hour() {
        let mut lock = Lockout::default();
        let s = Standing::Stranger;
        let mut now = t0();
        let mut allowed = 0;
        let mut next = 0u32;
        // Four hours of guessing from a new address each time, trying again every minute.
        for _ in 0..=4 * 60 {
            loop {
                let source = IpAddr::from((0x0a00_0000u32 + next).to_be_bytes());
                match lock.begin(source, s, now) {
                    Ok(_) => {
                        allowed += 1;
                        next += 1;
                    }
                    Err(locked) => {
                        assert_eq!(locked.scope, Scope::Host(Standing::Stranger));
                        assert!(locked.wait <= HOST_RATE.interval);
                        break;
                    }
                }
            }
            now += mins(1);
        }
        assert_eq!(allowed, 10 + 4 * 10);
    }

    #[test]
    fn strangers_cannot_lock_out_known_places_or_verified_sessions() {
        let mut lock = Lockout::default();
        lock.admitted(ip(200), t0());
        for i in 0..10 {
            lock.begin(ip(i), Standing::Stranger, t0()).unwrap();
        }
        assert!(lock.check(ip(99), Standing::Stranger, t0()).is_err());
        // The owner from home, and anyone who passed the one-time password.
        let home = lock.standing(ip(200), t0());
        assert_eq!(home, Standing::Known);
        let attempt = lock.begin(ip(200), home, t0()).unwrap();
        lock.proven(attempt);
        let attempt = lock.begin(ip(98), Standing::Verified, t0()).unwrap();
        lock.proven(attempt);
        // And strangers come back one every six minutes.
        let soon = t0() + HOST_RATE.interval;
        lock.begin(ip(97), Standing::Stranger, soon).unwrap();
        assert!(lock.check(ip(96), Standing::Stranger, soon).is_err());
    }

    #[test]
    fn ipv6_sources_are_counted_by_their_64() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        let mut lock = Lockout::default();
        fail(&mut lock, a, Standing::Stranger, 3, t0());
        fail(&mut lock, b, Standing::Stranger, 2, t0());
        assert_eq!(
            lock.check(a, Standing::Stranger, t0()).unwrap_err().scope,
            Scope::Source
        );
        assert!(lock.check(c, Standing::Stranger, t0()).is_ok());
    }
}
