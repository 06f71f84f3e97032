//! `thin-relay init`: a private CA that clients and hosts pin, and the
//! relay's certificate signed by it; `thin-relay renew`: a new relay
//! certificate from the same CA (pins stay valid).
//!
//! The CA lives about ten years, the relay's certificate a year: a stolen
//! relay key is good for at most that long, and renewing needs nothing from
//! hosts or clients. The running relay picks a renewed certificate up by
//! itself and warns in its log a month before it expires.

use std::path::Path;
use std::time::{Duration, SystemTime};

use files::{write_atomic, Mode};
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use time::OffsetDateTime;
use tracing::{error, warn};

pub const CA_FILE: &str = "ca.pem";
const CA_KEY_FILE: &str = "ca-key.pem";
pub const CERT_FILE: &str = "relay.pem";
pub const KEY_FILE: &str = "relay-key.pem";

const DAY: Duration = Duration::from_secs(24 * 3600);
/// How long the CA is valid.
pub const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// How long a relay certificate is valid unless renewed for less.
pub const CERT_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// The longest validity `renew` issues (what browsers accept for public
/// certificates, a sensible ceiling for a private one too).
pub const MAX_CERT_VALIDITY: Duration = Duration::from_secs(398 * 24 * 3600);
/// The log warns this long before the relay certificate expires.
pub const WARN_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);
/// Certificates start a day early, for clocks that are a little behind.
const SKEW: Duration = DAY;

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{0} already holds a relay CA; use another --dir or delete it on purpose")]
    Exists(String),
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {why}")]
    Read { path: String, why: String },
}

fn write(dir: &Path, name: &str, contents: String, mode: Mode) -> Result<(), InitError> {
    let path = dir.join(name);
    write_atomic(&path, contents.as_bytes(), mode).map_err(|source| InitError::Write {
        path: path.display().to_string(),
        source,
    })
}

fn read(dir: &Path, name: &str) -> Result<String, InitError> {
    let path = dir.join(name);
    std::fs::read_to_string(&path).map_err(|e| InitError::Read {
        path: path.display().to_string(),
        why: e.to_string(),
    })
}

fn valid_for(params: &mut CertificateParams, now: SystemTime, validity: Duration) {
    params.not_before = OffsetDateTime::from(now - SKEW);
    params.not_after = OffsetDateTime::from(now + validity);
}

/// The CA's parameters; the same every time, so that a certificate issued
/// later names exactly the subject of the CA that was pinned.
fn ca_params(now: SystemTime) -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params
        .distinguished_name
        .push(DnType::CommonName, "thin-relay CA");
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    valid_for(&mut params, now, CA_VALIDITY);
    Ok(params)
}

fn relay_cert(
    names: &[String],
    ca: &Certificate,
    ca_key: &KeyPair,
    now: SystemTime,
    validity: Duration,
) -> Result<(Certificate, KeyPair), rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(names.to_vec())?;
    params
        .distinguished_name
        .push(DnType::CommonName, "thin-relay");
    valid_for(&mut params, now, validity);
    Ok((params.signed_by(&key, ca, ca_key)?, key))
}

/// Creates `dir/ca.pem`, `dir/ca-key.pem`, `dir/relay.pem`, `dir/relay-key.pem`.
/// `names` are the DNS names and IP addresses the relay certificate covers.
pub fn init(dir: &Path, names: &[String]) -> Result<(), InitError> {
    if dir.join(CA_FILE).exists() {
        return Err(InitError::Exists(dir.display().to_string()));
    }
    let now = SystemTime::now();
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca_params(now)?.self_signed(&ca_key)?;
    let (cert, key) = relay_cert(names, &ca_cert, &ca_key, now, CERT_VALIDITY)?;
    write(dir, CA_KEY_FILE, ca_key.serialize_pem(), Mode::Secret)?;
    write(dir, KEY_FILE, key.serialize_pem(), Mode::Secret)?;
    write(dir, CERT_FILE, cert.pem(), Mode::Public)?;
    // Written last: its presence marks a complete init.
    write(dir, CA_FILE, ca_cert.pem(), Mode::Public)?;
    Ok(())
}

/// Issues a new relay certificate (and key) from the CA in `dir`, for
/// `names`, or for the names of the current certificate if none are given,
/// valid for `validity` (at most [`MAX_CERT_VALIDITY`]). Returns when the
/// new certificate expires.
pub fn renew(dir: &Path, names: &[String], validity: Duration) -> Result<SystemTime, InitError> {
    let validity = validity.min(MAX_CERT_VALIDITY);
    let ca_key = KeyPair::from_pem(&read(dir, CA_KEY_FILE)?)?;
    let names = if names.is_empty() {
        current_names(&read(dir, CERT_FILE)?).map_err(|why| InitError::Read {
            path: dir.join(CERT_FILE).display().to_string(),
            why,
        })?
    } else {
        names.to_vec()
    };
    let now = SystemTime::now();
    // The CA re-signed with its own key and subject: what it issues chains
    // to the ca.pem that hosts and clients pinned.
    let ca_cert = ca_params(now)?.self_signed(&ca_key)?;
    let (cert, key) = relay_cert(&names, &ca_cert, &ca_key, now, validity)?;
    write(dir, KEY_FILE, key.serialize_pem(), Mode::Secret)?;
    write(dir, CERT_FILE, cert.pem(), Mode::Public)?;
    Ok(now + validity)
}

fn first_certificate(pem: &str) -> Result<x509_cert::Certificate, String> {
    x509_cert::Certificate::load_pem_chain(pem.as_bytes())
        .map_err(|e| e.to_string())?
        .into_iter()
        .next()
        .ok_or_else(|| "no certificate in it".to_owned())
}

/// The DNS names and IP addresses the relay certificate in `dir` covers.
pub(crate) fn names(dir: &Path) -> Result<Vec<String>, String> {
    let path = dir.join(CERT_FILE);
    let pem = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    current_names(&pem)
}

/// The DNS names and IP addresses a certificate covers.
fn current_names(pem: &str) -> Result<Vec<String>, String> {
    transport::tls::certificate_names(&first_certificate(pem)?)
        .map_err(|e| format!("{e}; give --name"))
}

/// When a certificate file's first certificate stops being valid.
pub fn expires(pem_file: &Path) -> Result<SystemTime, String> {
    let pem = std::fs::read_to_string(pem_file).map_err(|e| e.to_string())?;
    Ok(first_certificate(&pem)?
        .tbs_certificate()
        .validity()
        .not_after
        .to_system_time())
}

/// Logs a warning when the relay certificate in `dir` expires within
/// [`WARN_BEFORE`], an error when it has expired.
pub fn warn_if_expiring(dir: &Path) {
    let Ok(until) = expires(&dir.join(CERT_FILE)) else {
        return;
    };
    let renew = format!("run `thin-relay renew --dir {}`", dir.display());
    match until.duration_since(SystemTime::now()) {
        Err(_) => {
            error!("the relay certificate has EXPIRED: hosts and clients cannot connect; {renew}")
        }
        Ok(left) if left < WARN_BEFORE => warn!(
            days = left.as_secs() / DAY.as_secs(),
            "the relay certificate expires soon; {renew}"
        ),
        Ok(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn years(d: Duration) -> f64 {
        d.as_secs_f64() / (365.0 * DAY.as_secs_f64())
    }

    #[test]
    fn the_ca_lives_ten_years_and_the_relay_certificate_one() {
        let dir = tempfile::tempdir().unwrap();
        init(dir.path(), &["relay.example.jp".into(), "192.0.2.1".into()]).unwrap();
        let now = SystemTime::now();
        let ca = expires(&dir.path().join(CA_FILE)).unwrap();
        let cert = expires(&dir.path().join(CERT_FILE)).unwrap();
        let ca_years = years(ca.duration_since(now).unwrap());
        let cert_years = years(cert.duration_since(now).unwrap());
        assert!((9.9..10.1).contains(&ca_years), "{ca_years}");
        assert!((0.9..1.01).contains(&cert_years), "{cert_years}");
        let names = current_names(&read(dir.path(), CERT_FILE).unwrap()).unwrap();
        assert_eq!(names, ["relay.example.jp", "192.0.2.1"]);
    }

    #[test]
    fn renewal_keeps_the_ca_and_the_names() {
        let dir = tempfile::tempdir().unwrap();
        init(dir.path(), &["localhost".into(), "127.0.0.1".into()]).unwrap();
        let ca_before = read(dir.path(), CA_FILE).unwrap();
        let cert_before = read(dir.path(), CERT_FILE).unwrap();
        let until = renew(dir.path(), &[], CERT_VALIDITY).unwrap();
        assert_eq!(read(dir.path(), CA_FILE).unwrap(), ca_before);
        let cert_after = read(dir.path(), CERT_FILE).unwrap();
        assert_ne!(cert_after, cert_before);
        assert_eq!(
            current_names(&cert_after).unwrap(),
            ["localhost", "127.0.0.1"]
        );
        let written = expires(&dir.path().join(CERT_FILE)).unwrap();
        let gap = until
            .duration_since(written)
            .unwrap_or_else(|e| e.duration());
        assert!(gap < Duration::from_secs(5), "{gap:?}");
        // The new certificate and key go together (clients connecting with
        // the old ca.pem: tests/tests/relay_ops.rs).
        transport::tls::relay_server_config(
            &dir.path().join(CERT_FILE),
            &dir.path().join(KEY_FILE),
            None,
        )
        .unwrap();
    }
}
