//! The end-to-end channel (Noise): the host answering a first message, the
//! client reading the host's answer, and an established channel opening
//! records. Anything that is not the peer's is refused without a panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use proto::channel::{Initiator, Responder, StaticKey};

fn host_key() -> &'static StaticKey {
    static KEY: OnceLock<StaticKey> = OnceLock::new();
    KEY.get_or_init(|| StaticKey::generate().unwrap())
}

fuzz_target!(|data: &[u8]| {
    // The host, given an arbitrary first message.
    let _ = Responder::answer(host_key(), data);

    // The client, given an arbitrary answer.
    let (mut client, _first) = Initiator::start().unwrap();
    let _ = client.read_answer(data);

    // A real handshake, then an arbitrary record.
    let (mut client, first) = Initiator::start().unwrap();
    let (host, answer) = Responder::answer(host_key(), &first).unwrap();
    client.read_answer(&answer).unwrap();
    let (last, mut client) = client.finish().unwrap();
    let mut host = host.finish(&last).unwrap();
    assert!(host.open(data).is_err(), "a forged record was accepted");
    let sealed = client.seal(b"hello").unwrap();
    assert_eq!(host.open(&sealed).unwrap(), b"hello");
});
