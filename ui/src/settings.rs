//! What the app remembers: saved connections and settings. Stored as JSON by
//! the platform (beside the executable in portable mode, in the platform's
//! config folder otherwise, in browser storage on the web).

use serde::{Deserialize, Serialize};

use crate::i18n::{Lang, T};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// `None` until chosen: the system locale decides.
    pub lang: Option<Lang>,
    /// The default relay, host:port.
    pub relay: String,
    /// The relay CA file (native only; the browser trusts the relay's web
    /// certificate).
    pub relay_ca: String,
    pub proxy: ProxySettings,
    /// The remote desktop keeps `width`×`height` instead of following the
    /// window (the picture is scaled to fit).
    pub fixed_size: bool,
    pub width: u16,
    pub height: u16,
    pub connections: Vec<Entry>,
    /// The full-screen shortcut was pointed out once already.
    pub fullscreen_hint_seen: bool,
    /// Full screen covers every monitor, each a screen of the remote
    /// desktop (where there are several); sessions start that way.
    pub all_monitors: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            lang: None,
            relay: String::new(),
            relay_ca: String::new(),
            proxy: ProxySettings::default(),
            fixed_size: false,
            width: 1280,
            height: 800,
            connections: Vec::new(),
            fullscreen_hint_seen: false,
            all_monitors: false,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProxySettings {
    pub host: String,
    pub port: String,
    pub user: String,
    pub password: String,
}

impl ProxySettings {
    /// `http://[user:password@]host:port`, or `None` when no proxy is set.
    pub fn url(&self) -> Option<String> {
        if self.host.trim().is_empty() {
            return None;
        }
        let enc = |s: &str| {
            s.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                        char::from(b).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect::<String>()
        };
        let auth = if self.user.is_empty() {
            String::new()
        } else {
            format!("{}:{}@", enc(&self.user), enc(&self.password))
        };
        Some(format!(
            "http://{auth}{}:{}",
            self.host.trim(),
            self.port.trim()
        ))
    }
}

/// One saved connection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Entry {
    pub name: String,
    pub id: String,
    /// Empty: the relay from the settings.
    pub relay: String,
    pub user: String,
    pub domain: String,
    /// Share a local folder with the remote PC (off by default).
    pub share: bool,
    pub share_path: String,
}

impl Settings {
    /// Checks the editable settings; the first problem as a UI text.
    pub fn validate(&self) -> Result<(), T> {
        if !self.proxy.host.trim().is_empty()
            && self
                .proxy
                .port
                .trim()
                .parse::<u16>()
                .map_or(true, |p| p == 0)
        {
            return Err(T::BadPort);
        }
        if !(200..=8192).contains(&self.width) || !(200..=8192).contains(&self.height) {
            return Err(T::BadSize);
        }
        Ok(())
    }

    /// The relay an entry uses.
    pub fn relay_for<'a>(&'a self, entry: &'a Entry) -> &'a str {
        if entry.relay.trim().is_empty() {
            self.relay.trim()
        } else {
            entry.relay.trim()
        }
    }
}

impl Entry {
    /// Checks a connection before it is saved.
    pub fn validate(&self) -> Result<(), T> {
        if self.name.trim().is_empty() {
            return Err(T::NameRequired);
        }
        proto::ComputerId::parse(&self.id).map_err(|_| T::InvalidId)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls_escape_credentials() {
        let proxy = ProxySettings {
            host: "proxy.example.jp".into(),
            port: "8080".into(),
            user: "taro".into(),
            password: "p@ss:w/rd".into(),
        };
        assert_eq!(
            proxy.url().unwrap(),
            "http://taro:p%40ss%3Aw%2Frd@proxy.example.jp:8080"
        );
        assert_eq!(ProxySettings::default().url(), None);
    }

    #[test]
    fn validation() {
        let mut entry = Entry {
            name: "Office".into(),
            id: "Office-PC".into(),
            ..Entry::default()
        };
        assert_eq!(entry.validate(), Ok(()));
        entry.id = "office pc".into();
        assert_eq!(entry.validate(), Err(T::InvalidId));
        entry.name = " ".into();
        assert_eq!(entry.validate(), Err(T::NameRequired));
        let mut settings = Settings::default();
        assert_eq!(settings.validate(), Ok(()));
        settings.proxy.host = "proxy".into();
        settings.proxy.port = "99999".into();
        assert_eq!(settings.validate(), Err(T::BadPort));
    }

    #[test]
    fn old_or_partial_files_still_load() {
        let settings: Settings = serde_json::from_str(r#"{"relay":"r:443"}"#).unwrap();
        assert_eq!(settings.relay, "r:443");
        assert_eq!(settings.width, 1280);
    }
}
