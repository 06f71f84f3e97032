//! The test picture and the input echo drawn on it. Tests compute expected
//! pixels with the same functions.

/// Colour of the mark a mouse click leaves.
pub const CLICK_MARK: [u8; 3] = [255, 0, 255];
/// The click mark covers the square ±MARK_RADIUS around the pointer.
pub const MARK_RADIUS: u16 = 4;
/// Height of the strip along the bottom edge that shows the last key.
pub const KEY_STRIP_HEIGHT: u16 = 16;

/// The picture: horizontal and vertical gradients over a 32-pixel checker,
/// so any misplaced tile, swapped channel or flipped row shows.
pub fn picture_pixel(x: u16, y: u16) -> [u8; 3] {
    let checker = ((x / 32) + (y / 32)).is_multiple_of(2);
    [
        (x % 256) as u8,
        (y % 256) as u8,
        if checker { 200 } else { 40 },
    ]
}

/// The desktop's pointer, sent to each client as it logs on (an I-beam, as
/// over text): its size and hotspot in pixels.
pub const POINTER_SIZE: (u16, u16) = (32, 32);
pub const POINTER_HOTSPOT: (u16, u16) = (16, 16);

/// The pointer's pixel at (`x`, `y`) as RGBA, unpremultiplied: a blue bar
/// with a white outline, the rest transparent.
pub fn pointer_pixel(x: u16, y: u16) -> [u8; 4] {
    let bar = (14..18).contains(&x) && (4..28).contains(&y);
    let outline = (13..19).contains(&x) && (3..29).contains(&y);
    match (bar, outline) {
        (true, _) => [0x20, 0x40, 0xc0, 0xff],
        (false, true) => [0xff, 0xff, 0xff, 0xff],
        _ => [0, 0, 0, 0],
    }
}

/// Colour of the key strip after a key with this scancode went down.
pub fn key_strip_color(scancode: u16) -> [u8; 3] {
    let s = (scancode & 0xff) as u8;
    [s.wrapping_mul(37), 255 - s, 0x80]
}

/// An RGB framebuffer.
pub(crate) struct Canvas {
    pub width: u16,
    pub height: u16,
    pub pixels: Vec<[u8; 3]>,
}

/// A rectangle: left, top, width, height.
pub(crate) type Rect = (u16, u16, u16, u16);

impl Canvas {
    pub fn new(width: u16, height: u16) -> Self {
        Self::shifted(width, height, 0)
    }

    /// The picture moved `dx` pixels to the left (a frame of motion mode).
    pub fn shifted(width: u16, height: u16, dx: u16) -> Self {
        let pixels = (0..height)
            .flat_map(|y| (0..width).map(move |x| picture_pixel(x.wrapping_add(dx), y)))
            .collect();
        Self {
            width,
            height,
            pixels,
        }
    }

    pub fn get(&self, x: u16, y: u16) -> [u8; 3] {
        self.pixels[usize::from(y) * usize::from(self.width) + usize::from(x)]
    }

    fn fill(&mut self, (left, top, w, h): Rect, color: [u8; 3]) {
        for y in top..top + h {
            for x in left..left + w {
                self.pixels[usize::from(y) * usize::from(self.width) + usize::from(x)] = color;
            }
        }
    }

    /// Paints the click mark; returns the rectangle to resend.
    pub fn mark_click(&mut self, x: u16, y: u16) -> Rect {
        let left = x.saturating_sub(MARK_RADIUS);
        let top = y.saturating_sub(MARK_RADIUS);
        let right = (x + MARK_RADIUS).min(self.width - 1);
        let bottom = (y + MARK_RADIUS).min(self.height - 1);
        let rect = (left, top, right - left + 1, bottom - top + 1);
        self.fill(rect, CLICK_MARK);
        rect
    }

    /// Paints the key strip; returns the rectangle to resend.
    pub fn mark_key(&mut self, scancode: u16) -> Rect {
        let rect = (
            0,
            self.height - KEY_STRIP_HEIGHT,
            self.width,
            KEY_STRIP_HEIGHT,
        );
        self.fill(rect, key_strip_color(scancode));
        rect
    }
}
