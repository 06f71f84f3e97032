//! The first messages inside a paired pipe, between client and host.
//!
//! (The end-to-end channel will wrap everything from here on; these messages
//! do not change when it does.)

use serde::{Deserialize, Serialize};

/// What the client wants from the host's RDP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionMode {
    /// The host does X.224 + TLS toward its RDP server and returns the
    /// server's certificate chain (RDCleanPath); the next frame from the
    /// client is an RDCleanPath request.
    Rdp,
    /// A plain byte pipe to the RDP server, for any RDP client.
    Raw,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SessionRequest {
    Open { mode: SessionMode },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SessionReply {
    /// The host reached its RDP server. In `Rdp` mode an RDCleanPath response
    /// frame follows; then the pipe carries RDP.
    Ready,
    /// The host could not serve the session; `reason` is for the user.
    Refused { reason: String },
}

/// The subject public key of an RDP server's certificate (DER), which CredSSP
/// binds the logon to. `None` if the certificate cannot be parsed.
pub fn server_public_key(cert_der: &[u8]) -> Option<Vec<u8>> {
    use x509_cert::der::Decode as _;
    let cert = x509_cert::Certificate::from_der(cert_der).ok()?;
    cert.tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .as_bytes()
        .map(<[u8]>::to_vec)
}
