//! thin-host-settings: the office PC's owner (or IT staff) sees whether the
//! host is online and changes its settings, in Japanese or English, with
//! the client's look and fonts (`ui`). It talks to the running host over
//! the host's local channel (`host::local`) and works on the files when
//! the host is stopped.

pub mod app;
pub mod texts;

pub use app::{Page, SettingsApp};
