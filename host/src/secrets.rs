//! The host's secrets, in one file beside the config with mode 0600: the
//! OPAQUE server setup and password file (no password-equivalent), the TOTP
//! secret with the last accepted time step, and hashed emergency codes.

use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Secrets {
    /// OPAQUE server setup: OPRF seed and the host's long-term key pair.
    #[serde(default, with = "b64::opt", skip_serializing_if = "Option::is_none")]
    pub opaque_setup: Option<Vec<u8>>,
    /// OPAQUE registration record of the host password.
    #[serde(default, with = "b64::opt", skip_serializing_if = "Option::is_none")]
    pub password_file: Option<Vec<u8>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp: Option<TotpSecret>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emergency: Vec<EmergencyHash>,
    /// Argon2id hash (PHC string) of the password the settings app asks
    /// before it changes anything (`crate::local`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings_password: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpSecret {
    #[serde(with = "b64")]
    pub secret: Vec<u8>,
    /// The newest time step whose code was accepted (replays are refused).
    pub last_step: u64,
}

/// An emergency code, stored as SHA-256(salt ‖ code): the codes are random
/// (about 60 bits), so a fast hash suffices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmergencyHash {
    #[serde(with = "b64")]
    pub salt: Vec<u8>,
    #[serde(with = "b64")]
    pub hash: Vec<u8>,
}

impl Secrets {
    /// Loads the file; a missing file means nothing is set yet.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
                format!("{} is damaged; restore it from a backup", path.display())
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Loads, changes with `change` and saves the file while holding a
    /// lock on it, so that the running host (which records used codes) and
    /// the owner's commands or the settings app never undo each other's
    /// writes. Nothing is saved when `change` fails.
    pub fn update<T>(
        path: &Path,
        change: impl FnOnce(&mut Secrets) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let mut lock_path = path.as_os_str().to_owned();
        lock_path.push(".lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| {
                format!("cannot open {}", std::path::Path::new(&lock_path).display())
            })?;
        lock.lock()
            .with_context(|| format!("cannot lock {}", path.display()))?;
        let mut secrets = Self::load(path)?;
        let result = change(&mut secrets)?;
        secrets.save(path)?;
        Ok(result)
    }

    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let json = serde_json::to_vec_pretty(self).expect("secrets serialise");
        files::write_atomic(path, &json, files::Mode::Secret)
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

mod b64 {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        B64.decode(text).map_err(serde::de::Error::custom)
    }

    pub mod opt {
        use super::*;

        pub fn serialize<S: Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
            match bytes {
                Some(b) => super::serialize(b, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
            super::deserialize(d).map(Some)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host.secrets.json");
        assert_eq!(Secrets::load(&path).unwrap(), Secrets::default());
        let secrets = Secrets {
            opaque_setup: Some(vec![1, 2, 3]),
            password_file: None,
            totp: Some(TotpSecret {
                secret: vec![9; 20],
                last_step: 7,
            }),
            emergency: vec![EmergencyHash {
                salt: vec![1; 16],
                hash: vec![2; 32],
            }],
            settings_password: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        };
        secrets.save(&path).unwrap();
        assert_eq!(Secrets::load(&path).unwrap(), secrets);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, b"{broken").unwrap();
        assert!(Secrets::load(&path).is_err());
    }
}
