//! Three relay nodes sharing one real `redis-server` on loopback: a client
//! at one node reaches a host at another, new IDs go to exactly one key
//! however nodes race, a node's loss and Redis's loss are survived. The
//! relays, hosts and Redis are real processes; attackers and bare hosts
//! are common::hostile's.

mod common;

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use common::hostile::{self, Stopped, Target};
use common::*;
use proto::relay::{self, ErrorCode, FromRelay, ToRelay, PROTOCOL_VERSION};
use proto::ComputerId;
use transport::FramedIo;

const USER: &str = "cluster";
const PASSWORD: &str = "Rdp-pass-cluster";

fn loopback(n: u32) -> IpAddr {
    IpAddr::from((0x7f00_0000u32 + n).to_be_bytes())
}

/// A `redis-server` of its own on `port`, keeping nothing on disk.
struct Redis {
    proc: Proc,
    port: u16,
}

impl Redis {
    fn start_on(port: u16) -> Self {
        let mut proc = Proc::start_cmd(
            "redis-server",
            Command::new("redis-server").args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ]),
        );
        proc.wait_for("Ready to accept connections", Duration::from_secs(20));
        Self { proc, port }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

/// A relay node serving with the directory at `redis`, its certificate and
/// CA copied from `first` (None: the first node, which makes them).
fn node(first: Option<&Path>, redis: &str, extra: &[&str]) -> RelayProc {
    node_copying(first, &[], redis, extra)
}

/// [`node`], also copying `more` files from `first`.
fn node_copying(first: Option<&Path>, more: &[&str], redis: &str, extra: &[&str]) -> RelayProc {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_owned();
    match first {
        None => {
            let (code, out) = run("thin-relay", &["init", "--dir", &d]);
            assert_eq!(code, 0, "{out}");
        }
        Some(first) => {
            for file in ["ca.pem", "relay.pem", "relay-key.pem"].iter().chain(more) {
                std::fs::copy(first.join(file), dir.path().join(file)).unwrap();
            }
        }
    }
    let (addr, proc) = serve_node(dir.path(), redis, extra);
    RelayProc { dir, addr, proc }
}

/// `thin-relay serve` as a node, in the relay folder `dir`: its address and
/// process, once it listens.
fn serve_node(dir: &Path, redis: &str, extra: &[&str]) -> (String, Proc) {
    let d = dir.to_str().unwrap();
    let mut args = vec!["serve", "--dir", d];
    if !extra.contains(&"--listen") {
        args.extend(["--listen", "127.0.0.1:0"]);
    }
    args.extend([
        "--directory",
        redis,
        "--cluster-addr",
        "127.0.0.1:0",
        // The races below bind a hundred new IDs from one address.
        "--new-ids-per-hour",
        "0",
    ]);
    args.extend_from_slice(extra);
    let mut proc = Proc::start("thin-relay", &args);
    let line = proc.wait_for("thin-relay listening on ", Duration::from_secs(20));
    let addr = addr_after(&line, "listening on ");
    proc.wait_for("thin-relay cluster port on ", Duration::from_secs(5));
    (addr, proc)
}

/// `redis-cli` at `redis`'s port: its answer.
fn redis_cli(redis: &Redis, args: &[&str]) -> String {
    let port = redis.port.to_string();
    let out = Command::new("redis-cli")
        .args(["-p", &port])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Two nodes on one Redis.
fn two_nodes(redis: &Redis) -> (RelayProc, RelayProc) {
    let a = node(None, &redis.url(), &[]);
    let b = node(Some(a.dir.path()), &redis.url(), &[]);
    (a, b)
}

/// Three nodes on one Redis; extra `serve` arguments per node.
fn three_nodes(redis: &Redis, extra: [&[&str]; 3]) -> Vec<RelayProc> {
    let a = node(None, &redis.url(), extra[0]);
    let b = node(Some(a.dir.path()), &redis.url(), extra[1]);
    let c = node(Some(a.dir.path()), &redis.url(), extra[2]);
    vec![a, b, c]
}

fn target(node: &RelayProc, id: &str) -> Target {
    Target::new(&node.addr, &node.ca(), id)
}

fn redis_programs() -> bool {
    real_peer_programs(&["redis-server", "redis-cli"], "redis-server")
}

/// A bare client asking `node` for `id`: the connection once the relay
/// said the host was notified, or what it said instead.
async fn ask_for(node: &Target, id: &str) -> Result<hostile::Control, FromRelay> {
    let mut conn = FramedIo::new(hostile::dial_from(node, loopback(1)).await.unwrap());
    let hello = ToRelay::ClientHello {
        version: PROTOCOL_VERSION,
        id: ComputerId::parse(id).unwrap(),
    };
    conn.write_all(&relay::encode(&hello)).await.unwrap();
    match read(&mut conn).await {
        FromRelay::HostNotified => Ok(conn),
        other => Err(other),
    }
}

async fn read(conn: &mut hostile::Control) -> FromRelay {
    let frame = tokio::time::timeout(Duration::from_secs(30), conn.read_frame())
        .await
        .expect("an answer in time")
        .expect("a frame");
    relay::decode(&frame).unwrap()
}

/// Whether the relay lets the bare host of `control` go within about two
/// seconds (its next heartbeat's renewal finds it released).
async fn let_go(control: &mut hostile::Control) -> bool {
    let _ = hostile::ping(control).await;
    for _ in 0..20 {
        if !hostile::ping(control).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Whether the relay closes `control` within five seconds, while the bare
/// host stays silent (as one whose network dropped the connection).
async fn closed(control: &mut hostile::Control) -> bool {
    let read = tokio::time::timeout(Duration::from_secs(5), control.read_frame()).await;
    matches!(read, Ok(Err(_)))
}

/// Bytes written at one end arrive at the other, both ways.
async fn carries(client: &mut hostile::Pipe, host: &mut hostile::Pipe) {
    one_way(client, host, b"from the client").await;
    one_way(host, client, b"from the host").await;
}

async fn one_way(from: &mut hostile::Pipe, to: &mut hostile::Pipe, what: &[u8]) {
    from.write_all(what).await.unwrap();
    let mut got = vec![0u8; what.len()];
    tokio::time::timeout(Duration::from_secs(10), to.read_exact(&mut got))
        .await
        .expect("the bytes arrive in time")
        .unwrap();
    assert_eq!(got, what);
}

/// The bare host of `id` (its control connection: `control`) answers the
/// notified `client`, opening its data connection at `data_node`; both
/// ends of the session, paired.
async fn answer(
    control: &mut hostile::Control,
    data_node: &Target,
    id: &str,
    mut client: hostile::Control,
) -> (hostile::Pipe, hostile::Pipe) {
    let FromRelay::Incoming { session, .. } = read(control).await else {
        panic!("no session notice");
    };
    let mut data = FramedIo::new(hostile::dial_from(data_node, loopback(2)).await.unwrap());
    let accept = ToRelay::HostAccept {
        id: ComputerId::parse(id).unwrap(),
        session,
    };
    data.write_all(&relay::encode(&accept)).await.unwrap();
    assert_eq!(read(&mut data).await, FromRelay::Paired);
    assert_eq!(read(&mut client).await, FromRelay::Paired);
    let pipe = |conn: hostile::Control| {
        let (stream, rest) = conn.into_parts();
        transport::Prefixed::new(rest, stream)
    };
    (pipe(client), pipe(data))
}

/// A client at `client_node` and the bare host of `id` (control connection
/// `control`) opening its data connection at `data_node`: both ends.
async fn session_across(
    (client_node, data_node): (&Target, &Target),
    id: &str,
    control: &mut hostile::Control,
) -> (hostile::Pipe, hostile::Pipe) {
    let client = ask_for(client_node, id).await.expect("host notified");
    answer(control, data_node, id, client).await
}

#[test]
fn a_client_at_one_node_works_on_a_host_at_another_and_every_path_between_nodes_carries_a_session()
{
    if !redis_programs() {
        return;
    }
    let redis = Redis::start_on(free_port());
    let work = tempfile::tempdir().unwrap();
    let deny = work.path().join("deny.txt");
    std::fs::write(&deny, "clients 127.0.0.50\n").unwrap();
    let c_extra = [
        "--metrics",
        "127.0.0.1:0",
        "--deny-file",
        deny.to_str().unwrap(),
    ];
    let mut nodes = three_nodes(&redis, [&[], &[], &c_extra]);
    let a_addr = nodes[0].addr.clone();

    // The real host at node A, the real client at node C: the test
    // desktop's picture, pixel for pixel.
    let (_desktop, desktop_addr) = test_desktop(USER, PASSWORD);
    let _host = HostProc::start(work.path(), &nodes[0], "far-pc", &desktop_addr);
    let shot = work.path().join("far.png");
    let (code, out) = thin_client_connect(
        &nodes[2].addr,
        &nodes[2].ca(),
        "far-pc",
        (USER, PASSWORD),
        &shot,
        &[],
    );
    assert_eq!(code, 0, "{out}");
    assert!(find_picture(&shot).is_some(), "no test desktop picture");

    // A bare host at A whose data connection lands at B (as a load
    // balancer may send it): client at C → A, host's data at B → A.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let [a, b, c] = [0, 1, 2].map(|i| target(&nodes[i], "bare-pc"));
    rt.block_on(async {
        let key = hostile::host_key();
        let mut control = hostile::register_from(&a, loopback(2), "bare-pc", &key, None)
            .await
            .unwrap();
        let (mut client, mut host) = session_across((&c, &b), "bare-pc", &mut control).await;
        carries(&mut client, &mut host).await;
        // And other arrangements of the three.
        for (client_node, data_node) in [(&a, &a), (&a, &c), (&b, &b), (&c, &c)] {
            let (mut client, mut host) =
                session_across((client_node, data_node), "bare-pc", &mut control).await;
            carries(&mut client, &mut host).await;
        }
    });

    // Unknown IDs are told at any node; a network node C's operator
    // refuses hears so there.
    rt.block_on(async {
        let nobody = hostile::pair_from(&target(&nodes[1], "nobody-pc"), loopback(3)).await;
        assert!(
            matches!(&nobody, Err(Stopped::Relay(ErrorCode::UnknownId, _))),
            "{:?}",
            nobody.err()
        );
        let denied = hostile::pair_from(&c, loopback(50)).await;
        match &denied {
            Err(Stopped::Relay(ErrorCode::Denied, message)) => {
                assert!(
                    message.contains("refused by this relay's operator"),
                    "{message}"
                )
            }
            other => panic!("{:?}", other.as_ref().err()),
        }
    });

    // Strangers on node C's cluster port: one address may keep only so
    // many silent connections waiting for a handshake (the rest are closed
    // at once); a crowd from many addresses fills the waiting room, yet a
    // node still gets through (the oldest stranger makes room); one without
    // a node's certificate is refused.
    let c_node = &mut nodes[2];
    let line = c_node
        .proc
        .wait_for("thin-relay cluster port on ", Duration::from_secs(5));
    let cluster_c = addr_after(&line, "cluster port on ");
    rt.block_on(async {
        let key = hostile::host_key();
        let c = target(c_node, "near-c-pc");
        let a = Target::new(&a_addr, &c_node.ca(), "near-c-pc");
        let mut control = hostile::register_from(&c, loopback(4), "near-c-pc", &key, None)
            .await
            .unwrap();
        let mut one_address = Vec::new();
        for _ in 0..FROM_ONE_ADDRESS {
            one_address.push(silent(&cluster_c, loopback(60)).await);
        }
        let closed = closed_within(&mut one_address, Duration::from_secs(2)).await;
        assert!(
            closed >= FROM_ONE_ADDRESS - CLUSTER_WAITING_PER_ADDRESS,
            "{closed} of {FROM_ONE_ADDRESS} closed"
        );
        let mut crowd = Vec::new();
        let crowded = Instant::now();
        for n in 0..CROWD {
            crowd.push(silent(&cluster_c, loopback(100 + n as u32)).await);
        }
        let (mut client, mut host) = session_across((&a, &c), "near-c-pc", &mut control).await;
        carries(&mut client, &mut host).await;
        let waiting = CROWD - closed_within(&mut crowd, Duration::from_millis(1)).await;
        // Each waits 3 s at most: on a machine so slow that the session took
        // longer, the crowd has gone by itself and proves nothing either way.
        if crowded.elapsed() < Duration::from_millis(2500) {
            assert!(
                waiting >= CLUSTER_WAITING - CLUSTER_WAITING_PER_ADDRESS - 8,
                "the crowd was let go before the node got through: {waiting} waiting"
            );
        }
        let posing = Target::new(&cluster_c, &c_node.ca(), "bare-pc");
        let answered = match hostile::dial_from(&posing, loopback(61)).await {
            Ok(mut tls) => {
                let _ = tls.write_all(b"hello").await;
                let mut byte = [0u8; 1];
                matches!(tls.read(&mut byte).await, Ok(n) if n > 0)
            }
            Err(_) => false,
        };
        assert!(
            !answered,
            "a peer without a node's certificate got an answer"
        );
    });

    // The client's node counts the pairings it made (the real client's
    // and five bare ones; the unknown ID was at B).
    let line = c_node
        .proc
        .wait_for("thin-relay metrics on http://", Duration::from_secs(5));
    let metrics = addr_after(&line, "http://")
        .trim_end_matches("/metrics")
        .to_owned();
    let m = samples(&http_get(&metrics, "/metrics"));
    assert_eq!(
        m.get("thin_relay_pairings_total{outcome=\"paired\"}"),
        Some(&3.0),
        "{m:?}"
    );
    let refused = m
        .get("thin_relay_refused_total{limit=\"cluster_handshakes\"}")
        .copied()
        .unwrap_or(0.0);
    assert!(
        refused >= (FROM_ONE_ADDRESS - CLUSTER_WAITING_PER_ADDRESS) as f64,
        "{m:?}"
    );
    assert!(
        m.get("thin_relay_cluster_handshake_failures_total")
            .copied()
            >= Some(1.0),
        "{m:?}"
    );
    assert_eq!(
        m.get("thin_relay_tls_handshake_failures_total"),
        Some(&0.0),
        "strangers at the cluster port are not the public port's: {m:?}"
    );
}

/// How many connections a node's cluster port lets wait for a handshake,
/// in all and from one address (the relay's own limits).
const CLUSTER_WAITING: usize = 64;
const CLUSTER_WAITING_PER_ADDRESS: usize = 8;
/// Silent connections the cluster-port test opens from one address, and
/// from as many addresses.
const FROM_ONE_ADDRESS: usize = 40;
const CROWD: usize = 70;

/// A silent TCP connection from `source` to `addr`.
async fn silent(addr: &str, source: IpAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind((source, 0).into()).unwrap();
    socket.connect(addr.parse().unwrap()).await.unwrap()
}

/// How many of `conns` the other side closed, waiting up to `limit` for
/// all of them together.
async fn closed_within(conns: &mut [tokio::net::TcpStream], limit: Duration) -> usize {
    let deadline = tokio::time::Instant::now() + limit;
    let mut closed = 0;
    for conn in conns {
        let mut byte = [0u8; 1];
        // A closed one answers at once, even past the deadline.
        let read = tokio::time::timeout_at(deadline, conn.read(&mut byte));
        if matches!(read.await, Ok(Ok(0) | Err(_))) {
            closed += 1;
        }
    }
    closed
}

#[test]
fn a_relay_that_becomes_a_node_brings_its_bindings_and_a_closed_cluster_still_knows_its_pcs() {
    if !redis_programs() {
        return;
    }
    let redis = Redis::start_on(free_port());
    // A single relay of its own, where an office PC bound its ID and the
    // operator released another from a key.
    let mut single = RelayProc::start(&[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (key, squatter) = (hostile::host_key(), hostile::host_key());
    let old = Target::new(&single.addr, &single.ca(), "old-pc");
    let gone = Target::new(&single.addr, &single.ca(), "gone-pc");
    rt.block_on(async {
        let control = hostile::register_from(&old, loopback(30), "old-pc", &key, None).await;
        drop(control.unwrap());
        let control = hostile::register_from(&gone, loopback(31), "gone-pc", &squatter, None).await;
        drop(control.unwrap());
    });
    single.proc.kill();
    let dir = single.dir.path().to_str().unwrap().to_owned();
    let (code, out) = run("thin-relay", &["unbind", "--dir", &dir, "gone-pc"]);
    assert_eq!(code, 0, "{out}");

    // It becomes node A (its folder, file included); node B is closed to
    // unknown hosts.
    let mut a = node_copying(Some(single.dir.path()), &["hosts.jsonl"], &redis.url(), &[]);
    a.proc.wait_for(
        "the relay's own bindings are in the shared directory",
        Duration::from_secs(20),
    );
    let b = node(Some(a.dir.path()), &redis.url(), &["--closed"]);
    rt.block_on(async {
        let at_b = target(&b, "old-pc");
        let known = hostile::register_from(&at_b, loopback(30), "old-pc", &key, None).await;
        assert!(known.is_ok(), "{:?}", known.err());
        let other = hostile::register_from(&at_b, loopback(32), "old-pc", &squatter, None).await;
        assert!(
            matches!(&other, Err(Stopped::Relay(ErrorCode::IdTaken, _))),
            "{:?}",
            other.err()
        );
        // The released key stays released across the cluster.
        let open_c = node(Some(a.dir.path()), &redis.url(), &[]);
        let again = hostile::register_from(
            &target(&open_c, "gone-pc"),
            loopback(31),
            "gone-pc",
            &squatter,
            None,
        )
        .await;
        assert!(
            matches!(&again, Err(Stopped::Relay(ErrorCode::IdTaken, m)) if m.contains("released")),
            "{:?}",
            again.err()
        );
    });
}

/// Both halves of what Redis knows of one ID's binding: the bound key, and
/// the released keys, as the directory writes them (base64).
fn binding_in(redis: &Redis, id: &str) -> (String, String) {
    let bound = redis_cli(redis, &["GET", &format!("thin:{{{id}}}:key")]);
    let released = redis_cli(redis, &["SMEMBERS", &format!("thin:{{{id}}}:released")]);
    (bound, released)
}

#[test]
fn importing_a_file_never_leaves_a_key_both_bound_and_released() {
    use ::relay::directory::{Directory, Imported};
    if !redis_programs() {
        return;
    }
    let mut redis = Redis::start_on(free_port());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let id = |id: &str| ComputerId::parse(id).unwrap();
    let (k1, k2) = (vec![1u8; 32], vec![2u8; 32]);
    let k1_text = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
    rt.block_on(async {
        let node = "127.0.0.1:1".to_owned();
        let dir = Directory::open(&redis.url(), node, Duration::from_secs(30)).unwrap();
        let import = |name: &'static str, key: Option<Vec<u8>>, released: Vec<Vec<u8>>| {
            let dir = &dir;
            async move { dir.import(&id(name), key.as_deref(), &released).await }
        };
        // A file that binds the very key it released: nothing is written.
        let odd = import("odd-pc", Some(k1.clone()), vec![k1.clone()]).await;
        assert_eq!(odd.unwrap(), Imported::Conflict);
        assert_eq!(binding_in(&redis, "odd-pc"), (String::new(), String::new()));
        // The directory binds k1; a file that released k1 leaves it bound
        // and not released.
        let first = import("bound-pc", Some(k1.clone()), vec![]).await;
        assert_eq!(first.unwrap(), Imported::Added);
        let released = import("bound-pc", None, vec![k1.clone()]).await;
        assert_eq!(released.unwrap(), Imported::Conflict);
        assert_eq!(
            binding_in(&redis, "bound-pc"),
            (k1_text.to_owned(), String::new())
        );
        let same = import("bound-pc", Some(k1.clone()), vec![]).await;
        assert_eq!(same.unwrap(), Imported::AlreadyThere);
        let other = import("bound-pc", Some(k2.clone()), vec![]).await;
        assert_eq!(other.unwrap(), Imported::HeldByAnother);
        // Only releases: the released key may not claim, another may.
        let left = import("left-pc", None, vec![k2.clone()]).await;
        assert_eq!(left.unwrap(), Imported::Released);
        assert!(!dir.claimable(&id("left-pc"), &k2).await.unwrap());
        assert!(dir.claimable(&id("left-pc"), &k1).await.unwrap());
        // Redis refusing a call is told apart from Redis being away.
        redis_cli(&redis, &["SET", "thin:{typo-pc}:released", "not a set"]);
        let refused = import("typo-pc", Some(k1.clone()), vec![k2.clone()]).await;
        assert!(refused.as_ref().is_err_and(|e| e.answered()), "{refused:?}");
        redis.proc.kill();
        let away = import("away-pc", Some(k1.clone()), vec![]).await;
        assert!(away.as_ref().is_err_and(|e| !e.answered()), "{away:?}");
    });
}

#[test]
fn a_node_bringing_in_its_file_holds_claims_until_done_skips_what_redis_refuses_and_does_it_once() {
    if !redis_programs() {
        return;
    }
    // A single relay where two office PCs bound their IDs.
    let mut single = RelayProc::start(&[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (key, squatter) = (hostile::host_key(), hostile::host_key());
    let at_single = |id| Target::new(&single.addr, &single.ca(), id);
    rt.block_on(async {
        for (id, n) in [("kept-pc", 40), ("typo-pc", 41)] {
            let at = at_single(id);
            let control = hostile::register_from(&at, loopback(n), id, &key, None).await;
            drop(control.unwrap());
        }
    });
    single.proc.kill();

    // It becomes a node while Redis is not there yet: a squatter's claim
    // on a known PC's ID is refused, not granted.
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let mut a = node_copying(Some(single.dir.path()), &["hosts.jsonl"], &url, &[]);
    let squat = |a: &RelayProc| {
        let target = target(a, "kept-pc");
        let squatter = &squatter;
        async move { hostile::register_from(&target, loopback(42), "kept-pc", squatter, None).await }
    };
    rt.block_on(async {
        match squat(&a).await {
            Err(Stopped::Relay(ErrorCode::Internal, message)) => {
                assert!(message.contains("directory"), "{message}")
            }
            other => panic!("{:?}", other.err()),
        }
    });
    // Redis arrives with something it refuses for one ID (a key of the
    // wrong type). The squatter tries again at once, before the import's
    // next try: still refused.
    let redis = Redis::start_on(port);
    redis_cli(&redis, &["SET", "thin:{typo-pc}:released", "not a set"]);
    let b = node(Some(a.dir.path()), &redis.url(), &[]);
    rt.block_on(async {
        match squat(&a).await {
            Err(Stopped::Relay(ErrorCode::IdTaken | ErrorCode::Internal, _)) => {}
            other => panic!("the squatter got a known PC's ID: {:?}", other.err()),
        }
    });
    // While A's import is under way no node binds a new ID, since A's file
    // may bind it: the other node B refuses one too, for now.
    a.proc
        .wait_for("Redis refused this ID", Duration::from_secs(30));
    let fresh = hostile::host_key();
    let register_fresh = || {
        let at_b = target(&b, "fresh-pc");
        let fresh = &fresh;
        async move { hostile::register_from(&at_b, loopback(43), "fresh-pc", fresh, None).await }
    };
    rt.block_on(async {
        match register_fresh().await {
            Err(Stopped::Relay(ErrorCode::Internal, message)) => {
                assert!(message.contains("directory"), "{message}")
            }
            other => panic!("a new ID was bound during an import: {:?}", other.err()),
        }
    });
    a.proc
        .wait_for("going on without it", Duration::from_secs(30));
    a.proc.wait_for(
        "the relay's own bindings are in the shared directory",
        Duration::from_secs(5),
    );
    rt.block_on(async {
        let at_a = target(&a, "kept-pc");
        let kept = hostile::register_from(&at_a, loopback(40), "kept-pc", &key, None).await;
        assert!(kept.is_ok(), "{:?}", kept.err());
        let squatted = squat(&a).await;
        assert!(
            matches!(&squatted, Err(Stopped::Relay(ErrorCode::IdTaken, _))),
            "{:?}",
            squatted.err()
        );
        let fresh = register_fresh().await;
        assert!(fresh.is_ok(), "{:?}", fresh.err());
    });

    // The import is tried again at the next start (one ID was left out);
    // once all went in, never again.
    redis_cli(&redis, &["DEL", "thin:{typo-pc}:released"]);
    a.proc.kill();
    (a.addr, a.proc) = serve_node(a.dir.path(), &redis.url(), &[]);
    a.proc.wait_for(
        "the relay's own bindings are in the shared directory",
        Duration::from_secs(20),
    );
    assert_eq!(
        binding_in(&redis, "typo-pc").0,
        binding_in(&redis, "kept-pc").0
    );
    a.proc.kill();
    (a.addr, a.proc) = serve_node(a.dir.path(), &redis.url(), &[]);
    a.proc.wait_for(
        "in the shared directory since an earlier start",
        Duration::from_secs(20),
    );
    // A Redis that lost its data (or a new one): the file comes in again.
    let kept = binding_in(&redis, "kept-pc").0;
    redis_cli(&redis, &["FLUSHALL"]);
    a.proc.kill();
    (a.addr, a.proc) = serve_node(a.dir.path(), &redis.url(), &[]);
    a.proc.wait_for(
        "no longer knows this node's hosts.jsonl",
        Duration::from_secs(20),
    );
    a.proc.wait_for(
        "the relay's own bindings are in the shared directory",
        Duration::from_secs(20),
    );
    assert_eq!(binding_in(&redis, "kept-pc").0, kept);
}

#[test]
fn a_host_that_reappears_at_another_node_is_let_go_at_the_old_one_and_reached_at_the_new() {
    if !redis_programs() {
        return;
    }
    let redis = Redis::start_on(free_port());
    let (a, b) = two_nodes(&redis);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (at_a, at_b) = (target(&a, "moving-pc"), target(&b, "moving-pc"));
        let key = hostile::host_key();
        // Its connection at A went quiet without A noticing (a network that
        // dropped it half-way); the PC registers again at B.
        let mut old = hostile::register_from(&at_a, loopback(50), "moving-pc", &key, None)
            .await
            .unwrap();
        let mut new = hostile::register_from(&at_b, loopback(50), "moving-pc", &key, None)
            .await
            .unwrap();
        assert!(closed(&mut old).await, "node A kept the older connection");
        // A client at A is paired with the PC at B at once.
        let (mut client, mut host) = session_across((&at_a, &at_b), "moving-pc", &mut new).await;
        carries(&mut client, &mut host).await;
        // Back at A: B lets go in turn, and A keeps the new connection.
        let mut back = hostile::register_from(&at_a, loopback(50), "moving-pc", &key, None)
            .await
            .unwrap();
        assert!(closed(&mut new).await, "node B kept the older connection");
        assert!(hostile::ping(&mut back).await);
        let (mut client, mut host) = session_across((&at_b, &at_a), "moving-pc", &mut back).await;
        carries(&mut client, &mut host).await;
    });
}

#[test]
fn data_connections_that_cannot_be_handed_on_are_limited_per_address() {
    if !redis_programs() {
        return;
    }
    let redis = Redis::start_on(free_port());
    let (a, b) = two_nodes(&redis);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let key = hostile::host_key();
        let at_a = target(&a, "busy-pc");
        let mut control = hostile::register_from(&at_a, loopback(80), "busy-pc", &key, None)
            .await
            .unwrap();
        // An attacker at B makes up sessions for a PC online at A: each
        // costs a look-up in Redis and a connection from B to A.
        let at_b = target(&b, "busy-pc");
        let (mut unknown, mut limited) = (0, 0);
        let started = Instant::now();
        for n in 0..60u8 {
            let mut data = FramedIo::new(hostile::dial_from(&at_b, loopback(81)).await.unwrap());
            let accept = ToRelay::HostAccept {
                id: ComputerId::parse("busy-pc").unwrap(),
                session: vec![n; 16],
            };
            data.write_all(&relay::encode(&accept)).await.unwrap();
            match read(&mut data).await {
                FromRelay::Error {
                    code: ErrorCode::UnknownSession,
                    ..
                } => unknown += 1,
                FromRelay::Error {
                    code: ErrorCode::RateLimited,
                    message,
                } => {
                    assert!(message.contains("no client waits for"), "{message}");
                    limited += 1;
                }
                other => panic!("{other:?}"),
            }
        }
        // 30 at once, then one a second.
        let refilled = started.elapsed().as_secs() as usize + 1;
        assert!(
            (30..=30 + refilled).contains(&unknown),
            "{unknown} handed on"
        );
        assert!(limited >= 1, "none refused");
        // The PC's own data connections, from its address, still go through.
        let (mut client, mut host) = session_across((&at_a, &at_b), "busy-pc", &mut control).await;
        carries(&mut client, &mut host).await;
    });
}

#[test]
fn two_hosts_racing_for_one_new_id_at_two_nodes_give_it_to_exactly_one_key_every_time() {
    if !redis_programs() {
        return;
    }
    let redis = Redis::start_on(free_port());
    let nodes = three_nodes(&redis, [&[], &[], &[]]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        for round in 0..50 {
            let id = format!("race-{round}");
            let (a, b, c) = (
                target(&nodes[0], &id),
                target(&nodes[1], &id),
                target(&nodes[2], &id),
            );
            let (first, second) = (hostile::host_key(), hostile::host_key());
            let (at_a, at_b) = tokio::join!(
                hostile::register_from(&a, loopback(10), &id, &first, None),
                hostile::register_from(&b, loopback(11), &id, &second, None),
            );
            let taken =
                |r: &Result<_, Stopped>| matches!(r, Err(Stopped::Relay(ErrorCode::IdTaken, _)));
            let (winner, loser) = match (&at_a, &at_b) {
                (Ok(_), r) if taken(r) => (&first, &second),
                (r, Ok(_)) if taken(r) => (&second, &first),
                _ => panic!(
                    "round {round}: not exactly one winner: {:?} / {:?}",
                    at_a.as_ref().err(),
                    at_b.as_ref().err()
                ),
            };
            // Any node knows who won.
            let again = hostile::register_from(&c, loopback(12), &id, loser, None).await;
            assert!(taken(&again), "round {round}: {:?}", again.err());
            drop((at_a, at_b));
            let back = hostile::register_from(&c, loopback(12), &id, winner, None).await;
            assert!(back.is_ok(), "round {round}: {:?}", back.err());
        }
    });

    // The operator releases an ID at node B; the host holding it at node
    // A is let go at its next heartbeat and cannot claim it back.
    rt.block_on(async {
        let a = target(&nodes[0], "released-pc");
        let key = hostile::host_key();
        let mut control = hostile::register_from(&a, loopback(13), "released-pc", &key, None)
            .await
            .unwrap();
        assert!(hostile::ping(&mut control).await);
        let b_dir = nodes[1].dir.path().to_str().unwrap().to_owned();
        let (code, out) = run("thin-relay", &["unbind", "--dir", &b_dir, "released-pc"]);
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("released"), "{out}");
        // The renewal after this heartbeat finds the ID released.
        assert!(
            let_go(&mut control).await,
            "the released host stayed online at node A"
        );
        let again = hostile::register_from(&a, loopback(13), "released-pc", &key, None).await;
        assert!(
            matches!(&again, Err(Stopped::Relay(ErrorCode::IdTaken, m)) if m.contains("released")),
            "{:?}",
            again.err()
        );

        // Straight in the directory, with no node on the folder.
        let c = target(&nodes[2], "elsewhere-pc");
        let mut control = hostile::register_from(&c, loopback(14), "elsewhere-pc", &key, None)
            .await
            .unwrap();
        let audit = tempfile::tempdir().unwrap();
        let audit_dir = audit.path().to_str().unwrap();
        let url = redis.url();
        let args = [
            "unbind",
            "--dir",
            audit_dir,
            "--directory",
            &url,
            "elsewhere-pc",
        ];
        let (code, out) = run("thin-relay", &args);
        assert_eq!(code, 0, "{out}");
        let (code, out) = run("thin-relay", &args);
        assert_ne!(code, 0, "released twice: {out}");
        assert!(out.contains("not bound"), "{out}");
        assert!(
            let_go(&mut control).await,
            "the released host stayed online at node C"
        );
    });
}

#[test]
fn without_redis_sessions_go_on_and_registrations_are_refused_clearly_until_it_is_back() {
    if !redis_programs() {
        return;
    }
    let port = free_port();
    let mut redis = Redis::start_on(port);
    let nodes = three_nodes(&redis, [&[], &[], &[]]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let [a, b, c] = [0, 1, 2].map(|i| target(&nodes[i], "steady-pc"));
    rt.block_on(async {
        let key = hostile::host_key();
        let mut control = hostile::register_from(&a, loopback(20), "steady-pc", &key, None)
            .await
            .unwrap();
        let (mut client, mut host) = session_across((&c, &b), "steady-pc", &mut control).await;

        redis.proc.kill();
        // The session between nodes goes on; the host stays online at its
        // node and is still found by clients there.
        carries(&mut client, &mut host).await;
        assert!(hostile::ping(&mut control).await);
        let (mut client2, mut host2) = session_across((&a, &a), "steady-pc", &mut control).await;
        carries(&mut client2, &mut host2).await;
        // New registrations are refused in words, at every node.
        let other = hostile::host_key();
        let refused = hostile::register_from(
            &target(&nodes[1], "new-pc"),
            loopback(21),
            "new-pc",
            &other,
            None,
        )
        .await;
        match &refused {
            Err(Stopped::Relay(ErrorCode::Internal, message)) => {
                assert!(message.contains("directory"), "{message}")
            }
            other => panic!("{:?}", other.as_ref().err()),
        }
        // A client at another node hears why it cannot be found.
        let lost = hostile::pair_from(&c, loopback(22)).await;
        match &lost {
            Err(Stopped::Relay(ErrorCode::Internal, message)) => {
                assert!(message.contains("try again"), "{message}")
            }
            other => panic!("{:?}", other.as_ref().err()),
        }

        // Redis comes back empty (no persistence here): registrations work
        // again, and the host's next heartbeat makes it findable again.
        redis = Redis::start_on(port);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let back = hostile::register_from(
                &target(&nodes[1], "new-pc"),
                loopback(21),
                "new-pc",
                &other,
                None,
            )
            .await;
            if back.is_ok() {
                break;
            }
            assert!(Instant::now() < deadline, "{:?}", back.err());
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert!(hostile::ping(&mut control).await);
        let deadline = Instant::now() + Duration::from_secs(10);
        let found = loop {
            match ask_for(&c, "steady-pc").await {
                Ok(found) => break found,
                Err(said) => assert!(Instant::now() < deadline, "not found again: {said:?}"),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let (mut client3, mut host3) = answer(&mut control, &b, "steady-pc", found).await;
        carries(&mut client3, &mut host3).await;
        carries(&mut client, &mut host).await;
    });
    drop(redis);
}

/// A real host in `work` that knows all of `nodes`, serving the test
/// desktop at `desktop`; returns it and the index of the node it chose.
fn host_knowing_all(nodes: &[RelayProc], work: &Path, id: &str, desktop: &str) -> (Proc, usize) {
    let all = nodes
        .iter()
        .map(|n| n.addr.clone())
        .collect::<Vec<_>>()
        .join(",");
    let (host, line) = thin_host_at(&all, &nodes[0].ca(), work, id, desktop);
    let chosen = nodes
        .iter()
        .position(|n| {
            let said = format!("relay={}", n.addr);
            line.split_whitespace().any(|word| word == said)
        })
        .unwrap_or_else(|| panic!("which node? {line}"));
    (host, chosen)
}

/// A real thin-host of `id` (in `work`) with the relay addresses `relays`,
/// serving `desktop`: the process, once registered, and the line that says
/// where.
fn thin_host_at(relays: &str, ca: &Path, work: &Path, id: &str, desktop: &str) -> (Proc, String) {
    let config = work.join(format!("{id}.toml"));
    init_host(&config, id, relays, ca, Some(desktop), &[]);
    set_host_password(&config, HOST_PASSWORD);
    let mut host = Proc::start("thin-host", &["run", "--config", config.to_str().unwrap()]);
    let line = host.wait_for("registered; waiting for sessions", Duration::from_secs(20));
    (host, strip_ansi(&line))
}

/// A TCP load balancer in front of two nodes, as an operator may put one
/// behind a single name: the first connection goes to `first`, every
/// later one to `rest` (for as long as the runtime runs it). `count`s the
/// connections it took.
async fn balance(
    listener: tokio::net::TcpListener,
    (first, rest): (String, String),
    count: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let mut next = first;
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            return;
        };
        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let backend = std::mem::replace(&mut next, rest.clone());
        tokio::spawn(async move {
            if let Ok(mut outbound) = tokio::net::TcpStream::connect(&backend).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

#[test]
fn behind_one_load_balancer_a_data_connection_at_another_node_is_handed_on_or_the_client_told_at_once(
) {
    if !redis_programs() {
        return;
    }
    let mut redis = Redis::start_on(free_port());
    let (a, b) = two_nodes(&redis);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let front = listener.local_addr().unwrap().to_string();
    let backends = (a.addr.clone(), b.addr.clone());
    let _balancer = rt.spawn(balance(listener, backends, Default::default()));
    // The office PC knows only the balancer: its control connection lands
    // at A, its data connections at B. No session reaches a desktop here.
    let work = tempfile::tempdir().unwrap();
    let (_host, _) = thin_host_at(&front, &a.ca(), work.path(), "lb-pc", "127.0.0.1:9");
    rt.block_on(async {
        let at_a = target(&a, "lb-pc");
        let mut client = ask_for(&at_a, "lb-pc").await.expect("host notified");
        assert_eq!(read(&mut client).await, FromRelay::Paired);
        drop(client);
        // Without Redis, B cannot hand the data connection on: the office
        // PC says so through its control connection and the waiting client
        // hears it in words, not after its pairing timeout.
        redis.proc.kill();
        let mut client = ask_for(&at_a, "lb-pc").await.expect("host notified");
        match read(&mut client).await {
            FromRelay::Error {
                code: ErrorCode::HostBusy,
                message,
            } => assert!(
                message.contains("could not connect this session"),
                "{message}"
            ),
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn behind_one_load_balancer_a_node_that_names_itself_gets_the_data_connections_straight() {
    if !redis_programs() {
        return;
    }
    let mut redis = Redis::start_on(free_port());
    let [own_a, own_b] = [0; 2].map(|_| format!("127.0.0.1:{}", free_port()));
    let a = node(
        None,
        &redis.url(),
        &["--listen", &own_a, "--public-addr", &own_a],
    );
    let at_b = ["--listen", &own_b, "--public-addr", &own_b];
    let _b = node(Some(a.dir.path()), &redis.url(), &at_b);
    // A name its certificate does not cover, which office PCs would not
    // follow: refused at start, in words.
    let elsewhere = tempfile::tempdir().unwrap();
    for file in ["ca.pem", "relay.pem", "relay-key.pem"] {
        std::fs::copy(a.dir.path().join(file), elsewhere.path().join(file)).unwrap();
    }
    let d = elsewhere.path().to_str().unwrap();
    let url = redis.url();
    let args = [
        "serve",
        "--dir",
        d,
        "--listen",
        "127.0.0.1:0",
        "--directory",
        &url,
        "--cluster-addr",
        "127.0.0.1:0",
        "--public-addr",
        "relay-z.example.jp:443",
    ];
    let (code, out) = run("thin-relay", &args);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("does not cover relay-z.example.jp"), "{out}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let front = listener.local_addr().unwrap().to_string();
    let balanced = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let backends = (own_a.clone(), own_b.clone());
    let _balancer = rt.spawn(balance(listener, backends, balanced.clone()));
    let work = tempfile::tempdir().unwrap();
    let (_host, _) = thin_host_at(&front, &a.ca(), work.path(), "named-pc", "127.0.0.1:9");
    rt.block_on(async {
        let at_a = target(&a, "named-pc");
        let mut client = ask_for(&at_a, "named-pc").await.expect("host notified");
        assert_eq!(read(&mut client).await, FromRelay::Paired);
        // Straight to A: a session needs neither B nor Redis.
        redis.proc.kill();
        let mut client = ask_for(&at_a, "named-pc").await.expect("host notified");
        assert_eq!(read(&mut client).await, FromRelay::Paired);
    });
    let through_balancer = balanced.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(through_balancer, 1, "only the control connection");
}

/// `line` without terminal colour codes.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|c| c.is_ascii_alphabetic());
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn a_hosts_sessions_stay_on_its_own_node_even_without_redis() {
    if !redis_programs() {
        return;
    }
    let mut redis = Redis::start_on(free_port());
    let nodes = three_nodes(&redis, [&[], &[], &[]]);
    let work = tempfile::tempdir().unwrap();
    let (_desktop, desktop_addr) = test_desktop(USER, PASSWORD);
    let (_host, at) = host_knowing_all(&nodes, work.path(), "homely-pc", &desktop_addr);

    // Without the directory no node can hand a data connection on, so
    // every session below shows that the host dialled its own node (it
    // knows three; a rotating choice would miss it two times in three).
    redis.proc.kill();
    for round in 0..3 {
        let shot = work.path().join(format!("round-{round}.png"));
        let (code, out) = thin_client_connect(
            &nodes[at].addr,
            &nodes[at].ca(),
            "homely-pc",
            (USER, PASSWORD),
            &shot,
            &[],
        );
        assert_eq!(code, 0, "round {round}: {out}");
        assert!(find_picture(&shot).is_some(), "round {round}: no picture");
    }
}

#[test]
fn when_a_node_dies_its_hosts_come_back_at_another_and_are_reachable_again() {
    if !redis_programs() {
        return;
    }
    let redis = Redis::start_on(free_port());
    let mut nodes = three_nodes(&redis, [&[], &[], &[]]);
    let work = tempfile::tempdir().unwrap();
    let (_desktop, desktop_addr) = test_desktop(USER, PASSWORD);
    let (_host, at) = host_knowing_all(&nodes, work.path(), "moving-pc", &desktop_addr);
    let elsewhere = (at + 1) % 3;
    let shot = work.path().join("before.png");
    let (code, out) = thin_client_connect(
        &nodes[elsewhere].addr,
        &nodes[elsewhere].ca(),
        "moving-pc",
        (USER, PASSWORD),
        &shot,
        &[],
    );
    assert_eq!(code, 0, "{out}");

    // The node holding the host dies.
    nodes[at]
        .proc
        .wait_for("host online", Duration::from_secs(5));
    nodes[at].proc.kill();
    let survivor = &nodes[elsewhere];
    let killed_at = Instant::now();
    let shot = work.path().join("after.png");
    loop {
        let (code, out) = thin_client_connect(
            &survivor.addr,
            &survivor.ca(),
            "moving-pc",
            (USER, PASSWORD),
            &shot,
            &[],
        );
        if code == 0 {
            assert!(find_picture(&shot).is_some(), "no picture after the move");
            break;
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(60),
            "the host was not reachable again within a minute: {out}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!(
        "reachable again {:.1} s after its node died",
        killed_at.elapsed().as_secs_f64()
    );
}

/// Whether the node at `node` still accepts TCP connections.
fn accepts(node: &RelayProc) -> bool {
    std::net::TcpStream::connect_timeout(&node.addr.parse().unwrap(), Duration::from_secs(2))
        .is_ok()
}

#[test]
fn a_stopping_node_sends_its_hosts_elsewhere_and_lets_its_sessions_end_up_to_a_limit() {
    if !redis_programs() {
        return;
    }
    let redis = Redis::start_on(free_port());
    let mut nodes = three_nodes(
        &redis,
        [&["--drain-timeout", "60"], &["--drain-timeout", "1"], &[]],
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let [a, b, c] = [0, 1, 2].map(|i| target(&nodes[i], "mover-pc"));
    let key = hostile::host_key();
    let (mut client, mut host, mut control) = rt.block_on(async {
        let mut control = hostile::register_from(&a, loopback(30), "mover-pc", &key, None)
            .await
            .unwrap();
        let (mut client, mut host) = session_across((&a, &a), "mover-pc", &mut control).await;
        carries(&mut client, &mut host).await;
        (client, host, control)
    });

    nodes[0].proc.signal(libc::SIGTERM);
    rt.block_on(async {
        // The host hears why and moves; the node takes no one new.
        match read(&mut control).await {
            FromRelay::Error { code, message } => {
                assert_eq!(code, ErrorCode::RelayFull);
                assert!(message.contains("stopping"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while accepts(&nodes[0]) {
            assert!(Instant::now() < deadline, "the stopping node still accepts");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let moved = hostile::register_from(&b, loopback(30), "mover-pc", &key, None).await;
        let mut moved = moved.unwrap();
        let (mut client2, mut host2) = session_across((&c, &c), "mover-pc", &mut moved).await;
        carries(&mut client2, &mut host2).await;
        // The session under way at the stopping node goes on.
        carries(&mut client, &mut host).await;
    });
    // It ends; the node stops at once, well within its limit.
    drop((client, host));
    let (code, out) = nodes[0].proc.wait_exit(Duration::from_secs(15));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("drained: no session under way"), "{out}");

    // Node B gives its sessions one second.
    let (mut client, mut host) = rt.block_on(async {
        let mut control = hostile::register_from(&b, loopback(31), "short-pc", &key, None)
            .await
            .unwrap();
        let b = target(&nodes[1], "short-pc");
        session_across((&b, &b), "short-pc", &mut control).await
    });
    rt.block_on(carries(&mut client, &mut host));
    nodes[1].proc.signal(libc::SIGTERM);
    let (code, out) = nodes[1].proc.wait_exit(Duration::from_secs(10));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("drain limit reached"), "{out}");
    rt.block_on(async {
        let mut byte = [0u8; 1];
        let end = tokio::time::timeout(Duration::from_secs(5), client.read(&mut byte)).await;
        assert!(
            matches!(end, Ok(Ok(0) | Err(_))),
            "the cut session is still open"
        );
    });
}

#[test]
fn a_full_node_says_so_for_hosts_and_sessions_apart() {
    let relay = RelayProc::start(&["--max-hosts", "2", "--max-sessions", "1"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let keys = [(); 3].map(|()| hostile::host_key());
        let mut controls = Vec::new();
        for (n, key) in keys.iter().take(2).enumerate() {
            let id = format!("full-{n}");
            let t = target(&relay, &id);
            controls.push(
                hostile::register_from(&t, loopback(40), &id, key, None)
                    .await
                    .unwrap(),
            );
        }
        let third = hostile::register_from(
            &target(&relay, "full-2"),
            loopback(40),
            "full-2",
            &keys[2],
            None,
        )
        .await;
        match &third {
            Err(Stopped::Relay(ErrorCode::RelayFull, message)) => {
                assert!(message.contains("as many office PCs"), "{message}")
            }
            other => panic!("{:?}", other.as_ref().err()),
        }
        // A registered host coming back is not a new one.
        let t0 = target(&relay, "full-0");
        controls[0] = hostile::register_from(&t0, loopback(40), "full-0", &keys[0], None)
            .await
            .unwrap();

        let (mut client, mut host) = session_across((&t0, &t0), "full-0", &mut controls[0]).await;
        carries(&mut client, &mut host).await;
        let second = ask_for(&target(&relay, "full-1"), "full-1").await;
        match second {
            Err(FromRelay::Error { code, message }) => {
                assert_eq!(code, ErrorCode::RelayFull);
                assert!(message.contains("try again"), "{message}");
            }
            other => panic!("{:?}", other.err()),
        }
        // A place is given back when its session ends.
        drop((client, host));
        let deadline = Instant::now() + Duration::from_secs(10);
        let t1 = target(&relay, "full-1");
        let found = loop {
            match ask_for(&t1, "full-1").await {
                Ok(found) => break found,
                Err(said) => assert!(Instant::now() < deadline, "{said:?}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let (mut client, mut host) = answer(&mut controls[1], &t1, "full-1", found).await;
        carries(&mut client, &mut host).await;
    });
}
