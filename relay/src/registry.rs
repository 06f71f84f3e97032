//! Which host key owns which computer ID (persisted), and which hosts are
//! online right now (in memory).
//!
//! The file is a log: one JSON line per binding, appended and synced before
//! the host is told it is registered, and one line per binding the operator
//! released (`thin-relay unbind`). Enrolling a host costs the same with ten
//! hosts or ten thousand (rewriting a whole file per enrolment would cost
//! the square). A released ID can be claimed again, but not by the key that
//! held it: a squatter's host that reconnects does not get it back.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use proto::ComputerId;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::error;

/// The registry's file in the relay's folder.
pub const FILE: &str = "hosts.jsonl";
/// The registry of earlier versions (one JSON object, rewritten whole); read
/// once into [`FILE`] and then left alone.
const OLD_FILE: &str = "hosts.json";
/// Beside [`FILE`] once a relay node brought it into the shared directory:
/// the file's length then, and the name under which the directory notes
/// the import. The file is brought in again only if it grew since (the
/// relay ran alone again) or the directory no longer has that note (a new
/// or emptied Redis), so an old file does not contradict at every start a
/// directory that moved on (an ID unbound across the cluster).
const IMPORTED_FILE: &str = "hosts.jsonl.imported";

/// Whether the file must be brought into the shared directory.
#[derive(Debug, PartialEq, Eq)]
pub enum ImportNeed {
    /// It knows no ID.
    Nothing,
    /// It was brought in under this note: only if the directory lost it.
    IfLost(String),
    /// Never, or it changed since.
    Yes,
}

/// A session notice for an online host: the session token and client address.
#[derive(Debug)]
pub struct Notice {
    pub session: Vec<u8>,
    pub client_addr: String,
}

pub struct OnlineHost {
    pub conn: u64,
    /// Where its control connection comes from (a network the operator
    /// refuses later is let go).
    pub addr: std::net::IpAddr,
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
        line_of(self)
    }
}

/// One line of the file, newline included.
fn line_of(entry: &impl Serialize) -> String {
    let mut line = serde_json::to_string(entry).expect("serialisable");
    line.push('\n');
    line
}

/// A line releasing a binding: the ID is free again, except for `key`.
#[derive(Serialize, Deserialize)]
struct Release {
    unbind: ComputerId,
    /// The key that held the ID, base64.
    key: String,
}

/// Any line of the file.
#[derive(Deserialize)]
#[serde(untagged)]
enum Line {
    Binding(Binding),
    Release(Release),
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
    /// The operator released this ID from this very key.
    Released,
}

/// What the file knows of one ID: its binding, if any, and the keys
/// released from it.
pub struct Entry {
    pub id: ComputerId,
    pub key: Option<Vec<u8>>,
    pub released: Vec<Vec<u8>>,
}

pub struct Registry {
    log: File,
    /// Where `log` is, and how long it was when loaded.
    path: PathBuf,
    loaded_len: u64,
    /// Computer ID → Ed25519 public key of the host that first claimed it.
    bindings: HashMap<ComputerId, Vec<u8>>,
    /// Keys the operator released an ID from; they may not claim it again.
    released: HashMap<ComputerId, HashSet<Vec<u8>>>,
    /// The file's last line has no newline yet (a hand edit): the next
    /// line starts with one.
    needs_newline: bool,
    pub online: HashMap<ComputerId, OnlineHost>,
}

/// What was in the file when it loaded.
struct Loaded {
    bindings: HashMap<ComputerId, Vec<u8>>,
    released: HashMap<ComputerId, HashSet<Vec<u8>>>,
}

impl Registry {
    /// Loads the bindings from the relay folder `dir` (none yet if there is
    /// no file) and opens the file for new ones. The file stays locked while
    /// the registry lives: one relay (or one offline `unbind`) per folder.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let path = path_in(dir);
        if !path.exists() {
            import_old(&dir.join(OLD_FILE), &path)?;
        }
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&path)
            .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
        match log.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
                "{} is in use by a running thin-relay (stop it, or use its control socket)",
                path.display()
            ),
            Err(std::fs::TryLockError::Error(e)) => {
                anyhow::bail!("cannot lock {}: {e}", path.display())
            }
        }
        let mut text = String::new();
        std::io::Read::read_to_string(&mut log, &mut text)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let (keep, dropped) = usable_lines(&text);
        let loaded = parse(keep).map_err(|e| {
            anyhow::anyhow!(
                "{} is not a valid host registry ({e}); restore it from a backup",
                path.display()
            )
        })?;
        if !dropped.is_empty() {
            // Never lose a binding silently: the text goes to a side file
            // before the registry is cut back to its last complete line.
            let side = side_file(&path);
            files::write_atomic(&side, text.as_bytes(), files::Mode::Public).map_err(|e| {
                anyhow::anyhow!("cannot save {} before repairing it: {e}", side.display())
            })?;
            error!(
                file = %path.display(),
                saved = %side.display(),
                dropped = %dropped.escape_debug(),
                "the host registry ended in an unfinished line, which was dropped; the \
                 whole file was saved first"
            );
        }
        if keep.len() < text.len() {
            log.set_len(keep.len() as u64)
                .map_err(|e| anyhow::anyhow!("cannot repair {}: {e}", path.display()))?;
        }
        Ok(Self {
            log,
            loaded_len: keep.len() as u64,
            path,
            bindings: loaded.bindings,
            released: loaded.released,
            needs_newline: !keep.is_empty() && !keep.ends_with('\n'),
            online: HashMap::new(),
        })
    }

    /// Whether the file knows IDs a relay node has not yet brought into the
    /// shared directory.
    pub fn import_need(&self) -> ImportNeed {
        if self.bindings.is_empty() && self.released.is_empty() {
            return ImportNeed::Nothing;
        }
        let marked =
            std::fs::read_to_string(self.path.with_file_name(IMPORTED_FILE)).unwrap_or_default();
        match marked.split_whitespace().collect::<Vec<_>>()[..] {
            [len, note] if len.parse() == Ok(self.loaded_len) => {
                ImportNeed::IfLost(note.to_owned())
            }
            _ => ImportNeed::Yes,
        }
    }

    /// The file as loaded is in the shared directory, noted there as `note`.
    pub fn mark_imported(&self, note: &str) -> anyhow::Result<()> {
        let marker = self.path.with_file_name(IMPORTED_FILE);
        let text = format!("{} {note}\n", self.loaded_len);
        files::write_atomic(&marker, text.as_bytes(), files::Mode::Public)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", marker.display()))
    }

    /// Every ID the file knows.
    pub fn entries(&self) -> Vec<Entry> {
        let ids: HashSet<&ComputerId> = self.bindings.keys().chain(self.released.keys()).collect();
        ids.into_iter()
            .map(|id| Entry {
                id: id.clone(),
                key: self.bindings.get(id).cloned(),
                released: self
                    .released
                    .get(id)
                    .into_iter()
                    .flatten()
                    .cloned()
                    .collect(),
            })
            .collect()
    }

    pub fn is_known(&self, id: &ComputerId) -> bool {
        self.bindings.contains_key(id)
    }

    /// The key bound to `id`, if any.
    #[cfg(test)]
    fn key(&self, id: &ComputerId) -> Option<&[u8]> {
        self.bindings.get(id).map(Vec::as_slice)
    }

    /// Whether `id` is free for `key` to claim as a new binding.
    pub fn claimable(&self, id: &ComputerId, key: &[u8]) -> bool {
        !self.bindings.contains_key(id)
            && !self.released.get(id).is_some_and(|keys| keys.contains(key))
    }

    /// Binds `id` to `key` on first claim (saved before this returns);
    /// refuses any other key afterwards.
    pub fn claim(&mut self, id: &ComputerId, key: &[u8]) -> io::Result<Claim> {
        match self.bindings.get(id) {
            Some(bound) if bound == key => Ok(Claim::Known),
            Some(_) => Ok(Claim::Taken),
            None if !self.claimable(id, key) => Ok(Claim::Released),
            None => {
                self.append(&Binding::new(id.clone(), key).line())?;
                self.bindings.insert(id.clone(), key.to_vec());
                Ok(Claim::New)
            }
        }
    }

    /// Releases `id` (saved before this returns); its host goes offline and
    /// its key may not claim the ID again. Returns the key it was bound to.
    pub fn unbind(&mut self, id: &ComputerId) -> io::Result<Option<Vec<u8>>> {
        let Some(key) = self.bindings.get(id).cloned() else {
            return Ok(None);
        };
        let release = Release {
            unbind: id.clone(),
            key: base64::engine::general_purpose::STANDARD.encode(&key),
        };
        self.append(&line_of(&release))?;
        self.bindings.remove(id);
        self.released
            .entry(id.clone())
            .or_default()
            .insert(key.clone());
        // Dropping its notice channel ends the host's control connection.
        self.online.remove(id);
        Ok(Some(key))
    }

    /// Appends and syncs one line; on failure the file is cut back so that
    /// a part-written line cannot run into the next one.
    fn append(&mut self, line: &str) -> io::Result<()> {
        let before = self.log.metadata()?.len();
        let separator = if self.needs_newline { "\n" } else { "" };
        let written = self
            .log
            .write_all(format!("{separator}{line}").as_bytes())
            .and_then(|()| self.log.sync_data());
        if let Err(e) = written {
            let _ = self.log.set_len(before);
            return Err(e);
        }
        self.needs_newline = false;
        Ok(())
    }
}

/// Splits the text into what loads and an unfinished last line to drop. A
/// last line without its newline still counts when it is complete (a hand
/// edit that lost the final newline); one that does not parse is a write
/// the relay did not finish (it stopped before syncing, so the host was
/// never told it was registered).
fn usable_lines(text: &str) -> (&str, &str) {
    let complete = text.rfind('\n').map_or(0, |end| end + 1);
    let last = &text[complete..];
    if last.trim().is_empty() || serde_json::from_str::<Line>(last).is_ok() {
        (text, "")
    } else {
        (&text[..complete], last)
    }
}

/// Where a registry's text is saved before a repair.
fn side_file(path: &Path) -> PathBuf {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    path.with_extension(format!("jsonl.damaged-{stamp}"))
}

/// Reads the lines in order; any unreadable line is an error.
fn parse(text: &str) -> Result<Loaded, String> {
    let mut loaded = Loaded {
        bindings: HashMap::new(),
        released: HashMap::new(),
    };
    let decode = |n: usize, key: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(key)
            .map_err(|e| format!("line {}: bad key: {e}", n + 1))
    };
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line).map_err(|e| format!("line {}: {e}", n + 1))? {
            Line::Binding(binding) => {
                let key = decode(n, &binding.key)?;
                // The first binding of an ID is the one that counts.
                loaded.bindings.entry(binding.id).or_insert(key);
            }
            Line::Release(release) => {
                let key = decode(n, &release.key)?;
                if loaded.bindings.get(&release.unbind) == Some(&key) {
                    loaded.bindings.remove(&release.unbind);
                }
                loaded
                    .released
                    .entry(release.unbind)
                    .or_default()
                    .insert(key);
            }
        }
    }
    Ok(loaded)
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

    /// Files saved beside the registry before a repair.
    fn side_files(dir: &Path) -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_str().unwrap().contains(".damaged-"))
            .collect()
    }

    #[test]
    fn an_unfinished_last_line_is_dropped_saved_aside_and_the_next_binding_follows_it() {
        let dir = tempfile::tempdir().unwrap();
        let good = Binding::new(id("pc-1"), b"key-a").line();
        let torn = format!("{good}{{\"id\":\"pc-2\",\"ke");
        std::fs::write(path_in(dir.path()), &torn).unwrap();
        let mut registry = Registry::load(dir.path()).unwrap();
        assert!(registry.is_known(&id("pc-1")));
        assert!(!registry.is_known(&id("pc-2")));
        let saved = side_files(dir.path());
        assert_eq!(saved.len(), 1, "{saved:?}");
        assert_eq!(std::fs::read_to_string(&saved[0]).unwrap(), torn);
        assert!(matches!(
            registry.claim(&id("pc-3"), b"key-c"),
            Ok(Claim::New)
        ));
        drop(registry);
        let registry = Registry::load(dir.path()).unwrap();
        assert!(registry.is_known(&id("pc-1")) && registry.is_known(&id("pc-3")));
    }

    #[test]
    fn a_complete_last_line_without_its_newline_is_a_binding() {
        let dir = tempfile::tempdir().unwrap();
        let one = Binding::new(id("pc-1"), b"key-a").line();
        let two = Binding::new(id("pc-2"), b"key-b").line();
        // A hand edit dropped the final newline.
        std::fs::write(path_in(dir.path()), format!("{one}{}", two.trim_end())).unwrap();
        let mut registry = Registry::load(dir.path()).unwrap();
        assert!(registry.is_known(&id("pc-2")));
        assert!(side_files(dir.path()).is_empty());
        // A squatter cannot take it, and the next binding gets a line of its own.
        assert!(matches!(
            registry.claim(&id("pc-2"), b"squatter"),
            Ok(Claim::Taken)
        ));
        assert!(matches!(
            registry.claim(&id("pc-3"), b"key-c"),
            Ok(Claim::New)
        ));
        drop(registry);
        let text = std::fs::read_to_string(path_in(dir.path())).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        let registry = Registry::load(dir.path()).unwrap();
        assert!(["pc-1", "pc-2", "pc-3"]
            .iter()
            .all(|n| registry.is_known(&id(n))));
    }

    #[test]
    fn an_unbound_id_is_free_again_but_not_for_the_key_that_held_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut registry = Registry::load(dir.path()).unwrap();
        registry.claim(&id("pc-1"), b"squatter").unwrap();
        assert_eq!(
            registry.unbind(&id("pc-1")).unwrap().as_deref(),
            Some(&b"squatter"[..])
        );
        assert!(registry.unbind(&id("pc-1")).unwrap().is_none());
        assert!(matches!(
            registry.claim(&id("pc-1"), b"squatter"),
            Ok(Claim::Released)
        ));
        drop(registry);
        let mut registry = Registry::load(dir.path()).unwrap();
        assert!(!registry.is_known(&id("pc-1")));
        assert!(matches!(
            registry.claim(&id("pc-1"), b"squatter"),
            Ok(Claim::Released)
        ));
        assert!(matches!(
            registry.claim(&id("pc-1"), b"owner"),
            Ok(Claim::New)
        ));
        drop(registry);
        let registry = Registry::load(dir.path()).unwrap();
        assert_eq!(registry.key(&id("pc-1")), Some(&b"owner"[..]));
    }

    #[test]
    fn one_registry_per_folder_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let first = Registry::load(dir.path()).unwrap();
        let err = Registry::load(dir.path())
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains("in use by a running thin-relay"), "{err}");
        drop(first);
        Registry::load(dir.path()).unwrap();
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
