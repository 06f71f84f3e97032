//! What can go wrong when connecting, in words a user can act on.

use proto::relay::ErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("invalid computer ID: {0}")]
    InvalidId(#[from] proto::IdError),
    #[error("cannot load the relay CA: {0}")]
    RelayCa(String),
    #[error("relay unreachable: {0}")]
    RelayUnreachable(String),
    #[error("HTTP proxy: {0}")]
    Proxy(String),
    #[error(
        "relay certificate not trusted: {0}; check that you have the right ca.pem for this relay"
    )]
    RelayUntrusted(String),
    #[error("unknown computer ID: {0}")]
    UnknownId(String),
    #[error("computer offline: {0}")]
    HostOffline(String),
    #[error("no answer: {0}")]
    HostTimeout(String),
    #[error("too many attempts: {0}")]
    RateLimited(String),
    #[error("busy: {0}")]
    HostBusy(String),
    #[error("relay busy: {0}")]
    RelayFull(String),
    #[error("refused by the relay's operator: {0}")]
    Denied(String),
    #[error("the relay refused the connection: {0}")]
    RelayRefused(String),
    #[error("the office PC could not start the session: {0}")]
    HostRefused(String),
    #[error("the end-to-end channel to the office PC failed: {0}")]
    Handshake(String),
    #[error(
        "WARNING: the key of computer '{id}' has changed (pinned {old_fingerprint}, now \
         {new_fingerprint}). Someone may be impersonating it, so the connection was refused. \
         If its owner re-installed thin-host, remove the old pin (thin-client forget-host \
         {pin}) and connect again"
    )]
    HostKeyChanged {
        id: String,
        pin: String,
        old_fingerprint: String,
        new_fingerprint: String,
    },
    #[error("cannot use the pinned host keys: {0}")]
    Pins(String),
    #[error("cancelled")]
    Cancelled,
    #[error("{0}")]
    Share(String),
    #[error("{0}")]
    NotAnswered(String),
    #[error("not allowed: {0}")]
    NotAllowed(String),
    #[error("locked out: {message}")]
    LockedOut {
        message: String,
        retry_after_secs: u64,
    },
    #[error("the office PC is not ready: {0}")]
    HostNotReady(String),
    #[error("one-time password refused: {0}")]
    OtpRefused(String),
    #[error("host password refused: {0}")]
    HostPasswordRefused(String),
    #[error("remote logon refused: {0}")]
    LogonRefused(String),
    #[error("RDP error: {0}")]
    Rdp(String),
    #[error("connection lost: {0}")]
    ConnectionLost(String),
    #[error(
        "you took more than {minutes} minutes over {0}, so the office PC stopped waiting; \
         connect again",
        minutes = proto::auth::ANSWER_TIMEOUT_SECS / 60
    )]
    PromptTimedOut(PromptStep),
}

/// A question the user answers while the office PC waits (see
/// [`ConnectError::PromptTimedOut`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptStep {
    HostKey,
    Otp,
    HostPassword,
}

impl std::fmt::Display for PromptStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PromptStep::HostKey => "the check of the office PC's key",
            PromptStep::Otp => "the one-time password",
            PromptStep::HostPassword => "the host password",
        })
    }
}

impl ConnectError {
    pub(crate) fn from_relay(code: ErrorCode, message: String) -> Self {
        match code {
            ErrorCode::UnknownId => Self::UnknownId(message),
            ErrorCode::HostOffline => Self::HostOffline(message),
            ErrorCode::Timeout => Self::HostTimeout(message),
            ErrorCode::RateLimited => Self::RateLimited(message),
            ErrorCode::HostBusy => Self::HostBusy(message),
            ErrorCode::RelayFull => Self::RelayFull(message),
            ErrorCode::Denied => Self::Denied(message),
            _ => Self::RelayRefused(message),
        }
    }
}
