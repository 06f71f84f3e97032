//! Who may even try: the ordered IP access list and the MAC allowlist.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Allow,
    Deny,
}

/// One access-list rule; lower priority numbers are checked first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclRule {
    pub priority: u32,
    pub action: Action,
    pub cidr: IpNet,
}

/// Whether `source` may connect: the first matching rule by priority wins;
/// with no match, access is allowed.
pub fn allowed(rules: &[AclRule], source: IpAddr) -> bool {
    let source = canonical(source);
    let mut ordered: Vec<&AclRule> = rules.iter().collect();
    ordered.sort_by_key(|r| r.priority);
    ordered
        .into_iter()
        .find(|r| r.cidr.contains(&source))
        .is_none_or(|r| r.action == Action::Allow)
}

/// IPv4 clients reaching an IPv6 socket appear as ::ffff:a.b.c.d.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Parses a CIDR (`192.0.2.0/24`) or a single address (`192.0.2.7`).
pub fn parse_cidr(raw: &str) -> Result<IpNet, String> {
    raw.parse::<IpNet>()
        .or_else(|_| raw.parse::<IpAddr>().map(IpNet::from))
        .map(|net| net.trunc())
        .map_err(|_| format!("{raw:?} is not an address range like 192.0.2.0/24 or 2001:db8::/32"))
}

/// Normalises a MAC address to `aa:bb:cc:dd:ee:ff`; accepts `-` or `:`
/// separators and either case.
pub fn parse_mac(raw: &str) -> Result<String, String> {
    let bad = || format!("{raw:?} is not a MAC address like 00:1a:2b:3c:4d:5e");
    let parts: Vec<&str> = raw.trim().split([':', '-']).collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut out = Vec::with_capacity(6);
    for part in parts {
        if part.len() != 2 {
            return Err(bad());
        }
        let byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        out.push(format!("{byte:02x}"));
    }
    Ok(out.join(":"))
}

/// Whether any reported MAC is on the allowlist (an empty list allows all).
pub fn mac_allowed(allow: &[String], reported: &[String]) -> bool {
    allow.is_empty()
        || reported
            .iter()
            .filter_map(|m| parse_mac(m).ok())
            .any(|m| allow.contains(&m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(priority: u32, action: Action, cidr: &str) -> AclRule {
        AclRule {
            priority,
            action,
            cidr: parse_cidr(cidr).unwrap(),
        }
    }

    #[test]
    fn first_match_by_priority_wins_default_allow() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let rules = vec![
            rule(20, Action::Deny, "0.0.0.0/0"),
            rule(10, Action::Allow, "192.0.2.0/24"),
        ];
        assert!(allowed(&rules, ip("192.0.2.7")));
        assert!(!allowed(&rules, ip("198.51.100.1")));
        assert!(!allowed(&rules, ip("::ffff:198.51.100.1")));
        assert!(allowed(&rules, ip("2001:db8::1")));
        assert!(allowed(&[], ip("198.51.100.1")));
    }

    #[test]
    fn cidrs_and_macs_parse() {
        assert_eq!(
            parse_cidr("192.0.2.9/24").unwrap().to_string(),
            "192.0.2.0/24"
        );
        assert_eq!(parse_cidr("192.0.2.9").unwrap().to_string(), "192.0.2.9/32");
        assert!(parse_cidr("192.0.2.0/33").is_err());
        assert!(parse_cidr("office").is_err());
        assert_eq!(parse_mac("00-1A-2b-3C-4d-5E").unwrap(), "00:1a:2b:3c:4d:5e");
        assert!(parse_mac("00:1a:2b:3c:4d").is_err());
        assert!(parse_mac("00:1a:2b:3c:4d:zz").is_err());
        let allow = vec!["00:1a:2b:3c:4d:5e".to_owned()];
        assert!(mac_allowed(&allow, &["00-1A-2B-3C-4D-5E".into()]));
        assert!(!mac_allowed(
            &allow,
            &["00:1a:2b:3c:4d:5f".into(), "junk".into()]
        ));
        assert!(mac_allowed(&[], &[]));
    }
}
