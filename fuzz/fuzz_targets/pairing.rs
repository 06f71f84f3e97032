//! The client's pairing state machine, fed whatever the relay (or anyone
//! between) sends after the client asked for a computer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::pairing::ClientPairing;
use proto::ComputerId;

fuzz_target!(|data: &[u8]| {
    let id = ComputerId::parse("office-pc-42").unwrap();
    let (mut pairing, _hello) = ClientPairing::start(&id);
    // The first byte splits the input into two deliveries.
    let Some((&split, bytes)) = data.split_first() else {
        return;
    };
    let (first, second) = bytes.split_at(usize::from(split).min(bytes.len()));
    if pairing.receive(first).is_ok() {
        let _ = pairing.receive(second);
    }
});
