//! Pinned host keys, like SSH's known_hosts: the first key seen for a
//! computer is recorded; a different key later is refused until the user
//! removes the old pin on purpose.
//!
//! A pin is named `computer-id@relay-identity`: IDs are only unique per
//! relay. A native client knows a relay by the CA it pins, so the identity
//! is that CA's fingerprint, however the relay's address is spelled
//! (`localhost:4433`, `127.0.0.1:4433`, a second DNS name); the browser
//! knows it by the page's origin. The text form is one `name base64-key`
//! per line; `#` starts a comment.

use std::collections::BTreeMap;

use base64::Engine as _;
use proto::channel::{fingerprint, StaticKey};
use proto::ComputerId;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// What the host key presented in a handshake means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyCheck {
    /// The pinned key: carry on.
    Known,
    /// First connection to this computer: the key is pinned if accepted.
    New { fingerprint: String },
    /// Not the pinned key: someone may be impersonating the computer.
    Changed {
        old_fingerprint: String,
        new_fingerprint: String,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownHosts {
    pins: BTreeMap<String, Vec<u8>>,
}

/// The name a computer's pin is kept under: its ID at the relay's identity.
pub fn pin_name(relay_identity: &str, id: &ComputerId) -> String {
    format!("{id}@{}", relay_identity.trim().to_ascii_lowercase())
}

/// The identity of a relay trusted through the CA certificate `ca_der`:
/// `ca-` and the first 128 bits of its SHA-256, in hex.
pub fn ca_identity(ca_der: &[u8]) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(ca_der);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("ca-{hex}")
}

impl KnownHosts {
    /// Parses the text form; a damaged file is an error, never silently
    /// dropped pins.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut pins = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = || format!("line {} is not `computer-id@relay key`", n + 1);
            let (name, key) = line.split_once(char::is_whitespace).ok_or_else(bad)?;
            let key = B64.decode(key.trim()).map_err(|_| bad())?;
            if key.len() != proto::channel::KEY_LEN || !name.contains('@') {
                return Err(bad());
            }
            pins.insert(name.to_owned(), key);
        }
        Ok(Self { pins })
    }

    pub fn to_text(&self) -> String {
        let mut out = String::from("# thin-client known hosts: computer-id@relay host-key\n");
        for (name, key) in &self.pins {
            out.push_str(&format!("{name} {}\n", B64.encode(key)));
        }
        out
    }

    pub fn check(&self, name: &str, key: &[u8]) -> HostKeyCheck {
        match self.pins.get(name) {
            Some(pinned) if pinned == key => HostKeyCheck::Known,
            Some(pinned) => HostKeyCheck::Changed {
                old_fingerprint: fingerprint(pinned),
                new_fingerprint: fingerprint(key),
            },
            None => HostKeyCheck::New {
                fingerprint: fingerprint(key),
            },
        }
    }

    pub fn pin(&mut self, name: &str, key: &[u8]) {
        self.pins.insert(name.to_owned(), key.to_vec());
    }

    /// Removes a pin; returns whether there was one.
    pub fn forget(&mut self, name: &str) -> bool {
        self.pins.remove(name).is_some()
    }

    /// Removes every pin of computer `id`, at any relay; returns their names.
    pub fn forget_id(&mut self, id: &ComputerId) -> Vec<String> {
        let prefix = format!("{id}@");
        let names: Vec<String> = self
            .pins
            .keys()
            .filter(|name| name.starts_with(&prefix))
            .cloned()
            .collect();
        for name in &names {
            self.pins.remove(name);
        }
        names
    }

    /// Moves a pin kept under an older name (`id@relay-address`) to `name`
    /// if `name` has none yet; returns whether it did. An upgrade must not
    /// forget a key the user already trusts.
    pub fn adopt(&mut self, name: &str, older: &str) -> bool {
        if self.pins.contains_key(name) {
            return false;
        }
        match self.pins.remove(older) {
            Some(key) => {
                self.pins.insert(name.to_owned(), key);
                true
            }
            None => false,
        }
    }

    /// Pinned names with their fingerprints.
    pub fn list(&self) -> impl Iterator<Item = (&str, String)> {
        self.pins.iter().map(|(n, k)| (n.as_str(), fingerprint(k)))
    }
}

/// What a client keeps between connections: the pins (a file natively,
/// browser storage on the web) and its device secret.
pub trait PinStore: Send + Sync {
    fn load(&self) -> Result<KnownHosts, String>;
    fn save(&self, hosts: &KnownHosts) -> Result<(), String>;
    /// This device's secret, 32 random bytes made on first use and kept.
    fn device_secret(&self) -> Result<zeroize::Zeroizing<Vec<u8>>, String>;

    /// This device's lasting key toward the computer pinned as `pin`, for
    /// the end-to-end channel. An office PC that admitted this device before
    /// recognises it wherever it connects from, so strangers failing
    /// elsewhere do not lock it out; each PC sees a key of its own, so PCs
    /// cannot tell they see the same device.
    fn device_key(&self, pin: &str) -> Result<StaticKey, String> {
        let secret = self.device_secret()?;
        StaticKey::derive(&secret, pin).map_err(|e| e.to_string())
    }
}

/// Pins and a device secret held in memory only (tests, the demo).
#[derive(Default)]
pub struct MemoryPins {
    pins: std::sync::Mutex<KnownHosts>,
    device: std::sync::OnceLock<zeroize::Zeroizing<Vec<u8>>>,
}

impl PinStore for MemoryPins {
    fn load(&self) -> Result<KnownHosts, String> {
        Ok(self.pins.lock().expect("not poisoned").clone())
    }

    fn save(&self, hosts: &KnownHosts) -> Result<(), String> {
        *self.pins.lock().expect("not poisoned") = hosts.clone();
        Ok(())
    }

    fn device_secret(&self) -> Result<zeroize::Zeroizing<Vec<u8>>, String> {
        if let Some(secret) = self.device.get() {
            return Ok(secret.clone());
        }
        let secret = proto::channel::random_secret().map_err(|e| e.to_string())?;
        Ok(self.device.get_or_init(|| secret).clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_pins_are_adopted_and_an_id_can_be_forgotten_everywhere() {
        let id = ComputerId::parse("pc-1").unwrap();
        let name = pin_name(&ca_identity(b"ca"), &id);
        let older = pin_name("relay.example:443", &id);
        let mut hosts = KnownHosts::default();
        hosts.pin(&older, &[7; 32]);
        hosts.pin("pc-10@elsewhere", &[8; 32]);
        assert!(hosts.adopt(&name, &older));
        assert_eq!(hosts.check(&name, &[7; 32]), HostKeyCheck::Known);
        assert!(!hosts.adopt(&name, &older));
        hosts.pin("pc-1@other-relay", &[9; 32]);
        let mut gone = hosts.forget_id(&id);
        let mut expected = vec!["pc-1@other-relay".to_owned(), name];
        gone.sort();
        expected.sort();
        assert_eq!(gone, expected);
        assert_eq!(hosts.list().count(), 1, "pc-10 stays");
    }

    #[test]
    fn first_use_then_known_then_changed() {
        let id = ComputerId::parse("PC-1").unwrap();
        let name = pin_name("Relay.example:443", &id);
        assert_eq!(name, "pc-1@relay.example:443");
        let mut hosts = KnownHosts::default();
        assert!(matches!(
            hosts.check(&name, &[1; 32]),
            HostKeyCheck::New { .. }
        ));
        hosts.pin(&name, &[1; 32]);
        let reparsed = KnownHosts::parse(&hosts.to_text()).unwrap();
        assert_eq!(reparsed, hosts);
        assert_eq!(reparsed.check(&name, &[1; 32]), HostKeyCheck::Known);
        let HostKeyCheck::Changed {
            old_fingerprint,
            new_fingerprint,
        } = reparsed.check(&name, &[2; 32])
        else {
            panic!("a changed key must be noticed")
        };
        assert_eq!(old_fingerprint, fingerprint(&[1; 32]));
        assert_eq!(new_fingerprint, fingerprint(&[2; 32]));
        assert!(hosts.forget(&name));
        assert!(!hosts.forget(&name));
    }

    #[test]
    fn damaged_files_are_errors() {
        assert!(KnownHosts::parse("pc@relay notbase64!").is_err());
        assert!(KnownHosts::parse("pc@relay AAAA").is_err());
        assert!(KnownHosts::parse("just-one-field").is_err());
        let err = KnownHosts::parse("# ok\n\nnoat AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
            .unwrap_err();
        assert!(err.contains("line 3"), "{err}");
    }
}
