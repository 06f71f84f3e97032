//! thin-test-desktop: a small RDP server for tests and the demo.
//!
//! It accepts one logon (NLA/CredSSP with the configured user and password),
//! shows a deterministic picture encoded with the RDP 6.0 planar bitmap codec
//! (what Windows sends for bitmap updates), and echoes the input it receives:
//! a mouse click paints a magenta mark at the pointer, a key paints the strip
//! along the bottom edge in a colour derived from the scancode, and every
//! event is published on [`TestDesktop::subscribe`] (the binary prints them).
//! A drive the client shares is announced the same way, with the names at
//! its top level (RDP drive redirection, server side).

mod drive;
mod picture;
mod server;
mod sound;

pub use picture::{
    key_strip_color, picture_pixel, pointer_pixel, CLICK_MARK, KEY_STRIP_HEIGHT, MARK_RADIUS,
    POINTER_HOTSPOT, POINTER_SIZE,
};
pub use server::{
    encoded_tile, ChannelProbe, ClientMonitor, InputEcho, TestDesktop, TestDesktopHandle,
};

pub const DEFAULT_WIDTH: u16 = 1024;
pub const DEFAULT_HEIGHT: u16 = 768;
