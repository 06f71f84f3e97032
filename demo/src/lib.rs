//! The whole system in one process on loopback: relay, host (with a host
//! password and an authenticator code, as an owner would set it up), test
//! desktop.
//! Used by `thin-client demo` and by tests.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context as _;
use tokio::task::JoinHandle;

use client_core::known_hosts::MemoryPins;
use client_core::native::RelayTarget;
use client_core::rdp::RdpCredentials;

pub const DEMO_ID: &str = "demo-pc";
pub const DEMO_USER: &str = "demo";

/// A running demo; everything stops when it is dropped.
pub struct Demo {
    pub relay: RelayTarget,
    pub id: String,
    pub rdp: RdpCredentials,
    pub desktop: test_desktop::TestDesktopHandle,
    /// Where the test desktop listens (the host's RDP target).
    pub desktop_addr: SocketAddr,
    /// Host keys pinned by this demo's connections (kept in memory only).
    pub pins: MemoryPins,
    /// The demo host's password (random per run).
    pub host_password: String,
    /// Empty when the host asks for no code.
    totp_secret: Vec<u8>,
    last_otp_step: std::sync::Mutex<u64>,
    host_config: std::path::PathBuf,
    tasks: Vec<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for Demo {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// How a demo is set up; the default is what `thin-client demo` runs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The test desktop's size in pixels.
    pub desktop_size: (u16, u16),
    /// The test desktop repaints its whole screen continuously
    /// ([`test_desktop::TestDesktop::with_motion`]).
    pub motion: bool,
    /// The host asks for an authenticator code. Each code works once, so
    /// measurements that connect many times in a row turn it off.
    pub otp: bool,
    /// Text on the test desktop's clipboard at start
    /// ([`test_desktop::TestDesktop::with_clipboard`]).
    pub desktop_clipboard: Option<String>,
    /// Files on the test desktop's clipboard at start
    /// ([`test_desktop::TestDesktop::with_clipboard_paths`]).
    pub desktop_files: Vec<std::path::PathBuf>,
    /// The test desktop hangs half-way through a resize
    /// ([`test_desktop::TestDesktop::with_stalled_resize`]).
    pub stalled_resize: bool,
    /// The host serves this RDP server instead of the test desktop (a real
    /// one, for measurements); [`Demo::rdp`] then does not apply to it.
    pub rdp_server: Option<SocketAddr>,
    /// The host's policy lets sessions carry the clipboard.
    pub clipboard: bool,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            desktop_size: (test_desktop::DEFAULT_WIDTH, test_desktop::DEFAULT_HEIGHT),
            motion: false,
            otp: true,
            desktop_clipboard: None,
            desktop_files: Vec::new(),
            stalled_resize: false,
            rdp_server: None,
            clipboard: true,
        }
    }
}

impl Demo {
    /// Starts relay, test desktop and host on loopback ports chosen by the OS
    /// and waits until the host is online.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(DemoOptions::default()).await
    }

    /// [`start`](Self::start) with other options.
    pub async fn start_with(options: DemoOptions) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        relay::init(dir.path(), &["localhost".into(), "127.0.0.1".into()])?;
        let relay =
            relay::Relay::bind(relay::RelayConfig::new(dir.path().to_owned(), loopback)).await?;
        let relay_addr = relay.local_addr();
        let mut tasks = vec![tokio::spawn(async move {
            let _ = relay.run().await;
        })];

        // A fresh random password each run: the demo desktop is reachable
        // only by this process.
        let password = format!("Demo-{:016x}", rand_u64());
        let (width, height) = options.desktop_size;
        let mut desktop =
            test_desktop::TestDesktop::bind(loopback, DEMO_USER, &password, width, height).await?;
        if let Some(text) = &options.desktop_clipboard {
            desktop = desktop.with_clipboard(text);
        }
        if !options.desktop_files.is_empty() {
            desktop = desktop.with_clipboard_paths(&options.desktop_files)?;
        }
        if options.motion {
            desktop = desktop.with_motion();
        }
        if options.stalled_resize {
            desktop = desktop.with_stalled_resize();
        }
        let handle = desktop.handle();
        let desktop_addr = desktop.local_addr();
        tasks.push(tokio::spawn(async move {
            let _ = desktop.run().await;
        }));

        let ca = dir.path().join(relay::CA_FILE);
        let config = dir.path().join("host.toml");
        host::HostConfig::init(
            &config,
            host::InitOptions {
                id: DEMO_ID.into(),
                relay: relay_addr.to_string(),
                relay_ca: ca.clone(),
                target: Some(options.rdp_server.unwrap_or(desktop_addr).to_string()),
                proxy: None,
                enrolment_token: None,
            },
        )?;
        // The owner's set-up, as `thin-host set-password`, `otp totp` and
        // `policy` do it.
        if !options.clipboard {
            let change = host::admin::PolicyChange {
                clipboard: Some(false),
                ..Default::default()
            };
            host::admin::set_policy(&config, change)?;
        }
        let host_password = format!("Host-{:012x}", rand_u64() >> 16);
        host::admin::set_password(&config, &host_password)?;
        let totp_secret = if options.otp {
            host::admin::enrol_totp(&config)?;
            host::secrets::Secrets::load(&host::HostConfig::secrets_path(&config))?
                .totp
                .context("TOTP enrolment left no secret")?
                .secret
        } else {
            host::admin::otp_off(&config)?;
            Vec::new()
        };
        let host_config = config.clone();
        let (online_tx, mut online) = tokio::sync::watch::channel(false);
        tasks.push(tokio::spawn(async move {
            let options = host::RunOptions {
                online: Some(online_tx),
                ..host::RunOptions::default()
            };
            let _ = host::run_with(&config, options).await;
        }));
        tokio::time::timeout(Duration::from_secs(10), online.wait_for(|up| *up))
            .await
            .context("the demo host did not come online within 10 s")?
            .context("the demo host stopped")?;

        Ok(Self {
            relay: RelayTarget {
                addr: relay_addr.to_string(),
                ca,
                proxy: None,
            },
            id: DEMO_ID.into(),
            rdp: RdpCredentials {
                user: DEMO_USER.into(),
                password,
                domain: None,
            },
            desktop: handle,
            desktop_addr,
            pins: MemoryPins::default(),
            host_password,
            totp_secret,
            last_otp_step: std::sync::Mutex::new(0),
            host_config,
            tasks,
            _dir: dir,
        })
    }
}

impl Demo {
    /// The demo host's authenticator code, as a phone app would show it.
    /// Each code works once, so a second call within the same 30 s gives
    /// the next step's code (also accepted, one step ahead).
    pub fn next_otp(&self) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let mut last = self.last_otp_step.lock().expect("not poisoned");
        let step = (now / host::otp::STEP_SECS).max(*last + 1);
        *last = step;
        host::otp::totp_code(
            &self.totp_secret,
            step * host::otp::STEP_SECS,
            host::otp::DIGITS,
        )
    }

    /// The demo host's config (its settings app and status read it).
    pub fn host_config(&self) -> &std::path::Path {
        &self.host_config
    }

    /// The code to show a person typing it now: the current step's, or the
    /// next one if the host has already used the current step.
    pub fn current_otp(&self) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let used = host::secrets::Secrets::load(&host::HostConfig::secrets_path(&self.host_config))
            .ok()
            .and_then(|s| s.totp)
            .map_or(0, |t| t.last_step);
        let step = (now / host::otp::STEP_SECS).max(used + 1);
        host::otp::totp_code(
            &self.totp_secret,
            step * host::otp::STEP_SECS,
            host::otp::DIGITS,
        )
    }

    /// Answers the demo host's questions like its owner would.
    pub fn scripted(&self) -> client_core::Scripted {
        client_core::Scripted {
            otp: (!self.totp_secret.is_empty()).then(|| self.next_otp()),
            host_password: Some(self.host_password.clone()),
        }
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded from the OS RNG: enough for a throwaway password.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish()
}
