//! Resume tickets: a device the host admitted may come back once without
//! the one-time password — when its connection broke (a Wi-Fi blip, a relay
//! restart, a laptop's sleep) or when an RDP client opens another connection
//! in raw mode. The host password is still proven each time.
//!
//! A ticket is [`RESUME_TICKET_LEN`] random bytes sent inside the end-to-end
//! channel, so only the client that checked this host's key sees it. It is
//! bound to the device key the client proved in that channel, usable once,
//! and valid while its session runs and for [`AFTER_END`] after that (never
//! longer than [`MAX_AGE`] in all). Tickets live in memory only: after a
//! restart the host asks for the full logon again. Only digests are kept.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use proto::auth::RESUME_TICKET_LEN;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// How long a ticket stays valid after its session ended.
pub const AFTER_END: Duration = Duration::from_secs(5 * 60);
/// The longest a ticket is valid, however long its session runs: a working
/// day and then some.
pub const MAX_AGE: Duration = Duration::from_secs(16 * 3600);
/// Tickets kept at once; beyond this the oldest are forgotten (their
/// devices then give the full logon).
pub const MAX_TICKETS: usize = 512;

type TicketDigest = [u8; 32];

/// The tickets a running host has given out.
#[derive(Default)]
pub struct Tickets {
    entries: Mutex<HashMap<TicketDigest, Entry>>,
}

struct Entry {
    device: Vec<u8>,
    issued: SystemTime,
    /// When the session the ticket came with ended; `None` while it runs.
    ended: Option<SystemTime>,
}

impl Entry {
    fn valid_at(&self, now: SystemTime) -> bool {
        let young = now
            .duration_since(self.issued)
            .is_ok_and(|age| age < MAX_AGE);
        let within_grace = self.ended.is_none_or(|ended| {
            now.duration_since(ended)
                .is_ok_and(|after| after < AFTER_END)
        });
        young && within_grace
    }
}

/// A ticket just given out: `secret` goes to the client; `digest` names it
/// when its session ends ([`Tickets::session_ended`]).
pub struct Issued {
    pub secret: Vec<u8>,
    pub digest: TicketDigest,
}

/// Why a ticket was not accepted (for the audit log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotAccepted {
    /// Never issued, already used, forgotten, or issued before a restart.
    Unknown,
    Expired,
    /// Presented by another device than the one it was given to; it is
    /// spent so that its rightful holder's next try asks the full logon.
    OtherDevice,
}

impl NotAccepted {
    pub fn as_str(self) -> &'static str {
        match self {
            NotAccepted::Unknown => "unknown or already used",
            NotAccepted::Expired => "expired",
            NotAccepted::OtherDevice => "presented by another device",
        }
    }
}

impl Tickets {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<TicketDigest, Entry>> {
        self.entries.lock().expect("not poisoned")
    }

    /// A new ticket for `device`, whose session has just been admitted.
    pub fn issue(&self, device: &[u8], now: SystemTime) -> Issued {
        let mut secret = vec![0; RESUME_TICKET_LEN];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let digest = digest(&secret);
        let mut entries = self.entries();
        entries.retain(|_, entry| entry.valid_at(now));
        if entries.len() >= MAX_TICKETS {
            // Ended sessions go first, then the oldest.
            let oldest = entries
                .iter()
                .min_by_key(|(_, e)| (e.ended.is_none(), e.issued))
                .map(|(d, _)| *d);
            if let Some(oldest) = oldest {
                entries.remove(&oldest);
            }
        }
        entries.insert(
            digest,
            Entry {
                device: device.to_vec(),
                issued: now,
                ended: None,
            },
        );
        Issued { secret, digest }
    }

    /// The session a ticket came with ended: the ticket stays valid for
    /// [`AFTER_END`].
    pub fn session_ended(&self, digest: &TicketDigest, now: SystemTime) {
        if let Some(entry) = self.entries().get_mut(digest) {
            entry.ended.get_or_insert(now);
        }
    }

    /// Uses up `ticket` if it is valid for `device`. Any ticket presented is
    /// spent, accepted or not.
    pub fn redeem(&self, ticket: &[u8], device: &[u8], now: SystemTime) -> Result<(), NotAccepted> {
        if ticket.len() != RESUME_TICKET_LEN {
            return Err(NotAccepted::Unknown);
        }
        let entry = self
            .entries()
            .remove(&digest(ticket))
            .ok_or(NotAccepted::Unknown)?;
        if entry.device != device {
            return Err(NotAccepted::OtherDevice);
        }
        if !entry.valid_at(now) {
            return Err(NotAccepted::Expired);
        }
        Ok(())
    }
}

fn digest(ticket: &[u8]) -> TicketDigest {
    Sha256::digest(ticket).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAPTOP: &[u8] = b"laptop device key";
    const OTHER: &[u8] = b"another device key";

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
    }

    #[test]
    fn a_ticket_works_once_for_its_device() {
        let tickets = Tickets::default();
        let issued = tickets.issue(LAPTOP, at(0));
        assert_eq!(issued.secret.len(), RESUME_TICKET_LEN);
        assert_eq!(tickets.redeem(&issued.secret, LAPTOP, at(10)), Ok(()));
        assert_eq!(
            tickets.redeem(&issued.secret, LAPTOP, at(11)),
            Err(NotAccepted::Unknown),
            "a replay is refused"
        );
    }

    #[test]
    fn another_device_cannot_use_it_and_spends_it() {
        let tickets = Tickets::default();
        let issued = tickets.issue(LAPTOP, at(0));
        assert_eq!(
            tickets.redeem(&issued.secret, OTHER, at(1)),
            Err(NotAccepted::OtherDevice)
        );
        assert_eq!(
            tickets.redeem(&issued.secret, LAPTOP, at(2)),
            Err(NotAccepted::Unknown)
        );
    }

    #[test]
    fn valid_while_the_session_runs_and_minutes_after_it_ended() {
        let tickets = Tickets::default();
        // A session of eight hours, then a drop: still valid just inside the grace.
        let issued = tickets.issue(LAPTOP, at(0));
        tickets.session_ended(&issued.digest, at(8 * 3600));
        let just_inside = 8 * 3600 + AFTER_END.as_secs() - 1;
        assert_eq!(
            tickets.redeem(&issued.secret, LAPTOP, at(just_inside)),
            Ok(())
        );

        // Past the grace: expired, and gone.
        let issued = tickets.issue(LAPTOP, at(0));
        tickets.session_ended(&issued.digest, at(60));
        let after = 60 + AFTER_END.as_secs();
        assert_eq!(
            tickets.redeem(&issued.secret, LAPTOP, at(after)),
            Err(NotAccepted::Expired)
        );

        // A session that never ends still loses its ticket after MAX_AGE.
        let issued = tickets.issue(LAPTOP, at(0));
        assert_eq!(
            tickets.redeem(&issued.secret, LAPTOP, at(MAX_AGE.as_secs())),
            Err(NotAccepted::Expired)
        );
    }

    #[test]
    fn malformed_tickets_are_unknown_and_the_store_is_bounded() {
        let tickets = Tickets::default();
        assert_eq!(
            tickets.redeem(b"short", LAPTOP, at(0)),
            Err(NotAccepted::Unknown)
        );
        let first = tickets.issue(LAPTOP, at(0));
        for i in 0..MAX_TICKETS as u64 {
            tickets.issue(LAPTOP, at(1 + i));
        }
        assert!(tickets.entries().len() <= MAX_TICKETS);
        assert_eq!(
            tickets.redeem(&first.secret, LAPTOP, at(MAX_TICKETS as u64 + 2)),
            Err(NotAccepted::Unknown),
            "the oldest ticket made room"
        );
    }
}
