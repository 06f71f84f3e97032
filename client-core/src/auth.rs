//! The client side of the host's checks (see `proto::auth`): report MAC
//! addresses, answer the one-time password and prove the host password with
//! OPAQUE, asking the user through [`Interaction`].

use proto::auth::{opaque, ClientMsg, HostMsg, Refusal};
use tokio::io::{AsyncRead, AsyncWrite};
use transport::{FramedIo, SecureStream};

use crate::interaction::OtpWrong;
use crate::{Answer, ConnectError, Interaction, Progress, Prompt};

/// What the host allows this session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    /// Whether the host's policy lets the client share a local drive.
    pub share_allowed: bool,
}

async fn send<S>(conn: &mut FramedIo<S>, msg: &ClientMsg) -> Result<(), ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let json = serde_json::to_vec(msg).expect("messages serialise");
    conn.write_all(&proto::encode_frame(&json))
        .await
        .map_err(|e| ConnectError::ConnectionLost(e.to_string()))
}

async fn recv<S>(conn: &mut FramedIo<S>) -> Result<HostMsg, ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let frame = conn.read_frame().await.map_err(|e| {
        ConnectError::ConnectionLost(format!("the office PC closed the connection ({e})"))
    })?;
    let msg: HostMsg = serde_json::from_slice(&frame).map_err(|e| {
        ConnectError::HostRefused(format!("the office PC sent a bad message ({e})"))
    })?;
    match msg {
        HostMsg::Refused { reason, message } => Err(refused(reason, message)),
        other => Ok(other),
    }
}

fn refused(reason: Refusal, message: String) -> ConnectError {
    match reason {
        Refusal::AccessList { .. } | Refusal::MacNotAllowed => ConnectError::NotAllowed(message),
        Refusal::LockedOut { retry_after_secs } => ConnectError::LockedOut {
            message,
            retry_after_secs,
        },
        Refusal::NoPassword | Refusal::Unavailable => ConnectError::HostNotReady(message),
        Refusal::Busy => ConnectError::HostBusy(message),
        Refusal::Otp => ConnectError::OtpRefused(message),
        Refusal::Password => ConnectError::HostPasswordRefused(message),
        Refusal::Protocol => ConnectError::HostRefused(message),
    }
}

/// An answer that ends the attempt, as the error to report. `after` is the
/// error to report if the user gave up after a wrong answer.
fn gave_up(answer: Answer, after: Option<ConnectError>) -> ConnectError {
    match answer {
        Answer::Unavailable(why) => ConnectError::NotAnswered(why),
        _ => after.unwrap_or(ConnectError::Cancelled),
    }
}

/// Passes the host's checks; returns what the session may do.
pub async fn authenticate<S>(
    conn: &mut FramedIo<SecureStream<S>>,
    macs: Vec<String>,
    ui: &mut dyn Interaction,
) -> Result<Admission, ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let context = conn.get_ref().handshake_hash().to_vec();
    send(conn, &ClientMsg::Hello { macs }).await?;
    let mut otp_prompt = None;
    loop {
        match recv(conn).await? {
            HostMsg::OtpRequired {
                kind,
                emergency_codes,
            } => {
                otp_prompt = Some((kind.clone(), emergency_codes));
                answer_otp(conn, ui, kind, emergency_codes, None).await?;
            }
            HostMsg::OtpWrong { tries_left, reused } => {
                let Some((kind, emergency_codes)) = otp_prompt.clone() else {
                    return Err(ConnectError::HostRefused("unexpected OTP answer".into()));
                };
                let wrong = OtpWrong { tries_left, reused };
                answer_otp(conn, ui, kind, emergency_codes, Some(wrong)).await?;
            }
            HostMsg::PasswordRequired => {
                if otp_prompt.is_some() {
                    ui.progress(Progress::OtpAccepted);
                }
                prove_password(conn, ui, &context).await?;
            }
            HostMsg::Welcome { share_allowed } => {
                ui.progress(Progress::Admitted);
                return Ok(Admission { share_allowed });
            }
            other => {
                return Err(ConnectError::HostRefused(format!(
                    "the office PC sent an unexpected message ({other:?})"
                )))
            }
        }
    }
}

async fn answer_otp<S>(
    conn: &mut FramedIo<S>,
    ui: &mut dyn Interaction,
    kind: proto::auth::OtpKind,
    emergency_codes: bool,
    last: Option<OtpWrong>,
) -> Result<(), ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let prompt = Prompt::Otp {
        kind,
        emergency_codes,
        last,
    };
    let (code, emergency) = match ui.ask(prompt).await {
        Answer::Otp(code) => (code, false),
        Answer::EmergencyCode(code) => (code, true),
        other => {
            let after = last.map(|wrong| ConnectError::OtpRefused(wrong.to_string()));
            return Err(gave_up(other, after));
        }
    };
    let msg = ClientMsg::Otp {
        code: code.trim().to_owned(),
        emergency,
    };
    send(conn, &msg).await
}

async fn prove_password<S>(
    conn: &mut FramedIo<S>,
    ui: &mut dyn Interaction,
    context: &[u8],
) -> Result<(), ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut retry = false;
    loop {
        let password = match ui.ask(Prompt::HostPassword { retry }).await {
            Answer::Secret(p) => p,
            other => {
                let after = retry.then(|| {
                    ConnectError::HostPasswordRefused("the host password is wrong".into())
                });
                return Err(gave_up(other, after));
            }
        };
        let bad = |e: opaque::OpaqueError| ConnectError::HostRefused(e.to_string());
        let (state, request) = opaque::client_start(password.as_bytes()).map_err(bad)?;
        send(conn, &ClientMsg::PasswordStart { request }).await?;
        let HostMsg::PasswordChallenge { response } = recv(conn).await? else {
            return Err(ConnectError::HostRefused(
                "expected the password challenge".into(),
            ));
        };
        match opaque::client_finish(state, password.as_bytes(), &response, context) {
            Ok(finalization) => {
                return send(conn, &ClientMsg::PasswordFinish { finalization }).await;
            }
            // The host counts this when we start again or leave.
            Err(opaque::OpaqueError::WrongPassword) => retry = true,
            Err(e) => return Err(bad(e)),
        }
    }
}
