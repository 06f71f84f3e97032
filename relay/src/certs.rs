//! `thin-relay init`: a private CA that clients and hosts pin, and the
//! relay's certificate signed by it.

use std::path::Path;

use files::{write_atomic, Mode};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};

pub const CA_FILE: &str = "ca.pem";
const CA_KEY_FILE: &str = "ca-key.pem";
pub const CERT_FILE: &str = "relay.pem";
pub const KEY_FILE: &str = "relay-key.pem";

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
}

/// Creates `dir/ca.pem`, `dir/ca-key.pem`, `dir/relay.pem`, `dir/relay-key.pem`.
/// `names` are the DNS names and IP addresses the relay certificate covers.
pub fn init(dir: &Path, names: &[String]) -> Result<(), InitError> {
    if dir.join(CA_FILE).exists() {
        return Err(InitError::Exists(dir.display().to_string()));
    }

    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "thin-relay CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key)?;

    let relay_key = KeyPair::generate()?;
    let mut relay_params = CertificateParams::new(names.to_vec())?;
    relay_params
        .distinguished_name
        .push(DnType::CommonName, "thin-relay");
    let relay_cert = relay_params.signed_by(&relay_key, &ca_cert, &ca_key)?;

    let write = |name: &str, contents: String, mode| {
        let path = dir.join(name);
        write_atomic(&path, contents.as_bytes(), mode).map_err(|source| InitError::Write {
            path: path.display().to_string(),
            source,
        })
    };
    write(CA_KEY_FILE, ca_key.serialize_pem(), Mode::Secret)?;
    write(KEY_FILE, relay_key.serialize_pem(), Mode::Secret)?;
    write(CERT_FILE, relay_cert.pem(), Mode::Public)?;
    // Written last: its presence marks a complete init.
    write(CA_FILE, ca_cert.pem(), Mode::Public)?;
    Ok(())
}
