//! The audit trail of every access attempt: one JSON line per event in the
//! host's audit log (mode 0600), and optionally an RFC 5424 syslog message
//! over UDP. Events name the step and the outcome, never a secret.

use std::io::Write as _;
use std::net::{IpAddr, UdpSocket};
use std::path::PathBuf;
use std::time::SystemTime;

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tracing::warn;

/// Which check an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    AccessList,
    Mac,
    Lockout,
    Otp,
    Emergency,
    Password,
    Session,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Fail,
    Refused,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::AccessList => "access_list",
            Step::Mac => "mac",
            Step::Lockout => "lockout",
            Step::Otp => "otp",
            Step::Emergency => "emergency",
            Step::Password => "password",
            Step::Session => "session",
        }
    }
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Refused => "refused",
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Event<'a> {
    pub time: String,
    pub source: IpAddr,
    pub step: Step,
    pub result: Outcome,
    pub detail: &'a str,
}

pub struct Audit {
    file: PathBuf,
    syslog: Option<(UdpSocket, String)>,
    host_id: String,
}

pub fn rfc3339(at: SystemTime) -> String {
    OffsetDateTime::from(at)
        .format(&Rfc3339)
        .unwrap_or_else(|_| "-".into())
}

impl Audit {
    /// `syslog` is `host:port` of an RFC 5424 receiver over UDP.
    pub fn new(file: PathBuf, syslog: Option<&str>, host_id: &str) -> anyhow::Result<Self> {
        let syslog = match syslog {
            Some(addr) => {
                let bind = if addr.starts_with('[') {
                    "[::]:0"
                } else {
                    "0.0.0.0:0"
                };
                let socket = UdpSocket::bind(bind)?;
                Some((socket, addr.to_owned()))
            }
            None => None,
        };
        Ok(Self {
            file,
            syslog,
            host_id: host_id.to_owned(),
        })
    }

    /// Records an event; a failure to record is logged, not fatal.
    pub fn record(
        &self,
        at: SystemTime,
        source: IpAddr,
        step: Step,
        result: Outcome,
        detail: &str,
    ) {
        let event = Event {
            time: rfc3339(at),
            source,
            step,
            result,
            detail,
        };
        let mut line = serde_json::to_string(&event).expect("events serialise");
        line.push('\n');
        if let Err(e) = self.append(line.as_bytes()) {
            warn!(file = %self.file.display(), error = %e, "cannot write the audit log");
        }
        if let Some((socket, addr)) = &self.syslog {
            let message = syslog_message(&event, &self.host_id, std::process::id());
            if let Err(e) = socket.send_to(message.as_bytes(), addr.as_str()) {
                warn!(%addr, error = %e, "cannot send the audit event to syslog");
            }
        }
    }

    fn append(&self, line: &[u8]) -> std::io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(&self.file)?.write_all(line)
    }
}

/// RFC 5424: `<PRI>1 TIMESTAMP HOSTNAME APP PROCID MSGID [SD] MSG`, facility
/// authpriv (10); failures are warnings, the rest notices.
pub fn syslog_message(event: &Event<'_>, host_id: &str, pid: u32) -> String {
    let severity = match event.result {
        Outcome::Ok => 5,
        Outcome::Fail | Outcome::Refused => 4,
    };
    let pri = 10 * 8 + severity;
    format!(
        "<{pri}>1 {} {host_id} thin-host {pid} access [thin@32473 source=\"{}\" step=\"{}\" result=\"{}\"] {}",
        event.time,
        event.source,
        event.step.as_str(),
        event.result.as_str(),
        event.detail,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syslog_lines_follow_rfc5424() {
        let event = Event {
            time: "2026-11-22T10:00:00Z".into(),
            source: "192.0.2.7".parse().unwrap(),
            step: Step::Otp,
            result: Outcome::Fail,
            detail: "wrong code \"x\"]",
        };
        assert_eq!(
            syslog_message(&event, "office-pc", 42),
            "<84>1 2026-11-22T10:00:00Z office-pc thin-host 42 access \
             [thin@32473 source=\"192.0.2.7\" step=\"otp\" result=\"fail\"] wrong code \"x\"]"
        );
    }

    #[test]
    fn events_are_appended_as_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let audit = Audit::new(dir.path().join("audit.log"), None, "pc").unwrap();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        audit.record(SystemTime::UNIX_EPOCH, ip, Step::Password, Outcome::Ok, "");
        audit.record(
            SystemTime::UNIX_EPOCH,
            ip,
            Step::Otp,
            Outcome::Fail,
            "wrong code",
        );
        let text = std::fs::read_to_string(dir.path().join("audit.log")).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["step"], "otp");
        assert_eq!(lines[1]["result"], "fail");
        assert_eq!(lines[0]["time"], "1970-01-01T00:00:00Z");
    }
}
