//! The first run: with no config yet, the app walks the owner through the
//! computer ID, the relay, the host password and the one-time password, in
//! that order, and ends with what the person at home types.

use egui::{RichText, Ui};
use host::{HostConfig, InitOptions};

use super::{Notice, SettingsApp, BAD, GOOD};
use crate::texts::{fill, T};

/// Where the relay's CA is kept, beside the config (the service's sandbox
/// reads nothing in home folders).
const CA_BESIDE_CONFIG: &str = "relay-ca.pem";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Id,
    Relay,
    Password,
    Otp,
    Done,
}

pub(super) struct FirstRun {
    step: Step,
    id: String,
    relay: String,
    ca: String,
    target: String,
    error: Option<String>,
}

impl FirstRun {
    pub(super) fn new() -> Self {
        Self {
            step: Step::Id,
            id: String::new(),
            relay: String::new(),
            ca: String::new(),
            target: host::config::DEFAULT_TARGET.into(),
            error: None,
        }
    }
}

impl SettingsApp {
    /// Draws the step the owner is at.
    pub(super) fn first_run(&mut self, ui: &mut Ui) {
        let Some(run) = &self.first_run else {
            return;
        };
        let number = run.step as usize + 1;
        ui.heading(fill(self.t(T::FirstRunTitle), &[&number.to_string()]));
        ui.add_space(8.0);
        match run.step {
            Step::Id => self.id_step(ui),
            Step::Relay => self.relay_step(ui),
            Step::Password | Step::Otp | Step::Done => self.with_status(ui),
        }
    }

    fn id_step(&mut self, ui: &mut Ui) {
        let lang = self.lang;
        let Some(run) = &mut self.first_run else {
            return;
        };
        ui.label(T::FirstRunId.get(lang));
        ui::field(ui, T::ComputerId.get(lang), &mut run.id, false);
        ui.label(RichText::new(T::IdHelp.get(lang)).small());
        if let Some(error) = &run.error {
            ui.colored_label(BAD, error.as_str());
        }
        if ui.button(T::Next.get(lang)).clicked() {
            let id = run.id.trim().to_ascii_lowercase();
            match proto::ComputerId::parse(&id) {
                Ok(_) => {
                    run.id = id;
                    run.error = None;
                    run.step = Step::Relay;
                }
                Err(_) => run.error = Some(T::BadId.get(lang).into()),
            }
        }
    }

    fn relay_step(&mut self, ui: &mut Ui) {
        let lang = self.lang;
        let Some(run) = &mut self.first_run else {
            return;
        };
        ui.label(T::FirstRunRelay.get(lang));
        ui::field(ui, T::RelayAddress.get(lang), &mut run.relay, false);
        ui::field(ui, T::RelayCa.get(lang), &mut run.ca, false);
        ui::field(ui, T::RdpTarget.get(lang), &mut run.target, false);
        if let Some(error) = &run.error {
            ui.colored_label(BAD, error.as_str());
        }
        if ui.button(T::Next.get(lang)).clicked() {
            match init(&self.config, run) {
                Ok(()) => {
                    run.error = None;
                    run.step = Step::Password;
                    // The status now comes from the new files.
                    self.refreshed = None;
                    self.status = None;
                }
                Err(e) => run.error = Some(fill(T::InitFailed.get(lang), &[&format!("{e:#}")])),
            }
        }
    }

    /// The steps after the config exists: the owner's pages themselves.
    fn with_status(&mut self, ui: &mut Ui) {
        let Some(Ok(status)) = self.status.clone() else {
            ui.spinner();
            return;
        };
        let Some(step) = self.first_run.as_ref().map(|r| r.step) else {
            return;
        };
        match &self.notice {
            Some(Notice::Refused(why)) => {
                ui.colored_label(BAD, fill(self.t(T::Refused), &[why]));
            }
            Some(Notice::Saved) => {
                ui.colored_label(GOOD, self.t(T::Changed));
            }
            _ => {}
        }
        let next = match step {
            Step::Password => {
                ui.label(self.t(T::FirstRunPassword));
                self.host_password_page(ui, &status);
                status.password_set
            }
            Step::Otp => {
                ui.label(self.t(T::FirstRunOtp));
                self.otp_page(ui, &status);
                self.codes.is_empty() && self.enrolment.is_none()
            }
            _ => {
                self.done_step(ui, &status);
                return;
            }
        };
        ui.add_space(10.0);
        if ui
            .add_enabled(next, egui::Button::new(self.t(T::Next)))
            .clicked()
        {
            self.notice = None;
            if let Some(run) = &mut self.first_run {
                run.step = if step == Step::Password {
                    Step::Otp
                } else {
                    Step::Done
                };
            }
        }
    }

    fn done_step(&mut self, ui: &mut Ui, status: &host::local::Status) {
        ui.label(RichText::new(self.t(T::FirstRunDone)).strong());
        let otp = match status.otp.as_str() {
            "totp" => T::HomeOtpApp,
            "email" => T::HomeOtpMail,
            _ => T::HomeOtpNone,
        };
        egui::Frame::group(ui.style()).show(ui, |ui| {
            ui.label(
                RichText::new(fill(self.t(T::HomeId), &[&status.computer_id]))
                    .size(20.0)
                    .strong(),
            );
            ui.label(RichText::new(fill(self.t(T::HomeRelay), &[&status.relay])).monospace());
            ui.label(self.t(otp));
            ui.label(self.t(T::HomePassword));
        });
        ui.add_space(8.0);
        ui.label(self.t(T::ServiceHint));
        if ui.button(self.t(T::Done)).clicked() {
            self.first_run = None;
            self.page = super::Page::Status;
        }
    }
}

/// Writes the config and keys, with the relay's CA copied beside them.
fn init(config: &std::path::Path, run: &FirstRun) -> anyhow::Result<()> {
    let folder = config
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(folder)?;
    let ca_given = std::path::Path::new(run.ca.trim());
    let pem =
        std::fs::read(ca_given).map_err(|e| anyhow::anyhow!("{}: {e}", ca_given.display()))?;
    let ca = folder.join(CA_BESIDE_CONFIG);
    files::write_atomic(&ca, &pem, files::Mode::Public)?;
    let target = Some(run.target.trim().to_owned()).filter(|t| !t.is_empty());
    HostConfig::init(
        config,
        InitOptions {
            id: run.id.clone(),
            relay: run.relay.trim().to_owned(),
            relay_ca: ca,
            target,
            proxy: None,
            enrolment_token: None,
        },
    )?;
    Ok(())
}
