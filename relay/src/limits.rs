//! What one peer, one address or one computer ID may cost the relay:
//! connection counts (all together, and per source address by what a
//! connection turned out to be) and request rates (pairings, new IDs).
//!
//! A connection that has proven nothing counts against a small allowance
//! per address. Once it proves what it is, it moves to the allowance of its
//! kind: a host's control connection after its key proof and claim, or a
//! host's data connection that matched a waiting client (an office of five
//! hundred PCs behind one NAT address must fit), or a client that was
//! paired (many people behind one carrier-grade NAT address). Connections
//! that have not sent their first message can be evicted, oldest first,
//! when the relay is full: idle connections cannot keep people out.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proto::rate::{source_key, Bucket, Rate, Tally};
use tokio::sync::oneshot;

/// Tells an evictable connection to give up its place.
pub type Evict = oneshot::Receiver<()>;

/// The file descriptors the relay keeps for itself (listener, registry,
/// runtime, web files) and for refusing connections politely when full.
pub const FD_RESERVE: u64 = 96;

/// Connections the relay serves at once, from the file-descriptor limit.
pub fn connections_for_fd_limit(fd_limit: u64) -> usize {
    usize::try_from(fd_limit.saturating_sub(FD_RESERVE).max(16)).unwrap_or(usize::MAX)
}

/// What a connection turned out to be, which decides the allowance per
/// address it counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Nothing proven yet.
    Open,
    /// A registered host's control connection, or a host's data connection
    /// matched to a waiting client.
    Host,
    /// A client paired with its host.
    Client,
}

/// How many connections of each kind one address may hold.
#[derive(Debug, Clone, Copy)]
pub struct PerAddress {
    pub open: usize,
    pub host: usize,
    pub client: usize,
}

impl PerAddress {
    fn of(self, kind: Kind) -> usize {
        match kind {
            Kind::Open => self.open,
            Kind::Host => self.host,
            Kind::Client => self.client,
        }
    }
}

#[derive(Default)]
struct Counts {
    open: Tally<IpAddr>,
    host: Tally<IpAddr>,
    client: Tally<IpAddr>,
    /// Connections still before their first message, oldest first.
    evictable: BTreeMap<u64, oneshot::Sender<()>>,
}

impl Counts {
    fn tally(&mut self, kind: Kind) -> &mut Tally<IpAddr> {
        match kind {
            Kind::Open => &mut self.open,
            Kind::Host => &mut self.host,
            Kind::Client => &mut self.client,
        }
    }

    fn total(&self) -> usize {
        self.open.total() + self.host.total() + self.client.total()
    }
}

/// Why a new connection is not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its address holds as many unproven connections as it may.
    PerAddress,
    /// The relay is full and no connection can be evicted.
    Full,
}

/// Connection accounting for one relay.
pub struct Connections {
    max_total: usize,
    per_address: PerAddress,
    counts: Mutex<Counts>,
}

impl Connections {
    pub fn new(max_total: usize, per_address: PerAddress) -> Self {
        Self {
            max_total,
            per_address,
            counts: Mutex::default(),
        }
    }

    /// Takes a place for a new connection from `ip`. When the relay is full,
    /// the oldest connection still before its first message is told to
    /// leave. `conn` orders connections by age.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, conn: u64) -> Result<(Slot, Evict), Refusal> {
        let key = source_key(ip);
        let mut counts = self.counts.lock().expect("not poisoned");
        if counts.open.held(&key) >= self.per_address.open {
            return Err(Refusal::PerAddress);
        }
        if counts.total() >= self.max_total {
            let Some((_, evict)) = counts.evictable.pop_first() else {
                return Err(Refusal::Full);
            };
            // Its place is handed over when its task ends; until then the
            // relay is one over, which the descriptor reserve covers.
            let _ = evict.send(());
        }
        counts.open.take(&key, usize::MAX);
        let (evict_tx, evict) = oneshot::channel();
        counts.evictable.insert(conn, evict_tx);
        Ok((
            Slot {
                connections: self.clone(),
                ip: key,
                conn,
                kind: Kind::Open,
            },
            evict,
        ))
    }

    /// Connections open now.
    pub fn total(&self) -> usize {
        self.counts.lock().expect("not poisoned").total()
    }
}

/// One connection's place; given back when dropped.
pub struct Slot {
    connections: Arc<Connections>,
    ip: IpAddr,
    conn: u64,
    kind: Kind,
}

impl Slot {
    /// The first message arrived: no longer evicted to make room.
    pub fn settle(&self) {
        let mut counts = self.connections.counts.lock().expect("not poisoned");
        counts.evictable.remove(&self.conn);
    }

    /// The connection proved to be `kind`: it moves to that allowance.
    /// Returns false when its address already holds as many as it may.
    pub fn prove(&mut self, kind: Kind) -> bool {
        if self.kind == kind {
            return true;
        }
        let limit = self.connections.per_address.of(kind);
        let mut counts = self.connections.counts.lock().expect("not poisoned");
        if !counts.tally(kind).take(&self.ip, limit) {
            return false;
        }
        counts.evictable.remove(&self.conn);
        counts.tally(self.kind).release(&self.ip);
        self.kind = kind;
        true
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.connections.counts.lock().expect("not poisoned");
        counts.evictable.remove(&self.conn);
        counts.tally(self.kind).release(&self.ip);
    }
}

/// A rate limit per key (source address, computer ID). Keys whose bucket is
/// full again are forgotten from time to time, so the map holds only keys
/// active within the last burst's worth of intervals.
pub struct Keyed<K> {
    rate: Option<Rate>,
    started: Instant,
    buckets: Mutex<(HashMap<K, Bucket>, usize)>,
}

impl<K: Eq + Hash + Clone> Keyed<K> {
    /// `None`: no limit.
    pub fn new(rate: Option<Rate>) -> Self {
        Self {
            rate,
            started: Instant::now(),
            buckets: Mutex::new((HashMap::new(), 1024)),
        }
    }

    /// Takes one for `key`, or says how long until it may.
    pub fn take(&self, key: &K) -> Result<(), Duration> {
        let Some(rate) = self.rate else {
            return Ok(());
        };
        let now = self.started.elapsed();
        let mut guard = self.buckets.lock().expect("not poisoned");
        let (buckets, prune_at) = &mut *guard;
        if buckets.len() >= *prune_at {
            buckets.retain(|_, bucket| !bucket.is_full(now));
            *prune_at = (buckets.len() * 2).max(1024);
        }
        buckets.entry(key.clone()).or_default().take(rate, now)
    }

    /// Whether `key` has taken nothing lately (its bucket is full).
    pub fn idle(&self, key: &K) -> bool {
        let now = self.started.elapsed();
        let guard = self.buckets.lock().expect("not poisoned");
        guard.0.get(key).is_none_or(|bucket| bucket.is_full(now))
    }

    /// Whether `key` could take one now, without taking it.
    pub fn has_room(&self, key: &K) -> bool {
        let Some(rate) = self.rate else {
            return true;
        };
        let now = self.started.elapsed();
        let guard = self.buckets.lock().expect("not poisoned");
        guard
            .0
            .get(key)
            .is_none_or(|bucket| bucket.available(rate, now) > 0)
    }
}

/// The unit new computer IDs are limited by: an IPv4 address, or an IPv6
/// /48 (what one site is usually given; a /64 is too cheap to come by).
pub fn enrolment_key(ip: IpAddr) -> IpAddr {
    match source_key(ip) {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !((1u128 << 80) - 1)).into()),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    const PER_ADDRESS: PerAddress = PerAddress {
        open: 10,
        host: 10,
        client: 10,
    };

    #[test]
    fn when_full_the_oldest_unsettled_connection_is_evicted() {
        let conns = Arc::new(Connections::new(3, PER_ADDRESS));
        let (a, mut evict_a) = conns.admit(ip(1), 1).unwrap();
        let (b, mut evict_b) = conns.admit(ip(1), 2).unwrap();
        let (c, _evict_c) = conns.admit(ip(2), 3).unwrap();
        a.settle();
        // Full: the oldest connection still before its first message goes.
        let (d, _evict_d) = conns.admit(ip(3), 4).unwrap();
        assert!(evict_a.try_recv().is_err(), "a settled connection stays");
        assert!(evict_b.try_recv().is_ok());
        drop(b);
        assert_eq!(conns.total(), 3);
        c.settle();
        d.settle();
        assert_eq!(conns.admit(ip(4), 5).err(), Some(Refusal::Full));
        drop((a, c, d));
        assert_eq!(conns.total(), 0);
    }

    #[test]
    fn each_kind_has_its_own_allowance_per_address() {
        let per_address = PerAddress {
            open: 2,
            host: 500,
            client: 3,
        };
        let conns = Arc::new(Connections::new(1000, per_address));
        let mut held = Vec::new();
        for n in 0..500 {
            let (mut slot, _) = conns.admit(ip(1), n).unwrap();
            assert!(slot.prove(Kind::Host), "host {n}");
            held.push(slot);
        }
        // Unproven connections from the same address: two at most.
        let (_x, _) = conns.admit(ip(1), 600).unwrap();
        let (mut y, _) = conns.admit(ip(1), 601).unwrap();
        assert_eq!(conns.admit(ip(1), 602).err(), Some(Refusal::PerAddress));
        assert!(!y.prove(Kind::Host), "the hosts' allowance is used up");
        assert!(y.prove(Kind::Client), "clients have their own");
        held.pop();
        let (mut z, _) = conns.admit(ip(1), 603).unwrap();
        assert!(z.prove(Kind::Host));
        let mut clients: Vec<Slot> = (0..2)
            .map(|n| {
                let (mut slot, _) = conns.admit(ip(1), 700 + n).unwrap();
                assert!(slot.prove(Kind::Client));
                slot
            })
            .collect();
        let (mut w, _) = conns.admit(ip(1), 710).unwrap();
        assert!(!w.prove(Kind::Client), "three paired sessions at most");
        clients.pop();
        assert!(w.prove(Kind::Client));
        drop((held, clients, y, z, w, _x));
        assert_eq!(conns.total(), 0);
    }

    #[test]
    fn keyed_limits_count_per_key_and_forget_idle_keys() {
        let rate = Rate {
            burst: 2,
            interval: Duration::from_secs(3600),
        };
        let limit = Keyed::new(Some(rate));
        let key = source_key;
        assert!(limit.idle(&key(ip(1))));
        assert!(limit.take(&key(ip(1))).is_ok());
        assert!(!limit.idle(&key(ip(1))));
        assert!(limit.has_room(&key(ip(1))));
        assert!(limit.take(&key(ip(1))).is_ok());
        assert!(!limit.has_room(&key(ip(1))));
        assert!(limit.take(&key(ip(1))).is_err());
        assert!(limit.take(&key(ip(2))).is_ok());
        let v6 = |s: &str| source_key(s.parse::<IpAddr>().unwrap());
        assert!(limit.take(&v6("2001:db8::1")).is_ok());
        assert!(limit.take(&v6("2001:db8::2")).is_ok());
        assert!(limit.take(&v6("2001:db8::3")).is_err());
        let unlimited = Keyed::<IpAddr>::new(None);
        for _ in 0..1000 {
            assert!(unlimited.take(&ip(1)).is_ok());
        }
    }

    #[test]
    fn new_ids_are_limited_per_ipv6_48() {
        let key = |s: &str| enrolment_key(s.parse().unwrap());
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:ffff::1"));
        assert_ne!(key("2001:db8:1::1"), key("2001:db8:2::1"));
        assert_eq!(key("192.0.2.7"), "192.0.2.7".parse::<IpAddr>().unwrap());
    }
}
