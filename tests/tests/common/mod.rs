//! Test harness: the project's binaries as real processes on loopback.

#![allow(dead_code)]

pub mod hostile;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Path of a workspace binary, built once per test run.
pub fn bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    let target = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_owned();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        // `--workspace --all-targets` resolves features exactly as
        // `cargo test --workspace` does, so this reuses its build instead of
        // recompiling the libraries with another feature set. The variables
        // cargo sets for this test crate go: build scripts that read them
        // (ring's reads CARGO_MANIFEST_DIR) would otherwise run again and
        // rebuild half the workspace, once here and once in the next
        // `cargo test`.
        let mut build = Command::new(cargo);
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            let per_crate = [
                "CARGO_MANIFEST_",
                "CARGO_PKG_",
                "CARGO_CRATE_",
                "CARGO_BIN_",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
            ];
            if per_crate.iter().any(|prefix| name.starts_with(prefix)) {
                build.env_remove(name.as_ref());
            }
        }
        let status = build
            .args(["build", "--quiet", "--workspace", "--all-targets"])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the binaries failed");
    });
    target.join(name)
}

/// Where thin-client processes of this test binary keep their state (pinned
/// host keys), instead of the user's config folder.
pub fn client_config_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

/// A child process whose output lines are collected; killed on drop.
pub struct Proc {
    pub name: String,
    child: Child,
    lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Proc {
    pub fn start(name: &str, args: &[&str]) -> Self {
        Self::start_cmd(name, Command::new(bin(name)).args(args))
    }

    /// Like [`start`](Self::start), with the process's file-descriptor
    /// limit (soft and hard) set to `fd_limit`, as `ulimit -n` does.
    pub fn start_with_fd_limit(name: &str, fd_limit: u32, args: &[&str]) -> Self {
        let script = format!("ulimit -n {fd_limit} && exec \"$0\" \"$@\"");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &script]).arg(bin(name)).args(args);
        Self::start_cmd(name, &mut cmd)
    }

    pub fn start_cmd(name: &str, cmd: &mut Command) -> Self {
        let mut child = cmd
            .env("THIN_CONFIG_DIR", client_config_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let (tx, lines) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Self {
            name: name.to_owned(),
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (bounded) for an output line containing `needle`; returns it.
    pub fn wait_for(&mut self, needle: &str, limit: Duration) -> String {
        if let Some(line) = self.seen.iter().find(|l| l.contains(needle)) {
            return line.clone();
        }
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "{} printed no line with {needle:?} within {limit:?}; it printed:\n{}",
                    self.name,
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Waits (bounded) for the next output line.
    pub fn next_line(&mut self, limit: Duration) -> String {
        match self.lines.recv_timeout(limit) {
            Ok(line) => {
                self.seen.push(line.clone());
                line
            }
            Err(_) => panic!(
                "{} printed nothing within {limit:?}; it printed:\n{}",
                self.name,
                self.seen.join("\n")
            ),
        }
    }

    /// Waits (bounded) for the process to exit; returns its code and output.
    pub fn wait_exit(&mut self, limit: Duration) -> (i32, String) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader threads drain.
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.seen.push(line);
                }
                return (status.code().unwrap_or(-1), self.seen.join("\n"));
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {limit:?}",
                self.name
            );
            while let Ok(line) = self.lines.try_recv() {
                self.seen.push(line);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the process has ended (without waiting).
    pub fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (e.g. `libc::SIGHUP`) to the process.
    pub fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) with a pid this test started.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(100)) {
                self.seen.push(line);
            }
            eprintln!("--- output of {} ---\n{}", self.name, self.seen.join("\n"));
        }
    }
}

/// The address a process printed after `prefix`, e.g. "listening on ".
pub fn addr_after(line: &str, prefix: &str) -> String {
    let start = line.find(prefix).expect("prefix present") + prefix.len();
    line[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches(':')
        .to_owned()
}

/// Runs a command with `input` on its standard input, to completion
/// (bounded); returns (code, stdout+stderr).
pub fn run_with_input(name: &str, args: &[&str], input: &str) -> (i32, String) {
    let mut child = Command::new(bin(name))
        .args(args)
        .env("THIN_CONFIG_DIR", client_config_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "{name} did not exit within 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// The host password every test host gets (unless a test sets another).
pub const HOST_PASSWORD: &str = "Office-Pass-42";

/// A file holding [`HOST_PASSWORD`], for `--host-password-file`.
pub fn host_password_file() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| {
        let path = client_config_dir().join("host-password");
        std::fs::write(&path, HOST_PASSWORD).unwrap();
        path.to_str().unwrap().to_owned()
    })
}

/// Sets a host's password with `thin-host set-password`.
pub fn set_host_password(config: &Path, password: &str) {
    let (code, out) = run_with_input(
        "thin-host",
        &["set-password", "--config", config.to_str().unwrap()],
        &format!("{password}\n"),
    );
    assert_eq!(code, 0, "{out}");
}

/// Runs a command to completion (bounded) and returns (code, stdout+stderr).
/// `thin-client connect` to `id` through the relay at `relay_addr` (trusting
/// `ca`), logging on to Windows as `logon` (user, password) and saving the
/// first frame to `shot`, then `extra` flags. The test host password is
/// given unless `extra` has its own `--host-password-file`.
pub fn thin_client_connect(
    relay_addr: &str,
    ca: &Path,
    id: &str,
    logon: (&str, &str),
    shot: &Path,
    extra: &[&str],
) -> (i32, String) {
    let args = thin_client_connect_args(relay_addr, ca, id, logon, shot, extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run("thin-client", &args)
}

/// The arguments of [`thin_client_connect`], for starting it as a [`Proc`].
pub fn thin_client_connect_args(
    relay_addr: &str,
    ca: &Path,
    id: &str,
    logon: (&str, &str),
    shot: &Path,
    extra: &[&str],
) -> Vec<String> {
    let mut args = vec![
        "connect",
        "--relay",
        relay_addr,
        "--relay-ca",
        ca.to_str().unwrap(),
        "--id",
        id,
        "--rdp-user",
        logon.0,
        "--rdp-password",
        logon.1,
        "--screenshot",
        shot.to_str().unwrap(),
    ];
    if !extra.contains(&"--host-password-file") {
        args.extend(["--host-password-file", host_password_file()]);
    }
    args.extend_from_slice(extra);
    args.into_iter().map(str::to_owned).collect()
}

pub fn run(name: &str, args: &[&str]) -> (i32, String) {
    let mut p = Proc::start(name, args);
    p.wait_exit(Duration::from_secs(60))
}

/// A relay with its own CA, serving on a free loopback port.
pub struct RelayProc {
    pub dir: tempfile::TempDir,
    pub addr: String,
    pub proc: Proc,
}

impl RelayProc {
    pub fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap().to_owned();
        let (code, out) = run("thin-relay", &["init", "--dir", &d]);
        assert_eq!(code, 0, "{out}");
        let mut args = vec!["serve", "--dir", &d, "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut proc = Proc::start("thin-relay", &args);
        let line = proc.wait_for("thin-relay listening on ", Duration::from_secs(20));
        let addr = addr_after(&line, "listening on ");
        Self { dir, addr, proc }
    }

    /// Like [`start`](Self::start), with the relay's file-descriptor limit
    /// (soft and hard) set to `limit`, as `ulimit -n` does.
    pub fn start_with_fd_limit(limit: u32, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap().to_owned();
        let (code, out) = run("thin-relay", &["init", "--dir", &d]);
        assert_eq!(code, 0, "{out}");
        let mut args = vec!["serve", "--dir", &d, "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut proc = Proc::start_with_fd_limit("thin-relay", limit, &args);
        let line = proc.wait_for("thin-relay listening on ", Duration::from_secs(20));
        let addr = addr_after(&line, "listening on ");
        Self { dir, addr, proc }
    }

    /// Stops the relay and starts it again on the same address and state.
    pub fn restart(&mut self) {
        self.proc.kill();
        let d = self.dir.path().to_str().unwrap().to_owned();
        let mut proc = Proc::start(
            "thin-relay",
            &["serve", "--dir", &d, "--listen", &self.addr],
        );
        proc.wait_for("thin-relay listening on ", Duration::from_secs(20));
        self.proc = proc;
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
}

/// `thin-host init` of `config` for `id` at the relay `relay_addr` (trusting
/// `ca`), forwarding to `target` if given, with `extra` arguments. No host
/// password is set.
pub fn init_host(
    config: &Path,
    id: &str,
    relay_addr: &str,
    ca: &Path,
    target: Option<&str>,
    extra: &[&str],
) {
    let mut args = vec![
        "init",
        "--config",
        config.to_str().unwrap(),
        "--id",
        id,
        "--relay",
        relay_addr,
        "--relay-ca",
        ca.to_str().unwrap(),
    ];
    if let Some(target) = target {
        args.extend(["--target", target]);
    }
    args.extend_from_slice(extra);
    let (code, out) = run("thin-host", &args);
    assert_eq!(code, 0, "{out}");
}

/// A host configured for `id`, forwarding to `target`.
pub struct HostProc {
    pub config: PathBuf,
    pub proc: Proc,
}

impl HostProc {
    pub fn start(dir: &Path, relay: &RelayProc, id: &str, target: &str) -> Self {
        Self::start_with(dir, relay, id, target, &[])
    }

    /// Like [`start`](Self::start) with extra `thin-host init` arguments.
    pub fn start_with(
        dir: &Path,
        relay: &RelayProc,
        id: &str,
        target: &str,
        extra: &[&str],
    ) -> Self {
        let config = dir.join(format!("{id}-{}.toml", std::process::id()));
        init_host(&config, id, &relay.addr, &relay.ca(), Some(target), extra);
        set_host_password(&config, HOST_PASSWORD);
        let mut proc = Proc::start("thin-host", &["run", "--config", config.to_str().unwrap()]);
        proc.wait_for("registered; waiting for sessions", Duration::from_secs(20));
        Self { config, proc }
    }
}

impl HostProc {
    /// `thin-host policy` on this host's config with `args` (e.g.
    /// `["--raw", "on"]`); it takes effect at the next connection.
    pub fn policy(&self, args: &[&str]) {
        let mut all = vec!["policy", "--config", self.config.to_str().unwrap()];
        all.extend_from_slice(args);
        let (code, out) = run("thin-host", &all);
        assert_eq!(code, 0, "{out}");
    }
}

/// `thin-client connect --listen` (raw mode) to `id` with the one-time
/// password `otp`; returns it and the local address RDP clients connect to.
/// Each connection through it is logged at info.
pub fn raw_mode_client(relay: &RelayProc, id: &str, otp: &str) -> (Proc, String) {
    let mut client = Proc::start_cmd(
        "thin-client",
        Command::new(bin("thin-client"))
            .args(["connect", "--relay", &relay.addr, "--relay-ca"])
            .arg(relay.ca())
            .args(["--id", id, "--host-password-file", host_password_file()])
            .args(["--otp", otp, "--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "info"),
    );
    let line = client.wait_for("listening on ", Duration::from_secs(20));
    let local = addr_after(&line, "listening on ");
    (client, local)
}

/// The end-to-end channel to `id` through `relay`, admitted with the test
/// host password (the host asks no code): the channel, what the host
/// allows, and the answers for the RDP logon that may follow. A client of
/// the test's own making, free to ask for what the host forbids.
pub async fn open_admitted(
    relay: &RelayProc,
    id: &str,
) -> (
    transport::FramedIo<client_core::native::Channel>,
    client_core::Admission,
    client_core::Scripted,
) {
    let target = client_core::native::RelayTarget {
        addr: relay.addr.clone(),
        ca: relay.ca(),
        proxy: None,
    };
    let mut answers = client_core::Scripted {
        otp: None,
        host_password: Some(HOST_PASSWORD.into()),
    };
    let pins = client_core::known_hosts::MemoryPins::default();
    let (channel, admission) =
        client_core::native::open_channel(&target, id, &pins, &mut answers, &Default::default())
            .await
            .expect("admitted");
    (channel, admission, answers)
}

/// Turns on authenticator codes for the host at `config`; returns what
/// `thin-host otp totp` printed, the enrolment URI and the secret in it.
pub fn enrol_totp(config: &Path) -> (String, String, String) {
    let (code, enrolment) = run(
        "thin-host",
        &["otp", "totp", "--config", config.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{enrolment}");
    let uri = enrolment
        .lines()
        .find(|l| l.starts_with("otpauth://totp/"))
        .expect("the enrolment URI is printed")
        .to_owned();
    let secret = uri
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("secret="))
        .expect("the URI carries the secret")
        .to_owned();
    (enrolment, uri, secret)
}

/// The current code for `secret` from oathtool (a real TOTP generator).
pub fn oathtool(secret: &str) -> String {
    let out = Command::new("oathtool")
        .args(["--totp", "-b", secret])
        .output()
        .expect("oathtool runs");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The synthetic RDP server as a process.
pub fn test_desktop(user: &str, password: &str) -> (Proc, String) {
    test_desktop_with(user, password, &[])
}

/// [`test_desktop`] with `extra` arguments (e.g. `--clipboard TEXT`).
pub fn test_desktop_with(user: &str, password: &str, extra: &[&str]) -> (Proc, String) {
    let mut args = vec![
        "--listen",
        "127.0.0.1:0",
        "--user",
        user,
        "--password",
        password,
    ];
    args.extend_from_slice(extra);
    let mut proc = Proc::start("thin-test-desktop", &args);
    let line = proc.wait_for("thin-test-desktop listening on ", Duration::from_secs(20));
    let addr = addr_after(&line, "listening on ");
    (proc, addr)
}

/// Reads a PNG (thin-client's, or a screenshot): (width, height, RGB bytes).
pub fn read_png(path: &Path) -> (u32, u32, Vec<u8>) {
    let mut decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    let rgb = match info.color_type {
        png::ColorType::Rgb => buf,
        png::ColorType::Rgba => buf
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
        other => panic!("{}: unexpected PNG colour type {other:?}", path.display()),
    };
    (info.width, info.height, rgb)
}

/// Where in the screenshot `shot` the test desktop's 1024×768 picture sits
/// (top-left), if it is there whole and unscaled.
pub fn find_picture(shot: &Path) -> Option<(u32, u32)> {
    use test_desktop::picture_pixel;
    let (w, h, rgb) = read_png(shot);
    let at = |x: u32, y: u32| {
        let i = ((y * w + x) * 3) as usize;
        [rgb[i], rgb[i + 1], rgb[i + 2]]
    };
    let samples: Vec<(u32, u32)> = (0..40)
        .map(|i| ((i * 97) % 1000 + 5, (i * 61) % 740 + 5))
        .collect();
    for oy in 0..=h.saturating_sub(768) {
        for ox in 0..=w.saturating_sub(1024) {
            if at(ox + 3, oy + 3) != picture_pixel(3, 3) {
                continue;
            }
            if samples
                .iter()
                .all(|&(x, y)| at(ox + x, oy + y) == picture_pixel(x as u16, y as u16))
            {
                return Some((ox, oy));
            }
        }
    }
    None
}

/// Whether the test desktop's picture is in `shot` and reaches (`x`, `y`)
/// of the remote desktop: after a resize, the new area is painted too.
pub fn picture_reaches(shot: &Path, (x, y): (u32, u32)) -> bool {
    find_picture(shot).is_some_and(|(ox, oy)| {
        let (w, h, rgb) = read_png(shot);
        let (sx, sy) = (ox + x, oy + y);
        let i = ((sy * w + sx) * 3) as usize;
        sx < w && sy < h && rgb[i..i + 3] == test_desktop::picture_pixel(x as u16, y as u16)
    })
}

pub fn is_installed(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// A free loopback port (for programs that cannot be told to pick one).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (bounded) until something accepts TCP connections on `addr`.
pub fn wait_listening(addr: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// True when the real peer `programs` are installed; false when they are
/// deliberately skipped (THIN_SKIP_REAL_PEERS=1); otherwise panics saying
/// which Debian `packages` to install (`.ci/run` installs them).
pub fn real_peer_programs(programs: &[&str], packages: &str) -> bool {
    if std::env::var_os("THIN_SKIP_REAL_PEERS").is_some() {
        eprintln!("THIN_SKIP_REAL_PEERS is set: skipping a real-peer test");
        return false;
    }
    let missing: Vec<_> = programs.iter().filter(|p| !is_installed(p)).collect();
    assert!(
        missing.is_empty(),
        "missing {missing:?}: apt-get install {packages} (or set THIN_SKIP_REAL_PEERS=1)"
    );
    true
}

/// An X server of its own, on a display number it picks itself.
pub struct Xvfb {
    pub display: String,
    _proc: Proc,
}

impl Xvfb {
    pub fn start() -> Self {
        Self::sized(1024, 768)
    }

    pub fn sized(width: u32, height: u32) -> Self {
        let mut proc = Proc::start_cmd(
            "Xvfb",
            Command::new("Xvfb")
                .args(["-displayfd", "1", "-screen", "0"])
                .arg(format!("{width}x{height}x24"))
                .args(["-nolisten", "tcp"]),
        );
        let number = loop {
            let line = proc.next_line(Duration::from_secs(20));
            if let Ok(n) = line.trim().parse::<u32>() {
                break n;
            }
        };
        let display = format!(":{number}");
        // Ready by its own account; make sure clients really get in (a
        // shadow server that cannot open the display does not retry).
        let deadline = Instant::now() + Duration::from_secs(10);
        while !Command::new("xset")
            .args(["-display", &display, "q"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            assert!(Instant::now() < deadline, "Xvfb {display} takes no clients");
            std::thread::sleep(Duration::from_millis(100));
        }
        Self {
            display,
            _proc: proc,
        }
    }
}

/// An X server with several monitors: TigerVNC's Xvnc (Xvfb keeps its one
/// RandR monitor whatever it is told), its first monitor on its only
/// output and the others beside it, as `xrandr --setmonitor` makes them.
/// Nothing listens for VNC clients.
pub struct Xvnc {
    pub display: String,
    _proc: Proc,
}

impl Xvnc {
    /// `monitors`: name, width, height, left, top; the first is the primary.
    pub fn with_monitors(monitors: &[(&str, u32, u32, i32, i32)]) -> Self {
        let (width, height) = monitors.iter().fold((0, 0), |(w, h), m| {
            (w.max(m.3 as u32 + m.1), h.max(m.4 as u32 + m.2))
        });
        let mut proc = Proc::start_cmd(
            "Xvnc",
            Command::new("Xvnc")
                .args(["-displayfd", "1", "-geometry"])
                .arg(format!("{width}x{height}"))
                .args(["-depth", "24", "-SecurityTypes", "None", "-rfbport", "-1"])
                .args(["-nolisten", "tcp"]),
        );
        let number = loop {
            let line = proc.next_line(Duration::from_secs(20));
            if let Ok(n) = line.trim().parse::<u32>() {
                break n;
            }
        };
        let display = format!(":{number}");
        let xrandr = |args: &[&str]| {
            let out = Command::new("xrandr")
                .args(args)
                .env("DISPLAY", &display)
                .output()
                .unwrap();
            assert!(out.status.success(), "xrandr {args:?}: {out:?}");
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        for (i, &(name, w, h, left, top)) in monitors.iter().enumerate() {
            // Sizes in millimetres at about 96 dpi.
            let geometry = format!("{w}/{}x{h}/{}+{left}+{top}", w * 254 / 960, h * 254 / 960);
            let output = if i == 0 { "VNC-0" } else { "none" };
            xrandr(&["--setmonitor", name, &geometry, output]);
        }
        let listed = xrandr(&["--listactivemonitors"]);
        assert!(
            listed.starts_with(&format!("Monitors: {}", monitors.len())),
            "{listed}"
        );
        Self {
            display,
            _proc: proc,
        }
    }
}

/// `target/` of this build (for artefacts such as screenshots).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "target"))
        .map(Path::to_path_buf)
        .unwrap_or_else(|| exe.parent().unwrap().to_owned())
}

/// A loopback TCP forwarder that can pull the network: [`freeze`] stops
/// every connection open at that moment dead — nothing passes either way,
/// nothing is closed, as when a Wi-Fi link drops or a NAT forgets the
/// connection — while connections opened afterwards pass again. Runs on
/// the caller's tokio runtime.
///
/// [`freeze`]: Freezer::freeze
pub struct Freezer {
    pub addr: String,
    /// Connections numbered below this are frozen.
    frozen_below: std::sync::Arc<std::sync::atomic::AtomicU64>,
    next: std::sync::Arc<std::sync::atomic::AtomicU64>,
    accept: tokio::task::JoinHandle<()>,
}

impl Freezer {
    pub async fn start(target: &str) -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        use std::sync::Arc;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let frozen_below = Arc::new(AtomicU64::new(0));
        let next = Arc::new(AtomicU64::new(0));
        let target = target.to_owned();
        let (below, counter) = (frozen_below.clone(), next.clone());
        let accept = tokio::spawn(async move {
            // Bounded: a test opens a handful of connections.
            for _ in 0..64 {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let number = counter.fetch_add(1, Ordering::SeqCst);
                let Ok(server) = tokio::net::TcpStream::connect(&target).await else {
                    continue;
                };
                let below = below.clone();
                tokio::spawn(async move {
                    let frozen = move || number < below.load(Ordering::SeqCst);
                    let (client_in, client_out) = client.into_split();
                    let (server_in, server_out) = server.into_split();
                    tokio::join!(
                        Self::forward(client_in, server_out, frozen.clone()),
                        Self::forward(server_in, client_out, frozen),
                    );
                });
            }
        });
        Self {
            addr,
            frozen_below,
            next,
            accept,
        }
    }

    /// Copies one way until frozen; then holds both sockets open, silent.
    async fn forward(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        frozen: impl Fn() -> bool,
    ) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = from.read(&mut buf).await.unwrap_or(0);
            if frozen() {
                // Holds `from` and `to` (so neither end hears a close)
                // until the runtime ends.
                std::future::pending::<()>().await;
            }
            if n == 0 || to.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    }

    /// Pulls the network under every connection open now.
    pub fn freeze(&self) {
        use std::sync::atomic::Ordering;
        let open = self.next.load(Ordering::SeqCst);
        self.frozen_below.store(open, Ordering::SeqCst);
    }
}

impl Drop for Freezer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// One plain HTTP request to the metrics address; the whole answer.
pub fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(tcp, "GET {path} HTTP/1.1\r\nHost: metrics\r\n\r\n").unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).unwrap();
    answer
}

/// The samples of an OpenMetrics text: `name{labels}` → value.
pub fn samples(text: &str) -> std::collections::HashMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}
