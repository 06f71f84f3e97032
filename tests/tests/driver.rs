//! The UI-facing connection driver against the in-process demo (relay, host
//! with TOTP and host password, test desktop): prompts answered over the
//! channel, the picture in the shared framebuffer, input echoed back; and
//! against separate processes whose relay restarts mid-session.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use client_core::driver::{self, Command, UiEvent};
use client_core::known_hosts::MemoryPins;
use client_core::native::NativeOpener;
use client_core::rdp::MouseButton;
use client_core::{Answer, Progress, Prompt};
use demo::{Demo, DemoOptions};
use test_desktop::{key_strip_color, picture_pixel, InputEcho, CLICK_MARK, KEY_STRIP_HEIGHT};
use zeroize::Zeroizing;

/// Text on the office PC's clipboard, and text pasted from home.
const OFFICE_TEXT: &str = "会社のPCでコピー ✓ office";
const HOME_TEXT: &str = "家でコピーした文字 ✓ home\n2行目";

#[test]
fn the_driver_runs_a_whole_session_for_a_ui() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let demo = Demo::start_with(DemoOptions {
            desktop_clipboard: Some(OFFICE_TEXT.into()),
            ..DemoOptions::default()
        })
        .await
        .unwrap();
        let mut echo = demo.desktop.subscribe();
        let (mut handle, drive) = driver::channel(Arc::new(|| {}));
        let opener = opener_for(&demo);
        // The Windows password is not given beforehand: the driver asks.
        let creds = client_core::RdpCredentials {
            password: String::new(),
            ..demo.rdp.clone()
        };
        tokio::spawn(driver::run(opener, creds, (1024, 768).into(), driver::Devices::default(), drive));

        let pixel = |fb: &driver::Framebuffer, x: usize, y: usize| {
            let i = (y * usize::from(fb.width) + x) * 4;
            [fb.rgba[i], fb.rgba[i + 1], fb.rgba[i + 2]]
        };
        let mut steps = Vec::new();
        let mut asked = Vec::new();
        let mut sent_input = false;
        let mut pasted = false;
        let mut from_office = Vec::new();
        let mut at_office = Vec::new();
        let v_pressed = InputEcho::Key {
            scancode: 0x2f,
            extended: false,
            down: true,
        };
        let copied = InputEcho::Clipboard {
            text: HOME_TEXT.into(),
        };
        let mut disconnected = false;
        let mut pointers = Vec::new();
        // After the paste, the window grows: the desktop follows, and a
        // click in the new area reaches the office PC at its place.
        let mut resized = false;
        let mut clicked_wide = false;
        let wide_click = InputEcho::Click {
            x: 1250,
            y: 700,
            button: "left",
        };
        let outcome = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                // What the office PC saw, as it happens: the paste is done
                // once Ctrl+V and the text both arrived (in either order;
                // the test desktop fetches the text at once, Windows at the
                // paste).
                let event = tokio::select! {
                    event = handle.events.recv() => match event {
                        Some(event) => event,
                        None => break,
                    },
                    Ok(seen) = echo.recv() => {
                        at_office.push(seen);
                        let done = at_office.contains(&v_pressed) && at_office.contains(&copied);
                        if pasted && done && !resized {
                            resized = true;
                            let resize = Command::Resize { screens: (1280, 720).into(), scale_percent: 100 };
                            handle.commands.send(resize).unwrap();
                        }
                        if at_office.contains(&wide_click) && !disconnected {
                            disconnected = true;
                            handle.commands.send(Command::Disconnect).unwrap();
                        }
                        continue;
                    }
                };
                match event {
                    UiEvent::Progress(step) => steps.push(step),
                    UiEvent::Ask(prompt) => {
                        let answer = match &prompt {
                            Prompt::NewHostKey { .. } => Answer::Accept,
                            Prompt::Otp { .. } => Answer::Otp(Zeroizing::new(demo.next_otp())),
                            Prompt::HostPassword { .. } => {
                                Answer::Secret(Zeroizing::new(demo.host_password.clone()))
                            }
                            Prompt::RemoteLogon { user, .. } => Answer::Logon {
                                user: user.clone(),
                                password: Zeroizing::new(demo.rdp.password.clone()),
                                domain: None,
                            },
                        };
                        asked.push(prompt);
                        handle.commands.send(Command::Answer(answer)).unwrap();
                    }
                    UiEvent::Admitted(_) | UiEvent::Connected { .. } => {}
                    UiEvent::Reconnecting { reason, .. } => panic!("reconnecting: {reason}"),
                    UiEvent::Frame => {
                        let fb = handle.frame.lock().unwrap();
                        let strip_y = 768 - usize::from(KEY_STRIP_HEIGHT) / 2;
                        let complete = pixel(&fb, 1000, 700) == picture_pixel(1000, 700)
                            && pixel(&fb, 3, 3) == picture_pixel(3, 3);
                        if complete && !sent_input {
                            drop(fb);
                            sent_input = true;
                            for command in [
                                Command::Key {
                                    scancode: 0x1e,
                                    extended: false,
                                    down: true,
                                },
                                Command::Key {
                                    scancode: 0x1e,
                                    extended: false,
                                    down: false,
                                },
                                Command::MouseMove { x: 200, y: 150 },
                                Command::MouseButton {
                                    button: MouseButton::Left,
                                    down: true,
                                },
                                Command::MouseButton {
                                    button: MouseButton::Left,
                                    down: false,
                                },
                            ] {
                                handle.commands.send(command).unwrap();
                            }
                        } else if resized
                            && !clicked_wide
                            && (fb.width, fb.height) == (1280, 720)
                            && pixel(&fb, 1270, 710) == picture_pixel(1270, 710)
                        {
                            drop(fb);
                            clicked_wide = true;
                            click(&handle, 1250, 700);
                        } else if sent_input
                            && !pasted
                            && pixel(&fb, 200, 150) == CLICK_MARK
                            && pixel(&fb, 10, strip_y) == key_strip_color(0x1e)
                        {
                            drop(fb);
                            // Ctrl+V at home: the text goes on the office
                            // PC's clipboard, then Ctrl+V is pressed there.
                            pasted = true;
                            handle
                                .commands
                                .send(Command::Paste(HOME_TEXT.into()))
                                .unwrap();
                        }
                    }
                    UiEvent::RemoteClipboard(text) => from_office.push(text),
                    UiEvent::ClipboardTooLarge { bytes, .. } => panic!("too large: {bytes}"),
                    UiEvent::RemoteImage(_) => panic!("no picture was copied at the office"),
                    UiEvent::ImageNotPasted(why) => panic!("no picture was pasted: {why:?}"),
                    UiEvent::RemoteFiles { .. } | UiEvent::FilesFetched(_) => {
                        panic!("no files were copied at the office")
                    }
                    UiEvent::FilesNotCarried { why, .. } => panic!("no files were pasted: {why}"),
                    UiEvent::PasteTooLongToType { chars } => panic!("too long: {chars}"),
                    UiEvent::SoundUnavailable(why) => panic!("no sound device wanted: {why}"),
                    UiEvent::Pointer(pointer) => pointers.push(pointer),
                    UiEvent::Ended(result) => return result,
                }
            }
            panic!("the driver stopped without an end event")
        })
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the session did not finish in time: input sent {sent_input}, pasted \
                 {pasted}, resized {resized}, clicked in the new area {clicked_wide}, steps \
                 {steps:?}, from the office {from_office:?}, at the office {at_office:?}"
            )
        });
        assert!(outcome.is_ok(), "{outcome:?}");
        assert!(sent_input, "the picture never arrived");
        // The office PC's clipboard came home as the session began; the
        // pasted text was on offer at the office PC before Ctrl+V was
        // pressed there (as Windows, which fetches it at the paste), and
        // it arrived whole.
        assert_eq!(from_office, [OFFICE_TEXT]);
        let copied_at = at_office
            .iter()
            .position(|e| *e == InputEcho::ClipboardOffered)
            .unwrap_or_else(|| panic!("nothing was offered: {at_office:?}"));
        let keys_after: Vec<_> = at_office[copied_at..]
            .iter()
            .filter_map(|e| match e {
                InputEcho::Key { scancode, down, .. } => Some((*scancode, *down)),
                _ => None,
            })
            .collect();
        assert_eq!(
            keys_after,
            [(0x1d, true), (0x2f, true), (0x2f, false), (0x1d, false)],
            "after the copy, Ctrl+V and no other key: {at_office:?}"
        );
        assert!(
            at_office.contains(&InputEcho::Resized {
                width: 1280,
                height: 720
            }),
            "{at_office:?}"
        );
        // The office PC's pointer came for the UI to draw.
        let Some(client_core::rdp::RemotePointer::Shape(shape)) = pointers.first() else {
            panic!("no pointer shape: {pointers:?}");
        };
        assert_eq!((shape.width, shape.height), test_desktop::POINTER_SIZE);
        assert_eq!(shape.hotspot, test_desktop::POINTER_HOTSPOT);
        assert_eq!(shape.rgba[..4], test_desktop::pointer_pixel(0, 0));
        assert_eq!(asked.len(), 4, "{asked:?}");
        assert!(matches!(asked[3], Prompt::RemoteLogon { .. }), "{asked:?}");
        for step in [
            Progress::Secured,
            Progress::OtpAccepted,
            Progress::Admitted,
            Progress::Connected,
        ] {
            assert!(steps.contains(&step), "{step:?} missing from {steps:?}");
        }
    });
}

/// Where the office PC takes no clipboard text (its owner's policy), a
/// paste is typed character by character. One longer than
/// `MAX_TYPED_CHARS` would hold the session (and the person's Disconnect)
/// for minutes: it is refused with a message and nothing of it is typed,
/// while a short one still is.
#[test]
fn a_paste_too_long_to_type_is_refused_and_a_short_one_is_typed() {
    use client_core::rdp::MAX_TYPED_CHARS;
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let demo = Demo::start_with(DemoOptions {
            clipboard: false,
            ..DemoOptions::default()
        })
        .await
        .unwrap();
        let mut echo = demo.desktop.subscribe();
        let (mut handle, drive) = driver::channel(Arc::new(|| {}));
        let opener = opener_for(&demo);
        let devices = driver::Devices::default();
        tokio::spawn(driver::run(
            opener,
            demo.rdp.clone(),
            (1024, 768).into(),
            devices,
            drive,
        ));
        let long = "長".repeat(MAX_TYPED_CHARS + 1);
        let mut pasted = false;
        let mut refused = None;
        let mut typed = Vec::new();
        let outcome = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                let event = tokio::select! {
                    event = handle.events.recv() => event.expect("the driver ends with an event"),
                    Ok(seen) = echo.recv() => {
                        if let InputEcho::Unicode { code, down: true } = seen {
                            typed.push(char::from_u32(code.into()).unwrap_or('?'));
                        }
                        if typed.ends_with(&['o', 'k']) {
                            handle.commands.send(Command::Disconnect).unwrap();
                        }
                        continue;
                    }
                };
                match event {
                    UiEvent::Ask(prompt) => {
                        let answer = match prompt {
                            Prompt::NewHostKey { .. } => Answer::Accept,
                            Prompt::Otp { .. } => Answer::Otp(Zeroizing::new(demo.next_otp())),
                            Prompt::HostPassword { .. } => {
                                Answer::Secret(Zeroizing::new(demo.host_password.clone()))
                            }
                            other => panic!("not asked here: {other:?}"),
                        };
                        handle.commands.send(Command::Answer(answer)).unwrap();
                    }
                    UiEvent::Admitted(admission) => assert!(!admission.clipboard_allowed),
                    UiEvent::Frame if !pasted => {
                        pasted = true;
                        for text in [long.clone(), "ok".to_owned()] {
                            handle.commands.send(Command::Paste(text)).unwrap();
                        }
                    }
                    UiEvent::PasteTooLongToType { chars } => refused = Some(chars),
                    UiEvent::Reconnecting { reason, .. } => panic!("reconnecting: {reason}"),
                    UiEvent::Ended(result) => return result,
                    _ => {}
                }
            }
        })
        .await
        .unwrap_or_else(|_| {
            panic!("no end: pasted {pasted}, refused {refused:?}, typed {typed:?}")
        });
        assert!(outcome.is_ok(), "{outcome:?}");
        assert_eq!(refused, Some(MAX_TYPED_CHARS + 1));
        assert_eq!(typed, ['o', 'k'], "the long text was typed in part");
        eprintln!(
            "{} characters refused for typing, \"ok\" typed",
            MAX_TYPED_CHARS + 1
        );
    });
}

/// A remote PC that hangs half-way through a resize (the Deactivate All
/// sent, the capability exchange never run) must not hold the app: the
/// person's Disconnect still ends the session at once, and input typed
/// meanwhile neither blocks nor breaks it.
#[test]
fn a_person_can_leave_while_the_remote_pc_hangs_in_a_resize() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let demo = Demo::start_with(DemoOptions {
            stalled_resize: true,
            ..DemoOptions::default()
        })
        .await
        .unwrap();
        let mut echo = demo.desktop.subscribe();
        let (mut handle, drive) = driver::channel(Arc::new(|| {}));
        let opener = opener_for(&demo);
        let run = tokio::spawn(driver::run(
            opener,
            demo.rdp.clone(),
            (1024, 768).into(),
            driver::Devices::default(),
            drive,
        ));
        let mut resized = false;
        let mut left_at = None;
        let outcome = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                let event = tokio::select! {
                    event = handle.events.recv() => event.expect("the driver ends with an event"),
                    Ok(seen) = echo.recv() => {
                        if seen == InputEcho::ResizeStalled && left_at.is_none() {
                            for down in [true, false] {
                                let key = Command::Key { scancode: 0x1e, extended: false, down };
                                handle.commands.send(key).unwrap();
                            }
                            handle.commands.send(Command::Disconnect).unwrap();
                            left_at = Some(Instant::now());
                        }
                        continue;
                    }
                };
                match event {
                    UiEvent::Ask(prompt) => {
                        let answer = match prompt {
                            Prompt::NewHostKey { .. } => Answer::Accept,
                            Prompt::Otp { .. } => Answer::Otp(Zeroizing::new(demo.next_otp())),
                            Prompt::HostPassword { .. } => {
                                Answer::Secret(Zeroizing::new(demo.host_password.clone()))
                            }
                            other => panic!("not asked here: {other:?}"),
                        };
                        handle.commands.send(Command::Answer(answer)).unwrap();
                    }
                    UiEvent::Frame if !resized => {
                        resized = true;
                        let resize = Command::Resize {
                            screens: (1280, 720).into(),
                            scale_percent: 100,
                        };
                        handle.commands.send(resize).unwrap();
                    }
                    UiEvent::Reconnecting { reason, .. } => panic!("reconnecting: {reason}"),
                    UiEvent::Ended(result) => return result,
                    _ => {}
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("the session did not end: resized {resized}, left {left_at:?}"));
        assert!(outcome.is_ok(), "{outcome:?}");
        let left_at = left_at.expect("the desktop never stalled");
        assert!(
            left_at.elapsed() < Duration::from_secs(5),
            "{:?}",
            left_at.elapsed()
        );
        tokio::time::timeout(Duration::from_secs(5), run)
            .await
            .expect("the driver's task ends")
            .unwrap();
    });
}

/// A Wi-Fi blip, a relay restart: the path breaks mid-session. The driver
/// says so, opens the connection again by itself with the host's resume
/// ticket in place of the one-time password, and the same remote session
/// (with what the user drew on it) comes back, the RDP server's
/// auto-reconnect cookie offered.
#[test]
fn the_driver_reconnects_into_the_same_session_after_the_relay_restarts() {
    use common::*;
    if !real_peer_programs(&["oathtool"], "oathtool") {
        return;
    }
    const USER: &str = "alice";
    const PASSWORD: &str = "Secr3t!pw";
    let mut relay = RelayProc::start(&[]);
    let (mut desktop, desktop_addr) = test_desktop(USER, PASSWORD);
    let work = tempfile::tempdir().unwrap();
    let host = HostProc::start(work.path(), &relay, "roaming-pc", &desktop_addr);
    let (_, _, secret) = enrol_totp(&host.config);

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut handle = start_driver(&relay.addr, relay.ca(), "roaming-pc", (USER, PASSWORD));

        let pixel = |fb: &driver::Framebuffer, x: usize, y: usize| {
            let i = (y * usize::from(fb.width) + x) * 4;
            [fb.rgba[i], fb.rgba[i + 1], fb.rgba[i + 2]]
        };
        let mut otp_prompts = 0;
        let mut reconnects = Vec::new();
        let mut connected = 0;
        let mut clicked = false;
        let mut broke_at = None;
        let mut back_after = None;
        let outcome = tokio::time::timeout(Duration::from_secs(90), async {
            while let Some(event) = handle.events.recv().await {
                match event {
                    UiEvent::Ask(prompt) => {
                        let answer = answer_as_owner(&prompt, &secret, &mut otp_prompts);
                        handle.commands.send(Command::Answer(answer)).unwrap();
                    }
                    UiEvent::Reconnecting {
                        attempt, reason, ..
                    } => reconnects.push((attempt, reason)),
                    UiEvent::Connected { width, height } => {
                        assert_eq!((width, height), (1024, 768));
                        connected += 1;
                    }
                    UiEvent::Frame => {
                        let fb = handle.frame.lock().unwrap();
                        let complete = pixel(&fb, 1000, 700) == picture_pixel(1000, 700)
                            && pixel(&fb, 3, 3) == picture_pixel(3, 3);
                        let marked = pixel(&fb, 200, 150) == CLICK_MARK;
                        drop(fb);
                        if connected == 1 && complete && !clicked {
                            clicked = true;
                            click(&handle, 200, 150);
                        } else if connected == 1 && marked && broke_at.is_none() {
                            // The relay goes away under the running session.
                            broke_at = Some(Instant::now());
                            // (It waits for the new relay: off the runtime's
                            // worker, which the driver needs meanwhile.)
                            tokio::task::block_in_place(|| relay.restart());
                        } else if connected == 2 && marked && complete {
                            // Back in the same session: the mark is still there.
                            back_after = broke_at.map(|at| at.elapsed());
                            handle.commands.send(Command::Disconnect).unwrap();
                        }
                    }
                    UiEvent::Ended(result) => return result,
                    // This desktop's clipboard is empty: nothing comes.
                    UiEvent::Progress(_)
                    | UiEvent::Admitted(_)
                    | UiEvent::RemoteClipboard(_)
                    | UiEvent::RemoteImage(_)
                    | UiEvent::ImageNotPasted(_)
                    | UiEvent::RemoteFiles { .. }
                    | UiEvent::FilesFetched(_)
                    | UiEvent::FilesNotCarried { .. }
                    | UiEvent::SoundUnavailable(_)
                    | UiEvent::Pointer(_)
                    | UiEvent::ClipboardTooLarge { .. }
                    | UiEvent::PasteTooLongToType { .. } => {}
                }
            }
            panic!("the driver stopped without an end event")
        })
        .await
        .expect("the session came back in time");
        assert!(outcome.is_ok(), "{outcome:?}");
        assert_eq!(connected, 2, "{reconnects:?}");
        assert!(!reconnects.is_empty());
        assert_eq!(reconnects[0].0, 1);
        assert!(
            reconnects[0].1.contains("connection"),
            "{:?}",
            reconnects[0]
        );
        assert_eq!(otp_prompts, 1, "the reconnect asked for the code again");
        let back_after = back_after.expect("the same session came back");
        assert!(back_after < Duration::from_secs(30), "{back_after:?}");
        eprintln!("back in the session {back_after:?} after the relay restarted");
    });
    let audit = std::fs::read_to_string(host.config.with_extension("audit.log")).unwrap();
    assert!(audit.contains("skipped: resume ticket"), "{audit}");
    // The RDP server's own auto-reconnect cookie went back to it too (the
    // way Windows returns a dropped client to its session without a new
    // logon).
    desktop.wait_for(
        "input: auto-reconnect cookie for logon 0x7468696e (ours)",
        Duration::from_secs(5),
    );
}

/// The network goes away without a word under a still session (packets
/// lost, no reset: a pulled cable, a NAT that forgot the connection), which
/// TCP alone would not notice for many minutes. The keep-alive does: the
/// driver says so within the client's limit and comes back into the same
/// session without the one-time password; the office PC lets the vanished
/// connection go after its own, longer limit.
#[test]
fn a_path_that_dies_without_a_word_is_noticed_and_the_session_comes_back() {
    use common::*;
    use proto::liveness::{BEAT, CLIENT_GIVES_UP_AFTER};
    if !real_peer_programs(&["oathtool"], "oathtool") {
        return;
    }
    const USER: &str = "bob";
    const PASSWORD: &str = "Qu1et-Link";
    let relay = RelayProc::start(&[]);
    let (_desktop, desktop_addr) = test_desktop(USER, PASSWORD);
    let work = tempfile::tempdir().unwrap();
    let mut host = HostProc::start(work.path(), &relay, "quiet-pc", &desktop_addr);
    let (_, _, secret) = enrol_totp(&host.config);
    // The owner's shortest wait for a silent client (3 minutes by default).
    const HOST_LIMIT: Duration = Duration::from_secs(30);
    let mut config = host::HostConfig::load(&host.config).unwrap();
    config.client_silence_secs = HOST_LIMIT.as_secs();
    config.save(&host.config).unwrap();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let frozen_at = rt.block_on(async {
        // The client reaches the relay through a link the test can pull.
        let link = Freezer::start(&relay.addr).await;
        let mut handle = start_driver(&link.addr, relay.ca(), "quiet-pc", (USER, PASSWORD));

        let mut otp_prompts = 0;
        let mut connected = 0;
        let mut frozen_at = None;
        let mut noticed = None;
        let outcome = tokio::time::timeout(Duration::from_secs(90), async {
            while let Some(event) = handle.events.recv().await {
                match event {
                    UiEvent::Ask(prompt) => {
                        let answer = answer_as_owner(&prompt, &secret, &mut otp_prompts);
                        handle.commands.send(Command::Answer(answer)).unwrap();
                    }
                    UiEvent::Connected { .. } => connected += 1,
                    UiEvent::Frame if connected == 1 && frozen_at.is_none() => {
                        link.freeze();
                        frozen_at = Some(Instant::now());
                    }
                    UiEvent::Reconnecting { reason, .. } if noticed.is_none() => {
                        let after = frozen_at
                            .expect("broke before the link was pulled")
                            .elapsed();
                        noticed = Some((after, reason));
                    }
                    // (The driver may have ended already: its end event
                    // follows and says why.)
                    UiEvent::Frame if connected == 2 => {
                        let _ = handle.commands.send(Command::Disconnect);
                    }
                    UiEvent::Ended(result) => return result,
                    _ => {}
                }
            }
            panic!("the driver stopped without an end event")
        })
        .await
        .unwrap_or_else(|_| panic!("the session did not come back: noticed {noticed:?}"));
        let seen = format!("connected {connected}, codes asked {otp_prompts}, noticed {noticed:?}");
        assert!(outcome.is_ok(), "{outcome:?}; {seen}");
        assert_eq!(connected, 2, "{seen}");
        assert_eq!(
            otp_prompts, 1,
            "the reconnect asked for the code again; {seen}"
        );
        let (after, reason) = noticed.expect("the driver never noticed");
        assert!(reason.contains("stopped answering"), "{reason}");
        let limit = BEAT * CLIENT_GIVES_UP_AFTER;
        // Less than the limit by up to a beat's phase and the time the
        // test took to pull the link after the last bytes passed.
        let (soonest, latest) = (limit - BEAT * 2, limit + BEAT * 2);
        assert!(
            after >= soonest && after <= latest,
            "noticed after {after:?}"
        );
        eprintln!("the silent path was noticed after {after:?}: {reason}");
        frozen_at.unwrap()
    });
    // The office PC's side of the frozen connection heard nothing either;
    // it lets it go after its own limit (the runtime, still alive, keeps
    // the frozen sockets open until then).
    let line = host.proc.wait_for(
        "nothing arrived through the connection for 30 seconds",
        HOST_LIMIT + Duration::from_secs(20),
    );
    let after = frozen_at.elapsed();
    assert!(after >= HOST_LIMIT - BEAT * 2, "{after:?}: {line}");
    drop(rt);
}

/// The app (a first visit) reaching `id` through the relay at `addr`,
/// with the Windows logon given beforehand.
fn start_driver(
    addr: &str,
    ca: std::path::PathBuf,
    id: &str,
    logon: (&str, &str),
) -> driver::Handle {
    let (handle, drive) = driver::channel(Arc::new(|| {}));
    let opener = NativeOpener {
        relay: client_core::native::RelayTarget {
            addr: addr.to_owned(),
            ca,
            proxy: None,
        },
        id: id.into(),
        pins: Arc::new(MemoryPins::default()),
        resumption: Default::default(),
    };
    let creds = client_core::RdpCredentials {
        user: logon.0.into(),
        password: logon.1.into(),
        domain: None,
    };
    tokio::spawn(driver::run(
        opener,
        creds,
        (1024, 768).into(),
        driver::Devices::default(),
        drive,
    ));
    handle
}

/// What the office PC's owner answers (a host from `common`, its
/// authenticator `secret`): the new key accepted, the current code (counted
/// in `codes_asked`), the host password; the Windows logon was given.
fn answer_as_owner(prompt: &Prompt, secret: &str, codes_asked: &mut u32) -> Answer {
    match prompt {
        Prompt::NewHostKey { .. } => Answer::Accept,
        Prompt::Otp { .. } => {
            *codes_asked += 1;
            Answer::Otp(Zeroizing::new(common::oathtool(secret)))
        }
        Prompt::HostPassword { .. } => Answer::Secret(Zeroizing::new(common::HOST_PASSWORD.into())),
        Prompt::RemoteLogon { .. } => Answer::Cancel,
    }
}

/// How the app reaches the in-process demo's office PC (a first visit:
/// no pinned key, no resume ticket).
fn opener_for(demo: &Demo) -> NativeOpener {
    NativeOpener {
        relay: demo.relay.clone(),
        id: demo.id.clone(),
        pins: Arc::new(MemoryPins::default()),
        resumption: Default::default(),
    }
}

/// A left click at (`x`, `y`) on the remote desktop, as the UI sends it.
fn click(handle: &driver::Handle, x: u16, y: u16) {
    for command in [
        Command::MouseMove { x, y },
        Command::MouseButton {
            button: MouseButton::Left,
            down: true,
        },
        Command::MouseButton {
            button: MouseButton::Left,
            down: false,
        },
    ] {
        handle.commands.send(command).unwrap();
    }
}
