//! Async adapter for `proto::pairing`: ask the relay for a computer and
//! return the open pipe to its host.

use proto::pairing::{ClientPairing, PairingError, PairingEvent};
use proto::ComputerId;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use transport::Prefixed;

use crate::{ConnectError, Interaction, Progress};

/// Pairs over `stream` (already connected to the relay). The returned stream
/// is the raw pipe to the host.
pub async fn pair<S>(
    mut stream: S,
    id: &ComputerId,
    ui: &mut dyn Interaction,
) -> Result<Prefixed<S>, ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let lost = |e: std::io::Error| ConnectError::RelayUnreachable(e.to_string());
    let (mut machine, hello) = ClientPairing::start(id);
    stream.write_all(&hello).await.map_err(lost)?;
    stream.flush().await.map_err(lost)?;
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.map_err(lost)?;
        if n == 0 {
            return Err(ConnectError::RelayUnreachable(
                "the relay closed the connection during pairing".into(),
            ));
        }
        let events = machine.receive(&buf[..n]).map_err(|e| match e {
            PairingError::Refused { code, message } => ConnectError::from_relay(code, message),
            other => ConnectError::RelayRefused(other.to_string()),
        })?;
        for event in events {
            match event {
                PairingEvent::HostNotified => ui.progress(Progress::HostNotified),
                PairingEvent::Paired { leftover } => {
                    ui.progress(Progress::Paired);
                    return Ok(Prefixed::new(leftover, stream));
                }
            }
        }
    }
}
