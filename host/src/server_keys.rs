//! The keys of RDP servers that do not check the logon themselves (TLS
//! only, such as xrdp), pinned on first use.
//!
//! With NLA the client binds the logon to the server's key (CredSSP), so
//! nobody between host and server can take it. A TLS-only server gets the
//! Windows password in plain RDP inside TLS, and the host accepts any
//! certificate (servers' certificates are self-signed): where the server is
//! another machine on the office LAN, someone there could stand in for it.
//! So the host remembers the key such a server showed first, per target, and
//! refuses a session when it changes until the owner says the change was
//! theirs (`thin-host forget-rdp-key`). NLA servers are not pinned: Windows
//! renews its self-signed certificate by itself, and CredSSP covers them;
//! but that a target chose NLA is written down, and a later answer there
//! without it (a stand-in downgrading to TLS only, to get the password) is
//! refused the same way.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use sha2::{Digest as _, Sha256};

/// One session at a time reads and writes the file.
static FILE: Mutex<()> = Mutex::new(());

/// What the check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// The first answer from this target: written down now (the pinned
    /// key's fingerprint, or [`NLA`]).
    Pinned(String),
    /// The same as before.
    Same,
}

/// What the RDP server showed.
#[derive(Debug, Clone, Copy)]
pub enum Shown<'a> {
    /// It checks the logon itself.
    Nla,
    /// TLS only, with this public key.
    TlsOnly(&'a [u8]),
}

/// What the file holds for a target that chose NLA.
pub const NLA: &str = "nla";

/// The key's fingerprint as shown to people: `sha256:` and hex.
pub fn fingerprint(public_key: &[u8]) -> String {
    let digest = Sha256::digest(public_key);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn load(path: &Path) -> Result<BTreeMap<String, String>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| {
            format!(
                "{} is damaged ({e}); remove it to pin again",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// What a client is told when the file cannot be used (the details, with
/// the host's paths, go to its log).
fn unusable(detail: String) -> String {
    tracing::warn!(%detail, "the record of RDP server keys cannot be used");
    "the office PC cannot use its record of its RDP server's keys; its owner finds why in \
     the host's log"
        .to_owned()
}

fn save(path: &Path, pins: &BTreeMap<String, String>) -> Result<(), String> {
    let text = serde_json::to_string_pretty(pins).expect("a map of strings");
    files::write_atomic(path, text.as_bytes(), files::Mode::Secret)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Checks what the server at `target` showed against what `path` holds,
/// writing it down if it holds nothing. Err, for the person, when a
/// TLS-only answer differs from before. An NLA answer where a TLS-only key
/// is pinned passes (CredSSP covers it) and leaves the pin: a stand-in
/// answering once with NLA must not erase it.
pub fn check(path: &Path, target: &str, shown: Shown<'_>) -> Result<Checked, String> {
    let seen = match shown {
        Shown::Nla => NLA.to_owned(),
        Shown::TlsOnly(key) => fingerprint(key),
    };
    let _one = FILE.lock().unwrap_or_else(|e| e.into_inner());
    let mut pins = load(path).map_err(unusable)?;
    let forget = format!("thin-host forget-rdp-key --target {target} (with the host's --config)");
    match (pins.get(target), shown) {
        (Some(before), _) if *before == seen => return Ok(Checked::Same),
        (Some(before), Shown::TlsOnly(_)) if before == NLA => {
            return Err(format!(
                "the office PC's RDP server at {target} checked the logon itself (NLA) before \
                 and now does not, so the Windows password is not sent to it; if its owner \
                 turned NLA off on purpose, they run {forget}; otherwise something may be \
                 standing in for the server"
            ))
        }
        (Some(before), Shown::TlsOnly(_)) => {
            return Err(format!(
                "the office PC's RDP server at {target} shows another key than before \
                 ({before}, now {seen}), and it does not check the logon itself (no NLA), so \
                 the Windows password is not sent to it; if its certificate was renewed on \
                 purpose, its owner runs {forget}; otherwise something may be standing in for \
                 the server"
            ))
        }
        (Some(_), Shown::Nla) => return Ok(Checked::Same),
        (None, _) => {}
    }
    pins.insert(target.to_owned(), seen.clone());
    save(path, &pins).map_err(unusable)?;
    Ok(Checked::Pinned(seen))
}

/// Forgets the pin of `target`, or every pin; how many were removed.
pub fn forget(path: &Path, target: Option<&str>) -> Result<usize, String> {
    let _one = FILE.lock().unwrap_or_else(|e| e.into_inner());
    let mut pins = load(path)?;
    let before = pins.len();
    match target {
        Some(target) => {
            pins.remove(target);
        }
        None => pins.clear(),
    }
    let removed = before - pins.len();
    if removed > 0 {
        save(path, &pins)?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_key_is_pinned_a_change_refused_until_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host.rdp-keys.json");
        let target = "192.0.2.7:3389";
        let tls = Shown::TlsOnly;
        let first = check(&path, target, tls(b"key one")).unwrap();
        assert_eq!(first, Checked::Pinned(fingerprint(b"key one")));
        assert_eq!(check(&path, target, tls(b"key one")), Ok(Checked::Same));
        // Another target has a pin of its own.
        assert!(matches!(
            check(&path, "127.0.0.1:3389", tls(b"key two")),
            Ok(Checked::Pinned(_))
        ));
        let changed = check(&path, target, tls(b"key two")).unwrap_err();
        assert!(changed.contains(&fingerprint(b"key one")), "{changed}");
        assert!(changed.contains(&fingerprint(b"key two")), "{changed}");
        assert!(changed.contains("forget-rdp-key"), "{changed}");
        assert_eq!(forget(&path, Some(target)), Ok(1));
        assert_eq!(forget(&path, Some(target)), Ok(0));
        assert!(matches!(
            check(&path, target, tls(b"key two")),
            Ok(Checked::Pinned(_))
        ));
        assert_eq!(forget(&path, None), Ok(2));
    }

    #[test]
    fn a_server_that_chose_nla_may_not_answer_without_it_later() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host.rdp-keys.json");
        let target = "192.0.2.7:3389";
        assert_eq!(
            check(&path, target, Shown::Nla),
            Ok(Checked::Pinned(NLA.into()))
        );
        assert_eq!(check(&path, target, Shown::Nla), Ok(Checked::Same));
        let downgraded = check(&path, target, Shown::TlsOnly(b"stand-in")).unwrap_err();
        assert!(downgraded.contains("(NLA) before"), "{downgraded}");
        assert!(
            downgraded.contains("forget-rdp-key --target 192.0.2.7:3389"),
            "{downgraded}"
        );
        // An NLA answer where a key is pinned passes and leaves the pin.
        let other = "192.0.2.8:3389";
        check(&path, other, Shown::TlsOnly(b"key")).unwrap();
        assert_eq!(check(&path, other, Shown::Nla), Ok(Checked::Same));
        assert_eq!(
            check(&path, other, Shown::TlsOnly(b"key")),
            Ok(Checked::Same)
        );
    }

    #[test]
    fn a_damaged_file_is_named_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host.rdp-keys.json");
        std::fs::write(&path, "{ not json").unwrap();
        let err = check(&path, "t:1", Shown::TlsOnly(b"k")).unwrap_err();
        // The person is told where to look, not the host's paths.
        assert!(err.contains("host's log"), "{err}");
        assert!(!err.contains(dir.path().to_str().unwrap()), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{ not json");
    }
}
