//! The host's config file (TOML, mode 0600 since a proxy URL may hold a
//! password) and its keys: the Ed25519 identity toward the relay (PKCS#8)
//! and the X25519 end-to-end key, both mode 0600.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use proto::channel::StaticKey;
use proto::ComputerId;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use serde::{Deserialize, Serialize};

use crate::access::AclRule;
use crate::mail::EmailSettings;

pub const DEFAULT_TARGET: &str = "127.0.0.1:3389";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// The computer ID people type to reach this PC.
    pub id: ComputerId,
    /// Relay address, host:port.
    pub relay: String,
    /// The relay CA this host trusts (pinned; nothing else is trusted).
    pub relay_ca: PathBuf,
    /// The RDP server sessions are forwarded to.
    #[serde(default = "default_target")]
    pub target: String,
    /// Optional HTTP CONNECT proxy: http://[user:password@]host:port
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    /// The host's Ed25519 identity key toward the relay (relative paths are
    /// beside the config).
    pub key_file: PathBuf,
    /// The host's X25519 key for the end-to-end channel; clients pin it.
    pub e2e_key_file: PathBuf,
    /// Seconds between heartbeats to the relay.
    #[serde(default = "default_heartbeat")]
    pub heartbeat_secs: u64,
    /// Seconds without a word from a running session's client (whose app
    /// sends a keep-alive every 5 s) before the host lets it go: a client
    /// whose path died without a reset. At least 30; a browser tab in the
    /// background may beat only once a minute.
    #[serde(default = "default_client_silence")]
    pub client_silence_secs: u64,
    /// Whether clients may share a local drive with this PC (the host takes
    /// the drive channel out of any session otherwise).
    #[serde(default)]
    pub share: bool,
    /// Whether the clipboard may cross between the two computers.
    #[serde(default = "on")]
    pub clipboard: bool,
    /// Whether the remote PC's sound may play at the client.
    #[serde(default = "on")]
    pub audio: bool,
    /// Whether raw mode (any RDP client through `thin-client --listen`) is
    /// allowed: the host cannot see inside it to enforce the switches above.
    #[serde(default)]
    pub raw: bool,
    /// Whether the RDP server must check the logon before the session
    /// starts (NLA, CredSSP). Off: TLS-only servers (xrdp, Windows set to
    /// "SSL") are served too; the leg to them stays inside this PC.
    #[serde(default)]
    pub require_nla: bool,
    /// RFC 5424 syslog receiver for audit events (host:port, UDP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syslog: Option<String>,
    /// MAC addresses allowed to connect (`aa:bb:cc:dd:ee:ff`); empty allows any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mac_allow: Vec<String>,
    /// The one-time password asked before the host password.
    #[serde(default)]
    pub otp: OtpSetting,
    /// Ordered access list by client source address; no match allows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acl: Vec<AclRule>,
    /// The relay operator's enrolment token (`thin-relay token new`), for
    /// relays that bind new computer IDs only with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrolment_token: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum OtpSetting {
    #[default]
    Off,
    /// An authenticator app (the secret is in the secrets file).
    Totp,
    /// A code mailed per attempt.
    Email(EmailSettings),
}

fn default_target() -> String {
    DEFAULT_TARGET.into()
}

fn default_heartbeat() -> u64 {
    15
}

fn default_client_silence() -> u64 {
    proto::liveness::BEAT.as_secs() * u64::from(proto::liveness::HOST_GIVES_UP_AFTER)
}

fn on() -> bool {
    true
}

pub struct InitOptions {
    pub id: String,
    pub relay: String,
    pub relay_ca: PathBuf,
    pub target: Option<String>,
    pub proxy: Option<String>,
    pub enrolment_token: Option<String>,
}

impl HostConfig {
    /// Writes a new config and identity key; refuses to overwrite either.
    pub fn init(path: &Path, opts: InitOptions) -> anyhow::Result<Self> {
        if path.exists() {
            bail!(
                "{} already exists; remove it on purpose to start over",
                path.display()
            );
        }
        let id = ComputerId::parse(&opts.id).context("invalid --id")?;
        for addr in opts.relay.split(',') {
            if !transport::dial::is_relay_addr(addr.trim()) {
                bail!("{addr:?} is not a relay address like relay.example.jp:443");
            }
        }
        if let Some(proxy) = &opts.proxy {
            transport::dial::Proxy::parse(proxy)?;
        }
        transport::tls::load_certs(&opts.relay_ca)?;
        let relay_ca = std::fs::canonicalize(&opts.relay_ca)?;
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("host");
        let config = Self {
            id,
            relay: opts.relay,
            relay_ca,
            target: opts.target.unwrap_or_else(default_target),
            proxy: opts.proxy,
            key_file: PathBuf::from(format!("{stem}.key")),
            e2e_key_file: PathBuf::from(format!("{stem}.e2e.key")),
            heartbeat_secs: default_heartbeat(),
            client_silence_secs: default_client_silence(),
            share: false,
            clipboard: true,
            audio: true,
            raw: false,
            require_nla: false,
            syslog: None,
            mac_allow: Vec::new(),
            otp: OtpSetting::Off,
            acl: Vec::new(),
            enrolment_token: opts.enrolment_token,
        };
        let key_path = config.beside(path, &config.key_file);
        let e2e_path = config.beside(path, &config.e2e_key_file);
        for existing in [&key_path, &e2e_path] {
            if existing.exists() {
                bail!(
                    "{} already exists; remove it on purpose to start over",
                    existing.display()
                );
            }
        }
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| anyhow::anyhow!("cannot generate the host key"))?;
        files::write_atomic(&key_path, pkcs8.as_ref(), files::Mode::Secret)
            .with_context(|| format!("cannot write {}", key_path.display()))?;
        let e2e = StaticKey::generate()?;
        files::write_atomic(&e2e_path, &e2e.to_bytes(), files::Mode::Secret)
            .with_context(|| format!("cannot write {}", e2e_path.display()))?;
        config.save(path)?;
        Ok(config)
    }

    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read host config {}", path.display()))?;
        toml::from_str(&text)
            .with_context(|| format!("{} is not a valid host config", path.display()))
    }

    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let text = toml::to_string_pretty(self).expect("config serialises");
        // The proxy URL may carry a password: keep the file private.
        files::write_atomic(path, text.as_bytes(), files::Mode::Secret)
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// [`client_silence_secs`](Self::client_silence_secs) in keep-alive
    /// beats, at least 30 s.
    pub fn client_silence_beats(&self) -> u32 {
        let beat = proto::liveness::BEAT.as_secs();
        let secs = self.client_silence_secs.max(30);
        u32::try_from(secs.div_ceil(beat)).unwrap_or(u32::MAX)
    }

    /// `file` resolved against the config's folder when relative.
    pub fn beside(&self, config_path: &Path, file: &Path) -> PathBuf {
        match config_path.parent() {
            Some(dir) if file.is_relative() => dir.join(file),
            _ => file.to_owned(),
        }
    }

    /// The secrets file (OPAQUE record, TOTP secret, emergency codes).
    pub fn secrets_path(config_path: &Path) -> PathBuf {
        config_path.with_extension("secrets.json")
    }

    /// The audit log of access attempts.
    pub fn audit_path(config_path: &Path) -> PathBuf {
        config_path.with_extension("audit.log")
    }

    /// What each RDP server showed: the security it chose, and the pinned
    /// key of a TLS-only one (see [`crate::server_keys`]).
    pub fn rdp_keys_path(config_path: &Path) -> PathBuf {
        config_path.with_extension("rdp-keys.json")
    }

    /// What the lockout keeps across restarts (budgets, known devices and
    /// places).
    pub fn lockout_path(config_path: &Path) -> PathBuf {
        config_path.with_extension("lockout.json")
    }

    pub fn load_key(&self, config_path: &Path) -> anyhow::Result<Ed25519KeyPair> {
        let path = self.beside(config_path, &self.key_file);
        let bytes = std::fs::read(&path)
            .with_context(|| format!("cannot read host key {}", path.display()))?;
        Ed25519KeyPair::from_pkcs8(&bytes)
            .map_err(|_| anyhow::anyhow!("{} is not a valid host key", path.display()))
    }

    pub fn load_e2e_key(&self, config_path: &Path) -> anyhow::Result<StaticKey> {
        let path = self.beside(config_path, &self.e2e_key_file);
        let bytes = std::fs::read(&path)
            .with_context(|| format!("cannot read host key {}", path.display()))?;
        StaticKey::from_bytes(&bytes)
            .map_err(|_| anyhow::anyhow!("{} is not a valid host key", path.display()))
    }
}

/// The public half of the identity key, for logs and the relay.
pub fn public_key(key: &Ed25519KeyPair) -> Vec<u8> {
    key.public_key().as_ref().to_vec()
}
