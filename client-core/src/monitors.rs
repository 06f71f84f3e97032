//! The remote desktop's screens: one (a window, or full screen on one
//! monitor) or several side by side (full screen over all of a person's
//! monitors, as mstsc's "use all my monitors").
//!
//! A [`MonitorLayout`] is checked once, when it is made, against what RDP
//! and this client take, so every later use (the connection's Client Monitor
//! Data, a Display Control layout, the desktop's size) can trust it.

use ironrdp_displaycontrol::pdu::{DisplayControlMonitorLayout, MonitorLayoutEntry};
use ironrdp_pdu::gcc;

use crate::rdp::MAX_DESKTOP_EDGE;

/// At most this many monitors (MS-RDPBCGR 2.2.1.3.6: monitorCount ≤ 16).
pub const MAX_MONITORS: usize = 16;

/// The smallest monitor edge Display Control takes (MS-RDPEDISP 2.2.2.2.1).
const MIN_EDGE: u32 = 200;

/// One monitor: its top-left corner and size in pixels, in the coordinates
/// of the computer it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Monitor {
    pub left: i32,
    pub top: i32,
    pub width: u32,
    pub height: u32,
}

impl Monitor {
    fn right(&self) -> i64 {
        i64::from(self.left) + i64::from(self.width)
    }

    fn bottom(&self) -> i64 {
        i64::from(self.top) + i64::from(self.height)
    }

    /// Shares a stretch of edge with `other` (side by side, or one above
    /// the other).
    fn touches(&self, other: &Monitor) -> bool {
        let rows = i64::from(self.top) < other.bottom() && i64::from(other.top) < self.bottom();
        let columns = i64::from(self.left) < other.right() && i64::from(other.left) < self.right();
        (rows && (self.right() == i64::from(other.left) || other.right() == i64::from(self.left)))
            || (columns
                && (self.bottom() == i64::from(other.top) || other.bottom() == i64::from(self.top)))
    }

    fn overlaps(&self, other: &Monitor) -> bool {
        i64::from(self.left) < other.right()
            && i64::from(other.left) < self.right()
            && i64::from(self.top) < other.bottom()
            && i64::from(other.top) < self.bottom()
    }
}

impl std::fmt::Display for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}x{}{:+}{:+}",
            self.width, self.height, self.left, self.top
        )
    }
}

/// Why a set of monitors cannot be the remote desktop's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("no monitor given")]
    Empty,
    #[error("{0} monitors given; RDP takes at most {MAX_MONITORS}")]
    TooMany(usize),
    #[error("monitor {0} is smaller than {MIN_EDGE}×{MIN_EDGE} pixels")]
    TooSmall(Monitor),
    #[error("monitors {0} and {1} overlap")]
    Overlap(Monitor, Monitor),
    #[error("monitor {0} touches no other monitor; RDP needs them side by side without gaps")]
    Apart(Monitor),
    #[error(
        "all monitors together are {0}×{1} pixels; this app shows at most \
         {MAX_DESKTOP_EDGE}×{MAX_DESKTOP_EDGE}"
    )]
    TooLarge(i64, i64),
    #[error("'{0}' is not a monitor: write WIDTHxHEIGHT+LEFT+TOP, e.g. 1920x1080+0+0")]
    Unreadable(String),
}

/// The remote desktop's monitors, the primary first and at (0, 0), each
/// touching another, as RDP wants them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorLayout {
    monitors: Vec<Monitor>,
}

impl MonitorLayout {
    /// One screen of `width`×`height` (a window, or one monitor).
    pub fn single(width: u16, height: u16) -> Self {
        Self {
            monitors: vec![Monitor {
                left: 0,
                top: 0,
                width: u32::from(width),
                height: u32::from(height),
            }],
        }
    }

    /// Several monitors as the local computer places them; `primary` is
    /// the index of the one the taskbar goes on. Positions are moved so the
    /// primary's top-left corner is (0, 0).
    pub fn new(monitors: &[Monitor], primary: usize) -> Result<Self, LayoutError> {
        if monitors.is_empty() {
            return Err(LayoutError::Empty);
        }
        if monitors.len() > MAX_MONITORS {
            return Err(LayoutError::TooMany(monitors.len()));
        }
        let primary = primary.min(monitors.len() - 1);
        let origin = monitors[primary];
        let mut ordered = vec![origin];
        ordered.extend(
            monitors
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != primary)
                .map(|(_, m)| *m),
        );
        for (i, m) in ordered.iter().enumerate() {
            if m.width < MIN_EDGE || m.height < MIN_EDGE {
                return Err(LayoutError::TooSmall(*m));
            }
            if let Some(other) = ordered[..i].iter().find(|other| other.overlaps(m)) {
                return Err(LayoutError::Overlap(*other, *m));
            }
        }
        if ordered.len() > 1 {
            if let Some(alone) = ordered.iter().enumerate().find(|(i, m)| {
                !ordered
                    .iter()
                    .enumerate()
                    .any(|(j, o)| j != *i && o.touches(m))
            }) {
                return Err(LayoutError::Apart(*alone.1));
            }
        }
        let (left, top, right, bottom) = bounds(&ordered);
        let (width, height) = (right - left, bottom - top);
        let max = i64::from(MAX_DESKTOP_EDGE);
        if width > max || height > max {
            return Err(LayoutError::TooLarge(width, height));
        }
        // Within 8192 of each other now: the moves below cannot overflow.
        let monitors = ordered
            .into_iter()
            .map(|m| Monitor {
                left: m.left - origin.left,
                top: m.top - origin.top,
                width: m.width,
                height: m.height,
            })
            .collect();
        Ok(Self { monitors })
    }

    /// Reads `WIDTHxHEIGHT+LEFT+TOP` monitors separated by commas (the
    /// first is the primary), as `xrandr` writes geometries:
    /// `1920x1080+0+0,1280x1024+1920+0`.
    pub fn parse(text: &str) -> Result<Self, LayoutError> {
        let monitors = text
            .split(',')
            .map(|one| parse_monitor(one.trim()).ok_or_else(|| LayoutError::Unreadable(one.into())))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(&monitors, 0)
    }

    /// The monitors, the primary first.
    pub fn monitors(&self) -> &[Monitor] {
        &self.monitors
    }

    pub fn is_single(&self) -> bool {
        self.monitors.len() == 1
    }

    /// The remote desktop's size: the rectangle around every monitor.
    pub fn desktop_size(&self) -> (u16, u16) {
        let (left, top, right, bottom) = bounds(&self.monitors);
        let edge = |v: i64| u16::try_from(v).unwrap_or(MAX_DESKTOP_EDGE);
        (edge(right - left), edge(bottom - top))
    }

    /// The connection's Client Monitor Data (MS-RDPBCGR 2.2.1.3.6), which
    /// a server reads to give each monitor its own screen. Right and bottom
    /// are inclusive there.
    pub fn client_monitor_data(&self) -> gcc::ClientMonitorData {
        let monitors = self
            .monitors
            .iter()
            .enumerate()
            .map(|(i, m)| gcc::Monitor {
                left: m.left,
                top: m.top,
                right: m.left + to_i32(m.width) - 1,
                bottom: m.top + to_i32(m.height) - 1,
                flags: match i {
                    0 => gcc::MonitorFlags::PRIMARY,
                    _ => gcc::MonitorFlags::empty(),
                },
            })
            .collect();
        gcc::ClientMonitorData { monitors }
    }

    /// The same layout as a Display Control request (MS-RDPEDISP), with
    /// the scale factor (percent) on every monitor. Display Control takes
    /// only even widths: an odd monitor loses its last column and the
    /// monitors right of it move left by one, so they still touch (an
    /// XWayland monitor at 150 % is 1707 pixels wide).
    pub fn display_control(
        &self,
        scale_percent: u32,
    ) -> Result<DisplayControlMonitorLayout, String> {
        let scale = MonitorLayoutEntry::adjust_desktop_scale_factor(scale_percent);
        let shift = |m: &Monitor| {
            let odd_to_the_left = self
                .monitors
                .iter()
                .filter(|o| o.width % 2 == 1 && o.right() <= i64::from(m.left))
                .count();
            i32::try_from(odd_to_the_left).unwrap_or(0)
        };
        let primary_shift = shift(&self.monitors[0]);
        let entries = self
            .monitors
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let (width, height) = MonitorLayoutEntry::adjust_display_size(m.width, m.height);
                let entry = match i {
                    0 => MonitorLayoutEntry::new_primary(width, height),
                    _ => MonitorLayoutEntry::new_secondary(width, height),
                };
                let left = m.left - shift(m) + primary_shift;
                entry
                    .and_then(|e| e.with_position(left, m.top))
                    .and_then(|e| e.with_desktop_scale_factor(scale))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        DisplayControlMonitorLayout::new(&entries).map_err(|e| e.to_string())
    }
}

impl From<(u16, u16)> for MonitorLayout {
    fn from((width, height): (u16, u16)) -> Self {
        Self::single(width, height)
    }
}

impl std::fmt::Display for MonitorLayout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, m) in self.monitors.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{m}")?;
        }
        Ok(())
    }
}

/// The rectangle around `monitors`: left, top, right, bottom (exclusive).
fn bounds(monitors: &[Monitor]) -> (i64, i64, i64, i64) {
    monitors.iter().fold(
        (i64::MAX, i64::MAX, i64::MIN, i64::MIN),
        |(l, t, r, b), m| {
            (
                l.min(m.left.into()),
                t.min(m.top.into()),
                r.max(m.right()),
                b.max(m.bottom()),
            )
        },
    )
}

/// A monitor's width or height as a coordinate (at most 8192 here).
fn to_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// `WIDTHxHEIGHT+LEFT+TOP` (either offset may be negative: `-1280+0`).
fn parse_monitor(text: &str) -> Option<Monitor> {
    let (width, rest) = text.split_once(['x', 'X'])?;
    let split = rest.find(['+', '-'])?;
    let (height, offsets) = rest.split_at(split);
    let second = offsets[1..].find(['+', '-'])? + 1;
    let (left, top) = offsets.split_at(second);
    Some(Monitor {
        left: left.parse().ok()?,
        top: top.parse().ok()?,
        width: width.parse().ok()?,
        height: height.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(width: u32, height: u32, left: i32, top: i32) -> Monitor {
        Monitor {
            left,
            top,
            width,
            height,
        }
    }

    #[test]
    fn two_monitors_side_by_side_make_one_wide_desktop() {
        let layout = MonitorLayout::parse("1920x1080+0+0,1280x1024+1920+0").unwrap();
        assert_eq!(layout.desktop_size(), (3200, 1080));
        assert_eq!(layout.to_string(), "1920x1080+0+0,1280x1024+1920+0");
        let data = layout.client_monitor_data();
        assert_eq!(data.monitors.len(), 2);
        assert_eq!(
            (data.monitors[1].left, data.monitors[1].right),
            (1920, 3199)
        );
        assert_eq!(data.monitors[0].flags, gcc::MonitorFlags::PRIMARY);
        assert_eq!(layout.display_control(100).unwrap().monitors().len(), 2);
    }

    #[test]
    fn the_primary_goes_first_and_to_the_origin() {
        // The primary on the right, as Windows numbers a laptop beside a
        // bigger screen on its left.
        let layout =
            MonitorLayout::new(&[m(2560, 1440, 0, 0), m(1366, 768, 2560, 672)], 1).unwrap();
        assert_eq!(
            layout.monitors(),
            [m(1366, 768, 0, 0), m(2560, 1440, -2560, -672)]
        );
        assert_eq!(layout.desktop_size(), (3926, 1440));
        assert!(layout.display_control(150).is_ok());
    }

    #[test]
    fn layouts_rdp_cannot_carry_are_refused_in_plain_words() {
        assert_eq!(MonitorLayout::new(&[], 0), Err(LayoutError::Empty));
        let many = vec![m(800, 600, 0, 0); 17];
        assert_eq!(MonitorLayout::new(&many, 0), Err(LayoutError::TooMany(17)));
        assert!(matches!(
            MonitorLayout::parse("1920x1080+0+0,1920x1080+1000+0"),
            Err(LayoutError::Overlap(..))
        ));
        assert!(matches!(
            MonitorLayout::parse("100x100+0+0"),
            Err(LayoutError::TooSmall(_))
        ));
        assert_eq!(
            MonitorLayout::parse("3840x2160+0+0,3840x2160+3840+0,3840x2160+7680+0"),
            Err(LayoutError::TooLarge(11520, 2160))
        );
        let unreadable = MonitorLayout::parse("1920x1080").unwrap_err();
        assert!(unreadable.to_string().contains("WIDTHxHEIGHT+LEFT+TOP"));
        for bad in ["", "x+0+0", "axb+0+0", "1920x1080+0", "1920x1080+0+0+0"] {
            assert!(MonitorLayout::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn odd_widths_lose_a_column_over_display_control_and_still_touch() {
        // Two XWayland monitors at 150 %, then an odd one left of the primary.
        for text in [
            "1707x960+0+0,1707x960+1707+0,1280x1024+3414+0",
            "1280x1024+0+0,1367x768-1367+0,1707x960-3074+0",
        ] {
            let layout = MonitorLayout::parse(text).unwrap();
            assert_eq!(
                layout.to_string(),
                text,
                "the connection keeps every column"
            );
            let request = layout
                .display_control(100)
                .unwrap_or_else(|e| panic!("{text}: {e}"));
            let placed: Vec<_> = request
                .monitors()
                .iter()
                .map(|e| (e.position().unwrap(), e.dimensions()))
                .collect();
            assert_eq!(
                placed[0],
                (
                    (0, 0),
                    (
                        if text.starts_with("1707") { 1706 } else { 1280 },
                        placed[0].1 .1
                    )
                )
            );
            assert!(placed.iter().all(|(_, (w, _))| w % 2 == 0), "{placed:?}");
        }
        let layout = MonitorLayout::parse("1707x960+0+0,1707x960+1707+0").unwrap();
        let request = layout.display_control(100).unwrap();
        assert_eq!(request.monitors()[1].position(), Some((1706, 0)));
    }

    #[test]
    fn monitors_must_touch() {
        assert!(matches!(
            MonitorLayout::parse("1920x1080+0+0,1280x1024+1930+0"),
            Err(LayoutError::Apart(_))
        ));
        // Corner to corner is not side by side.
        assert!(matches!(
            MonitorLayout::parse("800x600+0+0,800x600+800+600"),
            Err(LayoutError::Apart(_))
        ));
        assert!(MonitorLayout::parse("800x600+0+0,800x600+0+600").is_ok());
        assert!(MonitorLayout::parse("1280x1024-1280+0,1920x1080+0+0").is_ok());
    }
}
