//! The client, without any UI: reach the relay, pair with a computer ID, and
//! run the RDP session with ironrdp. The desktop and web apps drive it; the
//! `thin-client` binary (crate `cli`) is its command-line face. It depends on
//! nothing server-side: the in-process demo lives in the `demo` crate.
//!
//! The steps: dial the relay and pair ([`pairing`]), open the end-to-end
//! channel and check the host's key ([`secure`], [`known_hosts`]), then RDP
//! inside it ([`rdp`]). Questions for the user go through [`Interaction`].
//!
//! Protocol logic is sans-I/O (`proto`, ironrdp's state machines); the
//! session code is generic over any byte stream so the browser can supply a
//! WebSocket while native builds dial TCP + TLS ([`native`]).

pub mod auth;
pub mod driver;
pub mod error;
pub mod incoming;
pub mod interaction;
pub mod known_hosts;
pub mod monitors;
pub mod pairing;
pub mod rdp;
pub mod secure;

#[cfg(not(target_arch = "wasm32"))]
pub mod graphics;
#[cfg(not(target_arch = "wasm32"))]
pub mod native;
pub mod sound;

pub use auth::Admission;
pub use error::ConnectError;
pub use interaction::{Answer, Interaction, OtpKind, Progress, Prompt, Scripted};
pub use known_hosts::{HostKeyCheck, KnownHosts, PinStore};
pub use monitors::{Monitor, MonitorLayout};
pub use rdp::{FrameStatus, RdpCredentials, RdpSession, SessionEvent};
