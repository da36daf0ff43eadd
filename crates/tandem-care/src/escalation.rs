//! Escalation of unacknowledged crisis alerts to the on-call clinician.
//!
//! Every crisis alert must be acknowledged by a clinician. When nobody on the patient's care
//! team has done so within [`EscalationPolicy::after`], the alert goes to every clinician on
//! call. The on-call clinician may then open the patient's record (each read audited with
//! the reason) until the alert is acknowledged, and for [`EscalationPolicy::access_window`]
//! after the escalation in any case, so they can follow up.
//!
//! The rule is pure ([`EscalationPolicy::is_due`]); [`escalate_overdue`] applies it
//! through the store, exactly once per alert even with several servers running the job.

use std::time::Duration;
use tandem_domain::{PatientId, RiskEventId, UserId};
use tandem_store::{Actor, AlertHead, Store, StoreError};

/// When an unacknowledged alert escalates, and which alerts do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EscalationPolicy {
    /// How long an alert may stay unacknowledged before it escalates.
    pub after: Duration,
    /// The risk levels whose alerts escalate (crisis alerts: high and imminent).
    pub levels: Vec<String>,
    /// How long the on-call clinician keeps access to the patient after an escalation
    /// that has been acknowledged (until acknowledgement they always have it).
    pub access_window: Duration,
}

impl Default for EscalationPolicy {
    fn default() -> Self {
        EscalationPolicy {
            after: Duration::from_secs(15 * 60),
            levels: vec!["high".into(), "imminent".into()],
            access_window: Duration::from_secs(72 * 60 * 60),
        }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl EscalationPolicy {
    /// Alerts recorded at or before this time are overdue at `now_ms`.
    pub fn overdue_before(&self, now_ms: i64) -> i64 {
        now_ms.saturating_sub(millis(self.after))
    }

    /// Whether an alert escalates now: a level that escalates, neither acknowledged nor
    /// already escalated, and unacknowledged for at least `after`.
    pub fn is_due(&self, alert: &AlertHead, acknowledged: bool, now_ms: i64) -> bool {
        !acknowledged
            && alert.escalated_at_ms.is_none()
            && self.levels.contains(&alert.level)
            && alert.created_at_ms <= self.overdue_before(now_ms)
    }

    /// The earliest escalation time that still grants the on-call clinician access.
    pub fn access_since(&self, now_ms: i64) -> i64 {
        now_ms.saturating_sub(millis(self.access_window))
    }
}

/// One alert that was escalated by this run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Escalated {
    pub risk_event: RiskEventId,
    pub patient: PatientId,
    pub level: String,
    pub categories: Vec<String>,
    pub to: Vec<UserId>,
}

/// What one run of the job did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EscalationRun {
    pub escalated: Vec<Escalated>,
    /// Overdue alerts left waiting because nobody is on call.
    pub waiting_for_on_call: usize,
}

/// Escalates every overdue alert to the clinicians on call now. With nobody on call the
/// alerts stay overdue (and are counted), so they escalate as soon as someone is.
pub async fn escalate_overdue(
    store: &dyn Store,
    policy: &EscalationPolicy,
    now_ms: i64,
) -> Result<EscalationRun, StoreError> {
    let levels: Vec<&str> = policy.levels.iter().map(String::as_str).collect();
    let overdue: Vec<AlertHead> = store
        .unescalated_alerts(&levels, policy.overdue_before(now_ms))
        .await?
        .into_iter()
        .filter(|a| policy.is_due(a, false, now_ms))
        .collect();
    let mut run = EscalationRun::default();
    if overdue.is_empty() {
        return Ok(run);
    }
    let on_call = store.on_call().await?;
    if on_call.is_empty() {
        run.waiting_for_on_call = overdue.len();
        tracing::warn!(
            alerts = overdue.len(),
            "unacknowledged crisis alerts are overdue but nobody is on call: set an on-call clinician"
        );
        return Ok(run);
    }
    let actor = Actor::system("escalation");
    for alert in overdue {
        // A care-team member who is also on call already has the alert; the others get it.
        let team = store.care_team(alert.patient).await?;
        let to: Vec<UserId> = on_call
            .iter()
            .copied()
            .filter(|c| !team.contains(c))
            .collect();
        let to = if to.is_empty() { on_call.clone() } else { to };
        if store
            .escalate_risk_event(&actor, alert.id, &to, now_ms)
            .await?
        {
            tracing::info!(risk_event = %alert.id, patient = %alert.patient, clinicians = to.len(), "alert escalated to on call");
            run.escalated.push(Escalated {
                risk_event: alert.id,
                patient: alert.patient,
                level: alert.level,
                categories: alert.categories,
                to,
            });
        }
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(level: &str, created_at_ms: i64, escalated: Option<i64>) -> AlertHead {
        AlertHead {
            id: RiskEventId::from_uuid(uuid::Uuid::from_u128(1)),
            patient: PatientId::from_uuid(uuid::Uuid::from_u128(2)),
            level: level.into(),
            categories: vec!["suicide".into()],
            created_at_ms,
            escalated_at_ms: escalated,
        }
    }

    #[test]
    fn a_crisis_alert_escalates_only_once_its_time_is_up() {
        let p = EscalationPolicy::default();
        let t0 = 1_000_000_000;
        let a = head("imminent", t0, None);
        assert!(!p.is_due(&a, false, t0 + 14 * 60 * 1000 + 59_999));
        assert!(p.is_due(&a, false, t0 + 15 * 60 * 1000));
        assert!(p.is_due(&head("high", t0, None), false, t0 + 60 * 60 * 1000));
    }

    #[test]
    fn acknowledged_escalated_and_lower_level_alerts_do_not_escalate() {
        let p = EscalationPolicy::default();
        let later = 10 * 60 * 60 * 1000;
        assert!(!p.is_due(&head("high", 0, None), true, later));
        assert!(!p.is_due(&head("high", 0, Some(5)), false, later));
        assert!(!p.is_due(&head("moderate", 0, None), false, later));
        assert!(!p.is_due(&head("low", 0, None), false, later));
    }

    #[test]
    fn access_lasts_for_the_window_after_escalation() {
        let p = EscalationPolicy::default();
        assert_eq!(p.access_since(100 * 60 * 60 * 1000), 28 * 60 * 60 * 1000);
    }
}
