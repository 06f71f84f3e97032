//! Slowing guessers down without letting them lock the owner out.
//!
//! The host takes an *attempt* before every question about a secret (a
//! one-time password, the host password) and gives it back only when the
//! answer proves the secret: an attempt the client abandons, breaks off or
//! answers wrongly stays counted. Attempts are limited twice:
//!
//! - **per caller**: a device the host admitted before is counted by its
//!   device key (the client's lasting key in the end-to-end channel, which
//!   no one else can present), anyone else by address (an IPv4 address, an
//!   IPv6 /64). [`SOURCE_LIMIT`] attempts in a row that prove nothing lock
//!   the caller out for 1 minute, doubling with each lockout up to 1 hour;
//!   each quiet hour forgives one doubling and the streak.
//! - **per host, in three budgets by who is asking** ([`Standing`]): a
//!   session that has proven the one-time password, a device the host
//!   admitted in the last 30 days, and anyone else. Each budget holds
//!   [`HOST_RATE`]`.burst` attempts and regains one every
//!   [`HOST_RATE`]`.interval`. Strangers guessing from any number of
//!   addresses share one budget, so together they get at most 10 attempts
//!   at once and 10 an hour after that, and they can empty only their own
//!   budget: the owner's known devices, and sessions that proved the
//!   one-time password, draw on others (an address is never enough to be
//!   known: many people may share it). Once a session proved the one-time
//!   password, its address's streak, which others behind the same address
//!   may have caused, no longer holds it back.
//!
//! The budgets and the known devices are kept in a file beside the config,
//! so a restart neither refills the strangers' budget nor makes the owner a
//! stranger (the short-lived streaks start afresh).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

pub use proto::rate::{describe_source, source_key};
use proto::rate::{Bucket, Rate};
use serde::{Deserialize, Serialize};

/// Attempts in a row from one caller that prove nothing before it is locked.
pub const SOURCE_LIMIT: u32 = 5;
const FIRST_BACKOFF: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// Each quiet period this long forgives one doubling of a caller's back-off.
const FORGIVE_AFTER: Duration = Duration::from_secs(3600);
/// The host-wide budget of each [`Standing`].
pub const HOST_RATE: Rate = Rate {
    burst: 10,
    interval: Duration::from_secs(6 * 60),
};
/// How long a device counts as known after it was admitted (and an address
/// as recently used, see [`Lockout::recently_admitted`]).
pub const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 3600);
/// Callers remembered at most; the least recently active are forgotten first.
const MAX_CALLERS: usize = 10_000;
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

/// A client device's lasting key in the end-to-end channel.
pub type DeviceKey = [u8; 32];

/// Who asks, as far as the host can tell: the address the relay reported
/// and the device key the end-to-end handshake proved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub addr: IpAddr,
    pub device: Option<DeviceKey>,
}

impl Caller {
    pub fn new(addr: IpAddr, device: &[u8]) -> Self {
        Self {
            addr: source_key(addr),
            device: device.try_into().ok(),
        }
    }
}

/// Who is asking, which decides the host-wide budget an attempt draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Nothing known about the caller.
    Stranger,
    /// The host admitted a session from this device in the last 30 days.
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
    /// This address, after failures from it.
    Address(IpAddr),
    /// This known device, after its own failures.
    Device,
    /// Everyone of this standing, after failures from many places.
    Host(Standing),
}

/// How a caller's own attempts are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Counted {
    Address(IpAddr),
    Device(DeviceKey),
}

/// One attempt taken by [`Lockout::begin`]; hand it to
/// [`Lockout::proven`] if the secret was proven, else just drop it.
#[derive(Debug)]
pub struct Charge {
    counted: Option<Counted>,
    standing: Standing,
    /// This attempt started the caller's lockout.
    locked_caller: bool,
}

#[derive(Debug, Clone)]
struct Streak {
    /// Attempts in a row that proved nothing (pending ones included).
    in_a_row: u32,
    /// Lockouts so far, less those forgiven (sets the next back-off).
    level: u32,
    locked_until: Option<SystemTime>,
    /// When the last attempt began; quiet time is counted from here.
    last: SystemTime,
}

impl Streak {
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

    /// Forgives one doubling per [`FORGIVE_AFTER`] of quiet (no attempt and
    /// no lockout running), and the streak with the first.
    fn forgive(&mut self, now: SystemTime) {
        let quiet_since = self
            .locked_until
            .map_or(self.last, |until| until.max(self.last));
        let quiet = now.duration_since(quiet_since).unwrap_or_default();
        let periods = (quiet.as_secs() / FORGIVE_AFTER.as_secs()) as u32;
        if periods > 0 {
            self.level = self.level.saturating_sub(periods);
            self.in_a_row = 0;
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

/// What outlives a restart (the streaks are short-lived and are not kept).
#[derive(Default, Serialize, Deserialize)]
#[serde(default)]
struct Kept {
    budgets: [Bucket; 3],
    /// Address → seconds since the Unix epoch a session from it was last
    /// admitted.
    recent_addrs: HashMap<IpAddr, u64>,
    /// Device key (hex) → seconds since the Unix epoch it was last admitted.
    known_devices: HashMap<String, u64>,
}

#[derive(Default)]
pub struct Lockout {
    streaks: HashMap<Counted, Streak>,
    budgets: [Bucket; 3],
    recent_addrs: HashMap<IpAddr, SystemTime>,
    known_devices: HashMap<DeviceKey, SystemTime>,
    /// Something worth keeping changed since [`take_changed`](Self::take_changed).
    changed: bool,
}

fn hex(key: &DeviceKey) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<DeviceKey> {
    let bytes: Option<Vec<u8>> = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect();
    bytes?.try_into().ok()
}

fn unix(at: SystemTime) -> u64 {
    since_epoch(at).as_secs()
}

fn from_unix(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

impl Lockout {
    /// The state kept in `path`, or a fresh one if there is none. A file
    /// that cannot be read is set aside and the host starts with every
    /// budget used up (they come back within the hour): a host that cannot
    /// start would keep its owner out, and full budgets would hand
    /// strangers a fresh start.
    pub fn load(path: &Path, now: SystemTime) -> Self {
        let read = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice::<Kept>(&bytes).map_err(|e| e.to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Self::default(),
            Err(e) => Err(e.to_string()),
        };
        let kept = read.unwrap_or_else(|why| {
            let aside = path.with_extension(format!("json.damaged-{}", unix(now)));
            let _ = std::fs::rename(path, &aside);
            tracing::error!(
                file = %path.display(),
                set_aside = %aside.display(),
                %why,
                "the lockout state could not be read: every budget starts used up and no \
                 device is known"
            );
            Kept {
                budgets: [Bucket::empty(HOST_RATE, since_epoch(now)); 3],
                ..Kept::default()
            }
        });
        Self {
            streaks: HashMap::new(),
            budgets: kept.budgets,
            recent_addrs: kept
                .recent_addrs
                .into_iter()
                .map(|(addr, at)| (addr, from_unix(at)))
                .collect(),
            known_devices: kept
                .known_devices
                .iter()
                .filter_map(|(key, at)| Some((unhex(key)?, from_unix(*at))))
                .collect(),
            changed: false,
        }
    }

    /// What must outlive a restart, as the file's contents.
    pub fn to_json(&self) -> Vec<u8> {
        let kept = Kept {
            budgets: self.budgets,
            recent_addrs: self
                .recent_addrs
                .iter()
                .map(|(addr, at)| (*addr, unix(*at)))
                .collect(),
            known_devices: self
                .known_devices
                .iter()
                .map(|(key, at)| (hex(key), unix(*at)))
                .collect(),
        };
        serde_json::to_vec(&kept).expect("the lockout state serialises")
    }

    /// Whether something worth keeping changed since the last call.
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// Whether a session from `addr` was admitted lately (used to keep room
    /// for it when the host is busy; never to count its attempts apart).
    pub fn recently_admitted(&self, addr: IpAddr, now: SystemTime) -> bool {
        self.recent_addrs
            .get(&source_key(addr))
            .is_some_and(|at| now.duration_since(*at).unwrap_or_default() < KNOWN_FOR)
    }

    fn device_known(&self, caller: &Caller, now: SystemTime) -> bool {
        caller
            .device
            .and_then(|key| self.known_devices.get(&key))
            .is_some_and(|at| now.duration_since(*at).unwrap_or_default() < KNOWN_FOR)
    }

    /// Whether the caller's device was admitted recently.
    pub fn standing(&self, caller: &Caller, now: SystemTime) -> Standing {
        if self.device_known(caller, now) {
            Standing::Known
        } else {
            Standing::Stranger
        }
    }

    /// How the caller's own attempts are counted: a known device by its key,
    /// anyone else by address; a session that proved the one-time password
    /// only in its budget.
    fn counted(&self, caller: &Caller, standing: Standing, now: SystemTime) -> Option<Counted> {
        match (standing, caller.device) {
            (Standing::Verified, _) => None,
            (_, Some(key)) if self.device_known(caller, now) => Some(Counted::Device(key)),
            _ => Some(Counted::Address(caller.addr)),
        }
    }

    /// Whether an attempt could begin now, without taking one.
    pub fn check(
        &self,
        caller: &Caller,
        standing: Standing,
        now: SystemTime,
    ) -> Result<(), Locked> {
        if let Some(counted) = self.counted(caller, standing, now) {
            if let Some(wait) = self.streaks.get(&counted).and_then(|s| s.remaining(now)) {
                let scope = match counted {
                    Counted::Address(addr) => Scope::Address(addr),
                    Counted::Device(_) => Scope::Device,
                };
                return Err(Locked { wait, scope });
            }
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

    /// Takes an attempt for `caller` before the host asks for a secret.
    pub fn begin(
        &mut self,
        caller: &Caller,
        standing: Standing,
        now: SystemTime,
    ) -> Result<Charge, Locked> {
        let counted = self.counted(caller, standing, now);
        if let Some(streak) = counted.and_then(|c| self.streaks.get_mut(&c)) {
            streak.forgive(now);
        }
        self.check(caller, standing, now)?;
        self.budgets[standing.index()]
            .take(HOST_RATE, since_epoch(now))
            .expect("checked above");
        self.changed = true;
        let mut locked_caller = false;
        if let Some(counted) = counted {
            if self.streaks.len() >= MAX_CALLERS && !self.streaks.contains_key(&counted) {
                forget_oldest(&mut self.streaks, |s| s.last);
            }
            let streak = self
                .streaks
                .entry(counted)
                .or_insert_with(|| Streak::new(now));
            streak.in_a_row += 1;
            streak.last = now;
            locked_caller = streak.in_a_row >= SOURCE_LIMIT;
            if locked_caller {
                streak.locked_until = Some(now + backoff(streak.level));
                streak.level += 1;
                streak.in_a_row = 0;
            }
        }
        Ok(Charge {
            counted,
            standing,
            locked_caller,
        })
    }

    /// The attempt proved its secret: it no longer counts.
    pub fn proven(&mut self, charge: Charge) {
        self.budgets[charge.standing.index()].give_back(HOST_RATE);
        self.changed = true;
        let Some(streak) = charge.counted.and_then(|c| self.streaks.get_mut(&c)) else {
            return;
        };
        if charge.locked_caller {
            streak.locked_until = None;
            streak.level = streak.level.saturating_sub(1);
            streak.in_a_row = SOURCE_LIMIT - 1;
        } else {
            streak.in_a_row = streak.in_a_row.saturating_sub(1);
        }
    }

    /// A session from `caller` was admitted: its device's failures are
    /// forgotten and it counts as known for [`KNOWN_FOR`]. (Its address's
    /// streak stays: others behind that address may have caused it.)
    pub fn admitted(&mut self, caller: &Caller, now: SystemTime) {
        remember(&mut self.recent_addrs, caller.addr, now);
        if let Some(key) = caller.device {
            self.streaks.remove(&Counted::Device(key));
            remember(&mut self.known_devices, key, now);
        }
        self.changed = true;
    }

    /// Attempts left before a lockout, counting the one `charge` holds: 1
    /// when it is the last.
    pub fn tries_left(&self, charge: &Charge, now: SystemTime) -> u32 {
        if charge.locked_caller {
            return 1;
        }
        let own = charge
            .counted
            .and_then(|c| self.streaks.get(&c))
            .map_or(SOURCE_LIMIT, |s| {
                SOURCE_LIMIT - s.in_a_row.min(SOURCE_LIMIT)
            });
        let budget = &self.budgets[charge.standing.index()];
        own.min(budget.available(HOST_RATE, since_epoch(now))) + 1
    }
}

fn remember<K: Eq + Hash + Copy>(known: &mut HashMap<K, SystemTime>, key: K, now: SystemTime) {
    if known.len() >= MAX_KNOWN && !known.contains_key(&key) {
        forget_oldest(known, |at| *at);
    }
    known.insert(key, now);
}

fn forget_oldest<K: Eq + Hash + Copy, V>(map: &mut HashMap<K, V>, when: impl Fn(&V) -> SystemTime) {
    if let Some(oldest) = map.iter().min_by_key(|(_, v)| when(v)).map(|(k, _)| *k) {
        map.remove(&oldest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> Caller {
        at(IpAddr::from([192, 0, 2, last]))
    }

    fn at(addr: IpAddr) -> Caller {
        Caller::new(addr, &[])
    }

    fn device(addr: u8, key: u8) -> Caller {
        Caller::new(IpAddr::from([198, 51, 100, addr]), &[key; 32])
    }

    fn t0() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000)
    }

    fn mins(m: u64) -> Duration {
        Duration::from_secs(60 * m)
    }

    /// Begins `n` attempts that are never proven.
    fn fail(lock: &mut Lockout, caller: Caller, standing: Standing, n: u32, now: SystemTime) {
        for i in 0..n {
            lock.begin(&caller, standing, now)
                .unwrap_or_else(|e| panic!("attempt {} refused: {e:?}", i + 1));
        }
    }

    fn address(caller: Caller) -> Scope {
        Scope::Address(caller.addr)
    }

    #[test]
    fn five_in_a_row_lock_the_address_with_a_growing_backoff() {
        let mut lock = Lockout::default();
        let s = Standing::Stranger;
        let first = lock.begin(&ip(1), s, t0()).unwrap();
        assert_eq!(lock.tries_left(&first, t0()), SOURCE_LIMIT);
        fail(&mut lock, ip(1), s, 3, t0());
        let fifth = lock.begin(&ip(1), s, t0()).unwrap();
        assert_eq!(lock.tries_left(&fifth, t0()), 1, "the fifth is the last");
        let locked = lock.begin(&ip(1), s, t0()).unwrap_err();
        assert_eq!(locked.scope, address(ip(1)));
        assert_eq!(locked.wait, mins(1));
        // Another address is not affected.
        assert!(lock.check(&ip(2), s, t0()).is_ok());
        let later = t0() + mins(1);
        assert!(lock.check(&ip(1), s, later).is_ok());
        // Half an hour later the host budget is full again; the back-off
        // doubles (half an hour is not quiet long enough to forgive).
        let later = later + mins(30);
        fail(&mut lock, ip(1), s, 5, later);
        assert_eq!(lock.begin(&ip(1), s, later).unwrap_err().wait, mins(2));
    }

    #[test]
    fn a_proven_attempt_does_not_count_and_admission_makes_the_device_known() {
        let mut lock = Lockout::default();
        let s = Standing::Stranger;
        let laptop = device(1, 7);
        fail(&mut lock, laptop, s, 4, t0());
        let fifth = lock.begin(&laptop, s, t0()).unwrap();
        // The fifth started a lockout, but it proves the secret: undone.
        assert!(lock.check(&laptop, s, t0()).is_err());
        lock.proven(fifth);
        assert!(lock.check(&laptop, s, t0()).is_ok());
        let again = lock.begin(&laptop, s, t0()).unwrap();
        assert_eq!(lock.tries_left(&again, t0()), 1);
        lock.proven(again);
        lock.admitted(&laptop, t0());
        assert_eq!(lock.standing(&laptop, t0()), Standing::Known);
        // Counted by its key now, with a clean streak.
        let fresh = lock.begin(&laptop, Standing::Known, t0()).unwrap();
        assert_eq!(lock.tries_left(&fresh, t0()), SOURCE_LIMIT);
        assert_eq!(lock.standing(&laptop, t0() + KNOWN_FOR), Standing::Stranger);
        // An address alone is never known: many people may share it.
        assert_eq!(lock.standing(&device(1, 8), t0()), Standing::Stranger);
        assert!(lock.recently_admitted(laptop.addr, t0()));
    }

    #[test]
    fn back_off_levels_and_streaks_decay_with_quiet_hours() {
        let mut lock = Lockout::default();
        let s = Standing::Known;
        let mut now = t0();
        // Four lockouts in a row: 1, 2, 4, 8 minutes (the budget refills meanwhile).
        for expected in [1, 2, 4, 8] {
            fail(&mut lock, ip(1), s, 5, now);
            let wait = lock.check(&ip(1), s, now).unwrap_err().wait;
            assert_eq!(wait, mins(expected));
            now += mins(60);
        }
        // Three quiet hours after the last lockout ended forgive three of
        // the four doublings.
        now += mins(128);
        fail(&mut lock, ip(1), s, 5, now);
        assert_eq!(lock.check(&ip(1), s, now).unwrap_err().wait, mins(2));
        // A day of quiet forgives everything.
        now += mins(24 * 60);
        fail(&mut lock, ip(1), s, 5, now);
        assert_eq!(lock.check(&ip(1), s, now).unwrap_err().wait, mins(1));
        // Four failures weeks ago do not make the next one the last.
        now += mins(24 * 60);
        fail(&mut lock, ip(1), s, 4, now);
        now += mins(14 * 24 * 60);
        let next = lock.begin(&ip(1), s, now).unwrap();
        assert_eq!(lock.tries_left(&next, now), SOURCE_LIMIT);
    }

    #[test]
    fn the_backoff_stops_at_an_hour() {
        let mut lock = Lockout::default();
        let mut now = t0();
        let mut last = Duration::ZERO;
        for _ in 0..10 {
            fail(&mut lock, ip(1), Standing::Stranger, 5, now);
            last = lock
                .check(&ip(1), Standing::Stranger, now)
                .unwrap_err()
                .wait;
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
                let source = at(IpAddr::from((0x0a00_0000u32 + next).to_be_bytes()));
                match lock.begin(&source, s, now) {
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
    fn strangers_cannot_lock_out_known_devices_or_verified_sessions() {
        let mut lock = Lockout::default();
        lock.admitted(&device(1, 7), t0());
        for i in 0..10 {
            lock.begin(&ip(i), Standing::Stranger, t0()).unwrap();
        }
        assert!(lock.check(&ip(99), Standing::Stranger, t0()).is_err());
        // Anyone who passed the one-time password.
        let attempt = lock.begin(&ip(98), Standing::Verified, t0()).unwrap();
        lock.proven(attempt);
        // The owner's laptop, from a hotel it never used before.
        let laptop = device(99, 7);
        assert_eq!(lock.standing(&laptop, t0()), Standing::Known);
        let attempt = lock.begin(&laptop, Standing::Known, t0()).unwrap();
        lock.proven(attempt);
        // And strangers come back one every six minutes.
        let soon = t0() + HOST_RATE.interval;
        lock.begin(&ip(97), Standing::Stranger, soon).unwrap();
        assert!(lock.check(&ip(96), Standing::Stranger, soon).is_err());
    }

    #[test]
    fn others_behind_the_same_address_lock_neither_a_known_device_nor_a_session_past_the_code() {
        let mut lock = Lockout::default();
        let owner = device(5, 9);
        lock.admitted(&owner, t0() - mins(60));
        // Someone else at the owner's address (a shared NAT) fails five times.
        let neighbour = device(5, 3);
        fail(&mut lock, neighbour, Standing::Stranger, 5, t0());
        assert_eq!(
            lock.check(&neighbour, Standing::Stranger, t0())
                .unwrap_err()
                .scope,
            address(neighbour)
        );
        // The owner's device is counted by its key, not the address.
        let standing = lock.standing(&owner, t0());
        assert!(lock.check(&owner, standing, t0()).is_ok());
        // A new device of the owner's, once it proved the code, is not held
        // back by the address's lockout either.
        let new_phone = device(5, 4);
        assert!(lock.check(&new_phone, Standing::Stranger, t0()).is_err());
        let attempt = lock.begin(&new_phone, Standing::Verified, t0()).unwrap();
        lock.proven(attempt);
        // A known device's own failures lock it, by its key, wherever it is.
        fail(&mut lock, owner, standing, 5, t0());
        let elsewhere = device(77, 9);
        let locked = lock.check(&elsewhere, standing, t0()).unwrap_err();
        assert_eq!(locked.scope, Scope::Device);
    }

    #[test]
    fn ipv6_callers_are_counted_by_their_64() {
        let a = at("2001:db8:1:2::1".parse().unwrap());
        let b = at("2001:db8:1:2:ffff::9".parse().unwrap());
        let c = at("2001:db8:1:3::1".parse().unwrap());
        let mut lock = Lockout::default();
        fail(&mut lock, a, Standing::Stranger, 3, t0());
        fail(&mut lock, b, Standing::Stranger, 2, t0());
        assert_eq!(
            lock.check(&a, Standing::Stranger, t0()).unwrap_err().scope,
            address(a)
        );
        assert!(lock.check(&c, Standing::Stranger, t0()).is_ok());
    }

    #[test]
    fn budgets_and_known_devices_outlive_a_restart_and_a_damaged_file_starts_cautious() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host.lockout.json");
        let mut lock = Lockout::load(&path, t0());
        assert!(!lock.take_changed());
        lock.admitted(&device(1, 7), t0());
        for i in 0..10 {
            lock.begin(&ip(i), Standing::Stranger, t0()).unwrap();
        }
        assert!(lock.take_changed());
        std::fs::write(&path, lock.to_json()).unwrap();
        let again = Lockout::load(&path, t0());
        assert!(again.check(&ip(50), Standing::Stranger, t0()).is_err());
        assert_eq!(again.standing(&device(2, 7), t0()), Standing::Known);
        assert_eq!(again.standing(&device(3, 8), t0()), Standing::Stranger);
        assert!(again.recently_admitted(device(1, 8).addr, t0()));
        // A file from a version with fewer fields still loads.
        std::fs::write(&path, br#"{"known_devices":{}}"#).unwrap();
        assert!(Lockout::load(&path, t0())
            .check(&ip(50), Standing::Stranger, t0())
            .is_ok());
        // A damaged one is set aside; everyone waits for the budgets to refill.
        std::fs::write(&path, b"{ not json").unwrap();
        let cautious = Lockout::load(&path, t0());
        assert!(!path.exists(), "the damaged file was set aside");
        for standing in [Standing::Stranger, Standing::Known, Standing::Verified] {
            let locked = cautious.check(&device(4, 4), standing, t0()).unwrap_err();
            assert_eq!(locked.wait, HOST_RATE.interval);
        }
    }
}
