//! What a connection needs from the person using it: progress to show and
//! questions to answer. The CLI answers from flags or the terminal, the
//! desktop and web apps from their dialogs.

use std::future::Future;
use std::pin::Pin;

/// Steps of a connection, in order, for progress displays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// TCP + TLS to the relay is up.
    RelayConnected,
    /// The relay found the computer online and asked it to answer.
    HostNotified,
    /// The pipe to the host is open.
    Paired,
    /// The end-to-end channel to the host is up and its key checked.
    Secured,
    /// The host reached its RDP server; the remote logon runs.
    RemoteLogon,
    /// The remote desktop session is running.
    Connected,
}

/// A question for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// First connection to this computer: trust this key from now on?
    NewHostKey { id: String, fingerprint: String },
}

/// The user's answer.
#[derive(Clone, PartialEq, Eq)]
pub enum Answer {
    Accept,
    Cancel,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Accept => f.write_str("Accept"),
            Answer::Cancel => f.write_str("Cancel"),
        }
    }
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub trait Interaction: Send {
    /// A step was reached.
    fn progress(&mut self, _step: Progress) {}

    /// Asks the user; the connection waits for the answer.
    fn ask(&mut self, prompt: Prompt) -> BoxFuture<'_, Answer>;
}

/// Accepts new host keys and reports nothing: for tests and scripted use
/// where the caller has already decided to trust first use.
pub struct TrustFirstUse;

impl Interaction for TrustFirstUse {
    fn ask(&mut self, prompt: Prompt) -> BoxFuture<'_, Answer> {
        Box::pin(async move {
            match prompt {
                Prompt::NewHostKey { .. } => Answer::Accept,
            }
        })
    }
}
