//! The operator's local channel to a running relay: a Unix socket in a
//! folder of its own inside the relay folder (both private to the relay's
//! user; never a network port). `thin-relay unbind` goes through it when
//! the relay runs, and edits the registry file itself only when no relay
//! holds the file (see `Registry::load`).
//!
//! One request per connection, a JSON line each way:
//! `{"unbind":"pc-42","by":"taro"}` → `{"ok":true,"message":"…"}`; the
//! audit log names the caller by the user ID the socket reports, the name
//! it gave only beside it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use proto::ComputerId;
use serde::{Deserialize, Serialize};

#[cfg(unix)]
use crate::server::Operator;

/// The socket's folder (mode 0700) and name in the relay folder.
pub const SOCKET_DIR: &str = "control";
pub const SOCKET: &str = "relay.sock";
/// Longest request line read.
#[cfg(unix)]
const MAX_REQUEST: usize = 1024;

#[cfg(unix)]
#[derive(Serialize, Deserialize)]
struct Request {
    unbind: ComputerId,
    by: String,
}

#[cfg(unix)]
#[derive(Serialize, Deserialize)]
struct Reply {
    ok: bool,
    message: String,
}

pub fn socket_path(dir: &Path) -> PathBuf {
    dir.join(SOCKET_DIR).join(SOCKET)
}

/// Who runs this command, for the audit log of commands that change the
/// relay folder themselves.
pub fn operator_name() -> String {
    let user = std::env::var(if cfg!(unix) { "USER" } else { "USERNAME" }).unwrap_or_default();
    #[cfg(unix)]
    {
        let uid = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m));
        if let Ok(uid) = uid {
            return format!("uid {uid} ({user})");
        }
    }
    user
}

/// Serves the control socket of the relay in `dir` until the task is dropped.
#[cfg(unix)]
pub async fn serve(dir: &Path, operator: Operator) -> anyhow::Result<()> {
    use transport::local;

    let path = socket_path(dir);
    // This relay holds the registry, so no other relay serves this folder.
    let listener = local::bind_private(&path)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
    loop {
        let mut stream = match listener.listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors and the like: keep the socket.
                tracing::warn!(error = %e, "control socket: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let uid = stream.peer_cred().map(|cred| cred.uid()).ok();
        let operator = operator.clone();
        tokio::spawn(async move {
            let reply = match local::read_request::<Request>(&mut stream, MAX_REQUEST).await {
                Ok(request) => match operator
                    .unbind(&request.unbind, &by(uid, &request.by))
                    .await
                {
                    Ok(message) => Reply { ok: true, message },
                    Err(e) => Reply {
                        ok: false,
                        message: format!("{e:#}"),
                    },
                },
                Err(message) => Reply { ok: false, message },
            };
            local::write_answer(&mut stream, &reply).await;
        });
    }
}

/// Who asked, for the audit log: the socket's user ID, then the name given.
#[cfg(unix)]
fn by(uid: Option<u32>, claimed: &str) -> String {
    let uid = uid.map_or_else(|| "unknown uid".to_owned(), |uid| format!("uid {uid}"));
    format!("{uid} (says {claimed:?})")
}

/// Releases `id` in the relay nodes' directory at `url` (audited in the
/// folder `dir`).
pub async fn unbind_in_directory(dir: &Path, url: &str, id: &ComputerId) -> anyhow::Result<String> {
    let directory = crate::directory::Directory::open(url, String::new(), Duration::ZERO)?;
    let Some(key) = directory.unbind(id).await? else {
        anyhow::bail!("computer ID '{id}' is not bound in the directory at {url}");
    };
    Ok(crate::server::released(dir, id, &key, &operator_name()))
}

/// Releases `id` at the relay of `dir`: through the running relay's socket,
/// or in the registry file when no relay runs.
pub fn unbind(dir: &Path, id: &ComputerId) -> anyhow::Result<String> {
    let by = operator_name();
    #[cfg(unix)]
    {
        let request = Request {
            unbind: id.clone(),
            by: std::env::var("USER").unwrap_or_default(),
        };
        if let Some(reply) = transport::local::ask::<_, Reply>(&socket_path(dir), &request)? {
            return if reply.ok {
                Ok(reply.message)
            } else {
                Err(anyhow::anyhow!(reply.message))
            };
        }
    }
    // No relay runs on this folder: change the file itself.
    let mut registry = crate::Registry::load(dir)?;
    crate::unbind(dir, &mut registry, id, &by)
}
