//! What a connection needs from the person using it: progress to show and
//! questions to answer. The CLI answers from flags or the terminal, the
//! desktop and web apps from their dialogs.

use std::future::Future;
use std::pin::Pin;

pub use proto::auth::OtpKind;
use zeroize::Zeroizing;

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
    /// The one-time password was accepted.
    OtpAccepted,
    /// The host password was accepted: the host lets this client in.
    Admitted,
    /// A folder was to be shared but the host's policy does not allow it.
    ShareRefused,
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
    /// The host asks for a one-time password (or an emergency code).
    Otp {
        kind: OtpKind,
        /// Emergency codes may be used instead.
        emergency_codes: bool,
        /// Set when the last code was refused.
        last: Option<OtpWrong>,
    },
    /// The host asks for its host password; `retry` after a wrong one.
    HostPassword { retry: bool },
    /// The remote PC's own (Windows) logon, when not given beforehand.
    RemoteLogon {
        user: String,
        domain: Option<String>,
    },
}

/// Why the last one-time password was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OtpWrong {
    /// Tries left before a lockout.
    pub tries_left: u32,
    /// The code was right but already used: wait for the next one.
    pub reused: bool,
}

impl std::fmt::Display for OtpWrong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.reused {
            "that code was already used; wait for the next one"
        } else {
            "the one-time password was wrong"
        };
        write!(
            f,
            "{what} ({} tries left before a lockout)",
            self.tries_left
        )
    }
}

/// The user's answer.
#[derive(Clone, PartialEq, Eq)]
pub enum Answer {
    Accept,
    /// A one-time password.
    Otp(Zeroizing<String>),
    /// An emergency code instead of the one-time password.
    EmergencyCode(Zeroizing<String>),
    /// A password.
    Secret(Zeroizing<String>),
    /// The remote PC's logon.
    Logon {
        user: String,
        password: Zeroizing<String>,
        domain: Option<String>,
    },
    /// The user cancelled.
    Cancel,
    /// Cannot be answered here (e.g. no terminal); says what to do instead.
    Unavailable(String),
}

impl std::fmt::Debug for Answer {
    // Never print what the user typed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Accept => f.write_str("Accept"),
            Answer::Otp(_) => f.write_str("Otp(..)"),
            Answer::EmergencyCode(_) => f.write_str("EmergencyCode(..)"),
            Answer::Secret(_) => f.write_str("Secret(..)"),
            Answer::Logon { user, domain, .. } => f
                .debug_struct("Logon")
                .field("user", user)
                .field("domain", domain)
                .finish_non_exhaustive(),
            Answer::Cancel => f.write_str("Cancel"),
            Answer::Unavailable(why) => write!(f, "Unavailable({why:?})"),
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

/// Answers from fixed values and reports nothing: for tests and scripts.
/// New host keys are trusted on first use.
#[derive(Default)]
pub struct Scripted {
    pub otp: Option<String>,
    pub host_password: Option<String>,
}

impl Interaction for Scripted {
    fn ask(&mut self, prompt: Prompt) -> BoxFuture<'_, Answer> {
        let answer = match prompt {
            Prompt::NewHostKey { .. } => Answer::Accept,
            Prompt::Otp { last: None, .. } => match &self.otp {
                Some(code) => Answer::Otp(Zeroizing::new(code.clone())),
                None => Answer::Unavailable("no one-time password was given".into()),
            },
            Prompt::HostPassword { retry: false } => match &self.host_password {
                Some(p) => Answer::Secret(Zeroizing::new(p.clone())),
                None => Answer::Unavailable("no host password was given".into()),
            },
            // The given answer was wrong; asking again would not help.
            Prompt::Otp { .. } | Prompt::HostPassword { .. } => Answer::Cancel,
            Prompt::RemoteLogon { .. } => {
                Answer::Unavailable("no remote logon password was given".into())
            }
        };
        Box::pin(async move { answer })
    }
}
