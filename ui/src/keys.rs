//! egui keys to PC keyboard scancodes (set 1), as RDP expects them.
//!
//! Printable characters are sent as Unicode input instead (see the session
//! screen), so that the local layout and IME decide what is typed; keys
//! egui does not report (the Japanese 変換, 無変換, 半角/全角 and かな keys) are
//! on buttons in the session bar.

use egui::Key;

/// A scancode and whether it has the E0 prefix.
pub type Scancode = (u8, bool);

pub const LEFT_SHIFT: Scancode = (0x2a, false);
pub const LEFT_CTRL: Scancode = (0x1d, false);
pub const LEFT_ALT: Scancode = (0x38, false);
pub const LEFT_WIN: Scancode = (0x5b, true);
pub const DELETE: Scancode = (0x53, true);
/// Japanese keyboard keys.
pub const HANKAKU_ZENKAKU: Scancode = (0x29, false);
pub const HENKAN: Scancode = (0x79, false);
pub const MUHENKAN: Scancode = (0x7b, false);
pub const KATAKANA_HIRAGANA: Scancode = (0x70, false);

/// The scancode of a key, if it has one.
pub fn scancode(key: Key) -> Option<Scancode> {
    use Key::*;
    let plain = |c| Some((c, false));
    let ext = |c| Some((c, true));
    match key {
        Escape => plain(0x01),
        Num1 => plain(0x02),
        Num2 => plain(0x03),
        Num3 => plain(0x04),
        Num4 => plain(0x05),
        Num5 => plain(0x06),
        Num6 => plain(0x07),
        Num7 => plain(0x08),
        Num8 => plain(0x09),
        Num9 => plain(0x0a),
        Num0 => plain(0x0b),
        Minus => plain(0x0c),
        Equals => plain(0x0d),
        Backspace => plain(0x0e),
        Tab => plain(0x0f),
        Q => plain(0x10),
        W => plain(0x11),
        E => plain(0x12),
        R => plain(0x13),
        T => plain(0x14),
        Y => plain(0x15),
        U => plain(0x16),
        I => plain(0x17),
        O => plain(0x18),
        P => plain(0x19),
        OpenBracket => plain(0x1a),
        CloseBracket => plain(0x1b),
        Enter => plain(0x1c),
        A => plain(0x1e),
        S => plain(0x1f),
        D => plain(0x20),
        F => plain(0x21),
        G => plain(0x22),
        H => plain(0x23),
        J => plain(0x24),
        K => plain(0x25),
        L => plain(0x26),
        Semicolon => plain(0x27),
        Quote => plain(0x28),
        Backtick => plain(0x29),
        Backslash => plain(0x2b),
        Z => plain(0x2c),
        X => plain(0x2d),
        C => plain(0x2e),
        V => plain(0x2f),
        B => plain(0x30),
        N => plain(0x31),
        M => plain(0x32),
        Comma => plain(0x33),
        Period => plain(0x34),
        Slash => plain(0x35),
        Space => plain(0x39),
        F1 => plain(0x3b),
        F2 => plain(0x3c),
        F3 => plain(0x3d),
        F4 => plain(0x3e),
        F5 => plain(0x3f),
        F6 => plain(0x40),
        F7 => plain(0x41),
        F8 => plain(0x42),
        F9 => plain(0x43),
        F10 => plain(0x44),
        F11 => plain(0x57),
        F12 => plain(0x58),
        IntlBackslash => plain(0x56),
        Home => ext(0x47),
        ArrowUp => ext(0x48),
        PageUp => ext(0x49),
        ArrowLeft => ext(0x4b),
        ArrowRight => ext(0x4d),
        End => ext(0x4f),
        ArrowDown => ext(0x50),
        PageDown => ext(0x51),
        Insert => ext(0x52),
        Delete => ext(0x53),
        _ => None,
    }
}

/// Keys whose press also produces text: with no Ctrl/Alt held they travel as
/// the text they produce, not as scancodes.
pub fn produces_text(key: Key) -> bool {
    use Key::*;
    matches!(
        key,
        A | B
            | C
            | D
            | E
            | F
            | G
            | H
            | I
            | J
            | K
            | L
            | M
            | N
            | O
            | P
            | Q
            | R
            | S
            | T
            | U
            | V
            | W
            | X
            | Y
            | Z
            | Num0
            | Num1
            | Num2
            | Num3
            | Num4
            | Num5
            | Num6
            | Num7
            | Num8
            | Num9
            | Minus
            | Equals
            | OpenBracket
            | CloseBracket
            | Semicolon
            | Quote
            | Backtick
            | Backslash
            | Comma
            | Period
            | Slash
            | Space
            | IntlBackslash
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_keys() {
        assert_eq!(scancode(Key::A), Some((0x1e, false)));
        assert_eq!(scancode(Key::Enter), Some((0x1c, false)));
        assert_eq!(scancode(Key::ArrowLeft), Some((0x4b, true)));
        assert_eq!(scancode(Key::F12), Some((0x58, false)));
        assert!(produces_text(Key::A) && !produces_text(Key::Enter));
    }
}
