//! The relay as its operator runs it: connection limits at a low
//! file-descriptor limit, who may bind new computer IDs (rates, enrolment
//! tokens, releasing a squatted ID), and certificate renewal. The relay is
//! a real process; hosts are `thin-host` or common::hostile's.

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::hostile::{self, Stopped, Target};
use common::*;
use proto::relay::ErrorCode;

const USER: &str = "ops";
const PASSWORD: &str = "Rdp-pass-ops";

fn loopback(n: u32) -> IpAddr {
    IpAddr::from((0x7f00_0000u32 + n).to_be_bytes())
}

/// Whether the relay closed a connection (reading gives end-of-file or an
/// error rather than "nothing yet").
fn closed_by_peer(stream: &std::net::TcpStream) -> bool {
    use std::io::Read as _;
    stream.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 1];
    match (&*stream).read(&mut buf) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
        Ok(0) | Err(_) => true,
        Ok(_) => panic!("the relay sent something to a connection that said nothing"),
    }
}

/// The token `thin-relay token new` printed.
fn token_in(out: &str) -> String {
    out.lines()
        .map(str::trim)
        .find(|l| l.starts_with("thin-enrol-"))
        .unwrap_or_else(|| panic!("no token in {out}"))
        .to_owned()
}

/// This test process holds a thousand connections itself.
fn raise_own_fd_limit() {
    // SAFETY: getrlimit/setrlimit on a local struct.
    unsafe {
        let mut limit = std::mem::zeroed::<libc::rlimit>();
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
    }
}

#[test]
fn at_a_low_fd_limit_five_hundred_hosts_from_one_address_register_and_idle_connections_cannot_keep_people_out(
) {
    raise_own_fd_limit();
    let work = tempfile::tempdir().unwrap();
    // 1024 descriptors: room for about 928 connections.
    let relay = RelayProc::start_with_fd_limit(1024, &["--new-ids-per-hour", "1000"]);
    relay
        .proc
        .seen
        .iter()
        .for_each(|l| assert!(!l.contains("cannot raise"), "{l}"));
    let target = Target::new(&relay.addr, &relay.ca(), "unused");
    let rt = tokio::runtime::Runtime::new().unwrap();

    // An office of 500 PCs behind one address (far above the 64
    // unproven connections one address may hold), 25 registering at once.
    let mut controls = rt.block_on(async {
        let mut controls = Vec::new();
        for batch in 0..20 {
            let mut tasks = Vec::new();
            for n in batch * 25..(batch + 1) * 25 {
                let target = target.clone();
                tasks.push(tokio::spawn(async move {
                    let key = hostile::host_key();
                    let id = format!("office-{n}");
                    hostile::register_from(&target, loopback(1), &id, &key, None).await
                }));
            }
            for task in tasks {
                controls.push(task.await.unwrap().expect("every office PC registers"));
            }
        }
        controls
    });
    let (_desktop, desktop_addr) = test_desktop(USER, PASSWORD);
    let _host = HostProc::start(work.path(), &relay, "busy-relay-pc", &desktop_addr);

    // Idle connections from eight addresses fill the rest and more.
    let mut idle = Vec::new();
    for source in 2..10u32 {
        for _ in 0..55 {
            let socket =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            socket
                .bind(&std::net::SocketAddr::new(loopback(source), 0).into())
                .unwrap();
            let addr: std::net::SocketAddr = relay.addr.parse().unwrap();
            socket.connect(&addr.into()).unwrap();
            idle.push(std::net::TcpStream::from(socket));
        }
    }
    std::thread::sleep(Duration::from_millis(500));

    // A person connects at once, and sees the office desktop.
    let shot = work.path().join("shot.png");
    let started = Instant::now();
    let (code, out) = thin_client_connect(
        &relay.addr,
        &relay.ca(),
        "busy-relay-pc",
        (USER, PASSWORD),
        &shot,
        &[],
    );
    assert_eq!(code, 0, "{out}");
    assert!(find_picture(&shot).is_some());
    // Faster than the relay's 10 s handshake timeout, which would have
    // freed room by itself.
    assert!(started.elapsed() < Duration::from_secs(10));
    // Room was made by closing the oldest idle connections, not all.
    let evicted = idle.iter().filter(|s| closed_by_peer(s)).count();
    assert!(evicted > 0, "no idle connection was evicted");
    assert!(evicted < idle.len(), "every idle connection was closed");
    // The office PCs are still online.
    rt.block_on(async {
        for control in controls.iter_mut().step_by(50) {
            assert!(hostile::ping(control).await, "an office PC lost its relay");
        }
    });
}

#[test]
fn new_ids_from_one_address_are_rate_limited_unless_the_operator_issued_a_token() {
    let relay = RelayProc::start(&["--new-ids-per-hour", "3"]);
    let target = Target::new(&relay.addr, &relay.ca(), "unused");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let keys: Vec<_> = (0..5).map(|_| hostile::host_key()).collect();
    let register = |n: usize, token: Option<&str>| {
        rt.block_on(hostile::register_from(
            &target,
            loopback(2),
            &format!("squat-{n}"),
            &keys[n],
            token,
        ))
    };
    for n in 0..3 {
        register(n, None).expect("within the rate");
    }
    let Err(Stopped::Relay(ErrorCode::RateLimited, message)) = register(3, None) else {
        panic!("a fourth new ID from one address must be refused")
    };
    assert!(
        message.contains("too many new computer IDs were registered lately"),
        "{message}"
    );
    // A known ID re-registers freely; another address has its own budget.
    register(0, None).expect("a known ID reconnects");
    rt.block_on(hostile::register_from(
        &target,
        loopback(3),
        "other-office",
        &keys[4],
        None,
    ))
    .expect("another address");
    // The operator vouches for a host with a token.
    let d = relay.dir.path().to_str().unwrap();
    let (code, token) = run("thin-relay", &["token", "new", "--dir", d]);
    assert_eq!(code, 0, "{token}");
    let token = token_in(&token);
    register(3, Some(&token)).expect("the token binds a new ID");

    // Guessing tokens: five wrong ones are looked up, then the address waits.
    let guess = |n: u32| {
        rt.block_on(hostile::register_from(
            &target,
            loopback(4),
            &format!("guess-{n}"),
            &hostile::host_key(),
            Some("thin-enrol-aaaaaaaaaaaaaaaaaaaaaaaaaa"),
        ))
    };
    for n in 0..5 {
        let Err(Stopped::Relay(ErrorCode::EnrolmentRequired, message)) = guess(n) else {
            panic!("a wrong token must not bind");
        };
        assert!(message.contains("not one this relay issued"), "{message}");
    }
    let Err(Stopped::Relay(ErrorCode::RateLimited, message)) = guess(5) else {
        panic!("the sixth wrong token must wait");
    };
    assert!(
        message.contains("too many wrong enrolment tokens"),
        "{message}"
    );
}

#[test]
fn a_closed_relay_binds_new_ids_only_with_a_token_used_once() {
    let work = tempfile::tempdir().unwrap();
    let relay = RelayProc::start(&["--closed"]);
    let (_desktop, desktop_addr) = test_desktop(USER, PASSWORD);
    let ca = relay.ca();
    let config = work.path().join("closed.toml");
    let c = config.to_str().unwrap();
    init_host(
        &config,
        "closed-pc",
        &relay.addr,
        &ca,
        Some(&desktop_addr),
        &[],
    );
    set_host_password(&config, HOST_PASSWORD);
    let (code, out) = run("thin-host", &["run", "--config", c]);
    assert_ne!(code, 0);
    assert!(
        out.contains("binds new computer IDs only with an enrolment token")
            && out.contains("thin-host init --enrol-token"),
        "{out}"
    );

    let d = relay.dir.path().to_str().unwrap();
    let (code, issued) = run(
        "thin-relay",
        &["token", "new", "--dir", d, "--id", "closed-pc"],
    );
    assert_eq!(code, 0, "{issued}");
    assert!(issued.contains("only 'closed-pc'"), "{issued}");
    let token = token_in(&issued);
    std::fs::remove_file(&config).unwrap();
    for key in ["key", "e2e.key"] {
        let _ = std::fs::remove_file(config.with_extension(key));
    }
    init_host(
        &config,
        "closed-pc",
        &relay.addr,
        &ca,
        Some(&desktop_addr),
        &["--enrol-token", &token],
    );
    set_host_password(&config, HOST_PASSWORD);
    let mut host = Proc::start("thin-host", &["run", "--config", c]);
    host.wait_for("registered; waiting for sessions", Duration::from_secs(20));
    let (code, out) = thin_client_connect(
        &relay.addr,
        &ca,
        "closed-pc",
        (USER, PASSWORD),
        &work.path().join("s.png"),
        &[],
    );
    assert_eq!(code, 0, "{out}");

    // Used up: another host cannot bind with it; the use is audited.
    let target = Target::new(&relay.addr, &ca, "unused");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let again = rt.block_on(hostile::register_from(
        &target,
        loopback(1),
        "closed-pc-2",
        &hostile::host_key(),
        Some(&token),
    ));
    let Err(Stopped::Relay(ErrorCode::EnrolmentRequired, message)) = again else {
        panic!("a used token must not bind again: {:?}", again.err());
    };
    assert!(
        message.contains("used up") || message.contains("only"),
        "{message}"
    );
    let audit = std::fs::read_to_string(relay.dir.path().join("audit.log")).unwrap();
    assert!(
        audit.contains("\"token_new\"") && audit.contains("\"token_used\""),
        "{audit}"
    );
    let tokens = std::fs::read_to_string(relay.dir.path().join("tokens.jsonl")).unwrap();
    assert!(!tokens.contains(&token), "the token itself is stored");
}

#[test]
fn the_operator_releases_a_squatted_id_and_the_squatter_cannot_take_it_back() {
    let work = tempfile::tempdir().unwrap();
    let mut relay = RelayProc::start(&[]);
    let (_desktop, desktop_addr) = test_desktop(USER, PASSWORD);
    let squatter = HostProc::start(work.path(), &relay, "town-hall", &desktop_addr);
    let mut squatter_proc = squatter.proc;

    let d = relay.dir.path().to_str().unwrap().to_owned();
    let (code, out) = run("thin-relay", &["unbind", "--dir", &d, "town-hall"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("computer ID 'town-hall' released"), "{out}");
    // The squatter's host is cut off, comes back, and is refused for good.
    let (code, out) = squatter_proc.wait_exit(Duration::from_secs(60));
    assert_ne!(code, 0);
    assert!(
        out.contains("released computer ID 'town-hall' from this host"),
        "{out}"
    );

    // The rightful owner's new install takes it.
    let owner_dir = work.path().join("owner");
    std::fs::create_dir(&owner_dir).unwrap();
    let _owner = HostProc::start(&owner_dir, &relay, "town-hall", &desktop_addr);
    let audit = std::fs::read_to_string(relay.dir.path().join("audit.log")).unwrap();
    let line: serde_json::Value = serde_json::from_str(audit.lines().next().unwrap()).unwrap();
    assert_eq!(line["action"], "unbind");
    assert_eq!(line["id"], "town-hall");
    assert!(line["key"].as_str().unwrap().starts_with("SHA256:"));

    // With the relay stopped, unbind edits the registry itself.
    relay.proc.kill();
    let (code, out) = run("thin-relay", &["unbind", "--dir", &d, "town-hall"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = run("thin-relay", &["unbind", "--dir", &d, "town-hall"]);
    assert_ne!(code, 0);
    assert!(out.contains("is not bound at this relay"), "{out}");
}

#[test]
fn a_renewed_certificate_is_served_without_a_restart_and_old_pins_still_work() {
    let work = tempfile::tempdir().unwrap();
    let mut relay = RelayProc::start(&[]);
    let (_desktop, desktop_addr) = test_desktop(USER, PASSWORD);
    let _host = HostProc::start(work.path(), &relay, "renewed-pc", &desktop_addr);
    let d = relay.dir.path().to_str().unwrap().to_owned();
    let before = std::fs::read(relay.dir.path().join("relay.pem")).unwrap();
    let (code, out) = run("thin-relay", &["renew", "--dir", &d]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("new relay certificate valid until"), "{out}");
    assert_ne!(
        std::fs::read(relay.dir.path().join("relay.pem")).unwrap(),
        before
    );
    relay.proc.signal(libc::SIGHUP);
    relay
        .proc
        .wait_for("relay certificate reloaded", Duration::from_secs(10));

    // A client with the ca.pem it always had is served the new certificate.
    let served = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let target = Target::new(&relay.addr, &relay.ca(), "renewed-pc");
        let tls = hostile::dial_from(&target, loopback(1)).await.unwrap();
        tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
    });
    let pem = std::fs::read_to_string(relay.dir.path().join("relay.pem")).unwrap();
    let renewed = rustls_pki_types::pem::PemObject::from_pem_slice(pem.as_bytes())
        .map(|c: rustls_pki_types::CertificateDer<'static>| c.to_vec())
        .unwrap();
    assert_eq!(served, renewed);
    let (code, out) = thin_client_connect(
        &relay.addr,
        &relay.ca(),
        "renewed-pc",
        (USER, PASSWORD),
        &work.path().join("s.png"),
        &[],
    );
    assert_eq!(code, 0, "{out}");
    let audit = std::fs::read_to_string(relay.dir.path().join("audit.log")).unwrap();
    assert!(audit.contains("\"renew\""), "{audit}");

    // A certificate about to expire is warned about in the log.
    assert!(!relay.proc.seen.iter().any(|l| l.contains("expires soon")));
    let (code, out) = run("thin-relay", &["renew", "--dir", &d, "--days", "10"]);
    assert_eq!(code, 0, "{out}");
    relay.proc.signal(libc::SIGHUP);
    let warning = relay.proc.wait_for(
        "the relay certificate expires soon",
        Duration::from_secs(10),
    );
    assert!(warning.contains("thin-relay renew --dir"), "{warning}");
}

/// A browser's request for the page, on a TLS connection as browsers make it.
async fn browser_get(relay: &RelayProc) -> String {
    browser_get_path(relay, "/").await
}

/// A browser's GET of `path` on the relay's public port; the whole answer.
async fn browser_get_path(relay: &RelayProc, path: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut config = (*transport::tls::pinned_client_config(&relay.ca()).unwrap()).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(&relay.addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    tls.write_all(format!("GET {path} HTTP/1.1\r\nHost: relay\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn a_full_relay_and_a_crowded_address_refuse_in_words() {
    let work = tempfile::tempdir().unwrap();
    let relay = RelayProc::start(&["--max-connections", "6", "--max-conns-per-ip", "3"]);
    let target = Target::new(&relay.addr, &relay.ca(), "nobody");
    let rt = tokio::runtime::Runtime::new().unwrap();

    // One address holding three connections that have proven nothing.
    let idle: Vec<std::net::TcpStream> = (0..3)
        .map(|_| {
            let socket =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            socket
                .bind(&std::net::SocketAddr::new(loopback(5), 0).into())
                .unwrap();
            let addr: std::net::SocketAddr = relay.addr.parse().unwrap();
            socket.connect(&addr.into()).unwrap();
            std::net::TcpStream::from(socket)
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let crowded = rt.block_on(hostile::pair_from(&target, loopback(5)));
    let Err(Stopped::Relay(ErrorCode::RateLimited, message)) = crowded else {
        panic!(
            "a fourth unproven connection from one address: {:?}",
            crowded.err()
        );
    };
    assert!(
        message.contains("too many connections from your address at once"),
        "{message}"
    );
    drop(idle);
    std::thread::sleep(Duration::from_millis(300));

    // Six registered hosts fill the relay; nothing can be evicted for them.
    let _hosts: Vec<hostile::Control> = (0..6)
        .map(|n| {
            rt.block_on(hostile::register_from(
                &target,
                loopback(1),
                &format!("full-{n}"),
                &hostile::host_key(),
                None,
            ))
            .unwrap_or_else(|e| panic!("host {n}: {e:?}"))
        })
        .collect();
    let (code, out) = thin_client_connect(
        &relay.addr,
        &relay.ca(),
        "full-0",
        (USER, PASSWORD),
        &work.path().join("s.png"),
        &[],
    );
    assert_ne!(code, 0);
    assert!(
        out.contains("thin-client: relay busy: the relay is full right now; try again in a minute"),
        "{out}"
    );
    let page = rt.block_on(browser_get(&relay));
    assert!(page.starts_with("HTTP/1.1 503"), "{page}");
    assert!(page.contains("the relay is full right now"), "{page}");
}

#[test]
fn the_operators_metrics_count_what_the_relay_did_and_only_on_the_admin_address() {
    let mut relay = RelayProc::start(&["--metrics", "127.0.0.1:0"]);
    let line = relay
        .proc
        .wait_for("thin-relay metrics on http://", Duration::from_secs(5));
    let metrics = addr_after(&line, "http://")
        .trim_end_matches("/metrics")
        .to_owned();
    let (_desktop, desktop_addr) = test_desktop(USER, PASSWORD);
    let work = tempfile::tempdir().unwrap();
    let shot = work.path().join("shot.png");
    let _host = HostProc::start(work.path(), &relay, "metrics-pc", &desktop_addr);

    // What the test does: two sessions, a request for an unknown ID, and a
    // connection that is not TLS.
    for _ in 0..2 {
        let (code, out) = thin_client_connect(
            &relay.addr,
            &relay.ca(),
            "metrics-pc",
            (USER, PASSWORD),
            &shot,
            &[],
        );
        assert_eq!(code, 0, "{out}");
    }
    let (code, _) = thin_client_connect(
        &relay.addr,
        &relay.ca(),
        "nobody-here",
        (USER, PASSWORD),
        &shot,
        &[],
    );
    assert_ne!(code, 0);
    {
        use std::io::{Read as _, Write as _};
        let mut plain = std::net::TcpStream::connect(&relay.addr).unwrap();
        plain
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        plain.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        let _ = plain.read_to_end(&mut Vec::new());
    }

    // Sessions end at the relay shortly after the clients exit.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (answer, m) = loop {
        let answer = http_get(&metrics, "/metrics");
        let m = samples(&answer);
        let ended = m.get("thin_relay_sessions_active") == Some(&0.0)
            && m.get("thin_relay_tls_handshake_failures_total") == Some(&1.0);
        if ended || Instant::now() > deadline {
            break (answer, m);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(
        answer.contains("Content-Type: application/openmetrics-text"),
        "{answer}"
    );
    assert!(answer.trim_end().ends_with("# EOF"), "{answer}");
    let at = |name: &str| {
        *m.get(name)
            .unwrap_or_else(|| panic!("{name} missing from:\n{answer}"))
    };
    assert_eq!(at("thin_relay_hosts_online"), 1.0);
    assert_eq!(at("thin_relay_sessions_active"), 0.0);
    assert_eq!(
        at(r#"thin_relay_host_registrations_total{outcome="new"}"#),
        1.0
    );
    assert_eq!(at(r#"thin_relay_pairings_total{outcome="paired"}"#), 2.0);
    assert_eq!(
        at(r#"thin_relay_pairings_total{outcome="unknown_id"}"#),
        1.0
    );
    assert_eq!(at("thin_relay_pairing_seconds_count"), 2.0);
    assert!(at("thin_relay_pairing_seconds_sum") > 0.0);
    assert_eq!(at("thin_relay_tls_handshake_failures_total"), 1.0);
    // Both sessions carried a whole RDP logon and a picture.
    assert!(at(r#"thin_relay_relayed_bytes_total{direction="client_to_host"}"#) > 2_000.0);
    assert!(at(r#"thin_relay_relayed_bytes_total{direction="host_to_client"}"#) > 20_000.0);
    // Nothing names a computer or an address.
    assert!(
        !answer.contains("metrics-pc") && !answer.contains("127.0.0.1"),
        "{answer}"
    );

    // Only /metrics, and only on the admin address.
    assert!(http_get(&metrics, "/").starts_with("HTTP/1.1 404"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let public = rt.block_on(browser_get_path(&relay, "/metrics"));
    assert!(!public.contains("thin_relay_"), "{public}");

    // The public address cannot be the admin one.
    let d = relay.dir.path().to_str().unwrap().to_owned();
    let busy = relay.addr.clone();
    relay.proc.kill();
    let (code, out) = run(
        "thin-relay",
        &["serve", "--dir", &d, "--listen", &busy, "--metrics", &busy],
    );
    assert_ne!(code, 0);
    assert!(
        out.contains("--metrics must not be the public address"),
        "{out}"
    );
}

/// The relay's refusal of a client at `source` for its network; None when
/// it answers anything else. A connection closed without a word (a refusal
/// that ran out of time on a loaded machine) is tried again.
fn denied_client(rt: &tokio::runtime::Runtime, target: &Target, source: IpAddr) -> Option<String> {
    for _ in 0..5 {
        match rt.block_on(hostile::pair_from(target, source)) {
            Err(Stopped::Relay(ErrorCode::Denied, message)) => return Some(message),
            Err(Stopped::Silent(_)) => std::thread::sleep(Duration::from_millis(200)),
            _ => return None,
        }
    }
    panic!("the relay closed five connections from {source} without a word");
}

#[test]
fn the_operator_refuses_networks_for_hosts_clients_or_both_and_changes_it_without_a_restart() {
    let work = tempfile::tempdir().unwrap();
    let deny = work.path().join("deny.txt");
    std::fs::write(
        &deny,
        "# refused networks\nclients 127.0.0.5/32\nhosts 127.0.0.6 # an office\n127.0.0.7/32\n",
    )
    .unwrap();
    let mut relay = RelayProc::start(&[
        "--deny-file",
        deny.to_str().unwrap(),
        "--metrics",
        "127.0.0.1:0",
    ]);
    let line = relay
        .proc
        .wait_for("thin-relay metrics on http://", Duration::from_secs(5));
    let metrics = addr_after(&line, "http://")
        .trim_end_matches("/metrics")
        .to_owned();
    let target = Target::new(&relay.addr, &relay.ca(), "deny-pc");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let register = |source: IpAddr, id: &str| {
        rt.block_on(hostile::register_from(
            &target,
            source,
            id,
            &hostile::host_key(),
            None,
        ))
    };

    // Clients of 127.0.0.5 are refused in words; a host there is not.
    let message = denied_client(&rt, &target, loopback(5)).expect("a denied client");
    assert_eq!(
        message,
        "connections from your network (127.0.0.5/32) are refused by this relay's operator; \
         ask your IT staff"
    );
    let _host = register(loopback(5), "deny-pc").expect("hosts of a clients-only network");
    let mut office = register(loopback(8), "deny-pc-8").expect("a host of a network let in");
    // Hosts of 127.0.0.6 are refused; its clients reach the host.
    let Err(Stopped::Relay(ErrorCode::Denied, message)) = register(loopback(6), "deny-pc-6") else {
        panic!("a host of a denied network was not refused");
    };
    assert!(message.contains("(127.0.0.6/32)"), "{message}");
    assert_eq!(denied_client(&rt, &target, loopback(6)), None);
    // 127.0.0.7 is refused for both, before it says who it is.
    assert!(denied_client(&rt, &target, loopback(7)).is_some());
    assert!(register(loopback(7), "deny-pc-7").is_err());

    // A broken file keeps the list in force.
    std::fs::write(&deny, "clients 127.0.0.5/32\nservers 10.0.0.0/8\n").unwrap();
    relay.proc.signal(libc::SIGHUP);
    relay
        .proc
        .wait_for("the deny list in force stays", Duration::from_secs(10));
    assert!(denied_client(&rt, &target, loopback(7)).is_some());

    // A changed file takes effect without a restart (looked at every few
    // seconds, at once on SIGHUP); hosts of a network refused now are let go.
    assert!(rt.block_on(hostile::ping(&mut office)));
    std::fs::write(&deny, "clients 127.0.0.1\nhosts 127.0.0.8\n").unwrap();
    relay.proc.signal(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(10);
    while denied_client(&rt, &target, loopback(7)).is_some() {
        assert!(Instant::now() < deadline, "the new deny list was not read");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(denied_client(&rt, &target, loopback(5)), None);
    assert!(
        !rt.block_on(hostile::ping(&mut office)),
        "a denied host stayed online"
    );
    // What a person sees.
    let (code, out) = thin_client_connect(
        &relay.addr,
        &relay.ca(),
        "deny-pc",
        (USER, PASSWORD),
        &work.path().join("s.png"),
        &[],
    );
    assert_ne!(code, 0);
    assert!(
        out.contains(
            "refused by the relay's operator: connections from your network (127.0.0.1/32) \
             are refused"
        ),
        "{out}"
    );
    let m = samples(&http_get(&metrics, "/metrics"));
    assert!(
        m.get(r#"thin_relay_refused_total{limit="denied_network"}"#) >= Some(&5.0),
        "{m:?}"
    );

    // A mistake in the file at start stops the relay, naming the line.
    relay.proc.kill();
    std::fs::write(&deny, "10.0.0.0/8\n10.0.0.0/99\n").unwrap();
    let d = relay.dir.path().to_str().unwrap().to_owned();
    let (code, out) = run(
        "thin-relay",
        &[
            "serve",
            "--dir",
            &d,
            "--listen",
            "127.0.0.1:0",
            "--deny-file",
            deny.to_str().unwrap(),
        ],
    );
    assert_ne!(code, 0);
    assert!(
        out.contains("line 2: \"10.0.0.0/99\" is not a network"),
        "{out}"
    );
}
