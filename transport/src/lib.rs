//! Thin I/O adapters around the sans-I/O `proto` crate.
//!
//! [`framed`] works over any tokio byte stream (also in the browser, where a
//! WebSocket adapter provides the stream); the native modules dial TCP,
//! tunnel through an HTTP CONNECT proxy and speak TLS 1.3 with a pinned CA.

pub mod framed;
pub mod prefixed;
pub mod secure;
pub mod unread;

#[cfg(not(target_arch = "wasm32"))]
pub mod dial;
#[cfg(unix)]
pub mod local;
#[cfg(not(target_arch = "wasm32"))]
pub mod tls;

pub use framed::{FramedIo, ReadFrameError};
pub use prefixed::Prefixed;
pub use secure::SecureStream;
pub use unread::Unread;
