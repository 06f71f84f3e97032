//! Both sides of a session as the host splits them into messages and reads
//! them for dynamic channels its policy forbids.
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
        // Odd messages judged as the server's, even ones as the client's.
        let judged = match message.len() % 2 {
            0 => guard.from_client(message).map(drop),
            _ => guard.from_server(message).map(drop),
        };
        if judged.is_err() {
            break;
        }
        rest = &rest[len..];
    }
});
