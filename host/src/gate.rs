//! The host's checks for one session, inside the end-to-end channel: access
//! list, MAC allowlist, lockout, one-time password, host password (OPAQUE).
//!
//! Every question about a secret is an *attempt* that counts from the
//! moment the host asks ([`Attempt`]): it is taken from the lockout's
//! budgets before the question goes out and given back only when the answer
//! proves the secret. Whatever else the client does — a wrong answer, a new
//! start, an out-of-order message, silence, a closed connection — leaves it
//! counted and audited. (An OPAQUE challenge alone lets a client test one
//! password guess offline, so the challenge is what must be paid for.)

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proto::auth::{opaque, ClientMsg, HostMsg, OtpKind, Refusal, MAX_MACS, MAX_MAC_LEN};
use tokio::io::{AsyncRead, AsyncWrite};
use transport::FramedIo;

use crate::access;
use crate::audit::{Audit, Outcome, Step};
use crate::config::{HostConfig, OtpSetting};
use crate::lockout::{self, Caller, Charge, Clock, Locked, Lockout, Scope, Standing};
use crate::mail;
use crate::otp::{self, MailCheck, MailedCode, TotpCheck};
use crate::resume::{self, Tickets};
use crate::secrets::Secrets;

/// How long a person may take for each answer (typing a code or password).
pub(crate) const ANSWER_TIMEOUT: Duration = Duration::from_secs(proto::auth::ANSWER_TIMEOUT_SECS);
/// How long the client's program may take for a step no person is part of.
const MACHINE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the client may do once admitted; hand it back to
/// [`Gate::session_ended`] when the session is over.
pub struct Admitted {
    pub share_allowed: bool,
    /// The resume ticket given with the welcome; its grace period starts
    /// when the session ends.
    ticket: resume::Issued,
    session: Session,
    at: std::time::SystemTime,
}

impl Admitted {
    /// The settings the session was admitted under (its policy).
    pub fn config(&self) -> &HostConfig {
        &self.session.config
    }
}

/// Shared by all sessions of a running host.
pub struct Gate {
    config_path: PathBuf,
    secrets_path: PathBuf,
    clock: Arc<dyn Clock>,
    lockout: Mutex<Lockout>,
    /// Writes what the lockout must keep, off the sessions' threads.
    keeper: std::sync::mpsc::Sender<Vec<u8>>,
    /// Serialises read-modify-write of the secrets file (TOTP replay state,
    /// used emergency codes).
    secrets_lock: tokio::sync::Mutex<()>,
    tickets: Tickets,
}

/// One session's view: the settings as they are now (the owner's changes
/// apply to the next session without a restart) and where events go.
struct Session {
    config: HostConfig,
    audit: Audit,
    /// The client's address as the relay reported it.
    source: IpAddr,
    caller: Caller,
    clock: Arc<dyn Clock>,
}

impl Session {
    fn record(&self, step: Step, result: Outcome, detail: &str) {
        self.audit
            .record(self.clock.now(), self.source, step, result, detail);
    }
}

/// One question about a secret, counted from the moment it was taken.
/// [`proven`](Self::proven) gives it back; anything else —
/// [`failed`](Self::failed), or being dropped because the session ended —
/// leaves it counted and audited as a failure.
struct Attempt<'a> {
    gate: &'a Gate,
    session: &'a Session,
    step: Step,
    charge: Option<Charge>,
}

impl Attempt<'_> {
    fn proven(mut self, detail: &str) {
        self.give_back();
        self.session.record(self.step, Outcome::Ok, detail);
    }

    fn failed(mut self, detail: &str) {
        self.charge = None;
        self.session.record(self.step, Outcome::Fail, detail);
    }

    /// The host could not go on for a fault of its own (its secrets file,
    /// its mail server): the attempt is given back and `why` audited.
    fn withdrawn(mut self, why: &str) {
        self.give_back();
        self.session.record(self.step, Outcome::Refused, why);
    }

    fn give_back(&mut self) {
        if let Some(charge) = self.charge.take() {
            self.gate.update_lockout(|lockout| lockout.proven(charge));
        }
    }

    /// Attempts left before a lockout, this one included.
    fn tries_left(&self) -> u32 {
        self.charge.as_ref().map_or(0, |charge| {
            self.gate
                .lockout()
                .tries_left(charge, self.gate.clock.now())
        })
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if self.charge.take().is_some() {
            self.session
                .record(self.step, Outcome::Fail, "abandoned: the session ended");
        }
    }
}

/// What became of one OTP answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OtpVerdict {
    Accepted,
    EmergencyAccepted,
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
    /// The host's checks for the config at `config_path`, with the lockout
    /// state it kept before.
    pub fn new(config_path: &std::path::Path, clock: Arc<dyn Clock>) -> Self {
        let lockout_path = HostConfig::lockout_path(config_path);
        let lockout = Lockout::load(&lockout_path, clock.now());
        Self {
            config_path: config_path.to_owned(),
            secrets_path: HostConfig::secrets_path(config_path),
            clock,
            lockout: Mutex::new(lockout),
            keeper: keeper(lockout_path),
            secrets_lock: tokio::sync::Mutex::new(()),
            tickets: Tickets::default(),
        }
    }

    /// The admitted session ended: audited, and its resume ticket now runs
    /// out after [`resume::AFTER_END`].
    pub fn session_ended(&self, admitted: Admitted) {
        let now = self.clock.now();
        self.tickets.session_ended(&admitted.ticket.digest, now);
        let minutes = now
            .duration_since(admitted.at)
            .unwrap_or_default()
            .as_secs()
            / 60;
        let detail = format!("ended after {minutes} minute(s)");
        admitted.session.record(Step::Session, Outcome::Ok, &detail);
    }

    /// Whether the host admitted a session from `addr` lately.
    pub fn knows_address(&self, addr: IpAddr) -> bool {
        self.lockout()
            .recently_admitted(access::canonical(addr), self.clock.now())
    }

    fn lockout(&self) -> std::sync::MutexGuard<'_, Lockout> {
        self.lockout.lock().expect("not poisoned")
    }

    /// Changes the lockout and has the change kept.
    fn update_lockout<T>(&self, change: impl FnOnce(&mut Lockout) -> T) -> T {
        let mut lockout = self.lockout();
        let result = change(&mut lockout);
        if lockout.take_changed() {
            let _ = self.keeper.send(lockout.to_json());
        }
        result
    }

    fn session(&self, source: IpAddr, device: &[u8]) -> anyhow::Result<Session> {
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
            caller: Caller::new(source, device),
            clock: self.clock.clone(),
        })
    }

    /// Runs the checks for a client at `source` whose device proved the key
    /// `device` in the channel; `context` is the channel's handshake hash.
    pub async fn admit<S>(
        &self,
        conn: &mut FramedIo<S>,
        source: IpAddr,
        device: &[u8],
        context: &[u8],
    ) -> Result<Admitted, Denied>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let source = access::canonical(source);
        let session = match self.session(source, device) {
            Ok(session) => session,
            Err(e) => return refuse_unavailable(conn, e).await,
        };
        let s = &session;
        let ClientMsg::Hello { macs, resume } = recv(conn, MACHINE_TIMEOUT, "its hello").await?
        else {
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
        let mut standing = self.lockout().standing(&s.caller, self.clock.now());
        let checked = self.lockout().check(&s.caller, standing, self.clock.now());
        if let Err(locked) = checked {
            return self.refuse_locked(conn, s, locked).await;
        }
        let too_many = macs.len() > MAX_MACS || macs.iter().any(|m| m.len() > MAX_MAC_LEN);
        if too_many || !access::mac_allowed(&s.config.mac_allow, &macs) {
            // A device list is something to guess too: a refusal counts.
            let attempt = self.begin(conn, s, Step::Mac, standing).await?;
            if too_many {
                attempt.failed("too many or too long MAC addresses");
                let message = format!(
                    "the client reported more than {MAX_MACS} MAC addresses or a malformed one"
                );
                return refuse(conn, Refusal::Protocol, message).await;
            }
            attempt.failed("no allowed MAC address");
            let message =
                "this PC accepts only registered devices and this one is not registered; \
                           ask its owner to add this device's MAC address"
                    .to_owned();
            return refuse(conn, Refusal::MacNotAllowed, message).await;
        }
        let secrets = match Secrets::load(&self.secrets_path) {
            Ok(secrets) => secrets,
            Err(e) => return refuse_unavailable(conn, e).await,
        };
        let (Some(setup), Some(password_file)) = (&secrets.opaque_setup, &secrets.password_file)
        else {
            s.record(Step::Password, Outcome::Refused, "no host password set");
            let message = "this PC has no host password yet, so it accepts no connections; its \
                           owner must run `thin-host set-password` on it"
                .to_owned();
            return refuse(conn, Refusal::NoPassword, message).await;
        };

        let resumed = resume.is_some_and(|ticket| self.redeem(s, &ticket, device));
        if resumed || self.one_time_password(conn, s, &secrets, standing).await? {
            // A session that proved the code (now or, with a ticket, in the
            // session it resumes) no longer competes with strangers for
            // attempts at the password.
            standing = Standing::Verified;
        }
        self.host_password(conn, s, setup, password_file, context, standing)
            .await?;

        self.update_lockout(|lockout| lockout.admitted(&s.caller, self.clock.now()));
        s.record(Step::Session, Outcome::Ok, "admitted");
        let ticket = self.tickets.issue(device, self.clock.now());
        let welcome = HostMsg::Welcome {
            share_allowed: s.config.share,
            clipboard_allowed: s.config.clipboard,
            audio_allowed: s.config.audio,
            raw_allowed: s.config.raw,
            resume: Some(proto::auth::ResumeTicket {
                ticket: ticket.secret.clone(),
                after_end_secs: resume::AFTER_END.as_secs(),
            }),
        };
        send(conn, &welcome).await?;
        Ok(Admitted {
            share_allowed: session.config.share,
            ticket,
            at: self.clock.now(),
            session,
        })
    }

    /// Whether `ticket` lets this device skip the one-time password; audited
    /// either way (a refused ticket only means the full logon is asked).
    fn redeem(&self, s: &Session, ticket: &[u8], device: &[u8]) -> bool {
        if matches!(s.config.otp, OtpSetting::Off) {
            // Nothing to skip; the ticket still shows a recent full logon.
            return self
                .tickets
                .redeem(ticket, device, self.clock.now())
                .is_ok();
        }
        match self.tickets.redeem(ticket, device, self.clock.now()) {
            Ok(()) => {
                s.record(
                    Step::Otp,
                    Outcome::Ok,
                    "skipped: resume ticket of a session admitted before",
                );
                true
            }
            Err(why) => {
                let detail = format!("resume ticket not accepted ({})", why.as_str());
                s.record(Step::Otp, Outcome::Refused, &detail);
                false
            }
        }
    }

    /// Takes an attempt before asking for a secret; a locked source or
    /// budget refuses the session instead.
    async fn begin<'a, S>(
        &'a self,
        conn: &mut FramedIo<S>,
        s: &'a Session,
        step: Step,
        standing: Standing,
    ) -> Result<Attempt<'a>, Denied>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let now = self.clock.now();
        let charge = self.update_lockout(|lockout| lockout.begin(&s.caller, standing, now));
        match charge {
            Ok(charge) => Ok(Attempt {
                gate: self,
                session: s,
                step,
                charge: Some(charge),
            }),
            Err(locked) => self.refuse_locked(conn, s, locked).await,
        }
    }

    async fn refuse_locked<S, T>(
        &self,
        conn: &mut FramedIo<S>,
        s: &Session,
        locked: Locked,
    ) -> Result<T, Denied>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let now = self.clock.now();
        let secs = locked.wait.as_secs().max(1);
        let until = crate::audit::rfc3339(now + Duration::from_secs(secs));
        let minutes = secs.div_ceil(60);
        let (detail, message) = match locked.scope {
            Scope::Address(addr) => {
                let source = lockout::describe_source(addr);
                (
                    "locked out: too many failed attempts from this address",
                    format!(
                        "too many failed attempts: this PC refuses connections from {source} for \
                         {minutes} more minute(s) (until {until}); try again then"
                    ),
                )
            }
            Scope::Device => (
                "locked out: too many failed attempts from this device",
                format!(
                    "too many failed attempts: this PC refuses this device for {minutes} more \
                     minute(s) (until {until}); try again then"
                ),
            ),
            Scope::Host(Standing::Stranger) => (
                "locked out: too many failed attempts from unfamiliar devices",
                format!(
                    "too many failed attempts from many places: this PC refuses attempts from \
                     devices it does not know for {minutes} more minute(s) (until {until}); try \
                     again then, or from a device that connected before"
                ),
            ),
            Scope::Host(_) => (
                "locked out: too many failed attempts",
                format!(
                    "too many failed attempts: this PC refuses attempts for {minutes} more \
                     minute(s) (until {until}); try again then"
                ),
            ),
        };
        s.record(Step::Lockout, Outcome::Refused, detail);
        let reason = Refusal::LockedOut {
            retry_after_secs: secs,
        };
        refuse(conn, reason, message).await
    }

    /// Asks for the one-time password if the owner turned it on; returns
    /// whether one was proven.
    async fn one_time_password<S>(
        &self,
        conn: &mut FramedIo<S>,
        s: &Session,
        secrets: &Secrets,
        standing: Standing,
    ) -> Result<bool, Denied>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let kind = match &s.config.otp {
            OtpSetting::Off => return Ok(false),
            OtpSetting::Totp if secrets.totp.is_none() => {
                s.record(Step::Otp, Outcome::Refused, "TOTP on but not enrolled");
                let message = "this PC asks for an authenticator code but has none enrolled; its \
                               owner must run `thin-host otp totp` again"
                    .to_owned();
                return refuse(conn, Refusal::Otp, message).await;
            }
            OtpSetting::Totp => OtpKind::Totp,
            OtpSetting::Email(settings) => OtpKind::Email {
                masked_to: proto::auth::mask_email(&settings.to),
            },
        };
        // Taken before a code is mailed, so unanswered prompts cannot fill
        // the owner's mailbox either.
        let mut attempt = self.begin(conn, s, Step::Otp, standing).await?;
        let mut mailed = match &s.config.otp {
            OtpSetting::Email(settings) => match self.mail_code(s, settings).await {
                Ok(code) => Some(code),
                Err(e) => {
                    attempt.withdrawn(&format!("cannot mail the code: {e}"));
                    let message = "this PC could not mail the one-time code; ask its owner to \
                                   check its mail settings (thin-host otp status)";
                    return refuse(conn, Refusal::Otp, message.into()).await;
                }
            },
            _ => None,
        };
        let prompt = HostMsg::OtpRequired {
            kind,
            emergency_codes: !secrets.emergency.is_empty(),
        };
        send(conn, &prompt).await?;

        loop {
            let msg = match recv(conn, ANSWER_TIMEOUT, "the one-time password prompt").await {
                Ok(msg) => msg,
                Err(e) => {
                    attempt.failed(&format!("abandoned: {e}"));
                    return Err(e);
                }
            };
            let ClientMsg::Otp { code, emergency } = msg else {
                attempt.failed("out-of-order message instead of a one-time password");
                let message = "expected a one-time password".into();
                return refuse(conn, Refusal::Protocol, message).await;
            };
            let verdict = match self.check_code(&code, emergency, mailed.as_mut()).await {
                Ok(verdict) => verdict,
                Err(e) => {
                    attempt.withdrawn(&format!("cannot check the code: {e}"));
                    let message = "this PC cannot check one-time passwords right now; ask its \
                                   owner to look at its log";
                    return refuse(conn, Refusal::Unavailable, message.into()).await;
                }
            };
            let detail = match verdict {
                OtpVerdict::Accepted => {
                    attempt.proven("");
                    return Ok(true);
                }
                OtpVerdict::EmergencyAccepted => {
                    attempt.step = Step::Emergency;
                    attempt.proven("emergency code used");
                    return Ok(true);
                }
                OtpVerdict::WrongEmergency => {
                    attempt.step = Step::Emergency;
                    "wrong emergency code"
                }
                OtpVerdict::Wrong { .. } => "wrong code",
                OtpVerdict::Reused => "code already used",
                OtpVerdict::Expired => "expired code",
                OtpVerdict::Exhausted => "wrong code, no tries left",
            };
            attempt.failed(detail);
            match verdict {
                OtpVerdict::Expired => {
                    let message = "the mailed code has expired; connect again to get a new one";
                    return refuse(conn, Refusal::Otp, message.into()).await;
                }
                OtpVerdict::Exhausted => {
                    let message = "too many wrong codes; connect again to get a new one";
                    return refuse(conn, Refusal::Otp, message.into()).await;
                }
                _ => {}
            }
            // The next try is a new attempt, taken before the client is
            // told it may try again.
            attempt = self.begin(conn, s, Step::Otp, standing).await?;
            let left = attempt.tries_left();
            let tries_left = match verdict {
                OtpVerdict::Wrong {
                    code_tries: Some(n),
                } => left.min(n),
                _ => left,
            };
            let reused = verdict == OtpVerdict::Reused;
            send(conn, &HostMsg::OtpWrong { tries_left, reused }).await?;
        }
    }

    /// What one answer to the OTP prompt is worth: an emergency code (or
    /// anything not six digits), else the authenticator's or the mailed code.
    async fn check_code(
        &self,
        code: &str,
        emergency: bool,
        mailed: Option<&mut MailedCode>,
    ) -> Result<OtpVerdict, Denied> {
        let six_digits =
            code.trim().len() == otp::DIGITS && code.trim().bytes().all(|b| b.is_ascii_digit());
        if emergency || !six_digits {
            return Ok(if self.take_emergency_code(code).await? {
                OtpVerdict::EmergencyAccepted
            } else {
                OtpVerdict::WrongEmergency
            });
        }
        let Some(mailed) = mailed else {
            return self.check_totp(code).await;
        };
        Ok(match mailed.check(code, self.clock.now()) {
            MailCheck::Accepted => OtpVerdict::Accepted,
            MailCheck::Wrong { tries_left } => OtpVerdict::Wrong {
                code_tries: Some(tries_left),
            },
            MailCheck::Expired => OtpVerdict::Expired,
            MailCheck::Exhausted => OtpVerdict::Exhausted,
        })
    }

    /// Mails a fresh code; the error says why it could not (for the audit).
    async fn mail_code(
        &self,
        s: &Session,
        settings: &mail::EmailSettings,
    ) -> Result<MailedCode, String> {
        let now = self.clock.now();
        let code = MailedCode::new(now);
        let (subject, body) = mail::compose(
            s.config.id.as_str(),
            code.code(),
            s.source,
            now,
            code.expires(),
        );
        let sent = async {
            let password = match &settings.smtp_password_file {
                Some(file) => Some(read_secret_file(&self.config_dir_file(file))?),
                None => None,
            };
            let password = password.as_deref().map(|p| p.as_str());
            mail::send(settings, password, subject, body).await
        };
        sent.await?;
        Ok(code)
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
        let now = self.clock.now();
        // Under the file's lock: the owner's changes do not undo it.
        let checked = Secrets::update(&self.secrets_path, |secrets| {
            let Some(state) = &mut secrets.totp else {
                return Ok(None);
            };
            let check = otp::check_totp(state, code, now);
            if let TotpCheck::Accepted { step } = check {
                state.last_step = step;
            }
            Ok(Some(check))
        })
        .map_err(|e| format!("{e:#}"))?;
        match checked {
            Some(TotpCheck::Accepted { .. }) => Ok(OtpVerdict::Accepted),
            Some(TotpCheck::Replayed) => Ok(OtpVerdict::Reused),
            Some(TotpCheck::Wrong) | None => Ok(OtpVerdict::Wrong { code_tries: None }),
        }
    }

    async fn take_emergency_code(&self, code: &str) -> Result<bool, Denied> {
        let _guard = self.secrets_lock.lock().await;
        Secrets::update(&self.secrets_path, |secrets| {
            Ok(otp::take_emergency_code(&mut secrets.emergency, code))
        })
        .map_err(|e| format!("{e:#}"))
    }

    /// The OPAQUE exchange. Each challenge belongs to one attempt, taken
    /// before the host asks; only a valid finish gives it back.
    async fn host_password<S>(
        &self,
        conn: &mut FramedIo<S>,
        s: &Session,
        setup: &[u8],
        password_file: &[u8],
        context: &[u8],
        standing: Standing,
    ) -> Result<(), Denied>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut attempt = self.begin(conn, s, Step::Password, standing).await?;
        send(conn, &HostMsg::PasswordRequired).await?;
        let mut challenged = None;
        loop {
            let msg = match recv(conn, ANSWER_TIMEOUT, "the host password prompt").await {
                Ok(msg) => msg,
                Err(e) => {
                    attempt.failed(&format!("abandoned: {e}"));
                    return Err(e);
                }
            };
            match msg {
                ClientMsg::PasswordStart { request } => {
                    if challenged.take().is_some() {
                        // The client found its guess wrong and tries again:
                        // a new attempt, or a lockout.
                        attempt.failed("wrong password");
                        attempt = self.begin(conn, s, Step::Password, standing).await?;
                    }
                    let Ok((state, response)) =
                        opaque::server_start(setup, password_file, &request, context)
                    else {
                        attempt.failed("malformed password exchange");
                        let message = "malformed password exchange".into();
                        return refuse(conn, Refusal::Protocol, message).await;
                    };
                    challenged = Some(state);
                    send(conn, &HostMsg::PasswordChallenge { response }).await?;
                }
                ClientMsg::PasswordFinish { finalization } => {
                    let Some(state) = challenged.take() else {
                        attempt.failed("password exchange out of order");
                        let message = "password exchange out of order".into();
                        return refuse(conn, Refusal::Protocol, message).await;
                    };
                    if opaque::server_finish(state, &finalization).is_ok() {
                        attempt.proven("");
                        return Ok(());
                    }
                    attempt.failed("password proof invalid");
                    let message = "the host password could not be verified".to_owned();
                    return refuse(conn, Refusal::Password, message).await;
                }
                _ => {
                    attempt.failed("out-of-order message during the password exchange");
                    let message = "expected the password exchange".into();
                    return refuse(conn, Refusal::Protocol, message).await;
                }
            }
        }
    }
}

/// A thread that writes the lockout's state to `path` (mode 0600), the
/// latest one whenever it changed, until the gate is dropped. Failing to
/// write is logged: the limits hold in memory all the same.
fn keeper(path: PathBuf) -> std::sync::mpsc::Sender<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let write = move || {
        while let Ok(mut latest) = rx.recv() {
            while let Ok(newer) = rx.try_recv() {
                latest = newer;
            }
            if let Err(e) = files::write_atomic(&path, &latest, files::Mode::Secret) {
                tracing::warn!(file = %path.display(), error = %e, "cannot keep the lockout state");
            }
        }
    };
    if let Err(e) = std::thread::Builder::new()
        .name("lockout-keeper".into())
        .spawn(write)
    {
        tracing::warn!(error = %e, "cannot start the lockout keeper: its state is not kept");
    }
    tx
}

/// Refuses a session whose settings or secrets cannot be loaded: running
/// out of file descriptors is a busy host, not damaged settings.
async fn refuse_unavailable<S, T>(conn: &mut FramedIo<S>, error: anyhow::Error) -> Result<T, Denied>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let exhausted = error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(is_resource_exhaustion)
    });
    let (reason, message) = if exhausted {
        (
            Refusal::Busy,
            "this PC is out of resources for new connections right now; try again in a minute",
        )
    } else {
        (
            Refusal::Unavailable,
            "this PC cannot check connections because its settings are damaged; ask its owner \
             to look at its log",
        )
    };
    let _ = refuse::<S, ()>(conn, reason, message.into()).await;
    Err(format!("{error:#}"))
}

/// Too many open files (for the process or the whole system), or no memory.
pub(crate) fn is_resource_exhaustion(error: &std::io::Error) -> bool {
    const ENFILE: i32 = 23;
    const EMFILE: i32 = 24;
    error.kind() == std::io::ErrorKind::OutOfMemory
        || (cfg!(unix) && matches!(error.raw_os_error(), Some(ENFILE | EMFILE)))
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

/// Reads the client's next message within `limit`; `waiting_for` names the
/// step for the log when it does not come.
async fn recv<S>(
    conn: &mut FramedIo<S>,
    limit: Duration,
    waiting_for: &str,
) -> Result<ClientMsg, Denied>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let frame = tokio::time::timeout(limit, conn.read_frame())
        .await
        .map_err(|_| {
            format!(
                "the client did not answer {waiting_for} within {} s",
                limit.as_secs()
            )
        })?
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
