//! The host password exchange (OPAQUE): the host reading a client's
//! credential request and finalization, the client reading a host's
//! response. Malformed messages are refused, never accepted.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use proto::auth::opaque;

const CONTEXT: &[u8] = b"channel handshake hash";

/// A host set up once (registration runs Argon2, which is slow on purpose).
fn host() -> &'static (Vec<u8>, Vec<u8>) {
    static HOST: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    HOST.get_or_init(|| {
        let setup = opaque::new_server_setup();
        let file = opaque::register(&setup, b"Correct-Horse-7").unwrap();
        (setup, file)
    })
}

fuzz_target!(|data: &[u8]| {
    let (setup, file) = host();
    // The host, given an arbitrary credential request.
    let _ = opaque::server_start(setup, file, data, CONTEXT);

    // The host, given a real request and an arbitrary finalization.
    let (_client, request) = opaque::client_start(b"Correct-Horse-7").unwrap();
    let (state, _response) = opaque::server_start(setup, file, &request, CONTEXT).unwrap();
    assert!(
        opaque::server_finish(state, data).is_err(),
        "a forged proof passed"
    );

    // The client, given an arbitrary response (a malformed one is refused
    // before the slow password hashing).
    let (client, _request) = opaque::client_start(b"Correct-Horse-7").unwrap();
    let _ = opaque::client_finish(client, b"Correct-Horse-7", data, CONTEXT);
});
