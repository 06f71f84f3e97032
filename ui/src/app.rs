//! The app's screens and what moves between them. Written once for the
//! desktop and the browser; everything platform-specific goes through
//! [`Platform`].

use std::sync::Arc;

use client_core::driver::{Command, Handle, UiEvent};
use client_core::interaction::OtpWrong;
use client_core::{
    Admission, Answer, ConnectError, MonitorLayout, OtpKind, Progress, Prompt, RdpCredentials,
};
use egui::{Color32, RichText, Ui};
use zeroize::Zeroizing;

use crate::errors::explain;
use crate::i18n::{fill, Lang, T};
use crate::platform::{Availability, Platform, Portable};
use crate::session::{Lasting, SessionView, Span};
use crate::settings::{Entry, Settings};

pub struct ThinApp {
    platform: Box<dyn Platform>,
    settings: Settings,
    screen: Screen,
    /// A one-line message above the current screen (saved, load failed …).
    notice: Option<String>,
    fonts_installed: bool,
    /// The window title last set (set again only when it changes).
    title: String,
    pending_connect: Option<usize>,
    /// The computer ID typed in the quick-connect field.
    quick_id: String,
    quick_focused: bool,
    /// The window's full-screen mode as the connection screen last had it:
    /// whichever way that screen is left (ended, cancelled while
    /// reconnecting), the window goes back to normal.
    window_shown: crate::session::WindowMode,
}

enum Screen {
    List,
    Edit {
        index: Option<usize>,
        draft: Entry,
        error: Option<T>,
    },
    Settings {
        draft: Settings,
        status: Option<String>,
    },
    Connection(Box<Connection>),
}

/// How long a disconnect may take before the app goes back to the list
/// without waiting for the session to end (seconds).
const LEAVE_WAIT: f64 = 2.0;

/// One connection, from the first step to its end.
struct Connection {
    entry: Entry,
    handle: Handle,
    reached: Vec<Progress>,
    otp_asked: bool,
    form: Option<PromptForm>,
    admission: Option<Admission>,
    session: Option<SessionView>,
    outcome: Option<Result<(), ConnectError>>,
    confirm_pin: bool,
    pin_removed: bool,
    /// The user asked to disconnect (when, in egui's clock): the session
    /// is given [`LEAVE_WAIT`] to close gracefully.
    leaving: Option<f64>,
    /// The path broke and the connection is being opened again: the
    /// attempt under way.
    reconnecting: Option<u32>,
    /// The mute switch, whether this computer can play sound at all, and
    /// full screen (over every monitor or not).
    lasting: Lasting,
    /// Full screen over every monitor, where the person asked for it and
    /// has several.
    span: Option<Span>,
    /// The session began over every monitor: the window goes there as the
    /// first picture arrives.
    start_spanned: bool,
    /// Files through the clipboard.
    files: crate::files::FileClipboard,
}

/// A question from the connection with what the user has typed so far.
struct PromptForm {
    prompt: Prompt,
    text: String,
    user: String,
    domain: String,
    emergency: bool,
    /// The keyboard focus was put on this question.
    focused: bool,
}

impl PromptForm {
    fn new(prompt: Prompt) -> Self {
        let (user, domain) = match &prompt {
            Prompt::RemoteLogon { user, domain } => {
                (user.clone(), domain.clone().unwrap_or_default())
            }
            _ => Default::default(),
        };
        Self {
            prompt,
            text: String::new(),
            user,
            domain,
            emergency: false,
            focused: false,
        }
    }

    fn answer(&mut self) -> Answer {
        let text = Zeroizing::new(std::mem::take(&mut self.text).trim().to_owned());
        match &self.prompt {
            Prompt::NewHostKey { .. } => Answer::Accept,
            Prompt::Otp { .. } if self.emergency => Answer::EmergencyCode(text),
            Prompt::Otp { .. } => Answer::Otp(text),
            Prompt::HostPassword { .. } => Answer::Secret(text),
            Prompt::RemoteLogon { .. } => Answer::Logon {
                user: self.user.trim().to_owned(),
                password: text,
                domain: Some(self.domain.trim().to_owned()).filter(|d| !d.is_empty()),
            },
        }
    }
}

/// A text field tied to its label (so screen readers and tests find it).
pub fn field(ui: &mut Ui, label: &str, value: &mut String, secret: bool) -> egui::Response {
    ui.horizontal(|ui| {
        let salt = label;
        let label = ui.label(label);
        ui.add(
            egui::TextEdit::singleline(value)
                .id_salt(salt)
                .password(secret)
                .desired_width(280.0),
        )
        .labelled_by(label.id)
    })
    .inner
}

impl ThinApp {
    pub fn new(platform: Box<dyn Platform>) -> Self {
        let (settings, notice) = match platform.load_settings() {
            Ok(settings) => (settings, None),
            // A damaged file is kept as it is (never overwritten unasked).
            Err(e) => (Settings::default(), Some(e)),
        };
        Self {
            platform,
            settings,
            screen: Screen::List,
            notice,
            fonts_installed: false,
            title: String::new(),
            pending_connect: None,
            quick_id: String::new(),
            quick_focused: false,
            window_shown: Default::default(),
        }
    }

    pub fn lang(&self) -> Lang {
        self.settings
            .lang
            .unwrap_or_else(|| Lang::from_locale(&self.platform.locale()))
    }

    /// Chooses the language for this run (without saving it).
    pub fn set_lang(&mut self, lang: Lang) {
        self.settings.lang = Some(lang);
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Full screen over every monitor from now on (remembered, as when set
    /// on the settings screen).
    pub fn use_all_monitors(&mut self) {
        if !self.settings.all_monitors {
            self.settings.all_monitors = true;
            self.persist();
        }
    }

    fn t(&self, text: T) -> &'static str {
        text.get(self.lang())
    }

    /// The window (or browser tab) title: the computer ID and, while
    /// connecting, the step that waits for the user.
    pub fn title(&self) -> &str {
        &self.title
    }

    fn current_title(&self) -> String {
        let Screen::Connection(c) = &self.screen else {
            return self.t(T::AppTitle).to_owned();
        };
        let step = match (&c.outcome, &c.form, &c.session) {
            (Some(Err(e)), _, _) => crate::errors::explain(e, self.lang()).what,
            (Some(Ok(())), _, _) => self.t(T::SessionEnded).to_owned(),
            (None, Some(form), _) => self
                .t(match form.prompt {
                    Prompt::NewHostKey { .. } => T::NewKeyTitle,
                    Prompt::Otp { .. } => T::StepOtp,
                    Prompt::HostPassword { .. } => T::StepPassword,
                    Prompt::RemoteLogon { .. } => T::StepLogon,
                })
                .to_owned(),
            (None, None, Some(_)) => return format!("{} — thin", c.entry.id),
            (None, None, None) => {
                return format!("{} — thin", fill(self.t(T::ConnectingTo), &[&c.entry.id]))
            }
        };
        format!("{step} — {} — thin", c.entry.id)
    }

    /// Draws the app; call once per frame.
    pub fn show(&mut self, ui: &mut Ui) {
        if !self.fonts_installed {
            // Applies to this pass already: nothing was laid out yet.
            ui.ctx()
                .set_fonts(crate::fonts::definitions(self.platform.fonts()));
            self.fonts_installed = true;
        }
        if let Some(i) = self.pending_connect.take() {
            self.connect(i, ui.ctx());
        }
        self.pump_events(ui.ctx());
        let title = self.current_title();
        if title != self.title {
            ui.ctx()
                .send_viewport_cmd(egui::ViewportCommand::Title(title.clone()));
            self.title = title;
        }

        let in_session = matches!(&self.screen, Screen::Connection(c) if c.session.is_some() && c.outcome.is_none());
        // Ctrl+Plus in a session is for the remote PC (and zooming here
        // would move a window placed over every monitor).
        ui.ctx().options_mut(|o| o.zoom_with_keyboard = !in_session);
        if !in_session {
            egui::Panel::top("top").show(ui, |ui| self.top_bar(ui));
        }
        // The remote picture reaches the window's edges (pixel for pixel
        // over every monitor in full screen).
        let panel = match in_session {
            true => egui::CentralPanel::no_frame(),
            false => egui::CentralPanel::default_margins(),
        };
        panel.show(ui, |ui| {
            if let Some(notice) = &self.notice {
                ui.colored_label(Color32::from_rgb(200, 120, 0), notice.as_str());
            }
            match std::mem::replace(&mut self.screen, Screen::List) {
                Screen::List => self.list(ui),
                Screen::Edit {
                    index,
                    draft,
                    error,
                } => self.edit(ui, index, draft, error),
                Screen::Settings { draft, status } => self.settings_screen(ui, draft, status),
                Screen::Connection(conn) => self.connection(ui, conn),
            }
        });
        match &self.screen {
            Screen::Connection(c) => self.window_shown = c.lasting.window.clone(),
            _ => crate::session::leave_fullscreen(ui.ctx(), &mut self.window_shown),
        }
    }

    fn top_bar(&mut self, ui: &mut Ui) {
        ui.horizontal(|ui| {
            ui.heading(self.t(T::AppTitle));
            if let Some(demo) = self.platform.demo() {
                ui.separator();
                ui.label(RichText::new(self.t(T::Demo)).strong());
                let codes = fill(
                    self.t(T::DemoCodes),
                    &[&demo.otp, &demo.host_password, &demo.user, &demo.password],
                );
                ui.label(RichText::new(codes).monospace());
            }
        });
    }

    fn pump_events(&mut self, ctx: &egui::Context) {
        let lang = self.lang();
        let Screen::Connection(conn) = &mut self.screen else {
            return;
        };
        while let Ok(event) = conn.handle.events.try_recv() {
            log_event(&event);
            match event {
                UiEvent::Progress(step) => {
                    if step == Progress::OtpAccepted {
                        conn.otp_asked = true;
                    }
                    conn.reached.push(step);
                }
                UiEvent::Ask(prompt) => {
                    if matches!(prompt, Prompt::Otp { .. }) {
                        conn.otp_asked = true;
                    }
                    conn.form = Some(PromptForm::new(prompt));
                }
                UiEvent::Admitted(admission) => conn.admission = Some(admission),
                UiEvent::Reconnecting { attempt, .. } => {
                    // Back to the steps: the office PC may ask again.
                    conn.reconnecting = Some(attempt);
                    conn.session = None;
                    // The next connection says again whether it has sound.
                    conn.lasting.sound.unavailable = false;
                    conn.reached.clear();
                    conn.otp_asked = false;
                    conn.form = None;
                }
                UiEvent::Connected { width, height } => {
                    conn.reconnecting = None;
                    let first = !self.settings.fullscreen_hint_seen;
                    let follow = !self.settings.fixed_size;
                    let mut view =
                        SessionView::new(width, height, follow, first, conn.span.clone());
                    if std::mem::take(&mut conn.start_spanned) {
                        let send = |command| {
                            let _ = conn.handle.commands.send(command);
                        };
                        view.set_fullscreen(ctx, &mut conn.lasting.window, true, &send);
                    }
                    conn.session = Some(view);
                    if first {
                        self.settings.fullscreen_hint_seen = true;
                        let _ = self.platform.save_settings(&self.settings);
                    }
                }
                UiEvent::Frame => {
                    if let Some(view) = &mut conn.session {
                        view.upload(ctx, &conn.handle.frame);
                    }
                }
                // egui hands it to the platform's clipboard (the system's on
                // the desktop, the browser's Clipboard API on the web).
                UiEvent::RemoteClipboard(text) => ctx.copy_text(text),
                UiEvent::RemoteImage(png) => match proto::clipboard::rgba_from_png(&png) {
                    Ok((width, height, rgba)) => {
                        let size = [width as usize, height as usize];
                        ctx.copy_image(egui::ColorImage::from_rgba_unmultiplied(size, &rgba));
                    }
                    Err(e) => tracing::warn!("the remote picture cannot be decoded: {e}"),
                },
                UiEvent::ImageNotPasted(why) => {
                    if let Some(view) = &mut conn.session {
                        let text = match why {
                            None => T::ImageNoClipboard.get(lang).to_owned(),
                            Some(why) => fill(T::ImageUnreadable.get(lang), &[&why]),
                        };
                        view.notify(ctx, text);
                    }
                }
                UiEvent::ClipboardTooLarge {
                    bytes,
                    outgoing,
                    picture,
                } => {
                    if let Some(view) = &mut conn.session {
                        let text = match (outgoing, picture) {
                            (true, false) => T::ClipboardTooLargeOut,
                            (false, false) => T::ClipboardTooLargeIn,
                            (true, true) => T::ImageTooLargeOut,
                            (false, true) => T::ImageTooLargeIn,
                        };
                        let megabytes = crate::files::megabytes(bytes as u64);
                        view.notify(ctx, fill(text.get(lang), &[&megabytes]));
                    }
                }
                UiEvent::PasteTooLongToType { chars } => {
                    if let Some(view) = &mut conn.session {
                        let max = client_core::rdp::MAX_TYPED_CHARS.to_string();
                        let text =
                            fill(T::PasteTooLongToType.get(lang), &[&chars.to_string(), &max]);
                        view.notify(ctx, text);
                    }
                }
                UiEvent::RemoteFiles { list, files } => {
                    let platform = &*self.platform;
                    let (fetch, note) = conn.files.remote_copied(list, &files, platform, lang);
                    if let Some(fetch) = fetch {
                        let _ = conn.handle.commands.send(fetch);
                    }
                    if let Some(view) = &mut conn.session {
                        view.notify(ctx, note);
                    }
                }
                UiEvent::FilesFetched(result) => {
                    let note = conn.files.fetched(&result, &*self.platform, lang);
                    if let Some(view) = &mut conn.session {
                        view.notify(ctx, note);
                    }
                }
                UiEvent::FilesNotCarried { why, outgoing } => {
                    if let Some(view) = &mut conn.session {
                        let text = match outgoing {
                            true => T::FilesNotPasted,
                            false => T::FilesNotBrought,
                        };
                        view.notify(ctx, fill(text.get(lang), &[&why]));
                    }
                }
                UiEvent::SoundUnavailable(_) => conn.lasting.sound.unavailable = true,
                UiEvent::Pointer(pointer) => {
                    if let Some(view) = &mut conn.session {
                        view.set_pointer(ctx, &pointer);
                    }
                }
                UiEvent::Ended(result) => {
                    conn.form = None;
                    conn.outcome = Some(result);
                }
            }
        }
    }

    fn list(&mut self, ui: &mut Ui) {
        ui.horizontal(|ui| {
            ui.heading(self.t(T::Connections));
            if ui.button(self.t(T::Add)).clicked() {
                self.screen = Screen::Edit {
                    index: None,
                    draft: Entry::default(),
                    error: None,
                };
            }
            if ui.button(self.t(T::Settings)).clicked() {
                self.screen = Screen::Settings {
                    draft: self.settings.clone(),
                    status: None,
                };
            }
        });
        ui.separator();
        self.quick_connect(ui);
        ui.separator();
        if self.settings.connections.is_empty() {
            ui.label(self.t(T::NoConnections));
            return;
        }
        let mut action = None;
        egui::Grid::new("connections").striped(true).show(ui, |ui| {
            for (i, entry) in self.settings.connections.iter().enumerate() {
                ui.label(RichText::new(&entry.name).strong());
                ui.label(RichText::new(&entry.id).monospace());
                ui.label(self.relay_shown(entry));
                if ui
                    .button(self.t(T::Connect))
                    .on_hover_text(&entry.name)
                    .clicked()
                {
                    action = Some((i, true));
                }
                if ui
                    .button(self.t(T::Edit))
                    .on_hover_text(&entry.name)
                    .clicked()
                {
                    action = Some((i, false));
                }
                ui.end_row();
            }
        });
        match action {
            Some((i, true)) => self.connect(i, ui.ctx()),
            Some((i, false)) => {
                self.screen = Screen::Edit {
                    index: Some(i),
                    draft: self.settings.connections[i].clone(),
                    error: None,
                }
            }
            None => {}
        }
    }

    /// The relay an entry uses, as shown.
    fn relay_shown(&self, entry: &Entry) -> String {
        self.platform
            .fixed_relay()
            .unwrap_or_else(|| self.settings.relay_for(entry).to_owned())
    }

    /// Type a computer ID and connect, without saving it.
    fn quick_connect(&mut self, ui: &mut Ui) {
        let enter = ui.input(|i| i.key_pressed(egui::Key::Enter));
        let mut go = false;
        ui.horizontal(|ui| {
            let label = ui.label(self.t(T::QuickConnect));
            let hint = self.t(T::IdHelp);
            let field = ui
                .add(
                    egui::TextEdit::singleline(&mut self.quick_id)
                        .id_salt("quick-connect")
                        .hint_text(hint)
                        .desired_width(220.0),
                )
                .labelled_by(label.id);
            if !self.quick_focused {
                field.request_focus();
                self.quick_focused = true;
            }
            go = (enter && (field.has_focus() || field.lost_focus()))
                || ui.button(self.t(T::Connect)).clicked();
        });
        if go && !self.quick_id.trim().is_empty() {
            let entry = Entry {
                name: self.quick_id.trim().to_owned(),
                id: self.quick_id.trim().to_ascii_lowercase(),
                ..Entry::default()
            };
            match entry.validate() {
                Ok(()) => self.connect_entry(entry, ui.ctx()),
                Err(e) => self.notice = Some(self.t(e).to_owned()),
            }
        }
    }

    /// Connects to saved entry `i` as soon as the app is shown (the demo).
    pub fn connect_when_shown(&mut self, i: usize) {
        self.pending_connect = Some(i);
    }

    /// Starts connecting to saved entry `i`.
    pub fn connect(&mut self, i: usize, ctx: &egui::Context) {
        if let Some(entry) = self.settings.connections.get(i).cloned() {
            self.connect_entry(entry, ctx);
        }
    }

    fn connect_entry(&mut self, entry: Entry, ctx: &egui::Context) {
        if self.platform.fixed_relay().is_none() && self.settings.relay_for(&entry).is_empty() {
            self.notice = Some(self.t(T::RelayRequired).to_owned());
            return;
        }
        self.notice = None;
        let creds = RdpCredentials {
            user: entry.user.clone(),
            password: String::new(),
            domain: Some(entry.domain.clone()).filter(|d| !d.is_empty()),
        };
        let wake: Arc<dyn Fn() + Send + Sync> = {
            let ctx = ctx.clone();
            Arc::new(move || ctx.request_repaint())
        };
        // The remote desktop starts at the window's size (it follows the
        // window from then on), unless a fixed size is set.
        let mut settings = self.settings.clone();
        if !settings.fixed_size {
            (settings.width, settings.height) = crate::session::initial_size(ctx);
        }
        // "Use all my monitors": full screen over all of them from the start,
        // their layout in the connection (as mstsc's multimon).
        let span = match settings.all_monitors {
            true => {
                let (monitors, primary) = self.platform.monitors();
                Span::over(&monitors, primary)
            }
            false => None,
        };
        let screens = span.as_ref().map_or_else(
            || MonitorLayout::single(settings.width, settings.height),
            |span| span.layout.clone(),
        );
        match self
            .platform
            .connect(&settings, &entry, creds, screens, wake)
        {
            Ok(handle) => {
                self.screen = Screen::Connection(Box::new(Connection {
                    entry,
                    handle,
                    reached: Vec::new(),
                    otp_asked: false,
                    form: None,
                    admission: None,
                    session: None,
                    outcome: None,
                    confirm_pin: false,
                    pin_removed: false,
                    leaving: None,
                    reconnecting: None,
                    lasting: Lasting::default(),
                    start_spanned: span.is_some(),
                    files: Default::default(),
                    span,
                }))
            }
            Err(e) => self.notice = Some(e),
        }
    }

    fn edit(&mut self, ui: &mut Ui, index: Option<usize>, mut draft: Entry, mut error: Option<T>) {
        ui.heading(self.t(if index.is_some() {
            T::EditConnection
        } else {
            T::NewConnection
        }));
        field(ui, self.t(T::Name), &mut draft.name, false);
        field(ui, self.t(T::ComputerId), &mut draft.id, false);
        ui.label(RichText::new(self.t(T::IdHelp)).small());
        ui.horizontal(|ui| {
            let label = ui.label(self.t(T::Relay));
            ui.add(
                egui::TextEdit::singleline(&mut draft.relay)
                    .hint_text(self.t(T::RelayDefault))
                    .desired_width(280.0),
            )
            .labelled_by(label.id);
        });
        field(ui, self.t(T::WindowsUser), &mut draft.user, false);
        field(ui, self.t(T::Domain), &mut draft.domain, false);
        match self.platform.drive_sharing() {
            Availability::Available => {
                ui.checkbox(&mut draft.share, self.t(T::ShareDrive));
                if draft.share {
                    field(ui, self.t(T::ShareFolder), &mut draft.share_path, false);
                }
            }
            Availability::Unavailable(why) => {
                ui.add_enabled(
                    false,
                    egui::Checkbox::new(&mut false, self.t(T::ShareDrive)),
                );
                ui.label(RichText::new(self.t(why)).italics());
            }
        }
        if let Some(error) = error {
            ui.colored_label(Color32::RED, self.t(error));
        }
        let mut next = None;
        ui.horizontal(|ui| {
            if ui.button(self.t(T::Save)).clicked() {
                match draft.validate() {
                    Err(e) => error = Some(e),
                    Ok(()) => next = Some(true),
                }
            }
            if ui.button(self.t(T::Cancel)).clicked() {
                next = Some(false);
            }
            if let Some(i) = index {
                if ui.button(self.t(T::Remove)).clicked() {
                    self.settings.connections.remove(i);
                    self.persist();
                    next = Some(false);
                }
            }
        });
        match next {
            Some(true) => {
                draft.id = draft.id.trim().to_ascii_lowercase();
                match index {
                    Some(i) => self.settings.connections[i] = draft,
                    None => self.settings.connections.push(draft),
                }
                self.persist();
                self.screen = Screen::List;
            }
            Some(false) => self.screen = Screen::List,
            None => {
                self.screen = Screen::Edit {
                    index,
                    draft,
                    error,
                }
            }
        }
    }

    fn persist(&mut self) {
        if let Err(e) = self.platform.save_settings(&self.settings) {
            self.notice = Some(fill(self.t(T::SaveFailed), &[&e]));
        }
    }

    fn settings_screen(&mut self, ui: &mut Ui, mut draft: Settings, mut status: Option<String>) {
        ui.heading(self.t(T::Settings));
        let lang = draft
            .lang
            .unwrap_or_else(|| Lang::from_locale(&self.platform.locale()));
        ui.horizontal(|ui| {
            ui.label(self.t(T::Language));
            for choice in [Lang::Ja, Lang::En] {
                if ui
                    .selectable_label(lang == choice, choice.native_name())
                    .clicked()
                {
                    draft.lang = Some(choice);
                    // The language applies at once, before saving.
                    self.settings.lang = Some(choice);
                }
            }
        });
        // The browser reaches the relay that served the page, through the
        // browser's own proxy settings.
        if let Some(relay) = self.platform.fixed_relay() {
            ui.label(format!("{}: {relay}", self.t(T::Relay)));
        } else {
            field(ui, self.t(T::RelayAddress), &mut draft.relay, false);
            field(ui, self.t(T::RelayCa), &mut draft.relay_ca, false);
            ui.label(RichText::new(self.t(T::Proxy)).strong());
            field(ui, self.t(T::ProxyHost), &mut draft.proxy.host, false);
            field(ui, self.t(T::ProxyPort), &mut draft.proxy.port, false);
            field(ui, self.t(T::ProxyUser), &mut draft.proxy.user, false);
            field(
                ui,
                self.t(T::ProxyPassword),
                &mut draft.proxy.password,
                true,
            );
        }
        ui.horizontal(|ui| {
            ui.label(self.t(T::ScreenSize));
            ui.radio_value(&mut draft.fixed_size, false, self.t(T::ScreenFollowsWindow));
            ui.radio_value(&mut draft.fixed_size, true, self.t(T::ScreenFixed));
            ui.add_enabled_ui(draft.fixed_size, |ui| {
                let w = ui.label(self.t(T::Width));
                ui.add(egui::DragValue::new(&mut draft.width).range(200..=8192))
                    .labelled_by(w.id);
                let h = ui.label(self.t(T::Height));
                ui.add(egui::DragValue::new(&mut draft.height).range(200..=8192))
                    .labelled_by(h.id);
            });
        });
        // Only where this computer's monitors can be told (not the browser).
        let (monitors, _) = self.platform.monitors();
        if !monitors.is_empty() {
            ui.horizontal(|ui| {
                ui.checkbox(&mut draft.all_monitors, self.t(T::AllMonitors));
                if monitors.len() == 1 {
                    ui.label(RichText::new(self.t(T::OneMonitorFound)).italics());
                }
            });
        }
        ui.label(
            RichText::new(fill(
                self.t(T::StorageAt),
                &[&self.platform.storage_location()],
            ))
            .small(),
        );
        let portable = match self.platform.portable() {
            Portable::On => T::PortableOn,
            Portable::Off => T::PortableOff,
            Portable::Unavailable(why) => why,
        };
        ui.label(RichText::new(self.t(portable)).small());
        if let Some(status) = &status {
            ui.label(status.as_str());
        }
        let mut leave = false;
        ui.horizontal(|ui| {
            if ui.button(self.t(T::Save)).clicked() {
                status = Some(match draft.validate() {
                    Err(e) => self.t(e).to_owned(),
                    Ok(()) => {
                        let keep = std::mem::take(&mut self.settings.connections);
                        self.settings = Settings {
                            connections: keep,
                            fullscreen_hint_seen: self.settings.fullscreen_hint_seen,
                            ..draft.clone()
                        };
                        match self.platform.save_settings(&self.settings) {
                            Ok(()) => self.t(T::Saved).to_owned(),
                            Err(e) => fill(self.t(T::SaveFailed), &[&e]),
                        }
                    }
                });
            }
            if ui.button(self.t(T::Back)).clicked() {
                leave = true;
            }
        });
        self.screen = if leave {
            Screen::List
        } else {
            Screen::Settings { draft, status }
        };
    }

    fn connection(&mut self, ui: &mut Ui, mut conn: Box<Connection>) {
        if let Some(outcome) = conn.outcome.take() {
            let changed = match &outcome {
                // The user disconnected: back to the list.
                Ok(()) if conn.leaving.is_some() => {
                    self.screen = Screen::List;
                    true
                }
                // The remote PC ended the session.
                Ok(()) => self.ended(ui, &conn),
                Err(error) => self.failed(ui, &mut conn, error),
            };
            conn.outcome = Some(outcome);
            crate::session::leave_fullscreen(ui.ctx(), &mut conn.lasting.window);
            if !changed {
                self.screen = Screen::Connection(conn);
            }
            return;
        }
        let lang = self.lang();
        if let Some(view) = &mut conn.session {
            let leave = view.show(
                ui,
                lang,
                &conn.entry,
                conn.admission,
                &mut conn.lasting,
                &conn.handle,
            );
            if let Some(text) = view.take_paste() {
                let paste = conn.files.paste(text, &*self.platform);
                let what = match &paste {
                    Command::PasteFiles(files) => format!("{} files", files.len()),
                    Command::Paste(_) => "text".into(),
                    _ => "the office PC's own clipboard".into(),
                };
                tracing::info!(%what, "paste");
                let _ = conn.handle.commands.send(paste);
            }
            if leave && conn.leaving.is_none() {
                conn.leaving = Some(ui.input(|i| i.time));
                let _ = conn.handle.commands.send(Command::Disconnect);
            }
            if let Some(asked) = conn.leaving {
                // A session busy with a long server message (or a server
                // that stopped answering) must not keep the person here:
                // after LEAVE_WAIT the list comes back, and the session,
                // whose commands are gone, ends by itself.
                let waited = ui.input(|i| i.time) - asked;
                if waited >= LEAVE_WAIT {
                    tracing::warn!("the session did not end within {LEAVE_WAIT} s; leaving it");
                    crate::session::leave_fullscreen(ui.ctx(), &mut conn.lasting.window);
                    self.screen = Screen::List;
                    return;
                }
                ui.ctx()
                    .request_repaint_after(std::time::Duration::from_secs_f64(LEAVE_WAIT - waited));
            }
            self.screen = Screen::Connection(conn);
            return;
        }
        self.progress(ui, &mut conn);
        if let Some(form) = &mut conn.form {
            match prompt_form(ui, lang, form) {
                Some(true) => {
                    let answer = form.answer();
                    let _ = conn.handle.commands.send(Command::Answer(answer));
                    conn.form = None;
                }
                Some(false) => {
                    // Cancel: drop the connection; it winds down by itself.
                    self.screen = Screen::List;
                    return;
                }
                None => {}
            }
        } else {
            ui.add_space(12.0);
            if ui.button(self.t(T::Cancel)).clicked() {
                self.screen = Screen::List;
                return;
            }
        }
        self.screen = Screen::Connection(conn);
    }

    /// The steps so far: done, current (spinner), still to come.
    fn progress(&self, ui: &mut Ui, conn: &mut Connection) {
        if let Some(attempt) = conn.reconnecting {
            let note = fill(self.t(T::Reconnecting), &[&attempt.to_string()]);
            ui.label(
                RichText::new(note)
                    .strong()
                    .color(Color32::from_rgb(200, 120, 0)),
            );
        }
        ui.heading(fill(self.t(T::ConnectingTo), &[&conn.entry.name]));
        let reached = |p: Progress| conn.reached.contains(&p);
        let admitted = reached(Progress::Admitted);
        let steps = [
            (T::StepRelay, reached(Progress::RelayConnected)),
            (T::StepHost, reached(Progress::Secured)),
            (
                T::StepOtp,
                reached(Progress::OtpAccepted) || (admitted && !conn.otp_asked),
            ),
            (T::StepPassword, admitted),
            (T::StepLogon, reached(Progress::Connected)),
            (T::StepDesktop, conn.session.is_some()),
        ];
        let current = steps.iter().position(|(_, done)| !done);
        for (i, (step, done)) in steps.iter().enumerate() {
            ui.horizontal(|ui| {
                if *done {
                    ui.label(RichText::new("✓").color(Color32::from_rgb(0, 150, 60)));
                } else if Some(i) == current {
                    ui.spinner();
                } else {
                    ui.label("・");
                }
                ui.label(self.t(*step));
                if *step == T::StepOtp && admitted && !conn.otp_asked {
                    ui.label(RichText::new(self.t(T::StepNotNeeded)).weak());
                }
            });
        }
    }

    /// Returns true when the screen changed.
    fn ended(&mut self, ui: &mut Ui, conn: &Connection) -> bool {
        ui.heading(self.t(T::SessionEnded));
        self.retry_or_back(ui, &conn.entry)
    }

    /// The ways out of an ended connection. True when the screen changed.
    fn retry_or_back(&mut self, ui: &mut Ui, entry: &Entry) -> bool {
        let mut changed = false;
        ui.horizontal(|ui| {
            if ui.button(self.t(T::Retry)).clicked() {
                self.connect_entry(entry.clone(), ui.ctx());
                changed = true;
            }
            if ui.button(self.t(T::Back)).clicked() {
                self.screen = Screen::List;
                changed = true;
            }
        });
        changed
    }

    /// The failure, what to do next, and the way out. True when the screen changed.
    fn failed(&mut self, ui: &mut Ui, conn: &mut Connection, error: &ConnectError) -> bool {
        let lang = self.lang();
        let explained = explain(error, lang);
        let loud = matches!(error, ConnectError::HostKeyChanged { .. });
        let colour = if loud {
            Color32::RED
        } else {
            ui.visuals().text_color()
        };
        ui.label(RichText::new(&explained.what).heading().color(colour));
        ui.label(explained.next);
        if let ConnectError::HostKeyChanged {
            pin,
            old_fingerprint,
            new_fingerprint,
            ..
        } = error
        {
            egui::Grid::new("fingerprints").show(ui, |ui| {
                ui.label(self.t(T::OldKey));
                ui.label(RichText::new(old_fingerprint).monospace());
                ui.end_row();
                ui.label(self.t(T::NewKey));
                ui.label(RichText::new(new_fingerprint).monospace());
                ui.end_row();
            });
            if conn.pin_removed {
                ui.label(self.t(T::PinRemoved));
            } else {
                ui.checkbox(&mut conn.confirm_pin, self.t(T::ConfirmRemovePin));
                let remove =
                    ui.add_enabled(conn.confirm_pin, egui::Button::new(self.t(T::RemovePin)));
                if remove.clicked() {
                    match self.platform.forget_pin(pin) {
                        Ok(()) => conn.pin_removed = true,
                        Err(e) => self.notice = Some(e),
                    }
                }
            }
        }
        egui::CollapsingHeader::new(self.t(T::Details))
            .id_salt("details")
            .show(ui, |ui| {
                ui.label(RichText::new(&explained.detail).monospace())
            });
        self.retry_or_back(ui, &conn.entry)
    }
}

/// What happened, for the log (no secrets: prompts carry none).
fn log_event(event: &UiEvent) {
    match event {
        UiEvent::Progress(step) => tracing::info!(?step, "connection step"),
        UiEvent::Ask(prompt) => tracing::info!(?prompt, "asking the user"),
        UiEvent::Admitted(a) => tracing::info!(share_allowed = a.share_allowed, "admitted"),
        UiEvent::Connected { width, height } => {
            tracing::info!(width, height, "session connected")
        }
        UiEvent::Frame => {}
        UiEvent::RemoteClipboard(text) => {
            tracing::debug!(chars = text.chars().count(), "remote clipboard")
        }
        UiEvent::RemoteImage(png) => tracing::debug!(bytes = png.len(), "remote picture"),
        UiEvent::ImageNotPasted(why) => tracing::warn!(?why, "picture not pasted"),
        UiEvent::ClipboardTooLarge {
            bytes,
            outgoing,
            picture,
        } => tracing::warn!(bytes, outgoing, picture, "clipboard too large"),
        UiEvent::PasteTooLongToType { chars } => {
            tracing::warn!(chars, "pasted text too long to type")
        }
        UiEvent::Reconnecting {
            attempt,
            in_secs,
            reason,
        } => tracing::warn!(attempt, in_secs, %reason, "reconnecting"),
        UiEvent::RemoteFiles { list, files } => {
            tracing::info!(list, count = files.len(), "remote files")
        }
        UiEvent::FilesFetched(result) => tracing::info!(
            saved = result.saved.len(),
            failed = ?result.failed,
            abandoned = ?result.abandoned,
            "remote files fetched"
        ),
        UiEvent::FilesNotCarried { why, outgoing } => {
            tracing::warn!(%why, outgoing, "files not carried")
        }
        UiEvent::SoundUnavailable(why) => tracing::warn!(%why, "no sound"),
        UiEvent::Pointer(_) => {}
        UiEvent::Ended(Ok(())) => tracing::info!("connection ended"),
        UiEvent::Ended(Err(e)) => tracing::warn!(error = %e, "connection failed"),
    }
}

/// Shows a question; `Some(true)` when answered, `Some(false)` when cancelled.
fn prompt_form(ui: &mut Ui, lang: Lang, form: &mut PromptForm) -> Option<bool> {
    let t = |text: T| text.get(lang);
    ui.add_space(12.0);
    let mut focus_field = true;
    match &form.prompt {
        Prompt::NewHostKey { id, fingerprint } => {
            ui.label(RichText::new(t(T::NewKeyTitle)).strong());
            ui.label(fill(t(T::NewKeyHelp), &[id]));
            ui.horizontal(|ui| {
                ui.label(t(T::Fingerprint));
                ui.label(RichText::new(fingerprint).monospace());
            });
            focus_field = false;
        }
        Prompt::Otp {
            kind,
            emergency_codes,
            last,
        } => {
            ui.label(RichText::new(t(T::StepOtp)).strong());
            if let Some(OtpWrong { tries_left, reused }) = last {
                let which = if *reused { T::OtpReused } else { T::OtpWrong };
                ui.colored_label(Color32::RED, fill(t(which), &[&tries_left.to_string()]));
            }
            if form.emergency {
                ui.label(t(T::EmergencyHelp));
            } else {
                match kind {
                    OtpKind::Email { masked_to } => ui.label(fill(t(T::OtpMailed), &[masked_to])),
                    OtpKind::Totp => ui.label(t(T::OtpApp)),
                };
            }
            if *emergency_codes {
                ui.checkbox(&mut form.emergency, t(T::UseEmergency));
            }
        }
        Prompt::HostPassword { retry } => {
            ui.label(RichText::new(t(T::StepPassword)).strong());
            if *retry {
                ui.colored_label(Color32::RED, t(T::HostPasswordWrong));
            }
            ui.label(t(T::HostPasswordHelp));
        }
        Prompt::RemoteLogon { .. } => {
            ui.label(RichText::new(t(T::StepLogon)).strong());
            ui.label(t(T::LogonHelp));
            let user = field(ui, t(T::WindowsUser), &mut form.user, false);
            if !form.focused && form.user.is_empty() {
                // Nothing saved: start with the user name (Tab reaches the password).
                user.request_focus();
                form.focused = true;
            }
        }
    }
    let mut submitted = false;
    if focus_field {
        let (label, secret) = match form.prompt {
            Prompt::Otp { .. } => (t(T::Code), false),
            Prompt::RemoteLogon { .. } => (t(T::WindowsPassword), true),
            _ => (t(T::Password), true),
        };
        // Read before the field, which may take the Enter key for itself.
        let enter = ui.input(|i| i.key_pressed(egui::Key::Enter));
        let response = field(ui, label, &mut form.text, secret);
        submitted = enter && (response.has_focus() || response.lost_focus());
        if matches!(form.prompt, Prompt::RemoteLogon { .. }) {
            // After the password, as in the Windows sign-in dialog: Tab goes
            // user → password → domain.
            let domain = field(ui, t(T::Domain), &mut form.domain, false);
            submitted |= enter && (domain.has_focus() || domain.lost_focus());
        }
        if !form.focused {
            // A new question takes the keyboard, whatever had it before.
            response.request_focus();
            form.focused = true;
        }
    }
    let mut result = None;
    ui.horizontal(|ui| {
        let ok = if matches!(form.prompt, Prompt::NewHostKey { .. }) {
            t(T::TrustKey)
        } else {
            t(T::Ok)
        };
        let ok = ui.button(ok);
        if !form.focused {
            // Enter or Space answers: the keyboard alone gets through.
            ok.request_focus();
            form.focused = true;
        }
        if ok.clicked() || submitted {
            result = Some(true);
        }
        if ui.button(t(T::Cancel)).clicked() {
            result = Some(false);
        }
    });
    result
}
