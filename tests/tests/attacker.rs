//! The host against someone guessing its secrets on purpose: a client of
//! our own protocol (common::hostile) tries passwords and codes through
//! every path a real client never takes, from many source addresses. The
//! relay and the host run in this process; the host's clock is the test's,
//! so hours of lockout pass without sleeping.

mod common;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use common::hostile::{self, Target};
use proto::auth::{ClientMsg, HostMsg, Refusal};
use proto::channel::StaticKey;

const PASSWORD: &str = "Kettle-Orbit-Tofu-93";

/// The host's clock, moved by the test.
struct TestClock(Mutex<SystemTime>);

impl host::Clock for TestClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap()
    }
}

impl TestClock {
    fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

/// A relay and a host with the test's clock, in this process.
struct World {
    rt: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
    clock: Arc<TestClock>,
    target: Target,
    config: PathBuf,
    totp_secret: Vec<u8>,
}

impl World {
    fn start(id: &str, otp: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        relay::init(dir.path(), &["127.0.0.1".into()]).unwrap();
        let ca = dir.path().join(relay::CA_FILE);
        let config = dir.path().join("host.toml");
        host::HostConfig::init(
            &config,
            host::InitOptions {
                id: id.into(),
                relay: "127.0.0.1:9".into(),
                relay_ca: ca,
                // Nobody gets this far without the password; no RDP here.
                target: Some("127.0.0.1:9".into()),
                proxy: None,
                enrolment_token: None,
            },
        )
        .unwrap();
        host::admin::set_password(&config, PASSWORD).unwrap();
        let totp_secret = if otp {
            host::admin::enrol_totp(&config).unwrap();
            host::secrets::Secrets::load(&host::HostConfig::secrets_path(&config))
                .unwrap()
                .totp
                .unwrap()
                .secret
        } else {
            Vec::new()
        };
        let clock = Arc::new(TestClock(Mutex::new(SystemTime::now())));
        Self::launch(dir, config, clock, totp_secret)
    }

    /// Starts the relay and the host of `dir` in a runtime of their own.
    fn launch(
        dir: tempfile::TempDir,
        config: PathBuf,
        clock: Arc<TestClock>,
        totp_secret: Vec<u8>,
    ) -> Self {
        let rt = tokio::runtime::Runtime::new().unwrap();
        // The relay's own limits are not what this test is about (see
        // flood.rs): here every attempt must reach the host.
        let limits = relay::Limits {
            pairing_per_ip: None,
            pairing_per_id: None,
            ..relay::Limits::default()
        };
        let relay_addr = rt.block_on(async {
            let relay = relay::Relay::bind(relay::RelayConfig {
                limits,
                ..relay::RelayConfig::new(dir.path().to_owned(), "127.0.0.1:0".parse().unwrap())
            })
            .await
            .unwrap();
            let addr = relay.local_addr();
            tokio::spawn(relay.run());
            addr
        });
        let mut host_config = host::HostConfig::load(&config).unwrap();
        host_config.relay = relay_addr.to_string();
        host_config.save(&config).unwrap();
        let (online_tx, mut online) = tokio::sync::watch::channel(false);
        let options = host::RunOptions {
            online: Some(online_tx),
            clock: clock.clone(),
        };
        let run_config = config.clone();
        rt.spawn(async move { host::run_with(&run_config, options).await });
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(20), online.wait_for(|up| *up))
                .await
                .expect("the host comes online")
                .unwrap();
        });
        let target = Target::new(
            &relay_addr.to_string(),
            &dir.path().join(relay::CA_FILE),
            host_config.id.as_str(),
        );
        Self {
            rt,
            target,
            dir,
            clock,
            config,
            totp_secret,
        }
    }

    /// Stops the host (and its relay) and starts both again, the host's
    /// clock going on where it was.
    fn restart_host(self) -> Self {
        let Self {
            rt,
            dir,
            clock,
            config,
            totp_secret,
            ..
        } = self;
        rt.shutdown_timeout(Duration::from_secs(5));
        // The host's keeper thread writes its last state as the host goes.
        std::thread::sleep(Duration::from_millis(300));
        Self::launch(dir, config, clock, totp_secret)
    }

    fn audit(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.config.with_extension("audit.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The authenticator code at the host's time, `ahead` steps later.
    fn totp(&self, ahead: u64) -> String {
        let now = self
            .clock
            .now_secs()
            .checked_add(ahead * host::otp::STEP_SECS)
            .unwrap();
        host::otp::totp_code(&self.totp_secret, now, host::otp::DIGITS)
    }
}

impl TestClock {
    fn now_secs(&self) -> u64 {
        use host::Clock as _;
        self.now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }
}

fn loopback(n: u32) -> IpAddr {
    IpAddr::from((0x7f00_0000u32 + n).to_be_bytes())
}

/// What an attacker does once the host asks for the password.
#[derive(Debug, Clone, Copy)]
enum Path {
    /// Guesses, then sends a made-up proof.
    Finish,
    /// Guesses, then hangs up.
    Abandon,
    /// Guesses, then sends its hello again.
    OutOfOrder,
    /// Guesses twice in one connection.
    Restart,
    /// Hangs up at the prompt without guessing.
    Silent,
}

const PATHS: [Path; 5] = [
    Path::Finish,
    Path::Abandon,
    Path::OutOfOrder,
    Path::Restart,
    Path::Silent,
];

#[derive(Debug, Default)]
struct Outcome {
    /// Password challenges received: each one is a guess tested offline.
    guesses: u32,
    /// Times the host asked for the password.
    prompts: u32,
    /// The host refused with a lockout: seconds to wait, and its words.
    locked: Option<(u64, String)>,
    admitted: bool,
}

impl Outcome {
    /// Attempts the host took: one per prompt, and one more per guess
    /// after the first in the same connection.
    fn charges(&self) -> u32 {
        if self.prompts == 0 {
            0
        } else {
            self.prompts.max(self.guesses)
        }
    }
}

/// One connection from `source` that answers the host's questions: the
/// one-time password `otp` if asked, then `password` along `path`; as
/// `device` if given, else as a device never seen before.
async fn attack(
    target: &Target,
    (source, device): (IpAddr, Option<&StaticKey>),
    otp: Option<&str>,
    path: Path,
    password: &str,
) -> Outcome {
    let mut out = Outcome::default();
    let pipe = hostile::pair_from(target, source)
        .await
        .expect("the relay pairs every attempt here");
    let fresh;
    let device = match device {
        Some(device) => device,
        None => {
            fresh = StaticKey::generate().unwrap();
            &fresh
        }
    };
    let (mut conn, context) = hostile::secure_as(pipe, device).await.unwrap();
    hostile::send(
        &mut conn,
        &ClientMsg::Hello {
            macs: vec![],
            resume: None,
        },
    )
    .await
    .unwrap();
    let mut msg = hostile::recv(&mut conn).await;
    if let Some(HostMsg::OtpRequired { .. }) = msg {
        let code = otp.expect("a code to give").to_owned();
        let answer = ClientMsg::Otp {
            code,
            emergency: false,
        };
        hostile::send(&mut conn, &answer).await.unwrap();
        msg = hostile::recv(&mut conn).await;
    }
    match msg {
        Some(HostMsg::PasswordRequired) => out.prompts += 1,
        Some(HostMsg::Refused {
            reason: Refusal::LockedOut { retry_after_secs },
            message,
        }) => {
            out.locked = Some((retry_after_secs, message));
            return out;
        }
        Some(HostMsg::OtpWrong { .. }) => return out,
        other => panic!("unexpected answer from {source}: {other:?}"),
    }
    let mut last = None;
    let rounds = match path {
        Path::Silent => 0,
        Path::Restart => 2,
        _ => 1,
    };
    let mut finalization = Vec::new();
    for _ in 0..rounds {
        match hostile::guess(&mut conn, &context, password, &mut last)
            .await
            .unwrap()
        {
            Some((right, fin)) => {
                out.guesses += 1;
                if right {
                    finalization = fin;
                    break;
                }
            }
            None => break,
        }
    }
    if let Some(HostMsg::Refused {
        reason: Refusal::LockedOut { retry_after_secs },
        message,
    }) = last
    {
        out.locked = Some((retry_after_secs, message));
        return out;
    }
    if !finalization.is_empty() {
        hostile::send(&mut conn, &ClientMsg::PasswordFinish { finalization })
            .await
            .unwrap();
        out.admitted = matches!(
            hostile::recv(&mut conn).await,
            Some(HostMsg::Welcome { .. })
        );
        return out;
    }
    match path {
        Path::Finish => {
            // A proof made up without the password.
            let finalization = vec![0x5a; 64];
            hostile::send(&mut conn, &ClientMsg::PasswordFinish { finalization })
                .await
                .unwrap();
            let answer = hostile::recv(&mut conn).await;
            assert!(
                matches!(
                    answer,
                    Some(HostMsg::Refused {
                        reason: Refusal::Password,
                        ..
                    })
                ),
                "{answer:?}"
            );
        }
        Path::OutOfOrder => {
            hostile::send(
                &mut conn,
                &ClientMsg::Hello {
                    macs: vec![],
                    resume: None,
                },
            )
            .await
            .unwrap();
            let answer = hostile::recv(&mut conn).await;
            assert!(
                matches!(
                    answer,
                    Some(HostMsg::Refused {
                        reason: Refusal::Protocol,
                        ..
                    })
                ),
                "{answer:?}"
            );
        }
        Path::Abandon | Path::Restart | Path::Silent => {}
    }
    drop(conn);
    out
}

fn count(log: &[serde_json::Value], step: &str, result: &str) -> usize {
    log.iter()
        .filter(|e| e["step"] == step && e["result"] == result)
        .count()
}

/// The audit log once it satisfies `done` (the host audits an abandoned
/// attempt when it notices the hang-up, a moment after the attacker moved on).
fn audit_when(
    world: &World,
    done: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    for _ in 0..400 {
        let log = world.audit();
        if done(&log) {
            return log;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    world.audit()
}

#[test]
fn fifty_password_guesses_are_counted_slowed_to_the_stated_rate_and_audited() {
    let world = World::start("guessed-pc", false);
    let laptop = StaticKey::generate().unwrap();
    let owner = world.rt.block_on(attack(
        &world.target,
        (loopback(1), Some(&laptop)),
        None,
        Path::Finish,
        PASSWORD,
    ));
    assert!(owner.admitted, "{owner:?}");

    let rate = host::lockout::HOST_RATE;
    let (mut guesses, mut charges, mut elapsed) = (0u32, 0u32, Duration::ZERO);
    let mut source_locked = false;
    let mut host_locked = false;
    let mut attempt = 0u32;
    while guesses < 50 {
        // The first attempts come from one address; then a new one each time.
        let source = if attempt < 6 {
            loopback(2)
        } else {
            loopback(10 + attempt)
        };
        let path = PATHS[attempt as usize % PATHS.len()];
        let wrong = format!("Guess-{attempt}-Wrong!");
        let out = world
            .rt
            .block_on(attack(&world.target, (source, None), None, path, &wrong));
        assert!(!out.admitted, "a wrong password was admitted: {out:?}");
        guesses += out.guesses;
        charges += out.charges();
        // The stated rate: the burst, then one every interval, however many
        // addresses it comes from.
        let allowed = rate.burst + (elapsed.as_secs() / rate.interval.as_secs()) as u32;
        assert!(
            charges <= allowed,
            "{charges} attempts after {elapsed:?}: more than {allowed}"
        );
        if let Some((wait, message)) = out.locked {
            if message.contains(&format!("from {}", loopback(2))) {
                source_locked = true;
            }
            if message.contains("from many places") {
                host_locked = true;
                assert!(wait <= rate.interval.as_secs(), "{wait} s");
            }
            let wait = Duration::from_secs(wait);
            world.clock.advance(wait);
            elapsed += wait;
        }
        attempt += 1;
        assert!(attempt < 1000, "the attack never got its 50 guesses");
    }
    assert!(source_locked, "one address's five failures lock it");
    assert!(host_locked, "many addresses meet the host-wide budget");
    // 50 guesses took at least the burst plus one interval per guess beyond it.
    let least = rate.interval * (50 - rate.burst);
    assert!(elapsed >= least, "50 guesses in {elapsed:?}");

    // Every attempt the host took is in the audit log as a failure, with
    // what the attacker did.
    let failures = |log: &[serde_json::Value]| count(log, "password", "fail");
    let log = audit_when(&world, |log| failures(log) >= charges as usize);
    assert_eq!(failures(&log), charges as usize, "{log:#?}");
    for detail in [
        "password proof invalid",
        "abandoned",
        "out-of-order message",
        "wrong password",
    ] {
        assert!(
            log.iter()
                .any(|e| e["step"] == "password"
                    && e["detail"].as_str().unwrap_or("").contains(detail)),
            "no {detail:?} in the audit log"
        );
    }
    assert!(count(&log, "lockout", "refused") > 0);

    // Once strangers have used up their budget, they are held off even
    // with the right password; the owner's laptop, from anywhere, is not.
    for n in 0..=rate.burst {
        let out = world.rt.block_on(attack(
            &world.target,
            (loopback(2000 + n), None),
            None,
            Path::Silent,
            "",
        ));
        if out.locked.is_some() {
            break;
        }
    }
    let stranger = loopback(250);
    let now = world.rt.block_on(attack(
        &world.target,
        (stranger, None),
        None,
        Path::Finish,
        PASSWORD,
    ));
    let (wait, _) = now.locked.expect("strangers are held off");
    let owner = world.rt.block_on(attack(
        &world.target,
        (loopback(3000), Some(&laptop)),
        None,
        Path::Finish,
        PASSWORD,
    ));
    assert!(owner.admitted, "the owner is kept out: {owner:?}");
    // And the budget comes back by itself.
    world.clock.advance(Duration::from_secs(wait));
    let later = world.rt.block_on(attack(
        &world.target,
        (stranger, None),
        None,
        Path::Finish,
        PASSWORD,
    ));
    assert!(later.admitted, "{later:?}");
}

#[test]
fn strangers_failing_codes_do_not_lock_out_the_owners_device_wherever_it_is() {
    let world = World::start("coded-pc", true);
    let home = loopback(1);
    let laptop = StaticKey::generate().unwrap();
    let first = world.rt.block_on(attack(
        &world.target,
        (home, Some(&laptop)),
        Some(&world.totp(0)),
        Path::Finish,
        PASSWORD,
    ));
    assert!(first.admitted, "{first:?}");

    // Wrong codes from many addresses until the host stops asking strangers.
    let mut locked = None;
    for n in 0..40 {
        let out = world.rt.block_on(attack(
            &world.target,
            (loopback(20 + n), None),
            Some("000000"),
            Path::Finish,
            "never asked",
        ));
        assert_eq!(out.prompts, 0, "a wrong code reached the password");
        if out.locked.is_some() {
            locked = out.locked;
            break;
        }
    }
    let (_, message) = locked.expect("wrong codes from many places lock strangers out");
    assert!(message.contains("from many places"), "{message}");
    let log = audit_when(&world, |log| count(log, "otp", "fail") >= 10);
    assert!(count(&log, "otp", "fail") >= 10, "{log:#?}");

    // A stranger with the right code waits: the host cannot tell it from
    // the attacker before the code is checked.
    world
        .clock
        .advance(Duration::from_secs(host::otp::STEP_SECS));
    let new_device = world.rt.block_on(attack(
        &world.target,
        (loopback(150), None),
        Some(&world.totp(0)),
        Path::Finish,
        PASSWORD,
    ));
    assert!(new_device.locked.is_some(), "{new_device:?}");
    // The owner's laptop, from a hotel it never used, with a fresh code:
    // admitted, because the host knows the device.
    let owner = world.rt.block_on(attack(
        &world.target,
        (loopback(151), Some(&laptop)),
        Some(&world.totp(0)),
        Path::Finish,
        PASSWORD,
    ));
    assert!(owner.admitted, "{owner:?}");

    // A restart keeps both: strangers are still held off, the laptop known.
    let restarted = world.restart_host();
    let stranger = restarted.rt.block_on(attack(
        &restarted.target,
        (loopback(152), None),
        Some("000000"),
        Path::Finish,
        "",
    ));
    assert!(
        stranger.locked.is_some(),
        "a restart refilled the budget: {stranger:?}"
    );
    restarted
        .clock
        .advance(Duration::from_secs(host::otp::STEP_SECS));
    let owner = restarted.rt.block_on(attack(
        &restarted.target,
        (loopback(153), Some(&laptop)),
        Some(&restarted.totp(0)),
        Path::Finish,
        PASSWORD,
    ));
    assert!(owner.admitted, "{owner:?}");
}

/// What the host asked a device that came back with `ticket`: whether it
/// asked for a code (answered with `otp` if given), and the ticket of its
/// welcome if the device got that far. The connection closes at the end.
async fn come_back(
    target: &Target,
    device: &StaticKey,
    ticket: Option<Vec<u8>>,
    otp: Option<&str>,
) -> (bool, Option<Vec<u8>>) {
    let pipe = hostile::pair_from(target, loopback(1)).await.unwrap();
    let (mut conn, context) = hostile::secure_as(pipe, device).await.unwrap();
    let hello = ClientMsg::Hello {
        macs: vec![],
        resume: ticket,
    };
    hostile::send(&mut conn, &hello).await.unwrap();
    let mut msg = hostile::recv(&mut conn).await;
    let otp_asked = matches!(msg, Some(HostMsg::OtpRequired { .. }));
    if otp_asked {
        let Some(code) = otp else {
            return (true, None);
        };
        let answer = ClientMsg::Otp {
            code: code.into(),
            emergency: false,
        };
        hostile::send(&mut conn, &answer).await.unwrap();
        msg = hostile::recv(&mut conn).await;
    }
    assert_eq!(msg, Some(HostMsg::PasswordRequired));
    let mut last = None;
    let proof = hostile::guess(&mut conn, &context, PASSWORD, &mut last).await;
    let Ok(Some((true, finalization))) = proof else {
        panic!("the password step failed: {last:?}");
    };
    let finish = ClientMsg::PasswordFinish { finalization };
    hostile::send(&mut conn, &finish).await.unwrap();
    match hostile::recv(&mut conn).await {
        Some(HostMsg::Welcome {
            resume: Some(resume),
            ..
        }) => {
            assert_eq!(resume.after_end_secs, 300);
            (otp_asked, Some(resume.ticket))
        }
        other => panic!("not welcomed with a ticket: {other:?}"),
    }
}

#[test]
fn a_resume_ticket_skips_the_code_once_for_its_device_until_it_expires() {
    let world = World::start("resumed-pc", true);
    let laptop = StaticKey::generate().unwrap();
    let thief = StaticKey::generate().unwrap();
    let back = |device: &StaticKey, ticket: &[u8], otp: Option<&str>| {
        world
            .rt
            .block_on(come_back(&world.target, device, Some(ticket.to_vec()), otp))
    };
    let sessions_ended = |n: usize| {
        let log = audit_when(&world, |log| {
            log.iter()
                .filter(|e| e["detail"].as_str().unwrap().starts_with("ended after"))
                .count()
                >= n
        });
        assert!(log.len() > n, "{log:#?}");
    };

    // A full logon, then the connection drops.
    let (asked, first) = world.rt.block_on(come_back(
        &world.target,
        &laptop,
        None,
        Some(&world.totp(0)),
    ));
    assert!(asked);
    let first = first.unwrap();
    sessions_ended(1);

    // Back with the ticket: no code asked, the password still proven.
    let (asked, second) = back(&laptop, &first, None);
    assert!(!asked, "the ticket did not stand in for the code");
    let second = second.unwrap();
    sessions_ended(2);
    // The same ticket again is a replay: the full logon is asked.
    assert_eq!(back(&laptop, &first, None), (true, None));

    // Another device holding a stolen ticket is asked for the code, and
    // the ticket is spent (its rightful holder gives the code next time).
    assert_eq!(back(&thief, &second, None), (true, None));
    assert_eq!(back(&laptop, &second, None), (true, None));

    // A made-up ticket gets nothing either.
    assert_eq!(back(&laptop, &[7; 32], None), (true, None));

    // After the grace period since the session ended, a ticket has expired.
    world
        .clock
        .advance(Duration::from_secs(host::otp::STEP_SECS));
    let (_, third) = world.rt.block_on(come_back(
        &world.target,
        &laptop,
        None,
        Some(&world.totp(0)),
    ));
    sessions_ended(3);
    world.clock.advance(host::resume::AFTER_END);
    assert_eq!(back(&laptop, &third.unwrap(), None), (true, None));

    let log = world.audit();
    let detail = |d: &str| log.iter().filter(|e| e["detail"] == d).count();
    assert_eq!(
        detail("skipped: resume ticket of a session admitted before"),
        1
    );
    assert_eq!(
        detail("resume ticket not accepted (unknown or already used)"),
        3,
        "{log:#?}"
    );
    assert_eq!(
        detail("resume ticket not accepted (presented by another device)"),
        1
    );
    assert_eq!(detail("resume ticket not accepted (expired)"), 1);
}
