//! One-time passwords: TOTP (RFC 6238) from an authenticator app, codes
//! mailed per attempt, and emergency codes that each work once.

use std::time::{Duration, SystemTime};

use rand::rngs::OsRng;
use rand::Rng as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use totp_rs::{Algorithm, TOTP};
use zeroize::Zeroizing;

use crate::secrets::{EmergencyHash, TotpSecret};

pub const DIGITS: usize = 6;
pub const STEP_SECS: u64 = 30;
/// Codes one step early or late still count (clock drift, typing time).
pub const SKEW_STEPS: u64 = 1;
pub const ISSUER: &str = "thin";
pub const EMERGENCY_CODES: usize = 10;
/// A mailed code is valid this long …
pub const MAIL_CODE_VALIDITY: Duration = Duration::from_secs(5 * 60);
/// … for at most this many tries.
pub const MAIL_CODE_TRIES: u32 = 5;

fn totp(secret: &[u8], account: &str, digits: usize) -> TOTP {
    TOTP::new_unchecked(
        Algorithm::SHA1,
        digits,
        0,
        STEP_SECS,
        secret.to_vec(),
        Some(ISSUER.to_owned()),
        account.to_owned(),
    )
}

/// A fresh 160-bit TOTP secret (the size RFC 4226 recommends).
pub fn new_totp_secret() -> TotpSecret {
    let mut secret = vec![0u8; 20];
    OsRng.fill(&mut secret[..]);
    TotpSecret {
        secret,
        last_step: 0,
    }
}

/// The `otpauth://totp/...` URI an authenticator app enrols from.
pub fn totp_uri(secret: &[u8], account: &str) -> String {
    totp(secret, account, DIGITS).get_url()
}

/// The base32 secret, for typing into an app by hand.
pub fn totp_secret_base32(secret: &[u8]) -> String {
    base32::encode(base32::Alphabet::Rfc4648 { padding: false }, secret)
}

pub fn totp_code(secret: &[u8], unix_secs: u64, digits: usize) -> String {
    totp(secret, "-", digits).generate(unix_secs)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpCheck {
    /// Valid; the caller records this step as used.
    Accepted {
        step: u64,
    },
    /// Valid but its step was already used.
    Replayed,
    Wrong,
}

/// Checks `code` at `now` ±[`SKEW_STEPS`], refusing steps at or before
/// `state.last_step`.
pub fn check_totp(state: &TotpSecret, code: &str, now: SystemTime) -> TotpCheck {
    let code = code.trim();
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let current = secs / STEP_SECS;
    let first = current.saturating_sub(SKEW_STEPS);
    for step in first..=current + SKEW_STEPS {
        let expected = totp_code(&state.secret, step * STEP_SECS, DIGITS);
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
            return if step <= state.last_step {
                TotpCheck::Replayed
            } else {
                TotpCheck::Accepted { step }
            };
        }
    }
    TotpCheck::Wrong
}

/// The terminal rendering of a QR code for `uri`.
pub fn qr_text(uri: &str) -> String {
    match qrcode::QrCode::new(uri.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::unicode::Dense1x2>()
            .quiet_zone(true)
            .build(),
        Err(_) => String::new(),
    }
}

/// Emergency codes look like `k7m2-x9qp-3vtd`; no 0/o, 1/l/i to misread.
const CODE_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

fn normalise_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn hash_code(salt: &[u8], code: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(normalise_code(code).as_bytes());
    h.finalize().to_vec()
}

/// Makes [`EMERGENCY_CODES`] codes: the plain ones to show once, and their
/// hashes to store.
pub fn new_emergency_codes() -> (Vec<Zeroizing<String>>, Vec<EmergencyHash>) {
    (0..EMERGENCY_CODES)
        .map(|_| {
            let raw: String = (0..12)
                .map(|_| char::from(CODE_ALPHABET[OsRng.gen_range(0..CODE_ALPHABET.len())]))
                .collect();
            let code = format!("{}-{}-{}", &raw[..4], &raw[4..8], &raw[8..]);
            let mut salt = vec![0u8; 16];
            OsRng.fill(&mut salt[..]);
            let hash = hash_code(&salt, &code);
            (Zeroizing::new(code), EmergencyHash { salt, hash })
        })
        .unzip()
}

/// Uses up the emergency code if it is one of `codes`; returns whether it was.
pub fn take_emergency_code(codes: &mut Vec<EmergencyHash>, code: &str) -> bool {
    let found = codes
        .iter()
        .position(|c| bool::from(hash_code(&c.salt, code).ct_eq(&c.hash)));
    match found {
        Some(i) => {
            codes.remove(i);
            true
        }
        None => false,
    }
}

/// A code mailed for one connection attempt.
pub struct MailedCode {
    code: Zeroizing<String>,
    issued: SystemTime,
    tries_left: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailCheck {
    Accepted,
    Wrong {
        tries_left: u32,
    },
    Expired,
    /// All tries used: the code is void.
    Exhausted,
}

impl MailedCode {
    /// Six digits, each value from 000000 to 999999 equally likely.
    pub fn new(issued: SystemTime) -> Self {
        Self {
            code: Zeroizing::new(format!("{:06}", OsRng.gen_range(0..1_000_000u32))),
            issued,
            tries_left: MAIL_CODE_TRIES,
        }
    }

    pub fn code(&self) -> &str {
        &self.code
    }

    pub fn expires(&self) -> SystemTime {
        self.issued + MAIL_CODE_VALIDITY
    }

    pub fn check(&mut self, code: &str, now: SystemTime) -> MailCheck {
        if self.tries_left == 0 {
            return MailCheck::Exhausted;
        }
        if now >= self.expires() {
            return MailCheck::Expired;
        }
        self.tries_left -= 1;
        if bool::from(self.code.as_bytes().ct_eq(code.trim().as_bytes())) {
            self.tries_left = 0;
            return MailCheck::Accepted;
        }
        match self.tries_left {
            0 => MailCheck::Exhausted,
            n => MailCheck::Wrong { tries_left: n },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc6238_sha1_vectors() {
        for (t, code) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(totp_code(RFC_SECRET, t, 8), code, "T={t}");
        }
        assert_eq!(totp_code(RFC_SECRET, 59, 6), "287082");
    }

    #[test]
    fn skew_and_replay() {
        let mut state = TotpSecret {
            secret: RFC_SECRET.to_vec(),
            last_step: 0,
        };
        let at = |secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        let code = totp_code(RFC_SECRET, 1_234_567_890, 6);
        let step = 1_234_567_890 / STEP_SECS;
        assert_eq!(
            check_totp(&state, &code, at(1_234_567_890)),
            TotpCheck::Accepted { step }
        );
        assert_eq!(
            check_totp(&state, &code, at(1_234_567_890 + 30)),
            TotpCheck::Accepted { step }
        );
        assert_eq!(
            check_totp(&state, &code, at(1_234_567_890 - 30)),
            TotpCheck::Accepted { step }
        );
        assert_eq!(
            check_totp(&state, &code, at(1_234_567_890 + 90)),
            TotpCheck::Wrong
        );
        state.last_step = step;
        assert_eq!(
            check_totp(&state, &code, at(1_234_567_890)),
            TotpCheck::Replayed
        );
        assert_eq!(
            check_totp(&state, "12345", at(1_234_567_890)),
            TotpCheck::Wrong
        );
    }

    #[test]
    fn uri_names_issuer_and_account() {
        let state = new_totp_secret();
        let uri = totp_uri(&state.secret, "office-pc");
        assert!(uri.starts_with("otpauth://totp/thin:office-pc?"), "{uri}");
        assert!(uri.contains(&format!("secret={}", totp_secret_base32(&state.secret))));
        assert!(uri.contains("issuer=thin"));
        assert!(!qr_text(&uri).is_empty());
    }

    #[test]
    fn emergency_codes_work_once() {
        let (plain, mut hashes) = new_emergency_codes();
        assert_eq!(plain.len(), EMERGENCY_CODES);
        assert!(plain[0].len() == 14 && plain[0].as_bytes()[4] == b'-');
        assert!(!take_emergency_code(&mut hashes, "aaaa-bbbb-cccc"));
        assert!(take_emergency_code(&mut hashes, &plain[3].to_uppercase()));
        assert!(!take_emergency_code(&mut hashes, &plain[3]));
        assert_eq!(hashes.len(), EMERGENCY_CODES - 1);
    }

    #[test]
    fn mailed_codes_expire_and_run_out() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let mut code = MailedCode::new(t0);
        assert_eq!(code.code().len(), 6);
        let right = code.code().to_owned();
        let wrong = if right == "000000" {
            "000001"
        } else {
            "000000"
        };
        assert_eq!(code.check(wrong, t0), MailCheck::Wrong { tries_left: 4 });
        assert_eq!(
            code.check(&right, t0 + MAIL_CODE_VALIDITY),
            MailCheck::Expired
        );
        assert_eq!(code.check(&right, t0), MailCheck::Accepted);
        assert_eq!(code.check(&right, t0), MailCheck::Exhausted);

        let mut code = MailedCode::new(t0);
        for left in (1..5).rev() {
            assert_eq!(code.check("x", t0), MailCheck::Wrong { tries_left: left });
        }
        assert_eq!(code.check("x", t0), MailCheck::Exhausted);
        let right = code.code().to_owned();
        assert_eq!(code.check(&right, t0), MailCheck::Exhausted);
    }

    #[test]
    fn mailed_codes_are_spread_over_all_digits() {
        let mut seen = [0u32; 10];
        for _ in 0..2000 {
            let code = MailedCode::new(SystemTime::UNIX_EPOCH);
            for d in code.code().bytes() {
                seen[usize::from(d - b'0')] += 1;
            }
        }
        // 12,000 digits: each of the 10 values should appear ~1,200 times.
        assert!(seen.iter().all(|&n| (900..1500).contains(&n)), "{seen:?}");
    }
}
