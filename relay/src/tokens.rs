//! Enrolment tokens for a closed relay (`thin-relay serve --closed`): a new
//! computer ID is bound only for a host that presents a token the operator
//! issued with `thin-relay token new`. Known IDs need none.
//!
//! `tokens.jsonl` in the relay folder is a log like the registry: a line per
//! token issued (its SHA-256, never the token), a line per use. The running
//! relay reads it when a new ID is claimed, so tokens issued while it runs
//! work at once; appending needs no lock.

use std::fs::OpenOptions;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use proto::ComputerId;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

pub const FILE: &str = "tokens.jsonl";
/// How long a token is valid unless told otherwise.
pub const DEFAULT_VALIDITY: Duration = Duration::from_secs(7 * 24 * 3600);
/// A token's text: this prefix and 26 base32 characters (128 bits).
const PREFIX: &str = "thin-enrol-";
/// Longest token text looked at (anything longer is not one of ours).
const MAX_TOKEN_LEN: usize = 64;

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Line {
    Issued {
        token: String,
        /// The only ID it binds, if the operator named one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<ComputerId>,
        uses: u32,
        /// Seconds since the Unix epoch.
        expires: u64,
    },
    Used {
        used: String,
        id: ComputerId,
    },
}

/// What `token new` made.
pub struct Issued {
    pub token: String,
    pub expires: SystemTime,
}

/// Why a token does not let a host bind a new ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("this relay binds new computer IDs only with an enrolment token from its operator")]
    Missing,
    #[error("the enrolment token is not one this relay issued")]
    Unknown,
    #[error("the enrolment token has expired")]
    Expired,
    #[error("the enrolment token has been used up")]
    UsedUp,
    #[error("the enrolment token is for computer ID '{0}' only")]
    OtherId(ComputerId),
}

fn path_in(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

fn digest(token: &str) -> String {
    Sha256::digest(token.trim().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn unix(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn append(dir: &Path, line: &Line) -> io::Result<()> {
    let mut text = serde_json::to_string(line).expect("serialisable");
    text.push('\n');
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path_in(dir))?;
    // One write, so that concurrent appends never interleave within a line.
    file.write_all(text.as_bytes())?;
    file.sync_data()
}

/// Issues a token for `uses` new IDs (only `id`, if given) valid for `validity`.
pub fn issue(
    dir: &Path,
    id: Option<ComputerId>,
    uses: u32,
    validity: Duration,
    now: SystemTime,
) -> io::Result<Issued> {
    let mut secret = [0u8; 16];
    SystemRandom::new()
        .fill(&mut secret)
        .map_err(|_| io::Error::other("the system's random number generator failed"))?;
    let token = format!(
        "{PREFIX}{}",
        base32::encode(base32::Alphabet::Rfc4648Lower { padding: false }, &secret)
    );
    let expires = now + validity;
    append(
        dir,
        &Line::Issued {
            token: digest(&token),
            id,
            uses: uses.max(1),
            expires: unix(expires),
        },
    )?;
    Ok(Issued { token, expires })
}

/// A token that may bind an ID now; [`record_use`] once the ID is bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Valid {
    digest: String,
}

/// Whether `token` may bind `id` now. Checking records nothing: the caller
/// binds the ID, then records the use (one enrolment at a time, so a token
/// is never used twice nor used up by a binding that failed).
pub fn check(
    dir: &Path,
    token: Option<&str>,
    id: &ComputerId,
    now: SystemTime,
) -> Result<Valid, TokenError> {
    let token = token
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(TokenError::Missing)?;
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Unknown);
    }
    let wanted = digest(token);
    let text = match std::fs::read_to_string(path_in(dir)) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the enrolment tokens");
            String::new()
        }
    };
    let mut found = None;
    let mut used = 0u32;
    for line in text.lines() {
        match serde_json::from_str::<Line>(line) {
            Ok(Line::Issued {
                token,
                id,
                uses,
                expires,
            }) if token == wanted => found = Some((id, uses, expires)),
            Ok(Line::Used { used: token, .. }) if token == wanted => used += 1,
            _ => {}
        }
    }
    let (only, uses, expires) = found.ok_or(TokenError::Unknown)?;
    if unix(now) >= expires {
        return Err(TokenError::Expired);
    }
    if used >= uses {
        return Err(TokenError::UsedUp);
    }
    if let Some(only) = only.filter(|only| only != id) {
        return Err(TokenError::OtherId(only));
    }
    Ok(Valid { digest: wanted })
}

/// Records that `token` bound `id` (saved before this returns).
pub fn record_use(dir: &Path, token: &Valid, id: &ComputerId) -> io::Result<()> {
    append(
        dir,
        &Line::Used {
            used: token.digest.clone(),
            id: id.clone(),
        },
    )
}

/// [`check`] and [`record_use`] together (for tests and tools).
pub fn redeem(
    dir: &Path,
    token: Option<&str>,
    id: &ComputerId,
    now: SystemTime,
) -> Result<(), TokenError> {
    let valid = check(dir, token, id, now)?;
    record_use(dir, &valid, id).map_err(|e| {
        tracing::warn!(error = %e, "cannot record the use of an enrolment token");
        TokenError::Unknown
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(name: &str) -> ComputerId {
        ComputerId::parse(name).unwrap()
    }

    #[test]
    fn a_token_binds_as_many_ids_as_it_was_issued_for_until_it_expires() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let two = issue(dir.path(), None, 2, DEFAULT_VALIDITY, now).unwrap();
        assert!(two.token.starts_with("thin-enrol-"));
        let t = Some(two.token.as_str());
        assert_eq!(redeem(dir.path(), t, &id("pc-1"), now), Ok(()));
        assert_eq!(redeem(dir.path(), t, &id("pc-2"), now), Ok(()));
        assert_eq!(
            redeem(dir.path(), t, &id("pc-3"), now),
            Err(TokenError::UsedUp)
        );
        let one = issue(dir.path(), Some(id("pc-9")), 1, DEFAULT_VALIDITY, now).unwrap();
        let t = Some(one.token.as_str());
        assert_eq!(
            redeem(dir.path(), t, &id("pc-8"), now),
            Err(TokenError::OtherId(id("pc-9")))
        );
        let late = now + DEFAULT_VALIDITY;
        assert_eq!(
            redeem(dir.path(), t, &id("pc-9"), late),
            Err(TokenError::Expired)
        );
        assert_eq!(redeem(dir.path(), t, &id("pc-9"), now), Ok(()));
        assert_eq!(
            redeem(dir.path(), None, &id("pc-9"), now),
            Err(TokenError::Missing)
        );
        assert_eq!(
            redeem(dir.path(), Some("thin-enrol-guess"), &id("pc-9"), now),
            Err(TokenError::Unknown)
        );
        // The file holds no token, only digests.
        let text = std::fs::read_to_string(path_in(dir.path())).unwrap();
        assert!(!text.contains(&two.token) && !text.contains(&one.token));
    }
}
