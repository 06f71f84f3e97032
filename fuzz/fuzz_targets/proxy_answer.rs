//! An HTTP proxy's answer to the client's or host's CONNECT.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((code, line)) = transport::dial::proxy_status(data) {
        assert!(line.contains(&code.to_string()));
    }
});
