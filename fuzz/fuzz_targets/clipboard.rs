//! What either end of the clipboard channel reads from the other: any bytes
//! as a run of channel messages (split at 0xFE), to the client and to the
//! server side, each answered as the apps answer them (the client offering
//! text, the server a picture); pictures that arrive must decode.
#![no_main]

use ironrdp_svc::SvcProcessor as _;
use libfuzzer_sys::fuzz_target;
use proto::clipboard::{self, Arrived, Clip, CliprdrClient, CliprdrServer, MAX_TEXT_BYTES};

fuzz_target!(|data: &[u8]| {
    let mut client: CliprdrClient = clipboard::channel();
    let mut server: CliprdrServer = clipboard::channel();
    let text = Clip::Text("ローカル".into());
    let png = clipboard::png_from_rgba(2, 1, &[1, 2, 3, 255, 4, 5, 6, 255]).expect("encodes");
    let picture = Clip::image(&png).expect("a small picture");
    for message in data.split(|b| *b == 0xfe) {
        let _ = client.process(message);
        let _ = server.process(message);
        for done in [
            clipboard::answer(&mut client, Some(&text)),
            clipboard::answer(&mut server, Some(&picture)),
        ]
        .into_iter()
        .flatten()
        {
            for arrived in done.arrived {
                match arrived {
                    Arrived::Text(text) => {
                        assert!(text.encode_utf16().count() * 2 <= MAX_TEXT_BYTES)
                    }
                    Arrived::Image(png) => {
                        clipboard::rgba_from_png(&png).expect("an arrived picture decodes");
                    }
                    _ => {}
                }
            }
        }
    }
});
