//! The end-to-end channel between client and host, inside the relay's pipe:
//! Noise XX (X25519, ChaCha20-Poly1305, BLAKE2s) via `snow`, sans-I/O.
//!
//! Handshake (each message one frame):
//! ```text
//! client → host   e
//! host   → client e, ee, s, es      client checks the host's static key here
//! client → host   s, se
//! ```
//! Afterwards every frame is one Noise transport message. The handshake hash
//! identifies this channel; the password exchange binds itself to it.

use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use snow::{HandshakeState, TransportState};
use thiserror::Error;

const PARAMS: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";
/// Mixed into the handshake so a transcript cannot be reused by another protocol.
const PROLOGUE: &[u8] = b"thin-e2e v1";
/// Largest Noise message (the spec's limit).
pub const MAX_MESSAGE: usize = 65535;
const TAG_LEN: usize = 16;
/// Largest plaintext carried by one transport message.
pub const MAX_PLAINTEXT: usize = MAX_MESSAGE - TAG_LEN;
pub const KEY_LEN: usize = 32;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ChannelError {
    #[error("end-to-end handshake failed: {0}")]
    Handshake(String),
    #[error("a message failed authentication (corrupted or forged)")]
    Decrypt,
    #[error("message of {0} bytes is larger than the channel allows")]
    TooLarge(usize),
    #[error("a key must be {KEY_LEN} bytes")]
    BadKey,
}

fn snow_err(e: snow::Error) -> ChannelError {
    ChannelError::Handshake(e.to_string())
}

fn builder() -> snow::Builder<'static> {
    snow::Builder::new(PARAMS.parse().expect("valid Noise parameters"))
}

/// A static X25519 key pair. The private half is wiped on drop.
#[derive(Clone)]
pub struct StaticKey {
    private: zeroize::Zeroizing<Vec<u8>>,
    public: Vec<u8>,
}

impl std::fmt::Debug for StaticKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StaticKey({})", fingerprint(&self.public))
    }
}

impl StaticKey {
    pub fn generate() -> Result<Self, ChannelError> {
        let pair = builder().generate_keypair().map_err(snow_err)?;
        Ok(Self {
            private: zeroize::Zeroizing::new(pair.private),
            public: pair.public,
        })
    }

    /// The key pair whose private half is `private` (X25519 clamps it).
    pub fn from_private(private: &[u8; KEY_LEN]) -> Result<Self, ChannelError> {
        use snow::resolvers::{CryptoResolver as _, DefaultResolver};
        let mut dh = DefaultResolver
            .resolve_dh(&snow::params::DHChoice::Curve25519)
            .ok_or(ChannelError::BadKey)?;
        dh.set(private);
        Ok(Self {
            private: zeroize::Zeroizing::new(private.to_vec()),
            public: dh.pubkey().to_vec(),
        })
    }

    /// A key pair of its own for each `purpose`, all from one `secret`: a
    /// client device shows each office PC another key, so PCs cannot tell
    /// they see the same device, while each PC always sees the same one.
    pub fn derive(secret: &[u8], purpose: &str) -> Result<Self, ChannelError> {
        let mut hash = Sha256::new();
        hash.update(b"thin device key v1\0");
        hash.update((secret.len() as u32).to_be_bytes());
        hash.update(secret);
        hash.update(purpose.as_bytes());
        let private = zeroize::Zeroizing::new(<[u8; KEY_LEN]>::from(hash.finalize()));
        Self::from_private(&private)
    }

    /// Private then public half, as stored on disk.
    pub fn to_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let mut out = zeroize::Zeroizing::new(Vec::with_capacity(2 * KEY_LEN));
        out.extend_from_slice(&self.private);
        out.extend_from_slice(&self.public);
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ChannelError> {
        if bytes.len() != 2 * KEY_LEN {
            return Err(ChannelError::BadKey);
        }
        Ok(Self {
            private: zeroize::Zeroizing::new(bytes[..KEY_LEN].to_vec()),
            public: bytes[KEY_LEN..].to_vec(),
        })
    }

    pub fn public(&self) -> &[u8] {
        &self.public
    }
}

/// 32 bytes from the system's random number generator (a device secret).
pub fn random_secret() -> Result<zeroize::Zeroizing<Vec<u8>>, ChannelError> {
    // A fresh private key is exactly that.
    Ok(StaticKey::generate()?.private)
}

/// How people compare host keys: `SHA256:` and the base64 of the key's hash.
pub fn fingerprint(public_key: &[u8]) -> String {
    let hash = Sha256::digest(public_key);
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(hash)
    )
}

/// Client side of the handshake.
pub struct Initiator {
    hs: HandshakeState,
}

impl Initiator {
    /// Starts the handshake with a fresh, throw-away client key; returns the
    /// first message.
    pub fn start() -> Result<(Self, Vec<u8>), ChannelError> {
        Self::start_with(&StaticKey::generate()?)
    }

    /// Starts the handshake as the device `key` (a client's own lasting key,
    /// which lets a host recognise the device it admitted before).
    pub fn start_with(key: &StaticKey) -> Result<(Self, Vec<u8>), ChannelError> {
        let mut hs = builder()
            .local_private_key(&key.private)
            .map_err(snow_err)?
            .prologue(PROLOGUE)
            .map_err(snow_err)?
            .build_initiator()
            .map_err(snow_err)?;
        let mut msg = vec![0u8; MAX_MESSAGE];
        let len = hs.write_message(&[], &mut msg).map_err(snow_err)?;
        msg.truncate(len);
        Ok((Self { hs }, msg))
    }

    /// Reads the host's answer and returns the host's static public key, for
    /// the caller to check against its pins before [`finish`](Self::finish).
    pub fn read_answer(&mut self, msg: &[u8]) -> Result<Vec<u8>, ChannelError> {
        let mut payload = vec![0u8; MAX_MESSAGE];
        self.hs.read_message(msg, &mut payload).map_err(snow_err)?;
        self.hs
            .get_remote_static()
            .map(<[u8]>::to_vec)
            .ok_or_else(|| ChannelError::Handshake("the host sent no static key".into()))
    }

    /// Returns the last handshake message and the open channel.
    pub fn finish(mut self) -> Result<(Vec<u8>, Channel), ChannelError> {
        let mut msg = vec![0u8; MAX_MESSAGE];
        let len = self.hs.write_message(&[], &mut msg).map_err(snow_err)?;
        msg.truncate(len);
        Ok((msg, Channel::from_handshake(self.hs)?))
    }
}

/// Host side of the handshake.
pub struct Responder {
    hs: HandshakeState,
}

impl Responder {
    /// Reads the client's first message; returns the answer to send.
    pub fn answer(key: &StaticKey, first: &[u8]) -> Result<(Self, Vec<u8>), ChannelError> {
        let mut hs = builder()
            .local_private_key(&key.private)
            .map_err(snow_err)?
            .prologue(PROLOGUE)
            .map_err(snow_err)?
            .build_responder()
            .map_err(snow_err)?;
        let mut payload = vec![0u8; MAX_MESSAGE];
        hs.read_message(first, &mut payload).map_err(snow_err)?;
        let mut msg = vec![0u8; MAX_MESSAGE];
        let len = hs.write_message(&[], &mut msg).map_err(snow_err)?;
        msg.truncate(len);
        Ok((Self { hs }, msg))
    }

    /// Reads the client's last message; the channel is open.
    pub fn finish(mut self, last: &[u8]) -> Result<Channel, ChannelError> {
        let mut payload = vec![0u8; MAX_MESSAGE];
        self.hs.read_message(last, &mut payload).map_err(snow_err)?;
        Channel::from_handshake(self.hs)
    }
}

/// An open channel: encrypts and authenticates each message, in order.
pub struct Channel {
    transport: TransportState,
    handshake_hash: Vec<u8>,
    peer_key: Vec<u8>,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel").finish_non_exhaustive()
    }
}

impl Channel {
    fn from_handshake(hs: HandshakeState) -> Result<Self, ChannelError> {
        let handshake_hash = hs.get_handshake_hash().to_vec();
        let peer_key = hs
            .get_remote_static()
            .map(<[u8]>::to_vec)
            .ok_or_else(|| ChannelError::Handshake("the peer sent no static key".into()))?;
        let transport = hs.into_transport_mode().map_err(snow_err)?;
        Ok(Self {
            transport,
            handshake_hash,
            peer_key,
        })
    }

    /// The other end's static public key, proven by the handshake: the
    /// host's key for a client, the client device's key for a host.
    pub fn peer_key(&self) -> &[u8] {
        &self.peer_key
    }

    /// Unique to this channel: what the password exchange binds itself to.
    pub fn handshake_hash(&self) -> &[u8] {
        &self.handshake_hash
    }

    /// Encrypts up to [`MAX_PLAINTEXT`] bytes into one message.
    pub fn seal(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, ChannelError> {
        if plaintext.len() > MAX_PLAINTEXT {
            return Err(ChannelError::TooLarge(plaintext.len()));
        }
        let mut out = vec![0u8; plaintext.len() + TAG_LEN];
        let len = self
            .transport
            .write_message(plaintext, &mut out)
            .map_err(|e| ChannelError::Handshake(e.to_string()))?;
        out.truncate(len);
        Ok(out)
    }

    /// Decrypts one message; any tampering, reordering or replay fails.
    pub fn open(&mut self, message: &[u8]) -> Result<Vec<u8>, ChannelError> {
        if message.len() > MAX_MESSAGE {
            return Err(ChannelError::TooLarge(message.len()));
        }
        let mut out = vec![0u8; message.len()];
        let len = self
            .transport
            .read_message(message, &mut out)
            .map_err(|_| ChannelError::Decrypt)?;
        out.truncate(len);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Channel, Channel, Vec<u8>) {
        let host_key = StaticKey::generate().unwrap();
        let device = StaticKey::generate().unwrap();
        let (mut client, m1) = Initiator::start_with(&device).unwrap();
        let (host, m2) = Responder::answer(&host_key, &m1).unwrap();
        let seen = client.read_answer(&m2).unwrap();
        assert_eq!(seen, host_key.public());
        let (m3, client) = client.finish().unwrap();
        let host = host.finish(&m3).unwrap();
        // Each end knows the other's lasting key.
        assert_eq!(host.peer_key(), device.public());
        assert_eq!(client.peer_key(), host_key.public());
        (client, host, seen)
    }

    #[test]
    fn derived_keys_are_stable_per_purpose_and_unlinkable_across_purposes() {
        let secret = [7u8; 32];
        let a = StaticKey::derive(&secret, "pc-1@ca-1").unwrap();
        let again = StaticKey::derive(&secret, "pc-1@ca-1").unwrap();
        let b = StaticKey::derive(&secret, "pc-2@ca-1").unwrap();
        assert_eq!(a.public(), again.public());
        assert_ne!(a.public(), b.public());
        // A derived key works in a handshake, and the host sees its public half.
        let host_key = StaticKey::generate().unwrap();
        let (mut client, m1) = Initiator::start_with(&a).unwrap();
        let (host, m2) = Responder::answer(&host_key, &m1).unwrap();
        client.read_answer(&m2).unwrap();
        let (m3, _) = client.finish().unwrap();
        assert_eq!(host.finish(&m3).unwrap().peer_key(), a.public());
        assert_eq!(random_secret().unwrap().len(), KEY_LEN);
    }

    #[test]
    fn both_ends_agree_and_exchange_messages() {
        let (mut client, mut host, _) = pair();
        assert_eq!(client.handshake_hash(), host.handshake_hash());
        let sealed = client.seal(b"secret").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(host.open(&sealed).unwrap(), b"secret");
        let back = host.seal(&[7u8; MAX_PLAINTEXT]).unwrap();
        assert_eq!(back.len(), MAX_MESSAGE);
        assert_eq!(client.open(&back).unwrap(), vec![7u8; MAX_PLAINTEXT]);
        assert!(client.seal(&[0u8; MAX_PLAINTEXT + 1]).is_err());
    }

    #[test]
    fn tampering_and_replay_are_refused() {
        let (mut client, mut host, _) = pair();
        let mut sealed = client.seal(b"hello").unwrap();
        let copy = sealed.clone();
        sealed[0] ^= 1;
        assert_eq!(host.open(&sealed), Err(ChannelError::Decrypt));
        let (mut client, mut host, _) = pair();
        let sealed = client.seal(b"hello").unwrap();
        host.open(&sealed).unwrap();
        assert_eq!(host.open(&sealed), Err(ChannelError::Decrypt));
        assert_eq!(host.open(&copy), Err(ChannelError::Decrypt));
    }

    #[test]
    fn garbage_handshake_messages_are_errors() {
        let host_key = StaticKey::generate().unwrap();
        assert!(Responder::answer(&host_key, b"").is_err());
        assert!(Responder::answer(&host_key, &[0xff; 70_000]).is_err());
        let (mut client, _) = Initiator::start().unwrap();
        assert!(client.read_answer(&[1, 2, 3]).is_err());
        let (mut client, _) = Initiator::start().unwrap();
        assert!(client.read_answer(&[0u8; 200]).is_err());
    }

    #[test]
    fn keys_round_trip_and_fingerprints_are_stable() {
        let key = StaticKey::generate().unwrap();
        let again = StaticKey::from_bytes(&key.to_bytes()).unwrap();
        assert_eq!(key.public(), again.public());
        assert!(StaticKey::from_bytes(&[0u8; 10]).is_err());
        let fp = fingerprint(&[0u8; 32]);
        assert!(fp.starts_with("SHA256:"));
        assert_eq!(fp, fingerprint(&[0u8; 32]));
        assert_ne!(fp, fingerprint(&[1u8; 32]));
    }
}
