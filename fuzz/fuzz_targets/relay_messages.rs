//! What the relay reads from hosts and clients (`ToRelay`) and what they
//! read from it (`FromRelay`): any payload decodes or is refused, and what
//! decodes encodes back to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::relay::{decode, encode, FromRelay, ToRelay};
use proto::FrameDecoder;

fn round_trip<T>(data: &[u8])
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let Ok(message) = decode::<T>(data) else {
        return;
    };
    // Only messages that fit a frame are ever sent.
    if data.len() > proto::MAX_FRAME_LEN / 2 {
        return;
    }
    let mut decoder = FrameDecoder::new();
    decoder.push(&encode(&message));
    let payload = decoder.next_frame().unwrap().unwrap();
    assert_eq!(decode::<T>(&payload).unwrap(), message);
}

fuzz_target!(|data: &[u8]| {
    round_trip::<ToRelay>(data);
    round_trip::<FromRelay>(data);
});
