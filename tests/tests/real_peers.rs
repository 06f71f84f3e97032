//! Real RDP peers through relay and host: the FreeRDP shadow server (a real
//! RDP server with NLA, shadowing an Xvfb display) and xfreerdp (a real RDP
//! client) through `thin-client connect --listen`.
//!
//! These need Debian's `xvfb x11-xserver-utils freerdp2-shadow-x11
//! winpr-utils freerdp2-x11` (installed by `.ci/run`). Without them the tests
//! fail and say what to install; set THIN_SKIP_REAL_PEERS=1 to skip them
//! deliberately on a machine that cannot have them.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

const USER: &str = "tester";
const PASSWORD: &str = "Secr3t!pw";
/// The colour the test paints on the shadowed X display.
const ROOT_COLOUR: [u8; 3] = [0x33, 0x66, 0xcc];
const PROGRAMS: &[&str] = &[
    "Xvfb",
    "xsetroot",
    "freerdp-shadow-cli",
    "winpr-hash",
    "xfreerdp",
];

fn real_peers_available() -> bool {
    real_peer_programs(
        PROGRAMS,
        "xvfb x11-xserver-utils freerdp2-shadow-x11 winpr-utils freerdp2-x11",
    )
}

/// The FreeRDP shadow server with NLA (user and password in a SAM file),
/// showing `xvfb`'s display painted in ROOT_COLOUR.
fn shadow_server(xvfb: &Xvfb, dir: &Path) -> (Proc, String) {
    let sam = dir.join("sam.txt");
    let hash = Command::new("winpr-hash")
        .args(["-u", USER, "-p", PASSWORD, "-f", "sam"])
        .output()
        .unwrap();
    assert!(hash.status.success(), "winpr-hash failed");
    std::fs::write(&sam, hash.stdout).unwrap();

    // Seen here once in many runs: the shadow server fails to open a display
    // that answers xset; it is started again (at most three times).
    let mut attempts = 0;
    let (proc, addr) = loop {
        attempts += 1;
        let port = free_port();
        let mut proc = Proc::start_cmd(
            "freerdp-shadow-cli",
            Command::new("freerdp-shadow-cli")
                .args([
                    "/bind-address:127.0.0.1",
                    &format!("/port:{port}"),
                    "-auth",
                    "/sec:nla",
                    &format!("/sam-file:{}", sam.display()),
                ])
                .env("DISPLAY", &xvfb.display)
                .env("HOME", dir),
        );
        let addr = format!("127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&addr).is_err() && !proc.exited() {
            assert!(
                std::time::Instant::now() < deadline,
                "nothing listens on {addr}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        if !proc.exited() {
            break (proc, addr);
        }
        let (_, out) = proc.wait_exit(Duration::from_secs(5));
        assert!(attempts < 3, "freerdp-shadow-cli did not start:\n{out}");
        eprintln!("freerdp-shadow-cli ended at start (attempt {attempts}); again:\n{out}");
        std::thread::sleep(Duration::from_millis(500));
    };
    // Painted once the server watches the display, so that it sees the change.
    let [r, g, b] = ROOT_COLOUR;
    let status = Command::new("xsetroot")
        .args(["-solid", &format!("#{r:02x}{g:02x}{b:02x}")])
        .env("DISPLAY", &xvfb.display)
        .status()
        .unwrap();
    assert!(status.success(), "xsetroot failed");
    (proc, addr)
}

#[test]
fn freerdp_shadow_server_through_relay_and_host() {
    if !real_peers_available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let xvfb = Xvfb::start();
    let (_shadow, shadow_addr) = shadow_server(&xvfb, work.path());
    let relay = RelayProc::start(&[]);
    let _host = HostProc::start(work.path(), &relay, "shadow-pc", &shadow_addr);

    let shot = work.path().join("shadow.png");
    let ca = relay.ca();
    let connect = |password: &str| {
        thin_client_connect(&relay.addr, &ca, "shadow-pc", (USER, password), &shot, &[])
    };

    // The shadow server captures the display only once a client is
    // connected, so its first complete frame is black: the screenshot must
    // wait for the real picture. One connection, no retries.
    let (code, out) = connect(PASSWORD);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("first_frame_ms="), "{out}");
    let (w, h, _) = read_png(&shot);
    assert_eq!((w, h), (1024, 768));
    // The shadowed display's colour arrives (allowing for lossy codecs).
    let wrong = wrong_pixels(
        &shot,
        &[(10, 10), (512, 384), (1000, 700), (100, 600)],
        ROOT_COLOUR,
    );
    assert!(
        wrong.is_empty(),
        "(x, y, pixel) not {ROOT_COLOUR:?}: {wrong:?}"
    );

    let (code, out) = connect("not-the-password");
    assert_ne!(code, 0);
    assert!(out.contains("remote logon refused"), "{out}");
}

/// RDP clients open several connections (an NLA check, the session, a
/// reconnect): each must get through with the one logon the user gave —
/// the first with the one-time password, the next ones with the host's
/// resume ticket — and a wrong Windows password must fail at the RDP server,
/// not at our gate.
#[test]
fn xfreerdp_through_raw_mode_again_and_again() {
    if !real_peers_available() || !real_peer_programs(&["oathtool"], "oathtool") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let xvfb = Xvfb::start();
    let (_shadow, shadow_addr) = shadow_server(&xvfb, work.path());
    let relay = RelayProc::start(&[]);
    let host = HostProc::start(work.path(), &relay, "raw-pc", &shadow_addr);
    let (_, _, secret) = enrol_totp(&host.config);
    let otp = oathtool(&secret);

    let (mut client, local) = raw_mode_client(&relay, "raw-pc", &otp);

    // xfreerdp keeps its known-hosts file under $HOME: give it its own.
    let auth_only = |password: &str| {
        let mut xfreerdp = Proc::start_cmd(
            "xfreerdp",
            Command::new("timeout")
                .args(["30", "xfreerdp"])
                .arg(format!("/v:{local}"))
                .arg(format!("/u:{USER}"))
                .arg(format!("/p:{password}"))
                .args(["/cert:ignore", "/sec:nla", "+auth-only"])
                .env("DISPLAY", &xvfb.display)
                .env("HOME", work.path()),
        );
        xfreerdp.wait_exit(Duration::from_secs(40))
    };
    // Raw mode is off unless the owner allows it: the host cannot enforce
    // its policy inside another client's TLS.
    let (code, out) = auth_only(PASSWORD);
    assert_ne!(code, 0, "raw mode worked against the host's policy:\n{out}");
    client.wait_for("does not allow raw mode", Duration::from_secs(10));
    host.policy(&["--raw", "on"]);

    for round in 1..=2 {
        let (code, out) = auth_only(PASSWORD);
        assert_eq!(
            code, 0,
            "xfreerdp could not log on through the relay (connection {round}):\n{out}"
        );
        client.wait_for("RDP client disconnected", Duration::from_secs(10));
    }
    // The pipe opens (the ticket stands in for the used code) and the RDP
    // server itself refuses the wrong Windows password.
    let (code, out) = auth_only("not-the-password");
    assert_ne!(code, 0, "a wrong password logged on:\n{out}");
    client.wait_for(
        "RDP client connected through the relay",
        Duration::from_secs(10),
    );
    let (code, out) = auth_only(PASSWORD);
    assert_eq!(code, 0, "the fourth connection failed:\n{out}");

    let audit = std::fs::read_to_string(host.config.with_extension("audit.log")).unwrap();
    let resumed = audit
        .lines()
        .filter(|l| l.contains("skipped: resume ticket"))
        .count();
    assert_eq!(resumed, 4, "{audit}");
    assert!(!audit.contains("\"result\":\"fail\""), "{audit}");
}

/// The xrdp session user (created by the test; CI runs as root).
const XRDP_USER: &str = "thinxrdp";
const XRDP_PASSWORD: &str = "Xrdp-Pass1";
/// The colour the xrdp session paints its root window.
const XRDP_COLOUR: [u8; 3] = [0x2a, 0x7f, 0x62];

/// xrdp and its session manager, on a free port with configs of their own;
/// on drop, the session user's processes end too.
struct Xrdp {
    addr: String,
    _sesman: Proc,
    _xrdp: Proc,
}

impl Xrdp {
    fn start(dir: &Path) -> Self {
        assert!(
            // SAFETY: geteuid has no preconditions.
            unsafe { libc::geteuid() } == 0,
            "the xrdp test starts xrdp-sesman and adds a session user: run it as root \
             (or set THIN_SKIP_REAL_PEERS=1)"
        );
        add_xrdp_user();
        std::fs::create_dir_all("/var/run/xrdp").unwrap();
        let port = free_port();
        let edit = |file: &str, changes: &[(&str, String)]| {
            let mut text = std::fs::read_to_string(Path::new("/etc/xrdp").join(file)).unwrap();
            // The first line that sets each key, as a whole line.
            for (key, value) in changes {
                let at = text
                    .lines()
                    .position(|l| l.starts_with(&format!("{key}=")))
                    .unwrap_or_else(|| panic!("no {key}= in /etc/xrdp/{file}"));
                let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
                lines[at] = format!("{key}={value}");
                text = lines.join("\n") + "\n";
            }
            let path = dir.join(file);
            std::fs::write(&path, text).unwrap();
            path
        };
        let log = |name: &str| dir.join(name).display().to_string();
        let sesman_ini = edit(
            "sesman.ini",
            &[
                ("LogFile", log("sesman.log")),
                ("EnableSyslog", "false".into()),
                // A session ends with its connection: nothing lingers.
                ("KillDisconnected", "true".into()),
            ],
        );
        let xrdp_ini = edit(
            "xrdp.ini",
            &[
                ("port", format!("tcp://127.0.0.1:{port}")),
                ("autorun", "Xvnc".into()),
                ("LogFile", log("xrdp.log")),
                ("EnableSyslog", "false".into()),
            ],
        );
        // xrdp finds the session manager at the port of /etc/xrdp/sesman.ini
        // (3350): one per machine, and this is the only test that runs one.
        let mut sesman = Proc::start_cmd(
            "xrdp-sesman",
            Command::new("xrdp-sesman")
                .arg("--nodaemon")
                .arg("-c")
                .arg(&sesman_ini),
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        // It listens on ::1 here although its config names 127.0.0.1.
        let listening = || {
            ["127.0.0.1:3350", "[::1]:3350"]
                .iter()
                .any(|a| std::net::TcpStream::connect(a).is_ok())
        };
        while !listening() {
            assert!(
                !sesman.exited() && std::time::Instant::now() < deadline,
                "xrdp-sesman does not listen on 3350: {}",
                std::fs::read_to_string(dir.join("sesman.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let xrdp = Proc::start_cmd(
            "xrdp",
            Command::new("xrdp")
                .arg("--nodaemon")
                .arg("-c")
                .arg(&xrdp_ini),
        );
        let addr = format!("127.0.0.1:{port}");
        wait_listening(&addr, Duration::from_secs(20));
        Self {
            addr,
            _sesman: sesman,
            _xrdp: xrdp,
        }
    }
}

impl Drop for Xrdp {
    fn drop(&mut self) {
        let _ = Command::new("pkill").args(["-u", XRDP_USER]).status();
    }
}

/// The session user, with a session that paints XRDP_COLOUR and waits.
fn add_xrdp_user() {
    let exists = Command::new("id")
        .arg(XRDP_USER)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success();
    if !exists {
        let status = Command::new("useradd")
            .args(["-m", "-s", "/bin/sh", XRDP_USER])
            .status()
            .unwrap();
        assert!(status.success(), "useradd {XRDP_USER} failed");
    }
    let mut chpasswd = Command::new("chpasswd")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    let mut stdin = chpasswd.stdin.take().unwrap();
    writeln!(stdin, "{XRDP_USER}:{XRDP_PASSWORD}").unwrap();
    drop(stdin);
    assert!(chpasswd.wait().unwrap().success(), "chpasswd failed");
    let [r, g, b] = XRDP_COLOUR;
    let xsession = Path::new("/home").join(XRDP_USER).join(".xsession");
    std::fs::write(
        &xsession,
        format!("xsetroot -solid '#{r:02x}{g:02x}{b:02x}'\nexec sleep 600\n"),
    )
    .unwrap();
    let status = Command::new("chown")
        .arg(format!("{XRDP_USER}:"))
        .arg(&xsession)
        .status()
        .unwrap();
    assert!(status.success());
}

/// The X display of the running xrdp session (Xvnc as the session user).
struct XrdpSession {
    display: String,
    xauthority: std::path::PathBuf,
}

impl XrdpSession {
    fn find() -> Self {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let out = Command::new("pgrep")
                .args(["-a", "-u", XRDP_USER, "Xvnc"])
                .output()
                .unwrap();
            let listing = String::from_utf8_lossy(&out.stdout);
            let display = listing
                .split_whitespace()
                .find(|word| word.starts_with(':') && word[1..].parse::<u32>().is_ok());
            if let Some(display) = display {
                return Self {
                    display: display.to_owned(),
                    xauthority: Path::new("/home").join(XRDP_USER).join(".Xauthority"),
                };
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no Xvnc of {XRDP_USER} runs: {listing}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn xclip(&self) -> Command {
        let mut cmd = Command::new("xclip");
        cmd.args(["-selection", "clipboard"])
            .env("DISPLAY", &self.display)
            .env("XAUTHORITY", &self.xauthority);
        cmd
    }

    /// The session's clipboard text, once it is `want` (or at the limit).
    fn wait_clipboard(&self, want: &str, limit: Duration) -> String {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let out = self.xclip().arg("-o").output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            if text == want || std::time::Instant::now() >= deadline {
                return text;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Copies the text of `file` in the session; it stays on the clipboard
    /// while the returned process runs.
    fn copy(&self, file: &Path) -> Proc {
        Proc::start_cmd("xclip", self.xclip().args(["-quiet", "-i"]).arg(file))
    }
}

/// `(x, y, pixel)` of the `points` in a screenshot not within 8 of `want`.
fn wrong_pixels(shot: &Path, points: &[(u32, u32)], want: [u8; 3]) -> Vec<(u32, u32, [u8; 3])> {
    let (w, _, rgb) = read_png(shot);
    points
        .iter()
        .filter_map(|&(x, y)| {
            let i = ((y * w + x) * 3) as usize;
            let pixel = [rgb[i], rgb[i + 1], rgb[i + 2]];
            let close = pixel.iter().zip(want).all(|(got, w)| got.abs_diff(w) <= 8);
            (!close).then_some((x, y, pixel))
        })
        .collect()
}

/// xrdp checks no logon before the session (TLS only, no NLA): our client
/// logs on with the credentials of its Client Info, the session's picture
/// arrives; xfreerdp gets through raw mode; and an owner who requires NLA
/// gets a refusal that names the setting.
#[test]
fn xrdp_tls_only_server_through_relay_and_host() {
    if !real_peer_programs(
        &[
            "xrdp",
            "xrdp-sesman",
            "Xvnc",
            "xsetroot",
            "xfreerdp",
            "Xvfb",
            "import",
            "xclip",
        ],
        "xrdp xorgxrdp tigervnc-standalone-server x11-xserver-utils freerdp2-x11 xvfb imagemagick \
         xclip",
    ) || !real_peer_programs(&["oathtool"], "oathtool")
    {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let xrdp = Xrdp::start(work.path());
    let relay = RelayProc::start(&[]);
    let host = HostProc::start(work.path(), &relay, "xrdp-pc", &xrdp.addr);
    let ca = relay.ca();
    let shot = work.path().join("xrdp.png");
    let points = [(10, 10), (512, 384), (1000, 700)];

    // The session's picture, and the clipboard both ways with the X
    // clipboard inside the xrdp session (xrdp's chansrv carries it).
    const HOME: &str = "家でコピー ✓ home";
    const OFFICE: &str = "xrdpでコピー ✓ office";
    let args = thin_client_connect_args(
        &relay.addr,
        &ca,
        "xrdp-pc",
        (XRDP_USER, XRDP_PASSWORD),
        &shot,
        &["--copy-text", HOME, "--hold", "8"],
    );
    let mut client = Proc::start_cmd("thin-client", Command::new(bin("thin-client")).args(&args));
    client.wait_for("screenshot=", Duration::from_secs(60));
    let session = XrdpSession::find();
    let pasted = session.wait_clipboard(HOME, Duration::from_secs(5));
    assert_eq!(pasted, HOME, "the xrdp session's clipboard");
    let office_text = work.path().join("office.txt");
    std::fs::write(&office_text, OFFICE).unwrap();
    let _copier = session.copy(&office_text);
    let (code, out) = client.wait_exit(Duration::from_secs(30));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("remote_clipboard=\"{OFFICE}\"")),
        "{out}"
    );
    let wrong = wrong_pixels(&shot, &points, XRDP_COLOUR);
    assert!(
        wrong.is_empty(),
        "not the xrdp session's {XRDP_COLOUR:?}: {wrong:?}"
    );

    // The owner requires NLA: the host refuses before any logon travels.
    host.policy(&["--require-nla", "on"]);
    let (code, out) = thin_client_connect(
        &relay.addr,
        &ca,
        "xrdp-pc",
        (XRDP_USER, XRDP_PASSWORD),
        &shot,
        &[],
    );
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("thin-host policy --require-nla off"), "{out}");
    host.policy(&["--require-nla", "off"]);

    // A real RDP client through raw mode: xrdp's own TLS end to end.
    host.policy(&["--raw", "on"]);
    let (_, _, secret) = enrol_totp(&host.config);
    let (client, local) = raw_mode_client(&relay, "xrdp-pc", &oathtool(&secret));
    let screen = Xvfb::start();
    let mut xfreerdp = Proc::start_cmd(
        "xfreerdp",
        Command::new("xfreerdp")
            .arg(format!("/v:{local}"))
            .arg(format!("/u:{XRDP_USER}"))
            .arg(format!("/p:{XRDP_PASSWORD}"))
            .args(["/cert:ignore", "/sec:tls", "/size:1024x768", "-decorations"])
            .env("DISPLAY", &screen.display)
            .env("HOME", work.path()),
    );
    let raw_shot = work.path().join("xfreerdp.png");
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    loop {
        assert!(!xfreerdp.exited(), "xfreerdp ended: {:?}", xfreerdp.seen);
        let status = Command::new("import")
            .args(["-window", "root"])
            // RGB even while the screen is all black (else grey-scale).
            .arg(format!("png24:{}", raw_shot.display()))
            .env("DISPLAY", &screen.display)
            .status()
            .unwrap();
        if status.success() && wrong_pixels(&raw_shot, &[(512, 384)], XRDP_COLOUR).is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "xfreerdp never showed the xrdp session's colour (see {})",
            raw_shot.display()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    xfreerdp.kill();
    drop(client);
}
