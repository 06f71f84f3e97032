//! Messages between the relay and its peers (hosts and clients), sent as JSON
//! inside length-prefixed frames until the relay splices a session.

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use thiserror::Error;

use crate::{encode_frame, ComputerId};

/// Bumped when a message changes shape; the relay refuses other versions.
pub const PROTOCOL_VERSION: u32 = 2;

/// Random nonce and session tokens are this many bytes.
pub const TOKEN_LEN: usize = 16;

/// Messages a host or client sends to the relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToRelay {
    /// First frame of a host's control connection: the ID it claims and the
    /// Ed25519 public key it will prove it holds.
    HostHello {
        version: u32,
        id: ComputerId,
        public_key: Vec<u8>,
        /// The operator's enrolment token, for a relay that binds new IDs
        /// only with one (`thin-relay token new`); unused once bound.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        enrolment_token: Option<String>,
    },
    /// Signature over [`registration_transcript`] answering `Challenge`.
    HostProof { signature: Vec<u8> },
    /// Keep-alive on the host's control connection.
    Ping,
    /// First frame of a host's data connection serving one session.
    HostAccept { id: ComputerId, session: Vec<u8> },
    /// First frame of a client connection: which computer to reach.
    ClientHello { version: u32, id: ComputerId },
    /// On a host's control connection: the host will not serve this
    /// session (too many attempts waiting, out of resources); `message`
    /// tells the waiting client why.
    HostDecline { session: Vec<u8>, message: String },
}

/// First frame from one relay node to another on their cluster port
/// (mutually authenticated TLS). The receiving node answers as it answers
/// the peer the request is for, and after `Paired` the connection is that
/// peer's pipe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NodeRequest {
    /// A client at the sending node asks for a host whose control
    /// connection is at the receiving node (answered `HostNotified`, then
    /// `Paired` or `Error`).
    Forward {
        version: u32,
        id: ComputerId,
        /// The client's address as the first node saw it (told to the host).
        client_addr: String,
    },
    /// A host's data connection for `session` reached the sending node; the
    /// session's client waits at the receiving node (answered `Paired` or
    /// `Error`).
    Accept {
        version: u32,
        id: ComputerId,
        session: Vec<u8>,
    },
    /// The host of `id` registered anew at the sending node while the
    /// receiving node still held its presence: the receiving node lets go
    /// of that older control connection (one it may no longer hear from),
    /// unless the host is back there by now. Not answered.
    LetGo { version: u32, id: ComputerId },
}

/// Messages the relay sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromRelay {
    /// Asks a registering host to sign this nonce.
    Challenge {
        nonce: Vec<u8>,
    },
    /// The host's ID is registered and bound to its key.
    Registered,
    Pong,
    /// Tells a host a client wants it: open a data connection with `session`.
    Incoming {
        session: Vec<u8>,
        client_addr: String,
        /// Where the host reaches this very relay node, when one name or a
        /// load balancer stands for several (the data connection goes
        /// straight there). Absent from older relays; ignored by older hosts.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<String>,
    },
    /// Tells a client its host is online and has been asked to answer.
    HostNotified,
    /// Both ends are joined; from the next byte on the connection is a pipe.
    Paired,
    Error {
        code: ErrorCode,
        message: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    FrameTooLarge,
    UnsupportedVersion,
    IdTaken,
    BadProof,
    UnknownId,
    HostOffline,
    RateLimited,
    Timeout,
    UnknownSession,
    Internal,
    /// The host declined: it has too many connection attempts waiting.
    HostBusy,
    /// The relay has no room for another connection right now.
    RelayFull,
    /// This relay binds new computer IDs only with an enrolment token.
    EnrolmentRequired,
    /// The relay's operator refuses the peer's network.
    Denied,
}

/// Longest decline message the relay passes on from a host.
pub const MAX_DECLINE_MESSAGE: usize = 300;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("malformed message: {0}")]
pub struct DecodeError(pub String);

/// Encodes a message as one frame.
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    let json = serde_json::to_vec(msg).expect("relay messages always serialise");
    encode_frame(&json)
}

/// Decodes one frame's payload.
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, DecodeError> {
    serde_json::from_slice(payload).map_err(|e| DecodeError(e.to_string()))
}

/// What a host signs to prove it owns the key bound to `id`. Domain-separated
/// so the signature cannot be replayed in any other context.
pub fn registration_transcript(nonce: &[u8], id: &ComputerId, public_key: &[u8]) -> Vec<u8> {
    let mut t = b"thin-relay host registration v1\0".to_vec();
    t.extend_from_slice(nonce);
    t.extend_from_slice(id.as_str().as_bytes());
    t.push(0);
    t.extend_from_slice(public_key);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let msg = ToRelay::ClientHello {
            version: PROTOCOL_VERSION,
            id: ComputerId::parse("pc-1").unwrap(),
        };
        let frame = encode(&msg);
        assert_eq!(decode::<ToRelay>(&frame[4..]).unwrap(), msg);
    }

    #[test]
    fn garbage_and_bad_ids_are_decode_errors() {
        assert!(decode::<ToRelay>(b"\xff\x00garbage").is_err());
        assert!(
            decode::<ToRelay>(br#"{"type":"client_hello","version":1,"id":"NO SPACES"}"#).is_err()
        );
    }
}
