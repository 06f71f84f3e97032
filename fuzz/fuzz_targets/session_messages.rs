//! What client and host say to each other inside the end-to-end channel:
//! the host's gate reads `ClientMsg` and `SessionRequest`, the client reads
//! `HostMsg` and `SessionReply`. Also the computer ID users type.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::auth::{ClientMsg, HostMsg};
use proto::session::{SessionReply, SessionRequest};

fn round_trip<T>(data: &[u8])
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    if let Ok(message) = serde_json::from_slice::<T>(data) {
        let again = serde_json::to_vec(&message).unwrap();
        assert_eq!(serde_json::from_slice::<T>(&again).unwrap(), message);
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip::<ClientMsg>(data);
    round_trip::<HostMsg>(data);
    round_trip::<SessionRequest>(data);
    round_trip::<SessionReply>(data);
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(id) = proto::ComputerId::parse(text) {
            assert_eq!(proto::ComputerId::parse(id.as_str()).unwrap(), id);
        }
    }
});
