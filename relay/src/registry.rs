//! Which host key owns which computer ID (persisted), and which hosts are
//! online right now (in memory).
//!
//! Bindings are never changed once made, so the file is a log: one JSON line
//! per binding, appended and synced before the host is told it is
//! registered. Enrolling a host costs the same with ten hosts or ten
//! thousand (rewriting a whole file per enrolment would cost the square).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use proto::ComputerId;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// The registry's file in the relay's folder.
pub const FILE: &str = "hosts.jsonl";
/// The registry of earlier versions (one JSON object, rewritten whole); read
/// once into [`FILE`] and then left alone.
const OLD_FILE: &str = "hosts.json";

/// A session notice for an online host: the session token and client address.
#[derive(Debug)]
pub struct Notice {
    pub session: Vec<u8>,
    pub client_addr: String,
}

pub struct OnlineHost {
    pub conn: u64,
    /// Boxed: the channel allocates room for 32 at once, for every online
    /// host, and a pointer is a sixth of a notice.
    pub notices: mpsc::Sender<Box<Notice>>,
}

/// One line of the file.
#[derive(Serialize, Deserialize)]
pub struct Binding {
    pub id: ComputerId,
    /// The host's Ed25519 public key, base64.
    pub key: String,
}

impl Binding {
    pub fn new(id: ComputerId, key: &[u8]) -> Self {
        Self {
            id,
            key: base64::engine::general_purpose::STANDARD.encode(key),
        }
    }

    /// The line written for this binding, newline included.
    pub fn line(&self) -> String {
        let mut line = serde_json::to_string(self).expect("serialisable");
        line.push('\n');
        line
    }
}

/// The old file's shape.
#[derive(Deserialize)]
struct OldBindings {
    hosts: HashMap<ComputerId, Vec<u8>>,
}

pub enum Claim {
    /// The ID was free and is now bound to this key.
    New,
    /// The ID was already bound to this key.
    Known,
    /// Another key owns the ID.
    Taken,
}

pub struct Registry {
    log: File,
    /// Computer ID → Ed25519 public key of the host that first claimed it.
    bindings: HashMap<ComputerId, Vec<u8>>,
    pub online: HashMap<ComputerId, OnlineHost>,
}

impl Registry {
    /// Loads the bindings from the relay folder `dir` (none yet if there is
    /// no file) and opens the file for new ones.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let path = path_in(dir);
        if !path.exists() {
            import_old(&dir.join(OLD_FILE), &path)?;
        }
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
        };
        let complete = complete_lines(&text);
        let bindings = parse(complete).map_err(|e| {
            anyhow::anyhow!(
                "{} is not a valid host registry ({e}); restore it from a backup",
                path.display()
            )
        })?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| anyhow::anyhow!("cannot open {} for writing: {e}", path.display()))?;
        if complete.len() < text.len() {
            // So that the next binding starts a line of its own.
            log.set_len(complete.len() as u64)
                .map_err(|e| anyhow::anyhow!("cannot repair {}: {e}", path.display()))?;
        }
        Ok(Self {
            log,
            bindings,
            online: HashMap::new(),
        })
    }

    pub fn is_known(&self, id: &ComputerId) -> bool {
        self.bindings.contains_key(id)
    }

    /// Binds `id` to `key` on first claim (saved before this returns);
    /// refuses any other key afterwards.
    pub fn claim(&mut self, id: &ComputerId, key: &[u8]) -> io::Result<Claim> {
        match self.bindings.get(id) {
            Some(bound) if bound == key => Ok(Claim::Known),
            Some(_) => Ok(Claim::Taken),
            None => {
                let line = Binding::new(id.clone(), key).line();
                let before = self.log.metadata()?.len();
                let written = self
                    .log
                    .write_all(line.as_bytes())
                    .and_then(|()| self.log.sync_data());
                if let Err(e) = written {
                    // A part-written line would run into the next one.
                    let _ = self.log.set_len(before);
                    return Err(e);
                }
                self.bindings.insert(id.clone(), key.to_vec());
                Ok(Claim::New)
            }
        }
    }
}

/// The text up to its last newline. A last line without its newline is a
/// write the relay did not finish (it stopped before syncing, so the host
/// was never told it was registered): it does not count.
fn complete_lines(text: &str) -> &str {
    text.rfind('\n').map_or("", |end| &text[..=end])
}

/// Reads the lines; any unreadable line is an error.
fn parse(text: &str) -> Result<HashMap<ComputerId, Vec<u8>>, String> {
    let mut bindings = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let binding: Binding =
            serde_json::from_str(line).map_err(|e| format!("line {}: {e}", n + 1))?;
        let key = base64::engine::general_purpose::STANDARD
            .decode(&binding.key)
            .map_err(|e| format!("line {}: bad key: {e}", n + 1))?;
        // The first binding of an ID is the one that counts.
        bindings.entry(binding.id).or_insert(key);
    }
    Ok(bindings)
}

/// Writes the bindings of an earlier version's file (if there is one) as
/// the new file.
fn import_old(old: &Path, new: &Path) -> anyhow::Result<()> {
    let bytes = match std::fs::read(old) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => anyhow::bail!("cannot read {}: {e}", old.display()),
    };
    let old_bindings: OldBindings = serde_json::from_slice(&bytes)
        .map_err(|e| anyhow::anyhow!("{} is not a valid host registry: {e}", old.display()))?;
    let mut ids: Vec<_> = old_bindings.hosts.into_iter().collect();
    ids.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    let text: String = ids
        .into_iter()
        .map(|(id, key)| Binding::new(id, &key).line())
        .collect();
    files::write_atomic(new, text.as_bytes(), files::Mode::Public)?;
    Ok(())
}

/// Where the registry of the relay folder `dir` is kept.
fn path_in(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(name: &str) -> ComputerId {
        ComputerId::parse(name).unwrap()
    }

    #[test]
    fn bindings_survive_a_restart_and_stay_bound_to_their_first_key() {
        let dir = tempfile::tempdir().unwrap();
        let mut registry = Registry::load(dir.path()).unwrap();
        assert!(matches!(
            registry.claim(&id("pc-1"), b"key-a"),
            Ok(Claim::New)
        ));
        assert!(matches!(
            registry.claim(&id("pc-2"), b"key-b"),
            Ok(Claim::New)
        ));
        drop(registry);

        let mut registry = Registry::load(dir.path()).unwrap();
        assert!(registry.is_known(&id("pc-1")));
        assert!(matches!(
            registry.claim(&id("pc-1"), b"key-a"),
            Ok(Claim::Known)
        ));
        assert!(matches!(
            registry.claim(&id("pc-1"), b"key-b"),
            Ok(Claim::Taken)
        ));
        let text = std::fs::read_to_string(path_in(dir.path())).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
    }

    #[test]
    fn an_unfinished_last_line_is_dropped_and_the_next_binding_follows_it() {
        let dir = tempfile::tempdir().unwrap();
        let good = Binding::new(id("pc-1"), b"key-a").line();
        std::fs::write(path_in(dir.path()), format!("{good}{{\"id\":\"pc-2\",\"ke")).unwrap();
        let mut registry = Registry::load(dir.path()).unwrap();
        assert!(registry.is_known(&id("pc-1")));
        assert!(!registry.is_known(&id("pc-2")));
        assert!(matches!(
            registry.claim(&id("pc-3"), b"key-c"),
            Ok(Claim::New)
        ));
        drop(registry);
        let registry = Registry::load(dir.path()).unwrap();
        assert!(registry.is_known(&id("pc-1")) && registry.is_known(&id("pc-3")));
    }

    #[test]
    fn a_damaged_registry_is_refused_with_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let good = Binding::new(id("pc-1"), b"key-a").line();
        std::fs::write(path_in(dir.path()), format!("{good}not json\n{good}")).unwrap();
        let err = Registry::load(dir.path())
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(err.contains("not a valid host registry"), "{err}");
    }

    #[test]
    fn an_earlier_versions_registry_is_carried_over() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(OLD_FILE),
            r#"{ "hosts": { "pc-1": [1, 2, 3], "pc-2": [4, 5] } }"#,
        )
        .unwrap();
        let mut registry = Registry::load(dir.path()).unwrap();
        assert!(matches!(
            registry.claim(&id("pc-1"), &[1, 2, 3]),
            Ok(Claim::Known)
        ));
        assert!(matches!(
            registry.claim(&id("pc-2"), &[9]),
            Ok(Claim::Taken)
        ));
        assert!(path_in(dir.path()).exists());
    }
}
