//! The settings app's screens: the status at a glance (always visible),
//! then the owner's pages — host password, one-time password, access list,
//! MAC allowlist, policies, settings password. Each change goes to the
//! running host over its local channel, or into the files when it is
//! stopped ([`host::local`]), on a worker thread so that the window never
//! waits on the host.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use egui::{Color32, RichText, Ui};
use host::access::{self, Action};
use host::local::{Applied, Change, MailSetup, Status};
use host::mail::SmtpTls;
use zeroize::Zeroizing;

use crate::texts::{fill, Lang, T};

mod first_run;

/// How often the status is asked anew.
const REFRESH: Duration = Duration::from_secs(2);
const GOOD: Color32 = Color32::from_rgb(0, 140, 60);
const BAD: Color32 = Color32::from_rgb(200, 40, 40);
const WARN: Color32 = Color32::from_rgb(200, 120, 0);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Status,
    HostPassword,
    Otp,
    Access,
    Mac,
    Policy,
    SettingsPassword,
}

impl Page {
    const ALL: [Page; 7] = [
        Page::Status,
        Page::HostPassword,
        Page::Otp,
        Page::Access,
        Page::Mac,
        Page::Policy,
        Page::SettingsPassword,
    ];

    fn title(self) -> T {
        match self {
            Page::Status => T::PageStatus,
            Page::HostPassword => T::PageHostPassword,
            Page::Otp => T::PageOtp,
            Page::Access => T::PageAccess,
            Page::Mac => T::PageMac,
            Page::Policy => T::PagePolicy,
            Page::SettingsPassword => T::PageSettingsPassword,
        }
    }
}

/// Work for the worker thread.
enum Job {
    Status,
    Unlock(Zeroizing<String>),
    Change(Option<Zeroizing<String>>, Change),
    TestMail(MailSetup),
}

enum Done {
    Status(Result<Status, String>),
    Unlock(Zeroizing<String>, Result<(), String>),
    Change(Change, Result<Applied, String>),
    TestMail(String, Result<(), String>),
}

struct Worker {
    jobs: mpsc::Sender<Job>,
    done: mpsc::Receiver<Done>,
    /// Jobs sent and not answered yet.
    waiting: usize,
    status_asked: bool,
}

impl Worker {
    fn start(config: PathBuf, ctx: egui::Context) -> Self {
        let (jobs, job_rx) = mpsc::channel::<Job>();
        let (done_tx, done) = mpsc::channel();
        std::thread::spawn(move || {
            let words = |e: anyhow::Error| format!("{e:#}");
            for job in job_rx {
                let done = match job {
                    Job::Status => Done::Status(host::local::status(&config).map_err(words)),
                    Job::Unlock(password) => {
                        let result = host::local::unlock(&config, Some(&password)).map_err(words);
                        Done::Unlock(password, result)
                    }
                    Job::Change(password, change) => {
                        let result = host::local::change(
                            &config,
                            password.as_deref().map(|p| p.as_str()),
                            &change,
                        )
                        .map_err(words);
                        Done::Change(change, result)
                    }
                    Job::TestMail(setup) => {
                        let result = host::local::test_mail(&config, &setup).map_err(words);
                        Done::TestMail(setup.to, result)
                    }
                };
                if done_tx.send(done).is_err() {
                    break;
                }
                ctx.request_repaint();
            }
        });
        Self {
            jobs,
            done,
            waiting: 0,
            status_asked: false,
        }
    }

    fn send(&mut self, job: Job) {
        if matches!(job, Job::Status) {
            self.status_asked = true;
        }
        if self.jobs.send(job).is_ok() {
            self.waiting += 1;
        }
    }
}

/// What the last action came to, shown above the page.
enum Notice {
    Saved,
    Refused(String),
    Text(String),
}

/// Mailed codes as entered, before they are tried or switched on.
struct MailForm {
    to: String,
    smtp: String,
    user: String,
    password: Zeroizing<String>,
    tls: SmtpTls,
    from: String,
}

impl Default for MailForm {
    fn default() -> Self {
        Self {
            to: String::new(),
            smtp: String::new(),
            user: String::new(),
            password: Zeroizing::default(),
            tls: SmtpTls::Starttls,
            from: String::new(),
        }
    }
}

impl MailForm {
    fn setup(&self) -> MailSetup {
        let from = if self.from.trim().is_empty() {
            format!("thin-host <{}>", self.to.trim())
        } else {
            self.from.clone()
        };
        MailSetup {
            to: self.to.clone(),
            smtp: self.smtp.clone(),
            smtp_user: Some(self.user.trim().to_owned()).filter(|u| !u.is_empty()),
            smtp_password: Some(self.password.to_string()).filter(|p| !p.is_empty()),
            smtp_tls: self.tls,
            from,
        }
    }
}

/// An authenticator enrolment waiting for its confirming code.
struct Enrolment {
    key: Vec<u8>,
    base32: String,
    /// The QR code's modules, row by row, and its width.
    qr: Option<(Vec<bool>, usize)>,
    code: String,
    wrong: bool,
}

pub struct SettingsApp {
    config: PathBuf,
    lang: Lang,
    fonts_installed: bool,
    worker: Option<Worker>,
    status: Option<Result<Status, String>>,
    refreshed: Option<f64>,
    page: Page,
    /// The settings password, once the host accepted it (memory only).
    unlocked: Option<Zeroizing<String>>,
    unlock_input: Zeroizing<String>,
    notice: Option<Notice>,
    password: Zeroizing<String>,
    password_again: Zeroizing<String>,
    enrolment: Option<Enrolment>,
    /// Emergency codes of the enrolment just made, shown once.
    codes: Vec<Zeroizing<String>>,
    codes_path: String,
    acl_priority: String,
    acl_network: String,
    acl_allow: bool,
    mac_input: String,
    syslog_input: Option<String>,
    new_settings_password: Zeroizing<String>,
    mail: MailForm,
    /// With no config yet: the steps that make one.
    first_run: Option<first_run::FirstRun>,
}

impl SettingsApp {
    pub fn new(config: PathBuf, lang: Lang) -> Self {
        let config_exists = config.exists();
        let codes_path = dirs_home()
            .join("thin-emergency-codes.txt")
            .display()
            .to_string();
        Self {
            config,
            lang,
            fonts_installed: false,
            worker: None,
            status: None,
            refreshed: None,
            page: Page::Status,
            unlocked: None,
            unlock_input: Zeroizing::default(),
            notice: None,
            password: Zeroizing::default(),
            password_again: Zeroizing::default(),
            enrolment: None,
            codes: Vec::new(),
            codes_path,
            acl_priority: "100".into(),
            acl_network: String::new(),
            acl_allow: false,
            mac_input: String::new(),
            syslog_input: None,
            new_settings_password: Zeroizing::default(),
            mail: MailForm::default(),
            first_run: (!config_exists).then(first_run::FirstRun::new),
        }
    }

    /// Where "Save as file" puts the emergency codes unless the owner
    /// types another path.
    pub fn set_codes_path(&mut self, path: &std::path::Path) {
        self.codes_path = path.display().to_string();
    }

    pub fn page(&self) -> Page {
        self.page
    }

    /// The key of an enrolment waiting for its code (what the owner types
    /// into the app by hand).
    pub fn enrolment_key(&self) -> Option<&str> {
        self.enrolment.as_ref().map(|e| e.base32.as_str())
    }

    /// Whether the worker has answered everything asked (tests wait on it).
    pub fn is_idle(&self) -> bool {
        self.worker.as_ref().is_none_or(|w| w.waiting == 0)
    }

    fn t(&self, text: T) -> &'static str {
        text.get(self.lang)
    }

    /// Draws the app; call once per frame.
    pub fn show(&mut self, ui: &mut Ui) {
        if !self.fonts_installed {
            ui.ctx().set_fonts(ui::fonts::definitions(Vec::new()));
            self.fonts_installed = true;
        }
        let ctx = ui.ctx().clone();
        if self.worker.is_none() {
            self.worker = Some(Worker::start(self.config.clone(), ctx.clone()));
        }
        // Results first: a change asks for the status anew in this frame.
        let now = ctx.input(|i| i.time);
        self.take_results();
        let Some(worker) = &mut self.worker else {
            return;
        };
        if !worker.status_asked
            && self
                .refreshed
                .is_none_or(|at| now - at >= REFRESH.as_secs_f64())
        {
            worker.send(Job::Status);
            self.refreshed = Some(now);
        }
        ctx.request_repaint_after(REFRESH);

        egui::Panel::top("top").show(ui, |ui| self.top_bar(ui));
        if self.first_run.is_some() {
            egui::CentralPanel::default_margins().show(ui, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| self.first_run(ui));
            });
            return;
        }
        egui::Panel::left("pages").show(ui, |ui| {
            for page in Page::ALL {
                if ui
                    .selectable_label(self.page == page, self.t(page.title()))
                    .clicked()
                {
                    self.page = page;
                    self.notice = None;
                }
            }
        });
        egui::CentralPanel::default_margins().show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| self.page_body(ui));
        });
    }

    fn top_bar(&mut self, ui: &mut Ui) {
        ui.horizontal(|ui| {
            ui.heading(self.t(T::Title));
            ui.separator();
            for choice in [Lang::Ja, Lang::En] {
                if ui
                    .selectable_label(self.lang == choice, choice.native_name())
                    .clicked()
                {
                    self.lang = choice;
                }
            }
            ui.separator();
            if ui.button(self.t(T::Refresh)).clicked() {
                self.refreshed = None;
            }
            if self.unlocked.is_some() && ui.button(self.t(T::Lock)).clicked() {
                self.unlocked = None;
            }
            if !self.is_idle() {
                ui.label(RichText::new(self.t(T::Working)).weak());
            }
        });
    }

    fn take_results(&mut self) {
        let Some(worker) = &mut self.worker else {
            return;
        };
        let results: Vec<Done> = worker.done.try_iter().collect();
        worker.waiting -= results.len();
        for done in results {
            match done {
                Done::Status(status) => {
                    if let Some(worker) = &mut self.worker {
                        worker.status_asked = false;
                    }
                    if let Ok(status) = &status {
                        self.syslog_input
                            .get_or_insert_with(|| status.syslog.clone().unwrap_or_default());
                    }
                    self.status = Some(status);
                }
                Done::Unlock(password, Ok(())) => {
                    self.unlocked = Some(password);
                    self.unlock_input = Zeroizing::default();
                    self.notice = None;
                }
                Done::Unlock(_, Err(why)) => self.notice = Some(Notice::Refused(why)),
                Done::Change(change, Ok(applied)) => self.changed(change, applied),
                Done::Change(_, Err(why)) => self.notice = Some(Notice::Refused(why)),
                Done::TestMail(to, Ok(())) => {
                    let sent = fill(self.t(T::TestMailSent), &[&to]);
                    self.notice = Some(Notice::Text(sent));
                }
                Done::TestMail(_, Err(why)) => self.notice = Some(Notice::Refused(why)),
            }
        }
    }

    fn changed(&mut self, change: Change, applied: Applied) {
        self.notice = Some(Notice::Saved);
        match change {
            Change::HostPassword { .. } => {
                self.password = Zeroizing::default();
                self.password_again = Zeroizing::default();
            }
            Change::TotpEnrol { .. } | Change::OtpEmail { .. } => {
                self.enrolment = None;
                self.mail.password = Zeroizing::default();
                self.codes = applied
                    .emergency_codes
                    .into_iter()
                    .map(Zeroizing::new)
                    .collect();
            }
            Change::SettingsPassword { new } => {
                self.unlocked = new.map(Zeroizing::new);
                self.new_settings_password = Zeroizing::default();
            }
            Change::AclAdd { .. } => self.acl_network.clear(),
            Change::MacAllow { .. } => self.mac_input.clear(),
            _ => {}
        }
        // Show what the host has now.
        self.refreshed = None;
    }

    fn send(&mut self, change: Change) {
        self.notice = None;
        let password = self.unlocked.clone();
        if let Some(worker) = &mut self.worker {
            worker.send(Job::Change(password, change));
        }
    }

    fn page_body(&mut self, ui: &mut Ui) {
        ui.heading(self.t(self.page.title()));
        match &self.notice {
            Some(Notice::Saved) => {
                ui.colored_label(GOOD, self.t(T::Changed));
            }
            Some(Notice::Refused(why)) => {
                ui.colored_label(BAD, fill(self.t(T::Refused), &[why]));
            }
            Some(Notice::Text(text)) => {
                ui.colored_label(WARN, text.as_str());
            }
            None => {}
        }
        let status = match &self.status {
            None => {
                ui.spinner();
                return;
            }
            Some(Err(why)) => {
                ui.colored_label(BAD, fill(self.t(T::StatusUnreadable), &[why]));
                return;
            }
            Some(Ok(status)) => status.clone(),
        };
        if self.page == Page::Status {
            self.status_page(ui, &status);
            return;
        }
        if status.settings_locked && self.unlocked.is_none() {
            self.unlock_form(ui);
            return;
        }
        match self.page {
            Page::Status => {}
            Page::HostPassword => self.host_password_page(ui, &status),
            Page::Otp => self.otp_page(ui, &status),
            Page::Access => self.access_page(ui, &status),
            Page::Mac => self.mac_page(ui, &status),
            Page::Policy => self.policy_page(ui, &status),
            Page::SettingsPassword => self.settings_password_page(ui, &status),
        }
    }

    fn status_page(&mut self, ui: &mut Ui, status: &Status) {
        let (colour, state) = match (status.running, status.online) {
            (_, true) => (
                GOOD,
                fill(
                    self.t(T::Online),
                    &[
                        status.node.as_deref().unwrap_or(&status.relay),
                        status.since.as_deref().unwrap_or("?"),
                    ],
                ),
            ),
            (true, false) => match &status.problem {
                Some(problem) => (
                    BAD,
                    fill(
                        self.t(T::Offline),
                        &[status.since.as_deref().unwrap_or("?"), problem],
                    ),
                ),
                None => (WARN, self.t(T::Connecting).to_owned()),
            },
            (false, false) => (BAD, self.t(T::NotRunning).to_owned()),
        };
        egui::Grid::new("status").num_columns(2).show(ui, |ui| {
            ui.label(self.t(T::ComputerId));
            ui.label(RichText::new(&status.computer_id).monospace().strong());
            ui.end_row();
            ui.label(self.t(T::Relay));
            ui.label(RichText::new(&status.relay).monospace());
            ui.end_row();
            ui.label(self.t(T::State));
            ui.label(RichText::new(state).color(colour).strong());
            ui.end_row();
            ui.label(self.t(T::SessionsNow));
            ui.label(status.sessions_now.to_string());
            ui.end_row();
        });
        ui.add_space(6.0);
        ui.label(self.t(T::Fingerprint));
        ui.label(RichText::new(&status.fingerprint).monospace());
        ui.add_space(10.0);
        ui.label(RichText::new(self.t(T::Recent)).strong());
        if status.recent.is_empty() {
            ui.label(self.t(T::NoRecent));
            return;
        }
        egui::Grid::new("recent").striped(true).show(ui, |ui| {
            for heading in [T::Time, T::Source, T::Step, T::Result] {
                ui.label(RichText::new(self.t(heading)).strong());
            }
            ui.end_row();
            for event in &status.recent {
                ui.label(RichText::new(&event.time).monospace());
                ui.label(RichText::new(&event.source).monospace());
                ui.label(&event.step);
                let colour = if event.result == "ok" { GOOD } else { BAD };
                ui.colored_label(colour, &event.result);
                ui.end_row();
            }
        });
    }

    fn unlock_form(&mut self, ui: &mut Ui) {
        ui.label(self.t(T::Locked));
        let label = self.t(T::EnterSettingsPassword);
        let field = ui::field(ui, label, &mut self.unlock_input, true);
        let enter = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        if (ui.button(self.t(T::Unlock)).clicked() || enter) && !self.unlock_input.is_empty() {
            let password = self.unlock_input.clone();
            if let Some(worker) = &mut self.worker {
                worker.send(Job::Unlock(password));
            }
        }
    }

    fn host_password_page(&mut self, ui: &mut Ui, status: &Status) {
        let (colour, state) = if status.password_set {
            (GOOD, T::PasswordIsSet)
        } else {
            (BAD, T::PasswordNotSet)
        };
        ui.colored_label(colour, self.t(state));
        ui.label(RichText::new(self.t(T::PasswordRule)).small());
        ui::field(ui, self.t(T::NewPassword), &mut self.password, true);
        ui::field(ui, self.t(T::Again), &mut self.password_again, true);
        // The rule, checked as the person types (the host checks again).
        let verdict = if self.password.is_empty() {
            None
        } else {
            Some(host::admin::check_new_password(
                &self.password,
                &status.computer_id,
            ))
        };
        let mut ready = false;
        match verdict {
            None => {}
            Some(Err(why)) => {
                ui.colored_label(BAD, fill(self.t(T::PasswordWeak), &[&why]));
            }
            Some(Ok(())) if *self.password != *self.password_again => {
                ui.colored_label(GOOD, self.t(T::PasswordStrong));
                if !self.password_again.is_empty() {
                    ui.colored_label(BAD, self.t(T::PasswordsDiffer));
                }
            }
            Some(Ok(())) => {
                ui.colored_label(GOOD, self.t(T::PasswordStrong));
                ready = true;
            }
        }
        if ui
            .add_enabled(ready, egui::Button::new(self.t(T::Save)))
            .clicked()
        {
            let password = self.password.to_string();
            self.send(Change::HostPassword { password });
        }
    }

    fn otp_page(&mut self, ui: &mut Ui, status: &Status) {
        let codes = status.emergency_codes.to_string();
        let now = match status.otp.as_str() {
            "totp" => fill(self.t(T::OtpTotp), &[&codes]),
            "email" => fill(self.t(T::OtpEmail), &[&codes]),
            _ => self.t(T::OtpOff).to_owned(),
        };
        ui.label(now);
        if !self.codes.is_empty() {
            self.emergency_codes(ui);
            return;
        }
        match &mut self.enrolment {
            None => {
                ui.horizontal(|ui| {
                    if ui.button(self.t(T::SetUpAuthenticator)).clicked() {
                        self.enrolment = Some(new_enrolment(&status.computer_id));
                        self.notice = None;
                    }
                    if status.otp != "off" && ui.button(self.t(T::TurnOff)).clicked() {
                        self.send(Change::OtpOff);
                    }
                });
            }
            Some(_) => self.enrolment_steps(ui),
        }
        if self.enrolment.is_none() {
            ui.separator();
            self.mail_form(ui);
        }
    }

    fn mail_form(&mut self, ui: &mut Ui) {
        let lang = self.lang;
        let t = |text: T| text.get(lang);
        ui.label(RichText::new(t(T::MailTitle)).strong());
        let form = &mut self.mail;
        ui::field(ui, t(T::MailTo), &mut form.to, false);
        ui::field(ui, t(T::MailServer), &mut form.smtp, false);
        ui.horizontal(|ui| {
            ui.radio_value(&mut form.tls, SmtpTls::Starttls, t(T::TlsStarttls));
            ui.radio_value(&mut form.tls, SmtpTls::Tls, t(T::TlsTls));
            ui.radio_value(&mut form.tls, SmtpTls::None, t(T::TlsNone));
        });
        ui::field(ui, t(T::MailUser), &mut form.user, false);
        ui::field(ui, t(T::MailPassword), &mut form.password, true);
        ui::field(ui, t(T::MailFrom), &mut form.from, false);
        let (mut test, mut turn_on) = (false, false);
        ui.horizontal(|ui| {
            test = ui.button(t(T::SendTestMail)).clicked();
            turn_on = ui.button(t(T::TurnOnMail)).clicked();
        });
        let setup = self.mail.setup();
        if test {
            self.notice = None;
            if let Some(worker) = &mut self.worker {
                worker.send(Job::TestMail(setup));
            }
        } else if turn_on {
            self.send(Change::OtpEmail { settings: setup });
        }
    }

    fn enrolment_steps(&mut self, ui: &mut Ui) {
        let lang = self.lang;
        let Some(enrolment) = &mut self.enrolment else {
            return;
        };
        ui.label(T::ScanThis.get(lang));
        if let Some((modules, width)) = &enrolment.qr {
            draw_qr(ui, modules, *width);
        }
        ui.horizontal(|ui| {
            ui.label(T::Key.get(lang));
            ui.label(
                RichText::new(grouped(&enrolment.base32))
                    .monospace()
                    .strong(),
            );
        });
        ui.add_space(6.0);
        ui.label(T::EnterCurrentCode.get(lang));
        ui::field(ui, T::Code.get(lang), &mut enrolment.code, false);
        if enrolment.wrong {
            ui.colored_label(BAD, T::CodeDoesNotMatch.get(lang));
        }
        let mut turn_on = false;
        ui.horizontal(|ui| {
            turn_on = ui.button(T::TurnOn.get(lang)).clicked();
            if ui.button(T::Done.get(lang)).clicked() {
                self.enrolment = None;
            }
        });
        let Some(enrolment) = &mut self.enrolment else {
            return;
        };
        if turn_on {
            // Checked here to say so at once; the host checks again.
            let candidate = host::secrets::TotpSecret {
                secret: enrolment.key.clone(),
                last_step: 0,
            };
            let now = std::time::SystemTime::now();
            enrolment.wrong = !matches!(
                host::otp::check_totp(&candidate, &enrolment.code, now),
                host::otp::TotpCheck::Accepted { .. }
            );
            if !enrolment.wrong {
                let change = Change::TotpEnrol {
                    secret: enrolment.base32.clone(),
                    code: enrolment.code.trim().to_owned(),
                };
                self.send(change);
            }
        }
    }

    fn emergency_codes(&mut self, ui: &mut Ui) {
        ui.colored_label(WARN, self.t(T::EmergencyTitle));
        for code in &self.codes {
            ui.label(RichText::new(code.as_str()).monospace().size(18.0));
        }
        ui.horizontal(|ui| {
            ui.add(egui::TextEdit::singleline(&mut self.codes_path).desired_width(360.0));
            if ui.button(self.t(T::SaveAs)).clicked() {
                self.notice = Some(match self.save_codes() {
                    Ok(path) => Notice::Text(fill(self.t(T::SavedTo), &[&path])),
                    Err(why) => Notice::Refused(why),
                });
            }
            if ui.button(self.t(T::Print)).clicked() {
                self.notice = Some(match self.save_codes().and_then(|path| print(&path)) {
                    Ok(()) => Notice::Text(self.t(T::Printed).to_owned()),
                    Err(why) => Notice::Refused(why),
                });
            }
        });
        if ui.button(self.t(T::Done)).clicked() {
            self.codes.clear();
        }
    }

    /// Writes the codes to the chosen file, readable by this user only.
    fn save_codes(&self) -> Result<String, String> {
        let mut text = format!("{}\n\n", self.t(T::EmergencyTitle));
        if let Some(Ok(status)) = &self.status {
            text.push_str(&format!(
                "{}: {}\n\n",
                self.t(T::ComputerId),
                status.computer_id
            ));
        }
        for code in &self.codes {
            text.push_str(code.as_str());
            text.push('\n');
        }
        let path = PathBuf::from(self.codes_path.trim());
        files::write_atomic(&path, text.as_bytes(), files::Mode::Secret)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path.display().to_string())
    }

    fn access_page(&mut self, ui: &mut Ui, status: &Status) {
        let mut remove = None;
        egui::Grid::new("acl").striped(true).show(ui, |ui| {
            for heading in [T::Priority, T::Action, T::Network] {
                ui.label(RichText::new(self.t(heading)).strong());
            }
            ui.end_row();
            for rule in &status.acl {
                ui.label(rule.priority.to_string());
                ui.label(self.t(match rule.action {
                    Action::Allow => T::Allow,
                    Action::Deny => T::Deny,
                }));
                ui.label(RichText::new(rule.cidr.to_string()).monospace());
                if ui.button(self.t(T::Remove)).clicked() {
                    remove = Some(rule.priority);
                }
                ui.end_row();
            }
        });
        ui.label(RichText::new(self.t(T::AnythingElse)).italics());
        if let Some(priority) = remove {
            self.send(Change::AclRemove { priority });
        }
        ui.separator();
        ui::field(ui, self.t(T::Priority), &mut self.acl_priority, false);
        let (allow, deny) = (self.t(T::Allow), self.t(T::Deny));
        ui.horizontal(|ui| {
            ui.radio_value(&mut self.acl_allow, true, allow);
            ui.radio_value(&mut self.acl_allow, false, deny);
        });
        ui::field(ui, self.t(T::NewNetwork), &mut self.acl_network, false);
        if ui.button(self.t(T::Add)).clicked() {
            let network = self.acl_network.trim().to_owned();
            match (
                self.acl_priority.trim().parse::<u32>(),
                access::parse_cidr(&network),
            ) {
                (Err(_), _) => self.notice = Some(Notice::Refused(self.t(T::BadPriority).into())),
                (_, Err(_)) => {
                    let why = fill(self.t(T::BadNetwork), &[&network]);
                    self.notice = Some(Notice::Refused(why));
                }
                (Ok(priority), Ok(_)) => {
                    let action = if self.acl_allow {
                        Action::Allow
                    } else {
                        Action::Deny
                    };
                    self.send(Change::AclAdd {
                        priority,
                        action,
                        network,
                    });
                }
            }
        }
    }

    fn mac_page(&mut self, ui: &mut Ui, status: &Status) {
        ui.label(self.t(T::MacHelp));
        let mut remove = None;
        for mac in &status.mac_allow {
            ui.horizontal(|ui| {
                ui.label(RichText::new(mac).monospace());
                if ui.button(self.t(T::Remove)).clicked() {
                    remove = Some(mac.clone());
                }
            });
        }
        if let Some(mac) = remove {
            self.send(Change::MacRemove { mac });
        }
        ui.separator();
        ui::field(ui, "MAC", &mut self.mac_input, false);
        if ui.button(self.t(T::Add)).clicked() {
            let mac = self.mac_input.trim().to_owned();
            match access::parse_mac(&mac) {
                Ok(mac) => self.send(Change::MacAllow { mac }),
                Err(_) => {
                    let why = fill(self.t(T::BadMac), &[&mac]);
                    self.notice = Some(Notice::Refused(why));
                }
            }
        }
    }

    fn policy_page(&mut self, ui: &mut Ui, status: &Status) {
        ui.label(RichText::new(self.t(T::PolicyNext)).italics());
        let mut switches = [
            (T::PolicyShare, status.share),
            (T::PolicyClipboard, status.clipboard),
            (T::PolicyAudio, status.audio),
            (T::PolicyRaw, status.raw),
            (T::PolicyNla, status.require_nla),
        ];
        let mut flipped = None;
        for (i, (text, on)) in switches.iter_mut().enumerate() {
            if ui.checkbox(on, self.t(*text)).changed() {
                flipped = Some((i, *on));
            }
        }
        if let Some((i, on)) = flipped {
            let set = |n: usize| (n == i).then_some(on);
            self.send(Change::Policy {
                share: set(0),
                clipboard: set(1),
                audio: set(2),
                raw: set(3),
                require_nla: set(4),
            });
        }
        ui.separator();
        let mut syslog = self.syslog_input.clone().unwrap_or_default();
        ui::field(ui, self.t(T::Syslog), &mut syslog, false);
        self.syslog_input = Some(syslog.clone());
        if ui.button(self.t(T::Apply)).clicked() {
            let target = Some(syslog.trim().to_owned()).filter(|s| !s.is_empty());
            self.send(Change::Syslog { target });
        }
    }

    fn settings_password_page(&mut self, ui: &mut Ui, status: &Status) {
        ui.label(self.t(T::SettingsPasswordHelp));
        ui::field(
            ui,
            self.t(T::NewPassword),
            &mut self.new_settings_password,
            true,
        );
        let long_enough =
            self.new_settings_password.chars().count() >= host::local::MIN_SETTINGS_PASSWORD;
        if !self.new_settings_password.is_empty() && !long_enough {
            ui.colored_label(BAD, self.t(T::SettingsPasswordShort));
        }
        ui.horizontal(|ui| {
            if ui
                .add_enabled(long_enough, egui::Button::new(self.t(T::Save)))
                .clicked()
            {
                let new = Some(self.new_settings_password.to_string());
                self.send(Change::SettingsPassword { new });
            }
            if status.settings_locked && ui.button(self.t(T::RemoveSettingsPassword)).clicked() {
                self.send(Change::SettingsPassword { new: None });
            }
        });
    }
}

/// A new key for an authenticator, with its QR code.
fn new_enrolment(computer_id: &str) -> Enrolment {
    let key = host::otp::new_totp_secret().secret;
    let uri = host::otp::totp_uri(&key, computer_id);
    let qr = qrcode::QrCode::new(uri.as_bytes()).ok().map(|code| {
        let width = code.width();
        let modules = code
            .to_colors()
            .into_iter()
            .map(|c| c == qrcode::Color::Dark)
            .collect();
        (modules, width)
    });
    Enrolment {
        base32: host::otp::totp_secret_base32(&key),
        key,
        qr,
        code: String::new(),
        wrong: false,
    }
}

/// The QR code, black on white with its quiet zone, 4 points a module.
fn draw_qr(ui: &mut Ui, modules: &[bool], width: usize) {
    const MODULE: f32 = 4.0;
    const QUIET: usize = 4;
    let side = (width + 2 * QUIET) as f32 * MODULE;
    let (rect, _) = ui.allocate_exact_size(egui::vec2(side, side), egui::Sense::hover());
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 0.0, Color32::WHITE);
    for (i, dark) in modules.iter().enumerate() {
        if *dark {
            let (x, y) = ((i % width + QUIET) as f32, (i / width + QUIET) as f32);
            let min = rect.min + egui::vec2(x * MODULE, y * MODULE);
            let module = egui::Rect::from_min_size(min, egui::vec2(MODULE, MODULE));
            painter.rect_filled(module, 0.0, Color32::BLACK);
        }
    }
}

/// `ABCDEFGH…` as `ABCD EFGH …`, easier to type.
fn grouped(key: &str) -> String {
    key.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Sends the file to the system's printer.
fn print(path: &str) -> Result<(), String> {
    let mut command = if cfg!(windows) {
        let mut c = std::process::Command::new("notepad");
        c.arg("/p");
        c
    } else {
        std::process::Command::new("lp")
    };
    let status = command
        .arg(path)
        .status()
        .map_err(|e| format!("cannot start the print command: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the print command failed ({status})"))
    }
}

fn dirs_home() -> PathBuf {
    std::env::var_os(if cfg!(windows) { "USERPROFILE" } else { "HOME" })
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_grouped_by_four() {
        assert_eq!(grouped("ABCDEFGHIJ"), "ABCD EFGH IJ");
    }
}
