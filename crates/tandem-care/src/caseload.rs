//! The caseload priority rule: which of a clinician's patients needs them first, and why.
//!
//! Pure: the caller gathers each patient's signals and passes the time in. The order is
//! lexicographic, most important first:
//! 1. unacknowledged crisis alerts (risk events at high or imminent not yet acknowledged);
//! 2. current risk level (the highest level in the last `risk_window_days`, or any
//!    unacknowledged event);
//! 3. reliable deterioration on any measure;
//! 4. a score in a severe band;
//! 5. overdue measures;
//! 6. disengagement (no contact in `disengaged_after_days`, or never);
//! 7. open "talk to my clinician" requests;
//! 8. consent to AI processing withdrawn (so the clinician hears of it);
//!
//! then by login name, so the order is stable. Each row carries the reasons in that order.

use serde::Serialize;
use tandem_domain::PatientId;

const DAY_MS: i64 = 86_400_000;

/// A risk event as the ranking sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskSignal {
    /// `none` | `low` | `moderate` | `high` | `imminent`.
    pub level: String,
    pub at_ms: i64,
    pub acknowledged: bool,
}

/// What is known about one patient on the caseload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatientSignals {
    pub patient: Option<PatientId>,
    pub username: String,
    pub risk_events: Vec<RiskSignal>,
    /// Instruments with a reliable deterioration against the first score.
    pub deteriorated: Vec<String>,
    /// Instruments whose latest score is in a severe band.
    pub severe: Vec<String>,
    pub overdue: Vec<String>,
    pub last_activity_ms: Option<i64>,
    pub open_talk_requests: u32,
    /// The patient withdrew consent to AI processing (the companion is off).
    pub ai_consent_withdrawn: bool,
}

/// Thresholds of the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaseloadRules {
    pub risk_window_days: i64,
    pub disengaged_after_days: i64,
}

impl Default for CaseloadRules {
    fn default() -> Self {
        CaseloadRules {
            risk_window_days: 14,
            disengaged_after_days: 7,
        }
    }
}

/// One caseload row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RankedPatient {
    pub patient: Option<PatientId>,
    pub username: String,
    pub unacknowledged_alerts: u32,
    /// The current risk level (`none` when nothing recent).
    pub risk_level: String,
    /// Why the patient is where they are, most important first.
    pub reasons: Vec<String>,
    /// The reasons as one sentence for the caseload row.
    pub reason: String,
}

/// The rank of a risk level name: higher is more urgent; unknown names count as none.
pub fn level_rank(level: &str) -> u8 {
    match level {
        "imminent" => 4,
        "high" => 3,
        "moderate" => 2,
        "low" => 1,
        _ => 0,
    }
}

fn level_name(rank: u8) -> &'static str {
    match rank {
        4 => "imminent",
        3 => "high",
        2 => "moderate",
        1 => "low",
        _ => "none",
    }
}

type SortKey = (u32, u8, bool, bool, usize, bool, u32, bool);

fn evaluate(s: &PatientSignals, now_ms: i64, rules: &CaseloadRules) -> (SortKey, RankedPatient) {
    let alerts = s
        .risk_events
        .iter()
        .filter(|e| !e.acknowledged && level_rank(&e.level) >= 3)
        .count();
    let alerts = u32::try_from(alerts).unwrap_or(u32::MAX);
    let window_start = now_ms.saturating_sub(rules.risk_window_days.saturating_mul(DAY_MS));
    let risk = s
        .risk_events
        .iter()
        .filter(|e| !e.acknowledged || e.at_ms >= window_start)
        .map(|e| level_rank(&e.level))
        .max()
        .unwrap_or(0);
    let disengaged = match s.last_activity_ms {
        None => true,
        Some(t) => now_ms.saturating_sub(t) > rules.disengaged_after_days.saturating_mul(DAY_MS),
    };
    let mut reasons = Vec::new();
    if alerts > 0 {
        reasons.push(if alerts == 1 {
            "1 unacknowledged crisis alert".to_string()
        } else {
            format!("{alerts} unacknowledged crisis alerts")
        });
    }
    if risk >= 2 {
        reasons.push(format!("current risk: {}", level_name(risk)));
    }
    if !s.deteriorated.is_empty() {
        reasons.push(format!(
            "reliable deterioration on {}",
            s.deteriorated.join(", ")
        ));
    }
    if !s.severe.is_empty() {
        reasons.push(format!("severe score on {}", s.severe.join(", ")));
    }
    if !s.overdue.is_empty() {
        reasons.push(format!("overdue: {}", s.overdue.join(", ")));
    }
    if disengaged {
        reasons.push(match s.last_activity_ms {
            None => "no contact yet".to_string(),
            Some(t) => format!("no contact in {} days", now_ms.saturating_sub(t) / DAY_MS),
        });
    }
    if s.open_talk_requests > 0 {
        reasons.push(if s.open_talk_requests == 1 {
            "asked to talk to you".to_string()
        } else {
            format!("asked to talk to you ({} requests)", s.open_talk_requests)
        });
    }
    if s.ai_consent_withdrawn {
        reasons.push("withdrew consent to AI processing".to_string());
    }
    let reason = if reasons.is_empty() {
        "no concerns flagged".to_string()
    } else {
        reasons.join("; ")
    };
    let key = (
        alerts,
        risk,
        !s.deteriorated.is_empty(),
        !s.severe.is_empty(),
        s.overdue.len(),
        disengaged,
        s.open_talk_requests,
        s.ai_consent_withdrawn,
    );
    (
        key,
        RankedPatient {
            patient: s.patient,
            username: s.username.clone(),
            unacknowledged_alerts: alerts,
            risk_level: level_name(risk).to_string(),
            reasons,
            reason,
        },
    )
}

/// Orders a caseload by priority (see the module docs), most urgent first.
pub fn rank_caseload(
    signals: &[PatientSignals],
    now_ms: i64,
    rules: &CaseloadRules,
) -> Vec<RankedPatient> {
    let mut rows: Vec<(SortKey, RankedPatient)> =
        signals.iter().map(|s| evaluate(s, now_ms, rules)).collect();
    rows.sort_by(|(ka, a), (kb, b)| kb.cmp(ka).then_with(|| a.username.cmp(&b.username)));
    rows.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 100 * DAY_MS;

    fn quiet(name: &str) -> PatientSignals {
        PatientSignals {
            username: name.into(),
            last_activity_ms: Some(NOW - DAY_MS),
            ..Default::default()
        }
    }

    fn ev(level: &str, days_ago: i64, acknowledged: bool) -> RiskSignal {
        RiskSignal {
            level: level.into(),
            at_ms: NOW - days_ago * DAY_MS,
            acknowledged,
        }
    }

    fn order(rows: &[RankedPatient]) -> Vec<&str> {
        rows.iter().map(|r| r.username.as_str()).collect()
    }

    #[test]
    fn each_signal_outranks_the_ones_after_it() {
        let mut alert = quiet("alert");
        alert.risk_events = vec![ev("high", 1, false)];
        let mut risk = quiet("risk");
        risk.risk_events = vec![ev("imminent", 2, true)];
        let mut worse = quiet("worse");
        worse.deteriorated = vec!["phq9".into()];
        let mut severe = quiet("severe");
        severe.severe = vec!["phq9".into()];
        let mut overdue = quiet("overdue");
        overdue.overdue = vec!["gad7".into()];
        let mut gone = quiet("gone");
        gone.last_activity_ms = Some(NOW - 30 * DAY_MS);
        let mut talk = quiet("talk");
        talk.open_talk_requests = 1;
        let fine = quiet("fine");
        let all = vec![
            fine.clone(),
            talk,
            gone,
            overdue,
            severe,
            worse,
            risk,
            alert,
        ];
        let ranked = rank_caseload(&all, NOW, &CaseloadRules::default());
        assert_eq!(
            order(&ranked),
            ["alert", "risk", "worse", "severe", "overdue", "gone", "talk", "fine"]
        );
        assert_eq!(
            ranked[0].reason,
            "1 unacknowledged crisis alert; current risk: high"
        );
        assert_eq!(ranked[0].unacknowledged_alerts, 1);
        assert_eq!(ranked[1].reason, "current risk: imminent");
        assert_eq!(ranked[5].reason, "no contact in 30 days");
        assert_eq!(ranked[6].reason, "asked to talk to you");
        assert_eq!(ranked[7].reason, "no concerns flagged");
    }

    #[test]
    fn old_acknowledged_risk_fades_but_unacknowledged_risk_does_not() {
        let mut old = quiet("old");
        old.risk_events = vec![ev("high", 30, true)];
        let mut open = quiet("open");
        open.risk_events = vec![ev("moderate", 30, false)];
        let ranked = rank_caseload(&[old, open], NOW, &CaseloadRules::default());
        assert_eq!(order(&ranked), ["open", "old"]);
        assert_eq!(ranked[1].risk_level, "none");
        assert_eq!(ranked[0].risk_level, "moderate");
        // A moderate flag is a risk level, not a crisis alert.
        assert_eq!(ranked[0].unacknowledged_alerts, 0);
    }

    #[test]
    fn never_seen_is_disengaged_and_ties_break_by_name() {
        let mut a = quiet("b-never");
        a.last_activity_ms = None;
        let mut b = quiet("a-never");
        b.last_activity_ms = None;
        let ranked = rank_caseload(&[a, b, quiet("c")], NOW, &CaseloadRules::default());
        assert_eq!(order(&ranked), ["a-never", "b-never", "c"]);
        assert_eq!(ranked[0].reason, "no contact yet");
    }

    #[test]
    fn more_alerts_come_first_and_are_counted() {
        let mut one = quiet("one");
        one.risk_events = vec![ev("high", 0, false)];
        let mut two = quiet("two");
        two.risk_events = vec![ev("high", 0, false), ev("imminent", 0, false)];
        let ranked = rank_caseload(&[one, two], NOW, &CaseloadRules::default());
        assert_eq!(order(&ranked), ["two", "one"]);
        assert!(ranked[0]
            .reason
            .starts_with("2 unacknowledged crisis alerts"));
    }
}
