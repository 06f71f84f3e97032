//! The client, without any UI: reach the relay, pair with a computer ID, and
//! run the RDP session with ironrdp. The desktop and web apps drive it; the
//! `thin-client` binary is its command-line face.
//!
//! Protocol logic is sans-I/O (`proto`, ironrdp's state machines); the
//! session code is generic over any byte stream so the browser can supply a
//! WebSocket while native builds dial TCP + TLS ([`native`]).

pub mod error;
pub mod pairing;
pub mod rdp;

#[cfg(not(target_arch = "wasm32"))]
pub mod demo;
#[cfg(not(target_arch = "wasm32"))]
pub mod native;
#[cfg(not(target_arch = "wasm32"))]
pub mod screenshot;

pub use error::ConnectError;
pub use rdp::{FrameStatus, RdpCredentials, RdpSession, SessionEvent};

/// Steps of a connection, in order, for progress displays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// TCP + TLS to the relay is up.
    RelayConnected,
    /// The relay found the computer online and asked it to answer.
    HostNotified,
    /// The pipe to the host is open.
    Paired,
    /// The host reached its RDP server; the remote logon runs.
    RemoteLogon,
    /// The remote desktop session is running.
    Connected,
}
