//! Networks the operator refuses (`thin-relay serve --deny-file FILE`): an
//! organisation may ask the relay to refuse its networks, for its office
//! PCs, its people at home, or both. The file is read at start (a mistake
//! stops the relay, naming the line) and again when it changes or on
//! SIGHUP (a mistake then keeps the list in force and is logged).
//!
//! One network per line, in CIDR form, optionally after the side it
//! applies to; `#` starts a comment:
//!
//! ```text
//! 203.0.113.0/24            # hosts and clients
//! clients 198.51.100.0/24   # people connecting from there
//! hosts 2001:db8::/32       # office PCs registering from there
//! ```

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use ipnet::IpNet;

/// Longest file read; longer ones are refused.
const MAX_FILE: u64 = 1024 * 1024;

/// Which side a network is refused for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Hosts,
    Clients,
    Both,
}

/// Who is connecting, once their first message says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Host,
    Client,
}

/// The networks refused, in the file's order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DenyList {
    entries: Vec<(Side, IpNet)>,
}

impl DenyList {
    /// Reads the list's text; the error names the line and what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut entries = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut words = line.split_whitespace();
            let (side, net) = match (words.next(), words.next(), words.next()) {
                (Some("hosts"), Some(net), None) => (Side::Hosts, net),
                (Some("clients"), Some(net), None) => (Side::Clients, net),
                (Some(net), None, None) => (Side::Both, net),
                _ => {
                    return Err(format!(
                        "line {}: expected a network such as 203.0.113.0/24, optionally after \
                         \"hosts\" or \"clients\"",
                        n + 1
                    ))
                }
            };
            let net: IpNet = net
                .parse()
                .or_else(|_| net.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    format!(
                        "line {}: {net:?} is not a network (CIDR) or an address",
                        n + 1
                    )
                })?;
            entries.push((side, net.trunc()));
        }
        Ok(Self { entries })
    }

    /// Reads the list from `path`.
    pub fn load(path: &Path) -> Result<Self, String> {
        let shown = path.display();
        let size = std::fs::metadata(path)
            .map_err(|e| format!("cannot read the deny file {shown}: {e}"))?
            .len();
        if size > MAX_FILE {
            return Err(format!(
                "the deny file {shown} is larger than {MAX_FILE} bytes"
            ));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the deny file {shown}: {e}"))?;
        Self::parse(&text).map_err(|e| format!("the deny file {shown}, {e}"))
    }

    /// The refused network `ip` is in, for anyone connecting from there
    /// (`role` unknown yet: only networks refused for both sides count).
    pub fn refuses(&self, ip: IpAddr, role: Option<Role>) -> Option<IpNet> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.entries.iter().find_map(|&(side, net)| {
            let applies = matches!(
                (side, role),
                (Side::Both, _)
                    | (Side::Hosts, Some(Role::Host))
                    | (Side::Clients, Some(Role::Client))
            );
            (applies && net.contains(&ip)).then_some(net)
        })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The words a refused peer reads.
pub fn refusal(net: &IpNet) -> String {
    format!(
        "connections from your network ({net}) are refused by this relay's operator; \
         ask your IT staff"
    )
}

/// How often the file is looked at for changes.
pub const CHECK_EVERY: Duration = Duration::from_secs(10);

/// The deny file and when it last changed.
pub struct Watched {
    pub path: PathBuf,
    modified: Option<SystemTime>,
}

impl Watched {
    pub fn new(path: PathBuf) -> Self {
        let modified = modified(&path);
        Self { path, modified }
    }

    /// The list again if the file changed (or `forced`), else None; a file
    /// that cannot be read is an error, and the old list stays.
    pub fn reload(&mut self, forced: bool) -> Option<Result<DenyList, String>> {
        let now = modified(&self.path);
        if !forced && now == self.modified {
            return None;
        }
        self.modified = now;
        Some(DenyList::load(&self.path))
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_are_refused_for_the_side_they_name() {
        let list = DenyList::parse(
            "# refused\n203.0.113.0/24\nclients 198.51.100.7 # one home\n\
             hosts 2001:db8::/32\n\n",
        )
        .unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let both = "203.0.113.0/24".parse::<IpNet>().unwrap();
        assert_eq!(list.refuses(ip("203.0.113.9"), None), Some(both));
        assert_eq!(
            list.refuses(ip("::ffff:203.0.113.9"), Some(Role::Host)),
            Some(both)
        );
        assert_eq!(list.refuses(ip("198.51.100.7"), None), None);
        assert!(list
            .refuses(ip("198.51.100.7"), Some(Role::Client))
            .is_some());
        assert_eq!(list.refuses(ip("198.51.100.7"), Some(Role::Host)), None);
        assert_eq!(list.refuses(ip("198.51.100.8"), Some(Role::Client)), None);
        assert!(list.refuses(ip("2001:db8::1"), Some(Role::Host)).is_some());
        assert_eq!(list.refuses(ip("2001:db8::1"), Some(Role::Client)), None);
        assert!(DenyList::parse("").unwrap().is_empty());
    }

    #[test]
    fn a_mistake_names_its_line() {
        let e = DenyList::parse("10.0.0.0/8\nservers 10.1.0.0/16\n").unwrap_err();
        assert!(e.starts_with("line 2: expected a network"), "{e}");
        let e = DenyList::parse("10.0.0.0/33").unwrap_err();
        assert!(
            e.contains("line 1: \"10.0.0.0/33\" is not a network"),
            "{e}"
        );
        let e = DenyList::parse("hosts").unwrap_err();
        assert!(e.contains("line 1"), "{e}");
    }
}
