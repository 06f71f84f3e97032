//! Who may use the office PC: the messages of the host's checks, sent inside
//! the end-to-end channel before the RDP session, and the pieces both ends
//! share (the OPAQUE cipher suite, the host-password rule).
//!
//! ```text
//! client → host   Hello {macs, resume}
//! host   → client Refused {..}                       (access list, MAC, lockout, no password)
//!               | OtpRequired {kind}                  (OTP on)
//! client → host   Otp {code, emergency}               ← repeated while OtpWrong {tries_left}
//! host   → client PasswordRequired
//! client → host   PasswordStart {OPAQUE KE1}
//! host   → client PasswordChallenge {OPAQUE KE2}
//! client → host   PasswordFinish {OPAQUE KE3}         or PasswordStart again after a typo
//! host   → client Welcome {.._allowed, resume}        or Refused
//! ```
//! A `resume` ticket from an earlier `Welcome` of this host, presented by the
//! same device, stands in for the one-time password once (see
//! [`ResumeTicket`]); the host password is proven again.
//! The OPAQUE exchange carries the channel's handshake hash as its context,
//! so it cannot be relayed into another channel.

use serde::{Deserialize, Serialize};

/// OPAQUE with ristretto255, triple-DH and Argon2id as the key-stretching
/// function (RFC 9807 shape).
pub struct PasswordSuite;

impl opaque_ke::CipherSuite for PasswordSuite {
    type OprfCs = opaque_ke::Ristretto255;
    type KeGroup = opaque_ke::Ristretto255;
    type KeyExchange = opaque_ke::key_exchange::tripledh::TripleDh;
    type Ksf = argon2::Argon2<'static>;
}

/// Client messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMsg {
    /// First message: the client's MAC addresses (for the host's allowlist).
    Hello {
        macs: Vec<String>,
        /// A ticket from this host's last `Welcome` to this device.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<Vec<u8>>,
    },
    /// A one-time password, or one of the emergency codes.
    Otp {
        code: String,
        emergency: bool,
    },
    PasswordStart {
        request: Vec<u8>,
    },
    PasswordFinish {
        finalization: Vec<u8>,
    },
}

/// Host messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HostMsg {
    Refused {
        reason: Refusal,
        /// For the user, in English (UIs translate from `reason`).
        message: String,
    },
    OtpRequired {
        kind: OtpKind,
        /// Emergency codes are enrolled and may be used instead.
        emergency_codes: bool,
    },
    OtpWrong {
        tries_left: u32,
        /// The code was right but already used (TOTP replay).
        #[serde(default)]
        reused: bool,
    },
    PasswordRequired,
    PasswordChallenge {
        response: Vec<u8>,
    },
    /// Admitted. What the owner's policy lets the session carry (the host
    /// enforces it; the client shows it and does not offer the rest).
    Welcome {
        share_allowed: bool,
        #[serde(default)]
        clipboard_allowed: bool,
        #[serde(default)]
        audio_allowed: bool,
        /// Raw mode (any RDP client through a local port).
        #[serde(default)]
        raw_allowed: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<ResumeTicket>,
    },
}

/// Lets the device that was admitted come back once without the one-time
/// password — after its connection broke, or for another connection of an
/// RDP client in raw mode — while the session it came with runs and for
/// `after_end_secs` after it ended. Sent only inside the end-to-end channel;
/// the host accepts it only from the device key it was given to.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeTicket {
    pub ticket: Vec<u8>,
    pub after_end_secs: u64,
}

impl std::fmt::Debug for ResumeTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResumeTicket")
            .field("after_end_secs", &self.after_end_secs)
            .finish_non_exhaustive()
    }
}

/// Length of a resume ticket; the host ignores any other.
pub const RESUME_TICKET_LEN: usize = 32;

/// How long a person may take over one question (the host key, a code, a
/// password): both ends wait this long and no longer.
pub const ANSWER_TIMEOUT_SECS: u64 = 5 * 60;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OtpKind {
    /// From an authenticator app.
    Totp,
    /// Mailed to the address shown (masked, e.g. t***@example.jp).
    Email { masked_to: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Refusal {
    /// The source address is not allowed by the host's access list.
    AccessList { source: String },
    /// None of the client's MAC addresses is on the host's allowlist.
    MacNotAllowed,
    /// Too many failures: retry after this many seconds.
    LockedOut { retry_after_secs: u64 },
    /// The host has no host password yet.
    NoPassword,
    /// The OTP step failed for good (e.g. mail could not be sent, code expired).
    Otp,
    /// The host password was not proven.
    Password,
    /// The client broke the protocol.
    Protocol,
    /// The host cannot check connections right now (e.g. damaged settings).
    Unavailable,
    /// The host is out of room for more connection attempts (too many at
    /// once, or out of resources such as file descriptors): try again soon.
    Busy,
}

/// MAC addresses a client may report in its hello (a PC with more network
/// interfaces reports its first ones); the host refuses longer lists.
pub const MAX_MACS: usize = 32;
/// Longest MAC address text accepted (`aa:bb:cc:dd:ee:ff` is 17).
pub const MAX_MAC_LEN: usize = 32;

/// Why a proposed host password is too weak, stated as the rule.
pub const PASSWORD_RULE: &str = "a host password needs at least 8 characters using 3 of: \
lower-case letters, upper-case letters, digits, symbols; or at least 16 characters using 2 of \
them; or at least 24 characters";

/// The complexity rule: ≥8 characters with 3 of lower/upper/digit/symbol,
/// or ≥16 with 2, or ≥24 with any.
pub fn password_is_strong(password: &str) -> bool {
    let len = password.chars().count();
    let classes = [
        password.chars().any(|c| c.is_lowercase()),
        password.chars().any(|c| c.is_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password
            .chars()
            .any(|c| !c.is_alphanumeric() && !c.is_whitespace()),
    ]
    .into_iter()
    .filter(|present| *present)
    .count();
    (len >= 8 && classes >= 3) || (len >= 16 && classes >= 2) || len >= 24
}

/// Masks an address for display: `taro@example.jp` → `t***@example.jp`.
pub fn mask_email(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}

/// The OPAQUE steps of both ends, over serialized messages. There is one
/// account per host, so the credential identifier is fixed.
pub mod opaque {
    use opaque_ke::errors::ProtocolError;
    use opaque_ke::{
        ClientLogin, ClientLoginFinishParameters, ClientRegistration,
        ClientRegistrationFinishParameters, CredentialFinalization, CredentialRequest,
        CredentialResponse, Identifiers, RegistrationRequest, RegistrationResponse,
        RegistrationUpload, ServerLogin, ServerLoginStartParameters, ServerRegistration,
        ServerSetup,
    };
    use rand::rngs::OsRng;
    use thiserror::Error;

    use super::PasswordSuite as Suite;

    const CREDENTIAL_ID: &[u8] = b"thin-host";

    #[derive(Debug, Error, Clone, PartialEq, Eq)]
    pub enum OpaqueError {
        /// The client could not open its envelope: the password is wrong.
        #[error("the host password is wrong")]
        WrongPassword,
        #[error("malformed password-exchange message")]
        Malformed,
    }

    fn malformed(_: ProtocolError) -> OpaqueError {
        OpaqueError::Malformed
    }

    /// A fresh server setup (the host's OPRF seed and key pair), serialized.
    pub fn new_server_setup() -> Vec<u8> {
        ServerSetup::<Suite>::new(&mut OsRng).serialize().to_vec()
    }

    /// Runs registration locally (the host's owner sets the password on the
    /// host): returns the password file, which holds no password-equivalent.
    pub fn register(setup: &[u8], password: &[u8]) -> Result<Vec<u8>, OpaqueError> {
        let setup = ServerSetup::<Suite>::deserialize(setup).map_err(malformed)?;
        let start = ClientRegistration::<Suite>::start(&mut OsRng, password).map_err(malformed)?;
        let request =
            RegistrationRequest::deserialize(&start.message.serialize()).map_err(malformed)?;
        let response = ServerRegistration::<Suite>::start(&setup, request, CREDENTIAL_ID)
            .map_err(malformed)?;
        let response =
            RegistrationResponse::deserialize(&response.message.serialize()).map_err(malformed)?;
        let finish = start
            .state
            .finish(
                &mut OsRng,
                password,
                response,
                ClientRegistrationFinishParameters::default(),
            )
            .map_err(malformed)?;
        let upload = RegistrationUpload::<Suite>::deserialize(&finish.message.serialize())
            .map_err(malformed)?;
        Ok(ServerRegistration::finish(upload).serialize().to_vec())
    }

    /// Client, step 1: the credential request to send.
    pub fn client_start(password: &[u8]) -> Result<(ClientLogin<Suite>, Vec<u8>), OpaqueError> {
        let start = ClientLogin::<Suite>::start(&mut OsRng, password).map_err(malformed)?;
        Ok((start.state, start.message.serialize().to_vec()))
    }

    /// Client, step 2: checks the host's response against the password and
    /// the channel (`context`); returns the finalization to send.
    pub fn client_finish(
        state: ClientLogin<Suite>,
        password: &[u8],
        response: &[u8],
        context: &[u8],
    ) -> Result<Vec<u8>, OpaqueError> {
        let response = CredentialResponse::deserialize(response).map_err(malformed)?;
        let params = ClientLoginFinishParameters::new(Some(context), Identifiers::default(), None);
        match state.finish(password, response, params) {
            Ok(done) => Ok(done.message.serialize().to_vec()),
            Err(ProtocolError::InvalidLoginError) => Err(OpaqueError::WrongPassword),
            Err(e) => Err(malformed(e)),
        }
    }

    /// Server, step 1: answers a credential request.
    pub fn server_start(
        setup: &[u8],
        password_file: &[u8],
        request: &[u8],
        context: &[u8],
    ) -> Result<(ServerLogin<Suite>, Vec<u8>), OpaqueError> {
        let setup = ServerSetup::<Suite>::deserialize(setup).map_err(malformed)?;
        let file = ServerRegistration::<Suite>::deserialize(password_file).map_err(malformed)?;
        let request = CredentialRequest::deserialize(request).map_err(malformed)?;
        let params = ServerLoginStartParameters {
            context: Some(context),
            identifiers: Identifiers::default(),
        };
        let start = ServerLogin::start(
            &mut OsRng,
            &setup,
            Some(file),
            request,
            CREDENTIAL_ID,
            params,
        )
        .map_err(malformed)?;
        Ok((start.state, start.message.serialize().to_vec()))
    }

    /// Server, step 2: succeeds only if the client proved the password.
    pub fn server_finish(
        state: ServerLogin<Suite>,
        finalization: &[u8],
    ) -> Result<(), OpaqueError> {
        let finalization = CredentialFinalization::deserialize(finalization).map_err(malformed)?;
        state
            .finish(finalization)
            .map(drop)
            .map_err(|_| OpaqueError::WrongPassword)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn login(
            setup: &[u8],
            file: &[u8],
            password: &[u8],
            ctx: (&[u8], &[u8]),
        ) -> Result<(), OpaqueError> {
            let (client, request) = client_start(password)?;
            let (server, response) = server_start(setup, file, &request, ctx.1)?;
            let finalization = client_finish(client, password, &response, ctx.0)?;
            server_finish(server, &finalization)
        }

        #[test]
        fn right_password_logs_in_wrong_one_does_not() {
            let setup = new_server_setup();
            let file = register(&setup, b"Corr3ct-Horse").unwrap();
            assert_eq!(
                login(&setup, &file, b"Corr3ct-Horse", (b"ch", b"ch")),
                Ok(())
            );
            assert_eq!(
                login(&setup, &file, b"corr3ct-horse", (b"ch", b"ch")),
                Err(OpaqueError::WrongPassword)
            );
            // Bound to the channel: another channel's context fails.
            assert!(login(&setup, &file, b"Corr3ct-Horse", (b"one", b"two")).is_err());
        }

        #[test]
        fn garbage_is_an_error_not_a_panic() {
            let setup = new_server_setup();
            let file = register(&setup, b"Corr3ct-Horse").unwrap();
            assert!(server_start(&setup, &file, &[0xff; 10], b"c").is_err());
            assert!(server_start(&setup, &[1, 2, 3], &[0; 32], b"c").is_err());
            assert!(server_start(&[1], &file, &[0; 32], b"c").is_err());
            let (client, _) = client_start(b"x").unwrap();
            assert!(client_finish(client, b"x", &[0; 5], b"c").is_err());
            let (_, request) = client_start(b"x").unwrap();
            let (server, _) = server_start(&setup, &file, &request, b"c").unwrap();
            assert!(server_finish(server, &[7; 64]).is_err());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_rule() {
        assert!(password_is_strong("Abcdef1!"));
        assert!(password_is_strong("abcdefg1!"));
        assert!(!password_is_strong("abcdefg1"));
        assert!(!password_is_strong("Ab1!"));
        assert!(password_is_strong("abcdefghijklmnop1"));
        assert!(!password_is_strong("abcdefghijklmnopq"));
        assert!(password_is_strong(&"a".repeat(24)));
        assert!(!password_is_strong(&"a".repeat(23)));
        assert!(password_is_strong("パスワードPassword1"));
    }

    #[test]
    fn masked_addresses() {
        assert_eq!(mask_email("taro@example.jp"), "t***@example.jp");
        assert_eq!(mask_email("nonsense"), "***");
    }

    #[test]
    fn messages_round_trip() {
        let msg = HostMsg::OtpRequired {
            kind: OtpKind::Email {
                masked_to: "t***@example.jp".into(),
            },
            emergency_codes: true,
        };
        let json = serde_json::to_vec(&msg).unwrap();
        assert_eq!(serde_json::from_slice::<HostMsg>(&json).unwrap(), msg);
        assert!(serde_json::from_slice::<ClientMsg>(b"{\"type\":\"otp\"}").is_err());
    }
}
