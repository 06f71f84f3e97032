//! Computer IDs: what a person types to reach their office PC.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub const MAX_ID_LEN: usize = 32;

/// A validated computer ID: 1–32 characters of a–z, 0–9 and '-', stored
/// lower-case so that "Office-PC" and "office-pc" name the same computer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ComputerId(String);

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum IdError {
    #[error("computer ID is empty")]
    Empty,
    #[error("computer ID is longer than {MAX_ID_LEN} characters")]
    TooLong,
    #[error("computer ID may contain only letters a-z, digits 0-9 and '-' (found {0:?})")]
    BadChar(char),
}

impl ComputerId {
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(IdError::Empty);
        }
        if raw.chars().count() > MAX_ID_LEN {
            return Err(IdError::TooLong);
        }
        if let Some(bad) = raw
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(IdError::BadChar(bad));
        }
        Ok(Self(raw.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ComputerId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for ComputerId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<ComputerId> for String {
    fn from(id: ComputerId) -> String {
        id.0
    }
}

impl fmt::Display for ComputerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_case_insensitive() {
        assert_eq!(
            ComputerId::parse("Office-PC1").unwrap().as_str(),
            "office-pc1"
        );
    }

    #[test]
    fn bad_ids_are_refused() {
        assert_eq!(ComputerId::parse(""), Err(IdError::Empty));
        assert_eq!(ComputerId::parse(&"a".repeat(33)), Err(IdError::TooLong));
        assert_eq!(ComputerId::parse("pc_1"), Err(IdError::BadChar('_')));
        assert_eq!(ComputerId::parse("ｐｃ"), Err(IdError::BadChar('ｐ')));
        assert!(ComputerId::parse(&"a".repeat(32)).is_ok());
    }

    #[test]
    fn deserialising_validates() {
        assert!(serde_json::from_str::<ComputerId>("\"ok-1\"").is_ok());
        assert!(serde_json::from_str::<ComputerId>("\"not ok\"").is_err());
    }
}
