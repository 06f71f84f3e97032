//! The host's checks for one session, inside the end-to-end channel: access
//! list, MAC allowlist, lockout, one-time password, host password (OPAQUE).
//! Every attempt is audited; failures count toward the lockout.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proto::auth::{opaque, ClientMsg, HostMsg, OtpKind, Refusal};
use tokio::io::{AsyncRead, AsyncWrite};
use transport::FramedIo;

use crate::access;
use crate::audit::{Audit, Outcome, Step};
use crate::config::{HostConfig, OtpSetting};
use crate::lockout::{AfterFailure, Clock, Lockout};
use crate::mail;
use crate::otp::{self, MailCheck, MailedCode, TotpCheck};
use crate::secrets::Secrets;

/// How long the client may take for each answer (a person typing a code).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// What the client may do once admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admitted {
    pub share_allowed: bool,
}

/// Shared by all sessions of a running host.
pub struct Gate {
    config_path: PathBuf,
    secrets_path: PathBuf,
    clock: Arc<dyn Clock>,
    lockout: Mutex<Lockout>,
    /// Serialises read-modify-write of the secrets file (TOTP replay state,
    /// used emergency codes).
    secrets_lock: tokio::sync::Mutex<()>,
}

/// One session's view: the settings as they are now (the owner's changes
/// apply to the next session without a restart) and where events go.
struct Session {
    config: HostConfig,
    audit: Audit,
    source: IpAddr,
    clock: Arc<dyn Clock>,
}

impl Session {
    fn record(&self, step: Step, result: Outcome, detail: &str) {
        self.audit
            .record(self.clock.now(), self.source, step, result, detail);
    }
}

/// What became of one OTP answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OtpVerdict {
    Accepted,
    /// `code_tries`: tries left on a mailed code.
    Wrong {
        code_tries: Option<u32>,
    },
    WrongEmergency,
    /// A TOTP code whose time step was already used.
    Reused,
    Expired,
    Exhausted,
}

/// Why a session ended before admission (for the host's log).
type Denied = String;

impl Gate {
    pub fn new(config_path: &std::path::Path, clock: Arc<dyn Clock>) -> Self {
        Self {
            config_path: config_path.to_owned(),
            secrets_path: HostConfig::secrets_path(config_path),
            clock,
            lockout: Mutex::new(Lockout::default()),
            secrets_lock: tokio::sync::Mutex::new(()),
        }
    }

    fn session(&self, source: IpAddr) -> anyhow::Result<Session> {
        let config = HostConfig::load(&self.config_path)?;
        let audit = Audit::new(
            HostConfig::audit_path(&self.config_path),
            config.syslog.as_deref(),
            config.id.as_str(),
        )?;
        Ok(Session {
            config,
            audit,
            source,
            clock: self.clock.clone(),
        })
    }

    /// Runs the checks; `context` is the channel's handshake hash.
    pub async fn admit<S>(
        &self,
        conn: &mut FramedIo<S>,
        source: IpAddr,
        context: &[u8],
    ) -> Result<Admitted, Denied>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let source = access::canonical(source);
        let session = match self.session(source) {
            Ok(session) => session,
            Err(e) => {
                let message = "this PC cannot check connections because its settings are \
                               damaged; ask its owner to look at its log"
                    .to_owned();
                let _ = refuse::<S, ()>(conn, Refusal::Unavailable, message).await;
                return Err(format!("{e:#}"));
            }
        };
        let s = &session;
        let ClientMsg::Hello { macs } = recv(conn).await? else {
            return refuse(conn, Refusal::Protocol, "expected hello".into()).await;
        };

        if !access::allowed(&s.config.acl, source) {
            s.record(
                Step::AccessList,
                Outcome::Refused,
                "denied by the access list",
            );
            let message = format!(
                "this PC does not accept connections from {source} (its access list); ask its owner"
            );
            let reason = Refusal::AccessList {
                source: source.to_string(),
            };
            return refuse(conn, reason, message).await;
        }
        if !access::mac_allowed(&s.config.mac_allow, &macs) {
            s.record(Step::Mac, Outcome::Refused, "no allowed MAC address");
            let message =
                "this PC accepts only registered devices and this one is not registered; \
                           ask its owner to add this device's MAC address"
                    .to_owned();
            return refuse(conn, Refusal::MacNotAllowed, message).await;
        }
        if let Some(wait) = self.locked(source) {
            s.record(Step::Lockout, Outcome::Refused, "locked out");
            return self.refuse_locked(conn, source, wait).await;
        }
        let secrets = Secrets::load(&self.secrets_path).map_err(|e| format!("{e:#}"))?;
        let (Some(setup), Some(password_file)) = (&secrets.opaque_setup, &secrets.password_file)
        else {
            s.record(Step::Password, Outcome::Refused, "no host password set");
            let message = "this PC has no host password yet, so it accepts no connections; its \
                           owner must run `thin-host set-password` on it"
                .to_owned();
            return refuse(conn, Refusal::NoPassword, message).await;
        };

        self.one_time_password(conn, s, &secrets).await?;
        self.host_password(conn, s, setup, password_file, context)
            .await?;

        self.lockout.lock().expect("not poisoned").success(source);
        s.record(Step::Session, Outcome::Ok, "admitted");
        let admitted = Admitted {
            share_allowed: s.config.share,
        };
        send(
            conn,
            &HostMsg::Welcome {
                share_allowed: admitted.share_allowed,
            },
        )
        .await?;
        Ok(admitted)
    }

    fn locked(&self, source: IpAddr) -> Option<Duration> {
        let now = self.clock.now();
        self.lockout
            .lock()
            .expect("not poisoned")
            .locked(source, now)
    }

    async fn refuse_locked<S, T>(
        &self,
        conn: &mut FramedIo<S>,
        source: IpAddr,
        wait: Duration,
    ) -> Result<T, Denied>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let now = self.clock.now();
        let secs = wait.as_secs().max(1);
        let until = crate::audit::rfc3339(now + Duration::from_secs(secs));
        let minutes = secs.div_ceil(60);
        let whole_host = !self
            .lockout
            .lock()
            .expect("not poisoned")
            .source_locked(source, now);
        let message = if whole_host {
            format!(
                "too many failed attempts from many places: this PC refuses all connections \
                 for {minutes} more minute(s) (until {until}); try again then"
            )
        } else {
            format!(
                "too many failed attempts: this PC refuses connections from {source} for \
                 {minutes} more minute(s) (until {until}); try again then"
            )
        };
        refuse(
            conn,
            Refusal::LockedOut {
                retry_after_secs: secs,
            },
            message,
        )
        .await
    }

    /// Counts a failure; refuses the session if it triggered a lockout.
    async fn failed<S>(
        &self,
        conn: &mut FramedIo<S>,
        s: &Session,
        step: Step,
        detail: &str,
    ) -> Result<u32, Denied>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        s.record(step, Outcome::Fail, detail);
        let after = {
            let now = self.clock.now();
            self.lockout
                .lock()
                .expect("not poisoned")
                .failure(s.source, now)
        };
        match after {
            AfterFailure::TriesLeft(n) => Ok(n),
            AfterFailure::Locked(wait) => {
                s.record(
                    Step::Lockout,
                    Outcome::Refused,
                    "locked out after repeated failures",
                );
                self.refuse_locked(conn, s.source, wait).await
            }
        }
    }

    async fn one_time_password<S>(
        &self,
        conn: &mut FramedIo<S>,
        s: &Session,
        secrets: &Secrets,
    ) -> Result<(), Denied>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let source = s.source;
        let (kind, mut mailed) = match &s.config.otp {
            OtpSetting::Off => return Ok(()),
            OtpSetting::Totp => {
                if secrets.totp.is_none() {
                    s.record(Step::Otp, Outcome::Refused, "TOTP on but not enrolled");
                    let message =
                        "this PC asks for an authenticator code but has none enrolled; its \
                                   owner must run `thin-host otp totp` again"
                            .to_owned();
                    return refuse(conn, Refusal::Otp, message).await;
                }
                (OtpKind::Totp, None)
            }
            OtpSetting::Email(settings) => {
                let now = self.clock.now();
                let code = MailedCode::new(now);
                let (subject, body) = mail::compose(
                    s.config.id.as_str(),
                    code.code(),
                    source,
                    now,
                    code.expires(),
                );
                let password = match &settings.smtp_password_file {
                    Some(file) => Some(read_secret_file(&self.config_dir_file(file))?),
                    None => None,
                };
                if let Err(e) = mail::send(
                    settings,
                    password.as_deref().map(|p| p.as_str()),
                    subject,
                    body,
                )
                .await
                {
                    s.record(
                        Step::Otp,
                        Outcome::Refused,
                        &format!("cannot mail the code: {e}"),
                    );
                    let message =
                        "this PC could not mail the one-time code; ask its owner to check \
                                   its mail settings (thin-host otp status)"
                            .to_owned();
                    return refuse(conn, Refusal::Otp, message).await;
                }
                let masked_to = proto::auth::mask_email(&settings.to);
                (OtpKind::Email { masked_to }, Some(code))
            }
        };
        send(
            conn,
            &HostMsg::OtpRequired {
                kind,
                emergency_codes: !secrets.emergency.is_empty(),
            },
        )
        .await?;

        loop {
            let msg = match recv(conn).await {
                Ok(msg) => msg,
                Err(e) => {
                    // An attempt abandoned half-way counts as a failed one.
                    self.failed(conn, s, Step::Otp, "abandoned").await?;
                    return Err(e);
                }
            };
            let ClientMsg::Otp { code, emergency } = msg else {
                return refuse(
                    conn,
                    Refusal::Protocol,
                    "expected a one-time password".into(),
                )
                .await;
            };
            let six_digits =
                code.trim().len() == otp::DIGITS && code.trim().bytes().all(|b| b.is_ascii_digit());
            let verdict = if emergency || !six_digits {
                if self.take_emergency_code(&code).await? {
                    s.record(Step::Emergency, Outcome::Ok, "emergency code used");
                    return Ok(());
                }
                OtpVerdict::WrongEmergency
            } else {
                match &mut mailed {
                    None => self.check_totp(&code).await?,
                    Some(mailed) => match mailed.check(&code, self.clock.now()) {
                        MailCheck::Accepted => OtpVerdict::Accepted,
                        MailCheck::Wrong { tries_left } => OtpVerdict::Wrong {
                            code_tries: Some(tries_left),
                        },
                        MailCheck::Expired => OtpVerdict::Expired,
                        MailCheck::Exhausted => OtpVerdict::Exhausted,
                    },
                }
            };
            let (step, detail) = match verdict {
                OtpVerdict::Accepted => {
                    s.record(Step::Otp, Outcome::Ok, "");
                    return Ok(());
                }
                OtpVerdict::WrongEmergency => (Step::Emergency, "wrong emergency code"),
                OtpVerdict::Wrong { .. } => (Step::Otp, "wrong code"),
                OtpVerdict::Reused => (Step::Otp, "code already used"),
                OtpVerdict::Expired => (Step::Otp, "expired code"),
                OtpVerdict::Exhausted => (Step::Otp, "wrong code, no tries left"),
            };
            let left = self.failed(conn, s, step, detail).await?;
            let tries_left = match verdict {
                OtpVerdict::Expired => {
                    let message = "the mailed code has expired; connect again to get a new one";
                    return refuse(conn, Refusal::Otp, message.into()).await;
                }
                OtpVerdict::Exhausted => {
                    let message = "too many wrong codes; connect again to get a new one";
                    return refuse(conn, Refusal::Otp, message.into()).await;
                }
                OtpVerdict::Wrong {
                    code_tries: Some(n),
                } => left.min(n),
                _ => left,
            };
            let reused = verdict == OtpVerdict::Reused;
            send(conn, &HostMsg::OtpWrong { tries_left, reused }).await?;
        }
    }

    fn config_dir_file(&self, file: &std::path::Path) -> PathBuf {
        match self.secrets_path.parent() {
            Some(dir) if file.is_relative() => dir.join(file),
            _ => file.to_owned(),
        }
    }

    /// Checks a TOTP code and records its step so it cannot be replayed.
    async fn check_totp(&self, code: &str) -> Result<OtpVerdict, Denied> {
        let _guard = self.secrets_lock.lock().await;
        let mut secrets = Secrets::load(&self.secrets_path).map_err(|e| format!("{e:#}"))?;
        let Some(state) = &mut secrets.totp else {
            return Ok(OtpVerdict::Wrong { code_tries: None });
        };
        match otp::check_totp(state, code, self.clock.now()) {
            TotpCheck::Accepted { step } => {
                state.last_step = step;
                secrets
                    .save(&self.secrets_path)
                    .map_err(|e| format!("{e:#}"))?;
                Ok(OtpVerdict::Accepted)
            }
            TotpCheck::Replayed => Ok(OtpVerdict::Reused),
            TotpCheck::Wrong => Ok(OtpVerdict::Wrong { code_tries: None }),
        }
    }

    async fn take_emergency_code(&self, code: &str) -> Result<bool, Denied> {
        let _guard = self.secrets_lock.lock().await;
        let mut secrets = Secrets::load(&self.secrets_path).map_err(|e| format!("{e:#}"))?;
        if !otp::take_emergency_code(&mut secrets.emergency, code) {
            return Ok(false);
        }
        secrets
            .save(&self.secrets_path)
            .map_err(|e| format!("{e:#}"))?;
        Ok(true)
    }

    async fn host_password<S>(
        &self,
        conn: &mut FramedIo<S>,
        s: &Session,
        setup: &[u8],
        password_file: &[u8],
        context: &[u8],
    ) -> Result<(), Denied>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        send(conn, &HostMsg::PasswordRequired).await?;
        let mut pending = None;
        loop {
            let msg = match recv(conn).await {
                Ok(msg) => msg,
                Err(e) => {
                    if pending.is_some() {
                        self.failed(conn, s, Step::Password, "abandoned after a wrong password")
                            .await?;
                    }
                    return Err(e);
                }
            };
            match msg {
                ClientMsg::PasswordStart { request } => {
                    // A new start after a challenge: the client found its
                    // password wrong and tries again.
                    if pending.take().is_some() {
                        self.failed(conn, s, Step::Password, "wrong password")
                            .await?;
                    }
                    let Ok((state, response)) =
                        opaque::server_start(setup, password_file, &request, context)
                    else {
                        return refuse(
                            conn,
                            Refusal::Protocol,
                            "malformed password exchange".into(),
                        )
                        .await;
                    };
                    pending = Some(state);
                    send(conn, &HostMsg::PasswordChallenge { response }).await?;
                }
                ClientMsg::PasswordFinish { finalization } => {
                    let Some(state) = pending.take() else {
                        return refuse(
                            conn,
                            Refusal::Protocol,
                            "password exchange out of order".into(),
                        )
                        .await;
                    };
                    if opaque::server_finish(state, &finalization).is_ok() {
                        s.record(Step::Password, Outcome::Ok, "");
                        return Ok(());
                    }
                    self.failed(conn, s, Step::Password, "password proof invalid")
                        .await?;
                    let message = "the host password could not be verified".to_owned();
                    return refuse(conn, Refusal::Password, message).await;
                }
                _ => {
                    return refuse(
                        conn,
                        Refusal::Protocol,
                        "expected the password exchange".into(),
                    )
                    .await;
                }
            }
        }
    }
}

fn read_secret_file(path: &std::path::Path) -> Result<zeroize::Zeroizing<String>, Denied> {
    std::fs::read_to_string(path)
        .map(|s| zeroize::Zeroizing::new(s.trim_end_matches(['\r', '\n']).to_owned()))
        .map_err(|e| format!("cannot read the SMTP password file {}: {e}", path.display()))
}

async fn send<S>(conn: &mut FramedIo<S>, msg: &HostMsg) -> Result<(), Denied>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let json = serde_json::to_vec(msg).expect("messages serialise");
    conn.write_all(&proto::encode_frame(&json))
        .await
        .map_err(|e| format!("client connection lost: {e}"))
}

async fn recv<S>(conn: &mut FramedIo<S>) -> Result<ClientMsg, Denied>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let frame = tokio::time::timeout(ANSWER_TIMEOUT, conn.read_frame())
        .await
        .map_err(|_| "the client did not answer in time".to_owned())?
        .map_err(|e| format!("client connection lost: {e}"))?;
    match serde_json::from_slice(&frame) {
        Ok(msg) => Ok(msg),
        Err(e) => {
            let message = format!("malformed message from the client: {e}");
            refuse(conn, Refusal::Protocol, message).await
        }
    }
}

/// Tells the client why it is refused; always returns the refusal.
async fn refuse<S, T>(conn: &mut FramedIo<S>, reason: Refusal, message: String) -> Result<T, Denied>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let _ = send(
        conn,
        &HostMsg::Refused {
            reason,
            message: message.clone(),
        },
    )
    .await;
    Err(message)
}
