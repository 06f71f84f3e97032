//! Every screen driven headless with egui_kittest: the test plays the user
//! (clicks, typing) and the connection (events in, commands out). The
//! connection is the test's own channel pair because this crate is the UI
//! only; the desktop and end-to-end tests run it against the real flow.
//! egui_kittest also fails any test whose text has no glyph in the fonts.

use std::sync::{Arc, Mutex};

use client_core::driver::{Command, Framebuffer, Handle, UiEvent};
use client_core::interaction::OtpWrong;
use client_core::{
    Answer, ConnectError, Monitor, MonitorLayout, OtpKind, Progress, Prompt, RdpCredentials,
};
use egui::accesskit::Role;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use egui_kittest::Harness;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use ui::{Availability, Entry, Lang, Platform, Portable, Settings, ThinApp, T};

/// The test's end of a connection the app started.
struct Remote {
    events: UnboundedSender<UiEvent>,
    commands: UnboundedReceiver<Command>,
    frame: Arc<Mutex<Framebuffer>>,
    creds: RdpCredentials,
}

#[derive(Default)]
struct Shared {
    saved: Option<Settings>,
    remote: Option<Remote>,
    forgotten: Vec<String>,
    /// The desktop size the last connection asked for.
    connect_size: Option<(u16, u16)>,
    /// The screens the last connection asked for.
    connect_screens: Option<MonitorLayout>,
    /// This computer's monitors and the primary's index.
    monitors: (Vec<Monitor>, usize),
}

struct FakePlatform {
    initial: Settings,
    locale: &'static str,
    shared: Arc<Mutex<Shared>>,
    portable: Portable,
}

impl Platform for FakePlatform {
    fn load_settings(&self) -> Result<Settings, String> {
        let shared = self.shared.lock().unwrap();
        Ok(shared.saved.clone().unwrap_or_else(|| self.initial.clone()))
    }

    fn save_settings(&self, settings: &Settings) -> Result<(), String> {
        self.shared.lock().unwrap().saved = Some(settings.clone());
        Ok(())
    }

    fn connect(
        &self,
        settings: &Settings,
        _entry: &Entry,
        creds: RdpCredentials,
        screens: MonitorLayout,
        _wake: Arc<dyn Fn() + Send + Sync>,
    ) -> Result<Handle, String> {
        let (cmd_tx, cmd_rx) = unbounded_channel();
        let (ev_tx, ev_rx) = unbounded_channel();
        let frame = Arc::new(Mutex::new(Framebuffer::default()));
        self.shared.lock().unwrap().connect_size = Some((settings.width, settings.height));
        self.shared.lock().unwrap().connect_screens = Some(screens);
        self.shared.lock().unwrap().remote = Some(Remote {
            events: ev_tx,
            commands: cmd_rx,
            frame: frame.clone(),
            creds,
        });
        Ok(Handle {
            commands: cmd_tx,
            events: ev_rx,
            frame,
        })
    }

    fn forget_pin(&self, pin: &str) -> Result<(), String> {
        self.shared.lock().unwrap().forgotten.push(pin.to_owned());
        Ok(())
    }

    fn drive_sharing(&self) -> Availability {
        Availability::Available
    }

    fn storage_location(&self) -> String {
        "/tmp/thin-test".into()
    }

    fn monitors(&self) -> (Vec<Monitor>, usize) {
        self.shared.lock().unwrap().monitors.clone()
    }

    fn portable(&self) -> Portable {
        self.portable
    }

    fn locale(&self) -> String {
        self.locale.into()
    }
}

fn office() -> Settings {
    Settings {
        relay: "relay.example.jp:443".into(),
        relay_ca: "ca.pem".into(),
        connections: vec![Entry {
            name: "Office".into(),
            id: "office-pc".into(),
            user: "taro".into(),
            ..Entry::default()
        }],
        ..Settings::default()
    }
}

fn app(initial: Settings, locale: &'static str) -> (Harness<'static, ThinApp>, Arc<Mutex<Shared>>) {
    let shared = Arc::new(Mutex::new(Shared::default()));
    let platform = FakePlatform {
        initial,
        locale,
        shared: shared.clone(),
        portable: Portable::Off,
    };
    let harness = Harness::builder()
        .with_size(egui::vec2(1000.0, 700.0))
        .build_ui_state(
            |ui, app: &mut ThinApp| app.show(ui),
            ThinApp::new(Box::new(platform)),
        );
    (harness, shared)
}

/// Clicks the saved entry's connect button (the quick-connect one comes first).
fn connect_first_entry(harness: &mut Harness<'static, ThinApp>, label: &str) {
    harness
        .get_all_by_label(label)
        .last()
        .expect("a connect button")
        .click();
}

/// Clicks into the field labelled `label` and types `text`, as a person would.
fn type_into(harness: &mut Harness<'static, ThinApp>, label: &str, text: &str) {
    harness.get_by_label(label).focus();
    harness.run_steps(2);
    harness.get_by_label(label).type_text(text);
    harness.run_steps(2);
}

fn send(shared: &Arc<Mutex<Shared>>, event: UiEvent) {
    shared
        .lock()
        .unwrap()
        .remote
        .as_ref()
        .unwrap()
        .events
        .send(event)
        .unwrap();
}

fn next_command(shared: &Arc<Mutex<Shared>>) -> Command {
    shared
        .lock()
        .unwrap()
        .remote
        .as_mut()
        .unwrap()
        .commands
        .try_recv()
        .expect("the app sent a command")
}

/// Every command the app has sent so far.
fn drain_commands(shared: &Arc<Mutex<Shared>>) -> Vec<Command> {
    let mut shared = shared.lock().unwrap();
    let commands = &mut shared.remote.as_mut().unwrap().commands;
    std::iter::from_fn(|| commands.try_recv().ok()).collect()
}

fn answer(shared: &Arc<Mutex<Shared>>) -> Answer {
    loop {
        if let Command::Answer(answer) = next_command(shared) {
            return answer;
        }
    }
}

#[test]
fn adding_a_connection_checks_the_id_and_saves_it() {
    let (mut harness, shared) = app(Settings::default(), "en_US.UTF-8");
    harness.run_steps(4);
    harness.get_by_label(T::NoConnections.get(Lang::En));
    harness.get_by_label("Add").click();
    harness.run_steps(4);
    type_into(&mut harness, "Name", "My office");
    type_into(&mut harness, "Computer ID", "office pc");
    type_into(&mut harness, "Windows user", "taro");
    harness.run_steps(4);
    harness.get_by_label("Save").click();
    harness.run_steps(4);
    harness.get_by_label(T::InvalidId.get(Lang::En));
    assert!(
        shared.lock().unwrap().saved.is_none(),
        "an invalid entry was saved"
    );

    harness.get_by_label("Computer ID").focus();
    harness.run_steps(2);
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    harness.run_steps(2);
    harness.get_by_label("Computer ID").type_text("Office-PC");
    harness.run_steps(2);
    harness.run_steps(4);
    harness.get_by_label("Save").click();
    harness.run_steps(4);
    harness.get_by_label("My office");
    let saved = shared.lock().unwrap().saved.clone().expect("saved");
    assert_eq!(saved.connections.len(), 1);
    assert_eq!(saved.connections[0].id, "office-pc");
    assert_eq!(saved.connections[0].user, "taro");
    assert!(
        !saved.connections[0].share,
        "sharing must be off by default"
    );
}

#[test]
fn the_whole_connection_flow_in_japanese() {
    let (mut harness, shared) = app(office(), "ja_JP.UTF-8");
    harness.run_steps(4);
    connect_first_entry(&mut harness, "接続");
    harness.run_steps(4);
    harness.get_by_label_contains("Office に接続しています");
    assert_eq!(
        shared.lock().unwrap().remote.as_ref().unwrap().creds.user,
        "taro"
    );

    send(&shared, UiEvent::Progress(Progress::RelayConnected));
    send(
        &shared,
        UiEvent::Ask(Prompt::NewHostKey {
            id: "office-pc".into(),
            fingerprint: "SHA256:abcdef".into(),
        }),
    );
    harness.run_steps(4);
    harness.get_by_label("SHA256:abcdef");
    harness.get_by_label("信頼して接続").click();
    harness.run_steps(4);
    assert_eq!(answer(&shared), Answer::Accept);

    send(&shared, UiEvent::Progress(Progress::Secured));
    send(
        &shared,
        UiEvent::Ask(Prompt::Otp {
            kind: OtpKind::Email {
                masked_to: "t***@example.jp".into(),
            },
            emergency_codes: true,
            last: None,
        }),
    );
    harness.run_steps(4);
    harness.get_by_label_contains("t***@example.jp に確認コードを送りました");
    type_into(&mut harness, "コード", "123456");
    harness.get_by_label("OK").click();
    harness.run_steps(4);
    assert_eq!(answer(&shared), Answer::Otp("123456".to_owned().into()));

    // Wrong: the app says so and offers the emergency code.
    send(
        &shared,
        UiEvent::Ask(Prompt::Otp {
            kind: OtpKind::Email {
                masked_to: "t***@example.jp".into(),
            },
            emergency_codes: true,
            last: Some(OtpWrong {
                tries_left: 3,
                reused: false,
            }),
        }),
    );
    harness.run_steps(4);
    harness.get_by_label_contains("あと 3 回間違えるとロックされます");
    harness.get_by_label("代わりに緊急用コードを使う").click();
    harness.run_steps(4);
    type_into(&mut harness, "コード", "k7m2-x9qp-3vtd");
    harness.get_by_label("OK").click();
    harness.run_steps(4);
    assert_eq!(
        answer(&shared),
        Answer::EmergencyCode("k7m2-x9qp-3vtd".to_owned().into())
    );

    send(&shared, UiEvent::Progress(Progress::OtpAccepted));
    send(&shared, UiEvent::Ask(Prompt::HostPassword { retry: false }));
    harness.run_steps(4);
    // Enter answers too.
    type_into(&mut harness, "パスワード", "Host-Pass-1");
    harness.key_press(egui::Key::Enter);
    harness.run_steps(4);
    assert_eq!(
        answer(&shared),
        Answer::Secret("Host-Pass-1".to_owned().into())
    );

    send(&shared, UiEvent::Progress(Progress::Admitted));
    send(
        &shared,
        UiEvent::Ask(Prompt::RemoteLogon {
            user: "taro".into(),
            domain: None,
        }),
    );
    harness.run_steps(4);
    type_into(&mut harness, "Windowsパスワード", "Win-Pass-2");
    type_into(&mut harness, "ドメイン (省略可)", "CORP");
    harness.get_by_label("OK").click();
    harness.run_steps(4);
    match answer(&shared) {
        Answer::Logon {
            user,
            password,
            domain,
        } => {
            assert_eq!(user, "taro");
            assert_eq!(password.as_str(), "Win-Pass-2");
            assert_eq!(domain.as_deref(), Some("CORP"));
        }
        other => panic!("{other:?}"),
    }

    // A failure: plain words, what to do next, and the detail for IT staff.
    send(
        &shared,
        UiEvent::Ended(Err(ConnectError::LockedOut {
            message: "too many failed attempts".into(),
            retry_after_secs: 120,
        })),
    );
    harness.run_steps(4);
    harness.get_by_label_contains("あと 2 分間接続がロックされています");
    harness.get_by_label(T::HintLockedOut.get(Lang::Ja));
    harness.get_by_label("詳細").click();
    harness.run_steps(4);
    harness.get_by_label_contains("too many failed attempts");
    harness.get_by_label("戻る").click();
    harness.run_steps(4);
    harness.get_by_label("Office");
}

#[test]
fn a_changed_host_key_is_loud_and_needs_explicit_removal() {
    let (mut harness, shared) = app(office(), "en_US");
    harness.run_steps(4);
    connect_first_entry(&mut harness, "Connect");
    harness.run_steps(4);
    send(
        &shared,
        UiEvent::Ended(Err(ConnectError::HostKeyChanged {
            id: "office-pc".into(),
            pin: "office-pc@relay.example.jp:443".into(),
            old_fingerprint: "SHA256:old".into(),
            new_fingerprint: "SHA256:new".into(),
        })),
    );
    harness.run_steps(4);
    harness.get_by_label(T::ErrKeyChanged.get(Lang::En));
    harness.get_by_label("SHA256:old");
    harness.get_by_label("SHA256:new");
    let remove = harness.get_by_label("Remove the old key");
    assert!(
        remove.accesskit_node().is_disabled(),
        "removal must need confirmation"
    );
    remove.click();
    harness.run_steps(4);
    assert!(shared.lock().unwrap().forgotten.is_empty());
    harness.get_by_label("I know why the key changed").click();
    harness.run_steps(4);
    harness.get_by_label("Remove the old key").click();
    harness.run_steps(4);
    assert_eq!(
        shared.lock().unwrap().forgotten,
        vec!["office-pc@relay.example.jp:443".to_owned()]
    );
    harness.get_by_label(T::PinRemoved.get(Lang::En));
}

#[test]
fn settings_are_checked_saved_and_reloaded() {
    let (mut harness, shared) = app(office(), "en_US");
    harness.run_steps(4);
    harness.get_by_label("Settings").click();
    harness.run_steps(4);
    harness.get_by_label("日本語").click();
    harness.run_steps(4);
    // The language changes at once.
    harness.get_by_label("中継サーバーのアドレス (ホスト:ポート)");
    type_into(&mut harness, "プロキシーのホスト", "proxy.example.jp");
    type_into(&mut harness, "プロキシーのポート", "80800");
    harness.run_steps(4);
    harness.get_by_label("保存").click();
    harness.run_steps(4);
    harness.get_by_label(T::BadPort.get(Lang::Ja));
    assert!(shared.lock().unwrap().saved.is_none());
    let port = harness.get_by_label("プロキシーのポート");
    port.focus();
    harness.key_press(egui::Key::Backspace);
    harness.run_steps(4);
    harness.get_by_label("保存").click();
    harness.run_steps(4);
    harness.get_by_label(T::Saved.get(Lang::Ja));
    let saved = shared.lock().unwrap().saved.clone().unwrap();
    assert_eq!(saved.lang, Some(Lang::Ja));
    assert_eq!(saved.proxy.url().unwrap(), "http://proxy.example.jp:8080");
    assert_eq!(
        saved.connections.len(),
        1,
        "saving settings kept the connections"
    );

    // A new app on the same storage starts in Japanese with the proxy.
    let platform = FakePlatform {
        initial: Settings::default(),
        locale: "en_US",
        shared: shared.clone(),
        portable: Portable::Off,
    };
    let reloaded = ThinApp::new(Box::new(platform));
    assert_eq!(reloaded.lang(), Lang::Ja);
    assert_eq!(reloaded.settings().proxy.port, "8080");
}

fn resizes(shared: &Arc<Mutex<Shared>>) -> Vec<(u16, u16, u32)> {
    drain_commands(shared)
        .into_iter()
        .filter_map(|command| match command {
            Command::Resize {
                screens,
                scale_percent,
            } => {
                let (width, height) = screens.desktop_size();
                Some((width, height, scale_percent))
            }
            _ => None,
        })
        .collect()
}

/// The remote desktop starts at the window's size and follows it, asked
/// once the window stopped changing (not at every step of a drag); with a
/// fixed size set, it never is.
#[test]
fn the_remote_desktop_follows_the_window_once_it_stops_changing() {
    let (mut harness, shared) = app(office(), "en_US");
    harness.run_steps(4);
    connect_first_entry(&mut harness, "Connect");
    harness.run_steps(1);
    // The window (1000×700 points at one pixel each) less the session bar.
    assert_eq!(shared.lock().unwrap().connect_size, Some((1000, 664)));
    send(
        &shared,
        UiEvent::Connected {
            width: 1000,
            height: 664,
        },
    );
    // The bar took a little more or less room than guessed: one request
    // for the exact picture area, after the window kept still (steps are
    // a quarter of a second each).
    harness.run_steps(4);
    let first = resizes(&shared);
    assert_eq!(first.len(), 1, "{first:?}");
    let (width, height, scale) = first[0];
    // (The test harness keeps a margin around the app.)
    assert_eq!(scale, 100);
    assert!((900..=1000).contains(&width), "{width}");
    assert!((600..700).contains(&height), "{height}");

    // A drag through sizes: nothing until it stops, then the last size.
    for w in [900.0, 850.0, 800.0] {
        harness.set_size(egui::vec2(w, 600.0));
        harness.run_steps(1);
    }
    assert_eq!(resizes(&shared), []);
    harness.run_steps(4);
    let after_drag = resizes(&shared);
    assert_eq!(after_drag.len(), 1, "{after_drag:?}");
    assert_eq!(after_drag[0].0, width - 200);
    assert!(after_drag[0].1 < 600, "{after_drag:?}");
    // Asked once: the remote PC's answer may differ (it rounds), and it
    // is not asked again for the same window.
    harness.run_steps(8);
    assert_eq!(resizes(&shared), []);

    // A remote desktop larger than the graphics can hold as one texture
    // (the harness allows 2048 pixels each way): a message, not a crash.
    {
        let shared = shared.lock().unwrap();
        let remote = shared.remote.as_ref().unwrap();
        remote.frame.lock().unwrap().resize(3000, 600);
    }
    send(&shared, UiEvent::Frame);
    harness.run_steps(2);
    harness.get_by_label_contains("is larger than this computer's graphics can show");
}

/// "Full screen uses all my monitors": a session starts over both of a
/// person's monitors (their layout in the connection, the primary first),
/// the full-screen shortcut goes back to the window (the remote desktop
/// follows the window again) and over both monitors again (asked over
/// Display Control). Where this computer has one monitor, the setting
/// changes nothing.
#[test]
fn with_all_monitors_on_full_screen_covers_every_monitor() {
    let settings = Settings {
        all_monitors: true,
        ..office()
    };
    let (mut harness, shared) = app(settings.clone(), "en_US");
    let right = Monitor {
        left: 1920,
        top: 0,
        width: 1280,
        height: 1024,
    };
    let left = Monitor {
        left: 0,
        top: 0,
        width: 1920,
        height: 1080,
    };
    shared.lock().unwrap().monitors = (vec![right, left], 1);
    harness.run_steps(4);
    connect_first_entry(&mut harness, "Connect");
    harness.run_steps(1);
    let both = MonitorLayout::parse("1920x1080+0+0,1280x1024+1920+0").unwrap();
    assert_eq!(shared.lock().unwrap().connect_screens, Some(both.clone()));
    {
        let shared = shared.lock().unwrap();
        let remote = shared.remote.as_ref().unwrap();
        remote.frame.lock().unwrap().resize(3200, 1080);
    }
    send(
        &shared,
        UiEvent::Connected {
            width: 3200,
            height: 1080,
        },
    );
    harness.run_steps(4);
    // Full screen: no session bar, and the remote desktop already has the
    // monitors' layout (not asked again, nor for the window's size).
    assert!(harness.query_by_label("Disconnect").is_none());
    assert_eq!(resizes(&shared), []);

    let shortcut = egui::Modifiers::CTRL | egui::Modifiers::ALT | egui::Modifiers::SHIFT;
    harness.key_press_modifiers(shortcut, egui::Key::F);
    harness.run_steps(6);
    harness.get_by_label("Disconnect");
    let windowed = resizes(&shared);
    assert_eq!(windowed.len(), 1, "{windowed:?}");
    // The window's picture area (the harness's window and its margin).
    assert!(windowed[0].0 <= 1016 && windowed[0].1 < 760, "{windowed:?}");
    {
        let shared = shared.lock().unwrap();
        let remote = shared.remote.as_ref().unwrap();
        remote
            .frame
            .lock()
            .unwrap()
            .resize(windowed[0].0, windowed[0].1);
    }
    send(&shared, UiEvent::Frame);
    harness.run_steps(2);

    harness.key_press_modifiers(shortcut, egui::Key::F);
    harness.run_steps(2);
    let spanned: Vec<_> = drain_commands(&shared)
        .into_iter()
        .filter_map(|command| match command {
            Command::Resize { screens, .. } => Some(screens),
            _ => None,
        })
        .collect();
    assert_eq!(spanned, [both]);

    // One monitor: the connection asks for the window's size.
    let (mut harness, shared) = app(settings, "en_US");
    shared.lock().unwrap().monitors = (vec![left], 0);
    harness.run_steps(4);
    connect_first_entry(&mut harness, "Connect");
    harness.run_steps(1);
    let screens = shared.lock().unwrap().connect_screens.clone().unwrap();
    assert!(screens.is_single(), "{screens}");
}

#[test]
fn the_session_shows_the_picture_and_sends_input() {
    let (mut harness, shared) = app(office(), "en_US");
    harness.run_steps(4);
    connect_first_entry(&mut harness, "Connect");
    harness.run_steps(4);
    {
        let shared = shared.lock().unwrap();
        let remote = shared.remote.as_ref().unwrap();
        let mut fb = remote.frame.lock().unwrap();
        // What the driver does on `Connected` and on a frame.
        *fb = Framebuffer::default();
        drop(fb);
        remote
            .events
            .send(UiEvent::Connected {
                width: 320,
                height: 200,
            })
            .unwrap();
    }
    harness.run_steps(4);
    harness.get_by_label("Disconnect");
    harness.get_by_label_contains("Ctrl+Alt+Shift+F");

    // The remote PC's pointer replaces the system's over the picture (and
    // only there), until the remote PC goes back to the arrow.
    let over_picture = egui::pos2(100.0, 120.0);
    let cursor = |harness: &Harness<'_, _>| harness.output().platform_output.cursor_icon;
    harness.hover_at(over_picture);
    harness.run_steps(2);
    assert_eq!(cursor(&harness), egui::CursorIcon::Default);
    let shape = client_core::rdp::PointerShape {
        width: 2,
        height: 2,
        hotspot: (1, 1),
        rgba: vec![255; 16],
    };
    let shape = client_core::rdp::RemotePointer::Shape(std::sync::Arc::new(shape));
    send(&shared, UiEvent::Pointer(shape));
    harness.run_steps(2);
    assert_eq!(cursor(&harness), egui::CursorIcon::None);
    harness.hover_at(egui::pos2(900.0, 650.0));
    harness.run_steps(2);
    assert_ne!(cursor(&harness), egui::CursorIcon::None);
    harness.hover_at(over_picture);
    send(
        &shared,
        UiEvent::Pointer(client_core::rdp::RemotePointer::System),
    );
    harness.run_steps(2);
    assert_eq!(cursor(&harness), egui::CursorIcon::Default);

    // Typing: text goes as Unicode, Enter as its scancode.
    harness.event(egui::Event::Text("あa".into()));
    harness.key_press(egui::Key::Enter);
    harness.run_steps(4);
    let mut typed = Vec::new();
    let mut keys = Vec::new();
    for command in drain_commands(&shared) {
        match command {
            Command::Unicode { ch, down: true } => typed.push(ch),
            Command::Key {
                scancode,
                down: true,
                ..
            } => keys.push(scancode),
            _ => {}
        }
    }
    assert_eq!(typed, vec!['あ', 'a']);
    assert!(keys.contains(&0x1c), "{keys:?}");

    // The Japanese keys are on the bar.
    harness.get_by_label("Henkan").click();
    harness.run_steps(4);
    let mut henkan = false;
    for command in drain_commands(&shared) {
        henkan |= matches!(
            command,
            Command::Key {
                scancode: 0x79,
                down: true,
                ..
            }
        );
    }
    assert!(henkan);

    harness.get_by_label("Disconnect").click();
    harness.run_steps(4);
    let mut disconnected = false;
    for command in drain_commands(&shared) {
        disconnected |= matches!(command, Command::Disconnect);
    }
    assert!(disconnected);
    send(&shared, UiEvent::Ended(Ok(())));
    harness.run_steps(4);
    harness.get_by_label("Office");
    assert!(shared
        .lock()
        .unwrap()
        .saved
        .as_ref()
        .is_some_and(|s| s.fullscreen_hint_seen));
}

#[test]
fn every_text_renders_in_both_languages_without_missing_glyphs() {
    for lang in [Lang::Ja, Lang::En] {
        let mut harness = Harness::builder().build_ui(move |ui| {
            ui.ctx().set_fonts(ui::fonts::definitions(Vec::new()));
            for t in T::ALL {
                ui.label(t.get(lang));
            }
        });
        harness.run_steps(4);
    }
}

#[test]
fn the_bundled_font_covers_every_japanese_text() {
    let face = ttf_parser::Face::parse(ui::fonts::UI_FONT, 0).expect("the bundled font parses");
    let mut missing = std::collections::BTreeSet::new();
    for t in T::ALL {
        for ch in t.get(Lang::Ja).chars() {
            if !ch.is_ascii() && face.glyph_index(ch).is_none() {
                missing.insert(ch);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "run `cargo xtask font`: no glyph for {missing:?}"
    );
}

#[test]
fn drive_sharing_is_off_by_default_and_explained_when_unavailable() {
    struct NoShare(FakePlatform);
    impl Platform for NoShare {
        fn load_settings(&self) -> Result<Settings, String> {
            self.0.load_settings()
        }
        fn save_settings(&self, s: &Settings) -> Result<(), String> {
            self.0.save_settings(s)
        }
        fn connect(
            &self,
            s: &Settings,
            e: &Entry,
            c: RdpCredentials,
            m: MonitorLayout,
            w: Arc<dyn Fn() + Send + Sync>,
        ) -> Result<Handle, String> {
            self.0.connect(s, e, c, m, w)
        }
        fn forget_pin(&self, pin: &str) -> Result<(), String> {
            self.0.forget_pin(pin)
        }
        fn drive_sharing(&self) -> Availability {
            Availability::Unavailable(T::ShareForbidden)
        }
        fn storage_location(&self) -> String {
            self.0.storage_location()
        }
        fn locale(&self) -> String {
            "en".into()
        }
    }
    let shared = Arc::new(Mutex::new(Shared::default()));
    let platform = NoShare(FakePlatform {
        initial: Settings::default(),
        locale: "en",
        shared,
        portable: Portable::Off,
    });
    let mut harness = Harness::builder().build_ui_state(
        |ui, app: &mut ThinApp| app.show(ui),
        ThinApp::new(Box::new(platform)),
    );
    harness.run_steps(4);
    harness.get_by_label("Add").click();
    harness.run_steps(4);
    let toggle = harness.get_by_role_and_label(Role::CheckBox, T::ShareDrive.get(Lang::En));
    assert!(toggle.accesskit_node().is_disabled());
    harness.get_by_label(T::ShareForbidden.get(Lang::En));
}

#[test]
fn the_settings_say_whether_portable_mode_is_on_or_why_it_cannot_be() {
    for (portable, text) in [
        (Portable::On, T::PortableOn),
        (Portable::Off, T::PortableOff),
        (
            Portable::Unavailable(T::PortableInBrowser),
            T::PortableInBrowser,
        ),
    ] {
        let platform = FakePlatform {
            initial: Settings::default(),
            locale: "ja_JP",
            shared: Arc::new(Mutex::new(Shared::default())),
            portable,
        };
        let mut harness = Harness::builder().build_ui_state(
            |ui, app: &mut ThinApp| app.show(ui),
            ThinApp::new(Box::new(platform)),
        );
        harness.run_steps(4);
        harness.get_by_label("設定").click();
        harness.run_steps(4);
        harness.get_by_label(text.get(Lang::Ja));
    }
}

#[test]
fn quick_connect_takes_a_typed_computer_id() {
    let (mut harness, shared) = app(office(), "en_US");
    harness.run_steps(4);
    // The field has the keyboard from the start: type and press Enter.
    harness.event(egui::Event::Text("Other-PC".into()));
    harness.run_steps(2);
    harness.key_press(egui::Key::Enter);
    harness.run_steps(4);
    harness.get_by_label_contains("Connecting to Other-PC");
    assert!(shared.lock().unwrap().remote.is_some());
    // The window (or browser tab) title names the computer and the step.
    assert_eq!(harness.state().title(), "Connecting to other-pc — thin");

    // With no saved user, the logon starts at the user name; Tab goes on to
    // the password and Enter answers, keyboard only.
    send(
        &shared,
        UiEvent::Ask(Prompt::RemoteLogon {
            user: String::new(),
            domain: None,
        }),
    );
    harness.run_steps(4);
    assert_eq!(harness.state().title(), "Windows logon — other-pc — thin");
    harness.event(egui::Event::Text("hanako".into()));
    harness.run_steps(2);
    harness.key_press(egui::Key::Tab);
    harness.run_steps(2);
    harness.event(egui::Event::Text("Win-Pass-3".into()));
    harness.run_steps(2);
    harness.key_press(egui::Key::Enter);
    harness.run_steps(4);
    match answer(&shared) {
        Answer::Logon {
            user,
            password,
            domain,
        } => {
            assert_eq!(user, "hanako");
            assert_eq!(password.as_str(), "Win-Pass-3");
            assert_eq!(domain, None);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_broken_path_shows_the_reconnect_and_the_session_comes_back() {
    let (mut harness, shared) = app(office(), "ja_JP");
    harness.run_steps(4);
    connect_first_entry(&mut harness, "接続");
    harness.run_steps(4);
    let connected = |shared: &Arc<Mutex<Shared>>| {
        let shared = shared.lock().unwrap();
        let remote = shared.remote.as_ref().unwrap();
        *remote.frame.lock().unwrap() = Framebuffer::default();
        remote
            .events
            .send(UiEvent::Connected {
                width: 320,
                height: 200,
            })
            .unwrap();
    };
    connected(&shared);
    harness.run_steps(4);
    harness.get_by_label("切断");

    // The path breaks: the app says so and shows the steps again, with a
    // way to give up.
    send(
        &shared,
        UiEvent::Reconnecting {
            attempt: 2,
            in_secs: 2,
            reason: "connection lost".into(),
        },
    );
    harness.run_steps(4);
    harness.get_by_label_contains("接続が切れました。もう一度つないでいます (2 回め)");
    harness.get_by_label("キャンセル");

    // Back in: the session view returns.
    connected(&shared);
    harness.run_steps(4);
    harness.get_by_label("切断");
    assert!(harness
        .query_by_label_contains("もう一度つないでいます")
        .is_none());

    // A session that does not end when asked (busy with a long server
    // message): the list comes back after LEAVE_WAIT all the same.
    harness.get_by_label("切断").click();
    harness.run_steps(4);
    assert!(drain_commands(&shared)
        .iter()
        .any(|command| matches!(command, Command::Disconnect)));
    // One second later (four steps of 1/4 s), still waiting for the end.
    harness.get_by_label("切断");
    harness.run_steps(8);
    assert!(harness.query_by_label("切断").is_none());
    harness.get_by_label("Office");
}
