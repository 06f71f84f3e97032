//! The settings app's channel to the running host: a private Unix socket
//! beside the config (`<config>.control/host.sock`, see
//! [`transport::local`]), never a network port. It answers how the host is
//! doing (status needs no password) and makes the owner's changes; with a
//! settings password set, a change must carry it, and the host checks it
//! (the app only asks). When no host runs, the same changes are made on
//! the files by the caller ([`change`]).
//!
//! Changes go through the same functions as the `thin-host` commands
//! (validated, written atomically); sessions read the config anew, so a
//! change applies to the next connection.

use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::access::{AclRule, Action};
use crate::admin::{self, PolicyChange};
use crate::config::{HostConfig, OtpSetting};
use crate::secrets::Secrets;

/// Longest request line (a few settings, never a file).
#[cfg(unix)]
const MAX_REQUEST: usize = 16 * 1024;
/// Callers served at once; more wait for the kernel's backlog.
#[cfg(unix)]
const MAX_CALLERS: usize = 8;
/// Audit events shown as recent connections.
const RECENT: usize = 20;
/// Of the audit log, only this much of its end is read for them.
const AUDIT_TAIL: u64 = 64 * 1024;
/// Wrong settings passwords: 5, then one more a minute; each wrong one is
/// also answered a second late.
#[cfg(unix)]
const SETTINGS_GUESSES: proto::rate::Rate = proto::rate::Rate {
    burst: 5,
    interval: Duration::from_secs(60),
};
#[cfg(unix)]
const WRONG_PASSWORD_DELAY: Duration = Duration::from_secs(1);
/// The shortest settings password.
pub const MIN_SETTINGS_PASSWORD: usize = 8;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    Status,
    /// Only checks the settings password (the app's unlock).
    Unlock {
        settings_password: Option<String>,
    },
    Change {
        #[serde(default)]
        settings_password: Option<String>,
        change: Change,
    },
}

/// One change the owner makes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "setting")]
pub enum Change {
    Policy {
        #[serde(default)]
        share: Option<bool>,
        #[serde(default)]
        clipboard: Option<bool>,
        #[serde(default)]
        audio: Option<bool>,
        #[serde(default)]
        raw: Option<bool>,
        #[serde(default)]
        require_nla: Option<bool>,
    },
    Syslog {
        target: Option<String>,
    },
    AclAdd {
        priority: u32,
        action: Action,
        network: String,
    },
    AclRemove {
        priority: u32,
    },
    MacAllow {
        mac: String,
    },
    MacRemove {
        mac: String,
    },
    /// Sets (or with `None` clears) the settings password.
    SettingsPassword {
        new: Option<String>,
    },
    /// The host password (checked against the complexity rule).
    HostPassword {
        password: String,
    },
    /// Authenticator codes with this key (base32), once `code` proves the
    /// app has it.
    TotpEnrol {
        secret: String,
        code: String,
    },
    /// Codes mailed per attempt; the SMTP password, if any, goes to a
    /// file of its own beside the config (0600).
    OtpEmail {
        settings: MailSetup,
    },
    OtpOff,
}

/// Mailed codes as the owner enters them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailSetup {
    pub to: String,
    pub smtp: String,
    pub smtp_user: Option<String>,
    pub smtp_password: Option<String>,
    pub smtp_tls: crate::mail::SmtpTls,
    pub from: String,
}

impl MailSetup {
    /// The settings as the config keeps them, the password in
    /// `password_file` (beside the config).
    fn settings(&self, password_file: Option<PathBuf>) -> crate::mail::EmailSettings {
        crate::mail::EmailSettings {
            to: self.to.trim().to_owned(),
            smtp: self.smtp.trim().to_owned(),
            smtp_user: self.smtp_user.clone().filter(|u| !u.is_empty()),
            smtp_password_file: password_file,
            smtp_tls: self.smtp_tls,
            from: self.from.trim().to_owned(),
        }
    }
}

/// Mails a test message with `setup` (before it is saved): the error says
/// what the mail server answered.
pub fn test_mail(config_path: &Path, setup: &MailSetup) -> anyhow::Result<()> {
    let config = HostConfig::load(config_path)?;
    let placeholder = setup.smtp_password.as_ref().map(|_| PathBuf::from("-"));
    let settings = setup.settings(placeholder);
    settings.validate().map_err(anyhow::Error::msg)?;
    let (subject, body) = crate::mail::compose_test(config.id.as_str());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime
        .block_on(crate::mail::send(
            &settings,
            setup.smtp_password.as_deref(),
            subject,
            body,
        ))
        .map_err(anyhow::Error::msg)
}

/// What a change did: in words, and the emergency codes an enrolment made
/// (shown once).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub message: String,
    #[serde(default)]
    pub emergency_codes: Vec<String>,
}

impl From<String> for Applied {
    fn from(message: String) -> Self {
        Self {
            message,
            emergency_codes: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Status(Box<Status>),
    Done(Applied),
    Refused(String),
}

/// How the host is doing, with no secret in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub computer_id: String,
    /// The relay address(es) in the config.
    pub relay: String,
    /// Whether a host process answered on the channel.
    pub running: bool,
    /// Registered with the relay now.
    pub online: bool,
    /// The relay node it is registered with.
    pub node: Option<String>,
    /// Since when (RFC 3339).
    pub since: Option<String>,
    /// Why it is not online, in the host's words.
    pub problem: Option<String>,
    /// What clients pin (`thin-host fingerprint`).
    pub fingerprint: String,
    /// Sessions past the owner's checks now.
    pub sessions_now: u32,
    /// The newest audit events first.
    pub recent: Vec<AuditLine>,
    pub password_set: bool,
    /// "off", "totp" or "email".
    pub otp: String,
    pub totp_enrolled: bool,
    pub emergency_codes: usize,
    pub settings_locked: bool,
    pub share: bool,
    pub clipboard: bool,
    pub audio: bool,
    pub raw: bool,
    pub require_nla: bool,
    pub acl: Vec<AclRule>,
    pub mac_allow: Vec<String>,
    pub syslog: Option<String>,
}

/// One line of the audit log as the status shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditLine {
    pub time: String,
    pub source: String,
    pub step: String,
    pub result: String,
    #[serde(default)]
    pub detail: String,
}

/// What the running host knows about itself beyond its files.
#[derive(Debug, Default, Clone)]
pub struct Live {
    pub online: bool,
    pub node: Option<String>,
    pub since: Option<SystemTime>,
    pub problem: Option<String>,
    pub sessions: u32,
}

pub type LiveState = Arc<Mutex<Live>>;

/// Counts a session as running while it lives.
pub struct SessionCount(LiveState);

impl SessionCount {
    pub fn start(live: &LiveState) -> Self {
        live.lock().expect("not poisoned").sessions += 1;
        Self(live.clone())
    }
}

impl Drop for SessionCount {
    fn drop(&mut self) {
        let mut live = self.0.lock().expect("not poisoned");
        live.sessions = live.sessions.saturating_sub(1);
    }
}

/// The socket of the host whose config is `config_path`.
pub fn socket_path(config_path: &Path) -> PathBuf {
    let mut folder = config_path.as_os_str().to_owned();
    folder.push(".control");
    PathBuf::from(folder).join("host.sock")
}

/// The status from the files, with what `live` adds when a host runs.
pub fn status_of(config_path: &Path, live: Option<&Live>) -> anyhow::Result<Status> {
    let config = HostConfig::load(config_path)?;
    let secrets = Secrets::load(&HostConfig::secrets_path(config_path))?;
    let fingerprint = config
        .load_e2e_key(config_path)
        .map(|key| proto::channel::fingerprint(key.public()))
        .unwrap_or_else(|e| format!("(unreadable: {e:#})"));
    let otp = match &config.otp {
        OtpSetting::Off => "off",
        OtpSetting::Totp => "totp",
        OtpSetting::Email(_) => "email",
    };
    Ok(Status {
        computer_id: config.id.to_string(),
        relay: config.relay.clone(),
        running: live.is_some(),
        online: live.is_some_and(|l| l.online),
        node: live.and_then(|l| l.node.clone()),
        since: live.and_then(|l| l.since).map(to_the_second),
        problem: match live {
            Some(live) => live.problem.clone(),
            None => Some("the host is not running".into()),
        },
        fingerprint,
        sessions_now: live.map_or(0, |l| l.sessions),
        recent: recent_events(&HostConfig::audit_path(config_path)),
        password_set: secrets.password_file.is_some(),
        otp: otp.into(),
        totp_enrolled: secrets.totp.is_some(),
        emergency_codes: secrets.emergency.len(),
        settings_locked: secrets.settings_password.is_some(),
        share: config.share,
        clipboard: config.clipboard,
        audio: config.audio,
        raw: config.raw,
        require_nla: config.require_nla,
        acl: config.acl.clone(),
        mac_allow: config.mac_allow.clone(),
        syslog: config.syslog.clone(),
    })
}

/// `2026-12-03T20:29:38Z`: people read it, nanoseconds do not help.
fn to_the_second(at: SystemTime) -> String {
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    crate::audit::rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// The last [`RECENT`] events of the audit log, newest first; a missing or
/// damaged log shows none.
fn recent_events(audit: &Path) -> Vec<AuditLine> {
    let Ok(mut file) = std::fs::File::open(audit) else {
        return Vec::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(AUDIT_TAIL);
    let mut tail = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_err()
        || file.take(AUDIT_TAIL).read_to_end(&mut tail).is_err()
    {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&tail);
    // A read from the middle starts with part of a line.
    let whole = if start > 0 {
        text.split_once('\n').map_or("", |(_, rest)| rest)
    } else {
        &text
    };
    whole
        .lines()
        .rev()
        .filter_map(|line| serde_json::from_str(line).ok())
        .take(RECENT)
        .collect()
}

impl Change {
    /// Makes the change in the files; says what changed.
    pub fn apply(&self, config_path: &Path) -> anyhow::Result<Applied> {
        if let Change::OtpEmail { settings } = self {
            return enrol_email(config_path, settings);
        }
        let Change::TotpEnrol { secret, code } = self else {
            return self.apply_in_words(config_path).map(Applied::from);
        };
        let typed: String = secret.chars().filter(|c| !c.is_whitespace()).collect();
        let key = base32::decode(
            base32::Alphabet::Rfc4648 { padding: false },
            &typed.to_ascii_uppercase(),
        )
        .context("the new key is damaged; start the enrolment again")?;
        let codes = admin::enrol_totp_confirmed(config_path, &key, code, SystemTime::now())?;
        Ok(Applied {
            message: "authenticator codes are on; they apply to the next connection".into(),
            emergency_codes: codes.iter().map(|c| c.as_str().to_owned()).collect(),
        })
    }

    fn apply_in_words(&self, config_path: &Path) -> anyhow::Result<String> {
        match self {
            Change::Policy {
                share,
                clipboard,
                audio,
                raw,
                require_nla,
            } => {
                let change = PolicyChange {
                    share: *share,
                    clipboard: *clipboard,
                    audio: *audio,
                    raw: *raw,
                    require_nla: *require_nla,
                };
                admin::set_policy(config_path, change)?;
                Ok("policy changed; it applies to the next connection".into())
            }
            Change::Syslog { target } => {
                admin::set_syslog(config_path, target.as_deref())?;
                Ok(match target {
                    Some(target) => format!("audit events also go to syslog at {target}"),
                    None => "audit events go only to the audit log".into(),
                })
            }
            Change::AclAdd {
                priority,
                action,
                network,
            } => {
                admin::acl_add(config_path, *action, network, *priority)?;
                Ok(format!("access list rule {priority} added"))
            }
            Change::AclRemove { priority } => {
                admin::acl_remove(config_path, *priority)?;
                Ok(format!("access list rule {priority} removed"))
            }
            Change::MacAllow { mac } => {
                admin::mac_allow(config_path, mac)?;
                Ok(format!("{mac} added to the MAC allowlist"))
            }
            Change::MacRemove { mac } => {
                admin::mac_remove(config_path, mac)?;
                Ok(format!("{mac} removed from the MAC allowlist"))
            }
            Change::SettingsPassword { new } => {
                set_settings_password(config_path, new.as_deref())?;
                Ok(match new {
                    Some(_) => "settings password set: changes now need it".into(),
                    None => "settings password removed: anyone who can open the settings may \
                             change them"
                        .into(),
                })
            }
            Change::HostPassword { password } => {
                admin::set_password(config_path, password)?;
                Ok("host password set; it applies to the next connection".into())
            }
            Change::TotpEnrol { .. } | Change::OtpEmail { .. } => {
                unreachable!("apply() makes enrolments itself")
            }
            Change::OtpOff => {
                admin::otp_off(config_path)?;
                let config = HostConfig::load(config_path)?;
                let _ = std::fs::remove_file(
                    config.beside(config_path, &smtp_password_file(config_path)),
                );
                Ok("one-time passwords are off: only the host password is asked".into())
            }
        }
    }
}

/// Where the settings app keeps the mail server's password (relative to
/// the config's folder).
fn smtp_password_file(config_path: &Path) -> PathBuf {
    let stem = config_path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("host");
    PathBuf::from(format!("{stem}.smtp-password"))
}

/// Turns on mailed codes from what the owner entered.
fn enrol_email(config_path: &Path, setup: &MailSetup) -> anyhow::Result<Applied> {
    let name = smtp_password_file(config_path);
    let config = HostConfig::load(config_path)?;
    let path = config.beside(config_path, &name);
    let password_file = setup.smtp_password.as_ref().map(|_| name.clone());
    // Checked before anything is written: a refused setup leaves the
    // working one (and its password file) as it was.
    let settings = setup.settings(password_file);
    settings.validate().map_err(anyhow::Error::msg)?;
    match &setup.smtp_password {
        Some(password) => files::write_atomic(&path, password.as_bytes(), files::Mode::Secret)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => {
            let _ = std::fs::remove_file(&path);
        }
    }
    let enrolment = admin::enrol_email(config_path, settings)?;
    Ok(Applied {
        message: format!(
            "codes are mailed to {} from the next connection",
            setup.to.trim()
        ),
        emergency_codes: enrolment
            .emergency_codes
            .iter()
            .map(|c| c.as_str().to_owned())
            .collect(),
    })
}

/// Sets (or clears) the settings password, stored as an Argon2id hash.
pub fn set_settings_password(config_path: &Path, new: Option<&str>) -> anyhow::Result<()> {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher as _, SaltString};

    let hash = match new {
        Some(password) => {
            if password.chars().count() < MIN_SETTINGS_PASSWORD {
                anyhow::bail!(
                    "a settings password needs at least {MIN_SETTINGS_PASSWORD} characters"
                );
            }
            let salt = SaltString::generate(&mut OsRng);
            let hash = argon2::Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map_err(|e| anyhow::anyhow!("cannot hash the settings password: {e}"))?;
            Some(hash.to_string())
        }
        None => None,
    };
    Secrets::update(&HostConfig::secrets_path(config_path), |secrets| {
        secrets.settings_password = hash;
        Ok(())
    })
}

/// Why a change without the right settings password is refused, if it is.
pub fn check_settings_password(config_path: &Path, given: Option<&str>) -> Result<(), String> {
    use argon2::password_hash::{PasswordHash, PasswordVerifier as _};

    let secrets =
        Secrets::load(&HostConfig::secrets_path(config_path)).map_err(|e| e.to_string())?;
    let Some(stored) = secrets.settings_password else {
        return Ok(());
    };
    let Some(given) = given else {
        return Err(
            "these settings are locked with a settings password; enter it to change them".into(),
        );
    };
    let stored = PasswordHash::new(&stored)
        .map_err(|e| format!("the stored settings password is damaged ({e}); set it again"))?;
    argon2::Argon2::default()
        .verify_password(given.as_bytes(), &stored)
        .map_err(|_| "the settings password is wrong".to_owned())
}

/// Serves the channel of the host whose config is `config_path` until the
/// task is dropped.
#[cfg(unix)]
pub async fn serve(config_path: PathBuf, live: LiveState) -> anyhow::Result<()> {
    use transport::local;

    let path = socket_path(&config_path);
    let listener = local::bind_private(&path)
        .with_context(|| format!("cannot open the settings channel {}", path.display()))?;
    let callers = Arc::new(tokio::sync::Semaphore::new(MAX_CALLERS));
    // Changes one at a time: each reads and rewrites the config.
    let changes = Arc::new(tokio::sync::Mutex::new(proto::rate::Bucket::default()));
    let started = std::time::Instant::now();
    loop {
        let mut stream = match listener.listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "settings channel: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = callers.clone().acquire_owned().await else {
            return Ok(());
        };
        let (config_path, live, changes) = (config_path.clone(), live.clone(), changes.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let uid = match local::caller_allowed(&stream) {
                Ok(uid) => uid,
                Err(message) => {
                    tracing::warn!(%message, "settings channel: caller refused");
                    local::write_answer(&mut stream, &Answer::Refused(message)).await;
                    return;
                }
            };
            let answer = match local::read_request::<Request>(&mut stream, MAX_REQUEST).await {
                Err(message) => Answer::Refused(message),
                Ok(Request::Status) => {
                    // A copy: sessions need the lock; the files take time.
                    let now = live.lock().expect("not poisoned").clone();
                    let path = config_path.clone();
                    let status = tokio::task::spawn_blocking(move || status_of(&path, Some(&now)))
                        .await
                        .expect("the status does not panic");
                    match status {
                        Ok(status) => Answer::Status(Box::new(status)),
                        Err(e) => Answer::Refused(format!("{e:#}")),
                    }
                }
                Ok(Request::Unlock { settings_password }) => {
                    let mut guesses = changes.lock().await;
                    let now = started.elapsed();
                    let given = settings_password.as_deref();
                    match guarded_check(&config_path, given, &mut guesses, now).await {
                        Ok(()) => Answer::Done("unlocked".to_owned().into()),
                        Err(message) => Answer::Refused(message),
                    }
                }
                Ok(Request::Change {
                    settings_password,
                    change,
                }) => {
                    let mut guesses = changes.lock().await;
                    let now = started.elapsed();
                    let checked = guarded_check(
                        &config_path,
                        settings_password.as_deref(),
                        &mut guesses,
                        now,
                    )
                    .await;
                    match checked {
                        Err(message) => Answer::Refused(message),
                        Ok(()) => {
                            let path = config_path.clone();
                            let done =
                                tokio::task::spawn_blocking(move || change.apply(&path)).await;
                            match done.expect("a change does not panic") {
                                Ok(applied) => {
                                    let message = &applied.message;
                                    tracing::info!(uid, %message, "settings changed");
                                    Answer::Done(applied)
                                }
                                Err(e) => Answer::Refused(format!("{e:#}")),
                            }
                        }
                    }
                }
            };
            local::write_answer(&mut stream, &answer).await;
        });
    }
}

/// The settings password check, with wrong guesses limited.
#[cfg(unix)]
async fn guarded_check(
    config_path: &Path,
    given: Option<&str>,
    guesses: &mut proto::rate::Bucket,
    now: Duration,
) -> Result<(), String> {
    if given.is_some() {
        if let Err(wait) = guesses.take(SETTINGS_GUESSES, now) {
            return Err(format!(
                "too many wrong settings passwords; try again in {} seconds",
                wait.as_secs().max(1)
            ));
        }
    }
    let path = config_path.to_owned();
    let given_owned = given.map(str::to_owned);
    let checked =
        tokio::task::spawn_blocking(move || check_settings_password(&path, given_owned.as_deref()))
            .await
            .expect("the check does not panic");
    match checked {
        Ok(()) => {
            if given.is_some() {
                guesses.give_back(SETTINGS_GUESSES);
            }
            Ok(())
        }
        Err(message) => {
            tokio::time::sleep(WRONG_PASSWORD_DELAY).await;
            Err(message)
        }
    }
}

/// The host's status: from the running host, or from the files when none
/// runs.
pub fn status(config_path: &Path) -> anyhow::Result<Status> {
    match ask(config_path, &Request::Status)? {
        Some(Answer::Status(status)) => Ok(*status),
        Some(Answer::Refused(message)) => anyhow::bail!("the running host refused: {message}"),
        Some(Answer::Done(_)) => anyhow::bail!("the running host gave an unexpected answer"),
        None => status_of(config_path, None),
    }
}

/// Checks the settings password (with the running host's limit on
/// guesses, or against the files when none runs).
pub fn unlock(config_path: &Path, settings_password: Option<&str>) -> anyhow::Result<()> {
    let request = Request::Unlock {
        settings_password: settings_password.map(str::to_owned),
    };
    match ask(config_path, &request)? {
        Some(Answer::Done(_)) => Ok(()),
        Some(Answer::Refused(message)) => Err(anyhow::anyhow!(message)),
        Some(Answer::Status(_)) => anyhow::bail!("the running host gave an unexpected answer"),
        None => check_settings_password(config_path, settings_password).map_err(anyhow::Error::msg),
    }
}

/// Makes `change`: through the running host, or in the files when none
/// runs (the settings password is checked either way).
pub fn change(
    config_path: &Path,
    settings_password: Option<&str>,
    change: &Change,
) -> anyhow::Result<Applied> {
    let request = Request::Change {
        settings_password: settings_password.map(str::to_owned),
        change: change.clone(),
    };
    match ask(config_path, &request)? {
        Some(Answer::Done(applied)) => Ok(applied),
        Some(Answer::Refused(message)) => Err(anyhow::anyhow!(message)),
        Some(Answer::Status(_)) => anyhow::bail!("the running host gave an unexpected answer"),
        None => {
            check_settings_password(config_path, settings_password).map_err(anyhow::Error::msg)?;
            change.apply(config_path)
        }
    }
}

#[cfg(unix)]
fn ask(config_path: &Path, request: &Request) -> anyhow::Result<Option<Answer>> {
    transport::local::ask(&socket_path(config_path), request)
}

/// No channel on Windows yet: the files are read and changed directly.
#[cfg(not(unix))]
fn ask(_config_path: &Path, _request: &Request) -> anyhow::Result<Option<Answer>> {
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_events_are_the_newest_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let audit = dir.path().join("audit.log");
        assert!(recent_events(&audit).is_empty(), "no log yet: none");
        let mut text = String::new();
        // More than the tail that is read, so it starts mid-line.
        for i in 0..2000 {
            text.push_str(&format!(
                "{{\"time\":\"t{i}\",\"source\":\"192.0.2.1\",\"step\":\"password\",\
                 \"result\":\"fail\",\"detail\":\"attempt {i}\"}}\n"
            ));
        }
        text.push_str("not json\n");
        std::fs::write(&audit, &text).unwrap();
        assert!(text.len() as u64 > AUDIT_TAIL);
        let recent = recent_events(&audit);
        assert_eq!(recent.len(), RECENT);
        assert_eq!(recent[0].detail, "attempt 1999");
        assert_eq!(
            recent[RECENT - 1].detail,
            format!("attempt {}", 2000 - RECENT)
        );
    }

    #[test]
    fn settings_password_is_a_hash_checked_in_full() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("host.toml");
        assert!(check_settings_password(&config, None).is_ok(), "none set");
        assert!(set_settings_password(&config, Some("short")).is_err());
        set_settings_password(&config, Some("IT-only-1234")).unwrap();
        let stored = Secrets::load(&HostConfig::secrets_path(&config))
            .unwrap()
            .settings_password
            .unwrap();
        assert!(stored.starts_with("$argon2id$"), "{stored}");
        assert!(!stored.contains("IT-only-1234"));
        assert!(check_settings_password(&config, None)
            .unwrap_err()
            .contains("locked"));
        assert!(check_settings_password(&config, Some("IT-only-123"))
            .unwrap_err()
            .contains("wrong"));
        assert!(check_settings_password(&config, Some("IT-only-1234")).is_ok());
        set_settings_password(&config, None).unwrap();
        assert!(check_settings_password(&config, None).is_ok());
    }

    #[test]
    fn requests_read_as_the_app_writes_them() {
        let text =
            r#"{"change":{"settings_password":null,"change":{"setting":"policy","share":true}}}"#;
        let Request::Change { change, .. } = serde_json::from_str(text).unwrap() else {
            panic!("a change");
        };
        assert_eq!(
            change,
            Change::Policy {
                share: Some(true),
                clipboard: None,
                audio: None,
                raw: None,
                require_nla: None
            }
        );
        assert!(serde_json::from_str::<Request>(r#""status""#).is_ok());
        assert!(
            serde_json::from_str::<Request>(r#"{"change":{"change":{"setting":"x"}}}"#).is_err()
        );
    }
}
