//! The app people use, written once: connection list, connecting steps and
//! prompts, the remote desktop, settings — in Japanese and English. The
//! desktop app (`desktop`) and the browser (`web`) run it with their own
//! [`Platform`].

pub mod app;
pub mod errors;
mod files;
pub mod fonts;
pub mod i18n;
pub mod keys;
pub mod platform;
mod session;
pub mod settings;

pub use app::{field, ThinApp};
pub use i18n::{Lang, T};
pub use platform::{Availability, DemoCodes, Platform, Portable};
pub use session::take_changes;
pub use settings::{Entry, ProxySettings, Settings};
