//! thin-host: keeps an outbound control connection to the relay under its
//! computer ID and serves each session: end-to-end channel, the owner's
//! checks (access list, MAC, lockout, one-time password, host password),
//! then the local RDP server.

pub mod access;
pub mod admin;
pub mod audit;
pub mod config;
mod gate;
pub mod local;
pub mod lockout;
pub mod mail;
pub mod otp;
pub mod rdp;
pub mod resume;
pub mod secrets;
pub mod server_keys;
mod service;
pub mod system_service;

pub use config::{HostConfig, InitOptions, OtpSetting};
pub use lockout::{Clock, SystemClock};
pub use service::{
    run, run_with, RunError, RunOptions, KEPT_FOR_KNOWN, MAX_UNADMITTED, MAX_UNADMITTED_PER_SOURCE,
};
