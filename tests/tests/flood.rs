//! Floods of connection attempts for one computer: the relay limits them,
//! the host holds a bounded number of sessions waiting for admission, every
//! refusal says why, and the owner still gets in.

mod common;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::hostile::{self, Stopped, Target};
use common::*;
use proto::auth::{ClientMsg, HostMsg, Refusal};
use proto::relay::ErrorCode;

const USER: &str = "flo";
const PASSWORD: &str = "Rdp-pass-flood";

fn loopback(n: u32) -> IpAddr {
    IpAddr::from((0x7f00_0000u32 + n).to_be_bytes())
}

/// How one flooding connection ended.
enum Ending {
    /// The host asked for a secret: a session held open, waiting.
    Held(#[allow(dead_code)] Box<hostile::Channel>),
    /// Refused with these words, by the relay or the host.
    Refused(String),
    Other(String),
}

/// Pairs from `source`, opens the channel, says hello and waits for the
/// host's question, which it never answers.
async fn flood_one(target: Target, source: IpAddr) -> Ending {
    let pipe = match hostile::pair_from(&target, source).await {
        Ok(pipe) => pipe,
        Err(Stopped::Relay(code, message)) => {
            return Ending::Refused(format!("relay {code:?}: {message}"))
        }
        Err(Stopped::Silent(why)) => return Ending::Other(why),
    };
    let Ok((mut conn, _)) = hostile::secure(pipe).await else {
        return Ending::Other("no end-to-end channel".into());
    };
    if hostile::send(
        &mut conn,
        &ClientMsg::Hello {
            macs: vec![],
            resume: None,
        },
    )
    .await
    .is_err()
    {
        return Ending::Other("hello not sent".into());
    }
    match hostile::recv(&mut conn).await {
        Some(HostMsg::PasswordRequired | HostMsg::OtpRequired { .. }) => {
            Ending::Held(Box::new(conn))
        }
        Some(HostMsg::Refused { reason, message }) => {
            Ending::Refused(format!("host {reason:?}: {message}"))
        }
        other => Ending::Other(format!("{other:?}")),
    }
}

#[test]
fn a_flood_for_one_id_is_refused_with_reasons_and_the_owner_still_connects() {
    let work = tempfile::tempdir().unwrap();
    let relay = RelayProc::start(&[]);
    let (_desktop, desktop_addr) = test_desktop(USER, PASSWORD);
    let host = HostProc::start(work.path(), &relay, "flooded-pc", &desktop_addr);
    let shot = work.path().join("shot.png");
    let connect = {
        let (addr, ca, shot) = (relay.addr.clone(), relay.ca(), shot.clone());
        move || thin_client_connect(&addr, &ca, "flooded-pc", (USER, PASSWORD), &shot, &[])
    };
    // The owner has connected from home before.
    let (code, out) = connect();
    assert_eq!(code, 0, "{out}");

    // 100 pairing requests a second for 5 s, from two addresses; the owner
    // connects in the middle of it.
    let target = Target::new(&relay.addr, &relay.ca(), "flooded-pc");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let results = Arc::new(Mutex::new(Vec::new()));
    let owner = std::thread::spawn({
        let connect = connect.clone();
        move || {
            std::thread::sleep(Duration::from_millis(2500));
            connect()
        }
    });
    rt.block_on(async {
        let mut tasks = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        for n in 0..500 {
            tick.tick().await;
            let (target, results) = (target.clone(), results.clone());
            tasks.push(tokio::spawn(async move {
                let result = flood_one(target, loopback(2 + n % 2)).await;
                results.lock().unwrap().push(result);
            }));
        }
        for task in tasks {
            tokio::time::timeout(Duration::from_secs(60), task)
                .await
                .expect("every flooding connection ends or waits")
                .unwrap();
        }
    });
    let (code, out) = owner.join().unwrap();
    assert_eq!(code, 0, "the owner was kept out during the flood: {out}");
    assert!(
        find_picture(&shot).is_some(),
        "the owner's session shows the desktop"
    );

    let results = std::mem::take(&mut *results.lock().unwrap());
    let held = results
        .iter()
        .filter(|r| matches!(r, Ending::Held(_)))
        .count();
    let refusals: Vec<&String> = results
        .iter()
        .filter_map(|r| match r {
            Ending::Refused(why) => Some(why),
            _ => None,
        })
        .collect();
    let others: Vec<&String> = results
        .iter()
        .filter_map(|r| match r {
            Ending::Other(why) => Some(why),
            _ => None,
        })
        .collect();
    assert!(
        others.is_empty(),
        "attempts ended without a reason: {others:?}"
    );
    assert_eq!(held + refusals.len(), 500);
    // Sessions held at a question cost the strangers' budget: a handful.
    assert!(
        held <= host::lockout::HOST_RATE.burst as usize,
        "{held} sessions held"
    );
    assert!(held <= host::MAX_UNADMITTED);
    // Most were turned away by the relay, per address; the rest by the host.
    let by_relay = refusals
        .iter()
        .filter(|r| {
            r.starts_with("relay RateLimited: too many connection attempts from your address")
        })
        .count();
    assert!(
        by_relay >= 400,
        "{by_relay} refused by the relay: {refusals:?}"
    );
    for why in &refusals {
        assert!(
            why.contains("too many") || why.contains("try again"),
            "a refusal that does not say why: {why}"
        );
    }
    drop(results);
    drop(host);
}

#[test]
fn the_host_holds_a_bounded_number_of_sessions_waiting_for_admission() {
    use host::{KEPT_FOR_KNOWN, MAX_UNADMITTED, MAX_UNADMITTED_PER_SOURCE};
    let work = tempfile::tempdir().unwrap();
    // A relay that lets every request through (as a relay under an
    // attacker's control would): the host's own cap is what holds.
    let rt = tokio::runtime::Runtime::new().unwrap();
    relay::init(work.path(), &["127.0.0.1".into()]).unwrap();
    let relay_addr = rt.block_on(async {
        let relay = relay::Relay::bind(relay::RelayConfig {
            limits: relay::Limits {
                pairing_per_ip: None,
                pairing_per_id: None,
                pending_per_host: 1000,
                ..relay::Limits::default()
            },
            ..relay::RelayConfig::new(work.path().to_owned(), "127.0.0.1:0".parse().unwrap())
        })
        .await
        .unwrap();
        let addr = relay.local_addr().to_string();
        tokio::spawn(relay.run());
        addr
    });
    let ca = work.path().join(relay::CA_FILE);
    let config = work.path().join("capped-pc.toml");
    init_host(
        &config,
        "capped-pc",
        &relay_addr,
        &ca,
        Some("127.0.0.1:9"),
        &[],
    );
    set_host_password(&config, HOST_PASSWORD);
    let mut host = Proc::start("thin-host", &["run", "--config", config.to_str().unwrap()]);
    host.wait_for("registered; waiting for sessions", Duration::from_secs(20));

    // The owner logged on from home before.
    let target = Target::new(&relay_addr, &ca, "capped-pc");
    assert!(rt.block_on(hostile::log_on(&target, loopback(1), HOST_PASSWORD)));

    // Eleven addresses, nine attempts each, that pair and then say nothing.
    let started = Instant::now();
    let results: Vec<(u32, Result<hostile::Pipe, Stopped>)> = rt.block_on(async {
        let mut all = Vec::new();
        for _round in 0..9 {
            for source in 0..11u32 {
                let target = target.clone();
                all.push(tokio::spawn(async move {
                    (
                        source,
                        hostile::pair_from(&target, loopback(20 + source)).await,
                    )
                }));
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
        }
        let mut out = Vec::new();
        for task in all {
            out.push(task.await.unwrap());
        }
        out
    });
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "the test must finish before the first stalled sessions time out"
    );
    let mut paired_per_source = [0usize; 11];
    let mut declined = 0;
    for (source, result) in &results {
        match result {
            Ok(_) => paired_per_source[*source as usize] += 1,
            Err(Stopped::Relay(ErrorCode::HostBusy, message)) => {
                assert!(
                    message.contains("already answering too many connection attempts"),
                    "{message}"
                );
                declined += 1;
            }
            Err(other) => panic!("unexpected: {other:?}"),
        }
    }
    // Strangers get all but the places kept for addresses the host knows.
    let paired: usize = paired_per_source.iter().sum();
    assert_eq!(
        paired,
        MAX_UNADMITTED - KEPT_FOR_KNOWN,
        "{paired_per_source:?}"
    );
    assert!(paired_per_source
        .iter()
        .all(|n| *n <= MAX_UNADMITTED_PER_SOURCE));
    assert_eq!(paired + declined, 99);
    host.wait_for(
        "declined: too many connection attempts waiting",
        Duration::from_secs(5),
    );
    // The owner at home gets in meanwhile.
    assert!(rt.block_on(hostile::log_on(&target, loopback(1), HOST_PASSWORD)));

    // Once the stalled sessions are gone, a client gets the host's question.
    drop(results);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let outcome = rt.block_on(async {
            let pipe = hostile::pair_from(&target, loopback(1)).await?;
            let (mut conn, _) = hostile::secure(pipe)
                .await
                .map_err(|e| Stopped::Silent(e.to_string()))?;
            hostile::send(
                &mut conn,
                &ClientMsg::Hello {
                    macs: vec![],
                    resume: None,
                },
            )
            .await
            .map_err(|e| Stopped::Silent(e.to_string()))?;
            Ok::<_, Stopped>(hostile::recv(&mut conn).await)
        });
        match outcome {
            Ok(Some(HostMsg::PasswordRequired)) => break,
            Ok(Some(HostMsg::Refused {
                reason: Refusal::Busy,
                ..
            }))
            | Err(Stopped::Relay(ErrorCode::HostBusy, _)) => {
                assert!(Instant::now() < deadline, "the host stays busy");
                std::thread::sleep(Duration::from_millis(200));
            }
            other => panic!("unexpected: {other:?}"),
        }
    }
}

#[test]
fn a_host_out_of_file_descriptors_says_it_is_busy_and_recovers() {
    let work = tempfile::tempdir().unwrap();
    let relay = RelayProc::start(&[]);
    let config = work.path().join("starved-pc.toml");
    init_host(
        &config,
        "starved-pc",
        &relay.addr,
        &relay.ca(),
        Some("127.0.0.1:9"),
        &[],
    );
    set_host_password(&config, HOST_PASSWORD);
    // Room for a dozen sessions or so, far below its own cap of 64.
    let mut host = Proc::start_with_fd_limit(
        "thin-host",
        28,
        &["run", "--config", config.to_str().unwrap()],
    );
    host.wait_for("registered; waiting for sessions", Duration::from_secs(20));

    let target = Target::new(&relay.addr, &relay.ca(), "starved-pc");
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Sessions that pair and then stall, from several addresses, until the
    // host runs out of descriptors.
    let mut stalled = Vec::new();
    let mut refusals = Vec::new();
    rt.block_on(async {
        'flood: for round in 0..6u32 {
            for source in 0..10u32 {
                match hostile::pair_from(&target, loopback(30 + source)).await {
                    Ok(pipe) => stalled.push(pipe),
                    Err(Stopped::Relay(code, message)) => {
                        refusals.push(format!("{code:?}: {message}"));
                        if message.contains("out of resources") {
                            break 'flood;
                        }
                    }
                    Err(other) => panic!("round {round}: {other:?}"),
                }
            }
        }
    });
    let busy = refusals
        .iter()
        .find(|r| r.contains("out of resources"))
        .unwrap_or_else(|| {
            panic!(
                "{} sessions held and no refusal named the cause: {refusals:?}",
                stalled.len()
            )
        });
    assert!(
        busy.starts_with("HostBusy: the office PC is out of resources"),
        "{busy}"
    );
    assert!(
        !refusals.iter().any(|r| r.contains("damaged")),
        "{refusals:?}"
    );

    // The stalled sessions end; the host serves again.
    drop(stalled);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = rt.block_on(async {
            let pipe = hostile::pair_from(&target, loopback(1)).await?;
            let (mut conn, _) = hostile::secure(pipe)
                .await
                .map_err(|e| Stopped::Silent(e.to_string()))?;
            hostile::send(
                &mut conn,
                &ClientMsg::Hello {
                    macs: vec![],
                    resume: None,
                },
            )
            .await
            .map_err(|e| Stopped::Silent(e.to_string()))?;
            Ok::<_, Stopped>(hostile::recv(&mut conn).await)
        });
        match answer {
            Ok(Some(HostMsg::PasswordRequired)) => break,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(300)),
            other => panic!("the host did not recover: {other:?}"),
        }
    }
}
