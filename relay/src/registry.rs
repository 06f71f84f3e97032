//! Which host key owns which computer ID (persisted), and which hosts are
//! online right now (in memory).

use std::collections::HashMap;
use std::path::PathBuf;

use proto::ComputerId;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// A session notice for an online host: the session token and client address.
#[derive(Debug)]
pub struct Notice {
    pub session: Vec<u8>,
    pub client_addr: String,
}

pub struct OnlineHost {
    pub conn: u64,
    pub notices: mpsc::Sender<Notice>,
}

#[derive(Default, Serialize, Deserialize)]
struct Bindings {
    /// Computer ID → Ed25519 public key of the host that first claimed it.
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
    file: PathBuf,
    bindings: Bindings,
    pub online: HashMap<ComputerId, OnlineHost>,
}

impl Registry {
    /// Loads the bindings from `file` (absent means none yet).
    pub fn load(file: PathBuf) -> anyhow::Result<Self> {
        let bindings = match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                anyhow::anyhow!("{} is not a valid host registry: {e}", file.display())
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Bindings::default(),
            Err(e) => anyhow::bail!("cannot read {}: {e}", file.display()),
        };
        Ok(Self {
            file,
            bindings,
            online: HashMap::new(),
        })
    }

    pub fn is_known(&self, id: &ComputerId) -> bool {
        self.bindings.hosts.contains_key(id)
    }

    /// Binds `id` to `key` on first claim; refuses any other key afterwards.
    pub fn claim(&mut self, id: &ComputerId, key: &[u8]) -> std::io::Result<Claim> {
        match self.bindings.hosts.get(id) {
            Some(bound) if bound == key => Ok(Claim::Known),
            Some(_) => Ok(Claim::Taken),
            None => {
                self.bindings.hosts.insert(id.clone(), key.to_vec());
                let json = serde_json::to_vec_pretty(&self.bindings).expect("serialisable");
                if let Err(e) = files::write_atomic(&self.file, &json, files::Mode::Public) {
                    self.bindings.hosts.remove(id);
                    return Err(e);
                }
                Ok(Claim::New)
            }
        }
    }
}
