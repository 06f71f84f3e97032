//! `thin-host service`: the host as a system service, so the office PC is
//! reachable from boot without anyone logged in ("system mode"). On Linux a
//! systemd unit; it runs `thin-host run` with the config in a system
//! location, sandboxed to that config's folder.
//!
//! The unit folder is `/etc/systemd/system`, or `THIN_HOST_UNIT_DIR` (for
//! packagers building an image, and tests). Where systemd is not running
//! (a container, a build machine) the unit is still written and every
//! command says so instead of failing.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::HostConfig;

/// The service's name, as systemd and the CLI know it.
pub const NAME: &str = "thin-host";

/// Where a host installed for the whole machine keeps its config: the
/// default of every `--config`.
pub fn system_config() -> PathBuf {
    if cfg!(windows) {
        let data = std::env::var_os("ProgramData").unwrap_or_else(|| "C:\\ProgramData".into());
        PathBuf::from(data).join(NAME).join("host.toml")
    } else {
        PathBuf::from("/etc").join(NAME).join("host.toml")
    }
}

/// How the service runs.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// The host config the service runs (made absolute on install).
    pub config: PathBuf,
    /// Keep the PC from sleeping while the host runs (a sleeping PC cannot
    /// keep its relay connection).
    pub keep_awake: bool,
}

fn unit_dir() -> PathBuf {
    std::env::var_os("THIN_HOST_UNIT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/etc/systemd/system"))
}

/// The unit file's path.
pub fn unit_path() -> PathBuf {
    unit_dir().join(format!("{NAME}.service"))
}

/// Why systemd is not asked to load the unit, if it is not: it does not run
/// this machine (its own test, `sd_booted`), or the unit went to a folder
/// of someone's choosing.
fn without_systemd() -> Option<&'static str> {
    if std::env::var_os("THIN_HOST_UNIT_DIR").is_some() {
        Some("the unit is in THIN_HOST_UNIT_DIR, where systemd does not look")
    } else if !Path::new("/run/systemd/system").is_dir() {
        Some("systemd is not running on this machine")
    } else {
        None
    }
}

/// `path` as one word of a unit file: quoted, with C escapes, systemd's
/// specifier sign and its variable sign doubled. A path that is not UTF-8
/// or holds control characters (a line break would start a unit line of
/// its own) is refused.
fn unit_word(path: &Path) -> anyhow::Result<String> {
    let Some(text) = path.to_str() else {
        anyhow::bail!(
            "{} is not a UTF-8 path; choose another folder",
            path.display()
        );
    };
    if text.chars().any(char::is_control) {
        anyhow::bail!("{text:?} holds a control character; choose another folder");
    }
    let escaped = text
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('%', "%%")
        .replace('$', "$$");
    Ok(format!("\"{escaped}\""))
}

/// Folders the service's sandbox would open wide if the config were kept
/// straight in them: the config needs a folder of its own.
const SHARED_FOLDERS: &[&str] = &[
    "/",
    "/etc",
    "/usr",
    "/usr/local",
    "/usr/local/etc",
    "/var",
    "/var/lib",
    "/opt",
    "/srv",
    "/tmp",
    "/var/tmp",
    "/run",
    "/home",
    "/root",
    "/boot",
    "/dev",
    "/proc",
    "/sys",
];

/// Folders `ProtectHome=yes` hides from the service.
const HOME_FOLDERS: &[&str] = &["/home", "/root", "/run/user"];

/// Refuses an executable or config the service could not use, in words.
fn check_places(exe: &Path, config: &Path) -> anyhow::Result<()> {
    let folder = config.parent().unwrap_or(Path::new("/"));
    if SHARED_FOLDERS
        .iter()
        .any(|shared| folder == Path::new(shared))
    {
        anyhow::bail!(
            "the service may write to its config's folder, and {} is shared with the rest of \
             the system: keep the config in a folder of its own (the default is {})",
            folder.display(),
            system_config().display()
        );
    }
    for (what, path, fix) in [
        (
            "thin-host itself",
            exe,
            "copy it to /usr/local/bin and install from there",
        ),
        (
            "the config",
            config,
            "keep it in /etc/thin-host (the default)",
        ),
    ] {
        if HOME_FOLDERS.iter().any(|home| path.starts_with(home)) {
            anyhow::bail!(
                "{what} is in a home folder ({}), which the service cannot see: {fix}",
                path.display()
            );
        }
    }
    Ok(())
}

/// The systemd unit that runs `exe` with `options`.
pub fn unit_text(exe: &Path, options: &ServiceOptions) -> anyhow::Result<String> {
    let folder = options.config.parent().unwrap_or(Path::new("/"));
    let run = format!(
        "{} run --config {}",
        unit_word(exe)?,
        unit_word(&options.config)?
    );
    let exec = if options.keep_awake {
        format!(
            "/usr/bin/systemd-inhibit --what=sleep:idle --who=thin-host \
             --why=\"Remote access to this PC\" --mode=block {run}"
        )
    } else {
        run
    };
    Ok(format!(
        "# Written by `thin-host service install`; `thin-host service uninstall` removes it.
[Unit]
Description=thin-host: remote access to this PC through the relay
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart={exec}
Restart=always
RestartSec=5
LimitNOFILE=65536
# The host only dials out and reads and writes its own folder.
NoNewPrivileges=yes
CapabilityBoundingSet=
ProtectSystem=strict
ReadWritePaths={folder}
ProtectHome=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictRealtime=yes
LockPersonality=yes
SystemCallArchitectures=native

[Install]
WantedBy=multi-user.target
",
        folder = unit_word(folder)?,
    ))
}

/// Runs `systemctl args`, in words when it fails.
fn systemctl(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("systemctl")
        .args(args)
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run systemctl: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if out.status.success() {
        return Ok(text);
    }
    let err = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    anyhow::bail!("systemctl {} failed: {err}", args.join(" "))
}

/// Writes the unit and enables it (started at the next boot, or now with
/// `service start`). What was done, in words.
pub fn install(options: &ServiceOptions) -> anyhow::Result<String> {
    let config = std::path::absolute(&options.config)
        .map_err(|e| anyhow::anyhow!("{}: {e}", options.config.display()))?;
    HostConfig::load(&config).map_err(|e| {
        anyhow::anyhow!(
            "{e}\nthe service runs the config at {}: create it first with `thin-host init \
             --config {}`",
            config.display(),
            config.display()
        )
    })?;
    let exe = std::env::current_exe()
        .map_err(|e| anyhow::anyhow!("cannot tell where thin-host itself is: {e}"))?;
    check_places(&exe, &config)?;
    let options = ServiceOptions {
        config: config.clone(),
        keep_awake: options.keep_awake,
    };
    let unit = unit_path();
    files::write_atomic(
        &unit,
        unit_text(&exe, &options)?.as_bytes(),
        files::Mode::Public,
    )
    .map_err(|e| {
        anyhow::anyhow!(
            "cannot write {}: {e} (install the service as root)",
            unit.display()
        )
    })?;
    let mut report = format!(
        "wrote {} (runs {} with {})",
        unit.display(),
        exe.display(),
        config.display()
    );
    match without_systemd() {
        None => {
            systemctl(&["daemon-reload"])?;
            systemctl(&["enable", NAME])?;
            report.push_str(
                "\nenabled: it starts with the PC; start it now with `thin-host service start`",
            );
        }
        Some(why) => report.push_str(&format!(
            "\n{why}: enable it where systemd runs with `systemctl enable --now {NAME}`"
        )),
    }
    Ok(report)
}

/// Stops and disables the service and removes its unit; the config stays.
pub fn uninstall() -> anyhow::Result<String> {
    let unit = unit_path();
    if !unit.exists() {
        anyhow::bail!(
            "the service is not installed ({} does not exist)",
            unit.display()
        );
    }
    let systemd = without_systemd().is_none();
    if systemd {
        systemctl(&["disable", "--now", NAME])?;
    }
    std::fs::remove_file(&unit)
        .map_err(|e| anyhow::anyhow!("cannot remove {}: {e}", unit.display()))?;
    if systemd {
        systemctl(&["daemon-reload"])?;
    }
    Ok(format!(
        "removed {}; the host's config and keys are kept",
        unit.display()
    ))
}

/// Starts (`true`) or stops the installed service.
pub fn switch(on: bool) -> anyhow::Result<String> {
    let unit = unit_path();
    if !unit.exists() {
        anyhow::bail!("the service is not installed: run `thin-host service install` first");
    }
    if let Some(why) = without_systemd() {
        anyhow::bail!("{why}: the service cannot be started or stopped here");
    }
    let verb = if on { "start" } else { "stop" };
    systemctl(&[verb, NAME])?;
    Ok(format!("{NAME} {}", if on { "started" } else { "stopped" }))
}

/// The service's state and what it serves, for a person.
pub fn status() -> String {
    let unit = unit_path();
    let Ok(text) = std::fs::read_to_string(&unit) else {
        return format!("service: not installed ({} does not exist)", unit.display());
    };
    let state = match without_systemd() {
        None => {
            let active = systemctl(&["is-active", NAME]).unwrap_or_else(|e| short(&e));
            let enabled = systemctl(&["is-enabled", NAME]).unwrap_or_else(|e| short(&e));
            format!("{active}, {enabled}")
        }
        Some(why) => format!("state unknown: {why}"),
    };
    let mut lines = vec![format!("service: installed ({}), {state}", unit.display())];
    if text.contains("systemd-inhibit") {
        lines.push("keeps the PC awake: yes".to_owned());
    }
    match config_of(&text) {
        Some(config) => {
            lines.push(format!("config: {}", config.display()));
            match HostConfig::load(&config) {
                Ok(host) => {
                    lines.push(format!("computer ID: {}", host.id));
                    lines.push(format!("relay: {}", host.relay));
                }
                Err(e) => lines.push(format!("the config cannot be read: {e}")),
            }
        }
        None => lines.push("config: not found in the unit".to_owned()),
    }
    lines.join("\n")
}

/// `systemctl`'s answer when it fails with one (is-active says "inactive"
/// with a failing exit code).
fn short(e: &anyhow::Error) -> String {
    e.to_string()
        .rsplit(": ")
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or("unknown")
        .to_owned()
}

/// The config a unit written by [`unit_text`] runs.
fn config_of(unit: &str) -> Option<PathBuf> {
    let exec = unit.lines().find_map(|l| l.strip_prefix("ExecStart="))?;
    let quoted = exec.split(" --config \"").nth(1)?;
    let mut path = String::new();
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(PathBuf::from(path.replace("%%", "%").replace("$$", "$"))),
            '\\' => path.push(chars.next()?),
            c => path.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unit_runs_the_config_it_names_and_keeps_the_pc_awake_when_asked() {
        let options = ServiceOptions {
            config: PathBuf::from("/etc/thin-host/100% \"office\" $HOME.toml"),
            keep_awake: true,
        };
        let unit = unit_text(Path::new("/opt/thin host/thin-host"), &options).unwrap();
        assert!(
            unit.contains("ExecStart=/usr/bin/systemd-inhibit "),
            "{unit}"
        );
        assert!(
            unit.contains("\"/opt/thin host/thin-host\" run --config"),
            "{unit}"
        );
        assert!(unit.contains("ReadWritePaths=\"/etc/thin-host\""), "{unit}");
        assert_eq!(config_of(&unit), Some(options.config.clone()));
        assert!(unit.contains("$$HOME"), "{unit}");
        let plain = ServiceOptions {
            keep_awake: false,
            ..options.clone()
        };
        let plain = unit_text(Path::new("/usr/bin/thin-host"), &plain).unwrap();
        assert!(!plain.contains("systemd-inhibit"), "{plain}");
        let broken = ServiceOptions {
            config: PathBuf::from("/etc/thin-host/a\nExecStartPre=/bin/evil.toml"),
            ..options
        };
        assert!(unit_text(Path::new("/usr/bin/thin-host"), &broken).is_err());
    }

    #[test]
    fn places_the_service_could_not_use_are_refused() {
        let exe = Path::new("/usr/local/bin/thin-host");
        assert!(check_places(exe, Path::new("/etc/thin-host/host.toml")).is_ok());
        for config in ["/etc/host.toml", "/host.toml", "/var/lib/host.toml"] {
            assert!(check_places(exe, Path::new(config)).is_err(), "{config}");
        }
        let home = Path::new("/root/.cargo/bin/thin-host");
        assert!(check_places(home, Path::new("/etc/thin-host/host.toml")).is_err());
        let config = Path::new("/home/taro/thin/host.toml");
        assert!(check_places(exe, config).is_err());
    }
}
