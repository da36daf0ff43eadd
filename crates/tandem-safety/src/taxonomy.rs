//! The risk taxonomy: categories and ordered levels.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What kind of risk a piece of evidence points to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Thoughts of, plans for, or acts of ending one's life.
    Suicide,
    /// Non-suicidal self-injury (cutting, burning, hitting oneself).
    SelfHarm,
    /// Risk of harm to others.
    Violence,
    /// The person, a child or a dependant being harmed (domestic, child, elder abuse, exploitation).
    Abuse,
    /// A medical emergency: overdose, poisoning, injury, acute physical symptoms.
    Medical,
    /// Psychotic or manic signs.
    Psychosis,
    /// Restriction, purging, compensatory behaviour, eating-disorder method-seeking.
    EatingDisorder,
}

impl Category {
    /// Every category, in declaration order.
    pub const ALL: [Category; 7] = [
        Category::Suicide,
        Category::SelfHarm,
        Category::Violence,
        Category::Abuse,
        Category::Medical,
        Category::Psychosis,
        Category::EatingDisorder,
    ];

    /// The snake_case name used in JSON and data files.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Suicide => "suicide",
            Category::SelfHarm => "self_harm",
            Category::Violence => "violence",
            Category::Abuse => "abuse",
            Category::Medical => "medical",
            Category::Psychosis => "psychosis",
            Category::EatingDisorder => "eating_disorder",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Category {
    type Err = ParseTaxonomyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Category::ALL
            .into_iter()
            .find(|c| c.as_str() == s.trim())
            .ok_or_else(|| ParseTaxonomyError(format!("unknown category `{s}`")))
    }
}

/// Risk level, ordered `None < Low < Moderate < High < Imminent`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// No sign of risk.
    #[default]
    None,
    /// Distress, a passive wish to be dead, or a past history.
    Low,
    /// Active thoughts without intent or plan, urges, third-party concern.
    Moderate,
    /// Intent, plan, preparation, means at hand, recent attempt, method-seeking in a risk
    /// context, disclosed ongoing abuse of a child.
    High,
    /// An act under way or about to happen.
    Imminent,
}

impl Level {
    /// Every level, lowest first.
    pub const ALL: [Level; 5] = [
        Level::None,
        Level::Low,
        Level::Moderate,
        Level::High,
        Level::Imminent,
    ];

    /// The lowercase name used in JSON and data files.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "none",
            Level::Low => "low",
            Level::Moderate => "moderate",
            Level::High => "high",
            Level::Imminent => "imminent",
        }
    }

    /// Position in the order, `0` for `None` up to `4` for `Imminent`.
    pub fn rank(self) -> u8 {
        match self {
            Level::None => 0,
            Level::Low => 1,
            Level::Moderate => 2,
            Level::High => 3,
            Level::Imminent => 4,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = ParseTaxonomyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Level::ALL
            .into_iter()
            .find(|l| l.as_str() == s.trim())
            .ok_or_else(|| ParseTaxonomyError(format!("unknown level `{s}`")))
    }
}

/// A category or level name that is not part of the taxonomy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseTaxonomyError(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_ordered_and_round_trip() {
        assert!(Level::None < Level::Low && Level::High < Level::Imminent);
        for l in Level::ALL {
            assert_eq!(l.as_str().parse::<Level>().unwrap(), l);
            assert_eq!(serde_json::to_string(&l).unwrap(), format!("\"{l}\""));
        }
        assert!("severe".parse::<Level>().is_err());
    }

    #[test]
    fn categories_round_trip() {
        for c in Category::ALL {
            assert_eq!(c.as_str().parse::<Category>().unwrap(), c);
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{c}\""));
        }
    }
}
