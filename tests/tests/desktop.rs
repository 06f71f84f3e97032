//! thin-desktop in a real window on its own X server: `--demo` starts relay,
//! host and test desktop inside the app; the test types the demo's codes with
//! xdotool like a person would, and the screenshot must show the test
//! desktop's picture. Screenshots are kept in target/screenshots/.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

const PROGRAMS: &[&str] = &["Xvfb", "xdotool", "import", "xclip"];
const PACKAGES: &str = "xvfb xdotool xclip imagemagick libgl1-mesa-dri libegl1 libxkbcommon-x11-0 \
                        libxcursor1 libxrandr2 libxi6";

fn xdotool(display: &str, args: &[&str]) {
    let status = Command::new("xdotool")
        .args(args)
        .env("DISPLAY", display)
        .status()
        .unwrap();
    assert!(status.success(), "xdotool {args:?} failed");
}

/// The value after `key=` in the demo's code line.
fn code(line: &str, key: &str) -> String {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {line:?}"))
        .to_owned()
}

fn screenshot(display: &str, path: &Path) {
    let status = Command::new("import")
        .args(["-window", "root"])
        .arg(path)
        .env("DISPLAY", display)
        .status()
        .unwrap();
    assert!(status.success());
}

/// Answers the demo's questions as a person would: trusts the host key,
/// types the one-time password (then calls `at_otp`), the host password
/// and the Windows password, and waits for the session. The mouse waits at
/// `corner`, outside the window (the remote pointer is drawn where it
/// hovers over the picture).
fn log_on(app: &mut Proc, display: &str, corner: (u32, u32), at_otp: &dyn Fn()) {
    let codes = app.wait_for("demo: otp=", Duration::from_secs(60));
    let limit = Duration::from_secs(30);
    app.wait_for("prompt=NewHostKey", limit);
    xdotool(
        display,
        &[
            "search",
            "--sync",
            "--name",
            "thin",
            "windowfocus",
            "--sync",
        ],
    );
    let (cx, cy) = (corner.0.to_string(), corner.1.to_string());
    xdotool(display, &["mousemove", &cx, &cy]);
    // The first connection shows the host key; Enter trusts it.
    xdotool(display, &["key", "Return"]);
    for (prompt, answer) in [
        ("prompt=Otp", code(&codes, "otp")),
        ("prompt=HostPassword", code(&codes, "host_password")),
        ("prompt=RemoteLogon", code(&codes, "windows_password")),
    ] {
        app.wait_for(prompt, limit);
        std::thread::sleep(Duration::from_millis(300));
        if prompt == "prompt=Otp" {
            at_otp();
        }
        xdotool(display, &["type", "--delay", "20", &answer]);
        xdotool(display, &["key", "Return"]);
    }
    app.wait_for("session connected", limit);
}

/// Text on the demo office PC's clipboard, and text copied at home.
const OFFICE_TEXT: &str = "会社のPCでコピー ✓ office";
const HOME_TEXT: &str = "家でコピー ✓ home";

fn run_demo(lang: &str) -> PathBuf {
    let x = Xvfb::sized(1400, 950);
    let home = tempfile::tempdir().unwrap();
    let mut app = Proc::start_cmd(
        "thin-desktop",
        Command::new(bin("thin-desktop"))
            .args(["--demo", "--lang", lang, "--demo-clipboard", OFFICE_TEXT])
            .env("DISPLAY", &x.display)
            .env("LIBGL_ALWAYS_SOFTWARE", "1")
            .env("HOME", home.path())
            .env("THIN_CONFIG_DIR", home.path().join("config")),
    );
    let dir = target_dir().join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let screenshot = |path: &Path| self::screenshot(&x.display, path);
    let limit = Duration::from_secs(30);
    log_on(&mut app, &x.display, (1399, 949), &|| {
        // The connecting steps and the OTP question, for people to look at.
        screenshot(&dir.join(format!("desktop-{lang}-prompt.png")));
    });

    let shot = dir.join(format!("desktop-{lang}.png"));
    // The picture arrives in tiles: try a few times for a complete frame.
    let shown = (0..20).any(|_| {
        std::thread::sleep(Duration::from_millis(500));
        screenshot(&shot);
        find_picture(&shot).is_some()
    });
    assert!(
        shown,
        "the test desktop's picture never appeared in {}",
        shot.display()
    );

    // The office PC's clipboard came home to the real X clipboard as the
    // session began; text copied here goes there with Ctrl+V.
    let clipboard = || xclip_out(&x.display, None);
    let arrived = (0..40).any(|_| {
        std::thread::sleep(Duration::from_millis(250));
        clipboard() == OFFICE_TEXT
    });
    assert!(arrived, "the X clipboard has {:?}", clipboard());
    xclip_in(&x.display, None, HOME_TEXT.as_bytes());
    xdotool(&x.display, &["key", "ctrl+v"]);
    app.wait_for(&format!("demo desktop: clipboard {HOME_TEXT:?}"), limit);

    // A picture on the X clipboard (as a screenshot tool puts it there)
    // goes with Ctrl+V too, pixel for pixel.
    let rgba: Vec<u8> = (0..90u32 * 60)
        .flat_map(|i| [(i * 7) as u8, (i / 90 * 4) as u8, (i % 90 * 2) as u8, 255])
        .collect();
    let png = proto::clipboard::png_from_rgba(90, 60, &rgba).unwrap();
    let png_file = dir.join(format!("desktop-{lang}-copied.png"));
    std::fs::write(&png_file, &png).unwrap();
    xclip_in(&x.display, Some("image/png"), &png);
    xdotool(&x.display, &["key", "ctrl+v"]);
    let described = proto::clipboard::describe_image(&png);
    app.wait_for(&format!("demo desktop: clipboard image {described}"), limit);

    // The person makes the window larger: the remote desktop follows (the
    // test desktop paints its picture over the whole new size).
    xdotool(
        &x.display,
        &["search", "--name", "thin", "windowsize", "1390", "940"],
    );
    app.wait_for("desktop resized", limit);
    let grown = dir.join(format!("desktop-{lang}-larger.png"));
    let followed = (0..20).any(|_| {
        std::thread::sleep(Duration::from_millis(500));
        screenshot(&grown);
        picture_reaches(&grown, (1300, 800))
    });
    assert!(
        followed,
        "the remote desktop did not follow the larger window: {}",
        grown.display()
    );

    // Over the picture, the pointer is the office PC's (the test
    // desktop's I-beam), its hotspot where the mouse is.
    let (ox, oy) = find_picture(&grown).expect("the picture is there");
    let (mx, my) = (ox + 600, oy + 400);
    xdotool(&x.display, &["mousemove", &mx.to_string(), &my.to_string()]);
    let pointed = dir.join(format!("desktop-{lang}-pointer.png"));
    let (hx, hy) = test_desktop::POINTER_HOTSPOT;
    let expected = [(0, 0), (-3, 0), (-10, 0)].map(|(dx, dy): (i32, i32)| {
        let (px, py) = (i32::from(hx) + dx, i32::from(hy) + dy);
        let [r, g, b, a] = test_desktop::pointer_pixel(px as u16, py as u16);
        let at = ((mx as i32 + dx) as u32, (my as i32 + dy) as u32);
        // Transparent pointer pixels show the picture beneath.
        let beneath = test_desktop::picture_pixel((600 + dx) as u16, (400 + dy) as u16);
        (at, if a == 0 { beneath } else { [r, g, b] })
    });
    let drawn = (0..20).any(|_| {
        std::thread::sleep(Duration::from_millis(300));
        screenshot(&pointed);
        let (w, _, rgb) = read_png(&pointed);
        expected.iter().all(|&((x, y), colour)| {
            let i = ((y * w + x) * 3) as usize;
            rgb[i..i + 3] == colour
        })
    });
    assert!(
        drawn,
        "the office PC's pointer is not drawn: {}",
        pointed.display()
    );
    shot
}

/// Files copied in the office PC's Explorer come to the real X clipboard
/// as files (a `text/uri-list`, as a file manager pastes them), byte for
/// byte; files copied here in a file manager (only a `text/uri-list` on
/// the clipboard, no text: egui sees nothing to paste) go to the office
/// PC with Ctrl+V, where its Explorer fetches them whole.
#[test]
fn files_cross_both_ways_through_the_system_clipboard() {
    if !real_peer_programs(PROGRAMS, PACKAGES) {
        return;
    }
    let x = Xvfb::sized(1200, 900);
    let work = tempfile::tempdir().unwrap();
    let office = work.path().join("office");
    std::fs::create_dir(&office).unwrap();
    let big: Vec<u8> = (0..1_500_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
        .collect();
    let office_files = [
        ("report.bin", big),
        ("議事録 1.txt", "会議の記録 ✓\n".as_bytes().to_vec()),
    ];
    let mut args = vec!["--demo".to_owned(), "--lang".into(), "en".into()];
    for (name, bytes) in &office_files {
        let path = office.join(name);
        std::fs::write(&path, bytes).unwrap();
        args.push("--demo-clipboard-file".into());
        args.push(path.to_str().unwrap().into());
    }
    let home = work.path().join("home");
    let mut app = Proc::start_cmd(
        "thin-desktop",
        Command::new(bin("thin-desktop"))
            .args(&args)
            .env("DISPLAY", &x.display)
            .env("LIBGL_ALWAYS_SOFTWARE", "1")
            .env("HOME", &home)
            .env("TMPDIR", work.path())
            .env("THIN_CONFIG_DIR", home.join("config")),
    );
    log_on(&mut app, &x.display, (1199, 899), &|| {});

    // The office PC's files arrive on the X clipboard as files.
    let uri_list = || xclip_out(&x.display, Some("text/uri-list"));
    let mut listed = Vec::new();
    for _ in 0..60 {
        std::thread::sleep(Duration::from_millis(250));
        listed = uri_list()
            .lines()
            .filter_map(|line| line.trim().strip_prefix("file://").map(percent_decoded))
            .collect::<Vec<PathBuf>>();
        if listed.len() == office_files.len() {
            break;
        }
    }
    assert_eq!(listed.len(), office_files.len(), "uri-list: {}", uri_list());
    for ((name, bytes), path) in office_files.iter().zip(&listed) {
        assert_eq!(path.file_name().unwrap().to_str().unwrap(), *name);
        assert!(std::fs::read(path).unwrap() == *bytes, "{}", path.display());
    }
    app.wait_for("remote files fetched saved=2", Duration::from_secs(10));
    // The session bar says where they are, for people to look at.
    let dir = target_dir().join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    screenshot(&x.display, &dir.join("desktop-files-came.png"));

    // Files copied here go to the office PC with Ctrl+V.
    std::fs::create_dir_all(&home).unwrap();
    let mine = home.join("見積書.txt");
    std::fs::write(&mine, "御見積 ✓\n").unwrap();
    let uri = format!("file://{}", mine.display());
    xclip_in(&x.display, Some("text/uri-list"), uri.as_bytes());
    xdotool(&x.display, &["key", "ctrl+v"]);
    let digest = proto::clipboard::digest("御見積 ✓\n".as_bytes());
    app.wait_for(
        &format!("demo desktop: clipboard file \"見積書.txt\" 14 bytes sha256={digest}"),
        Duration::from_secs(20),
    );
}

/// What the X clipboard holds (as `target`, else as text).
fn xclip_out(display: &str, target: Option<&str>) -> String {
    let out = Command::new("xclip")
        .args(["-o", "-selection", "clipboard"])
        .args(target.iter().flat_map(|t| ["-t", t]))
        .env("DISPLAY", display)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Puts `bytes` on the X clipboard (as `target`, else as text), as a
/// program there copies them; xclip stays in the background to serve them.
fn xclip_in(display: &str, target: Option<&str>, bytes: &[u8]) {
    use std::io::Write as _;
    let mut copy = Command::new("xclip")
        .args(["-i", "-selection", "clipboard"])
        .args(target.iter().flat_map(|t| ["-t", t]))
        .env("DISPLAY", display)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    copy.stdin.take().unwrap().write_all(bytes).unwrap();
    assert!(copy.wait().unwrap().success(), "xclip -i failed");
}

/// `%XX` escapes of a `file://` URI's path undone.
fn percent_decoded(path: &str) -> PathBuf {
    let bytes = path.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(byte) if bytes[i] == b'%' => {
                out.push(byte);
                i += 3;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    PathBuf::from(String::from_utf8(out).unwrap())
}

#[test]
fn the_demo_reaches_the_session_in_a_real_window_in_japanese_and_english() {
    if !real_peer_programs(PROGRAMS, PACKAGES) {
        return;
    }
    for lang in ["ja", "en"] {
        let shot = run_demo(lang);
        eprintln!("screenshot: {}", shot.display());
    }
}

/// A person with two monitors at home and "use all my monitors" on: the
/// app reads the monitors from the X server (RandR; TigerVNC's Xvnc takes
/// a monitor layout where Xvfb keeps one), puts their layout in the
/// connection, and the window covers both without decorations under a
/// real window manager (openbox); the remote desktop (the demo's test
/// desktop) runs over both and its picture fills both monitors pixel for
/// pixel. The shortcut brings the window back and the remote desktop
/// follows it again.
#[test]
fn with_all_monitors_the_session_covers_both_monitors() {
    if !real_peer_programs(
        &["Xvnc", "xrandr", "xdotool", "import", "openbox"],
        "tigervnc-standalone-server x11-xserver-utils xdotool imagemagick openbox",
    ) {
        return;
    }
    let x = Xvnc::with_monitors(&[("LEFT", 1280, 900, 0, 0), ("RIGHT", 1120, 768, 1280, 0)]);
    // A real window manager, which decides where windows may go.
    let _wm = Proc::start_cmd(
        "openbox",
        Command::new("openbox").env("DISPLAY", &x.display),
    );
    let home = tempfile::tempdir().unwrap();
    let mut app = Proc::start_cmd(
        "thin-desktop",
        Command::new(bin("thin-desktop"))
            .args(["--demo", "--lang", "en", "--multimon"])
            .env("DISPLAY", &x.display)
            .env_remove("WAYLAND_DISPLAY")
            .env("LIBGL_ALWAYS_SOFTWARE", "1")
            .env("HOME", home.path())
            .env("THIN_CONFIG_DIR", home.path().join("config")),
    );
    // The mouse waits where no monitor is (below the right one).
    log_on(&mut app, &x.display, (2399, 899), &|| {});
    let limit = Duration::from_secs(30);
    app.wait_for(
        "demo desktop: 2 monitors at logon: 1280x900+0+0 1120x768+1280+0",
        limit,
    );
    app.wait_for("demo desktop: resized to 2400x900", limit);
    let dir = target_dir().join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let shot = dir.join("desktop-two-monitors.png");
    // Both monitors show the remote desktop 1:1, the right one's far
    // corner too.
    let points = [(3, 3), (1279, 899), (1280, 0), (1700, 500), (2399, 767)];
    let covered = (0..20).any(|_| {
        std::thread::sleep(Duration::from_millis(500));
        screenshot(&x.display, &shot);
        let (w, h, rgb) = read_png(&shot);
        (w, h) == (2400, 900)
            && points.iter().all(|&(px, py)| {
                let i = ((py * w + px) * 3) as usize;
                rgb[i..i + 3] == test_desktop::picture_pixel(px as u16, py as u16)
            })
    });
    assert!(
        covered,
        "the remote desktop does not cover both monitors: {}",
        shot.display()
    );

    // The shortcut leaves full screen: the window is back (the right
    // monitor shows the desktop behind it) and the remote desktop follows
    // the window again.
    xdotool(&x.display, &["key", "ctrl+alt+shift+f"]);
    let deadline = std::time::Instant::now() + limit;
    let windowed = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = app.next_line(left);
        if line.contains("demo desktop: resized to") && !line.contains("2400x900") {
            break line;
        }
    };
    let size = windowed.rsplit(' ').next().unwrap();
    let width: u32 = size.split('x').next().unwrap().parse().unwrap();
    assert!(width < 1400, "{windowed}");
    let back = dir.join("desktop-two-monitors-left.png");
    screenshot(&x.display, &back);
    let (w, _, rgb) = read_png(&back);
    let i = ((700 * w + 2300) * 3) as usize;
    assert_ne!(
        rgb[i..i + 3],
        test_desktop::picture_pixel(2300, 700),
        "the window still covers the right monitor: {}",
        back.display()
    );
}
