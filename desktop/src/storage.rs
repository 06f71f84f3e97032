//! Where the app keeps its files. Portable mode (a `thin-portable.txt`
//! marker beside the executable, as in the release zip) keeps everything in
//! a `data` folder beside it and writes nowhere else; installed mode uses
//! the platform's config folder.

use std::path::{Path, PathBuf};

/// The file whose presence beside the executable turns on portable mode.
pub const PORTABLE_MARKER: &str = "thin-portable.txt";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storage {
    pub dir: PathBuf,
    pub portable: bool,
}

impl Storage {
    /// Portable if the marker sits beside `exe`; else `$THIN_CONFIG_DIR`,
    /// else the platform's config folder (`~/.config/thin`, `%APPDATA%\thin`).
    pub fn locate(exe: &Path) -> Self {
        if let Some(dir) = exe.parent() {
            if dir.join(PORTABLE_MARKER).exists() {
                return Self {
                    dir: dir.join("data"),
                    portable: true,
                };
            }
        }
        let dir = match std::env::var_os("THIN_CONFIG_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => dirs::config_dir()
                .unwrap_or_else(|| PathBuf::from("."))
                .join("thin"),
        };
        Self {
            dir,
            portable: false,
        }
    }

    pub fn settings(&self) -> PathBuf {
        self.dir.join("settings.json")
    }

    pub fn known_hosts(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }

    pub fn log(&self) -> PathBuf {
        self.dir.join("thin-desktop.log")
    }

    /// Caches that libraries would otherwise put in the home folder (GL
    /// shader cache, font cache).
    pub fn cache(&self) -> PathBuf {
        self.dir.join("cache")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_makes_it_portable() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("thin-desktop");
        assert!(!Storage::locate(&exe).portable);
        std::fs::write(dir.path().join(PORTABLE_MARKER), "").unwrap();
        let storage = Storage::locate(&exe);
        assert!(storage.portable);
        assert_eq!(storage.dir, dir.path().join("data"));
    }
}
