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
//! renews its self-signed certificate by itself, and CredSSP covers them.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use sha2::{Digest as _, Sha256};

/// One session at a time reads and writes the file.
static FILE: Mutex<()> = Mutex::new(());

/// What the check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// The first key seen at this target: pinned now.
    Pinned(String),
    /// The same key as before.
    Same,
}

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

fn save(path: &Path, pins: &BTreeMap<String, String>) -> Result<(), String> {
    let text = serde_json::to_string_pretty(pins).expect("a map of strings");
    files::write_atomic(path, text.as_bytes(), files::Mode::Secret)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Checks the key the TLS-only server at `target` showed against the pin in
/// `path`, pinning it if there is none. Err, for the person, on a change.
pub fn check(path: &Path, target: &str, public_key: &[u8]) -> Result<Checked, String> {
    let seen = fingerprint(public_key);
    let _one = FILE.lock().unwrap_or_else(|e| e.into_inner());
    let mut pins = load(path)?;
    match pins.get(target) {
        Some(pinned) if *pinned == seen => Ok(Checked::Same),
        Some(pinned) => Err(format!(
            "the office PC's RDP server at {target} shows another key than before ({pinned}, now \
             {seen}), and it does not check the logon itself (no NLA), so the Windows password \
             is not sent to it; if its certificate was renewed on purpose, its owner runs \
             thin-host forget-rdp-key, otherwise something may be standing in for the server"
        )),
        None => {
            pins.insert(target.to_owned(), seen.clone());
            save(path, &pins)?;
            Ok(Checked::Pinned(seen))
        }
    }
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
        let first = check(&path, target, b"key one").unwrap();
        assert_eq!(first, Checked::Pinned(fingerprint(b"key one")));
        assert_eq!(check(&path, target, b"key one"), Ok(Checked::Same));
        // Another target has a pin of its own.
        assert!(matches!(
            check(&path, "127.0.0.1:3389", b"key two"),
            Ok(Checked::Pinned(_))
        ));
        let changed = check(&path, target, b"key two").unwrap_err();
        assert!(changed.contains(&fingerprint(b"key one")), "{changed}");
        assert!(changed.contains(&fingerprint(b"key two")), "{changed}");
        assert!(changed.contains("forget-rdp-key"), "{changed}");
        assert_eq!(forget(&path, Some(target)), Ok(1));
        assert_eq!(forget(&path, Some(target)), Ok(0));
        assert!(matches!(
            check(&path, target, b"key two"),
            Ok(Checked::Pinned(_))
        ));
        assert_eq!(forget(&path, None), Ok(2));
    }

    #[test]
    fn a_damaged_file_is_named_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host.rdp-keys.json");
        std::fs::write(&path, "{ not json").unwrap();
        let err = check(&path, "t:1", b"k").unwrap_err();
        assert!(err.contains("damaged"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{ not json");
    }
}
