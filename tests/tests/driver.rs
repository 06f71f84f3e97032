//! The UI-facing connection driver against the in-process demo (relay, host
//! with TOTP and host password, test desktop): prompts answered over the
//! channel, the picture in the shared framebuffer, input echoed back.

use std::sync::Arc;
use std::time::Duration;

use client_core::demo::Demo;
use client_core::driver::{self, Command, UiEvent};
use client_core::known_hosts::MemoryPins;
use client_core::native::NativeOpener;
use client_core::rdp::MouseButton;
use client_core::{Answer, Progress, Prompt};
use test_desktop::{key_strip_color, picture_pixel, CLICK_MARK, KEY_STRIP_HEIGHT};
use zeroize::Zeroizing;

#[test]
fn the_driver_runs_a_whole_session_for_a_ui() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let demo = Demo::start().await.unwrap();
        let (mut handle, drive) = driver::channel(Arc::new(|| {}));
        let opener = NativeOpener {
            relay: demo.relay.clone(),
            id: demo.id.clone(),
            pins: Arc::new(MemoryPins::default()),
        };
        // The Windows password is not given beforehand: the driver asks.
        let creds = client_core::RdpCredentials {
            password: String::new(),
            ..demo.rdp.clone()
        };
        tokio::spawn(driver::run(opener, creds, (1024, 768), None, drive));

        let pixel = |fb: &driver::Framebuffer, x: usize, y: usize| {
            let i = (y * usize::from(fb.width) + x) * 4;
            [fb.rgba[i], fb.rgba[i + 1], fb.rgba[i + 2]]
        };
        let mut steps = Vec::new();
        let mut asked = Vec::new();
        let mut sent_input = false;
        let outcome = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(event) = handle.events.recv().await {
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
                        } else if sent_input
                            && pixel(&fb, 200, 150) == CLICK_MARK
                            && pixel(&fb, 10, strip_y) == key_strip_color(0x1e)
                        {
                            drop(fb);
                            handle.commands.send(Command::Disconnect).unwrap();
                        }
                    }
                    UiEvent::Ended(result) => return result,
                }
            }
            panic!("the driver stopped without an end event")
        })
        .await
        .expect("the session finished in time");
        assert!(outcome.is_ok(), "{outcome:?}");
        assert!(sent_input, "the picture never arrived");
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
