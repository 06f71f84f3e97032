//! The operator's local channel to a running relay: a Unix socket in the
//! relay folder (mode 0600, so only the relay's own user can use it; never
//! a network port). `thin-relay unbind` goes through it when the relay runs
//! and edits the registry file itself when it does not.
//!
//! One request per connection, a JSON line each way:
//! `{"unbind":"pc-42","by":"uid 1000"}` → `{"ok":true,"message":"…"}`.

use std::path::{Path, PathBuf};

use proto::ComputerId;
use serde::{Deserialize, Serialize};

#[cfg(unix)]
use crate::server::Operator;

pub const SOCKET: &str = "relay.sock";
/// Longest request line read.
const MAX_REQUEST: usize = 1024;

#[derive(Serialize, Deserialize)]
struct Request {
    unbind: ComputerId,
    by: String,
}

#[derive(Serialize, Deserialize)]
struct Reply {
    ok: bool,
    message: String,
}

pub fn socket_path(dir: &Path) -> PathBuf {
    dir.join(SOCKET)
}

/// Who runs this command, for the audit log.
pub fn operator_name() -> String {
    #[cfg(unix)]
    {
        let uid = std::fs::metadata("/proc/self")
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
            .ok();
        let user = std::env::var("USER").unwrap_or_default();
        match uid {
            Some(uid) => format!("{user} (uid {uid})").trim().to_owned(),
            None => user,
        }
    }
    #[cfg(not(unix))]
    {
        std::env::var("USERNAME").unwrap_or_default()
    }
}

/// Serves the control socket of the relay in `dir` until the task is dropped.
#[cfg(unix)]
pub async fn serve(dir: &Path, operator: Operator) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};

    let path = socket_path(dir);
    // A socket left by a relay that did not stop cleanly.
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    loop {
        let (stream, _) = listener.accept().await?;
        let operator = operator.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut line = String::new();
            let mut limited = tokio::io::BufReader::new(read.take(MAX_REQUEST as u64));
            let reply = match limited.read_line(&mut line).await {
                Ok(_) => match serde_json::from_str::<Request>(&line) {
                    Ok(request) => match operator.unbind(&request.unbind, &request.by) {
                        Ok(message) => Reply { ok: true, message },
                        Err(e) => Reply {
                            ok: false,
                            message: format!("{e:#}"),
                        },
                    },
                    Err(e) => Reply {
                        ok: false,
                        message: format!("malformed request: {e}"),
                    },
                },
                Err(e) => Reply {
                    ok: false,
                    message: e.to_string(),
                },
            };
            let mut text = serde_json::to_string(&reply).expect("serialisable");
            text.push('\n');
            let _ = write.write_all(text.as_bytes()).await;
        });
    }
}

/// Releases `id` at the relay of `dir`: through the running relay's socket,
/// or in the registry file when no relay runs.
pub fn unbind(dir: &Path, id: &ComputerId) -> anyhow::Result<String> {
    let by = operator_name();
    #[cfg(unix)]
    {
        use std::io::{BufRead as _, Write as _};
        match std::os::unix::net::UnixStream::connect(socket_path(dir)) {
            Ok(mut stream) => {
                let request = Request {
                    unbind: id.clone(),
                    by,
                };
                let mut text = serde_json::to_string(&request).expect("serialisable");
                text.push('\n');
                stream.write_all(text.as_bytes())?;
                let mut line = String::new();
                std::io::BufReader::new(stream).read_line(&mut line)?;
                let reply: Reply = serde_json::from_str(&line).map_err(|e| {
                    anyhow::anyhow!("the running relay gave a malformed answer: {e}")
                })?;
                return if reply.ok {
                    Ok(reply.message)
                } else {
                    Err(anyhow::anyhow!(reply.message))
                };
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) => {}
            Err(e) => anyhow::bail!(
                "cannot reach the running relay at {}: {e}",
                socket_path(dir).display()
            ),
        }
    }
    // No relay runs on this folder: change the file itself.
    let mut registry = crate::Registry::load(dir)?;
    crate::unbind(dir, &mut registry, id, &by)
}
