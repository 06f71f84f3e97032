//! What one peer, one address or one computer ID may cost the relay:
//! connection counts (all together, and per source address by how far a
//! connection got) and request rates (pairings, new computer IDs).
//!
//! Connections that have proven something — a host's control connection
//! after its key proof, a host's data connection that matched a waiting
//! client, a client that was paired — count against a much higher
//! per-address allowance than connections that have not, so that an office
//! of five hundred PCs behind one NAT address can register while a single
//! address still cannot hold many unauthenticated connections. Connections
//! that have not sent their first message yet can be evicted, oldest first,
//! when the relay is full: idle connections cannot keep people out.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proto::rate::{source_key, Bucket, Rate};
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

/// How far a connection got, which decides the per-address allowance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    /// Nothing proven yet.
    Open,
    /// A registered host, a host's matched data connection, a paired client.
    Proven,
}

#[derive(Default)]
struct Counts {
    total: usize,
    open: HashMap<IpAddr, usize>,
    proven: HashMap<IpAddr, usize>,
    /// Connections still before their first message, oldest first.
    evictable: BTreeMap<u64, oneshot::Sender<()>>,
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
    max_open_per_ip: usize,
    max_proven_per_ip: usize,
    counts: Mutex<Counts>,
}

impl Connections {
    pub fn new(max_total: usize, max_open_per_ip: usize, max_proven_per_ip: usize) -> Self {
        Self {
            max_total,
            max_open_per_ip,
            max_proven_per_ip,
            counts: Mutex::default(),
        }
    }

    pub fn max_total(&self) -> usize {
        self.max_total
    }

    /// Takes a place for a new connection from `ip`. When the relay is full,
    /// the oldest connection still before its first message is told to
    /// leave. `conn` orders connections by age.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, conn: u64) -> Result<(Slot, Evict), Refusal> {
        let key = source_key(ip);
        let mut counts = self.counts.lock().expect("not poisoned");
        let open = counts.open.get(&key).copied().unwrap_or(0);
        if open >= self.max_open_per_ip {
            return Err(Refusal::PerAddress);
        }
        if counts.total >= self.max_total {
            let Some((_, evict)) = counts.evictable.pop_first() else {
                return Err(Refusal::Full);
            };
            // Its place is handed over when its task ends; until then the
            // relay is one over, which the descriptor reserve covers.
            let _ = evict.send(());
        }
        counts.total += 1;
        *counts.open.entry(key).or_insert(0) += 1;
        let (evict_tx, evict) = oneshot::channel();
        counts.evictable.insert(conn, evict_tx);
        Ok((
            Slot {
                connections: self.clone(),
                ip: key,
                conn,
                standing: Standing::Open,
            },
            evict,
        ))
    }

    /// Connections open now (for tests and logs).
    pub fn total(&self) -> usize {
        self.counts.lock().expect("not poisoned").total
    }
}

/// One connection's place; given back when dropped.
pub struct Slot {
    connections: Arc<Connections>,
    ip: IpAddr,
    conn: u64,
    standing: Standing,
}

impl Slot {
    /// The first message arrived: no longer evicted to make room.
    pub fn settle(&self) {
        let mut counts = self.connections.counts.lock().expect("not poisoned");
        counts.evictable.remove(&self.conn);
    }

    /// The connection proved itself: it moves to the higher allowance.
    /// Returns false when its address already holds as many as it may.
    pub fn prove(&mut self) -> bool {
        if self.standing == Standing::Proven {
            return true;
        }
        let max = self.connections.max_proven_per_ip;
        let mut counts = self.connections.counts.lock().expect("not poisoned");
        let proven = counts.proven.get(&self.ip).copied().unwrap_or(0);
        if proven >= max {
            return false;
        }
        counts.evictable.remove(&self.conn);
        decrement(&mut counts.open, self.ip);
        *counts.proven.entry(self.ip).or_insert(0) += 1;
        self.standing = Standing::Proven;
        true
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.connections.counts.lock().expect("not poisoned");
        counts.total -= 1;
        counts.evictable.remove(&self.conn);
        match self.standing {
            Standing::Open => decrement(&mut counts.open, self.ip),
            Standing::Proven => decrement(&mut counts.proven, self.ip),
        }
    }
}

fn decrement(map: &mut HashMap<IpAddr, usize>, ip: IpAddr) {
    if let Some(n) = map.get_mut(&ip) {
        *n -= 1;
        if *n == 0 {
            map.remove(&ip);
        }
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

    pub fn rate(&self) -> Option<Rate> {
        self.rate
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
}

/// Limits for one source address: keyed by [`source_key`].
pub fn take_for_source(limit: &Keyed<IpAddr>, ip: IpAddr) -> Result<(), Duration> {
    limit.take(&source_key(ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn when_full_the_oldest_unsettled_connection_is_evicted() {
        let conns = Arc::new(Connections::new(3, 10, 10));
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
    fn proven_connections_have_their_own_allowance_per_address() {
        let conns = Arc::new(Connections::new(1000, 2, 500));
        let mut held = Vec::new();
        for n in 0..500 {
            let (mut slot, _) = conns.admit(ip(1), n).unwrap();
            assert!(slot.prove(), "host {n}");
            held.push(slot);
        }
        // Unproven connections from the same address: two at most.
        let (_x, _) = conns.admit(ip(1), 600).unwrap();
        let (mut y, _) = conns.admit(ip(1), 601).unwrap();
        assert_eq!(conns.admit(ip(1), 602).err(), Some(Refusal::PerAddress));
        assert!(!y.prove(), "the proven allowance is used up");
        held.pop();
        assert!(y.prove());
        let (_z, _) = conns.admit(ip(1), 603).unwrap();
    }

    #[test]
    fn keyed_limits_count_per_key_and_forget_idle_keys() {
        let rate = Rate {
            burst: 2,
            interval: Duration::from_secs(3600),
        };
        let limit = Keyed::new(Some(rate));
        assert!(take_for_source(&limit, ip(1)).is_ok());
        assert!(take_for_source(&limit, ip(1)).is_ok());
        assert!(take_for_source(&limit, ip(1)).is_err());
        assert!(take_for_source(&limit, ip(2)).is_ok());
        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(take_for_source(&limit, v6("2001:db8::1")).is_ok());
        assert!(take_for_source(&limit, v6("2001:db8::2")).is_ok());
        assert!(take_for_source(&limit, v6("2001:db8::3")).is_err());
        let unlimited = Keyed::<IpAddr>::new(None);
        for _ in 0..1000 {
            assert!(unlimited.take(&ip(1)).is_ok());
        }
    }
}
