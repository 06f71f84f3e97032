//! The client side of the host's checks (see `proto::auth`): report MAC
//! addresses, answer the one-time password and prove the host password with
//! OPAQUE, asking the user through [`Interaction`]; come back with a resume
//! ticket ([`Resumption`]) instead of the one-time password.

use std::sync::Mutex;
use std::time::Duration;

use proto::auth::{opaque, ClientMsg, HostMsg, Refusal};
use tokio::io::{AsyncRead, AsyncWrite};
use transport::{FramedIo, SecureStream};
use zeroize::Zeroizing;

use crate::error::PromptStep;
use crate::interaction::OtpWrong;
use crate::{Answer, ConnectError, Interaction, Progress, Prompt};

/// How long the office PC waits for a person's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(proto::auth::ANSWER_TIMEOUT_SECS);
/// An answer given this close to the office PC's limit may arrive after it
/// stopped waiting; if the connection then breaks, that is why.
const LATE_MARGIN: Duration = Duration::from_secs(30);

/// Asks `prompt` and times the answer against the office PC's patience: an
/// answer after it stopped waiting is [`ConnectError::PromptTimedOut`].
/// Returns the answer and whether it came so late that a broken connection
/// right after it means the office PC gave up.
pub(crate) async fn ask_person(
    ui: &mut dyn Interaction,
    prompt: Prompt,
    step: PromptStep,
) -> Result<(Answer, bool), ConnectError> {
    let asked = web_time::Instant::now();
    let answer = ui.ask(prompt).await;
    let took = asked.elapsed();
    if took >= ANSWER_TIMEOUT && !matches!(answer, Answer::Cancel | Answer::Unavailable(_)) {
        return Err(ConnectError::PromptTimedOut(step));
    }
    Ok((answer, took + LATE_MARGIN >= ANSWER_TIMEOUT))
}

/// A connection error after a late answer to `step`, said as what it was.
pub(crate) fn after_late_answer(late: bool, step: PromptStep, error: ConnectError) -> ConnectError {
    match error {
        ConnectError::ConnectionLost(_) if late => ConnectError::PromptTimedOut(step),
        other => other,
    }
}

/// What lets this client come back to a host without the one-time password
/// (see `proto::auth::ResumeTicket`): the host's last ticket, the key of the
/// host that gave it, and the host password that was proven — in memory
/// only, for as long as the owner of this value (a connection with its
/// reconnects, a raw-mode listener) lives. Each ticket is used once; a new
/// one comes with every welcome.
#[derive(Default)]
pub struct Resumption {
    held: Mutex<Option<Held>>,
}

struct Held {
    ticket: Vec<u8>,
    host_key: Vec<u8>,
    password: Zeroizing<String>,
}

impl Resumption {
    fn held(&self) -> std::sync::MutexGuard<'_, Option<Held>> {
        self.held.lock().expect("not poisoned")
    }

    /// Whether a ticket is held.
    pub fn is_held(&self) -> bool {
        self.held().is_some()
    }

    /// Forgets the ticket and the password.
    pub fn forget(&self) {
        self.held().take();
    }

    /// The ticket and password for the host with `host_key`, taken out (a
    /// ticket is good once); a ticket of another host key is dropped.
    fn take_for(&self, host_key: &[u8]) -> Option<Held> {
        self.held().take().filter(|held| held.host_key == host_key)
    }

    fn keep(&self, held: Held) {
        *self.held() = Some(held);
    }
}

/// What the host allows this session (its owner's policy, which the host
/// enforces whatever the client does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    /// Whether the client may share a local drive.
    pub share_allowed: bool,
    pub clipboard_allowed: bool,
    pub audio_allowed: bool,
    /// Whether raw mode (any RDP client through a local port) is allowed.
    pub raw_allowed: bool,
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

/// Opens the end-to-end channel over the paired `pipe` (see
/// [`crate::secure::secure`]) and passes the host's checks in it
/// ([`authenticate`]).
#[allow(clippy::too_many_arguments)]
pub async fn enter<S>(
    pipe: S,
    id: &str,
    pin: &str,
    pins: &dyn crate::PinStore,
    macs: Vec<String>,
    ui: &mut dyn Interaction,
    resumption: &Resumption,
) -> Result<(FramedIo<SecureStream<S>>, Admission), ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (channel, late) = crate::secure::secure_noting_late(pipe, id, pin, pins, ui).await?;
    let mut conn = FramedIo::new(channel);
    let admission = authenticate(&mut conn, macs, ui, resumption)
        .await
        .map_err(|e| after_late_answer(late, PromptStep::HostKey, e))?;
    Ok((conn, admission))
}

/// Passes the host's checks; returns what the session may do. A ticket in
/// `resumption` for this host is offered instead of the one-time password,
/// with the password proven last time; the host's new ticket is kept there.
pub async fn authenticate<S>(
    conn: &mut FramedIo<SecureStream<S>>,
    macs: Vec<String>,
    ui: &mut dyn Interaction,
    resumption: &Resumption,
) -> Result<Admission, ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let context = conn.get_ref().handshake_hash().to_vec();
    let host_key = conn.get_ref().peer_key().to_vec();
    let resume = resumption.take_for(&host_key);
    let (ticket, mut known_password) = match resume {
        Some(held) => (Some(held.ticket), Some(held.password)),
        None => (None, None),
    };
    send(
        conn,
        &ClientMsg::Hello {
            macs,
            resume: ticket,
        },
    )
    .await?;
    let mut otp_prompt = None;
    let mut proven = None;
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
                proven = Some(prove_password(conn, ui, &context, known_password.take()).await?);
            }
            HostMsg::Welcome {
                share_allowed,
                clipboard_allowed,
                audio_allowed,
                raw_allowed,
                resume,
            } => {
                ui.progress(Progress::Admitted);
                if let (Some(resume), Some(password)) = (resume, proven) {
                    resumption.keep(Held {
                        ticket: resume.ticket,
                        host_key,
                        password,
                    });
                }
                return Ok(Admission {
                    share_allowed,
                    clipboard_allowed,
                    audio_allowed,
                    raw_allowed,
                });
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
    let (answer, late) = ask_person(ui, prompt, PromptStep::Otp).await?;
    let (code, emergency) = match answer {
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
    send(conn, &msg)
        .await
        .map_err(|e| after_late_answer(late, PromptStep::Otp, e))
}

/// Proves the host password — `known` first if given (the one proven
/// before a reconnect), else asking the user — and returns it.
async fn prove_password<S>(
    conn: &mut FramedIo<S>,
    ui: &mut dyn Interaction,
    context: &[u8],
    mut known: Option<Zeroizing<String>>,
) -> Result<Zeroizing<String>, ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut retry = false;
    loop {
        let from_memory = known.is_some();
        let (password, late) = match known.take() {
            Some(password) => (password, false),
            None => {
                let prompt = Prompt::HostPassword { retry };
                match ask_person(ui, prompt, PromptStep::HostPassword).await? {
                    (Answer::Secret(p), late) => (p, late),
                    (other, _) => {
                        let after = retry.then(|| {
                            ConnectError::HostPasswordRefused("the host password is wrong".into())
                        });
                        return Err(gave_up(other, after));
                    }
                }
            }
        };
        let late_lost = |e| after_late_answer(late, PromptStep::HostPassword, e);
        let bad = |e: opaque::OpaqueError| ConnectError::HostRefused(e.to_string());
        let (state, request) = opaque::client_start(password.as_bytes()).map_err(bad)?;
        send(conn, &ClientMsg::PasswordStart { request })
            .await
            .map_err(late_lost)?;
        let HostMsg::PasswordChallenge { response } = recv(conn).await.map_err(late_lost)? else {
            return Err(ConnectError::HostRefused(
                "expected the password challenge".into(),
            ));
        };
        match opaque::client_finish(state, password.as_bytes(), &response, context) {
            Ok(finalization) => {
                send(conn, &ClientMsg::PasswordFinish { finalization }).await?;
                return Ok(password);
            }
            // The host counts this when we start again or leave. A password
            // kept from before that no longer works was changed meanwhile:
            // the user is asked as if for the first time.
            Err(opaque::OpaqueError::WrongPassword) => retry = !from_memory,
            Err(e) => return Err(bad(e)),
        }
    }
}
