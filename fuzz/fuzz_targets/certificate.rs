//! The RDP server's certificate, which the client reads to take the key it
//! checks inside CredSSP (sent to it by the host in the RDCleanPath answer).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = proto::session::server_public_key(data);
});
