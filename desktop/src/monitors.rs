//! This computer's monitors, for full screen over all of them: where each
//! sits in screen pixels, and which is the primary (the taskbar's).
//!
//! X11 says through RandR's monitor list, Windows through
//! EnumDisplayMonitors; elsewhere (Wayland, where a window cannot place
//! itself) nothing is known and full screen stays on one monitor.

use client_core::Monitor;

/// The monitors and the index of the primary; none if they cannot be told.
pub fn list() -> (Vec<Monitor>, usize) {
    match os::list() {
        Ok(found) => found,
        Err(why) => {
            tracing::info!("the monitors cannot be told ({why}); full screen covers one");
            (Vec::new(), 0)
        }
    }
}

#[cfg(all(unix, not(target_os = "macos")))]
mod os {
    use client_core::Monitor;
    use x11rb::connection::Connection as _;
    use x11rb::protocol::randr::ConnectionExt as _;

    pub fn list() -> Result<(Vec<Monitor>, usize), String> {
        // The app's window is a Wayland one there, and a Wayland window
        // cannot place itself (XWayland would still list the monitors).
        if std::env::var_os("WAYLAND_DISPLAY").is_some() {
            return Err("on Wayland a window cannot place itself over several monitors".into());
        }
        let (conn, screen) = x11rb::connect(None).map_err(|e| e.to_string())?;
        let root = conn.setup().roots[screen].root;
        let reply = conn
            .randr_get_monitors(root, true)
            .map_err(|e| e.to_string())?
            .reply()
            .map_err(|e| e.to_string())?;
        let primary = reply.monitors.iter().position(|m| m.primary).unwrap_or(0);
        let monitors = reply
            .monitors
            .iter()
            .map(|m| Monitor {
                left: m.x.into(),
                top: m.y.into(),
                width: m.width.into(),
                height: m.height.into(),
            })
            .collect();
        Ok((monitors, primary))
    }
}

#[cfg(windows)]
mod os {
    use client_core::Monitor;
    use windows_sys::Win32::Foundation::{BOOL, LPARAM, RECT, TRUE};
    use windows_sys::Win32::Graphics::Gdi::{
        EnumDisplayMonitors, GetMonitorInfoW, HDC, HMONITOR, MONITORINFO,
    };

    /// MONITORINFOF_PRIMARY (winuser.h).
    const PRIMARY: u32 = 1;

    pub fn list() -> Result<(Vec<Monitor>, usize), String> {
        let mut found: Vec<(Monitor, bool)> = Vec::new();
        // SAFETY: the callback runs during the call only, with `found`
        // alive; it reads each monitor's info into a local.
        let ok = unsafe {
            EnumDisplayMonitors(
                0 as HDC,
                std::ptr::null(),
                Some(each),
                &mut found as *mut Vec<(Monitor, bool)> as LPARAM,
            )
        };
        if ok == 0 {
            return Err("EnumDisplayMonitors failed".into());
        }
        let primary = found.iter().position(|(_, p)| *p).unwrap_or(0);
        Ok((found.into_iter().map(|(m, _)| m).collect(), primary))
    }

    unsafe extern "system" fn each(
        monitor: HMONITOR,
        _dc: HDC,
        _rect: *mut RECT,
        found: LPARAM,
    ) -> BOOL {
        // SAFETY: `found` is the Vec passed to EnumDisplayMonitors above.
        let found = unsafe { &mut *(found as *mut Vec<(Monitor, bool)>) };
        let mut info: MONITORINFO = unsafe { std::mem::zeroed() };
        info.cbSize = std::mem::size_of::<MONITORINFO>() as u32;
        // SAFETY: `info` is a MONITORINFO with its size set.
        if unsafe { GetMonitorInfoW(monitor, &mut info) } != 0 {
            let r = info.rcMonitor;
            found.push((
                Monitor {
                    left: r.left,
                    top: r.top,
                    width: (r.right - r.left).max(0) as u32,
                    height: (r.bottom - r.top).max(0) as u32,
                },
                info.dwFlags & PRIMARY != 0,
            ));
        }
        TRUE
    }
}

#[cfg(not(any(windows, all(unix, not(target_os = "macos")))))]
mod os {
    pub fn list() -> Result<(Vec<client_core::Monitor>, usize), String> {
        Err("not on this system".into())
    }
}
