//! The RDP server's side of a session as the host splits it into messages
//! and reads it for dynamic channels its policy forbids.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::channels::{message_len, DynamicGuard, Forbidden};

fuzz_target!(|data: &[u8]| {
    let forbidden = Forbidden::by_policy(false, false, false);
    let mut guard = DynamicGuard::new(
        vec!["cliprdr".into(), "drdynvc".into()],
        &forbidden.dynamics,
    );
    let mut rest = data;
    // Bounded: every message is at least two bytes long.
    while let Ok(Some(len)) = message_len(rest) {
        let Some(message) = rest.get(..len) else {
            break;
        };
        if guard.from_server(message).is_err() {
            break;
        }
        rest = &rest[len..];
    }
});
