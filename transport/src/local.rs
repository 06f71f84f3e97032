//! A program's local control channel: a Unix socket in a folder of its own
//! (folder 0700, socket 0600, so only the owner's user — and root — can
//! connect; never a network port). One request per connection, one JSON
//! line each way, the request bounded in size and time.
//!
//! The relay's `unbind` and the host's settings app use it.

use std::io::{BufRead as _, Write as _};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{UnixListener, UnixStream};

/// How long a caller may take to send its request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a caller waits for the answer.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest path a Unix socket takes (`sun_path` less its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// A private socket, and the lock that makes its holder the only server of
/// it (released when this is dropped, or the process ends).
#[derive(Debug)]
pub struct PrivateListener {
    pub listener: UnixListener,
    _lock: std::fs::File,
}

/// Opens the socket `path` for its owner only: its folder is made private
/// before the socket appears in it; a socket left by a program that did not
/// stop cleanly is replaced, one another program still serves is not.
pub fn bind_private(path: &Path) -> std::io::Result<PrivateListener> {
    if path.as_os_str().len() > MAX_SOCKET_PATH {
        return Err(std::io::Error::other(format!(
            "{} is too long for a local socket ({MAX_SOCKET_PATH} bytes at most); use a \
             shorter folder",
            path.display()
        )));
    }
    let folder = path.parent().expect("a socket path has a folder");
    std::fs::create_dir_all(folder)?;
    // A folder someone else made (or a link they put there) could let
    // them swap the socket for their own and read what callers send.
    let own = own_uid()?;
    let meta = std::fs::symlink_metadata(folder)?;
    if meta.file_type().is_symlink() || meta.uid() != own {
        return Err(std::io::Error::other(format!(
            "{} belongs to another user (or is a link): remove it, then start again",
            folder.display()
        )));
    }
    std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o700))?;
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(folder.join("lock"))?;
    if let Err(std::fs::TryLockError::WouldBlock) = lock.try_lock() {
        return Err(std::io::Error::other(format!(
            "another program already serves {}; stop it first",
            path.display()
        )));
    }
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(PrivateListener {
        listener,
        _lock: lock,
    })
}

/// The user ID of the program on the other end, if it is this process's
/// user or root: the file modes already keep others out, this holds even
/// where they were loosened by hand.
pub fn caller_allowed(stream: &UnixStream) -> Result<u32, String> {
    let caller = stream
        .peer_cred()
        .map_err(|e| format!("cannot tell who is calling: {e}"))?
        .uid();
    let own = own_uid().map_err(|e| format!("cannot tell this process's user: {e}"))?;
    if caller == own || caller == 0 {
        Ok(caller)
    } else {
        Err(format!(
            "user {caller} may not use this control channel (only user {own} and root)"
        ))
    }
}

fn own_uid() -> std::io::Result<u32> {
    std::fs::metadata("/proc/self").map(|m| m.uid())
}

/// Whether the socket's folder is still as [`bind_private`] made it:
/// private to the user it belongs to, which is the caller or root. Checked
/// before anything is sent through it.
fn looks_private(path: &Path) -> anyhow::Result<()> {
    let Some(folder) = path.parent() else {
        return Ok(());
    };
    let meta = match std::fs::symlink_metadata(folder) {
        Ok(meta) => meta,
        // No folder: nobody serves there; connecting says so.
        Err(_) => return Ok(()),
    };
    // Root may ask a program of any user; others only their own or root's.
    let caller = own_uid()?;
    let private = !meta.file_type().is_symlink()
        && meta.permissions().mode() & 0o077 == 0
        && (meta.uid() == caller || meta.uid() == 0 || caller == 0);
    if !private {
        anyhow::bail!(
            "{} is not private (owner {}, mode {:o}): another user may be pretending to be \
             the program; nothing was sent. Stop the program, remove the folder and start it \
             again",
            folder.display(),
            meta.uid(),
            meta.permissions().mode() & 0o777
        );
    }
    Ok(())
}

/// Reads one request line of at most `max` bytes, within
/// [`REQUEST_TIMEOUT`].
pub async fn read_request<Q: DeserializeOwned>(
    stream: &mut UnixStream,
    max: usize,
) -> Result<Q, String> {
    let mut line = Vec::new();
    let mut limited = tokio::io::BufReader::new(stream.take(max as u64 + 1));
    let read = tokio::time::timeout(REQUEST_TIMEOUT, limited.read_until(b'\n', &mut line)).await;
    match read {
        Err(_) => return Err("no request within 5 seconds".into()),
        Ok(Err(e)) => return Err(format!("cannot read the request: {e}")),
        Ok(Ok(_)) => {}
    }
    if line.len() > max {
        return Err(format!("request longer than {max} bytes"));
    }
    serde_json::from_slice(&line).map_err(|e| format!("malformed request: {e}"))
}

/// Writes the answer line.
pub async fn write_answer<A: Serialize>(stream: &mut UnixStream, answer: &A) {
    let mut text = serde_json::to_vec(answer).expect("answers serialise");
    text.push(b'\n');
    // A caller that does not read gives its place up.
    let _ = tokio::time::timeout(REQUEST_TIMEOUT, stream.write_all(&text)).await;
}

/// Asks the program serving `path`; `Ok(None)` when none runs there (no
/// socket, or nobody listening on it).
pub fn ask<Q: Serialize, A: DeserializeOwned>(
    path: &Path,
    request: &Q,
) -> anyhow::Result<Option<A>> {
    looks_private(path)?;
    let mut stream = match std::os::unix::net::UnixStream::connect(path) {
        Ok(stream) => stream,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None)
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => anyhow::bail!(
            "{}: Permission denied: only the running program's own user and administrators \
             may use it; run this as administrator",
            path.display()
        ),
        Err(e) => anyhow::bail!(
            "cannot reach the running program at {}: {e}",
            path.display()
        ),
    };
    stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
    let mut text = serde_json::to_vec(request).expect("requests serialise");
    text.push(b'\n');
    // A refusal may come before the request is read: read it even when
    // the write failed.
    let written = stream.write_all(&text);
    let mut line = String::new();
    let read = std::io::BufReader::new(&stream).read_line(&mut line);
    if line.is_empty() {
        written?;
        read?;
        anyhow::bail!("the running program closed the connection without an answer");
    }
    let answer = serde_json::from_str(&line)
        .map_err(|e| anyhow::anyhow!("the running program gave a malformed answer: {e}"))?;
    Ok(Some(answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn private_socket_one_bounded_request() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control/x.sock");
        let listener = bind_private(&path).unwrap().listener;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert_eq!(mode(&path), 0o600);
        let server = tokio::spawn(async move {
            for _ in 0..3 {
                let (mut stream, _) = listener.accept().await.unwrap();
                caller_allowed(&stream).unwrap();
                let answer = match read_request::<String>(&mut stream, 16).await {
                    Ok(q) => format!("got {q}"),
                    Err(e) => e,
                };
                write_answer(&mut stream, &answer).await;
            }
        });
        let path2 = path.clone();
        let answers = tokio::task::spawn_blocking(move || {
            let short: Option<String> = ask(&path2, &"hi").unwrap();
            let long: Option<String> = ask(&path2, &"x".repeat(40)).unwrap();
            let bad: Option<String> = ask(&path2, &7).unwrap();
            (short, long, bad)
        })
        .await
        .unwrap();
        assert_eq!(answers.0.as_deref(), Some("got hi"));
        assert_eq!(answers.1.as_deref(), Some("request longer than 16 bytes"));
        assert!(answers.2.unwrap().starts_with("malformed request"));
        server.await.unwrap();
        // Nobody there: None, not an error.
        drop(std::fs::remove_file(&path));
        assert!(ask::<_, String>(&path, &"hi").unwrap().is_none());
        let long = dir.path().join("y".repeat(120));
        assert!(bind_private(&long)
            .unwrap_err()
            .to_string()
            .contains("too long"));

        // One server at a time.
        let listener = bind_private(&path).unwrap();
        let second = bind_private(&path).err().unwrap().to_string();
        assert!(
            second.contains("another program already serves"),
            "{second}"
        );
        // A folder loosened by hand: nothing is sent through it.
        let loose = std::fs::Permissions::from_mode(0o755);
        std::fs::set_permissions(path.parent().unwrap(), loose).unwrap();
        let refused = ask::<_, String>(&path, &"hi").unwrap_err().to_string();
        assert!(refused.contains("is not private"), "{refused}");
        drop(listener);
        // A link where the socket's folder should be: refused at the start.
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let linked = dir.path().join("linked");
        std::os::unix::fs::symlink(&elsewhere, &linked).unwrap();
        let refused = bind_private(&linked.join("x.sock"))
            .unwrap_err()
            .to_string();
        assert!(refused.contains("is a link"), "{refused}");
    }
}
