//! thin-host: keeps an outbound control connection to the relay under its
//! computer ID and serves each session by connecting to the local RDP server.

pub mod config;
mod rdp;
mod service;

pub use config::{HostConfig, InitOptions};
pub use service::{run, run_with, RunError};
