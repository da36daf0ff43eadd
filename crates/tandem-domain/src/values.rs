//! Validated values: each is built only through `parse`/`FromStr`, so a value that exists
//! is a value that is valid.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What was wrong with a piece of text that should have been a domain value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("{value:?} is not a valid {what}")]
    Id { what: &'static str, value: String },
    #[error("unknown {what} {value:?}; expected one of: {expected}")]
    Unknown {
        what: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("invalid username: {0}")]
    Username(&'static str),
}

/// Milliseconds since the Unix epoch, UTC. Passed into domain code; never read here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn millis(self) -> i64 {
        self.0
    }
    pub fn plus_seconds(self, secs: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(secs.saturating_mul(1000)))
    }
}

macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident, $what:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s.trim().to_ascii_lowercase().as_str() {
                    $($text => Ok($name::$variant),)+
                    _ => Err(ParseError::Unknown {
                        what: $what,
                        value: s.chars().take(64).collect(),
                        expected: concat!($($text, " "),+),
                    }),
                }
            }
        }
    };
}

text_enum!(
    /// What an account may do. Admins manage accounts and teams but never read clinical content.
    Role, "role", { Patient => "patient", Clinician => "clinician", Admin => "admin" });

text_enum!(
    /// Who wrote a message in a conversation.
    MessageRole, "message role", { Patient => "patient", Assistant => "assistant", System => "system" });

text_enum!(
/// What a patient has agreed to. AI processing can be withdrawn at any time.
ConsentKind, "consent kind", {
    AiProcessing => "ai_processing",
    DataStorage => "data_storage",
    ClinicianSharing => "clinician_sharing",
});

text_enum!(
/// The parts of a care plan a clinician sets.
CarePlanItemKind, "care plan item kind", {
    Goal => "goal",
    Homework => "homework",
    Psychoeducation => "psychoeducation",
    Note => "note",
    Instruction => "instruction",
});

text_enum!(
/// The life of a scheduled between-session check-in.
CheckinStatus, "check-in status", {
    Scheduled => "scheduled",
    Sent => "sent",
    Completed => "completed",
    Cancelled => "cancelled",
});

/// A login name: 3–64 characters of lowercase ASCII letters, digits, `.`, `_` or `-`.
/// Kept deliberately plain so it never needs escaping and can be looked up exactly.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let s = raw.trim().to_ascii_lowercase();
        if s.len() < 3 {
            return Err(ParseError::Username("it must be at least 3 characters"));
        }
        if s.len() > 64 {
            return Err(ParseError::Username("it must be at most 64 characters"));
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
        {
            return Err(ParseError::Username(
                "use only letters a-z, digits, '.', '_' or '-'",
            ));
        }
        Ok(Username(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Username {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Username::parse(&s)
    }
}

impl From<Username> for String {
    fn from(u: Username) -> String {
        u.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_case_insensitively_and_name_the_choices_on_error() {
        assert_eq!("Clinician".parse::<Role>().unwrap(), Role::Clinician);
        let err = "doctor".parse::<Role>().unwrap_err().to_string();
        assert!(err.contains("patient clinician admin"), "{err}");
    }

    #[test]
    fn usernames_are_normalised_and_validated() {
        assert_eq!(Username::parse(" Alice.B ").unwrap().as_str(), "alice.b");
        assert!(Username::parse("al").is_err());
        assert!(Username::parse("bob smith").is_err());
        assert!(Username::parse(&"x".repeat(65)).is_err());
    }
}
