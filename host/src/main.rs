use std::path::PathBuf;
use std::process::ExitCode;

use std::io::IsTerminal as _;

use clap::{Parser, Subcommand};
use host::access::Action;
use host::admin;
use host::mail::{EmailSettings, SmtpTls};
use host::system_service::{self, system_config, ServiceOptions};
use host::{HostConfig, InitOptions};
use zeroize::Zeroizing;

/// thin-host: the agent on the office PC. It dials out to the relay; no inbound port is opened.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the host's config file and identity key.
    Init {
        #[arg(long, default_value_os_t = system_config())]
        config: PathBuf,
        /// Computer ID: 1-32 characters of a-z, 0-9 and '-'.
        #[arg(long)]
        id: String,
        /// Relay address, host:port.
        #[arg(long)]
        relay: String,
        /// The relay CA (ca.pem from `thin-relay init`).
        #[arg(long)]
        relay_ca: PathBuf,
        /// The RDP server to forward sessions to (default 127.0.0.1:3389).
        #[arg(long)]
        target: Option<String>,
        /// HTTP proxy: http://[user:password@]host:port
        #[arg(long)]
        proxy: Option<String>,
        /// The enrolment token from the relay's operator, if the relay binds
        /// new computer IDs only with one.
        #[arg(long)]
        enrol_token: Option<String>,
    },
    /// Show this host's key fingerprint, which clients pin on first connection.
    Fingerprint {
        #[arg(long, default_value_os_t = system_config())]
        config: PathBuf,
    },
    /// Forget the pinned key of a TLS-only RDP server (after its certificate
    /// was renewed on purpose): the next session pins the key it shows.
    ForgetRdpKey {
        #[arg(long, default_value_os_t = system_config())]
        config: PathBuf,
        /// The RDP server, host:port as in the config (default: every one).
        #[arg(long)]
        target: Option<String>,
    },
    /// Stay connected to the relay and serve sessions.
    Run {
        #[arg(long, default_value_os_t = system_config())]
        config: PathBuf,
    },
    /// Set the host password (read from standard input; asked twice on a terminal).
    SetPassword {
        #[arg(long, default_value_os_t = system_config())]
        config: PathBuf,
    },
    /// One-time passwords asked before the host password.
    #[command(subcommand)]
    Otp(OtpCommand),
    /// The access list: which client addresses may connect.
    #[command(subcommand)]
    Acl(AclCommand),
    /// The MAC allowlist: which client devices may connect.
    #[command(subcommand)]
    Mac(MacCommand),
    /// Policies: what sessions may carry, and where audit events also go.
    /// The host enforces them whatever the client does.
    Policy {
        #[arg(long, default_value_os_t = system_config())]
        config: PathBuf,
        /// Whether clients may share a local drive (and printers) with this PC.
        #[arg(long, value_parser = ["on", "off"])]
        share: Option<String>,
        /// Whether the clipboard may cross between the two computers.
        #[arg(long, value_parser = ["on", "off"])]
        clipboard: Option<String>,
        /// Whether this PC's sound plays at the client.
        #[arg(long, value_parser = ["on", "off"])]
        audio: Option<String>,
        /// Whether any RDP client may connect through `thin-client --listen`
        /// (raw mode: the host cannot enforce the switches above inside it).
        #[arg(long, value_parser = ["on", "off"])]
        raw: Option<String>,
        /// Whether the RDP server must check the logon itself before the
        /// session starts (NLA); off also serves TLS-only servers such as xrdp.
        #[arg(long, value_parser = ["on", "off"])]
        require_nla: Option<String>,
        /// Also send audit events to this RFC 5424 syslog receiver (host:port, UDP), or "off".
        #[arg(long)]
        syslog: Option<String>,
    },
    /// Run the host as a system service, from boot and without anyone logged in.
    #[command(subcommand)]
    Service(ServiceCommand),
    /// Whether the host runs and is online at the relay, with its recent
    /// connections (asks the running host; else reads the files).
    Status {
        #[arg(long, default_value_os_t = system_config())]
        config: PathBuf,
    },
    /// Set the password the settings app asks before it changes anything
    /// (read like the host password), or remove it with --off.
    SettingsPassword {
        #[arg(long, default_value_os_t = system_config())]
        config: PathBuf,
        #[arg(long)]
        off: bool,
    },
}

#[derive(Subcommand)]
enum ServiceCommand {
    /// Register the service (a systemd unit) for the config given, and enable it.
    Install {
        #[arg(long, default_value_os_t = system_config())]
        config: PathBuf,
        /// Keep the PC from sleeping while the service runs (a sleeping PC cannot be reached).
        #[arg(long)]
        keep_awake: bool,
    },
    /// Stop the service and remove it; the config and keys stay.
    Uninstall,
    /// Start the installed service now.
    Start,
    /// Stop the service (it starts again at the next boot).
    Stop,
    /// Whether the service is installed and running, and what it serves.
    Status,
}

#[derive(Subcommand)]
enum OtpCommand {
    /// Use an authenticator app: prints the enrolment URI, a QR code and emergency codes.
    Totp {
        #[arg(long, default_value_os_t = system_config())]
        config: PathBuf,
    },
    /// Mail a code to ADDR for every attempt (also prints emergency codes).
    Email {
        #[arg(long, default_value_os_t = system_config())]
        config: PathBuf,
        /// Where codes are sent.
        #[arg(long)]
        to: String,
        /// Mail server, host:port.
        #[arg(long)]
        smtp: String,
        #[arg(long)]
        smtp_user: Option<String>,
        /// File holding the SMTP password.
        #[arg(long)]
        smtp_password_file: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "starttls")]
        smtp_tls: SmtpTls,
        /// Sender address.
        #[arg(long)]
        from: Option<String>,
    },
    /// Turn one-time passwords off.
    Off {
        #[arg(long, default_value_os_t = system_config())]
        config: PathBuf,
    },
    /// Show the security settings (nothing secret).
    Status {
        #[arg(long, default_value_os_t = system_config())]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum AclCommand {
    /// Add a rule; the lowest priority number is checked first, the first match wins.
    Add {
        #[arg(long, default_value_os_t = system_config())]
        config: PathBuf,
        /// Allow this range.
        #[arg(long, conflicts_with = "deny", required_unless_present = "deny")]
        allow: Option<String>,
        /// Deny this range.
        #[arg(long)]
        deny: Option<String>,
        #[arg(long)]
        priority: u32,
    },
    /// Show the rules in the order they are checked.
    List {
        #[arg(long, default_value_os_t = system_config())]
        config: PathBuf,
    },
    /// Remove the rule with this priority.
    Remove {
        #[arg(long, default_value_os_t = system_config())]
        config: PathBuf,
        #[arg(long)]
        priority: u32,
    },
}

#[derive(Subcommand)]
enum MacCommand {
    /// Allow a device by its MAC address (once any is listed, only listed devices may connect).
    Allow {
        #[arg(long, default_value_os_t = system_config())]
        config: PathBuf,
        mac: String,
    },
    Remove {
        #[arg(long, default_value_os_t = system_config())]
        config: PathBuf,
        mac: String,
    },
    List {
        #[arg(long, default_value_os_t = system_config())]
        config: PathBuf,
    },
}

/// Reads the new password: twice without echo on a terminal, else one line.
fn read_new_password() -> anyhow::Result<Zeroizing<String>> {
    read_new("New host password: ")
}

fn read_new(prompt: &str) -> anyhow::Result<Zeroizing<String>> {
    if std::io::stdin().is_terminal() {
        let first = Zeroizing::new(rpassword::prompt_password(prompt)?);
        let again = Zeroizing::new(rpassword::prompt_password("Again: ")?);
        if first != again {
            anyhow::bail!("the two passwords differ; nothing was changed");
        }
        return Ok(first);
    }
    let mut line = Zeroizing::new(String::new());
    std::io::stdin().read_line(&mut line)?;
    Ok(Zeroizing::new(
        line.trim_end_matches(['\r', '\n']).to_owned(),
    ))
}

fn print_status(status: &host::local::Status) {
    let state = match (status.running, status.online) {
        (_, true) => format!(
            "online at {}{}",
            status.node.as_deref().unwrap_or(&status.relay),
            status
                .since
                .as_deref()
                .map(|t| format!(" since {t}"))
                .unwrap_or_default()
        ),
        (true, false) => format!(
            "running, NOT online: {}",
            status
                .problem
                .as_deref()
                .unwrap_or("connecting to the relay")
        ),
        (false, false) => "NOT running (start it: thin-host service start)".to_owned(),
    };
    println!("computer ID: {}", status.computer_id);
    println!("relay: {}", status.relay);
    println!("state: {state}");
    println!("host key fingerprint: {}", status.fingerprint);
    println!("sessions now: {}", status.sessions_now);
    println!("recent events (newest first):");
    for e in &status.recent {
        println!(
            "  {}  {:<15}  {:<11}  {:<7}  {}",
            e.time, e.source, e.step, e.result, e.detail
        );
    }
}

fn print_enrolment(enrolment: &admin::Enrolment) {
    if let Some((uri, base32)) = &enrolment.totp {
        println!("Scan this with your authenticator app (or type the secret {base32}):\n");
        println!("{}", host::otp::qr_text(uri));
        println!("{uri}\n");
    }
    println!("Emergency codes — each works once instead of a one-time password.");
    println!("Keep them somewhere safe; they are not shown again:");
    for code in &enrolment.emergency_codes {
        println!("  {}", code.as_str());
    }
}

fn admin(command: Command) -> anyhow::Result<()> {
    match command {
        Command::SetPassword { config } => {
            let password = read_new_password()?;
            admin::set_password(&config, &password)?;
            println!("host password set");
        }
        Command::Otp(OtpCommand::Totp { config }) => print_enrolment(&admin::enrol_totp(&config)?),
        Command::Otp(OtpCommand::Email {
            config,
            to,
            smtp,
            smtp_user,
            smtp_password_file,
            smtp_tls,
            from,
        }) => {
            let from = from.unwrap_or_else(|| format!("thin-host <{to}>"));
            let settings = EmailSettings {
                to,
                smtp,
                smtp_user,
                smtp_password_file,
                smtp_tls,
                from,
            };
            print_enrolment(&admin::enrol_email(&config, settings)?);
        }
        Command::Otp(OtpCommand::Off { config }) => {
            admin::otp_off(&config)?;
            println!("one-time passwords are off");
        }
        Command::Otp(OtpCommand::Status { config }) => println!("{}", admin::status(&config)?),
        Command::Acl(AclCommand::Add {
            config,
            allow,
            deny,
            priority,
        }) => {
            let (action, cidr) = match (allow, deny) {
                (Some(cidr), _) => (Action::Allow, cidr),
                (None, Some(cidr)) => (Action::Deny, cidr),
                (None, None) => unreachable!("clap requires --allow or --deny"),
            };
            admin::acl_add(&config, action, &cidr, priority)?;
            println!("{}", admin::acl_list(&config)?);
        }
        Command::Acl(AclCommand::List { config }) => println!("{}", admin::acl_list(&config)?),
        Command::Acl(AclCommand::Remove { config, priority }) => {
            admin::acl_remove(&config, priority)?;
            println!("{}", admin::acl_list(&config)?);
        }
        Command::Mac(MacCommand::Allow { config, mac }) => {
            admin::mac_allow(&config, &mac)?;
            println!("{}", admin::mac_list(&config)?);
        }
        Command::Mac(MacCommand::Remove { config, mac }) => {
            admin::mac_remove(&config, &mac)?;
            println!("{}", admin::mac_list(&config)?);
        }
        Command::Mac(MacCommand::List { config }) => println!("{}", admin::mac_list(&config)?),
        Command::Policy {
            config,
            share,
            clipboard,
            audio,
            raw,
            require_nla,
            syslog,
        } => {
            if let Some(syslog) = syslog {
                let target = (syslog != "off").then_some(syslog);
                admin::set_syslog(&config, target.as_deref())?;
            }
            let on = |switch: Option<String>| switch.map(|s| s == "on");
            let change = admin::PolicyChange {
                share: on(share),
                clipboard: on(clipboard),
                audio: on(audio),
                raw: on(raw),
                require_nla: on(require_nla),
            };
            admin::set_policy(&config, change)?;
            println!("{}", admin::status(&config)?);
        }
        Command::Status { config } => print_status(&host::local::status(&config)?),
        Command::SettingsPassword { config, off } => {
            // Whoever can write the files may set it: no old one is asked.
            let new = if off {
                None
            } else {
                Some(read_new("New settings password: ")?)
            };
            host::local::set_settings_password(&config, new.as_deref().map(|s| s.as_str()))?;
            println!(
                "{}",
                if off {
                    "settings password removed"
                } else {
                    "settings password set: the settings app asks for it before any change"
                }
            );
        }
        Command::Init { .. }
        | Command::Fingerprint { .. }
        | Command::ForgetRdpKey { .. }
        | Command::Run { .. }
        | Command::Service(_) => {
            unreachable!("handled in main")
        }
    }
    Ok(())
}

fn service(command: ServiceCommand) -> anyhow::Result<String> {
    match command {
        ServiceCommand::Install { config, keep_awake } => {
            system_service::install(&ServiceOptions { config, keep_awake })
        }
        ServiceCommand::Uninstall => system_service::uninstall(),
        ServiceCommand::Start => system_service::switch(true),
        ServiceCommand::Stop => system_service::switch(false),
        ServiceCommand::Status => Ok(system_service::status()),
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match Cli::parse().command {
        Command::Init {
            config,
            id,
            relay,
            relay_ca,
            target,
            proxy,
            enrol_token,
        } => HostConfig::init(
            &config,
            InitOptions {
                id,
                relay,
                relay_ca,
                target,
                proxy,
                enrolment_token: enrol_token,
            },
        )
        .map(|c| println!("host '{}' configured in {}", c.id, config.display())),
        Command::Fingerprint { config } => HostConfig::load(&config)
            .and_then(|c| c.load_e2e_key(&config))
            .map(|key| println!("{}", proto::channel::fingerprint(key.public()))),
        Command::ForgetRdpKey { config, target } => {
            host::server_keys::forget(&HostConfig::rdp_keys_path(&config), target.as_deref())
                .map_err(anyhow::Error::msg)
                .map(|removed| println!("forgot {removed} pinned RDP server key(s)"))
        }
        other @ (Command::SetPassword { .. }
        | Command::Otp(_)
        | Command::Acl(_)
        | Command::Mac(_)
        | Command::Policy { .. }
        | Command::Status { .. }
        | Command::SettingsPassword { .. }) => admin(other),
        Command::Service(command) => service(command).map(|report| println!("{report}")),
        Command::Run { config } => raise_fd_limit()
            .and_then(|()| tokio::runtime::Runtime::new())
            .map_err(anyhow::Error::from)
            .and_then(|rt| {
                rt.block_on(async {
                    tokio::select! {
                        r = host::run(&config) => r.map_err(anyhow::Error::from),
                        _ = tokio::signal::ctrl_c() => Ok(()),
                    }
                })
            }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("thin-host: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Sessions and their connections are file descriptors: use what the system
/// allows, so that a busy PC runs out later (and says so when it does).
fn raise_fd_limit() -> std::io::Result<()> {
    #[cfg(unix)]
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::warn!(error = %e, "cannot raise the file-descriptor limit");
    }
    Ok(())
}
