//! The owner's commands: host password, one-time passwords, access lists,
//! MAC allowlist and sharing policy. Each loads the config or secrets, checks
//! the input, and saves atomically; bad input changes nothing.

use std::path::Path;

use anyhow::{bail, Context as _};
use proto::auth::{opaque, password_is_strong, PASSWORD_RULE};
use zeroize::Zeroizing;

use crate::access::{self, AclRule, Action};
use crate::config::{HostConfig, OtpSetting};
use crate::mail::EmailSettings;
use crate::otp;
use crate::secrets::Secrets;

/// The least zxcvbn score a host password needs: "safely unguessable",
/// about 10^8 guesses or more.
const MIN_STRENGTH: zxcvbn::Score = zxcvbn::Score::Three;

/// Checks a proposed host password: Shin-Telework's complexity rule, then a
/// strength estimate (zxcvbn) that refuses common words, names, dates,
/// keyboard walks and repeats however many character kinds they use. The
/// computer ID and the product's own words count as guessable too. The
/// error says why, in words the owner can act on.
pub fn check_new_password(password: &str, computer_id: &str) -> Result<(), String> {
    if !password_is_strong(password) {
        return Err(format!("that password is too weak: {PASSWORD_RULE}"));
    }
    let known = [computer_id, "thin", "thin-host", "host", "office", "remote"];
    let estimate = zxcvbn::zxcvbn(password, &known);
    if estimate.score() >= MIN_STRENGTH {
        return Ok(());
    }
    let why = estimate
        .feedback()
        .and_then(|f| f.warning())
        .map(|w| w.to_string())
        .unwrap_or_else(|| "it follows a pattern that is guessed early".to_owned());
    let how = estimate
        .feedback()
        .map(|f| {
            f.suggestions()
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "Use a few unrelated words, or a longer mix.".to_owned());
    Err(format!(
        "that password is too easy to guess: {why} (an attacker would find it within about \
         10^{:.0} guesses). {how}",
        estimate.guesses_log10()
    ))
}

/// Sets the host password: only its OPAQUE record is stored.
pub fn set_password(config_path: &Path, password: &str) -> anyhow::Result<()> {
    let config = HostConfig::load(config_path)?;
    check_new_password(password, config.id.as_str()).map_err(anyhow::Error::msg)?;
    Secrets::update(&HostConfig::secrets_path(config_path), |secrets| {
        let setup = secrets
            .opaque_setup
            .get_or_insert_with(opaque::new_server_setup)
            .clone();
        let file = opaque::register(&setup, password.as_bytes())
            .map_err(|e| anyhow::anyhow!("cannot register the password: {e}"))?;
        secrets.password_file = Some(file);
        Ok(())
    })
}

/// What enrolment shows the owner once.
pub struct Enrolment {
    /// The `otpauth://` URI and its base32 secret (TOTP only).
    pub totp: Option<(String, String)>,
    pub emergency_codes: Vec<Zeroizing<String>>,
}

/// Turns on TOTP with a new secret and new emergency codes.
pub fn enrol_totp(config_path: &Path) -> anyhow::Result<Enrolment> {
    let mut config = HostConfig::load(config_path)?;
    let state = otp::new_totp_secret();
    let uri = otp::totp_uri(&state.secret, config.id.as_str());
    let base32 = otp::totp_secret_base32(&state.secret);
    let (codes, hashes) = otp::new_emergency_codes();
    Secrets::update(&HostConfig::secrets_path(config_path), |secrets| {
        secrets.totp = Some(state);
        secrets.emergency = hashes;
        Ok(())
    })?;
    config.otp = OtpSetting::Totp;
    config.save(config_path)?;
    Ok(Enrolment {
        totp: Some((uri, base32)),
        emergency_codes: codes,
    })
}

/// Turns on TOTP with `secret` once `code` shows that the owner's app has
/// it (so a mistyped or unscanned key never locks the owner out), with new
/// emergency codes. The confirming code counts as used.
pub fn enrol_totp_confirmed(
    config_path: &Path,
    secret: &[u8],
    code: &str,
    now: std::time::SystemTime,
) -> anyhow::Result<Vec<Zeroizing<String>>> {
    if secret.len() < 16 {
        bail!("the new key is too short; start the enrolment again");
    }
    let candidate = crate::secrets::TotpSecret {
        secret: secret.to_vec(),
        last_step: 0,
    };
    let otp::TotpCheck::Accepted { step } = otp::check_totp(&candidate, code, now) else {
        bail!(
            "that code does not belong to the new key: check that the authenticator app shows \
             this PC and that the phone's clock is right, then enter the code it shows now"
        );
    };
    let mut config = HostConfig::load(config_path)?;
    let (codes, hashes) = otp::new_emergency_codes();
    Secrets::update(&HostConfig::secrets_path(config_path), |secrets| {
        secrets.totp = Some(crate::secrets::TotpSecret {
            secret: secret.to_vec(),
            last_step: step,
        });
        secrets.emergency = hashes;
        Ok(())
    })?;
    config.otp = OtpSetting::Totp;
    config.save(config_path)?;
    Ok(codes)
}

/// Turns on mailed codes (and makes new emergency codes).
pub fn enrol_email(config_path: &Path, settings: EmailSettings) -> anyhow::Result<Enrolment> {
    settings.validate().map_err(anyhow::Error::msg)?;
    let mut config = HostConfig::load(config_path)?;
    if let Some(file) = &settings.smtp_password_file {
        let file = config.beside(config_path, file);
        std::fs::metadata(&file)
            .with_context(|| format!("cannot read the SMTP password file {}", file.display()))?;
    }
    let (codes, hashes) = otp::new_emergency_codes();
    Secrets::update(&HostConfig::secrets_path(config_path), |secrets| {
        secrets.totp = None;
        secrets.emergency = hashes;
        Ok(())
    })?;
    config.otp = OtpSetting::Email(settings);
    config.save(config_path)?;
    Ok(Enrolment {
        totp: None,
        emergency_codes: codes,
    })
}

/// Turns one-time passwords off and forgets the TOTP secret and codes.
pub fn otp_off(config_path: &Path) -> anyhow::Result<()> {
    let mut config = HostConfig::load(config_path)?;
    Secrets::update(&HostConfig::secrets_path(config_path), |secrets| {
        secrets.totp = None;
        secrets.emergency.clear();
        Ok(())
    })?;
    config.otp = OtpSetting::Off;
    config.save(config_path)
}

fn allowed(on: bool) -> &'static str {
    if on {
        "allowed"
    } else {
        "not allowed"
    }
}

/// A few lines describing the security settings, with no secret in them.
pub fn status(config_path: &Path) -> anyhow::Result<String> {
    let config = HostConfig::load(config_path)?;
    let secrets = Secrets::load(&HostConfig::secrets_path(config_path))?;
    let otp = match &config.otp {
        OtpSetting::Off => "off".to_owned(),
        OtpSetting::Totp if secrets.totp.is_some() => "authenticator app (TOTP)".to_owned(),
        OtpSetting::Totp => {
            "authenticator app (TOTP) — NOT ENROLLED, run `thin-host otp totp`".to_owned()
        }
        OtpSetting::Email(s) => format!(
            "mailed code to {} via {} ({:?})",
            proto::auth::mask_email(&s.to),
            s.smtp,
            s.smtp_tls
        ),
    };
    let password = if secrets.password_file.is_some() {
        "set"
    } else {
        "NOT SET — sessions are refused until `thin-host set-password` is run"
    };
    Ok(format!(
        "host password: {password}\none-time password: {otp}\nemergency codes left: {}\n\
         access list rules: {}\nMAC allowlist entries: {}\ndrive sharing: {}\nclipboard: {}\n\
         sound: {}\nraw mode: {}\nnetwork-level logon at the RDP server: {}\naudit log: {}{}",
        secrets.emergency.len(),
        config.acl.len(),
        config.mac_allow.len(),
        allowed(config.share),
        allowed(config.clipboard),
        allowed(config.audio),
        allowed(config.raw),
        if config.require_nla {
            "required"
        } else {
            "not required (TLS-only servers allowed)"
        },
        HostConfig::audit_path(config_path).display(),
        config
            .syslog
            .as_deref()
            .map(|s| format!(" and syslog {s}"))
            .unwrap_or_default(),
    ))
}

pub fn acl_add(
    config_path: &Path,
    action: Action,
    cidr: &str,
    priority: u32,
) -> anyhow::Result<()> {
    let cidr = access::parse_cidr(cidr).map_err(anyhow::Error::msg)?;
    let mut config = HostConfig::load(config_path)?;
    if config.acl.iter().any(|r| r.priority == priority) {
        bail!("a rule with priority {priority} exists; remove it first or choose another number");
    }
    config.acl.push(AclRule {
        priority,
        action,
        cidr,
    });
    config.acl.sort_by_key(|r| r.priority);
    config.save(config_path)
}

pub fn acl_remove(config_path: &Path, priority: u32) -> anyhow::Result<()> {
    let mut config = HostConfig::load(config_path)?;
    let before = config.acl.len();
    config.acl.retain(|r| r.priority != priority);
    if config.acl.len() == before {
        bail!("no rule with priority {priority} (see `thin-host acl list`)");
    }
    config.save(config_path)
}

pub fn acl_list(config_path: &Path) -> anyhow::Result<String> {
    let mut rules = HostConfig::load(config_path)?.acl;
    rules.sort_by_key(|r| r.priority);
    let mut out: Vec<String> = rules
        .iter()
        .map(|r| {
            format!(
                "{:>6}  {:<5}  {}",
                r.priority,
                format!("{:?}", r.action).to_lowercase(),
                r.cidr
            )
        })
        .collect();
    out.push("     -  allow  (anything else)".to_owned());
    Ok(out.join("\n"))
}

pub fn mac_allow(config_path: &Path, mac: &str) -> anyhow::Result<()> {
    let mac = access::parse_mac(mac).map_err(anyhow::Error::msg)?;
    let mut config = HostConfig::load(config_path)?;
    if !config.mac_allow.contains(&mac) {
        config.mac_allow.push(mac);
    }
    config.save(config_path)
}

pub fn mac_remove(config_path: &Path, mac: &str) -> anyhow::Result<()> {
    let mac = access::parse_mac(mac).map_err(anyhow::Error::msg)?;
    let mut config = HostConfig::load(config_path)?;
    let before = config.mac_allow.len();
    config.mac_allow.retain(|m| *m != mac);
    if config.mac_allow.len() == before {
        bail!("{mac} is not on the allowlist");
    }
    config.save(config_path)
}

pub fn mac_list(config_path: &Path) -> anyhow::Result<String> {
    let config = HostConfig::load(config_path)?;
    if config.mac_allow.is_empty() {
        return Ok("(empty: devices with any MAC address may connect)".to_owned());
    }
    Ok(config.mac_allow.join("\n"))
}

/// Sends audit events also to an RFC 5424 syslog receiver (`None`: only the file).
pub fn set_syslog(config_path: &Path, target: Option<&str>) -> anyhow::Result<()> {
    if let Some(target) = target {
        use std::net::ToSocketAddrs as _;
        target
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .with_context(|| format!("{target:?} is not a syslog address like 192.0.2.5:514"))?;
    }
    let mut config = HostConfig::load(config_path)?;
    config.syslog = target.map(str::to_owned);
    config.save(config_path)
}

/// The owner's switches for what sessions may carry; `None` leaves one as
/// it is.
#[derive(Debug, Default, Clone, Copy)]
pub struct PolicyChange {
    pub share: Option<bool>,
    pub clipboard: Option<bool>,
    pub audio: Option<bool>,
    pub raw: Option<bool>,
    pub require_nla: Option<bool>,
}

pub fn set_policy(config_path: &Path, change: PolicyChange) -> anyhow::Result<()> {
    let mut config = HostConfig::load(config_path)?;
    let switches = [
        (change.share, &mut config.share),
        (change.clipboard, &mut config.clipboard),
        (change.audio, &mut config.audio),
        (change.raw, &mut config.raw),
        (change.require_nla, &mut config.require_nla),
    ];
    for (new, setting) in switches {
        if let Some(new) = new {
            *setting = new;
        }
    }
    config.save(config_path)
}

pub fn set_share(config_path: &Path, share: bool) -> anyhow::Result<()> {
    let change = PolicyChange {
        share: Some(share),
        ..PolicyChange::default()
    };
    set_policy(config_path, change)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        let cert = rcgen::generate_simple_self_signed(vec!["x".into()]).unwrap();
        std::fs::write(&ca, cert.cert.pem()).unwrap();
        let config = dir.path().join("host.toml");
        HostConfig::init(
            &config,
            crate::InitOptions {
                id: "pc".into(),
                relay: "127.0.0.1:1".into(),
                relay_ca: ca,
                target: None,
                proxy: None,
                enrolment_token: None,
            },
        )
        .unwrap();
        (dir, config)
    }

    #[test]
    fn weak_passwords_are_refused_with_the_rule_and_nothing_is_stored() {
        let (_dir, config) = host();
        let err = set_password(&config, "password").unwrap_err().to_string();
        assert!(err.contains("at least 8 characters using 3 of"), "{err}");
        assert!(!HostConfig::secrets_path(&config).exists());
        set_password(&config, "Str0ng-enough").unwrap();
        let stored = std::fs::read(HostConfig::secrets_path(&config)).unwrap();
        assert!(!stored.windows(13).any(|w| w == b"Str0ng-enough"));
    }

    #[test]
    fn common_and_patterned_passwords_are_refused_with_why() {
        for weak in [
            "Passw0rd",
            "Password1",
            "Summer2024!",
            "P@ssw0rd123",
            "Qwerty123!",
            "Office-pc-1!",
            &"a".repeat(24),
            &"Ab1!".repeat(6),
        ] {
            let err = check_new_password(weak, "office-pc-1").unwrap_err();
            assert!(err.contains("too easy to guess"), "{weak}: {err}");
            assert!(err.contains("guesses"), "{weak}: {err}");
        }
        // The complexity rule comes first and is named as such.
        let err = check_new_password("password", "pc").unwrap_err();
        assert!(err.contains("at least 8 characters using 3 of"), "{err}");
        for strong in ["Str0ng-enough", "Office-Pass-42", "Tofu-Kettle-Orbit-93"] {
            check_new_password(strong, "office-pc-1").unwrap_or_else(|e| panic!("{strong}: {e}"));
        }
    }

    #[test]
    fn acl_and_mac_edits_check_input_and_keep_the_config() {
        let (_dir, config) = host();
        let before = std::fs::read(&config).unwrap();
        assert!(acl_add(&config, Action::Deny, "not-a-net", 10).is_err());
        assert!(mac_allow(&config, "zz").is_err());
        assert!(acl_remove(&config, 99).is_err());
        assert_eq!(std::fs::read(&config).unwrap(), before);
        acl_add(&config, Action::Deny, "0.0.0.0/0", 20).unwrap();
        acl_add(&config, Action::Allow, "192.0.2.0/24", 10).unwrap();
        assert!(acl_add(&config, Action::Allow, "198.51.100.0/24", 10).is_err());
        let list = acl_list(&config).unwrap();
        assert!(
            list.find("192.0.2.0/24").unwrap() < list.find("0.0.0.0/0").unwrap(),
            "{list}"
        );
        acl_remove(&config, 20).unwrap();
        mac_allow(&config, "00-1A-2B-3C-4D-5E").unwrap();
        assert_eq!(mac_list(&config).unwrap(), "00:1a:2b:3c:4d:5e");
        set_share(&config, true).unwrap();
        let status = status(&config).unwrap();
        assert!(status.contains("drive sharing: allowed"), "{status}");
        assert!(status.contains("host password: NOT SET"), "{status}");
    }
}
