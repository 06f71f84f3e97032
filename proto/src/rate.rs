//! A token bucket for rate limits, sans-I/O: the caller passes the time as
//! a `Duration` since a fixed point of its own choosing (the host uses the
//! Unix epoch of its injectable clock, the relay the moment it started).
//!
//! One number per bucket (GCRA's "theoretical arrival time"): a bucket that
//! has not been used for a while is full, and a full bucket can be
//! forgotten. Unlike rate-limiting crates, a token can be given back — the
//! host returns an attempt once it proved the secret.

use std::net::IpAddr;
use std::time::Duration;

/// The unit that limits count by: an IPv4 address, or the /64 of an IPv6
/// address (one subscriber usually holds a whole /64). An IPv4 address seen
/// through an IPv6 socket (`::ffff:a.b.c.d`) counts as itself.
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
        v4 => v4,
    }
}

/// How a [`source_key`] is written in messages (`2001:db8::/64`).
pub fn describe_source(key: IpAddr) -> String {
    match key {
        IpAddr::V6(_) => format!("{key}/64"),
        IpAddr::V4(_) => key.to_string(),
    }
}

/// `burst` tokens at most, one more every `interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub burst: u32,
    pub interval: Duration,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Bucket {
    /// When the bucket will be full again if nothing more is taken.
    full_at: Duration,
}

impl Bucket {
    /// A bucket with no token left at `now` (refilling from then on).
    pub fn empty(rate: Rate, now: Duration) -> Self {
        Self {
            full_at: now + rate.interval * rate.burst,
        }
    }

    /// Takes a token at `now`, or says how long until one is there.
    pub fn take(&mut self, rate: Rate, now: Duration) -> Result<(), Duration> {
        let full_at = self.full_at.max(now) + rate.interval;
        let window = rate.interval * rate.burst;
        match full_at.checked_sub(window) {
            Some(first_free) if first_free > now => Err(first_free - now),
            _ => {
                self.full_at = full_at;
                Ok(())
            }
        }
    }

    /// Returns a token taken earlier.
    pub fn give_back(&mut self, rate: Rate) {
        self.full_at = self.full_at.saturating_sub(rate.interval);
    }

    /// Tokens that could be taken at `now`.
    pub fn available(&self, rate: Rate, now: Duration) -> u32 {
        let used = self.full_at.saturating_sub(now);
        let used = used.as_nanos().div_ceil(rate.interval.as_nanos().max(1));
        rate.burst
            .saturating_sub(u32::try_from(used).unwrap_or(u32::MAX))
    }

    /// Whether the bucket is full at `now` (and so need not be kept).
    pub fn is_full(&self, now: Duration) -> bool {
        self.full_at <= now
    }
}

/// How many of something each key holds (connections per address,
/// sessions per source), with a limit per key; keys holding none are
/// forgotten.
#[derive(Debug)]
pub struct Tally<K> {
    counts: std::collections::HashMap<K, usize>,
    total: usize,
}

impl<K> Default for Tally<K> {
    fn default() -> Self {
        Self {
            counts: std::collections::HashMap::new(),
            total: 0,
        }
    }
}

impl<K: Eq + std::hash::Hash + Clone> Tally<K> {
    /// Counts one more for `key` if it holds fewer than `limit`.
    pub fn take(&mut self, key: &K, limit: usize) -> bool {
        let held = self.counts.get(key).copied().unwrap_or(0);
        if held >= limit {
            return false;
        }
        self.counts.insert(key.clone(), held + 1);
        self.total += 1;
        true
    }

    /// Counts one less for `key` (one it took).
    pub fn release(&mut self, key: &K) {
        if let Some(held) = self.counts.get_mut(key) {
            *held -= 1;
            self.total -= 1;
            if *held == 0 {
                self.counts.remove(key);
            }
        }
    }

    pub fn held(&self, key: &K) -> usize {
        self.counts.get(key).copied().unwrap_or(0)
    }

    /// All keys together.
    pub fn total(&self) -> usize {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: Rate = Rate {
        burst: 3,
        interval: Duration::from_secs(60),
    };

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_burst_then_one_per_interval() {
        let mut bucket = Bucket::default();
        let t0 = secs(1_000_000);
        assert_eq!(bucket.available(RATE, t0), 3);
        for _ in 0..3 {
            bucket.take(RATE, t0).unwrap();
        }
        assert_eq!(bucket.available(RATE, t0), 0);
        assert_eq!(bucket.take(RATE, t0), Err(secs(60)));
        assert_eq!(bucket.take(RATE, t0 + secs(59)), Err(secs(1)));
        bucket.take(RATE, t0 + secs(60)).unwrap();
        assert_eq!(bucket.take(RATE, t0 + secs(60)), Err(secs(60)));
        // Idle long enough, it is full again and nothing more.
        assert!(bucket.is_full(t0 + secs(240)));
        assert_eq!(bucket.available(RATE, t0 + secs(10_000)), 3);
    }

    #[test]
    fn a_token_given_back_can_be_taken_again() {
        let mut bucket = Bucket::default();
        let t0 = secs(500);
        for _ in 0..3 {
            bucket.take(RATE, t0).unwrap();
        }
        bucket.give_back(RATE);
        assert_eq!(bucket.available(RATE, t0), 1);
        bucket.take(RATE, t0).unwrap();
        assert!(bucket.take(RATE, t0).is_err());
        // Giving back more than was taken never makes room beyond the burst.
        let mut idle = Bucket::default();
        idle.give_back(RATE);
        idle.give_back(RATE);
        assert_eq!(idle.available(RATE, t0), 3);
        for _ in 0..3 {
            idle.take(RATE, t0).unwrap();
        }
        assert!(idle.take(RATE, t0).is_err());
        let mut empty = Bucket::empty(RATE, t0);
        assert_eq!(empty.available(RATE, t0), 0);
        assert_eq!(empty.take(RATE, t0), Err(secs(60)));
    }

    #[test]
    fn a_tally_keeps_each_key_under_its_limit_and_forgets_empty_keys() {
        let mut tally = Tally::default();
        assert!(tally.take(&"a", 2));
        assert!(tally.take(&"a", 2));
        assert!(!tally.take(&"a", 2));
        assert!(tally.take(&"b", 2));
        assert_eq!((tally.held(&"a"), tally.total()), (2, 3));
        tally.release(&"a");
        tally.release(&"a");
        tally.release(&"a");
        assert_eq!((tally.held(&"a"), tally.total()), (0, 1));
        assert!(tally.counts.len() == 1);
    }

    #[test]
    fn ipv6_sources_count_by_their_64() {
        let key = |s: &str| source_key(s.parse().unwrap());
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(describe_source(key("2001:db8:1:2::1")), "2001:db8:1:2::/64");
        assert_eq!(key("::ffff:192.0.2.7"), key("192.0.2.7"));
        assert_eq!(describe_source(key("192.0.2.7")), "192.0.2.7");
    }

    #[test]
    fn time_near_zero_does_not_underflow() {
        let mut bucket = Bucket::default();
        for _ in 0..3 {
            bucket.take(RATE, Duration::ZERO).unwrap();
        }
        assert_eq!(bucket.take(RATE, Duration::ZERO), Err(secs(60)));
    }
}
