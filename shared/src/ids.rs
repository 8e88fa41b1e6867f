//! Identifiers. Each is validated where it enters (`parse`), and bad ids are rejected, never
//! rewritten.

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{what} must be {min} to {max} characters long")]
    Length {
        what: &'static str,
        min: usize,
        max: usize,
    },
    #[error("{what} may only contain letters, digits, '-' and '_'")]
    Characters { what: &'static str },
}

fn check_token_chars(
    s: &str,
    what: &'static str,
    min: usize,
    max: usize,
    allowed: impl Fn(u8) -> bool,
) -> Result<(), IdError> {
    if s.len() < min || s.len() > max {
        return Err(IdError::Length { what, min, max });
    }
    if !s.bytes().all(allowed) {
        return Err(IdError::Characters { what });
    }
    Ok(())
}

fn url_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// A room's id: it is part of the room's URL and the name of its folder on disk, so it is kept to
/// 4–32 lowercase letters, digits, `-` and `_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct RoomId(String);

impl RoomId {
    pub const MIN_LEN: usize = 4;
    pub const MAX_LEN: usize = 32;

    pub fn parse(s: &str) -> Result<Self, IdError> {
        check_token_chars(s, "a room id", Self::MIN_LEN, Self::MAX_LEN, |b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
        })?;
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RoomId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RoomId::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A client-chosen id for one operation. The author matches the server's confirmation to its
/// operation by this id, and a resent operation with the same id is applied at most once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct OpId(String);

impl OpId {
    pub const MAX_LEN: usize = 64;

    pub fn parse(s: &str) -> Result<Self, IdError> {
        check_token_chars(s, "an op id", 1, Self::MAX_LEN, url_safe)?;
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for OpId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        OpId::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Who made a change, as the server knows it: a one-way hash of the browser's identity token.
/// It decides who may edit a note. It is stored, but never sent to other participants.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ActorKey(String);

impl ActorKey {
    /// Wraps an already-derived key (the server derives it from the identity token).
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The identity token a browser keeps: 16–128 letters, digits, `-` and `_`.
pub fn check_client_token(s: &str) -> Result<(), IdError> {
    check_token_chars(s, "the identity token", 16, 128, url_safe)
}

/// A note's id, assigned by the server: 1, 2, 3, … within one room.
pub type NoteId = u64;
/// A theme's id, assigned by the server: 1, 2, 3, … within one room.
pub type ThemeId = u64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_ids_are_checked_not_rewritten() {
        assert!(RoomId::parse("abcd").is_ok());
        assert!(RoomId::parse("team-3_b").is_ok());
        for bad in [
            "",
            "abc",
            "ABCD",
            "../etc",
            "a b c d",
            "abcd/",
            "é-room",
            &"a".repeat(33),
        ] {
            assert!(RoomId::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn op_ids_and_tokens_are_checked() {
        assert!(OpId::parse("a1").is_ok());
        assert!(OpId::parse("").is_err());
        assert!(OpId::parse("x\"y").is_err());
        assert!(check_client_token("0123456789abcdef").is_ok());
        assert!(check_client_token("short").is_err());
    }
}
