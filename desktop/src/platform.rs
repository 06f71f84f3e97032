//! The desktop side of the UI: settings and pins in files, connections on a
//! tokio runtime, the relay dialed natively.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use client_core::driver::{self, Handle};
use client_core::native::{FilePins, NativeOpener, RelayTarget};
use client_core::{Monitor, MonitorLayout, PinStore, RdpCredentials};
use transport::dial::Proxy;
use ui::{Availability, DemoCodes, Entry, Platform, Settings};

use crate::storage::Storage;

pub struct NativePlatform {
    pub storage: Storage,
    pub runtime: Arc<tokio::runtime::Runtime>,
    /// The in-process demo (relay, host, test desktop), when running it.
    pub demo: Option<Arc<demo::Demo>>,
    /// The system clipboard, for files (egui has text and pictures). Kept
    /// for the app's life: on X11 what it offers lives as long as it does.
    clipboard: Mutex<Option<arboard::Clipboard>>,
    /// Where files copied on the remote PC are brought: this process's own
    /// folder, private to the user, removed when the app closes.
    fetched: PathBuf,
}

impl NativePlatform {
    pub fn new(
        storage: Storage,
        runtime: Arc<tokio::runtime::Runtime>,
        demo: Option<Arc<demo::Demo>>,
    ) -> NativePlatform {
        let fetched =
            std::env::temp_dir().join(format!("thin-desktop-files-{}", std::process::id()));
        NativePlatform {
            storage,
            runtime,
            demo,
            clipboard: Mutex::new(None),
            fetched,
        }
    }

    /// Runs `use_it` on the system clipboard (opened the first time).
    fn with_clipboard<R>(
        &self,
        use_it: impl FnOnce(&mut arboard::Clipboard) -> Result<R, arboard::Error>,
    ) -> Result<R, String> {
        let mut held = self.clipboard.lock().map_err(|e| e.to_string())?;
        if held.is_none() {
            *held = Some(arboard::Clipboard::new().map_err(|e| e.to_string())?);
        }
        use_it(held.as_mut().expect("opened above")).map_err(|e| e.to_string())
    }

    fn pins(&self) -> FilePins {
        FilePins {
            path: self.storage.known_hosts(),
        }
    }

    /// A relative CA path is relative to the storage folder (in portable
    /// mode: beside the executable's data).
    fn resolve(&self, path: &str) -> PathBuf {
        let path = PathBuf::from(path.trim());
        if path.is_relative() {
            self.storage.dir.join(path)
        } else {
            path
        }
    }
}

impl Drop for NativePlatform {
    /// Files brought from the remote PC do not outlive the app.
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.fetched);
    }
}

impl Platform for NativePlatform {
    fn load_settings(&self) -> Result<Settings, String> {
        let path = self.storage.settings();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| format!("{} is damaged ({e}); it was left as it is", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    fn save_settings(&self, settings: &Settings) -> Result<(), String> {
        let json = serde_json::to_vec_pretty(settings).expect("settings serialise");
        // The proxy password may be in it: private to the user.
        files::write_atomic(&self.storage.settings(), &json, files::Mode::Secret)
            .map_err(|e| e.to_string())
    }

    fn connect(
        &self,
        settings: &Settings,
        entry: &Entry,
        creds: RdpCredentials,
        screens: MonitorLayout,
        wake: Arc<dyn Fn() + Send + Sync>,
    ) -> Result<Handle, String> {
        let proxy = settings
            .proxy
            .url()
            .map(|url| Proxy::parse(&url))
            .transpose()
            .map_err(|e| e.to_string())?;
        let opener = NativeOpener {
            relay: RelayTarget {
                addr: settings.relay_for(entry).to_owned(),
                ca: self.resolve(&settings.relay_ca),
                proxy,
            },
            id: entry.id.clone(),
            pins: Arc::new(self.pins()),
            resumption: Default::default(),
        };
        let share: Option<driver::ShareSetup> = if entry.share {
            // Checked now so that a wrong folder is said before connecting;
            // made again for each reconnect.
            let folder = std::path::PathBuf::from(entry.share_path.trim());
            drop(client_core::native::share_folder(&folder)?);
            Some(Box::new(move || {
                client_core::native::share_folder(&folder).ok()
            }))
        } else {
            None
        };
        let (handle, driver) = driver::channel(wake);
        let devices = driver::Devices {
            share,
            sound: Some(Box::new(client_core::native::speaker)),
        };
        self.runtime
            .spawn(driver::run(opener, creds, screens, devices, driver));
        Ok(handle)
    }

    fn forget_pin(&self, pin: &str) -> Result<(), String> {
        let pins = self.pins();
        let mut hosts = pins.load()?;
        hosts.forget(pin);
        pins.save(&hosts)
    }

    fn monitors(&self) -> (Vec<Monitor>, usize) {
        crate::monitors::list()
    }

    fn drive_sharing(&self) -> Availability {
        Availability::Available
    }

    fn storage_location(&self) -> String {
        self.storage.dir.display().to_string()
    }

    fn portable(&self) -> ui::Portable {
        if self.storage.portable {
            ui::Portable::On
        } else {
            ui::Portable::Off
        }
    }

    fn fonts(&self) -> Vec<ui::fonts::FontFile> {
        system_cjk_font().into_iter().collect()
    }

    fn locale(&self) -> String {
        sys_locale::get_locale().unwrap_or_default()
    }

    fn fetched_files_folder(&self) -> Option<PathBuf> {
        let mut folder = std::fs::DirBuilder::new();
        folder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut folder, 0o700);
        match folder.create(&self.fetched) {
            Ok(()) => Some(self.fetched.clone()),
            Err(e) => {
                tracing::warn!("cannot make {}: {e}", self.fetched.display());
                None
            }
        }
    }

    fn forget_fetched(&self, folder: &std::path::Path) {
        if folder.starts_with(&self.fetched) {
            let _ = std::fs::remove_dir_all(folder);
        }
    }

    fn put_files_on_clipboard(&self, paths: &[PathBuf]) -> Result<(), String> {
        self.with_clipboard(|clipboard| clipboard.set().file_list(paths))
    }

    fn copied_files(&self) -> Option<Vec<PathBuf>> {
        let files = self.with_clipboard(|clipboard| clipboard.get().file_list());
        files.ok().filter(|files| !files.is_empty())
    }

    fn demo(&self) -> Option<DemoCodes> {
        let demo = self.demo.as_ref()?;
        Some(DemoCodes {
            otp: demo.current_otp(),
            host_password: demo.host_password.clone(),
            user: demo.rdp.user.clone(),
            password: demo.rdp.password.clone(),
        })
    }
}

/// Where Windows and common Linux distributions keep a Japanese font, in
/// order of preference; the first one present is used for text users type.
const CJK_FONTS: &[(&str, u32)] = &[
    ("C:\\Windows\\Fonts\\YuGothM.ttc", 0),
    ("C:\\Windows\\Fonts\\meiryo.ttc", 0),
    ("C:\\Windows\\Fonts\\msgothic.ttc", 0),
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 0),
    ("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc", 0),
    (
        "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
        0,
    ),
    ("/usr/share/fonts/opentype/ipafont-gothic/ipagp.ttf", 0),
    (
        "/usr/share/fonts/truetype/vlgothic/VL-PGothic-Regular.ttf",
        0,
    ),
    ("/usr/share/fonts/truetype/takao-gothic/TakaoPGothic.ttf", 0),
];

fn system_cjk_font() -> Option<ui::fonts::FontFile> {
    CJK_FONTS.iter().find_map(|(path, index)| {
        let data = std::fs::read(path).ok()?;
        tracing::info!(font = path, "system font for typed Japanese text");
        Some(ui::fonts::FontFile {
            name: format!("system:{path}"),
            data: std::sync::Arc::new(data),
            index: *index,
        })
    })
}
