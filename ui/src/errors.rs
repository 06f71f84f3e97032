//! A failed connection in plain words: what happened and what to do next.

use client_core::error::PromptStep;
use client_core::ConnectError;

use crate::i18n::{fill, Lang, T};

/// What the failure screen shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explained {
    pub what: String,
    pub next: &'static str,
    /// The technical detail (English), for IT staff.
    pub detail: String,
}

pub fn explain(error: &ConnectError, lang: Lang) -> Explained {
    use ConnectError as E;
    let (what, next) = match error {
        E::InvalidId(_) => (T::InvalidId, T::HintUnknownId),
        E::RelayCa(_) => (T::ErrRelaySetup, T::HintRelaySetup),
        E::RelayUnreachable(_) => (T::ErrRelayUnreachable, T::HintRelayUnreachable),
        E::Proxy(_) => (T::ErrProxy, T::HintProxy),
        E::RelayUntrusted(_) => (T::ErrRelayUntrusted, T::HintRelayUntrusted),
        E::UnknownId(_) => (T::ErrUnknownId, T::HintUnknownId),
        E::HostOffline(_) => (T::ErrOffline, T::HintOffline),
        E::HostTimeout(_) => (T::ErrNoAnswer, T::HintTryLater),
        E::RateLimited(_) => (T::ErrBusy, T::HintTryLater),
        E::HostBusy(_) => (T::ErrHostBusy, T::HintTryLater),
        E::RelayFull(_) => (T::ErrRelayFull, T::HintTryLater),
        E::Denied(_) => (T::ErrDenied, T::HintDenied),
        E::HostKeyChanged { .. } => (T::ErrKeyChanged, T::HintKeyChanged),
        E::NotAllowed(_) => (T::ErrNotAllowed, T::HintAskOwner),
        E::LockedOut {
            retry_after_secs, ..
        } => {
            let minutes = retry_after_secs.div_ceil(60).max(1).to_string();
            return Explained {
                what: fill(T::ErrLockedOut.get(lang), &[&minutes]),
                next: T::HintLockedOut.get(lang),
                detail: error.to_string(),
            };
        }
        E::PromptTimedOut(step) => {
            let step = match step {
                PromptStep::HostKey => T::WaitedHostKey,
                PromptStep::Otp => T::WaitedOtp,
                PromptStep::HostPassword => T::WaitedHostPassword,
            };
            return Explained {
                what: fill(T::ErrPromptTimedOut.get(lang), &[step.get(lang)]),
                next: T::HintPromptTimedOut.get(lang),
                detail: error.to_string(),
            };
        }
        E::HostNotReady(_) => (T::ErrHostNotReady, T::HintHostNotReady),
        E::OtpRefused(_) => (T::ErrOtp, T::HintOtp),
        E::HostPasswordRefused(_) => (T::ErrHostPassword, T::HintHostPassword),
        E::LogonRefused(_) => (T::ErrLogon, T::HintLogon),
        E::ConnectionLost(_) => (T::ErrLost, T::HintLost),
        E::Cancelled => (T::ErrCancelled, T::HintTryLater),
        E::Share(_) => (T::ErrShare, T::HintShare),
        E::Pins(_)
        | E::Handshake(_)
        | E::RelayRefused(_)
        | E::HostRefused(_)
        | E::NotAnswered(_)
        | E::Rdp(_) => (T::ErrOther, T::HintOther),
    };
    Explained {
        what: what.get(lang).to_owned(),
        next: next.get(lang),
        detail: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockouts_say_how_long() {
        let e = ConnectError::LockedOut {
            message: "too many".into(),
            retry_after_secs: 90,
        };
        assert_eq!(
            explain(&e, Lang::En).what,
            "Too many failed attempts: connections are locked for 2 more minute(s)."
        );
        assert!(explain(&e, Lang::Ja).what.contains("あと 2 分間"));
    }

    #[test]
    fn every_failure_has_words_and_a_next_step() {
        let all = [
            ConnectError::RelayUnreachable("x".into()),
            ConnectError::HostOffline("x".into()),
            ConnectError::Rdp("x".into()),
            ConnectError::Cancelled,
            ConnectError::PromptTimedOut(PromptStep::HostKey),
        ];
        for e in &all {
            for lang in [Lang::En, Lang::Ja] {
                let x = explain(e, lang);
                assert!(!x.what.is_empty() && !x.next.is_empty());
                assert_eq!(x.detail, e.to_string());
            }
        }
    }
}
