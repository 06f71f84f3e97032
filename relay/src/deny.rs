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
use std::time::Duration;

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
        // Windows editors may begin the file with a byte-order mark.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
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
            if net != net.trunc() {
                return Err(format!(
                    "line {}: {net} has bits set past its prefix; did you mean {}?",
                    n + 1,
                    net.trunc()
                ));
            }
            entries.push((side, net));
        }
        Ok(Self { entries })
    }

    /// Reads the list from `path`.
    pub fn load(path: &Path) -> Result<Self, String> {
        Self::parse_file(path, &read(path)?)
    }

    fn parse_file(path: &Path, text: &str) -> Result<Self, String> {
        Self::parse(text).map_err(|e| format!("the deny file {}, {e}", path.display()))
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

    /// How many networks it refuses.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

/// The file's text, at most [`MAX_FILE`] bytes.
fn read(path: &Path) -> Result<String, String> {
    use std::io::Read as _;
    let shown = path.display();
    let cannot = |e: std::io::Error| format!("cannot read the deny file {shown}: {e}");
    let mut text = String::new();
    std::fs::File::open(path)
        .map_err(cannot)?
        .take(MAX_FILE + 1)
        .read_to_string(&mut text)
        .map_err(cannot)?;
    if text.len() as u64 > MAX_FILE {
        return Err(format!(
            "the deny file {shown} is larger than {MAX_FILE} bytes"
        ));
    }
    Ok(text)
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

/// The deny file and the text last read from it: a change is seen by its
/// contents (not its time, which a quick second write within the same tick
/// of the file system's clock would hide).
pub struct Watched {
    pub path: PathBuf,
    text: Option<String>,
}

impl Watched {
    /// The file's list now, and a watch that sees its later changes.
    pub fn start(path: PathBuf) -> Result<(Self, DenyList), String> {
        let text = read(&path)?;
        let list = DenyList::parse_file(&path, &text)?;
        Ok((
            Self {
                path,
                text: Some(text),
            },
            list,
        ))
    }

    /// The list again if the file's text changed (or `forced`), else None.
    /// A file that cannot be read or parsed is an error, said once, and the
    /// list in force stays.
    pub fn reload(&mut self, forced: bool) -> Option<Result<DenyList, String>> {
        let text = match read(&self.path) {
            Ok(text) => text,
            Err(e) => return (self.text.take().is_some() || forced).then_some(Err(e)),
        };
        if !forced && self.text.as_deref() == Some(text.as_str()) {
            return None;
        }
        let list = DenyList::parse_file(&self.path, &text);
        self.text = Some(text);
        Some(list)
    }
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
        let e = DenyList::parse("clients 203.0.113.7/16").unwrap_err();
        assert!(e.contains("did you mean 203.0.0.0/16?"), "{e}");
        // Notepad's byte-order mark and line ends are fine.
        let list = DenyList::parse("\u{feff}10.0.0.0/8\r\nhosts 192.0.2.1\r\n").unwrap();
        assert_eq!(list.len(), 2);
    }

    #[test]
    fn a_change_is_seen_by_its_contents_and_a_broken_file_is_said_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deny.txt");
        std::fs::write(&path, "10.0.0.0/8\n").unwrap();
        let (mut watched, list) = Watched::start(path.clone()).unwrap();
        assert_eq!(list.len(), 1);
        assert!(watched.reload(false).is_none());
        // Rewritten at once: seen whatever the file's time says.
        std::fs::write(&path, "10.0.0.0/8\n192.0.2.0/24\n").unwrap();
        assert_eq!(watched.reload(false).unwrap().unwrap().len(), 2);
        assert!(watched.reload(false).is_none());
        assert_eq!(watched.reload(true).unwrap().unwrap().len(), 2);
        std::fs::write(&path, "10.0.0.0/88\n").unwrap();
        assert!(watched.reload(false).unwrap().is_err());
        assert!(watched.reload(false).is_none());
        std::fs::remove_file(&path).unwrap();
        assert!(watched.reload(false).unwrap().is_err());
        assert!(watched.reload(false).is_none());
        std::fs::write(&path, "").unwrap();
        assert!(watched.reload(false).unwrap().unwrap().is_empty());
    }
}
