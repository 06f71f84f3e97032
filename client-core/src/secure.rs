//! The client side of the end-to-end channel: Noise handshake over the
//! paired pipe, with the host's key checked against the pins.

use proto::channel::Initiator;
use tokio::io::{AsyncRead, AsyncWrite};
use transport::{FramedIo, SecureStream};

use crate::auth::{after_late_answer, ask_person};
use crate::error::PromptStep;
use crate::interaction::{Answer, Interaction, Progress, Prompt};
use crate::known_hosts::{HostKeyCheck, PinStore};
use crate::ConnectError;

/// Runs the handshake; `pin` names the computer in the pin store (see
/// [`crate::known_hosts::pin_name`]), `id` is shown to the user.
pub async fn secure<S>(
    pipe: S,
    id: &str,
    pin: &str,
    pins: &dyn PinStore,
    ui: &mut dyn Interaction,
) -> Result<SecureStream<S>, ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    Ok(secure_noting_late(pipe, id, pin, pins, ui).await?.0)
}

/// [`secure`], also saying whether the user accepted a new host key so late
/// that the office PC may have stopped waiting.
pub(crate) async fn secure_noting_late<S>(
    pipe: S,
    id: &str,
    pin: &str,
    pins: &dyn PinStore,
    ui: &mut dyn Interaction,
) -> Result<(SecureStream<S>, bool), ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let lost = |e: std::io::Error| ConnectError::ConnectionLost(e.to_string());
    let handshake = |e: proto::channel::ChannelError| ConnectError::Handshake(e.to_string());
    let mut conn = FramedIo::new(pipe);
    let device = pins.device_key(pin).map_err(ConnectError::Pins)?;
    let (mut initiator, first) = Initiator::start_with(&device).map_err(handshake)?;
    conn.write_all(&proto::encode_frame(&first))
        .await
        .map_err(lost)?;
    let answer = conn.read_frame().await.map_err(|e| {
        ConnectError::ConnectionLost(format!("the office PC closed the connection ({e})"))
    })?;
    let host_key = initiator.read_answer(&answer).map_err(handshake)?;

    let mut known = pins.load().map_err(ConnectError::Pins)?;
    let mut late = false;
    match known.check(pin, &host_key) {
        HostKeyCheck::Known => {}
        HostKeyCheck::New { fingerprint } => {
            let prompt = Prompt::NewHostKey {
                id: id.to_owned(),
                fingerprint,
            };
            let (answer, late_answer) = ask_person(ui, prompt, PromptStep::HostKey).await?;
            if answer != Answer::Accept {
                return Err(ConnectError::Cancelled);
            }
            late = late_answer;
            known.pin(pin, &host_key);
            pins.save(&known).map_err(ConnectError::Pins)?;
        }
        HostKeyCheck::Changed {
            old_fingerprint,
            new_fingerprint,
        } => {
            return Err(ConnectError::HostKeyChanged {
                id: id.to_owned(),
                pin: pin.to_owned(),
                old_fingerprint,
                new_fingerprint,
            })
        }
    }

    let (last, channel) = initiator.finish().map_err(handshake)?;
    conn.write_all(&proto::encode_frame(&last))
        .await
        .map_err(|e| after_late_answer(late, PromptStep::HostKey, lost(e)))?;
    ui.progress(Progress::Secured);
    let (stream, rest) = conn.into_parts();
    Ok((SecureStream::new(stream, rest, channel), late))
}
