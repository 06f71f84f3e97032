//! The end-to-end channel and the host's checks, through real processes.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

const USER: &str = "dave";
const PASSWORD: &str = "Rdp-pass-77";

fn connect(relay: &RelayProc, id: &str, known_hosts: &Path, shot: &Path) -> (i32, String) {
    let extra = ["--known-hosts", known_hosts.to_str().unwrap()];
    thin_client_connect(&relay.addr, &relay.ca(), id, (USER, PASSWORD), shot, &extra)
}

fn fingerprint(config: &Path) -> String {
    let (code, out) = run(
        "thin-host",
        &["fingerprint", "--config", config.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out}");
    out.trim().to_owned()
}

#[test]
fn a_changed_host_key_is_refused_until_the_pin_is_removed() {
    let work = tempfile::tempdir().unwrap();
    let known_hosts = work.path().join("known_hosts");
    let shot = work.path().join("shot.png");
    let relay = RelayProc::start(&[]);
    let (_desktop, desktop_addr) = test_desktop(USER, PASSWORD);
    let mut host = HostProc::start(work.path(), &relay, "pinned-pc", &desktop_addr);
    let old = fingerprint(&host.config);

    // First use: accepted and recorded.
    let (code, out) = connect(&relay, "pinned-pc", &known_hosts, &shot);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&old),
        "the new key's fingerprint was not shown: {out}"
    );
    let pins = std::fs::read_to_string(&known_hosts).unwrap();
    // Pinned under the relay's identity (its CA), not its address as typed.
    assert!(pins.contains("pinned-pc@ca-"), "{pins}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&known_hosts)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "known_hosts is readable by others");
    }
    // The same relay spelled another way finds the same pin.
    let port = relay.addr.rsplit(':').next().unwrap();
    let extra = ["--known-hosts", known_hosts.to_str().unwrap()];
    let (code, out) = thin_client_connect(
        &format!("localhost:{port}"),
        &relay.ca(),
        "pinned-pc",
        (USER, PASSWORD),
        &shot,
        &extra,
    );
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("first connection to"), "pinned again: {out}");
    assert_eq!(std::fs::read_to_string(&known_hosts).unwrap(), pins);

    // The host comes back with another end-to-end key (same relay identity,
    // as after a re-install that kept only the relay key, or an impostor).
    host.proc.kill();
    let other = work.path().join("other.toml");
    let ca = relay.ca();
    init_host(&other, "other-pc", &relay.addr, &ca, None, &[]);
    let e2e_key = |config: &Path| config.with_extension("e2e.key");
    std::fs::copy(e2e_key(&other), e2e_key(&host.config)).unwrap();
    let new = fingerprint(&host.config);
    assert_ne!(old, new);
    let mut restarted = Proc::start(
        "thin-host",
        &["run", "--config", host.config.to_str().unwrap()],
    );
    restarted.wait_for("registered; waiting for sessions", Duration::from_secs(20));

    let (code, out) = connect(&relay, "pinned-pc", &known_hosts, &shot);
    assert_ne!(code, 0);
    let warning = out
        .lines()
        .find(|l| l.starts_with("thin-client:"))
        .unwrap_or_default();
    assert!(
        warning.contains("WARNING: the key of computer 'pinned-pc' has changed"),
        "{out}"
    );
    assert!(
        warning.contains(&format!("pinned {old}, now {new}")),
        "{out}"
    );
    // The pin is untouched by the refusal.
    assert_eq!(std::fs::read_to_string(&known_hosts).unwrap(), pins);

    // Removing the pin on purpose, by the name the warning gave, lets the
    // new key in.
    let pin = warning
        .split("thin-client forget-host ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .expect("the warning names the pin");
    let (code, out) = run(
        "thin-client",
        &[
            "forget-host",
            pin,
            "--known-hosts",
            known_hosts.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = connect(&relay, "pinned-pc", &known_hosts, &shot);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&new), "{out}");
}

/// A relay, a test desktop and one host, each a process, for one test.
struct World {
    work: tempfile::TempDir,
    relay: RelayProc,
    _desktop: Proc,
    host: HostProc,
    id: String,
}

impl World {
    fn start(id: &str) -> Self {
        let work = tempfile::tempdir().unwrap();
        let relay = RelayProc::start(&[]);
        let (desktop, desktop_addr) = test_desktop(USER, PASSWORD);
        let host = HostProc::start(work.path(), &relay, id, &desktop_addr);
        Self {
            work,
            relay,
            _desktop: desktop,
            host,
            id: id.to_owned(),
        }
    }

    /// `thin-client connect` with the right RDP logon and `extra` flags;
    /// the right host password unless `extra` gives another.
    fn connect(&self, extra: &[&str]) -> (i32, String) {
        let shot = self.work.path().join("shot.png");
        let known = self.work.path().join("known_hosts");
        let mut all = vec!["--known-hosts", known.to_str().unwrap()];
        all.extend_from_slice(extra);
        let ca = self.relay.ca();
        thin_client_connect(
            &self.relay.addr,
            &ca,
            &self.id,
            (USER, PASSWORD),
            &shot,
            &all,
        )
    }

    /// `thin-host ARGS --config CONFIG`.
    fn host_cmd(&self, args: &[&str]) -> (i32, String) {
        let mut all = args.to_vec();
        all.extend(["--config", self.host.config.to_str().unwrap()]);
        let (code, out) = run("thin-host", &all);
        (code, out)
    }

    fn audit_log(&self) -> Vec<serde_json::Value> {
        let path = self.host.config.with_extension("audit.log");
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("audit lines are JSON"))
            .collect()
    }
}

/// The one line thin-client prints when it fails.
fn error_line(out: &str) -> &str {
    out.lines()
        .find(|l| l.starts_with("thin-client:"))
        .unwrap_or_default()
}

#[test]
fn totp_from_oathtool_is_accepted_once_and_emergency_codes_work_once() {
    if !real_peer_programs(&["oathtool"], "oathtool") {
        return;
    }
    let world = World::start("totp-pc");
    let (enrolment, uri, secret) = enrol_totp(&world.host.config);
    assert!(uri.starts_with("otpauth://totp/thin:totp-pc?"), "{uri}");
    // SHA-1, 6 digits and 30 s are the URI defaults, so they are implied.
    assert!(uri.contains("issuer=thin"), "{uri}");
    // The QR code and ten emergency codes are printed once.
    assert!(
        enrolment.contains('█') || enrolment.contains('▀'),
        "{enrolment}"
    );
    let emergency: Vec<String> = enrolment
        .lines()
        .map(str::trim)
        .filter(|l| l.len() == 14 && l.as_bytes()[4] == b'-' && l.as_bytes()[9] == b'-')
        .map(str::to_owned)
        .collect();
    assert_eq!(emergency.len(), 10, "{enrolment}");

    // Without a code the client says what is missing.
    let (code, out) = world.connect(&[]);
    assert_ne!(code, 0);
    assert!(error_line(&out).contains("give --otp CODE"), "{out}");

    let otp = oathtool(&secret);
    let (code, out) = world.connect(&["--otp", &otp]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("one-time password accepted"), "{out}");

    // The same code again is a replay.
    let (code, out) = world.connect(&["--otp", &otp]);
    assert_ne!(code, 0);
    assert!(
        error_line(&out).contains("that code was already used"),
        "{out}"
    );

    // An emergency code works once in place of the OTP.
    let (code, out) = world.connect(&["--otp", &emergency[0]]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = world.connect(&["--otp", &emergency[0]]);
    assert_ne!(code, 0);
    assert!(
        error_line(&out).contains("one-time password refused"),
        "{out}"
    );
    let (code, status) = world.host_cmd(&["otp", "status"]);
    assert_eq!(code, 0, "{status}");
    assert!(status.contains("emergency codes left: 9"), "{status}");
    assert!(!status.contains(&secret), "status must not show the secret");

    // Every attempt is in the audit log, with no code in it.
    let log = world.audit_log();
    let steps: Vec<(String, String)> = log
        .iter()
        .map(|e| {
            (
                e["step"].as_str().unwrap().into(),
                e["result"].as_str().unwrap().into(),
            )
        })
        .collect();
    for expected in [
        ("otp", "ok"),
        ("otp", "fail"),
        ("emergency", "ok"),
        ("emergency", "fail"),
    ] {
        assert!(
            steps.contains(&(expected.0.into(), expected.1.into())),
            "{expected:?} missing from {steps:?}"
        );
    }
    let raw = std::fs::read_to_string(world.host.config.with_extension("audit.log")).unwrap();
    assert!(!raw.contains(&otp) && !raw.contains(&emergency[0]) && !raw.contains(HOST_PASSWORD));
    assert!(log
        .iter()
        .all(|e| e["source"] == "127.0.0.1" && e["time"].as_str().unwrap().ends_with('Z')));
}

#[test]
fn host_password_is_checked_and_stored_without_a_password_equivalent() {
    let world = World::start("opaque-pc");
    let wrong = world.work.path().join("wrong-password");
    std::fs::write(&wrong, "Not-The-Pass-1").unwrap();
    let (code, out) = world.connect(&["--host-password-file", wrong.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert_eq!(
        error_line(&out),
        "thin-client: host password refused: the host password is wrong",
        "{out}"
    );
    let (code, out) = world.connect(&[]);
    assert_eq!(code, 0, "{out}");

    // What the host keeps: no password, and nothing derived from it that
    // would log in by itself (plain hashes, the password in UTF-16).
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(world.work.path()).unwrap() {
        let path = entry.unwrap().path();
        // Files only: the settings channel's folder holds a socket.
        if path.is_file()
            && path
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("opaque-pc")
        {
            stored.extend(std::fs::read(&path).unwrap());
        }
    }
    let utf16: Vec<u8> = HOST_PASSWORD
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    use sha2::Digest as _;
    let digests = [
        sha2::Sha256::digest(HOST_PASSWORD.as_bytes()).to_vec(),
        sha1::Sha1::digest(HOST_PASSWORD.as_bytes()).to_vec(),
    ];
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let mut forbidden: Vec<Vec<u8>> = vec![HOST_PASSWORD.as_bytes().to_vec(), utf16];
    for d in &digests {
        forbidden.extend([d.clone(), hex(d).into_bytes(), b64(d).into_bytes()]);
    }
    for needle in &forbidden {
        assert!(
            !stored.windows(needle.len()).any(|w| w == needle.as_slice()),
            "the host's files hold a password-equivalent"
        );
    }
    // Secrets are private.
    #[cfg(unix)]
    for file in ["secrets.json", "key", "e2e.key"] {
        use std::os::unix::fs::PermissionsExt;
        let path = world.host.config.with_extension(file);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{} is readable by others", path.display());
    }

    // A weak password is refused with the rule, and the old one still works.
    let (code, out) = run_with_input(
        "thin-host",
        &[
            "set-password",
            "--config",
            world.host.config.to_str().unwrap(),
        ],
        "password1\n",
    );
    assert_ne!(code, 0);
    assert!(out.contains("at least 8 characters using 3 of"), "{out}");
    let (code, out) = world.connect(&[]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_host_without_a_password_refuses_and_says_what_to_run() {
    let work = tempfile::tempdir().unwrap();
    let relay = RelayProc::start(&[]);
    let (_desktop, desktop_addr) = test_desktop(USER, PASSWORD);
    let config = work.path().join("bare.toml");
    let ca = relay.ca();
    init_host(
        &config,
        "bare-pc",
        &relay.addr,
        &ca,
        Some(&desktop_addr),
        &[],
    );
    let mut host = Proc::start("thin-host", &["run", "--config", config.to_str().unwrap()]);
    host.wait_for("no host password is set", Duration::from_secs(20));
    host.wait_for("registered; waiting for sessions", Duration::from_secs(20));
    let (code, out) = connect(
        &relay,
        "bare-pc",
        &work.path().join("kh"),
        &work.path().join("s.png"),
    );
    assert_ne!(code, 0);
    assert!(
        error_line(&out).contains("this PC has no host password yet")
            && error_line(&out).contains("thin-host set-password"),
        "{out}"
    );
}

/// MAC addresses of this machine's interfaces, as Linux reports them.
fn local_macs() -> Vec<String> {
    let mut macs = Vec::new();
    for entry in std::fs::read_dir("/sys/class/net")
        .into_iter()
        .flatten()
        .flatten()
    {
        if let Ok(mac) = std::fs::read_to_string(entry.path().join("address")) {
            let mac = mac.trim().to_owned();
            if mac.len() == 17 && mac != "00:00:00:00:00:00" {
                macs.push(mac);
            }
        }
    }
    macs
}

#[test]
fn access_list_and_mac_allowlist_refuse_with_their_messages() {
    let world = World::start("guarded-pc");
    let (code, out) = world.host_cmd(&["acl", "add", "--deny", "127.0.0.0/8", "--priority", "20"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = world.connect(&[]);
    assert_ne!(code, 0);
    assert_eq!(
        error_line(&out),
        "thin-client: not allowed: this PC does not accept connections from 127.0.0.1 \
         (its access list); ask its owner",
        "{out}"
    );
    // A rule checked earlier wins.
    let (code, out) =
        world.host_cmd(&["acl", "add", "--allow", "127.0.0.1/32", "--priority", "10"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = world.connect(&[]);
    assert_eq!(code, 0, "{out}");
    let (code, out) =
        world.host_cmd(&["acl", "add", "--allow", "not-an-address", "--priority", "5"]);
    assert_ne!(code, 0);
    assert!(out.contains("is not an address range"), "{out}");

    // Only registered devices: this one is not.
    let (code, out) = world.host_cmd(&["mac", "allow", "02:00:5e:10:00:01"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = world.connect(&[]);
    assert_ne!(code, 0);
    assert!(
        error_line(&out).contains("not allowed: this PC accepts only registered devices"),
        "{out}"
    );
    let macs = local_macs();
    if macs.is_empty() {
        eprintln!("this machine has no MAC address: the positive MAC check is skipped");
        return;
    }
    let (code, out) = world.host_cmd(&["mac", "allow", &macs[0]]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = world.connect(&[]);
    assert_eq!(code, 0, "registered device refused: {out}");
}

#[test]
fn pins_kept_by_an_older_version_under_the_relay_address_still_count() {
    let world = World::start("old-pin-pc");
    // An older client pinned another key under the address it typed: the
    // key now shown must be refused as a change, not pinned anew.
    let known = world.work.path().join("known_hosts");
    std::fs::write(
        &known,
        format!(
            "old-pin-pc@{} AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
            world.relay.addr
        ),
    )
    .unwrap();
    let (code, out) = world.connect(&[]);
    assert_ne!(code, 0);
    assert!(
        error_line(&out).contains("WARNING: the key of computer 'old-pin-pc' has changed"),
        "{out}"
    );
    let pins = std::fs::read_to_string(&known).unwrap();
    assert!(pins.contains("old-pin-pc@ca-"), "carried over: {pins}");
}

#[test]
fn a_hello_with_thousands_of_macs_is_refused_and_wrong_devices_count_toward_the_lockout() {
    use common::hostile::{self, Target};
    use proto::auth::{ClientMsg, HostMsg, Refusal};
    let world = World::start("mac-pc");
    let (code, out) = world.host_cmd(&["mac", "allow", "02:00:5e:10:00:01"]);
    assert_eq!(code, 0, "{out}");
    let target = Target::new(&world.relay.addr, &world.relay.ca(), "mac-pc");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let hello = |macs: Vec<String>| {
        rt.block_on(async {
            let pipe = hostile::pair_from(&target, "127.0.0.1".parse().unwrap())
                .await
                .unwrap();
            let (mut conn, _) = hostile::secure(pipe).await.unwrap();
            hostile::send(&mut conn, &ClientMsg::Hello { macs, resume: None })
                .await
                .unwrap();
            hostile::recv(&mut conn).await
        })
    };
    // As many as fit in one message (64 KiB).
    let many: Vec<String> = (0..3000u32)
        .map(|n| format!("02:00:{:02x}:{:02x}:00:01", n >> 8, n & 0xff))
        .collect();
    let answer = hello(many);
    let Some(HostMsg::Refused {
        reason: Refusal::Protocol,
        message,
    }) = answer
    else {
        panic!("{answer:?}")
    };
    assert!(message.contains("more than 32 MAC addresses"), "{message}");
    // Four more unregistered devices: the fifth refusal locks the source.
    for _ in 0..4 {
        let answer = hello(vec!["02:00:5e:10:00:99".into()]);
        assert!(
            matches!(
                answer,
                Some(HostMsg::Refused {
                    reason: Refusal::MacNotAllowed,
                    ..
                })
            ),
            "{answer:?}"
        );
    }
    let answer = hello(vec!["02:00:5e:10:00:01".into()]);
    assert!(
        matches!(
            answer,
            Some(HostMsg::Refused {
                reason: Refusal::LockedOut { .. },
                ..
            })
        ),
        "even the right device waits: {answer:?}"
    );
    let log = world.audit_log();
    let mac_fails = log
        .iter()
        .filter(|e| e["step"] == "mac" && e["result"] == "fail")
        .count();
    assert_eq!(mac_fails, 5, "{log:?}");
}

#[test]
fn proxy_passwords_never_appear_in_errors() {
    let work = tempfile::tempdir().unwrap();
    let relay = RelayProc::start(&[]);
    let config = work.path().join("p.toml");
    let bad = "http://office:Pr0xy-S3cret@proxy.example:notaport";
    let (code, out) = run(
        "thin-host",
        &[
            "init",
            "--config",
            config.to_str().unwrap(),
            "--id",
            "proxied",
            "--relay",
            &relay.addr,
            "--relay-ca",
            relay.ca().to_str().unwrap(),
            "--proxy",
            bad,
        ],
    );
    assert_ne!(code, 0);
    assert!(out.contains("office:***@"), "{out}");
    assert!(!out.contains("Pr0xy-S3cret"), "{out}");
    let (code, out) = thin_client_connect(
        &relay.addr,
        &relay.ca(),
        "proxied",
        (USER, PASSWORD),
        &work.path().join("s.png"),
        &["--proxy", bad],
    );
    assert_ne!(code, 0);
    assert!(!out.contains("Pr0xy-S3cret"), "{out}");
    assert!(error_line(&out).contains("office:***@"), "{out}");
}

#[test]
fn repeated_failures_lock_the_source_out_and_are_audited_to_syslog() {
    let world = World::start("lock-pc");
    let syslog = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    syslog
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let target = syslog.local_addr().unwrap().to_string();
    let (code, out) = world.host_cmd(&["policy", "--syslog", &target]);
    assert_eq!(code, 0, "{out}");

    let wrong = world.work.path().join("wrong");
    std::fs::write(&wrong, "Guess-Number-1").unwrap();
    for attempt in 1..=5 {
        let (code, out) = world.connect(&["--host-password-file", wrong.to_str().unwrap()]);
        assert_ne!(code, 0);
        assert!(
            error_line(&out).contains("host password"),
            "attempt {attempt}: {out}"
        );
    }
    // Locked now, even with the right password, and told for how long.
    let (code, out) = world.connect(&[]);
    assert_ne!(code, 0);
    let line = error_line(&out);
    assert!(
        line.contains(
            "locked out: too many failed attempts: this PC refuses connections from \
                       127.0.0.1 for 1 more minute(s)"
        ) && line.contains("try again then"),
        "{out}"
    );

    let log = world.audit_log();
    let fails = log
        .iter()
        .filter(|e| e["step"] == "password" && e["result"] == "fail")
        .count();
    assert_eq!(fails, 5, "{log:?}");
    assert!(log
        .iter()
        .any(|e| e["step"] == "lockout" && e["result"] == "refused"));

    // The same events went to syslog as RFC 5424 messages.
    let mut messages = Vec::new();
    let mut buf = [0u8; 2048];
    while let Ok(n) = syslog.recv(&mut buf) {
        messages.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        if messages.len() >= log.len() {
            break;
        }
    }
    let failed = messages
        .iter()
        .find(|m| m.contains("step=\"password\" result=\"fail\""))
        .expect("a password failure reached syslog");
    assert!(failed.starts_with("<84>1 "), "{failed}");
    assert!(failed.contains(" lock-pc thin-host "), "{failed}");
    assert!(failed.contains("source=\"127.0.0.1\""), "{failed}");
}

#[test]
fn garbage_and_oversized_handshake_messages_get_errors_and_the_host_keeps_serving() {
    use client_core::known_hosts::MemoryPins;
    use client_core::native::RelayTarget;
    use client_core::Scripted;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let mut world = World::start("sturdy-pc");
    let target = RelayTarget {
        addr: world.relay.addr.clone(),
        ca: world.relay.ca(),
        proxy: None,
    };
    let id = proto::ComputerId::parse("sturdy-pc").unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let pipe = || async {
        let stream = client_core::native::dial_relay(&target).await.unwrap();
        client_core::pairing::pair(stream, &id, &mut Scripted::default())
            .await
            .unwrap()
    };
    // What the host does with `bytes` as the first handshake message: it
    // must hang up (an error), not answer and not crash.
    let hangs_up_on = |bytes: Vec<u8>| {
        rt.block_on(async {
            let mut pipe = pipe().await;
            pipe.write_all(&bytes).await.unwrap();
            let mut buf = [0u8; 64];
            let read = tokio::time::timeout(Duration::from_secs(20), pipe.read(&mut buf)).await;
            matches!(read, Ok(Ok(0)) | Ok(Err(_)))
        })
    };
    assert!(hangs_up_on(proto::encode_frame(b"not a noise message")));
    assert!(hangs_up_on(u32::MAX.to_be_bytes().to_vec()));
    assert!(hangs_up_on(vec![0u8; 4]));
    world
        .host
        .proc
        .wait_for("end-to-end handshake", Duration::from_secs(10));

    // Inside a good channel, a malformed first message gets the protocol
    // refusal.
    let answer = rt.block_on(async {
        let channel = client_core::secure::secure(
            pipe().await,
            "sturdy-pc",
            "sturdy-pc@test",
            &MemoryPins::default(),
            &mut Scripted::default(),
        )
        .await
        .unwrap();
        let mut conn = transport::FramedIo::new(channel);
        conn.write_all(&proto::encode_frame(b"{\"type\":\"hello\",\"macs\":7}"))
            .await
            .unwrap();
        let frame = conn.read_frame().await.unwrap();
        serde_json::from_slice::<proto::auth::HostMsg>(&frame).unwrap()
    });
    assert!(
        matches!(
            answer,
            proto::auth::HostMsg::Refused {
                reason: proto::auth::Refusal::Protocol,
                ..
            }
        ),
        "{answer:?}"
    );

    // The host is alive and serves a real client.
    let (code, out) = world.connect(&[]);
    assert_eq!(code, 0, "{out}");
}

/// An RDP server that does not check the logon itself (TLS only, as xrdp):
/// it answers the X.224 request choosing TLS, shows the certificate it is
/// given at that moment, and hangs up after the TLS handshake. Serves on
/// its own thread until the test ends.
fn tls_only_server(
    key: std::sync::Arc<std::sync::Mutex<rcgen::CertifiedKey>>,
) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            // Bounded: the test connects a handful of times.
            for _ in 0..16 {
                let Ok((mut tcp, _)) = listener.accept().await else {
                    return;
                };
                let mut header = [0u8; 4];
                if tcp.read_exact(&mut header).await.is_err() {
                    continue;
                }
                let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
                let mut rest = vec![0u8; len.saturating_sub(4)];
                if tcp.read_exact(&mut rest).await.is_err() {
                    continue;
                }
                // TPKT, X.224 Connection Confirm, RDP_NEG_RSP: PROTOCOL_SSL.
                let confirm = [
                    0x03, 0x00, 0x00, 0x13, 0x0e, 0xd0, 0x00, 0x00, 0x12, 0x34, 0x00, 0x02, 0x00,
                    0x08, 0x00, 0x01, 0x00, 0x00, 0x00,
                ];
                if tcp.write_all(&confirm).await.is_err() {
                    continue;
                }
                let (cert, private) = {
                    let key = key.lock().unwrap();
                    let private =
                        rustls::pki_types::PrivatePkcs8KeyDer::from(key.key_pair.serialize_der());
                    (key.cert.der().clone(), private)
                };
                let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
                let config = rustls::ServerConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .unwrap()
                    .with_no_client_auth()
                    .with_single_cert(vec![cert], private.into())
                    .unwrap();
                let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
                // The handshake done, it hangs up: the key is what counts.
                let _ = acceptor.accept(tcp).await;
            }
        });
    });
    addr
}

/// A TLS-only RDP server gets the Windows password in plain RDP, and
/// nothing else checks who it is: the host pins the key it showed first and
/// refuses when another one stands there (someone on the office LAN in
/// between), until its owner says the change was theirs.
#[test]
fn a_tls_only_rdp_server_s_key_is_pinned_and_a_change_refused() {
    let first = rcgen::generate_simple_self_signed(vec!["rdp-server".into()]).unwrap();
    let key = std::sync::Arc::new(std::sync::Mutex::new(first));
    let server = tls_only_server(key.clone()).to_string();
    let relay = RelayProc::start(&[]);
    let work = tempfile::tempdir().unwrap();
    let mut host = HostProc::start(work.path(), &relay, "lan-pc", &server);
    let shot = work.path().join("shot.png");
    let known_hosts = work.path().join("known_hosts");
    let pins = host.config.with_extension("rdp-keys.json");

    // First session: the key is pinned (the session itself ends, as this
    // server hangs up after TLS).
    let (code, out) = connect(&relay, "lan-pc", &known_hosts, &shot);
    assert_ne!(code, 0, "{out}");
    host.proc
        .wait_for("pinned the key of this RDP server", Duration::from_secs(10));
    let pinned = std::fs::read_to_string(&pins).unwrap();
    assert!(pinned.contains(&server), "{pinned}");

    // Another key at the same place: refused, with both fingerprints and
    // what to do, before the client sends anything to it.
    *key.lock().unwrap() = rcgen::generate_simple_self_signed(vec!["rdp-server".into()]).unwrap();
    let (code, out) = connect(&relay, "lan-pc", &known_hosts, &shot);
    assert_ne!(code, 0, "{out}");
    let line = error_line(&out);
    assert!(line.contains("shows another key than before"), "{out}");
    assert!(line.contains("thin-host forget-rdp-key"), "{line}");
    host.proc
        .wait_for("the RDP server's key changed", Duration::from_secs(10));

    // The owner renewed it on purpose: forgotten, the next session pins
    // the new key.
    let config = host.config.to_str().unwrap();
    let (code, out) = run("thin-host", &["forget-rdp-key", "--config", config]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("forgot 1"), "{out}");
    let (code, out) = connect(&relay, "lan-pc", &known_hosts, &shot);
    assert!(!out.contains("shows another key"), "{out}");
    assert_ne!(code, 0, "{out}");
    let repinned = std::fs::read_to_string(&pins).unwrap();
    assert_ne!(repinned, pinned);
}
