#![cfg_attr(all(windows, not(debug_assertions)), windows_subsystem = "windows")]
//! thin-desktop: the app office workers use at home on Windows and Linux.
//! `thin-desktop --demo` starts a relay, an office-PC host and a test
//! desktop inside the app and connects to them, so the whole flow can be
//! seen with no set-up.

mod monitors;
mod platform;
mod storage;

use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use clap::Parser;
use platform::NativePlatform;
use storage::Storage;
use ui::{Entry, Lang, Platform, Settings, ThinApp};

#[derive(Parser)]
#[command(version, about = "thin-desktop: reach your office PC")]
struct Cli {
    /// Start a demo relay, office PC and desktop inside the app and connect to it.
    #[arg(long)]
    demo: bool,
    /// Connect to this saved connection right away (e.g. from a desktop shortcut).
    #[arg(long, value_name = "NAME", conflicts_with = "demo")]
    connect: Option<String>,
    /// Language of the app (default: the system's).
    #[arg(long, value_parser = ["ja", "en"])]
    lang: Option<String>,
    /// Full screen over every monitor, each a screen of the remote desktop
    /// (as mstsc's /multimon); remembered in the settings.
    #[arg(long)]
    multimon: bool,
    /// Text on the demo office PC's clipboard when the session begins (for
    /// tests of the clipboard).
    #[arg(long, requires = "demo", hide = true)]
    demo_clipboard: Option<String>,
    /// Files on the demo office PC's clipboard when the session begins, as
    /// if copied in its Explorer (for tests of the clipboard).
    #[arg(
        long,
        requires = "demo",
        hide = true,
        conflicts_with = "demo_clipboard"
    )]
    demo_clipboard_file: Vec<std::path::PathBuf>,
}

struct DesktopApp(ThinApp);

impl eframe::App for DesktopApp {
    fn ui(&mut self, ui: &mut eframe::egui::Ui, _frame: &mut eframe::Frame) {
        self.0.show(ui);
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("thin-desktop: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to the storage folder (and to stderr when there is one).
fn init_logging(storage: &Storage) -> anyhow::Result<()> {
    std::fs::create_dir_all(&storage.dir)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(storage.log())?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,wgpu=warn,eframe=warn,egui_glow=warn".into());
    let file = Mutex::new(file);
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(move || -> Box<dyn std::io::Write> {
            Box::new(Tee(file.lock().map(|f| f.try_clone().ok()).ok().flatten()))
        })
        .init();
    Ok(())
}

/// Writes to the log file and to stderr.
struct Tee(Option<std::fs::File>);

impl std::io::Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(file) = &mut self.0 {
            file.write_all(buf)?;
        }
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    client_core::native::detect_keyboard(sys_locale::get_locale()).use_for_sessions();
    let runtime = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?,
    );
    // The demo keeps its state in a throwaway folder, never in the user's.
    let demo_dir = cli.demo.then(tempfile_dir).transpose()?;
    let storage = match &demo_dir {
        Some(dir) => Storage {
            dir: dir.clone(),
            portable: false,
        },
        None => Storage::locate(&exe),
    };
    if storage.portable {
        // Libraries below would cache in the home folder: keep it beside us.
        // SAFETY: no other thread runs yet.
        unsafe {
            std::env::set_var("XDG_CACHE_HOME", storage.cache());
            std::env::set_var("MESA_SHADER_CACHE_DIR", storage.cache().join("mesa"));
        }
    }
    init_logging(&storage)?;
    tracing::info!(dir = %storage.dir.display(), portable = storage.portable, "storage");

    let demo = if cli.demo {
        let options = demo::DemoOptions {
            desktop_clipboard: cli.demo_clipboard.clone(),
            desktop_files: cli.demo_clipboard_file.clone(),
            ..Default::default()
        };
        let demo = runtime.block_on(demo::Demo::start_with(options))?;
        // What the demo office PC sees (keys, clicks, pasted text), for
        // people trying the app and for tests.
        let mut seen = demo.desktop.subscribe();
        runtime.spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                match seen.recv().await {
                    Ok(echo) => println!("demo desktop: {echo}"),
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => break,
                }
            }
        });
        Some(Arc::new(demo))
    } else {
        None
    };
    let platform = NativePlatform::new(storage, runtime.clone(), demo.clone());
    if let Some(demo) = &demo {
        let settings = Settings {
            lang: cli.lang.as_deref().map(lang),
            relay: demo.relay.addr.clone(),
            relay_ca: demo.relay.ca.display().to_string(),
            width: 1024,
            height: 768,
            connections: vec![Entry {
                name: "Demo PC".into(),
                id: demo.id.clone(),
                user: demo.rdp.user.clone(),
                ..Entry::default()
            }],
            ..Settings::default()
        };
        platform
            .save_settings(&settings)
            .map_err(anyhow::Error::msg)?;
        println!(
            "demo: otp={} host_password={} windows_user={} windows_password={}",
            demo.current_otp(),
            demo.host_password,
            demo.rdp.user,
            demo.rdp.password
        );
    }

    let mut app = ThinApp::new(Box::new(platform));
    if let Some(choice) = cli.lang.as_deref() {
        app.set_lang(lang(choice));
    }
    if cli.multimon {
        app.use_all_monitors();
    }
    if demo.is_some() {
        app.connect_when_shown(0);
    }
    if let Some(name) = &cli.connect {
        let index = app
            .settings()
            .connections
            .iter()
            .position(|e| &e.name == name || e.id == name.to_ascii_lowercase())
            .ok_or_else(|| anyhow::anyhow!("there is no saved connection named {name:?}"))?;
        app.connect_when_shown(index);
    }
    let options = eframe::NativeOptions {
        viewport: eframe::egui::ViewportBuilder::default()
            .with_title("thin")
            .with_inner_size([1280.0, 860.0]),
        ..Default::default()
    };
    let result = eframe::run_native(
        "thin",
        options,
        Box::new(|_cc| Ok(Box::new(DesktopApp(app)))),
    );
    drop(demo);
    drop(demo_dir);
    result.map_err(|e| anyhow::anyhow!("cannot open the window: {e}"))
}

fn lang(choice: &str) -> Lang {
    if choice == "ja" {
        Lang::Ja
    } else {
        Lang::En
    }
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("thin-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
