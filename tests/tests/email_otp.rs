//! Mailed one-time codes through a real SMTP server (aiosmtpd on loopback):
//! the host runs in this process so that its clock can be moved forward
//! (expiry, lockout back-off); relay and test desktop are processes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use client_core::interaction::BoxFuture;
use client_core::known_hosts::MemoryPins;
use client_core::native::{self, RdpOptions, RelayTarget};
use client_core::{Answer, ConnectError, Interaction, OtpKind, Prompt, RdpCredentials};
use common::*;
use zeroize::Zeroizing;

const USER: &str = "erin";
const PASSWORD: &str = "Desk-top-9";
const OWNER: &str = "taro@example.jp";

/// The host's clock: real time plus an offset the test moves forward.
#[derive(Default)]
struct TestClock(AtomicU64);

impl TestClock {
    fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl host::Clock for TestClock {
    fn now(&self) -> SystemTime {
        SystemTime::now() + Duration::from_secs(self.0.load(Ordering::SeqCst))
    }
}

/// aiosmtpd delivering into `dir/Maildir`.
fn smtp_server(dir: &Path) -> (Proc, String, PathBuf) {
    let port = free_port();
    let maildir = dir.join("Maildir");
    let proc = Proc::start_cmd(
        "aiosmtpd",
        Command::new("/usr/bin/python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir),
    );
    let addr = format!("127.0.0.1:{port}");
    wait_listening(&addr, Duration::from_secs(20));
    (proc, addr, maildir.join("new"))
}

/// Decodes a quoted-printable body.
fn quoted_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "").replace("=\n", "");
    let mut out = Vec::new();
    let bytes = joined.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).expect("the mail body is UTF-8")
}

/// Waits (bounded) for mail number `n` (1-based) and returns its decoded body.
fn wait_for_mail(new_dir: &Path, n: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut files: Vec<_> = std::fs::read_dir(new_dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        if files.len() >= n {
            files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
            let raw = std::fs::read_to_string(&files[n - 1]).unwrap();
            assert!(raw.contains(&format!("To: {OWNER}")), "{raw}");
            let body = raw
                .split_once("\n\n")
                .or_else(|| raw.split_once("\r\n\r\n"))
                .unwrap()
                .1;
            return quoted_printable(body);
        }
        assert!(
            Instant::now() < deadline,
            "mail {n} never arrived in {}",
            new_dir.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn code_in(body: &str, id: &str) -> String {
    let marker = format!("Code for remote access to {id}: ");
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no code in:\n{body}"))
        + marker.len();
    body[start..start + 6].to_owned()
}

/// What the person at the keyboard does when asked for the mailed code.
#[derive(Clone, Copy)]
enum Plan {
    /// Types the code from the mail.
    Right,
    /// Waits too long (the host's clock jumps 301 s), then types it.
    TooLate,
    /// Types wrong codes, every time.
    Wrong,
}

struct Person {
    plan: Plan,
    mails_before: usize,
    new_dir: PathBuf,
    clock: Arc<TestClock>,
    asked: Arc<Mutex<Vec<Option<u32>>>>,
    mail_body: Arc<Mutex<String>>,
}

impl Interaction for Person {
    fn ask(&mut self, prompt: Prompt) -> BoxFuture<'_, Answer> {
        Box::pin(async move {
            match prompt {
                Prompt::NewHostKey { .. } => Answer::Accept,
                Prompt::HostPassword { retry: false } => {
                    Answer::Secret(Zeroizing::new(HOST_PASSWORD.into()))
                }
                Prompt::HostPassword { retry: true } | Prompt::RemoteLogon { .. } => Answer::Cancel,
                Prompt::Otp { kind, last, .. } => {
                    assert_eq!(
                        kind,
                        OtpKind::Email {
                            masked_to: "t***@example.jp".into()
                        }
                    );
                    self.asked.lock().unwrap().push(last.map(|l| l.tries_left));
                    let (dir, n) = (self.new_dir.clone(), self.mails_before + 1);
                    let body = tokio::task::spawn_blocking(move || wait_for_mail(&dir, n))
                        .await
                        .unwrap();
                    *self.mail_body.lock().unwrap() = body.clone();
                    let code = code_in(&body, "mail-pc");
                    match self.plan {
                        Plan::Right => Answer::Otp(Zeroizing::new(code)),
                        Plan::TooLate => {
                            self.clock.advance(301);
                            Answer::Otp(Zeroizing::new(code))
                        }
                        Plan::Wrong => {
                            let wrong =
                                format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
                            Answer::Otp(Zeroizing::new(wrong))
                        }
                    }
                }
            }
        })
    }
}

#[test]
fn mailed_codes_arrive_expire_and_run_out() {
    let work = tempfile::tempdir().unwrap();
    let (_smtp, smtp_addr, new_dir) = smtp_server(work.path());
    let relay = RelayProc::start(&[]);
    let (_desktop, desktop_addr) = test_desktop(USER, PASSWORD);

    // The owner's set-up, with the real commands.
    let config = work.path().join("mail-pc.toml");
    let c = config.to_str().unwrap();
    let ca = relay.ca();
    init_host(
        &config,
        "mail-pc",
        &relay.addr,
        &ca,
        Some(&desktop_addr),
        &[],
    );
    set_host_password(&config, HOST_PASSWORD);
    let (code, out) = run(
        "thin-host",
        &[
            "otp",
            "email",
            "--config",
            c,
            "--to",
            OWNER,
            "--smtp",
            &smtp_addr,
            "--smtp-tls",
            "none",
            "--from",
            "thin-host <noreply@example.jp>",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Emergency codes"), "{out}");

    let rt = tokio::runtime::Runtime::new().unwrap();
    let clock = Arc::new(TestClock::default());
    let (online_tx, mut online) = tokio::sync::watch::channel(false);
    let host_clock: Arc<dyn host::Clock> = clock.clone();
    let host_task = rt.spawn({
        let config = config.clone();
        async move {
            let options = host::RunOptions {
                online: Some(online_tx),
                clock: host_clock,
            };
            let _ = host::run_with(&config, options).await;
        }
    });
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(20), online.wait_for(|up| *up))
            .await
            .expect("the host registers")
            .unwrap();
    });

    let target = RelayTarget {
        addr: relay.addr.clone(),
        ca: relay.ca(),
        proxy: None,
    };
    let pins = MemoryPins::default();
    let mails = Arc::new(Mutex::new(0usize));
    let attempt = |plan: Plan| {
        let asked = Arc::new(Mutex::new(Vec::new()));
        let body = Arc::new(Mutex::new(String::new()));
        let mut person = Person {
            plan,
            mails_before: *mails.lock().unwrap(),
            new_dir: new_dir.clone(),
            clock: clock.clone(),
            asked: asked.clone(),
            mail_body: body.clone(),
        };
        let result = rt.block_on(async {
            tokio::time::timeout(
                Duration::from_secs(60),
                native::open_channel(&target, "mail-pc", &pins, &mut person, &Default::default()),
            )
            .await
            .expect("bounded")
            .map(|(_, admission)| admission)
        });
        if !body.lock().unwrap().is_empty() {
            *mails.lock().unwrap() += 1;
        }
        let asked = asked.lock().unwrap().clone();
        let body = body.lock().unwrap().clone();
        (result, asked, body)
    };

    // The right code from the mail lets the person in; the mail says when
    // and from where, in Japanese and English.
    let (result, asked, body) = attempt(Plan::Right);
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(asked, vec![None]);
    assert!(
        body.contains("mail-pc へのリモート接続の確認コード: "),
        "{body}"
    );
    assert!(body.contains("接続元: 127.0.0.1 ("), "{body}");
    assert!(body.contains("Attempt from 127.0.0.1 at "), "{body}");
    assert!(body.contains("Valid for 5 minutes"), "{body}");
    // …and the whole session works after it.
    rt.block_on(async {
        let rdp = RdpOptions {
            creds: RdpCredentials {
                user: USER.into(),
                password: PASSWORD.into(),
                domain: None,
            },
            screens: (1024, 768).into(),
            frame_timeout: Duration::from_secs(30),
            share: None,
        };
        let mut person = Person {
            plan: Plan::Right,
            mails_before: *mails.lock().unwrap(),
            new_dir: new_dir.clone(),
            clock: clock.clone(),
            asked: Arc::default(),
            mail_body: Arc::default(),
        };
        let (mut session, _) =
            native::connect_and_wait_frame(&target, "mail-pc", &rdp, &pins, &mut person)
                .await
                .expect("a full session after the mailed code");
        session.disconnect().await.unwrap();
    });
    *mails.lock().unwrap() += 1;

    // A code used after its 5 minutes is refused.
    let (result, _, _) = attempt(Plan::TooLate);
    match result {
        Err(ConnectError::OtpRefused(message)) => assert!(message.contains("expired"), "{message}"),
        other => panic!("an expired code was not refused: {other:?}"),
    }

    // Wrong codes: the expired one above already counted, so after three
    // more wrong tries (each told how many are left) the fifth failure in a
    // row locks the source out; no further try is taken.
    let (result, asked, _) = attempt(Plan::Wrong);
    assert_eq!(asked, vec![None, Some(3), Some(2), Some(1)]);
    match &result {
        Err(ConnectError::LockedOut {
            retry_after_secs,
            message,
        }) => {
            assert!(
                *retry_after_secs > 0 && *retry_after_secs <= 60,
                "{retry_after_secs}"
            );
            assert!(message.contains("too many failed attempts"), "{message}");
        }
        other => panic!("repeated wrong codes did not lock out: {other:?}"),
    }
    // Still locked: refused before any mail is sent.
    let (result, asked, _) = attempt(Plan::Right);
    assert!(
        matches!(result, Err(ConnectError::LockedOut { .. })),
        "{result:?}"
    );
    assert!(asked.is_empty());

    // After the back-off, a fresh code works again.
    clock.advance(61);
    let (result, _, _) = attempt(Plan::Right);
    assert!(result.is_ok(), "{result:?}");

    host_task.abort();
}
