#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tandem_companion::{dependence_nudge, NudgeReason, SessionSpan, UsageStats};
use tandem_domain::Timestamp;

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;
const MIN: i64 = 60_000;
/// 2026-11-27 00:00 UTC.
const T0: i64 = 1_795_737_600_000;

fn at(day: i64, hour: i64, minute: i64) -> Timestamp {
    Timestamp(T0 + day * DAY + hour * HOUR + minute * MIN)
}

fn session(day: i64, hour: i64, minutes: i64) -> SessionSpan {
    SessionSpan {
        start: at(day, hour, 0),
        end: at(day, hour, minutes),
    }
}

fn recent_contact() -> Option<Timestamp> {
    Some(at(-2, 10, 0))
}

#[test]
fn ordinary_use_gets_no_nudge() {
    // Two short sessions a day for a week, contact with the clinician two days ago.
    let sessions = (-6..=0)
        .flat_map(|d| [session(d, 9, 15), session(d, 20, 20)])
        .collect();
    let usage = UsageStats {
        sessions,
        last_human_contact: recent_contact(),
        ..Default::default()
    };
    assert_eq!(dependence_nudge(&usage, at(0, 21, 0)), None);
    assert_eq!(dependence_nudge(&UsageStats::default(), at(0, 12, 0)), None);
}

#[test]
fn many_sessions_a_day_on_several_days() {
    let sessions = (-2..=0)
        .flat_map(|d| (8..16).map(move |h| session(d, h, 10)))
        .collect();
    let usage = UsageStats {
        sessions,
        last_human_contact: recent_contact(),
        ..Default::default()
    };
    let n = dependence_nudge(&usage, at(0, 18, 0)).unwrap();
    assert_eq!(n.reasons, vec![NudgeReason::HeavyDailyUse]);
    assert!(n.text.contains("AI"));
    assert!(n.text.contains("clinician"));
}

#[test]
fn very_long_sessions() {
    let usage = UsageStats {
        sessions: vec![
            session(-5, 14, 120),
            session(-3, 14, 150),
            session(-1, 14, 100),
        ],
        last_human_contact: recent_contact(),
        ..Default::default()
    };
    let n = dependence_nudge(&usage, at(0, 12, 0)).unwrap();
    assert_eq!(n.reasons, vec![NudgeReason::LongSessions]);
    // Two long sessions are not enough; old ones fall out of the window.
    let usage = UsageStats {
        sessions: vec![
            session(-20, 14, 120),
            session(-3, 14, 150),
            session(-1, 14, 100),
        ],
        last_human_contact: recent_contact(),
        ..Default::default()
    };
    assert_eq!(dependence_nudge(&usage, at(0, 12, 0)), None);
}

#[test]
fn late_night_streak_uses_local_time() {
    // 02:00 local on four consecutive nights, patient at UTC-5 (so 07:00 UTC).
    let sessions: Vec<SessionSpan> = (-3..=0).map(|d| session(d, 7, 30)).collect();
    let usage = UsageStats {
        sessions: sessions.clone(),
        last_human_contact: recent_contact(),
        utc_offset_minutes: -300,
        ..Default::default()
    };
    let n = dependence_nudge(&usage, at(0, 15, 0)).unwrap();
    assert_eq!(n.reasons, vec![NudgeReason::LateNightStreak]);
    // In UTC those are 07:00 sessions: not late at night.
    let utc = UsageStats {
        sessions,
        last_human_contact: recent_contact(),
        ..Default::default()
    };
    assert_eq!(dependence_nudge(&utc, at(0, 15, 0)), None);
    // A broken streak (three nights, a gap, then one) is not enough.
    let broken = UsageStats {
        sessions: vec![
            session(-5, 2, 20),
            session(-4, 2, 20),
            session(-3, 2, 20),
            session(-1, 2, 20),
        ],
        last_human_contact: recent_contact(),
        ..Default::default()
    };
    assert_eq!(dependence_nudge(&broken, at(0, 12, 0)), None);
}

#[test]
fn daily_use_without_human_contact() {
    let sessions: Vec<SessionSpan> = (-5..=0).map(|d| session(d, 18, 20)).collect();
    let usage = UsageStats {
        sessions: sessions.clone(),
        last_human_contact: Some(at(-30, 10, 0)),
        ..Default::default()
    };
    let n = dependence_nudge(&usage, at(0, 19, 0)).unwrap();
    assert_eq!(n.reasons, vec![NudgeReason::NoHumanContact]);
    assert!(n.text.contains("clinician"));
    // Recent contact: fine.
    let usage = UsageStats {
        sessions,
        last_human_contact: Some(at(-10, 10, 0)),
        ..Default::default()
    };
    assert_eq!(dependence_nudge(&usage, at(0, 19, 0)), None);
}

#[test]
fn several_reasons_and_the_cooldown() {
    let mut sessions: Vec<SessionSpan> = (-3..=0).map(|d| session(d, 1, 120)).collect();
    sessions.extend((-6..=0).map(|d| session(d, 18, 10)));
    let mut usage = UsageStats {
        sessions,
        last_human_contact: None,
        ..Default::default()
    };
    let n = dependence_nudge(&usage, at(0, 20, 0)).unwrap();
    assert_eq!(
        n.reasons,
        vec![
            NudgeReason::NoHumanContact,
            NudgeReason::LateNightStreak,
            NudgeReason::LongSessions
        ]
    );
    usage.last_nudge = Some(at(0, 8, 0));
    assert_eq!(dependence_nudge(&usage, at(0, 20, 0)), None);
    assert!(dependence_nudge(&usage, at(1, 9, 0)).is_some());
}

#[test]
fn activity_times_group_into_sessions_split_by_pauses() {
    use tandem_companion::sessions_from_activity;
    let min = 60_000;
    let times = [40 * min, 0, 10 * min, 30 * min, 200 * min, 75 * min];
    let spans = sessions_from_activity(&times, 30);
    let got: Vec<(i64, i64)> = spans
        .iter()
        .map(|s| (s.start.millis() / min, s.end.millis() / min))
        .collect();
    // 0-10-30-40 chain (each pause <= 30 min); 75 is 35 min after 40; 200 stands alone.
    assert_eq!(got, vec![(0, 40), (75, 75), (200, 200)]);
    assert!(sessions_from_activity(&[], 30).is_empty());
}
