//! A real session across separate processes: relay, host, test desktop,
//! and the client (CLI and library).

mod common;

use std::time::Duration;

use client_core::known_hosts::MemoryPins;
use client_core::native::{self, RdpOptions, RelayTarget};
use client_core::{RdpCredentials, Scripted, SessionEvent};
use common::*;
use test_desktop::{key_strip_color, picture_pixel, CLICK_MARK, KEY_STRIP_HEIGHT};

const USER: &str = "alice";
const PASSWORD: &str = "Secr3t!pw";

#[test]
fn session_shows_the_picture_and_carries_input_both_ways() {
    let mut relay = RelayProc::start(&[]);
    let (mut desktop, desktop_addr) = test_desktop(USER, PASSWORD);
    let work = tempfile::tempdir().unwrap();
    let _host = HostProc::start(work.path(), &relay, "office-pc", &desktop_addr);

    // The CLI: first complete frame as PNG, timings printed.
    let shot = work.path().join("shot.png");
    // IDs are case-insensitive.
    let (code, out) = thin_client_connect(
        &relay.addr,
        &relay.ca(),
        "Office-PC",
        (USER, PASSWORD),
        &shot,
        &[],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("pairing_ms="), "{out}");
    assert!(out.contains("first_frame_ms="), "{out}");
    let (w, h, rgb) = read_png(&shot);
    assert_eq!((w, h), (1024, 768));
    let mut checked = 0;
    for y in (0..h).step_by(13) {
        for x in (0..w).step_by(17) {
            let i = ((y * w + x) * 3) as usize;
            assert_eq!(
                &rgb[i..i + 3],
                &picture_pixel(x as u16, y as u16),
                "pixel {x},{y}"
            );
            checked += 1;
        }
    }
    assert!(checked > 3000);
    // The CLI hangs up without a TLS close_notify; the relay still logs
    // how many bytes the session carried each way.
    let line = relay
        .proc
        .wait_for("session ended", Duration::from_secs(10));
    // Without the terminal colours the log may carry.
    let mut ended = String::new();
    let mut in_escape = false;
    for c in line.chars() {
        match (in_escape, c) {
            (false, '\u{1b}') => in_escape = true,
            (true, 'm') => in_escape = false,
            (false, c) => ended.push(c),
            (true, _) => {}
        }
    }
    let bytes = |key: &str| -> u64 {
        let start = ended.find(&format!("{key}=")).expect(key) + key.len() + 1;
        let digits: String = ended[start..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().unwrap()
    };
    assert!(bytes("up") > 1_000 && bytes("down") > 100_000, "{ended}");

    // A Japanese keyboard (106/109) is announced as one, so that the
    // Japanese keys work as on the office PC.
    let args = thin_client_connect_args(
        &relay.addr,
        &relay.ca(),
        "office-pc",
        (USER, PASSWORD),
        &shot,
        &[],
    );
    let mut japanese = Proc::start_cmd(
        "thin-client",
        std::process::Command::new(bin("thin-client"))
            .args(&args)
            .env_remove("DISPLAY")
            .env_remove("LC_ALL")
            .env_remove("LC_CTYPE")
            .env("LANG", "ja_JP.UTF-8"),
    );
    let (code, out) = japanese.wait_exit(Duration::from_secs(60));
    assert_eq!(code, 0, "{out}");
    desktop.wait_for("keyboard layout 0x0411, type 7", Duration::from_secs(5));

    // The library client: send a key and a click, see them echoed.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let target = RelayTarget {
            addr: relay.addr.clone(),
            ca: relay.ca(),
            proxy: None,
        };
        let creds = RdpCredentials {
            user: USER.into(),
            password: PASSWORD.into(),
            domain: None,
        };
        let rdp = RdpOptions {
            creds,
            screens: (1024, 768).into(),
            frame_timeout: Duration::from_secs(30),
            share: None,
        };
        let mut answers = Scripted {
            otp: None,
            host_password: Some(HOST_PASSWORD.into()),
        };
        let (mut session, _) = native::connect_and_wait_frame(
            &target,
            "office-pc",
            &rdp,
            &MemoryPins::default(),
            &mut answers,
        )
        .await
        .expect("connects");
        session.key(0x1e, false, true).await.unwrap();
        session.key(0x1e, false, false).await.unwrap();
        session.click(100, 200).await.unwrap();

        let pixel = |s: &client_core::RdpSession<_>, x: usize, y: usize| {
            let i = (y * 1024 + x) * 4;
            [s.image()[i], s.image()[i + 1], s.image()[i + 2]]
        };
        let strip_y = 768 - usize::from(KEY_STRIP_HEIGHT) / 2;
        let echoed = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if pixel(&session, 100, 200) == CLICK_MARK
                    && pixel(&session, 500, strip_y) == key_strip_color(0x1e)
                {
                    return;
                }
                for event in session.next_events().await.unwrap() {
                    assert!(!matches!(event, SessionEvent::Ended(_)));
                }
            }
        })
        .await;
        assert!(
            echoed.is_ok(),
            "the click mark and key strip never came back"
        );
        // Untouched pixels still show the picture.
        assert_eq!(pixel(&session, 300, 300), picture_pixel(300, 300));
        session.disconnect().await.unwrap();
    });
    desktop.wait_for("input: key 0x1e down", Duration::from_secs(5));
    desktop.wait_for("input: key 0x1e up", Duration::from_secs(5));
    desktop.wait_for("input: click left 100,200", Duration::from_secs(5));
}

#[test]
fn demo_runs_with_no_setup() {
    let work = tempfile::tempdir().unwrap();
    let shot = work.path().join("demo.png");
    let (code, out) = run(
        "thin-client",
        &["demo", "--screenshot", shot.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out}");
    let (w, h, rgb) = read_png(&shot);
    assert_eq!((w, h), (1024, 768));
    let i = ((400 * w + 700) * 3) as usize;
    assert_eq!(&rgb[i..i + 3], &picture_pixel(700, 400));
}

/// Motion mode (what thin-bench's frame rate uses): the desktop keeps
/// repainting the whole screen with the picture moved on, and a click made
/// meanwhile still reaches it.
#[test]
fn a_desktop_in_motion_keeps_repainting_and_still_hears_input() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (width, height) = (256u16, 192u16);
        let demo = demo::Demo::start_with(demo::DemoOptions {
            desktop_size: (width, height),
            motion: true,
            otp: false,
            ..Default::default()
        })
        .await
        .unwrap();
        let mut echo = demo.desktop.subscribe();
        let options = RdpOptions {
            creds: demo.rdp.clone(),
            screens: (width, height).into(),
            frame_timeout: Duration::from_secs(30),
            share: None,
        };
        let mut answers = Scripted {
            otp: None,
            host_password: Some(demo.host_password.clone()),
        };
        let (mut session, _) = native::connect_and_wait_frame(
            &demo.relay,
            &demo.id,
            &options,
            &MemoryPins::default(),
            &mut answers,
        )
        .await
        .unwrap();

        // Three more whole screens, and the picture has moved.
        let screen = u64::from(width) * u64::from(height);
        let mut area = 0;
        while area < 3 * screen {
            let events = tokio::time::timeout(Duration::from_secs(10), session.next_events())
                .await
                .expect("the desktop keeps repainting")
                .unwrap();
            for event in events {
                if let SessionEvent::Updated(l, t, r, b) = event {
                    area += u64::from(r - l + 1) * u64::from(b - t + 1);
                }
            }
        }
        let at = |x: u16, y: u16| {
            let i = (usize::from(y) * usize::from(width) + usize::from(x)) * 4;
            [
                session.image()[i],
                session.image()[i + 1],
                session.image()[i + 2],
            ]
        };
        let (x, y) = (100, 50);
        let moved = (1..=4).any(|k| at(x, y) == picture_pixel(x + 16 * k, y));
        assert!(moved, "{:?} is not the picture moved on", at(x, y));

        // The client keeps reading frames while the click travels: the
        // desktop only reads input between frames it could write.
        session.click(30, 40).await.unwrap();
        let heard = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                tokio::select! {
                    input = echo.recv() => {
                        if input.unwrap().to_string() == "click left 30,40" {
                            return;
                        }
                    }
                    events = session.next_events() => { events.unwrap(); }
                }
            }
        })
        .await;
        assert!(
            heard.is_ok(),
            "the click did not reach the desktop in motion"
        );
        session.disconnect().await.unwrap();
    });
}

#[test]
fn a_shared_folder_reaches_the_remote_pc_only_when_its_host_allows_it() {
    let relay = RelayProc::start(&[]);
    // The desktop would play a tone to a client that takes sound.
    let (mut desktop, desktop_addr) = test_desktop_with(USER, PASSWORD, &["--tone", "440"]);
    let work = tempfile::tempdir().unwrap();
    let mut host = HostProc::start(work.path(), &relay, "share-pc", &desktop_addr);
    host.policy(&["--audio", "off"]);
    let folder = work.path().join("home-files");
    std::fs::create_dir_all(folder.join("reports")).unwrap();
    std::fs::write(folder.join("hello-from-home.txt"), "こんにちは").unwrap();
    let ca = relay.ca();
    let shot = work.path().join("shot.png");
    let share = ["--share", folder.to_str().unwrap(), "--hold", "3"];
    let connect = || {
        thin_client_connect(
            &relay.addr,
            &ca,
            "share-pc",
            (USER, PASSWORD),
            &shot,
            &share,
        )
    };

    // Sharing is off by default on the host: the session runs without it.
    let (code, out) = connect();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("does not allow sharing a folder"), "{out}");
    std::thread::sleep(Duration::from_millis(500));
    desktop.wait_for("thin-test-desktop listening", Duration::from_secs(1));
    assert!(
        !desktop.seen.iter().any(|l| l.contains("drive announced")),
        "a drive was shared against the host's policy"
    );

    // A client that ignores the policy asks for the drive and sound
    // channels anyway: the host takes them out of the connection request,
    // so the remote PC never hears of the drive and plays no sound.
    let (player, waves) = CountingPlayer::player();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (channel, admission, mut answers) = open_admitted(&relay, "share-pc").await;
        assert!(!admission.share_allowed);
        let share = native::share_folder(&folder).unwrap();
        let channels = client_core::rdp::Channels {
            clipboard: admission.clipboard_allowed,
            share: Some(share),
            sound: Some(client_core::sound::Speaker::new(player, Default::default())),
        };
        let session = client_core::rdp::connect(
            channel,
            &test_creds(),
            &(1024, 768).into(),
            channels,
            &mut answers,
        )
        .await
        .expect("the session runs, without the drive");
        // Time for a drive announcement, were the channel there.
        picture_then_leave(session).await;
    });
    std::thread::sleep(Duration::from_millis(500));
    desktop.wait_for("thin-test-desktop listening", Duration::from_secs(1));
    assert!(
        !desktop.seen.iter().any(|l| l.contains("drive announced")),
        "a client that ignored the policy shared a drive"
    );
    assert!(
        !desktop.seen.iter().any(|l| l.contains("tone sent")),
        "a client that ignored the policy got sound"
    );
    assert_eq!(waves.load(std::sync::atomic::Ordering::Relaxed), 0);
    host.proc
        .wait_for("channels this PC's policy forbids", Duration::from_secs(5));

    // The owner allows it: the folder shows on the remote PC with its files.
    host.policy(&["--share", "on"]);
    let (code, out) = connect();
    assert_eq!(code, 0, "{out}");
    desktop.wait_for("drive announced: thin", Duration::from_secs(10));
    desktop.wait_for("drive file: hello-from-home.txt", Duration::from_secs(10));
    desktop.wait_for("drive file: reports", Duration::from_secs(10));

    // Sharing on and the clipboard off: the drive still works (the client
    // asks only for the channels the host allows, so the RDP server's
    // channel IDs go to the right channels).
    host.policy(&["--clipboard", "off"]);
    let listed = |desktop: &Proc| {
        desktop
            .seen
            .iter()
            .filter(|l| l.contains("drive file: reports"))
            .count()
    };
    let before = listed(&desktop);
    let (code, out) = connect();
    assert_eq!(code, 0, "{out}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while listed(&desktop) == before {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        desktop.next_line(left);
    }
}

/// A picture copied at home (a screenshot, say) reaches the office PC's
/// clipboard and one copied there comes home, pixel for pixel (as opaque
/// pixels: the clipboard's DIB has no transparency), through relay and
/// host. A picture over the limit is refused with a plain message and
/// nothing is sent.
#[test]
fn clipboard_pictures_cross_both_ways_through_relay_and_host() {
    let work = tempfile::tempdir().unwrap();
    let picture = |width: u32, height: u32, seed: u32| {
        let rgba: Vec<u8> = (0..width * height)
            .flat_map(|i| {
                let v = i.wrapping_mul(2_654_435_761).wrapping_add(seed);
                [v as u8, (v >> 8) as u8, (v >> 16) as u8, 255]
            })
            .collect();
        proto::clipboard::png_from_rgba(width, height, &rgba).unwrap()
    };
    let office_png = picture(120, 80, 7);
    let home_png = picture(333, 101, 1);
    let office_file = work.path().join("office.png");
    let home_file = work.path().join("home.png");
    std::fs::write(&office_file, &office_png).unwrap();
    std::fs::write(&home_file, &home_png).unwrap();
    let relay = RelayProc::start(&[]);
    let (mut desktop, desktop_addr) = test_desktop_with(
        USER,
        PASSWORD,
        &["--clipboard-image", office_file.to_str().unwrap()],
    );
    let _host = HostProc::start(work.path(), &relay, "picture-pc", &desktop_addr);
    let shot = work.path().join("shot.png");
    let connect = |file: &std::path::Path| {
        let extra = ["--copy-image", file.to_str().unwrap(), "--hold", "2"];
        thin_client_connect(
            &relay.addr,
            &relay.ca(),
            "picture-pc",
            (USER, PASSWORD),
            &shot,
            &extra,
        )
    };
    let (code, out) = connect(&home_file);
    assert_eq!(code, 0, "{out}");
    let office = proto::clipboard::describe_image(&office_png);
    assert!(
        out.contains(&format!("remote_clipboard_image={office}")),
        "{out}"
    );
    let home = proto::clipboard::describe_image(&home_png);
    desktop.wait_for(
        &format!("input: clipboard image {home}"),
        Duration::from_secs(10),
    );

    // 4000×3000 is 48 MB of pixels: over the 40 MB limit.
    let huge_file = work.path().join("huge.png");
    let mut huge = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut huge, 4000, 3000);
        encoder.set_color(png::ColorType::Grayscale);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&vec![0; 4000 * 3000]).unwrap();
    }
    std::fs::write(&huge_file, &huge).unwrap();
    let (code, out) = connect(&huge_file);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("the copied picture is too large"), "{out}");
}

/// Files copied at home are pasted at the office PC: its Explorer (the
/// test desktop) fetches them in ranges through relay and host and gets
/// them byte for byte, a 3 MB one, an empty one and one with a Japanese
/// name; a folder, and a name Windows cannot take, are refused before
/// anything is offered.
#[test]
fn clipboard_files_cross_from_home_to_the_office_through_relay_and_host() {
    let work = tempfile::tempdir().unwrap();
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let big_file = work.path().join("big.bin");
    let small_file = work.path().join("見積書.txt");
    std::fs::write(&big_file, &big).unwrap();
    std::fs::write(&small_file, "御見積 ✓\n").unwrap();
    let empty_file = work.path().join("empty.txt");
    std::fs::write(&empty_file, "").unwrap();
    let relay = RelayProc::start(&[]);
    let (mut desktop, desktop_addr) = test_desktop(USER, PASSWORD);
    let _host = HostProc::start(work.path(), &relay, "files-pc", &desktop_addr);
    let shot = work.path().join("shot.png");
    let connect = |extra: &[&str]| {
        thin_client_connect(
            &relay.addr,
            &relay.ca(),
            "files-pc",
            (USER, PASSWORD),
            &shot,
            extra,
        )
    };
    let (code, out) = connect(&[
        "--copy-file",
        big_file.to_str().unwrap(),
        "--copy-file",
        empty_file.to_str().unwrap(),
        "--copy-file",
        small_file.to_str().unwrap(),
        "--hold",
        "6",
    ]);
    assert_eq!(code, 0, "{out}");
    let limit = Duration::from_secs(10);
    let big_digest = proto::clipboard::digest(&big);
    desktop.wait_for(
        &format!("input: clipboard file \"big.bin\" 3000000 bytes sha256={big_digest}"),
        limit,
    );
    let small_digest = proto::clipboard::digest("御見積 ✓\n".as_bytes());
    desktop.wait_for(
        &format!("input: clipboard file \"見積書.txt\" 14 bytes sha256={small_digest}"),
        limit,
    );

    let empty_digest = proto::clipboard::digest(&[]);
    desktop.wait_for(
        &format!("input: clipboard file \"empty.txt\" 0 bytes sha256={empty_digest}"),
        limit,
    );

    let (code, out) = connect(&["--copy-file", work.path().to_str().unwrap()]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("is not a file"), "{out}");
    let colon = work.path().join("a:b.txt");
    std::fs::write(&colon, "x").unwrap();
    let (code, out) = connect(&["--copy-file", colon.to_str().unwrap()]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("which Windows does not allow"), "{out}");
}

/// Files copied in the office PC's Explorer (the test desktop) come home
/// through host and relay, pasted into a folder: a 3 MB one in ranges, an
/// empty one and one with a Japanese name, byte for byte; a file of that
/// name already at home is kept and the new one gets a number; nothing
/// half-fetched is left behind.
#[test]
fn clipboard_files_cross_from_the_office_to_home_through_relay_and_host() {
    let work = tempfile::tempdir().unwrap();
    let office = work.path().join("office");
    std::fs::create_dir(&office).unwrap();
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_246_822_519) >> 11) as u8)
        .collect();
    let files = [
        ("report.bin", big.clone()),
        ("empty.txt", Vec::new()),
        ("議事録.txt", "会議の記録 ✓\n".as_bytes().to_vec()),
    ];
    let mut args = Vec::new();
    for (name, bytes) in &files {
        let path = office.join(name);
        std::fs::write(&path, bytes).unwrap();
        args.push("--clipboard-file".to_owned());
        args.push(path.to_str().unwrap().to_owned());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let relay = RelayProc::start(&[]);
    let (_desktop, desktop_addr) = test_desktop_with(USER, PASSWORD, &args);
    let _host = HostProc::start(work.path(), &relay, "office-files", &desktop_addr);
    let home = work.path().join("home");
    std::fs::create_dir(&home).unwrap();
    std::fs::write(home.join("empty.txt"), "mine").unwrap();
    let shot = work.path().join("shot.png");
    let (code, out) = thin_client_connect(
        &relay.addr,
        &relay.ca(),
        "office-files",
        (USER, PASSWORD),
        &shot,
        &["--paste-files", home.to_str().unwrap(), "--hold", "5"],
    );
    assert_eq!(code, 0, "{out}");
    let expected = [
        ("report.bin", &files[0].1),
        ("empty (2).txt", &files[1].1),
        ("議事録.txt", &files[2].1),
    ];
    for (name, bytes) in expected {
        let line = format!(
            "remote_clipboard_file={name:?} {} bytes sha256={}",
            bytes.len(),
            proto::clipboard::digest(bytes)
        );
        assert!(out.contains(&line), "no {line} in\n{out}");
        assert!(std::fs::read(home.join(name)).unwrap() == *bytes, "{name}");
    }
    assert!(!out.contains("remote_clipboard_file_failed"), "{out}");
    assert_eq!(std::fs::read(home.join("empty.txt")).unwrap(), b"mine");
    assert_eq!(
        std::fs::read_dir(&home).unwrap().count(),
        4,
        "no .part left"
    );
}

/// Text copied at home reaches the office PC's clipboard and the office
/// PC's comes home, through relay and host; with the clipboard forbidden by
/// the host's policy, nothing crosses either way although the client asks
/// for the channel as always.
#[test]
fn clipboard_text_crosses_both_ways_unless_the_host_forbids_it() {
    const OFFICE: &str = "会社のクリップボード ✓ office";
    const HOME: &str = "家の文字 ✓ home";
    let relay = RelayProc::start(&[]);
    let (mut desktop, desktop_addr) = test_desktop_with(USER, PASSWORD, &["--clipboard", OFFICE]);
    let work = tempfile::tempdir().unwrap();
    let host = HostProc::start(work.path(), &relay, "clip-pc", &desktop_addr);
    let ca = relay.ca();
    let shot = work.path().join("shot.png");
    let connect = |copy: &str| {
        let extra = ["--copy-text", copy, "--hold", "2", "--stats"];
        thin_client_connect(&relay.addr, &ca, "clip-pc", (USER, PASSWORD), &shot, &extra)
    };

    let (code, out) = connect(HOME);
    assert_eq!(code, 0, "{out}");
    // The traffic each second of the hold, and its totals: the picture came
    // in, the clipboard went out.
    assert!(out.lines().any(|l| l.starts_with("stats: in=")), "{out}");
    let total = |name: &str| -> u64 {
        out.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {out}"))
    };
    assert!(total("received_bytes") > 100_000, "{out}");
    assert!(total("sent_bytes") > 100, "{out}");
    assert!(
        out.contains(&format!("remote_clipboard=\"{OFFICE}\"")),
        "{out}"
    );
    desktop.wait_for(
        &format!("input: clipboard \"{HOME}\""),
        Duration::from_secs(10),
    );

    host.policy(&["--clipboard", "off"]);
    let (code, out) = connect("forbidden text");
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("remote_clipboard="), "{out}");
    std::thread::sleep(Duration::from_millis(500));
    desktop.wait_for("thin-test-desktop listening", Duration::from_secs(1));
    assert!(
        !desktop.seen.iter().any(|l| l.contains("forbidden text")),
        "clipboard text crossed against the host's policy"
    );
}

/// The remote desktop follows the window: a Display Control resize
/// through relay and host reaches the test desktop, which runs the
/// capability exchange again at the new size, and the next frames have it.
/// An odd width is made even (MS-RDPEDISP) and the desktop rounds it to its
/// bitmap rows' multiple of 4, as a server may. The desktop's pointer shape
/// (an I-beam) arrives too, pixel for pixel with its transparency.
#[test]
fn the_remote_desktop_follows_a_resize_and_its_pointer_arrives_through_relay_and_host() {
    let relay = RelayProc::start(&[]);
    let (mut desktop, desktop_addr) = test_desktop(USER, PASSWORD);
    let work = tempfile::tempdir().unwrap();
    let _host = HostProc::start(work.path(), &relay, "wide-pc", &desktop_addr);
    let shot = work.path().join("shot.png");
    let pointer = work.path().join("pointer.png");
    let (code, out) = thin_client_connect(
        &relay.addr,
        &relay.ca(),
        "wide-pc",
        (USER, PASSWORD),
        &shot,
        &[
            "--resize",
            "1367x700",
            "--pointer-out",
            pointer.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("resized=1364x700"), "{out}");
    let (pw, ph) = test_desktop::POINTER_SIZE;
    let (hx, hy) = test_desktop::POINTER_HOTSPOT;
    assert!(
        out.contains(&format!("pointer={pw}x{ph} hotspot={hx},{hy}")),
        "{out}"
    );
    let mut reader = png::Decoder::new(std::fs::File::open(&pointer).unwrap())
        .read_info()
        .unwrap();
    let mut rgba = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut rgba).unwrap();
    assert_eq!(
        (info.width, info.height, info.color_type),
        (32, 32, png::ColorType::Rgba)
    );
    for y in 0..ph {
        for x in 0..pw {
            let i = (usize::from(y) * usize::from(pw) + usize::from(x)) * 4;
            assert_eq!(
                rgba[i..i + 4],
                test_desktop::pointer_pixel(x, y),
                "pointer pixel {x},{y}"
            );
        }
    }
    desktop.wait_for("input: resized to 1364x700", Duration::from_secs(5));
    let (w, h, rgb) = read_png(&shot);
    assert_eq!((w, h), (1364, 700));
    // The whole new area is painted, the parts beyond the old size too.
    for (x, y) in [
        (0, 0),
        (1363, 699),
        (1100, 100),
        (100, 699),
        (1023, 699),
        (1363, 0),
    ] {
        let i = ((y * w + x) * 3) as usize;
        assert_eq!(
            &rgb[i..i + 3],
            &picture_pixel(x as u16, y as u16),
            "pixel {x},{y}"
        );
    }
}

/// A person with two monitors at home gets two remote screens: the
/// monitor layout goes in the connection through relay and host (the host
/// rewrites the Connect Initial to enforce its policy and must keep it),
/// the test desktop runs over both and the picture covers both. Later a
/// Display Control layout (full screen over every monitor, after starting
/// in a window) does the same.
#[test]
fn two_monitors_at_home_make_two_remote_screens_through_relay_and_host() {
    let relay = RelayProc::start(&[]);
    let (mut desktop, desktop_addr) = test_desktop(USER, PASSWORD);
    let work = tempfile::tempdir().unwrap();
    let _host = HostProc::start(work.path(), &relay, "two-screens", &desktop_addr);
    let shot = work.path().join("shot.png");
    let connect = |extra: &[&str]| {
        thin_client_connect(
            &relay.addr,
            &relay.ca(),
            "two-screens",
            (USER, PASSWORD),
            &shot,
            extra,
        )
    };
    let (code, out) = connect(&["--monitors", "1280x800+0+0,1024x768+1280+32"]);
    assert_eq!(code, 0, "{out}");
    desktop.wait_for(
        "input: 2 monitors at logon: 1280x800+0+0 1024x768+1280+32",
        Duration::from_secs(5),
    );
    desktop.wait_for("input: resized to 2304x800", Duration::from_secs(5));
    let (w, h, rgb) = read_png(&shot);
    assert_eq!((w, h), (2304, 800));
    // Painted across both monitors, the second's far corner too.
    for (x, y) in [(0, 0), (1279, 799), (1280, 32), (2303, 799), (2000, 400)] {
        let i = ((y * w + x) * 3) as usize;
        assert_eq!(
            &rgb[i..i + 3],
            &picture_pixel(x as u16, y as u16),
            "pixel {x},{y}"
        );
    }

    let (code, out) = connect(&["--resize", "800x600+0+0,800x600+0+600"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("resized=800x1200"), "{out}");
    desktop.wait_for(
        "input: 2 monitors over display control: 800x600+0+0 800x600+0+600",
        Duration::from_secs(5),
    );
    assert_eq!(read_png(&shot).0, 800);

    // A layout RDP cannot carry is refused before anything is sent.
    let (code, out) = connect(&["--monitors", "1920x1080+0+0,1920x1080+100+0"]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("overlap"), "{out}");
}

/// A sound player that only counts the wave blocks it is given.
#[derive(Debug)]
struct CountingPlayer {
    waves: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    formats: Vec<ironrdp_rdpsnd::pdu::AudioFormat>,
}

impl CountingPlayer {
    fn player() -> (
        client_core::sound::Player,
        std::sync::Arc<std::sync::atomic::AtomicUsize>,
    ) {
        let waves = std::sync::Arc::default();
        let player = Self {
            waves: std::sync::Arc::clone(&waves),
            formats: vec![ironrdp_rdpsnd::codec::ima_adpcm_format(2, 22_050, 1024)],
        };
        (Box::new(player), waves)
    }
}

impl ironrdp_rdpsnd::client::RdpsndClientHandler for CountingPlayer {
    fn get_formats(&self) -> &[ironrdp_rdpsnd::pdu::AudioFormat] {
        &self.formats
    }

    fn wave(
        &mut self,
        _format: &ironrdp_rdpsnd::pdu::AudioFormat,
        _ts: u32,
        _data: std::borrow::Cow<'_, [u8]>,
    ) {
        self.waves
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    fn set_volume(&mut self, _volume: ironrdp_rdpsnd::pdu::VolumePdu) {}

    fn set_pitch(&mut self, _pitch: ironrdp_rdpsnd::pdu::PitchPdu) {}

    fn close(&mut self) {}
}

/// The office PC's sound reaches home through relay and host: the test
/// desktop plays a 440 Hz tone (IMA ADPCM, as Windows prefers a compressed
/// format), the client decodes it, and what arrives is that tone — its
/// pitch from the zero crossings, its loudness from the RMS. With the
/// host's `--audio off`, no sound channel is opened whatever the client
/// asks.
#[test]
fn the_office_pc_s_sound_arrives_unless_the_host_forbids_it() {
    let relay = RelayProc::start(&[]);
    let (mut desktop, desktop_addr) = test_desktop_with(USER, PASSWORD, &["--tone", "440"]);
    let work = tempfile::tempdir().unwrap();
    let mut host = HostProc::start(work.path(), &relay, "sound-pc", &desktop_addr);
    let shot = work.path().join("shot.png");
    let wav = work.path().join("sound.wav");
    let connect = || {
        let extra = ["--sound-out", wav.to_str().unwrap(), "--hold", "2"];
        thin_client_connect(
            &relay.addr,
            &relay.ca(),
            "sound-pc",
            (USER, PASSWORD),
            &shot,
            &extra,
        )
    };

    let (code, out) = connect();
    assert_eq!(code, 0, "{out}");
    desktop.wait_for(
        "input: tone sent as IMA ADPCM 22050 Hz 2 ch",
        Duration::from_secs(5),
    );
    // A client that takes sound over the dynamic channel the desktop
    // offers too (as Windows does) gets it while the host allows sound.
    assert!(connect_taking_dynamic_sound(&relay, "sound-pc"));
    desktop.wait_for(
        "input: dynamic channel opened: AUDIO_PLAYBACK_DVC",
        Duration::from_secs(5),
    );
    let mut reader = hound::WavReader::open(&wav).unwrap();
    let spec = reader.spec();
    assert_eq!((spec.channels, spec.sample_rate), (2, 22_050));
    let left: Vec<f64> = reader
        .samples::<i16>()
        .step_by(2)
        .map(|s| f64::from(s.unwrap()))
        .collect();
    // One second, give or take a block.
    assert!(
        (21_000..=25_000).contains(&left.len()),
        "{} frames",
        left.len()
    );
    let crossings = left
        .windows(2)
        .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
        .count();
    let hz = crossings as f64 / 2.0 / (left.len() as f64 / 22_050.0);
    assert!(
        (430.0..=450.0).contains(&hz),
        "the tone came out at {hz:.1} Hz"
    );
    let rms = (left.iter().map(|s| s * s).sum::<f64>() / left.len() as f64).sqrt();
    // A sine at half scale: 16384 / √2 ≈ 11585 (ADPCM is lossy).
    assert!((10_000.0..=13_000.0).contains(&rms), "loudness {rms:.0}");

    host.policy(&["--audio", "off"]);
    std::fs::remove_file(&wav).unwrap();
    let (code, out) = connect();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("sound_frames=0"), "{out}");
    assert!(!wav.exists());

    // Forbidden, the host answers the server's offer itself: the client
    // that would take it never hears of it, and its session runs on.
    let opened = |desktop: &Proc| {
        desktop
            .seen
            .iter()
            .filter(|l| l.contains("dynamic channel opened"))
            .count()
    };
    let before = opened(&desktop);
    assert!(!connect_taking_dynamic_sound(&relay, "sound-pc"));
    let refused = host
        .proc
        .wait_for("policy forbids; refused", Duration::from_secs(5));
    assert!(refused.contains("AUDIO_PLAYBACK_DVC"), "{refused}");
    std::thread::sleep(Duration::from_millis(500));
    desktop.wait_for("thin-test-desktop listening", Duration::from_secs(1));
    assert_eq!(
        opened(&desktop),
        before,
        "sound went over a dynamic channel against the policy"
    );
}

/// A client that ignores the host's policy on sound: it takes the sound
/// channel the RDP server offers over `drdynvc` whatever the host allowed.
/// Connects to `id`, waits for the first picture and two more seconds;
/// true if the channel opened.
fn connect_taking_dynamic_sound(relay: &RelayProc, id: &str) -> bool {
    let opened = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let taker = {
        let opened = std::sync::Arc::clone(&opened);
        test_desktop::ChannelProbe::new(proto::channels::DYNAMIC_SOUND[0], move || {
            opened.store(true, std::sync::atomic::Ordering::Relaxed)
        })
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (channel, _, mut answers) = open_admitted(relay, id).await;
        let (mut connector, x224) =
            client_core::rdp::begin(&test_creds(), &(1024, 768).into(), Default::default())
                .unwrap();
        connector
            .attach_static_channel(ironrdp_dvc::DrdynvcClient::new().with_dynamic_channel(taker));
        let session = client_core::rdp::connect_begun(channel, (connector, x224), &mut answers)
            .await
            .expect("the session runs");
        picture_then_leave(session).await;
    });
    opened.load(std::sync::atomic::Ordering::Relaxed)
}

fn test_creds() -> RdpCredentials {
    RdpCredentials {
        user: USER.into(),
        password: PASSWORD.into(),
        domain: None,
    }
}

/// Waits for the session's first picture, takes what comes for two more
/// seconds (time for the office PC to offer its channels), and leaves.
async fn picture_then_leave<S>(mut session: client_core::RdpSession<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + Sync,
{
    native::wait_first_frame(&mut session, Duration::from_secs(30))
        .await
        .unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            session.next_events().await.unwrap();
        }
    })
    .await;
    session.disconnect().await.unwrap();
}

/// Answers like [`Scripted`], but takes `pause` over a new host key, as a
/// person comparing fingerprints does.
struct SlowToTrust {
    pause: Duration,
    answers: Scripted,
}

impl client_core::Interaction for SlowToTrust {
    fn ask(
        &mut self,
        prompt: client_core::Prompt,
    ) -> client_core::interaction::BoxFuture<'_, client_core::Answer> {
        if let client_core::Prompt::NewHostKey { .. } = prompt {
            let pause = self.pause;
            return Box::pin(async move {
                tokio::time::sleep(pause).await;
                client_core::Answer::Accept
            });
        }
        self.answers.ask(prompt)
    }
}

/// The app asks its user to compare a new host key's fingerprint with what
/// the office PC shows: two minutes of that must not lose the connection
/// (the host waits up to five for the handshake's last message).
#[test]
fn a_person_who_takes_two_minutes_over_the_host_key_still_connects() {
    let relay = RelayProc::start(&[]);
    let (_desktop, desktop_addr) = test_desktop(USER, PASSWORD);
    let work = tempfile::tempdir().unwrap();
    let _host = HostProc::start(work.path(), &relay, "careful-pc", &desktop_addr);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let target = RelayTarget {
            addr: relay.addr.clone(),
            ca: relay.ca(),
            proxy: None,
        };
        let rdp = RdpOptions {
            creds: RdpCredentials {
                user: USER.into(),
                password: PASSWORD.into(),
                domain: None,
            },
            screens: (1024, 768).into(),
            frame_timeout: Duration::from_secs(30),
            share: None,
        };
        let mut person = SlowToTrust {
            pause: Duration::from_secs(120),
            answers: Scripted {
                otp: None,
                host_password: Some(HOST_PASSWORD.into()),
            },
        };
        let (mut session, _) = native::connect_and_wait_frame(
            &target,
            "careful-pc",
            &rdp,
            &MemoryPins::default(),
            &mut person,
        )
        .await
        .expect("connects after two minutes at the host-key prompt");
        session.disconnect().await.unwrap();
    });
}
