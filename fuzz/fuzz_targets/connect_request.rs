//! The client's bytes before its MCS Connect Initial as the host splits them
//! (CredSSP messages, then the request it rewrites to enforce its policy).
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::channels::{next_message, strip, Next, CLIPBOARD, DRIVES, SOUND};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    // Bounded: every step consumes at least one byte or stops.
    while let Ok(next) = next_message(rest) {
        match next {
            Next::CredSsp(len) if len > 0 && rest.len() >= len => rest = &rest[len..],
            Next::ConnectInitial(len) if rest.len() >= len => {
                let _ = strip(&rest[..len], &[DRIVES, CLIPBOARD, SOUND]);
                break;
            }
            _ => break,
        }
    }
});
