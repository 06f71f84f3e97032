//! What either end of the clipboard channel reads from the other: any bytes
//! as a run of channel messages (split at 0xFE), to the client and to the
//! server side, each answered as the apps answer them.
#![no_main]

use ironrdp_svc::SvcProcessor as _;
use libfuzzer_sys::fuzz_target;
use proto::clipboard::{self, Arrived, CliprdrClient, CliprdrServer, MAX_TEXT_BYTES};

fuzz_target!(|data: &[u8]| {
    let mut client: CliprdrClient = clipboard::channel();
    let mut server: CliprdrServer = clipboard::channel();
    for message in data.split(|b| *b == 0xfe) {
        let _ = client.process(message);
        let _ = server.process(message);
        for done in [
            clipboard::answer(&mut client, Some("ローカル")),
            clipboard::answer(&mut server, None),
        ]
        .into_iter()
        .flatten()
        {
            for arrived in done.arrived {
                if let Arrived::Text(text) = arrived {
                    assert!(text.encode_utf16().count() * 2 <= MAX_TEXT_BYTES);
                }
            }
        }
    }
});
