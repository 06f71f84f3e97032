//! TLS 1.3 with a pinned relay CA (client side) and the relay's own
//! certificate (server side). The relay link never falls back to TLS 1.2.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::ring as provider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: String },
    #[error("{path} holds no usable private key")]
    NoKey { path: String },
    #[error("TLS set-up failed: {0}")]
    Rustls(#[from] rustls::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum TlsConnectError {
    #[error("the relay's certificate is not signed by the pinned relay CA ({0})")]
    Untrusted(String),
    #[error("{0:?} is not a valid server name")]
    BadName(String),
    #[error("TLS handshake with the relay failed: {0}")]
    Handshake(std::io::Error),
}

pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| TlsSetupError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| TlsSetupError::NoCertificate {
            path: path.display().to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsSetupError::NoCertificate {
            path: path.display().to_string(),
        });
    }
    Ok(certs)
}

pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsSetupError> {
    PrivateKeyDer::from_pem_file(path).map_err(|_| TlsSetupError::NoKey {
        path: path.display().to_string(),
    })
}

/// What native peers (hosts, thin-client, thin-desktop) announce in ALPN, so
/// the relay can tell them from browsers on its one port.
pub const NATIVE_ALPN: &[u8] = b"thin/1";
const HTTP_ALPN: &[u8] = b"http/1.1";

/// Client config that trusts only the certificates in `ca_pem`.
pub fn pinned_client_config(ca_pem: &Path) -> Result<Arc<ClientConfig>, TlsSetupError> {
    let mut config = ClientConfig::builder_with_provider(Arc::new(provider::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots(ca_pem)?)
        .with_no_client_auth();
    config.alpn_protocols = vec![NATIVE_ALPN.to_vec()];
    Ok(Arc::new(config))
}

fn certified_key(cert_pem: &Path, key_pem: &Path) -> Result<Arc<CertifiedKey>, TlsSetupError> {
    let certs = load_certs(cert_pem)?;
    let key = load_key(key_pem)?;
    let key = provider::default_provider()
        .key_provider
        .load_private_key(key)
        .map_err(|_| TlsSetupError::NoKey {
            path: key_pem.display().to_string(),
        })?;
    Ok(Arc::new(CertifiedKey::new(certs, key)))
}

/// Native peers get the relay's own certificate (which they pin); browsers
/// get the publicly trusted one.
#[derive(Debug)]
struct ByAlpn {
    native: Arc<CertifiedKey>,
    web: Arc<CertifiedKey>,
}

impl ResolvesServerCert for ByAlpn {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let native = hello
            .alpn()
            .is_some_and(|mut protocols| protocols.any(|p| p == NATIVE_ALPN));
        Some(if native { &self.native } else { &self.web }.clone())
    }
}

/// Server config for the relay: TLS 1.3 only; with `web` (certificate, key)
/// browsers are served that certificate instead of the relay's own.
pub fn relay_server_config(
    cert_pem: &Path,
    key_pem: &Path,
    web: Option<(&Path, &Path)>,
) -> Result<Arc<ServerConfig>, TlsSetupError> {
    let native = certified_key(cert_pem, key_pem)?;
    let web = match web {
        Some((cert, key)) => certified_key(cert, key)?,
        None => native.clone(),
    };
    let resolver = Arc::new(ByAlpn { native, web });
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![NATIVE_ALPN.to_vec(), HTTP_ALPN.to_vec()];
    Ok(Arc::new(config))
}

/// What relay nodes announce to each other on their cluster port.
pub const CLUSTER_ALPN: &[u8] = b"thin-cluster/1";

fn roots(ca_pem: &Path) -> Result<RootCertStore, TlsSetupError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(ca_pem)? {
        roots.add(cert)?;
    }
    Ok(roots)
}

/// Server config for a relay node's cluster port: TLS 1.3, and only peers
/// with a certificate from the relay CA in `ca_pem` (other nodes) get in.
pub fn cluster_server_config(
    cert_pem: &Path,
    key_pem: &Path,
    ca_pem: &Path,
) -> Result<Arc<ServerConfig>, TlsSetupError> {
    let provider = Arc::new(provider::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots(ca_pem)?),
        provider.clone(),
    )
    .build()
    .map_err(|e| TlsSetupError::Rustls(rustls::Error::General(e.to_string())))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(load_certs(cert_pem)?, load_key(key_pem)?)?;
    config.alpn_protocols = vec![CLUSTER_ALPN.to_vec()];
    Ok(Arc::new(config))
}

/// Client config for one relay node dialling another: it trusts only the
/// relay CA in `ca_pem` and proves itself with its own relay certificate.
pub fn cluster_client_config(
    cert_pem: &Path,
    key_pem: &Path,
    ca_pem: &Path,
) -> Result<Arc<ClientConfig>, TlsSetupError> {
    let mut config = ClientConfig::builder_with_provider(Arc::new(provider::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots(ca_pem)?)
        .with_client_auth_cert(load_certs(cert_pem)?, load_key(key_pem)?)?;
    config.alpn_protocols = vec![CLUSTER_ALPN.to_vec()];
    Ok(Arc::new(config))
}

/// The host part of `host:port` (brackets removed for IPv6).
pub fn host_of(addr: &str) -> &str {
    let host = match addr.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => host,
        _ => addr,
    };
    host.trim_start_matches('[').trim_end_matches(']')
}

/// The DNS names and IP addresses a certificate covers (its subject
/// alternative names), as text.
pub fn certificate_names(cert: &x509_cert::Certificate) -> Result<Vec<String>, String> {
    use x509_cert::ext::pkix::name::GeneralName;
    use x509_cert::ext::pkix::SubjectAltName;
    let Some((_, san)) = cert
        .tbs_certificate()
        .get_extension::<SubjectAltName>()
        .map_err(|e| e.to_string())?
    else {
        return Err("the certificate names no host".to_owned());
    };
    let ip = |bytes: &[u8]| match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        _ => None,
    };
    Ok(san
        .0
        .iter()
        .filter_map(|name| match name {
            GeneralName::DnsName(dns) => Some(dns.to_string()),
            GeneralName::IpAddress(bytes) => ip(bytes.as_bytes()).map(|ip| ip.to_string()),
            _ => None,
        })
        .collect())
}

/// The names the peer of `tls` showed a certificate for (none if it
/// showed none that parses).
pub fn peer_names(tls: &TlsStream<TcpStream>) -> Vec<String> {
    use x509_cert::der::Decode as _;
    let Some(der) = tls.get_ref().1.peer_certificates().and_then(|c| c.first()) else {
        return Vec::new();
    };
    x509_cert::Certificate::from_der(der)
        .ok()
        .and_then(|cert| certificate_names(&cert).ok())
        .unwrap_or_default()
}

/// Runs the TLS handshake on `tcp`, checking the peer against `config`'s roots.
pub async fn connect(
    tcp: TcpStream,
    config: Arc<ClientConfig>,
    addr: &str,
) -> Result<TlsStream<TcpStream>, TlsConnectError> {
    let host = host_of(addr);
    let name = ServerName::try_from(host.to_owned())
        .map_err(|_| TlsConnectError::BadName(host.to_owned()))?;
    TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| {
            match e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                Some(rustls::Error::InvalidCertificate(why)) => {
                    TlsConnectError::Untrusted(format!("{why:?}"))
                }
                _ => TlsConnectError::Handshake(e),
            }
        })
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn host_part() {
        assert_eq!(host_of("127.0.0.1:443"), "127.0.0.1");
        assert_eq!(host_of("[::1]:443"), "::1");
        assert_eq!(host_of("relay.example.jp:443"), "relay.example.jp");
        assert_eq!(host_of("relay.example.jp"), "relay.example.jp");
    }
}
