//! The operator's audit trail: a JSON line per operator action (releasing
//! an ID, issuing a token, renewing the certificate) and per enrolment-token
//! use, in `audit.log` in the relay folder (mode 0600). Failing to write it
//! is logged, never fatal.

use std::io::Write as _;
use std::path::Path;
use std::time::SystemTime;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tracing::warn;

pub const FILE: &str = "audit.log";

/// Appends `{"time", "action", ...details}`.
pub fn record(dir: &Path, action: &str, details: serde_json::Value) {
    let time = OffsetDateTime::from(SystemTime::now())
        .format(&Rfc3339)
        .unwrap_or_default();
    let mut line = serde_json::json!({ "time": time, "action": action });
    if let (Some(line), serde_json::Value::Object(details)) = (line.as_object_mut(), details) {
        line.extend(details);
    }
    let mut text = line.to_string();
    text.push('\n');
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options
        .open(dir.join(FILE))
        .and_then(|mut file| file.write_all(text.as_bytes()));
    if let Err(e) = written {
        warn!(error = %e, "cannot write the operator audit log");
    }
}
