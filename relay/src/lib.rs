//! thin-relay: the only publicly reachable part. Hosts keep a control
//! connection here under their computer ID; a client asks for an ID, the
//! relay asks the host to open a data connection, then splices the two.
//! After pairing it forwards opaque bytes and never looks inside them.
//! Browsers use the same port: the relay serves the web client's files and
//! carries the same protocol over a WebSocket.

pub mod admin;
mod certs;
pub mod cluster;
pub mod deny;
pub mod directory;
pub mod limits;
pub mod metrics;
pub mod oplog;
mod registry;
mod server;
pub mod tap;
pub mod tokens;
pub mod web;

pub use certs::{init, renew, InitError, CA_FILE, CERT_FILE, KEY_FILE};
pub use registry::{Binding, Registry, FILE as REGISTRY_FILE};
pub use server::{unbind, Limits, Operator, Relay, RelayConfig};
