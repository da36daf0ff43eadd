//! Stepped care: when the scores say a human should look at this now.
//!
//! A step-up is recommended for a severe score (PHQ-9 >= 20, GAD-7 >= 15: the bands marked
//! `step_up` in the data files), a positive safety item (PHQ-9 item 9), a C-SSRS screener at or
//! above moderate risk, or reliable deterioration. The clinician gets the reasons; the patient
//! is told, plainly, that a person from their care team will look at this with them.

use serde::{Deserialize, Serialize};

use crate::change::PatientOutcome;
use crate::instrument::RiskLevel;
use crate::score::Score;

/// One reason for a step-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepUpReason {
    /// The score is in a band marked `step_up` (PHQ-9 severe, GAD-7 severe).
    SevereScore {
        /// Instrument id.
        instrument: String,
        /// Raw total.
        total: u32,
        /// Band label.
        band: String,
    },
    /// A safety item is positive (PHQ-9 item 9).
    SafetyItem {
        /// Instrument id.
        instrument: String,
        /// Flag id, e.g. `item9_positive`.
        flag: String,
        /// 1-based item number.
        item: usize,
    },
    /// A suicide-risk screener at or above the instrument's step-up level.
    SuicideRisk {
        /// Instrument id.
        instrument: String,
        /// Risk level.
        level: RiskLevel,
    },
    /// Reliable deterioration from the first to the latest score.
    ReliableDeterioration {
        /// Instrument id.
        instrument: String,
        /// First total.
        first: u32,
        /// Latest total.
        latest: u32,
        /// Points of change.
        change: i64,
    },
}

impl StepUpReason {
    /// A one-line description for the clinician (no patient text, only ids and numbers).
    pub fn describe(&self) -> String {
        match self {
            StepUpReason::SevereScore {
                instrument,
                total,
                band,
            } => format!("{instrument} total {total} is in the {band} range"),
            StepUpReason::SafetyItem {
                instrument,
                flag,
                item,
            } => format!("{instrument} item {item} is positive ({flag}): safety follow-up needed"),
            StepUpReason::SuicideRisk { instrument, level } => {
                format!("{instrument} screener indicates {} risk", level.as_str())
            }
            StepUpReason::ReliableDeterioration {
                instrument,
                first,
                latest,
                change,
            } => format!("{instrument} reliably deteriorated from {first} to {latest} (+{change})"),
        }
    }
}

/// A recommendation to step up care.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepUpRecommendation {
    /// Every reason found.
    pub reasons: Vec<StepUpReason>,
    /// For the clinician: the reasons, one per line.
    pub clinician_summary: String,
    /// For the patient: a human will look at this with them.
    pub patient_message: String,
}

/// The message shown to the patient when a step-up is recommended.
pub const PATIENT_STEP_UP_MESSAGE: &str = "Thank you for filling this in. Some of your answers suggest things are hard for you right now, so we have asked a person from your care team to look at them with you. This app can't do that part: a human should. If you feel unsafe right now, please use the crisis options in this app or call your local emergency number.";

/// Collects step-up reasons from the latest scores and, if given, the patient's outcome
/// (reliable deterioration). `None` when nothing calls for a step-up.
pub fn step_up_recommendation(
    latest_scores: &[Score],
    outcome: Option<&PatientOutcome>,
) -> Option<StepUpRecommendation> {
    let mut reasons: Vec<StepUpReason> = latest_scores
        .iter()
        .flat_map(|s| s.step_up_reasons.iter().cloned())
        .collect();
    if let Some(outcome) = outcome {
        if outcome.reliable_deterioration {
            reasons.extend(
                outcome
                    .measures
                    .iter()
                    .filter(|m| m.reliable_deterioration)
                    .map(|m| StepUpReason::ReliableDeterioration {
                        instrument: m.instrument.clone(),
                        first: m.first,
                        latest: m.latest,
                        change: m.change,
                    }),
            );
        }
    }
    let mut deduped: Vec<StepUpReason> = Vec::with_capacity(reasons.len());
    for reason in reasons {
        if !deduped.contains(&reason) {
            deduped.push(reason);
        }
    }
    if deduped.is_empty() {
        return None;
    }
    let clinician_summary = deduped
        .iter()
        .map(|r| format!("- {}", r.describe()))
        .collect::<Vec<_>>()
        .join("\n");
    Some(StepUpRecommendation {
        reasons: deduped,
        clinician_summary: format!("Step-up of care recommended:\n{clinician_summary}"),
        patient_message: PATIENT_STEP_UP_MESSAGE.to_owned(),
    })
}
