//! What differs between the desktop app and the browser: where settings and
//! pinned keys live, how a connection is started, and which features exist.

use std::sync::Arc;

use client_core::driver::Handle;
use client_core::{Monitor, MonitorLayout, RdpCredentials};

use crate::i18n::T;
use crate::settings::{Entry, Settings};

/// Whether a feature can be used here, and if not, why (shown to the user).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    Available,
    Unavailable(T),
}

/// Portable mode: the app keeps its settings and host keys beside itself
/// (a USB stick, an unpacked zip), turned on by a marker file next to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Portable {
    On,
    Off,
    /// Cannot be had here, and why (shown to the user).
    Unavailable(T),
}

/// The demo's codes, shown in the app so a newcomer can type them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoCodes {
    pub otp: String,
    pub host_password: String,
    pub user: String,
    pub password: String,
}

pub trait Platform {
    fn load_settings(&self) -> Result<Settings, String>;
    fn save_settings(&self, settings: &Settings) -> Result<(), String>;

    /// Starts a connection in the background, asking for a remote desktop
    /// on `screens`; `wake` repaints the UI.
    fn connect(
        &self,
        settings: &Settings,
        entry: &Entry,
        creds: RdpCredentials,
        screens: MonitorLayout,
        wake: Arc<dyn Fn() + Send + Sync>,
    ) -> Result<Handle, String>;

    /// This computer's monitors in its screen pixels, and the index of the
    /// primary one; none where they cannot be told (the browser, a
    /// display server that does not say).
    fn monitors(&self) -> (Vec<Monitor>, usize) {
        (Vec::new(), 0)
    }

    /// Removes a pinned host key (after the user confirmed why it changed).
    fn forget_pin(&self, pin: &str) -> Result<(), String>;

    /// Whether a local folder can be shared with the remote PC.
    fn drive_sharing(&self) -> Availability;

    /// Where settings are kept, for the settings screen.
    fn storage_location(&self) -> String;

    /// Whether portable mode is on (shown in the settings screen).
    fn portable(&self) -> Portable {
        Portable::Off
    }

    /// The system's locale, e.g. `ja_JP.UTF-8` (picks the default language).
    fn locale(&self) -> String;

    /// The relay when it is not the user's to choose (the browser uses the
    /// relay that served the page).
    fn fixed_relay(&self) -> Option<String> {
        None
    }

    /// Fonts after the bundled one (or instead of it, without feature
    /// `bundled-font`): the desktop's system CJK font for Japanese the user
    /// types, the browser's fetched copy of the UI font.
    fn fonts(&self) -> Vec<crate::fonts::FontFile> {
        Vec::new()
    }

    /// A folder of this app's own where files copied on the remote PC are
    /// brought before they go on this computer's clipboard; None where
    /// files cannot come (the browser gives a page no file clipboard).
    fn fetched_files_folder(&self) -> Option<std::path::PathBuf> {
        None
    }

    /// Removes a folder of fetched files (from
    /// [`fetched_files_folder`](Self::fetched_files_folder)) no longer on
    /// the clipboard.
    fn forget_fetched(&self, _folder: &std::path::Path) {}

    /// Puts files on this computer's clipboard, as a file manager's copy.
    fn put_files_on_clipboard(&self, _paths: &[std::path::PathBuf]) -> Result<(), String> {
        Err("this app cannot put files on the clipboard here".into())
    }

    /// The files on this computer's clipboard (copied in a file manager),
    /// when it holds files.
    fn copied_files(&self) -> Option<Vec<std::path::PathBuf>> {
        None
    }

    /// The demo's current codes, when running the demo.
    fn demo(&self) -> Option<DemoCodes> {
        None
    }
}
