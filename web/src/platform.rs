//! The browser side of the UI: settings and pinned host keys in the
//! browser's storage, the relay is the page's own origin (over a WebSocket),
//! drive sharing is not available.

use std::sync::Arc;

use client_core::driver::{self, Handle, Opener};
use client_core::interaction::BoxFuture;
use client_core::known_hosts::pin_name;
use client_core::{
    Admission, ConnectError, Interaction, KnownHosts, MonitorLayout, PinStore, Progress,
    RdpCredentials,
};
use proto::ComputerId;
use transport::{FramedIo, Prefixed, SecureStream};
use ui::fonts::FontFile;
use ui::{Availability, Entry, Platform, Portable, Settings, T};

use crate::socket::WsStream;

const SETTINGS_KEY: &str = "thin.settings";
const PINS_KEY: &str = "thin.known_hosts";
const DEVICE_KEY: &str = "thin.device_key";

fn storage() -> Result<web_sys::Storage, String> {
    web_sys::window()
        .and_then(|w| w.local_storage().ok().flatten())
        .ok_or_else(|| "this browser does not allow storing settings".to_owned())
}

/// Pinned host keys in the browser's storage for this site.
pub struct BrowserPins;

impl PinStore for BrowserPins {
    fn load(&self) -> Result<KnownHosts, String> {
        match storage()?.get_item(PINS_KEY) {
            Ok(Some(text)) => {
                KnownHosts::parse(&text).map_err(|e| format!("stored host keys: {e}"))
            }
            _ => Ok(KnownHosts::default()),
        }
    }

    fn save(&self, hosts: &KnownHosts) -> Result<(), String> {
        storage()?
            .set_item(PINS_KEY, &hosts.to_text())
            .map_err(|_| "cannot store the host key in this browser".to_owned())
    }

    /// Kept in this site's storage beside the pins (a damaged one is
    /// replaced: the browser is then a new device to the office PCs).
    fn device_secret(&self) -> Result<zeroize::Zeroizing<Vec<u8>>, String> {
        let storage = storage()?;
        let stored = storage.get_item(DEVICE_KEY).ok().flatten();
        let parsed = stored
            .and_then(|text| serde_json::from_str::<Vec<u8>>(&text).ok())
            .filter(|bytes| bytes.len() == 32);
        if let Some(secret) = parsed {
            return Ok(zeroize::Zeroizing::new(secret));
        }
        let secret = proto::channel::random_secret().map_err(|e| e.to_string())?;
        let text = serde_json::to_string(secret.as_slice()).expect("bytes serialise");
        storage
            .set_item(DEVICE_KEY, &text)
            .map_err(|_| "cannot store this device's key in this browser".to_owned())?;
        Ok(secret)
    }
}

/// The page's host (`relay.example.jp:443`): the relay serving this page.
fn page_host() -> String {
    web_sys::window()
        .and_then(|w| w.location().host().ok())
        .unwrap_or_default()
}

pub type Channel = SecureStream<Prefixed<WsStream>>;

/// Reaches the host through the page's relay over a WebSocket.
struct WebOpener {
    relay: String,
    id: String,
    resumption: client_core::auth::Resumption,
}

impl Opener<Channel> for WebOpener {
    fn open<'a>(
        &'a self,
        ui: &'a mut dyn Interaction,
    ) -> BoxFuture<'a, Result<(FramedIo<Channel>, Admission), ConnectError>> {
        Box::pin(async move {
            let id = ComputerId::parse(&self.id)?;
            let url = format!("wss://{}/ws", self.relay);
            let socket = WsStream::connect(&url)
                .await
                .map_err(ConnectError::RelayUnreachable)?;
            ui.progress(Progress::RelayConnected);
            let pipe = client_core::pairing::pair(socket, &id, ui).await?;
            let pin = pin_name(&self.relay, &id);
            // A browser cannot read the machine's MAC addresses.
            let macs = Vec::new();
            let resumption = &self.resumption;
            let (mut conn, admission) = client_core::auth::enter(
                pipe,
                id.as_str(),
                &pin,
                &BrowserPins,
                macs,
                ui,
                resumption,
            )
            .await?;
            // A path that dies without a word is noticed within seconds.
            let sleep: transport::secure::Sleep = std::sync::Arc::new(|d| Box::pin(Pause::new(d)));
            conn.get_mut()
                .keep_alive(sleep, proto::liveness::CLIENT_GIVES_UP_AFTER);
            Ok((conn, admission))
        })
    }

    fn pause(&self, duration: std::time::Duration) -> BoxFuture<'static, ()> {
        Box::pin(Pause::new(duration))
    }
}

/// The browser's timer (`setTimeout`) as a future.
struct Pause(send_wrapper::SendWrapper<wasm_bindgen_futures::JsFuture>);

impl Pause {
    fn new(duration: std::time::Duration) -> Self {
        let millis = i32::try_from(duration.as_millis()).unwrap_or(i32::MAX);
        let promise = js_sys::Promise::new(&mut |resolve, _reject| {
            if let Some(window) = web_sys::window() {
                let _ =
                    window.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, millis);
            }
        });
        Self(send_wrapper::SendWrapper::new(
            wasm_bindgen_futures::JsFuture::from(promise),
        ))
    }
}

impl std::future::Future for Pause {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        std::pin::Pin::new(&mut *self.0).poll(cx).map(|_| ())
    }
}

/// The browser's platform.
#[derive(Default)]
pub struct WebPlatform {
    /// The UI's font, fetched by the page beside the module (the browser
    /// itself draws characters it lacks, such as rarer kanji users type).
    ui_font: Option<FontFile>,
}

impl WebPlatform {
    pub fn new(ui_font: Vec<u8>) -> Self {
        let ui_font = FontFile {
            name: "noto-sans-jp-ui".to_owned(),
            data: Arc::new(ui_font),
            index: 0,
        };
        Self {
            ui_font: Some(ui_font),
        }
    }
}

impl Platform for WebPlatform {
    fn load_settings(&self) -> Result<Settings, String> {
        match storage()?.get_item(SETTINGS_KEY) {
            Ok(Some(json)) => serde_json::from_str(&json)
                .map_err(|e| format!("the stored settings are damaged ({e})")),
            _ => Ok(Settings::default()),
        }
    }

    fn save_settings(&self, settings: &Settings) -> Result<(), String> {
        let json = serde_json::to_string(settings).expect("settings serialise");
        storage()?
            .set_item(SETTINGS_KEY, &json)
            .map_err(|_| "this browser refused to store the settings".to_owned())
    }

    fn connect(
        &self,
        _settings: &Settings,
        entry: &Entry,
        creds: RdpCredentials,
        screens: MonitorLayout,
        wake: Arc<dyn Fn() + Send + Sync>,
    ) -> Result<Handle, String> {
        let opener = WebOpener {
            relay: page_host(),
            id: entry.id.clone(),
            resumption: Default::default(),
        };
        let (handle, driver) = driver::channel(wake);
        let devices = driver::Devices {
            share: None,
            sound: Some(Box::new(crate::sound::WebSpeaker::player)),
        };
        wasm_bindgen_futures::spawn_local(driver::run(opener, creds, screens, devices, driver));
        Ok(handle)
    }

    fn forget_pin(&self, pin: &str) -> Result<(), String> {
        let mut hosts = BrowserPins.load()?;
        hosts.forget(pin);
        BrowserPins.save(&hosts)
    }

    fn drive_sharing(&self) -> Availability {
        Availability::Unavailable(T::ShareInBrowser)
    }

    fn storage_location(&self) -> String {
        // The browser's own name for it, the same in either language.
        let origin = web_sys::window()
            .and_then(|w| w.location().origin().ok())
            .unwrap_or_default();
        format!("localStorage ({origin})")
    }

    fn portable(&self) -> Portable {
        Portable::Unavailable(T::PortableInBrowser)
    }

    fn fonts(&self) -> Vec<FontFile> {
        self.ui_font.iter().cloned().collect()
    }

    fn locale(&self) -> String {
        web_sys::window()
            .and_then(|w| w.navigator().language())
            .unwrap_or_default()
    }

    fn fixed_relay(&self) -> Option<String> {
        Some(page_host())
    }
}
