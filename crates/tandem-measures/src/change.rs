//! Change over time, per patient and per caseload, as NHS Talking Therapies defines it.
//!
//! Definitions implemented (NHS Talking Therapies for anxiety and depression Manual, NHS England;
//! NHS Digital, NHS Talking Therapies / IAPT key measures):
//! - **Caseness**: a score at or above the clinical threshold on the depression measure
//!   (PHQ-9 >= 10) and/or the anxiety measure (GAD-7 >= 8).
//! - **Reliable improvement**: a decrease of at least the reliable change index (PHQ-9: 6,
//!   GAD-7: 4) from the first to the last score on at least one measure, and no reliable
//!   deterioration on the other.
//! - **Reliable deterioration**: an increase of at least the reliable change index on at least
//!   one measure, and no reliable improvement on the other.
//! - **Recovery**: at caseness on the first scores, and below caseness on *both* measures at the
//!   last scores.
//! - **Reliable recovery**: recovery and reliable improvement together.
//! - **Rates** (NHS Digital): recovery and reliable recovery rates are over patients who
//!   finished treatment *and were at caseness at the start*; reliable improvement and
//!   deterioration rates are over all patients who finished treatment.
//!
//! Tandem's adaptations, stated here so they are visible: "finished treatment" is the set of
//! outcomes the caller passes (e.g. discharged patients); a patient counts only with paired
//! scores (at least two on some measure); only measures with paired scores are compared, so a
//! patient measured with the PHQ-9 alone is judged on the PHQ-9 alone; the GAD-7 stands in for
//! the anxiety-disorder-specific measures NHS Talking Therapies uses where one applies.
//! Which measures count is data: every instrument with a `[change]` section.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::registry::{normalize_id, Registry};
use crate::score::Score;

/// One scored assessment in a patient's series.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assessment {
    /// Instrument id (any accepted spelling).
    pub instrument: String,
    /// Raw total.
    pub total: u32,
    /// When it was completed.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

impl Assessment {
    /// An assessment from a score and its completion time.
    pub fn from_score(score: &Score, at: OffsetDateTime) -> Self {
        Self {
            instrument: score.instrument.clone(),
            total: score.total,
            at,
        }
    }
}

/// First-to-last change on one measure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeasureChange {
    /// Canonical instrument id.
    pub instrument: String,
    /// Number of assessments on this measure.
    pub count: usize,
    /// First total.
    pub first: u32,
    /// Last total.
    pub latest: u32,
    /// latest - first (negative is improvement on symptom scales).
    pub change: i64,
    /// Caseness threshold used.
    pub caseness: u32,
    /// Reliable change index used.
    pub reliable_change: u32,
    /// First total at caseness.
    pub caseness_first: bool,
    /// Last total at caseness.
    pub caseness_latest: bool,
    /// Reliable decrease (paired only).
    pub reliable_improvement: bool,
    /// Reliable increase (paired only).
    pub reliable_deterioration: bool,
}

impl MeasureChange {
    /// At least two assessments: the change means something.
    pub fn paired(&self) -> bool {
        self.count >= 2
    }
}

/// One patient's outcome over a series.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientOutcome {
    /// Per-measure change, for every measure with change thresholds present in the series.
    pub measures: Vec<MeasureChange>,
    /// At least one measure has paired scores.
    pub paired: bool,
    /// At caseness on the first scores (any paired measure).
    pub caseness_first: bool,
    /// At caseness on the last scores (any paired measure).
    pub caseness_latest: bool,
    /// Reliable improvement (see module docs).
    pub reliable_improvement: bool,
    /// Reliable deterioration (see module docs).
    pub reliable_deterioration: bool,
    /// Recovery: caseness first, no caseness on any measure last.
    pub recovery: bool,
    /// Recovery and reliable improvement.
    pub reliable_recovery: bool,
}

/// Computes a patient's outcome from their series (any order; sorted by time here). Assessments
/// on instruments without change thresholds, or unknown to the registry, are ignored.
pub fn patient_outcome(registry: &Registry, series: &[Assessment]) -> PatientOutcome {
    let mut measures = Vec::new();
    for instrument in registry.instruments() {
        let Some(rule) = &instrument.change else {
            continue;
        };
        let key = normalize_id(&instrument.id);
        let mut points: Vec<&Assessment> = series
            .iter()
            .filter(|a| {
                registry
                    .get(&a.instrument)
                    .is_some_and(|i| normalize_id(&i.id) == key)
            })
            .collect();
        points.sort_by_key(|a| a.at);
        let (Some(first), Some(last)) = (points.first(), points.last()) else {
            continue;
        };
        let change = i64::from(last.total) - i64::from(first.total);
        let paired = points.len() >= 2;
        let rc = i64::from(rule.reliable_change);
        measures.push(MeasureChange {
            instrument: instrument.id.clone(),
            count: points.len(),
            first: first.total,
            latest: last.total,
            change,
            caseness: rule.caseness,
            reliable_change: rule.reliable_change,
            caseness_first: first.total >= rule.caseness,
            caseness_latest: last.total >= rule.caseness,
            reliable_improvement: paired && change <= -rc,
            reliable_deterioration: paired && change >= rc,
        });
    }
    outcome_from_measures(measures)
}

fn outcome_from_measures(measures: Vec<MeasureChange>) -> PatientOutcome {
    let paired: Vec<&MeasureChange> = measures.iter().filter(|m| m.paired()).collect();
    let any_paired = !paired.is_empty();
    let improved = paired.iter().any(|m| m.reliable_improvement);
    let deteriorated = paired.iter().any(|m| m.reliable_deterioration);
    let caseness_first = paired.iter().any(|m| m.caseness_first);
    let caseness_latest = paired.iter().any(|m| m.caseness_latest);
    let reliable_improvement = improved && !deteriorated;
    let reliable_deterioration = deteriorated && !improved;
    let recovery = any_paired && caseness_first && !caseness_latest;
    PatientOutcome {
        paired: any_paired,
        caseness_first,
        caseness_latest,
        reliable_improvement,
        reliable_deterioration,
        recovery,
        reliable_recovery: recovery && reliable_improvement,
        measures,
    }
}

/// Aggregate rates for a caseload or a clinic, with NHS Talking Therapies' denominators.
/// Rates are fractions in 0..=1, `None` when the denominator is zero.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomeRates {
    /// Patients with paired scores ("finished treatment"): denominator of the reliable
    /// improvement and deterioration rates.
    pub finished: usize,
    /// Of those, at caseness at the start: denominator of the recovery and reliable recovery
    /// rates.
    pub finished_at_caseness: usize,
    /// Recovered (numerator).
    pub recovered: usize,
    /// Reliably improved (numerator).
    pub reliably_improved: usize,
    /// Reliably recovered (numerator).
    pub reliably_recovered: usize,
    /// Reliably deteriorated (numerator).
    pub deteriorated: usize,
    /// recovered / finished_at_caseness.
    pub recovery_rate: Option<f64>,
    /// reliably_improved / finished.
    pub reliable_improvement_rate: Option<f64>,
    /// reliably_recovered / finished_at_caseness.
    pub reliable_recovery_rate: Option<f64>,
    /// deteriorated / finished.
    pub deterioration_rate: Option<f64>,
}

/// Rates over a set of patient outcomes (pass one caseload, or a whole clinic).
pub fn outcome_rates(outcomes: &[PatientOutcome]) -> OutcomeRates {
    let finished: Vec<&PatientOutcome> = outcomes.iter().filter(|o| o.paired).collect();
    let at_caseness: Vec<&&PatientOutcome> = finished.iter().filter(|o| o.caseness_first).collect();
    let recovered = at_caseness.iter().filter(|o| o.recovery).count();
    let reliably_recovered = at_caseness.iter().filter(|o| o.reliable_recovery).count();
    let reliably_improved = finished.iter().filter(|o| o.reliable_improvement).count();
    let deteriorated = finished.iter().filter(|o| o.reliable_deterioration).count();
    let rate = |n: usize, d: usize| (d > 0).then(|| n as f64 / d as f64);
    OutcomeRates {
        finished: finished.len(),
        finished_at_caseness: at_caseness.len(),
        recovered,
        reliably_improved,
        reliably_recovered,
        deteriorated,
        recovery_rate: rate(recovered, at_caseness.len()),
        reliable_improvement_rate: rate(reliably_improved, finished.len()),
        reliable_recovery_rate: rate(reliably_recovered, at_caseness.len()),
        deterioration_rate: rate(deteriorated, finished.len()),
    }
}
