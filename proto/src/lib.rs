//! Wire protocol shared by every role: framing, relay control messages, the
//! client/host session preamble, and the sans-I/O pairing state machine.
//!
//! Nothing here touches sockets or a runtime, so the same code runs natively
//! and in the browser (wasm32).

pub mod auth;
pub mod channel;
pub mod channels;
pub mod clipboard;
pub mod frame;
pub mod id;
pub mod liveness;
pub mod pairing;
pub mod rate;
pub mod relay;
pub mod session;
pub mod x224;

pub use frame::{encode_frame, FrameDecoder, FrameError, MAX_FRAME_LEN};
pub use id::{ComputerId, IdError};
