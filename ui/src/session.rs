//! The remote desktop on screen: the picture (only changed regions are
//! uploaded to the texture), the session bar, and keyboard and mouse input
//! sent to the remote PC.

use client_core::driver::{Command, Framebuffer, Handle, SharedFrame};
use client_core::rdp::{MouseButton, RemotePointer};
use client_core::{Admission, Monitor, MonitorLayout};
use egui::{
    Color32, ColorImage, Event, Key, Modifiers, Pos2, Rect, RichText, Sense, TextureHandle,
    TextureOptions, Ui, Vec2,
};

use crate::i18n::{fill, Lang, T};
use crate::keys::{self, Scancode};
use crate::settings::Entry;

/// How long the full-screen hint stays up the first time (seconds).
const HINT_SECS: f64 = 10.0;
/// How long a note on the session bar stays up (seconds).
const NOTICE_SECS: f64 = 8.0;
/// How long after Ctrl was last seen held a V release still counts as part
/// of a Ctrl+V.
const CHORD_SECS: f64 = 0.5;
/// The window must keep its size this long before the remote desktop is
/// asked to follow (seconds): dragging a window's edge would otherwise ask
/// for dozens of sizes, each a reactivation on the remote PC.
const RESIZE_SETTLE_SECS: f64 = 0.5;
/// Room the session bar takes above the picture (points), for the size
/// asked before the session is shown.
const SESSION_BAR_POINTS: f32 = 36.0;

/// The session bar's sound switch; it belongs to the connection, so it
/// outlives the session view across reconnects, as the driver's does.
#[derive(Debug, Default)]
pub struct SoundSwitch {
    pub muted: bool,
    /// This computer has no sound output.
    pub unavailable: bool,
}

/// Full screen over every monitor ("use all my monitors", as mstsc's
/// multimon): the remote desktop gets one screen per monitor.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// The monitors as the remote desktop gets them.
    pub layout: MonitorLayout,
    /// The rectangle around them, in this computer's screen pixels: the
    /// window covers it, without decorations.
    pub area: egui::Rect,
    /// The primary monitor, in the same pixels (notes show there: the
    /// middle of the rectangle may be on no monitor at all).
    pub primary: egui::Rect,
}

/// What belongs to the connection rather than to one session view, so it
/// outlives the view across reconnects (as the driver's own state does).
#[derive(Debug, Default)]
pub struct Lasting {
    pub sound: SoundSwitch,
    pub window: WindowMode,
}

/// How the session's window is shown (a reconnect keeps the person in
/// full screen).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WindowMode {
    pub fullscreen: bool,
    /// Full screen over every monitor: where the window was (outer
    /// position, inner size in points, maximised), to go back there.
    pub spanned_from: Option<(egui::Pos2, Vec2, bool)>,
}

pub struct SessionView {
    width: u16,
    height: u16,
    texture: Option<TextureHandle>,
    fit: bool,
    /// In "fit to window", the remote desktop follows the window's size.
    follow: bool,
    /// What full screen means here: every monitor, or (None) this one.
    span: Option<Span>,
    /// The full-screen shortcut was pressed.
    toggle_fullscreen: bool,
    /// The person pasted (see [`take_paste`](Self::take_paste)).
    paste: Option<Option<String>>,
    /// A V press was seen, and a paste event (a Ctrl+V that egui turned
    /// into one) since the last V release.
    v_pressed: bool,
    pasted: bool,
    /// When Ctrl (Cmd on a Mac) was last seen held.
    command_at: f64,
    /// Modifier keys as last sent to the remote PC.
    sent: Modifiers,
    window_focused: bool,
    /// Show the full-screen hint until this time (first session only).
    hint: Option<f64>,
    show_hint: bool,
    /// A note for the person (e.g. a clipboard too large) and until when.
    notice: Option<(String, f64)>,
    /// The size last asked of the remote PC, and a new one waiting for the
    /// window to settle (since when).
    asked: Option<(u16, u16)>,
    settling: Option<((u16, u16), f64)>,
    /// The remote desktop is larger than this computer can show.
    oversize: Option<(u16, u16)>,
    /// The remote PC's pointer, drawn over the picture in place of the
    /// system's.
    pointer: PointerLook,
}

/// How the pointer looks over the picture.
enum PointerLook {
    System,
    Hidden,
    /// The remote PC's image and the pixel in it that points.
    Shape {
        texture: TextureHandle,
        hotspot: (u16, u16),
    },
}

/// The picture area's size in pixels for `points` of room, as the remote
/// desktop should have it (at least 200×200, as Display Control requires).
pub fn pixels_for(points: Vec2, pixels_per_point: f32) -> (u16, u16) {
    let edge = |v: f32| (v * pixels_per_point).clamp(200.0, 8192.0) as u16;
    (edge(points.x), edge(points.y))
}

/// The remote desktop's size for a session about to start in this window:
/// the window less the session bar.
pub fn initial_size(ctx: &egui::Context) -> (u16, u16) {
    let room = ctx.content_rect().size() - Vec2::new(0.0, SESSION_BAR_POINTS);
    pixels_for(room, ctx.pixels_per_point())
}

impl SessionView {
    pub fn new(
        width: u16,
        height: u16,
        follow: bool,
        first_time: bool,
        span: Option<Span>,
    ) -> Self {
        Self {
            width,
            height,
            texture: None,
            fit: true,
            follow,
            span,
            toggle_fullscreen: false,
            paste: None,
            v_pressed: false,
            pasted: false,
            command_at: f64::NEG_INFINITY,
            sent: Modifiers::NONE,
            window_focused: true,
            hint: None,
            show_hint: first_time,
            notice: None,
            asked: None,
            settling: None,
            oversize: None,
            pointer: PointerLook::System,
        }
    }

    /// Takes the pointer the remote PC now shows.
    pub fn set_pointer(&mut self, ctx: &egui::Context, pointer: &RemotePointer) {
        self.pointer = match pointer {
            RemotePointer::System => PointerLook::System,
            RemotePointer::Hidden => PointerLook::Hidden,
            RemotePointer::Shape(shape)
                if usize::from(shape.width.max(shape.height))
                    > ctx.input(|i| i.max_texture_side) =>
            {
                PointerLook::System
            }
            RemotePointer::Shape(shape) => {
                let size = [usize::from(shape.width), usize::from(shape.height)];
                let image = ColorImage::from_rgba_unmultiplied(size, &shape.rgba);
                PointerLook::Shape {
                    // Drawn one screen pixel per pointer pixel: sharp.
                    texture: ctx.load_texture("remote-pointer", image, TextureOptions::NEAREST),
                    hotspot: shape.hotspot,
                }
            }
        };
        ctx.request_repaint();
    }

    /// Uploads what changed in the framebuffer (all of it the first time).
    pub fn upload(&mut self, ctx: &egui::Context, frame: &SharedFrame) {
        let mut fb = frame.lock().expect("not poisoned");
        // A desktop larger than the graphics card's largest texture cannot
        // be shown (egui would stop the app): say so instead.
        let max = ctx.input(|i| i.max_texture_side);
        if usize::from(fb.width) > max || usize::from(fb.height) > max {
            self.oversize = Some((fb.width, fb.height));
            fb.take_dirty();
            return;
        }
        self.oversize = None;
        let full_size = [usize::from(fb.width), usize::from(fb.height)];
        let fits = self.texture.as_ref().is_some_and(|t| t.size() == full_size);
        let Some((at, image)) = take_changes(&mut fb, !fits) else {
            return;
        };
        match &mut self.texture {
            Some(texture) if fits => texture.set_partial(at, image, TextureOptions::LINEAR),
            _ => {
                self.texture =
                    Some(ctx.load_texture("remote-desktop", image, TextureOptions::LINEAR));
                self.width = fb.width;
                self.height = fb.height;
            }
        }
    }

    /// The person pasted since the last call: the local clipboard's text,
    /// or None for a Ctrl+V in which egui found no text nor picture (files
    /// copied in a file manager; the platform is asked for them).
    pub fn take_paste(&mut self) -> Option<Option<String>> {
        self.paste.take()
    }

    /// Shows `text` on the session bar for a while.
    pub fn notify(&mut self, ctx: &egui::Context, text: String) {
        let now = ctx.input(|i| i.time);
        self.notice = Some((text, now + NOTICE_SECS));
        ctx.request_repaint();
    }

    /// Draws the session; returns true when the user asked to disconnect.
    pub fn show(
        &mut self,
        ui: &mut Ui,
        lang: Lang,
        entry: &Entry,
        admission: Option<Admission>,
        lasting: &mut Lasting,
        handle: &Handle,
    ) -> bool {
        let Lasting { sound, window } = lasting;
        let t = |text: T| text.get(lang);
        let now = ui.input(|i| i.time);
        if self.show_hint {
            self.show_hint = false;
            self.hint = Some(now + HINT_SECS);
        }
        let send = |command| {
            let _ = handle.commands.send(command);
        };
        let mut disconnect = false;
        if !window.fullscreen {
            egui::Panel::top("session-bar").show(ui, |ui| {
                ui.horizontal_wrapped(|ui| {
                    ui.label(RichText::new(fill(t(T::ConnectedTo), &[&entry.name])).strong());
                    if ui.button(t(T::Disconnect)).clicked() {
                        disconnect = true;
                    }
                    ui.separator();
                    ui.selectable_value(&mut self.fit, true, t(T::FitToWindow));
                    ui.selectable_value(&mut self.fit, false, t(T::ActualSize));
                    ui.separator();
                    for (text, key) in [
                        (T::KeyHankaku, keys::HANKAKU_ZENKAKU),
                        (T::KeyHenkan, keys::HENKAN),
                        (T::KeyMuhenkan, keys::MUHENKAN),
                        (T::KeyKana, keys::KATAKANA_HIRAGANA),
                    ] {
                        if ui.button(t(text)).clicked() {
                            tap(&send, &[key]);
                        }
                    }
                    if ui.button(t(T::CtrlAltDel)).clicked() {
                        tap(&send, &[keys::LEFT_CTRL, keys::LEFT_ALT, keys::DELETE]);
                    }
                    if let Some(admission) = admission {
                        ui.separator();
                        if !admission.audio_allowed {
                            ui.label(RichText::new(t(T::SoundForbidden)).italics());
                        } else if sound.unavailable {
                            ui.label(RichText::new(t(T::NoSoundDevice)).italics());
                        } else if ui.toggle_value(&mut sound.muted, t(T::Mute)).changed() {
                            send(Command::Mute(sound.muted));
                        }
                        if !admission.clipboard_allowed {
                            ui.label(RichText::new(t(T::ClipboardForbidden)).italics());
                        }
                    }
                    if entry.share {
                        ui.separator();
                        match admission {
                            Some(a) if a.share_allowed => {
                                ui.label(fill(t(T::SharedFolder), &[&entry.share_path]))
                            }
                            _ => ui.label(RichText::new(t(T::ShareForbidden)).italics()),
                        };
                    }
                });
            });
        }
        egui::CentralPanel::no_frame().show(ui, |ui| {
            if let Some((width, height)) = self.oversize {
                let max = ui.input(|i| i.max_texture_side).to_string();
                let size = format!("{width}×{height}");
                ui.label(fill(t(T::ScreenTooLarge), &[&size, &max]));
                return;
            }
            // Spanning every monitor, the remote desktop has their layout.
            if self.fit && self.follow && window.spanned_from.is_none() {
                self.follow_window(ui, now, &send);
            }
            if self.fit {
                self.picture(ui, handle);
            } else {
                egui::ScrollArea::both().show(ui, |ui| self.picture(ui, handle));
            }
        });
        self.notes(ui, lang, now, window.spanned_from.is_some());
        if std::mem::take(&mut self.toggle_fullscreen) {
            let on = !window.fullscreen;
            self.set_fullscreen(ui.ctx(), window, on, &send);
        }
        disconnect
    }

    /// Goes full screen, or back to the window. Where "use all my
    /// monitors" is on and there are several, full screen is a window
    /// without decorations over all of them, and the remote desktop is
    /// asked for one screen per monitor; back in the window it follows the
    /// window again.
    pub fn set_fullscreen(
        &mut self,
        ctx: &egui::Context,
        window: &mut WindowMode,
        on: bool,
        send: &impl Fn(Command),
    ) {
        use egui::{ViewportCommand as V, WindowLevel};
        if window.fullscreen == on {
            return;
        }
        let Some(span) = self.span.as_ref().filter(|_| on) else {
            match on {
                true => {
                    window.fullscreen = true;
                    ctx.send_viewport_cmd(V::Fullscreen(true));
                }
                false => leave_fullscreen(ctx, window),
            }
            return;
        };
        window.fullscreen = true;
        let (outer, inner, maximized) = ctx.input(|i| {
            let v = i.viewport();
            (v.outer_rect, v.inner_rect, v.maximized.unwrap_or(false))
        });
        let back = (
            outer.map_or(egui::Pos2::ZERO, |r| r.min),
            inner.map_or(Vec2::new(1024.0, 768.0), |r| r.size()),
            maximized,
        );
        window.spanned_from = Some(back);
        // Monitors count in screen pixels; the window in points (the
        // system's scale and egui's zoom).
        let ppp = ctx.pixels_per_point();
        // A maximised window would not move.
        ctx.send_viewport_cmd(V::Maximized(false));
        ctx.send_viewport_cmd(V::Decorations(false));
        ctx.send_viewport_cmd(V::OuterPosition(span.area.min / ppp));
        ctx.send_viewport_cmd(V::InnerSize(span.area.size() / ppp));
        ctx.send_viewport_cmd(V::WindowLevel(WindowLevel::AlwaysOnTop));
        let (width, height) = span.layout.desktop_size();
        self.settling = None;
        // A session that began over every monitor has their layout already.
        if (width, height) != (self.width, self.height) {
            self.asked = Some((width, height));
            send(Command::Resize {
                screens: span.layout.clone(),
                scale_percent: (ppp * 100.0).round() as u32,
            });
        }
    }
}

/// Back to the window from full screen (on one monitor or over all).
pub fn leave_fullscreen(ctx: &egui::Context, window: &mut WindowMode) {
    use egui::{ViewportCommand as V, WindowLevel};
    if !std::mem::take(&mut window.fullscreen) {
        return;
    }
    match window.spanned_from.take() {
        Some((position, size, maximized)) => {
            ctx.send_viewport_cmd(V::WindowLevel(WindowLevel::Normal));
            ctx.send_viewport_cmd(V::Decorations(true));
            ctx.send_viewport_cmd(V::OuterPosition(position));
            ctx.send_viewport_cmd(V::InnerSize(size));
            ctx.send_viewport_cmd(V::Maximized(maximized));
        }
        None => ctx.send_viewport_cmd(V::Fullscreen(false)),
    }
}

impl Span {
    /// Full screen over `monitors` (this computer's, in its screen pixels;
    /// `primary` the index of its primary), where there are several and
    /// RDP can carry them. Why not, in the log.
    pub fn over(monitors: &[Monitor], primary: usize) -> Option<Span> {
        if monitors.len() < 2 {
            return None;
        }
        let layout = MonitorLayout::new(monitors, primary)
            .map_err(|e| tracing::warn!("full screen stays on one monitor: {e}"))
            .ok()?;
        let rect = |m: &Monitor| {
            let min = egui::pos2(m.left as f32, m.top as f32);
            egui::Rect::from_min_size(min, Vec2::new(m.width as f32, m.height as f32))
        };
        let area = monitors
            .iter()
            .fold(egui::Rect::NOTHING, |area, m| area.union(rect(m)));
        let primary = rect(&monitors[primary.min(monitors.len() - 1)]);
        Some(Span {
            layout,
            area,
            primary,
        })
    }
}

impl SessionView {
    /// The full-screen hint and notices, floating at the bottom of the
    /// picture (not in the session bar: a bar that grows and shrinks would
    /// change the picture's room, and with it the remote desktop's size).
    fn notes(&mut self, ui: &Ui, lang: Lang, now: f64, spanned: bool) {
        let hint = self
            .hint
            .filter(|until| now < *until)
            .map(|_| T::FullscreenHint);
        if self.notice.as_ref().is_some_and(|(_, until)| now >= *until) {
            self.notice = None;
        }
        if hint.is_none() && self.notice.is_none() {
            return;
        }
        let area = egui::Area::new(egui::Id::unique("session-notes"));
        // Over every monitor: at the bottom of the primary one.
        let area = match self.span.as_ref().filter(|_| spanned) {
            Some(span) => {
                let ppp = ui.ctx().pixels_per_point();
                let bottom = egui::pos2(span.primary.center().x, span.primary.max.y);
                let at = (bottom - span.area.min) / ppp;
                area.pivot(egui::Align2::CENTER_BOTTOM)
                    .fixed_pos(egui::pos2(at.x, at.y - 16.0))
            }
            None => area.anchor(egui::Align2::CENTER_BOTTOM, [0.0, -16.0]),
        };
        area.interactable(false).show(ui.ctx(), |ui| {
            egui::Frame::popup(ui.style()).show(ui, |ui| {
                if let Some(hint) = hint {
                    ui.colored_label(Color32::from_rgb(0, 110, 200), hint.get(lang));
                }
                if let Some((text, _)) = &self.notice {
                    ui.colored_label(Color32::from_rgb(200, 120, 0), text.as_str());
                }
            });
        });
    }

    /// In "fit to window", asks the remote PC to run its desktop at the
    /// picture area's size once the window stopped changing (where the
    /// server cannot, the picture is scaled to fit instead). The scale
    /// factor goes along, so a high-DPI screen gets a readable desktop.
    fn follow_window(&mut self, ui: &Ui, now: f64, send: &impl Fn(Command)) {
        let ppp = ui.ctx().pixels_per_point();
        let max = ui.input(|i| i.max_texture_side).min(8192) as u16;
        let (width, height) = pixels_for(ui.available_size(), ppp);
        let wanted = (width.min(max), height.min(max));
        let current = (self.width, self.height);
        if wanted == current || Some(wanted) == self.asked {
            self.settling = None;
            return;
        }
        match self.settling {
            Some((size, since)) if size == wanted => {
                if now - since >= RESIZE_SETTLE_SECS {
                    self.settling = None;
                    self.asked = Some(wanted);
                    send(Command::Resize {
                        screens: MonitorLayout::single(wanted.0, wanted.1),
                        scale_percent: (ppp * 100.0).round() as u32,
                    });
                    return;
                }
            }
            _ => self.settling = Some((wanted, now)),
        }
        ui.ctx()
            .request_repaint_after(std::time::Duration::from_secs_f64(RESIZE_SETTLE_SECS));
    }

    /// The picture and the input that goes with it.
    fn picture(&mut self, ui: &mut Ui, handle: &Handle) {
        let size = Vec2::new(f32::from(self.width), f32::from(self.height));
        // Points per remote pixel: one screen pixel each at most (a
        // blurred desktop helps nobody), also on a high-DPI screen.
        let actual = 1.0 / ui.ctx().pixels_per_point();
        let scale = if self.fit {
            let avail = ui.available_size();
            (avail.x / size.x).min(avail.y / size.y).clamp(0.05, actual)
        } else {
            actual
        };
        let (rect, response) = ui.allocate_exact_size(size * scale, Sense::click_and_drag());
        let uv = Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0));
        if let Some(texture) = &self.texture {
            ui.painter().image(texture.id(), rect, uv, Color32::WHITE);
        }
        let over_picture = ui
            .input(|i| i.pointer.hover_pos())
            .filter(|p| rect.contains(*p));
        if let Some(at) = over_picture.filter(|_| response.hovered() || response.dragged()) {
            match &self.pointer {
                PointerLook::System => {}
                PointerLook::Hidden => ui.ctx().set_cursor_icon(egui::CursorIcon::None),
                PointerLook::Shape { texture, hotspot } => {
                    ui.ctx().set_cursor_icon(egui::CursorIcon::None);
                    // One screen pixel per pointer pixel, on whole pixels
                    // (a one-pixel I-beam stays sharp), above the notes.
                    let ppp = ui.ctx().pixels_per_point();
                    let hotspot = Vec2::new(f32::from(hotspot.0), f32::from(hotspot.1));
                    let corner = ((at.to_vec2() * ppp).round() - hotspot) / ppp;
                    let shown = Rect::from_min_size(corner.to_pos2(), texture.size_vec2() / ppp);
                    let layer = egui::LayerId::new(
                        egui::Order::Tooltip,
                        egui::Id::unique("remote-pointer"),
                    );
                    ui.ctx().layer_painter(layer).with_clip_rect(rect).image(
                        texture.id(),
                        shown,
                        uv,
                        Color32::WHITE,
                    );
                }
            }
        }
        if response.clicked() || !ui.ctx().memory(|m| m.focused().is_some()) {
            response.request_focus();
        }
        ui.memory_mut(|m| {
            m.set_focus_lock_filter(
                response.id,
                egui::EventFilter {
                    tab: true,
                    horizontal_arrows: true,
                    vertical_arrows: true,
                    escape: true,
                },
            )
        });
        self.input(ui, handle, rect, scale, response.has_focus());
    }

    fn input(&mut self, ui: &mut Ui, handle: &Handle, rect: Rect, scale: f32, focused: bool) {
        let send = |command| {
            let _ = handle.commands.send(command);
        };
        let (events, held, window_focused, now) =
            ui.input(|i| (i.events.clone(), i.modifiers, i.focused, i.time));
        let chord_held = events.iter().any(|e| match e {
            Event::Key { modifiers, .. } => modifiers.command,
            _ => false,
        });
        if held.command || chord_held {
            self.command_at = now;
        }
        if self.window_focused && !window_focused {
            // Keys held while the window lost focus would stick.
            send(Command::ReleaseAll);
            self.sent = Modifiers::NONE;
            // Their releases will not come.
            self.v_pressed = false;
            self.pasted = false;
        }
        self.window_focused = window_focused;
        let to_remote = |pos: Pos2| -> Option<(u16, u16)> {
            rect.contains(pos).then(|| {
                let p = (pos - rect.min) / scale;
                (
                    p.x.clamp(0.0, f32::from(self.width - 1)) as u16,
                    p.y.clamp(0.0, f32::from(self.height - 1)) as u16,
                )
            })
        };
        let pasting = events
            .iter()
            .any(|e| matches!(e, Event::Paste(_) | Event::PasteImage(_)));
        for event in &events {
            match event {
                Event::PointerMoved(pos) => {
                    if let Some((x, y)) = to_remote(*pos) {
                        send(Command::MouseMove { x, y });
                    }
                }
                Event::PointerButton {
                    pos,
                    button,
                    pressed,
                    ..
                } => {
                    let Some((x, y)) = to_remote(*pos) else {
                        continue;
                    };
                    let button = match button {
                        egui::PointerButton::Primary => MouseButton::Left,
                        egui::PointerButton::Secondary => MouseButton::Right,
                        egui::PointerButton::Middle => MouseButton::Middle,
                        egui::PointerButton::Extra1 => MouseButton::X1,
                        egui::PointerButton::Extra2 => MouseButton::X2,
                    };
                    send(Command::MouseMove { x, y });
                    send(Command::MouseButton {
                        button,
                        down: *pressed,
                    });
                }
                Event::MouseWheel { unit, delta, .. } if ui.rect_contains_pointer(rect) => {
                    let per = match unit {
                        egui::MouseWheelUnit::Line => 120.0,
                        egui::MouseWheelUnit::Page => 360.0,
                        egui::MouseWheelUnit::Point => 3.0,
                    };
                    for (amount, vertical) in [(delta.y, true), (delta.x, false)] {
                        let units = (amount * per).clamp(-32000.0, 32000.0) as i16;
                        if units != 0 {
                            send(Command::Wheel { units, vertical });
                        }
                    }
                }
                _ if !focused => {}
                Event::Key {
                    key: Key::F,
                    pressed: true,
                    modifiers,
                    ..
                } if modifiers.ctrl && modifiers.alt && modifiers.shift => {
                    self.toggle_fullscreen = true;
                }
                Event::Key {
                    key,
                    pressed,
                    modifiers,
                    ..
                } => {
                    let chord = modifiers.ctrl || modifiers.alt || modifiers.mac_cmd;
                    if *key == Key::V {
                        // egui turns Ctrl+V into a paste event and drops the
                        // press; a release in Ctrl+V with neither before it
                        // was one egui found nothing to paste for (an IME
                        // may swallow a plain V's press, so only Ctrl+V).
                        // The modifiers may be reported out of step with the
                        // keys (X11 can report Ctrl let go before a quick
                        // Ctrl+V's V): Ctrl held just before counts too.
                        if *pressed {
                            self.v_pressed = true;
                        } else {
                            let seen = std::mem::take(&mut self.v_pressed)
                                | std::mem::take(&mut self.pasted)
                                | pasting;
                            let command = modifiers.command
                                || held.command
                                || now - self.command_at < CHORD_SECS;
                            if !seen && command && !modifiers.alt {
                                self.paste.get_or_insert(None);
                                continue;
                            }
                        }
                        if pasting {
                            continue;
                        }
                    }
                    // Text keys travel as the text they make (layout and IME
                    // decide), except in shortcuts such as Ctrl+C.
                    if keys::produces_text(*key) && !chord {
                        continue;
                    }
                    if let Some((scancode, extended)) = keys::scancode(*key) {
                        send(Command::Key {
                            scancode,
                            extended,
                            down: *pressed,
                        });
                    }
                }
                // Through the remote clipboard, then Ctrl+V there.
                // Files copied here may be what the person pastes: the app
                // asks the platform before it sends the text.
                Event::Paste(text) => {
                    self.pasted = true;
                    self.paste = Some(Some(text.clone()));
                }
                Event::PasteImage(image) => {
                    self.pasted = true;
                    let [width, height] = image.size.map(|v| v as u32);
                    let rgba: Vec<u8> = image
                        .pixels
                        .iter()
                        .flat_map(|p| p.to_srgba_unmultiplied())
                        .collect();
                    match proto::clipboard::png_from_rgba(width, height, &rgba) {
                        Ok(png) => send(Command::PasteImage(png)),
                        Err(e) => tracing::warn!("the copied picture cannot be encoded: {e}"),
                    }
                }
                Event::Text(text) => type_text(&send, text),
                Event::Ime(egui::ImeEvent::Commit(text)) => type_text(&send, text),
                Event::Copy => tap_with_held(&send, keys::scancode(Key::C)),
                Event::Cut => tap_with_held(&send, keys::scancode(Key::X)),
                _ => {}
            }
        }
        if focused {
            self.sync_modifiers(held, &send);
        }
        // A paste without Ctrl+V (Shift+Insert, the Paste key) has no V
        // release to take the mark; once Ctrl is up, none will come.
        if !held.command {
            self.pasted = false;
        }
    }

    /// Sends modifier key changes (egui reports modifiers as state, not keys).
    fn sync_modifiers(&mut self, now: Modifiers, send: &impl Fn(Command)) {
        for (held, was, key) in [
            (now.shift, self.sent.shift, keys::LEFT_SHIFT),
            (now.ctrl, self.sent.ctrl, keys::LEFT_CTRL),
            (now.alt, self.sent.alt, keys::LEFT_ALT),
            (now.mac_cmd, self.sent.mac_cmd, keys::LEFT_WIN),
        ] {
            if held != was {
                send(Command::Key {
                    scancode: key.0,
                    extended: key.1,
                    down: held,
                });
            }
        }
        self.sent = now;
    }
}

fn type_text(send: &impl Fn(Command), text: &str) {
    for ch in text.chars().filter(|c| !c.is_control() || *c == '\n') {
        let ch = if ch == '\n' { '\r' } else { ch };
        send(Command::Unicode { ch, down: true });
        send(Command::Unicode { ch, down: false });
    }
}

/// Presses the keys in order and releases them in reverse.
fn tap(send: &impl Fn(Command), keys: &[Scancode]) {
    for &(scancode, extended) in keys {
        send(Command::Key {
            scancode,
            extended,
            down: true,
        });
    }
    for &(scancode, extended) in keys.iter().rev() {
        send(Command::Key {
            scancode,
            extended,
            down: false,
        });
    }
}

/// A key pressed while the modifiers already sent stay down (Ctrl+C).
fn tap_with_held(send: &impl Fn(Command), key: Option<Scancode>) {
    if let Some(key) = key {
        tap(send, &[key]);
    }
}

/// What changed in the framebuffer since the last call (all of it if
/// `whole`), as an image to upload at its top-left corner: the part of
/// presenting a frame done on the CPU, before the GPU copies the texture.
/// None when nothing changed.
pub fn take_changes(fb: &mut Framebuffer, whole: bool) -> Option<([usize; 2], ColorImage)> {
    let dirty = fb.take_dirty()?;
    if fb.width == 0 || fb.height == 0 {
        return None;
    }
    let (left, top, right, bottom) = if whole {
        (0, 0, fb.width - 1, fb.height - 1)
    } else {
        dirty
    };
    let (l, t, r, b) = (
        usize::from(left),
        usize::from(top),
        usize::from(right),
        usize::from(bottom),
    );
    let width = usize::from(fb.width);
    // One pass straight into the texture's pixel type; the remote desktop
    // is opaque whatever alpha the decoder left.
    let mut pixels = Vec::with_capacity((r - l + 1) * (b - t + 1));
    for row in t..=b {
        let line = &fb.rgba[(row * width + l) * 4..(row * width + r + 1) * 4];
        pixels.extend(
            line.chunks_exact(4)
                .map(|px| Color32::from_rgb(px[0], px[1], px[2])),
        );
    }
    Some(([l, t], ColorImage::new([r - l + 1, b - t + 1], pixels)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_come_out_as_opaque_pixels_of_the_changed_region_only() {
        let mut fb = Framebuffer::default();
        fb.resize(4, 3);
        let image: Vec<u8> = (0..4 * 3).flat_map(|i| [i, 100 + i, 200, 0]).collect();
        assert!(take_changes(&mut fb, false).is_some(), "all of it at first");
        fb.update(&image, (1, 1, 2, 2));
        let (at, changed) = take_changes(&mut fb, false).expect("changed");
        assert_eq!(at, [1, 1]);
        assert_eq!(changed.size, [2, 2]);
        // Pixel (2, 1) of the framebuffer: index 6.
        assert_eq!(changed.pixels[1], Color32::from_rgb(6, 106, 200));
        assert!(take_changes(&mut fb, false).is_none(), "nothing new");

        fb.update(&image, (3, 0, 3, 0));
        let (at, whole) = take_changes(&mut fb, true).expect("changed");
        assert_eq!((at, whole.size), ([0, 0], [4, 3]));
        assert_eq!(whole.pixels[3], Color32::from_rgb(3, 103, 200));
        assert_eq!(whole.pixels[0], Color32::from_rgb(0, 0, 0), "never drawn");
    }
}
