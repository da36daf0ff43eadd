//! The instrument file format: what one instrument is, as data.
//!
//! Every instrument (PHQ-9, GAD-7, ...) is a TOML (or JSON) document that deserialises into
//! [`Instrument`]. [`Instrument::validate`] checks it once, at load time, so that scoring can rely
//! on its invariants: items numbered 1..n, answer values unique, bands contiguous and covering
//! every possible score, rules pointing at real items.

use serde::{Deserialize, Serialize};

use crate::RegistryError;

/// Risk level from a suicide-risk screener (C-SSRS triage), ordered from none to high.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    /// No question answered yes.
    None,
    /// Wish to be dead or non-specific thoughts (C-SSRS Q1/Q2).
    Low,
    /// Thoughts with method (Q3) or past behaviour more than 3 months ago (Q6).
    Moderate,
    /// Intent (Q4), plan with intent (Q5) or behaviour within the past 3 months (Q6).
    High,
}

impl RiskLevel {
    /// The lower-case name used in flags, bands and JSON: `none`, `low`, `moderate`, `high`.
    pub fn as_str(self) -> &'static str {
        match self {
            RiskLevel::None => "none",
            RiskLevel::Low => "low",
            RiskLevel::Moderate => "moderate",
            RiskLevel::High => "high",
        }
    }
}

/// One instrument, exactly as its data file describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Instrument {
    /// Canonical id, e.g. `PHQ-9`. Looked up case-insensitively, ignoring `-`, `_` and spaces.
    pub id: String,
    /// Other names accepted for lookup (normalised the same way).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Full name.
    pub name: String,
    /// What it measures (`depression`, `anxiety`, ...).
    #[serde(default)]
    pub domain: String,
    /// The recall period as worded on the form.
    pub recall_period: String,
    /// The instruction shown above the items.
    pub preamble: String,
    /// Licence / permission to use.
    pub licence: String,
    /// Citations for the wording, scoring and bands.
    pub sources: Vec<String>,
    /// Free-text notes.
    #[serde(default)]
    pub notes: Vec<String>,
    /// LOINC codes for the panel and the total, where they exist.
    #[serde(default)]
    pub loinc: Loinc,
    /// Answer options shared by every item that does not define its own.
    #[serde(default)]
    pub options: Vec<AnswerOption>,
    /// The items, in order, numbered from 1.
    pub items: Vec<Item>,
    /// How the answers become a score.
    pub scoring: Scoring,
    /// Severity bands over the banded score (the scaled score if `multiplier` is set).
    #[serde(default)]
    pub bands: Vec<Band>,
    /// Item-level flags (e.g. PHQ-9 item 9).
    #[serde(default)]
    pub flags: Vec<FlagRule>,
    /// Risk rules (method `risk`): the highest matching level wins.
    #[serde(default)]
    pub risk_rules: Vec<RiskRule>,
    /// Change-over-time thresholds (caseness, reliable change), where the instrument has them.
    #[serde(default)]
    pub change: Option<ChangeRule>,
}

/// LOINC codes of an instrument.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Loinc {
    /// The panel (questionnaire) code, e.g. `44249-1`.
    pub panel: Option<String>,
    /// The panel's display name.
    pub panel_display: Option<String>,
    /// The total-score code, e.g. `44261-6`.
    pub total: Option<String>,
    /// The total's display name.
    pub total_display: Option<String>,
}

/// One answer option.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerOption {
    /// The value scored.
    pub value: u8,
    /// The wording shown.
    pub label: String,
    /// LOINC answer code (LA...), where one exists.
    #[serde(default)]
    pub loinc: Option<String>,
}

/// One item (question).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    /// 1-based position; must equal the item's place in the list.
    pub number: usize,
    /// Exact wording.
    pub text: String,
    /// LOINC item code, where one exists.
    #[serde(default)]
    pub loinc: Option<String>,
    /// Options for this item only (otherwise the instrument's `options`).
    #[serde(default)]
    pub options: Option<Vec<AnswerOption>>,
    /// Asked only when this condition holds (skip logic); otherwise it may be left unanswered.
    #[serde(default)]
    pub ask_if: Option<Condition>,
    /// Clarification shown with the item.
    #[serde(default)]
    pub note: Option<String>,
}

/// `item`'s answer is at least `min`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// 1-based item number.
    pub item: usize,
    /// Minimum answer value.
    pub min: u8,
}

/// Scoring method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Sum of the item values (times `multiplier` for the banded score).
    Sum,
    /// Risk level from `risk_rules`; the total is the number of items answered above 0.
    Risk,
}

/// Whether a higher score is worse (symptom scales) or better (wellbeing scales).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Symptom scales (PHQ-9, GAD-7).
    #[default]
    HigherIsWorse,
    /// Wellbeing scales (WHO-5).
    HigherIsBetter,
}

/// How answers become a score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scoring {
    /// `sum` or `risk`.
    pub method: Method,
    /// Direction of the scale.
    #[serde(default)]
    pub direction: Direction,
    /// The banded (reported) score is the raw total times this (WHO-5: 4, a percentage).
    #[serde(default = "one")]
    pub multiplier: u32,
    /// Unit of the scaled score (`percent`), when `multiplier` is not 1.
    #[serde(default)]
    pub scaled_unit: Option<String>,
    /// What to do with an incomplete form.
    pub incomplete: Incomplete,
    /// For method `risk`: the risk level at and above which a step-up is recommended.
    #[serde(default)]
    pub step_up_at_risk: Option<RiskLevel>,
}

fn one() -> u32 {
    1
}

/// The documented handling of missing answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Incomplete {
    /// `refuse` or `prorate`.
    pub policy: IncompletePolicy,
    /// For `prorate`: the most items that may be missing.
    #[serde(default)]
    pub max_missing: usize,
    /// Why, with its source.
    pub note: String,
}

/// Incomplete-form policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncompletePolicy {
    /// Any missing (required) item: no score.
    Refuse,
    /// Up to `max_missing` items missing: total = round(sum x items / answered). Items used by
    /// flags are never prorated: they must be answered.
    Prorate,
}

/// A severity band, inclusive on both ends, over the banded score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Band {
    /// Lowest score in the band.
    pub min: u32,
    /// Highest score in the band.
    pub max: u32,
    /// Label, e.g. `moderately severe`.
    pub label: String,
    /// A score in this band recommends stepping up care.
    #[serde(default)]
    pub step_up: bool,
    /// What the band means.
    #[serde(default)]
    pub description: Option<String>,
}

/// A flag raised when one item's answer reaches `min`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagRule {
    /// Flag name, e.g. `item9_positive`.
    pub id: String,
    /// 1-based item number.
    pub item: usize,
    /// Minimum answer value that raises the flag.
    pub min: u8,
    /// Raising it recommends stepping up care.
    #[serde(default)]
    pub step_up: bool,
    /// Raising it opens the safety flow (risk event, C-SSRS offered, clinician alerted).
    #[serde(default)]
    pub safety: bool,
    /// What the flag means.
    #[serde(default)]
    pub description: String,
}

/// A triage rule: `item`'s answer at least `min` gives at least `level`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskRule {
    /// 1-based item number.
    pub item: usize,
    /// Minimum answer value.
    pub min: u8,
    /// Risk level given.
    pub level: RiskLevel,
    /// The screener's triage guidance for this answer.
    pub guidance: String,
}

/// Change-over-time thresholds on the raw total (NHS Talking Therapies).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeRule {
    /// A total at or above this is "at caseness".
    pub caseness: u32,
    /// A change of at least this many points is reliable.
    pub reliable_change: u32,
    /// Citation.
    pub source: String,
}

impl Instrument {
    /// The options that apply to item `index` (0-based).
    pub fn options_for(&self, index: usize) -> &[AnswerOption] {
        match self.items.get(index).and_then(|i| i.options.as_deref()) {
            Some(own) => own,
            None => &self.options,
        }
    }

    /// The highest value item `index` (0-based) can take.
    pub fn item_max(&self, index: usize) -> u8 {
        self.options_for(index)
            .iter()
            .map(|o| o.value)
            .max()
            .unwrap_or(0)
    }

    /// The highest raw total.
    pub fn max_total(&self) -> u32 {
        match self.scoring.method {
            Method::Sum => (0..self.items.len())
                .map(|i| u32::from(self.item_max(i)))
                .sum(),
            Method::Risk => u32::try_from(self.items.len()).unwrap_or(u32::MAX),
        }
    }

    /// The banded score for a raw total (raw x multiplier).
    pub fn scaled(&self, total: u32) -> u32 {
        total.saturating_mul(self.scoring.multiplier)
    }

    /// The highest banded score.
    pub fn max_scaled(&self) -> u32 {
        self.scaled(self.max_total())
    }

    /// The band containing a banded score, if any.
    pub fn band_for(&self, scaled: u32) -> Option<&Band> {
        self.bands
            .iter()
            .find(|b| b.min <= scaled && scaled <= b.max)
    }

    /// Checks the invariants scoring relies on.
    pub fn validate(&self) -> Result<(), RegistryError> {
        let bad = |message: String| RegistryError::Invalid {
            instrument: self.id.clone(),
            message,
        };
        if self.id.trim().is_empty() {
            return Err(bad("empty id".into()));
        }
        if self.items.is_empty() {
            return Err(bad("no items".into()));
        }
        if self.sources.is_empty() {
            return Err(bad(
                "no sources: every instrument must cite its source".into()
            ));
        }
        for (index, item) in self.items.iter().enumerate() {
            if item.number != index + 1 {
                return Err(bad(format!(
                    "item at position {} is numbered {}",
                    index + 1,
                    item.number
                )));
            }
            let options = self.options_for(index);
            if options.is_empty() {
                return Err(bad(format!("item {} has no answer options", item.number)));
            }
            let mut values: Vec<u8> = options.iter().map(|o| o.value).collect();
            values.sort_unstable();
            values.dedup();
            if values.len() != options.len() {
                return Err(bad(format!(
                    "item {} has duplicate answer values",
                    item.number
                )));
            }
            if let Some(cond) = item.ask_if {
                if cond.item == 0 || cond.item >= item.number {
                    return Err(bad(format!(
                        "item {}: ask_if must refer to an earlier item",
                        item.number
                    )));
                }
            }
        }
        for flag in &self.flags {
            self.check_item_ref(flag.item, flag.min, &format!("flag {}", flag.id))?;
        }
        for rule in &self.risk_rules {
            self.check_item_ref(rule.item, rule.min, "risk rule")?;
        }
        if self.scoring.multiplier == 0 {
            return Err(bad("multiplier must be at least 1".into()));
        }
        if self.scoring.incomplete.policy == IncompletePolicy::Prorate
            && (self.scoring.incomplete.max_missing == 0
                || self.scoring.incomplete.max_missing >= self.items.len())
        {
            return Err(bad(
                "prorate needs 1 <= max_missing < number of items".into()
            ));
        }
        match self.scoring.method {
            Method::Sum => self.check_bands()?,
            Method::Risk => {
                if self.risk_rules.is_empty() {
                    return Err(bad("method risk needs risk_rules".into()));
                }
                if !self.bands.is_empty() {
                    return Err(bad(
                        "method risk takes its band from the risk level: no bands".into(),
                    ));
                }
            }
        }
        if let Some(change) = &self.change {
            if change.reliable_change == 0 || change.caseness > self.max_total() {
                return Err(bad("change thresholds out of range".into()));
            }
        }
        Ok(())
    }

    fn check_item_ref(&self, item: usize, min: u8, what: &str) -> Result<(), RegistryError> {
        let index = item.checked_sub(1);
        let ok = index.is_some_and(|i| i < self.items.len() && min <= self.item_max(i));
        if ok {
            Ok(())
        } else {
            Err(RegistryError::Invalid {
                instrument: self.id.clone(),
                message: format!(
                    "{what} refers to item {item} / value {min}, which does not exist"
                ),
            })
        }
    }

    /// Bands must be in order, contiguous, and cover 0..=max_scaled exactly.
    fn check_bands(&self) -> Result<(), RegistryError> {
        let bad = |message: String| RegistryError::Invalid {
            instrument: self.id.clone(),
            message,
        };
        let mut expected_min = 0u32;
        for band in &self.bands {
            if band.min != expected_min {
                return Err(bad(format!(
                    "band '{}' starts at {} but the previous band ended at {}: bands must be contiguous from 0",
                    band.label,
                    band.min,
                    expected_min.saturating_sub(1)
                )));
            }
            if band.max < band.min {
                return Err(bad(format!("band '{}' has max < min", band.label)));
            }
            expected_min = band.max.saturating_add(1);
        }
        let max = self.max_scaled();
        if self.bands.last().map(|b| b.max) != Some(max) {
            return Err(bad(format!(
                "bands must end exactly at the highest score, {max}"
            )));
        }
        Ok(())
    }
}
