//! Care services: the use cases that join the store to the pure measure rules.
//!
//! * [`Care::submit_assessment`] scores a form, stores it, and when the answers call for it
//!   opens the safety flow (PHQ-9 item 9 above zero, or a C-SSRS screen at moderate or high
//!   risk): a risk event the clinician must acknowledge, and the C-SSRS screener offered.
//! * [`Care::outcome`] gives reliable change, recovery and the stepped-care recommendation
//!   from everything the patient has completed.
//! * [`Care::due_measures`] says which scheduled measures are due or overdue at a time the
//!   caller passes in.
//!
//! * [`escalate_overdue`] sends crisis alerts nobody acknowledged in time to the
//!   clinicians on call.
//!
//! Logs here carry ids and event kinds only, never scores or answers.

pub mod caseload;
pub mod escalation;

pub use caseload::{rank_caseload, CaseloadRules, PatientSignals, RankedPatient, RiskSignal};
pub use escalation::{escalate_overdue, Escalated, EscalationPolicy, EscalationRun};

use serde::Serialize;
use std::sync::Arc;
use tandem_domain::{AssessmentId, PatientId, RiskEventId};
use tandem_measures::{
    patient_outcome, step_up_recommendation, DueStatus, MeasureSchedule, PatientOutcome, Registry,
    RiskLevel, Score, ScoreError, StepUpRecommendation,
};
use tandem_store::{Actor, MeasureScheduleRow, NewAssessment, NewRiskEvent, Store, StoreError};
use time::OffsetDateTime;

#[derive(Debug, thiserror::Error)]
pub enum CareError {
    #[error(transparent)]
    Score(#[from] ScoreError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("invalid schedule: {0}")]
    Schedule(String),
}

/// What happened when a form was submitted.
#[derive(Debug, Serialize)]
pub struct Submission {
    pub assessment: AssessmentId,
    pub score: Score,
    /// Set when the answers opened the safety flow; the clinician is alerted through it.
    pub risk_event: Option<RiskEventId>,
    /// Offer the C-SSRS screener next (after a positive PHQ-9 item 9).
    pub offer_cssrs: bool,
    pub step_up: Option<StepUpRecommendation>,
}

/// A scheduled measure and where it stands.
#[derive(Debug, Serialize)]
pub struct DueMeasure {
    pub instrument: String,
    pub status: DueStatus,
}

pub struct Care {
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
}

fn ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn at(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

impl Care {
    pub fn new(store: Arc<dyn Store>, registry: Arc<Registry>) -> Care {
        Care { store, registry }
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Scores, stores and acts on a completed form. Nothing is stored for an invalid form.
    pub async fn submit_assessment(
        &self,
        actor: &Actor,
        patient: PatientId,
        instrument: &str,
        answers: &[Option<u8>],
        now: OffsetDateTime,
    ) -> Result<Submission, CareError> {
        let score = self.registry.score(instrument, answers)?;
        let assessment = self
            .store
            .record_assessment(
                actor,
                NewAssessment {
                    patient,
                    instrument: score.instrument.clone(),
                    answers: answers.to_vec(),
                    total: Some(i64::from(score.total)),
                    band: Some(score.band.clone()),
                    completed_at_ms: ms(now),
                },
            )
            .await?;

        let mut risk_event = None;
        let mut offer_cssrs = false;
        if let Some((level, evidence)) = safety_flow(&score) {
            // A risk screener answers the question itself; anything else offers the C-SSRS.
            offer_cssrs = score.risk_level.is_none();
            let id = self
                .store
                .record_risk_event(
                    actor,
                    NewRiskEvent {
                        patient,
                        conversation: None,
                        message: None,
                        source: "measure".into(),
                        level: level.into(),
                        categories: vec!["suicide".into()],
                        evidence,
                    },
                )
                .await?;
            tracing::info!(patient = %patient, risk_event = %id, "measure opened the safety flow");
            risk_event = Some(id);
        }
        let outcome = self.outcome_from_store(actor, patient).await?;
        let step_up = step_up_recommendation(std::slice::from_ref(&score), Some(&outcome));
        Ok(Submission {
            assessment,
            score,
            risk_event,
            offer_cssrs,
            step_up,
        })
    }

    async fn outcome_from_store(
        &self,
        actor: &Actor,
        patient: PatientId,
    ) -> Result<PatientOutcome, CareError> {
        let series: Vec<tandem_measures::Assessment> = self
            .store
            .assessments(actor, patient)
            .await?
            .into_iter()
            .filter_map(|a| {
                let total = u32::try_from(a.total?).ok()?;
                Some(tandem_measures::Assessment {
                    instrument: a.instrument,
                    total,
                    at: at(a.completed_at_ms),
                })
            })
            .collect();
        Ok(patient_outcome(&self.registry, &series))
    }

    /// Reliable change, recovery and caseness over everything the patient completed, and
    /// the stepped-care recommendation from their latest score on each measure.
    pub async fn outcome(
        &self,
        actor: &Actor,
        patient: PatientId,
    ) -> Result<(PatientOutcome, Option<StepUpRecommendation>), CareError> {
        let stored = self.store.assessments(actor, patient).await?;
        let mut latest: Vec<Score> = Vec::new();
        for a in stored.iter().rev() {
            if latest.iter().any(|s| s.instrument == a.instrument) {
                continue;
            }
            if let Ok(s) = self.registry.score(&a.instrument, &a.answers) {
                latest.push(s);
            }
        }
        let outcome = self.outcome_from_store(actor, patient).await?;
        let step_up = step_up_recommendation(&latest, Some(&outcome));
        Ok((outcome, step_up))
    }

    /// Sets how often the patient gets a measure, validated by the measure rules.
    pub async fn set_schedule(
        &self,
        actor: &Actor,
        patient: PatientId,
        instrument: &str,
        every_days: u32,
        grace_days: u32,
        start: OffsetDateTime,
    ) -> Result<(), CareError> {
        let inst = self
            .registry
            .get(instrument)
            .ok_or_else(|| ScoreError::UnknownInstrument(instrument.to_string()))?;
        MeasureSchedule::new(&inst.id, every_days, start, grace_days)
            .map_err(|e| CareError::Schedule(e.to_string()))?;
        self.store
            .set_measure_schedule(
                actor,
                patient,
                MeasureScheduleRow {
                    instrument: inst.id.clone(),
                    every_days: i64::from(every_days),
                    grace_days: i64::from(grace_days),
                    start_at_ms: ms(start),
                },
            )
            .await?;
        Ok(())
    }

    /// Every scheduled measure with its status at `now`.
    pub async fn due_measures(
        &self,
        actor: &Actor,
        patient: PatientId,
        now: OffsetDateTime,
    ) -> Result<Vec<DueMeasure>, CareError> {
        let schedules = self.store.measure_schedules(patient).await?;
        if schedules.is_empty() {
            return Ok(Vec::new());
        }
        let done = self.store.assessments(actor, patient).await?;
        let mut out = Vec::new();
        for row in schedules {
            let every = u32::try_from(row.every_days).unwrap_or(u32::MAX);
            let grace = u32::try_from(row.grace_days).unwrap_or(0);
            let schedule = MeasureSchedule::new(&row.instrument, every, at(row.start_at_ms), grace)
                .map_err(|e| CareError::Schedule(e.to_string()))?;
            let last = done
                .iter()
                .filter(|a| a.instrument == row.instrument)
                .map(|a| a.completed_at_ms)
                .max()
                .map(at);
            out.push(DueMeasure {
                instrument: row.instrument,
                status: schedule.status(last, now),
            });
        }
        Ok(out)
    }
}

/// The risk level and evidence a score opens the safety flow with, if it does.
/// PHQ-9 item 9 ("thoughts that you would be better off dead, or of hurting yourself"):
/// any day is a concern (moderate); more than half the days or nearly every day is high.
/// The C-SSRS screener maps through its own triage (see the instrument file).
fn safety_flow(score: &Score) -> Option<(&'static str, serde_json::Value)> {
    if let Some(risk) = score.risk_level {
        let level = match risk {
            RiskLevel::High => "high",
            RiskLevel::Moderate => "moderate",
            RiskLevel::Low | RiskLevel::None => return None,
        };
        return Some((
            level,
            serde_json::json!({"instrument": score.instrument, "rule": "cssrs_triage", "risk": level}),
        ));
    }
    if !score.safety_flow() {
        return None;
    }
    let item9 = score.answers.get(8).copied().flatten().unwrap_or(0);
    let level = if item9 >= 2 { "high" } else { "moderate" };
    Some((
        level,
        serde_json::json!({"instrument": score.instrument, "rule": "phq9_item9_positive", "item": 9, "value": item9}),
    ))
}
