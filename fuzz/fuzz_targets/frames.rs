//! The length-prefixed framing every peer reads first (relay, host,
//! client): fed in arbitrary chunks, it yields only frames within the
//! limit, never panics, and the leftover is what followed the last frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::{FrameDecoder, MAX_FRAME_LEN};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the chunk size, so frames split anywhere.
    let Some((&chunk, bytes)) = data.split_first() else {
        return;
    };
    let mut decoder = FrameDecoder::new();
    for piece in bytes.chunks(usize::from(chunk).max(1)) {
        decoder.push(piece);
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => assert!(!frame.is_empty() && frame.len() <= MAX_FRAME_LEN),
                Ok(None) => break,
                // The connection is dropped after an error.
                Err(_) => return,
            }
        }
    }
});
