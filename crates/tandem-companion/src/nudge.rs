//! The dependence nudge: a care rule that notices heavy use of the companion and suggests
//! turning to the clinician and to people the patient trusts.
//!
//! Why: the companion is meant to support care between sessions, not to replace people. The
//! APA health advisory on the use of generative AI chatbots and wellness applications for
//! mental health (American Psychological Association, November 2025) warns against unhealthy
//! reliance on such tools; a four-week randomised study of chatbot use (Fang et al., "How AI
//! and Human Behaviors Shape Psychosocial Effects of Chatbot Use: A Longitudinal Randomized
//! Controlled Study", MIT Media Lab & OpenAI, 2025, arXiv:2503.17473) found that heavier daily
//! use went with more loneliness and emotional dependence.
//!
//! The thresholds below are a **product decision**, not clinically validated cut-offs: they
//! are deliberately generous so the nudge is rare, and a clinic can change them by building
//! its own [`NudgeThresholds`]. Time is a parameter: nothing here reads the clock.

use serde::{Deserialize, Serialize};
use tandem_domain::Timestamp;

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
const MINUTE_MS: i64 = 60_000;

/// One stretch of use (a conversation session).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSpan {
    pub start: Timestamp,
    pub end: Timestamp,
}

/// What the rule looks at, filled by the engine from the store.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageStats {
    /// Recent sessions (at least the last [`NudgeThresholds::window_days`] days), any order.
    pub sessions: Vec<SessionSpan>,
    /// Last contact with a human on the care team (appointment, message, call).
    pub last_human_contact: Option<Timestamp>,
    /// When the patient was last nudged, to avoid nagging.
    pub last_nudge: Option<Timestamp>,
    /// The patient's offset from UTC in minutes, for "late night" and calendar days.
    pub utc_offset_minutes: i32,
}

/// The rule's thresholds, with the defaults documented on [`NudgeThresholds::DEFAULT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NudgeThresholds {
    /// Days of history looked at.
    pub window_days: i64,
    /// A day is "heavy" with more than this many sessions started.
    pub sessions_per_day: usize,
    /// Heavy use needs at least this many heavy days in the window.
    pub heavy_days: usize,
    /// A session longer than this (minutes) counts as long.
    pub long_session_minutes: i64,
    /// Nudge when at least this many long sessions fall in the window.
    pub long_sessions: usize,
    /// Late night: sessions starting from this local hour (inclusive)…
    pub late_night_start_hour: i64,
    /// …until this local hour (exclusive).
    pub late_night_end_hour: i64,
    /// Nudge when at least this many consecutive nights (ending last night or tonight) had use.
    pub late_night_streak: usize,
    /// Days without human contact after which daily use is worth a nudge.
    pub days_without_human_contact: i64,
    /// …when the companion was used on at least this many days of the window.
    pub active_days_without_contact: usize,
    /// Never nudge again within this many hours of the last nudge.
    pub cooldown_hours: i64,
}

impl NudgeThresholds {
    /// Defaults (product decisions):
    /// - heavy use: more than 6 sessions a day on 3 or more of the last 7 days (several
    ///   check-ins a day are expected; many, repeatedly, suggest reliance);
    /// - long sessions: 3 or more sessions over 90 minutes in 7 days (longer than a typical
    ///   therapy session, repeatedly);
    /// - late nights: use starting between 00:00 and 05:00 local time on 4 consecutive nights
    ///   (sleep loss and isolation at night; a clinician should know);
    /// - no human contact for 21 days while the companion was used on 5 of the last 7 days;
    /// - at most one nudge per 24 hours.
    pub const DEFAULT: NudgeThresholds = NudgeThresholds {
        window_days: 7,
        sessions_per_day: 6,
        heavy_days: 3,
        long_session_minutes: 90,
        long_sessions: 3,
        late_night_start_hour: 0,
        late_night_end_hour: 5,
        late_night_streak: 4,
        days_without_human_contact: 21,
        active_days_without_contact: 5,
        cooldown_hours: 24,
    };
}

impl Default for NudgeThresholds {
    fn default() -> Self {
        NudgeThresholds::DEFAULT
    }
}

/// Why a nudge was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NudgeReason {
    HeavyDailyUse,
    LongSessions,
    LateNightStreak,
    NoHumanContact,
}

/// A suggestion to reach out to people, shown to the patient (and logged for the clinician by
/// reason only).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nudge {
    /// Every reason that applied, most important first; the text follows the first.
    pub reasons: Vec<NudgeReason>,
    pub text: String,
}

impl NudgeReason {
    /// The reason's code, as serialised (`no_human_contact`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            NudgeReason::HeavyDailyUse => "heavy_daily_use",
            NudgeReason::LongSessions => "long_sessions",
            NudgeReason::LateNightStreak => "late_night_streak",
            NudgeReason::NoHumanContact => "no_human_contact",
        }
    }
}

fn nudge_text(reason: NudgeReason) -> &'static str {
    match reason {
        NudgeReason::NoHumanContact => "I've noticed we've been talking a lot, and it's been a while since you were in touch with your clinician. I'm glad to help, but I'm an AI and can't replace people. Could you get in touch with your clinician, or someone you trust, this week?",
        NudgeReason::LateNightStreak => "I've noticed you've been here late at night for several nights. Nights can be hard. I'm an AI, and people can support you in ways I can't: it might help to tell your clinician how the nights have been, or reach out to someone you trust.",
        NudgeReason::HeavyDailyUse => "We've been talking many times a day recently. I'm glad to be here, but I'm an AI, and connection with people matters too. Is there someone you trust you could talk to today? Your clinician would also want to know how you're doing.",
        NudgeReason::LongSessions => "Some of our conversations have been very long lately. It might help to take a break, and to share what's been on your mind with your clinician or someone you trust.",
    }
}

fn local_ms(t: Timestamp, offset_minutes: i32) -> i64 {
    t.millis()
        .saturating_add(i64::from(offset_minutes).saturating_mul(MINUTE_MS))
}

/// Groups activity times (milliseconds, any order) into sessions: a pause longer than
/// `gap_minutes` between two messages starts a new session.
pub fn sessions_from_activity(times_ms: &[i64], gap_minutes: i64) -> Vec<SessionSpan> {
    let mut sorted = times_ms.to_vec();
    sorted.sort_unstable();
    let gap = gap_minutes.saturating_mul(MINUTE_MS);
    let mut out: Vec<SessionSpan> = Vec::new();
    for t in sorted {
        match out.last_mut() {
            Some(last) if t.saturating_sub(last.end.millis()) <= gap => last.end = Timestamp(t),
            _ => out.push(SessionSpan {
                start: Timestamp(t),
                end: Timestamp(t),
            }),
        }
    }
    out
}

/// Whether heavy use calls for a nudge now, under the default thresholds.
pub fn dependence_nudge(usage: &UsageStats, now: Timestamp) -> Option<Nudge> {
    dependence_nudge_with(usage, now, &NudgeThresholds::DEFAULT)
}

/// [`dependence_nudge`] with explicit thresholds.
pub fn dependence_nudge_with(
    usage: &UsageStats,
    now: Timestamp,
    th: &NudgeThresholds,
) -> Option<Nudge> {
    if let Some(last) = usage.last_nudge {
        if now.millis().saturating_sub(last.millis()) < th.cooldown_hours.saturating_mul(HOUR_MS) {
            return None;
        }
    }
    let off = usage.utc_offset_minutes;
    let now_local = local_ms(now, off);
    let today = now_local.div_euclid(DAY_MS);
    let first_day = today - th.window_days + 1;
    let window_start = now
        .millis()
        .saturating_sub(th.window_days.saturating_mul(DAY_MS));

    let recent: Vec<&SessionSpan> = usage
        .sessions
        .iter()
        .filter(|s| s.start.millis() <= now.millis())
        .filter(|s| local_ms(s.start, off).div_euclid(DAY_MS) >= first_day)
        .collect();

    // Sessions per local calendar day in the window.
    let mut per_day = vec![0usize; usize::try_from(th.window_days.max(0)).unwrap_or(0)];
    for s in &recent {
        let day = local_ms(s.start, off).div_euclid(DAY_MS) - first_day;
        if let Some(slot) = usize::try_from(day).ok().and_then(|d| per_day.get_mut(d)) {
            *slot += 1;
        }
    }
    let heavy_days = per_day.iter().filter(|&&n| n > th.sessions_per_day).count();
    let active_days = per_day.iter().filter(|&&n| n > 0).count();

    let long = recent
        .iter()
        .filter(|s| s.start.millis() >= window_start)
        .filter(|s| {
            s.end.millis().saturating_sub(s.start.millis())
                > th.long_session_minutes.saturating_mul(MINUTE_MS)
        })
        .count();

    // Late-night streak: consecutive "nights" (keyed by the local day on which the early
    // hours fall) with a session starting in the late-night hours, counted back from today.
    let night_days: Vec<i64> = recent
        .iter()
        .filter_map(|s| {
            let local = local_ms(s.start, off);
            let hour = local.rem_euclid(DAY_MS) / HOUR_MS;
            (hour >= th.late_night_start_hour && hour < th.late_night_end_hour)
                .then(|| local.div_euclid(DAY_MS))
        })
        .collect();
    let streak_from = |start: i64| {
        let mut n = 0usize;
        let mut d = start;
        while night_days.contains(&d) {
            n += 1;
            d -= 1;
        }
        n
    };
    let streak = streak_from(today).max(streak_from(today - 1));

    let no_contact = match usage.last_human_contact {
        Some(t) => {
            now.millis().saturating_sub(t.millis())
                > th.days_without_human_contact.saturating_mul(DAY_MS)
        }
        None => true,
    };

    let mut reasons = Vec::new();
    if no_contact && active_days >= th.active_days_without_contact {
        reasons.push(NudgeReason::NoHumanContact);
    }
    if streak >= th.late_night_streak {
        reasons.push(NudgeReason::LateNightStreak);
    }
    if heavy_days >= th.heavy_days {
        reasons.push(NudgeReason::HeavyDailyUse);
    }
    if long >= th.long_sessions {
        reasons.push(NudgeReason::LongSessions);
    }
    let first = *reasons.first()?;
    Some(Nudge {
        reasons,
        text: nudge_text(first).to_string(),
    })
}
