//! Scoring one completed form: totals, bands, flags, risk level and the step-up reasons.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::instrument::{IncompletePolicy, Instrument, Method, RiskLevel};
use crate::registry::Registry;
use crate::stepped::StepUpReason;

/// Flag raised when PHQ-9 item 9 is above zero.
pub const FLAG_ITEM9_POSITIVE: &str = "item9_positive";
/// Flag raised when the score recommends stepping up care (severe band, safety item, risk).
pub const FLAG_STEP_UP: &str = "step_up";
/// Flag raised when a safety item is positive: open the safety flow.
pub const FLAG_SAFETY_FLOW: &str = "safety_flow";

/// Why a set of answers could not be scored. Messages are safe to show to the person who
/// entered the answers: they name the item, never anything else.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScoreError {
    /// No instrument with that id or alias.
    #[error("unknown instrument '{0}'")]
    UnknownInstrument(String),
    /// Too many or too few answers.
    #[error("{instrument} has {expected} items but {got} answers were given")]
    WrongItemCount {
        /// Instrument id.
        instrument: String,
        /// Number of items.
        expected: usize,
        /// Number of answers given.
        got: usize,
    },
    /// An answer is not one of the item's options.
    #[error("{instrument} item {item} ('{item_text}'): answer {value} is not allowed (allowed: {allowed})")]
    OutOfRange {
        /// Instrument id.
        instrument: String,
        /// 1-based item number.
        item: usize,
        /// The item's wording.
        item_text: String,
        /// The value given.
        value: i64,
        /// The allowed values, e.g. `0, 1, 2, 3`.
        allowed: String,
    },
    /// Required items are missing and the instrument's policy refuses (or allows fewer missing).
    #[error("{instrument} is incomplete: item(s) {} unanswered; {reason}", join(.missing))]
    Incomplete {
        /// Instrument id.
        instrument: String,
        /// 1-based numbers of the missing items.
        missing: Vec<usize>,
        /// The policy that applied.
        reason: String,
    },
    /// An answer in a comma-separated list is not a number.
    #[error(
        "answer {position} ('{text}') is not a whole number; leave it empty for a missing answer"
    )]
    NotANumber {
        /// 1-based position in the list.
        position: usize,
        /// The text found.
        text: String,
    },
    /// The instrument's bands do not cover the score (a data-file defect; validation prevents it).
    #[error("{instrument}: no band covers score {score}")]
    NoBand {
        /// Instrument id.
        instrument: String,
        /// The score.
        score: u32,
    },
}

fn join(items: &[usize]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The result of scoring one form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Score {
    /// Canonical instrument id, e.g. `PHQ-9`.
    pub instrument: String,
    /// Raw total (prorated when `prorated`). For method `risk`, the number of YES answers.
    pub total: u32,
    /// Highest possible raw total.
    pub max_total: u32,
    /// Scaled total (raw x multiplier), when the instrument scales (WHO-5 percentage).
    pub scaled_total: Option<u32>,
    /// Unit of `scaled_total`, e.g. `percent`.
    pub scaled_unit: Option<String>,
    /// Band label (`moderate`), or the risk level for method `risk`.
    pub band: String,
    /// Flags, e.g. `item9_positive`, `step_up`, `safety_flow`, `risk_high`.
    pub flags: Vec<String>,
    /// Risk level (C-SSRS).
    pub risk_level: Option<RiskLevel>,
    /// The total was prorated from an incomplete form.
    pub prorated: bool,
    /// Number of items answered.
    pub answered: usize,
    /// The answers as given (None = unanswered or skipped).
    pub answers: Vec<Option<u8>>,
    /// Why this score recommends stepping up care (empty if it does not).
    pub step_up_reasons: Vec<StepUpReason>,
}

impl Score {
    /// The score on the banded scale: the scaled total if any, else the raw total.
    pub fn banded_value(&self) -> u32 {
        self.scaled_total.unwrap_or(self.total)
    }

    /// Whether a flag is set.
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// This score recommends stepping up care.
    pub fn step_up(&self) -> bool {
        !self.step_up_reasons.is_empty()
    }

    /// A safety item is positive (PHQ-9 item 9): open the safety flow.
    pub fn safety_flow(&self) -> bool {
        self.has_flag(FLAG_SAFETY_FLOW)
    }

    /// The JSON the CLI prints: `{"instrument", "total", "band", "flags", ...}` plus
    /// `max_total`, `prorated`, `answered`, and `scaled_total`/`scaled_unit` or `risk_level`
    /// where they apply.
    pub fn to_json(&self) -> Value {
        let mut value = json!({
            "instrument": self.instrument,
            "total": self.total,
            "band": self.band,
            "flags": self.flags,
            "max_total": self.max_total,
            "prorated": self.prorated,
            "answered": self.answered,
        });
        if let Some(obj) = value.as_object_mut() {
            if let Some(scaled) = self.scaled_total {
                obj.insert("scaled_total".into(), json!(scaled));
                obj.insert("scaled_unit".into(), json!(self.scaled_unit));
            }
            if let Some(level) = self.risk_level {
                obj.insert("risk_level".into(), json!(level.as_str()));
            }
        }
        value
    }
}

impl Registry {
    /// Scores one form. `answers[i]` is item i+1's value, `None` if unanswered.
    pub fn score(&self, instrument_id: &str, answers: &[Option<u8>]) -> Result<Score, ScoreError> {
        let instrument = self
            .get(instrument_id)
            .ok_or_else(|| ScoreError::UnknownInstrument(instrument_id.to_owned()))?;
        score_instrument(instrument, answers)
    }
}

/// Parses a comma-separated answer list (`1,0,2,,3`): an empty field, `-`, `?` or `na` is a
/// missing answer. Numbers outside 0..=255 are reported against the instrument's item.
pub fn parse_answers_csv(
    instrument: &Instrument,
    answers_csv: &str,
) -> Result<Vec<Option<u8>>, ScoreError> {
    let mut out = Vec::new();
    for (index, raw) in answers_csv.split(',').enumerate() {
        let text = raw.trim();
        if text.is_empty() || matches!(text.to_ascii_lowercase().as_str(), "-" | "?" | "na") {
            out.push(None);
            continue;
        }
        let number: i64 = text.parse().map_err(|_| ScoreError::NotANumber {
            position: index + 1,
            text: text.chars().take(20).collect(),
        })?;
        match u8::try_from(number) {
            Ok(v) => out.push(Some(v)),
            Err(_) => return Err(out_of_range(instrument, index, number)),
        }
    }
    Ok(out)
}

/// Scores a comma-separated answer list and returns the CLI's JSON object.
pub fn score_answers_json(
    registry: &Registry,
    instrument_id: &str,
    answers_csv: &str,
) -> Result<Value, ScoreError> {
    let instrument = registry
        .get(instrument_id)
        .ok_or_else(|| ScoreError::UnknownInstrument(instrument_id.to_owned()))?;
    let answers = parse_answers_csv(instrument, answers_csv)?;
    Ok(score_instrument(instrument, &answers)?.to_json())
}

fn out_of_range(instrument: &Instrument, index: usize, value: i64) -> ScoreError {
    let allowed = {
        let mut values: Vec<u8> = instrument
            .options_for(index)
            .iter()
            .map(|o| o.value)
            .collect();
        values.sort_unstable();
        values
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    ScoreError::OutOfRange {
        instrument: instrument.id.clone(),
        item: index + 1,
        item_text: instrument
            .items
            .get(index)
            .map(|i| i.text.clone())
            .unwrap_or_default(),
        value,
        allowed,
    }
}

/// Scores one form against one instrument.
pub fn score_instrument(
    instrument: &Instrument,
    answers: &[Option<u8>],
) -> Result<Score, ScoreError> {
    let id = instrument.id.clone();
    if answers.len() != instrument.items.len() {
        return Err(ScoreError::WrongItemCount {
            instrument: id,
            expected: instrument.items.len(),
            got: answers.len(),
        });
    }
    // Range check first: a wrong value is worse than a missing one.
    for (index, answer) in answers.iter().enumerate() {
        if let Some(value) = *answer {
            if !instrument
                .options_for(index)
                .iter()
                .any(|o| o.value == value)
            {
                return Err(out_of_range(instrument, index, i64::from(value)));
            }
        }
    }
    let answer = |item: usize| answers.get(item.wrapping_sub(1)).copied().flatten();

    // Which missing answers matter: skipped items whose condition is not met do not.
    let missing: Vec<usize> = instrument
        .items
        .iter()
        .filter(|item| answer(item.number).is_none())
        .filter(|item| match item.ask_if {
            None => true,
            // Conservative: if the condition item is itself unanswered, the item is required.
            Some(cond) => answer(cond.item).is_none_or(|v| v >= cond.min),
        })
        .map(|item| item.number)
        .collect();
    let missing_flag_items: Vec<usize> = missing
        .iter()
        .copied()
        .filter(|n| instrument.flags.iter().any(|f| f.item == *n))
        .collect();
    let incomplete = |missing: Vec<usize>, reason: String| ScoreError::Incomplete {
        instrument: instrument.id.clone(),
        missing,
        reason,
    };
    let policy = &instrument.scoring.incomplete;
    let mut prorated = false;
    if !missing.is_empty() {
        if !missing_flag_items.is_empty() {
            return Err(incomplete(
                missing,
                "safety items must always be answered".into(),
            ));
        }
        match (policy.policy, instrument.scoring.method) {
            (IncompletePolicy::Prorate, Method::Sum) if missing.len() <= policy.max_missing => {
                prorated = true;
            }
            (IncompletePolicy::Prorate, Method::Sum) => {
                return Err(incomplete(
                    missing,
                    format!(
                        "at most {} missing item(s) can be prorated",
                        policy.max_missing
                    ),
                ));
            }
            _ => return Err(incomplete(missing, policy.note.clone())),
        }
    }

    let answered = answers.iter().filter(|a| a.is_some()).count();
    let sum: u32 = answers.iter().flatten().map(|&v| u32::from(v)).sum();
    let mut flags: Vec<String> = Vec::new();
    let mut reasons: Vec<StepUpReason> = Vec::new();

    let (total, band, risk_level) = match instrument.scoring.method {
        Method::Sum => {
            let total = if prorated && answered > 0 {
                prorate(sum, instrument.items.len(), answered)
            } else {
                sum
            };
            let scaled = instrument.scaled(total);
            let band = instrument
                .band_for(scaled)
                .ok_or_else(|| ScoreError::NoBand {
                    instrument: id.clone(),
                    score: scaled,
                })?;
            if band.step_up {
                reasons.push(StepUpReason::SevereScore {
                    instrument: id.clone(),
                    total,
                    band: band.label.clone(),
                });
            }
            (total, band.label.clone(), None)
        }
        Method::Risk => {
            let total = u32::try_from(answers.iter().flatten().filter(|&&v| v > 0).count())
                .unwrap_or(u32::MAX);
            let level = instrument
                .risk_rules
                .iter()
                .filter(|r| answer(r.item).is_some_and(|v| v >= r.min))
                .map(|r| r.level)
                .max()
                .unwrap_or(RiskLevel::None);
            flags.push(format!("risk_{}", level.as_str()));
            if let Some(threshold) = instrument.scoring.step_up_at_risk {
                if level >= threshold {
                    reasons.push(StepUpReason::SuicideRisk {
                        instrument: id.clone(),
                        level,
                    });
                }
            }
            (total, level.as_str().to_owned(), Some(level))
        }
    };

    let mut safety = false;
    for rule in &instrument.flags {
        if answer(rule.item).is_some_and(|v| v >= rule.min) {
            flags.push(rule.id.clone());
            safety |= rule.safety;
            if rule.step_up {
                reasons.push(StepUpReason::SafetyItem {
                    instrument: id.clone(),
                    flag: rule.id.clone(),
                    item: rule.item,
                });
            }
        }
    }
    if safety {
        flags.push(FLAG_SAFETY_FLOW.into());
    }
    if !reasons.is_empty() {
        flags.push(FLAG_STEP_UP.into());
    }

    let scales = instrument.scoring.multiplier != 1;
    Ok(Score {
        instrument: id,
        total,
        max_total: instrument.max_total(),
        scaled_total: scales.then(|| instrument.scaled(total)),
        scaled_unit: if scales {
            instrument.scoring.scaled_unit.clone()
        } else {
            None
        },
        band,
        flags,
        risk_level,
        prorated,
        answered,
        answers: answers.to_vec(),
        step_up_reasons: reasons,
    })
}

/// round(sum x items / answered), halves rounded up, in integers.
fn prorate(sum: u32, items: usize, answered: usize) -> u32 {
    let items = u64::try_from(items).unwrap_or(u64::MAX);
    let answered = u64::try_from(answered).unwrap_or(1).max(1);
    let scaled = u64::from(sum).saturating_mul(items).saturating_mul(2);
    let rounded = scaled.saturating_add(answered) / answered.saturating_mul(2);
    u32::try_from(rounded).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prorate_rounds_half_up() {
        assert_eq!(prorate(8, 9, 8), 9);
        assert_eq!(prorate(1, 2, 1), 2);
        assert_eq!(prorate(3, 7, 6), 4); // 3.5 -> 4
        assert_eq!(prorate(0, 9, 8), 0);
    }
}
