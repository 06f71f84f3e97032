//! The pieces of the web client that only exist in a browser, run in
//! headless Chromium by `wasm-bindgen-test-runner` (`cargo xtask web-test`):
//! the browser's storage for settings and pinned host keys, and the
//! WebSocket byte stream.
#![cfg(target_arch = "wasm32")]

use client_core::{KnownHosts, PinStore};
use ui::{Entry, Platform, Settings};
use wasm_bindgen_test::*;
use web::platform::{BrowserPins, WebPlatform};
use web::socket::WsStream;

wasm_bindgen_test_configure!(run_in_browser);

fn clear_storage() {
    web_sys::window()
        .unwrap()
        .local_storage()
        .unwrap()
        .unwrap()
        .clear()
        .unwrap();
}

#[wasm_bindgen_test]
fn pins_survive_in_browser_storage() {
    clear_storage();
    const PIN: &str = "office-pc@relay.example.jp:443";
    assert_eq!(BrowserPins.load().unwrap(), KnownHosts::default());
    let mut hosts = KnownHosts::default();
    hosts.pin(PIN, &[7u8; 32]);
    BrowserPins.save(&hosts).unwrap();
    let loaded = BrowserPins.load().unwrap();
    assert_eq!(loaded, hosts);
    assert!(matches!(
        loaded.check(PIN, &[7u8; 32]),
        client_core::known_hosts::HostKeyCheck::Known
    ));

    WebPlatform::default().forget_pin(PIN).unwrap();
    assert_eq!(BrowserPins.load().unwrap(), KnownHosts::default());
}

#[wasm_bindgen_test]
fn damaged_pins_are_reported_not_dropped() {
    clear_storage();
    let storage = web_sys::window().unwrap().local_storage().unwrap().unwrap();
    storage
        .set_item("thin.known_hosts", "not a pin line")
        .unwrap();
    let err = BrowserPins.load().unwrap_err();
    assert!(err.contains("stored host keys"), "{err}");
    // Still there for the user to repair.
    assert_eq!(
        storage.get_item("thin.known_hosts").unwrap().as_deref(),
        Some("not a pin line")
    );
}

#[wasm_bindgen_test]
fn settings_survive_in_browser_storage() {
    clear_storage();
    assert_eq!(
        WebPlatform::default().load_settings().unwrap(),
        Settings::default()
    );
    let mut settings = Settings::default();
    settings.connections.push(Entry {
        name: "会社のPC".into(),
        id: "office-pc".into(),
        ..Entry::default()
    });
    settings.width = 1280;
    WebPlatform::default().save_settings(&settings).unwrap();
    assert_eq!(WebPlatform::default().load_settings().unwrap(), settings);
}

#[wasm_bindgen_test]
fn the_relay_is_the_page_s_own_origin() {
    let host = web_sys::window().unwrap().location().host().unwrap();
    assert_eq!(WebPlatform::default().fixed_relay(), Some(host));
    assert!(matches!(
        WebPlatform::default().drive_sharing(),
        ui::Availability::Unavailable(ui::T::ShareInBrowser)
    ));
}

#[wasm_bindgen_test]
async fn an_unreachable_relay_is_an_error_not_a_hang() {
    // Port 9 (discard) has no listener on the test machine's loopback.
    let err = match WsStream::connect("ws://127.0.0.1:9/ws").await {
        Ok(_) => panic!("connected to nothing"),
        Err(e) => e,
    };
    assert!(
        err.contains("cannot be reached") || err.contains("closed"),
        "{err}"
    );
}

/// The runner serves the test page over HTTP on loopback; its server speaks
/// no WebSocket, so the upgrade is refused: an error, not a hang or a stream
/// that looks open.
#[wasm_bindgen_test]
async fn a_refused_upgrade_is_an_error() {
    let host = web_sys::window().unwrap().location().host().unwrap();
    let err = match WsStream::connect(&format!("ws://{host}/ws")).await {
        Ok(_) => panic!("a server without WebSocket support was connected to"),
        Err(e) => e,
    };
    assert!(
        err.contains("cannot be reached") || err.contains("closed"),
        "{err}"
    );
}
