//! Client side of pairing, sans-I/O: feed it what the relay sends, it says
//! when the pipe to the host is open or why it is not.

use crate::relay::{self, ErrorCode, FromRelay, ToRelay, PROTOCOL_VERSION};
use crate::{ComputerId, FrameDecoder, FrameError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairingEvent {
    /// The relay found the host online and asked it to answer.
    HostNotified,
    /// The pipe is open. `leftover` are bytes that already belong to the pipe.
    Paired { leftover: Vec<u8> },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairingError {
    #[error("{message}")]
    Refused { code: ErrorCode, message: String },
    #[error("the relay sent a bad frame: {0}")]
    Frame(#[from] FrameError),
    #[error("the relay sent an unexpected message: {0}")]
    Protocol(String),
}

#[derive(Debug)]
pub struct ClientPairing {
    decoder: FrameDecoder,
    done: bool,
}

impl ClientPairing {
    /// Starts pairing with `id`; returns the machine and the bytes to send.
    pub fn start(id: &ComputerId) -> (Self, Vec<u8>) {
        let hello = relay::encode(&ToRelay::ClientHello {
            version: PROTOCOL_VERSION,
            id: id.clone(),
        });
        let machine = Self {
            decoder: FrameDecoder::new(),
            done: false,
        };
        (machine, hello)
    }

    /// Feeds bytes from the relay; returns the events they complete.
    pub fn receive(&mut self, bytes: &[u8]) -> Result<Vec<PairingEvent>, PairingError> {
        if self.done {
            return Err(PairingError::Protocol("data after pairing".into()));
        }
        self.decoder.push(bytes);
        let mut events = Vec::new();
        while let Some(frame) = self.decoder.next_frame()? {
            let msg: FromRelay =
                relay::decode(&frame).map_err(|e| PairingError::Protocol(e.to_string()))?;
            match msg {
                FromRelay::HostNotified => events.push(PairingEvent::HostNotified),
                FromRelay::Paired => {
                    self.done = true;
                    events.push(PairingEvent::Paired {
                        leftover: self.decoder.take_remaining(),
                    });
                    break;
                }
                FromRelay::Error { code, message } => {
                    return Err(PairingError::Refused { code, message })
                }
                other => return Err(PairingError::Protocol(format!("{other:?}"))),
            }
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> ComputerId {
        ComputerId::parse("pc").unwrap()
    }

    #[test]
    fn pairs_and_keeps_pipe_bytes() {
        let (mut p, hello) = ClientPairing::start(&id());
        assert!(!hello.is_empty());
        let mut wire = relay::encode(&FromRelay::HostNotified);
        wire.extend(relay::encode(&FromRelay::Paired));
        wire.extend(b"rdp");
        let events = p.receive(&wire).unwrap();
        assert_eq!(
            events,
            vec![
                PairingEvent::HostNotified,
                PairingEvent::Paired {
                    leftover: b"rdp".to_vec()
                }
            ]
        );
    }

    #[test]
    fn relay_errors_surface_with_their_code() {
        let (mut p, _) = ClientPairing::start(&id());
        let err = p
            .receive(&relay::encode(&FromRelay::Error {
                code: ErrorCode::UnknownId,
                message: "no such computer".into(),
            }))
            .unwrap_err();
        assert!(matches!(
            err,
            PairingError::Refused {
                code: ErrorCode::UnknownId,
                ..
            }
        ));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let (mut p, _) = ClientPairing::start(&id());
        assert!(p.receive(&[0, 0, 0, 3, 1, 2, 3]).is_err());
        let (mut p, _) = ClientPairing::start(&id());
        assert!(p.receive(&[0xff; 8]).is_err());
    }
}
