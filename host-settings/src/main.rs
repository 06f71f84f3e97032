//! `thin-host-settings [--config PATH] [--lang ja|en]`: the settings window.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use host_settings::texts::Lang;
use host_settings::SettingsApp;

#[derive(Parser)]
#[command(
    version,
    about = "thin-host settings: status and the owner's settings of this office PC"
)]
struct Cli {
    /// The host's config (the service's, by default).
    #[arg(long, default_value_os_t = host::system_service::system_config())]
    config: PathBuf,
    /// The language (default: the system's).
    #[arg(long, value_parser = ["ja", "en"])]
    lang: Option<String>,
}

struct Window(SettingsApp);

impl eframe::App for Window {
    fn ui(&mut self, ui: &mut eframe::egui::Ui, _frame: &mut eframe::Frame) {
        self.0.show(ui);
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let lang = match cli.lang.as_deref() {
        Some("ja") => Lang::Ja,
        Some(_) => Lang::En,
        None => Lang::from_locale(&sys_locale::get_locale().unwrap_or_default()),
    };
    let app = SettingsApp::new(cli.config, lang);
    let options = eframe::NativeOptions {
        viewport: eframe::egui::ViewportBuilder::default()
            .with_title("thin-host settings")
            .with_inner_size([960.0, 720.0]),
        ..Default::default()
    };
    match eframe::run_native(
        "thin-host-settings",
        options,
        Box::new(|_cc| Ok(Box::new(Window(app)))),
    ) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("thin-host-settings: cannot open the window: {e}");
            ExitCode::FAILURE
        }
    }
}
