//! Measure schedules: which instrument, how often, from when; due and overdue at a given time.
//!
//! Rules (time is always a parameter):
//! - never completed: due at `start`;
//! - completed at `last`: due at `last + every_days`, but never before `start` (a schedule
//!   changed after a completion starts afresh);
//! - `now < due_at`: upcoming; `due_at <= now < due_at + grace_days`: due;
//!   `now >= due_at + grace_days`: overdue.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// The longest interval accepted, in days (10 years).
pub const MAX_EVERY_DAYS: u32 = 3660;
/// The longest grace period accepted, in days.
pub const MAX_GRACE_DAYS: u32 = 365;

/// A schedule could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// `every_days` must be 1..=MAX_EVERY_DAYS.
    #[error("a measure must be scheduled every 1 to {MAX_EVERY_DAYS} days, not {0}")]
    BadInterval(u32),
    /// `grace_days` must be 0..=MAX_GRACE_DAYS.
    #[error("grace period must be 0 to {MAX_GRACE_DAYS} days, not {0}")]
    BadGrace(u32),
}

/// One measure on a patient's schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeasureSchedule {
    /// Instrument id.
    pub instrument: String,
    /// Interval between completions, in days.
    every_days: u32,
    /// First due time.
    #[serde(with = "time::serde::rfc3339")]
    start: OffsetDateTime,
    /// Days after the due time before it counts as overdue.
    grace_days: u32,
}

/// Where a scheduled measure stands at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum DueStatus {
    /// Not due yet.
    Upcoming {
        /// When it becomes due.
        #[serde(with = "time::serde::rfc3339")]
        due_at: OffsetDateTime,
    },
    /// Due now, not yet overdue.
    Due {
        /// When it became due.
        #[serde(with = "time::serde::rfc3339")]
        due_at: OffsetDateTime,
        /// When it becomes overdue.
        #[serde(with = "time::serde::rfc3339")]
        overdue_at: OffsetDateTime,
    },
    /// Past its grace period.
    Overdue {
        /// When it became due.
        #[serde(with = "time::serde::rfc3339")]
        due_at: OffsetDateTime,
        /// Whole days past the due time.
        days_late: i64,
    },
}

impl DueStatus {
    /// Due or overdue: the patient should be invited to complete it.
    pub fn is_due(&self) -> bool {
        !matches!(self, DueStatus::Upcoming { .. })
    }

    /// Overdue.
    pub fn is_overdue(&self) -> bool {
        matches!(self, DueStatus::Overdue { .. })
    }
}

fn add_days(t: OffsetDateTime, days: u32) -> OffsetDateTime {
    // Intervals are bounded by the constructor; only a date near year 9999 could overflow,
    // and then the time itself is the safest answer.
    t.checked_add(Duration::days(i64::from(days))).unwrap_or(t)
}

impl MeasureSchedule {
    /// A schedule: `instrument` every `every_days` days from `start`, overdue `grace_days`
    /// after each due time.
    pub fn new(
        instrument: impl Into<String>,
        every_days: u32,
        start: OffsetDateTime,
        grace_days: u32,
    ) -> Result<Self, ScheduleError> {
        if every_days == 0 || every_days > MAX_EVERY_DAYS {
            return Err(ScheduleError::BadInterval(every_days));
        }
        if grace_days > MAX_GRACE_DAYS {
            return Err(ScheduleError::BadGrace(grace_days));
        }
        Ok(Self {
            instrument: instrument.into(),
            every_days,
            start,
            grace_days,
        })
    }

    /// Interval in days.
    pub fn every_days(&self) -> u32 {
        self.every_days
    }

    /// First due time.
    pub fn start(&self) -> OffsetDateTime {
        self.start
    }

    /// Grace period in days.
    pub fn grace_days(&self) -> u32 {
        self.grace_days
    }

    /// When the measure is next due, given the last completion (if any).
    pub fn next_due(&self, last_completed: Option<OffsetDateTime>) -> OffsetDateTime {
        match last_completed {
            None => self.start,
            Some(last) => add_days(last, self.every_days).max(self.start),
        }
    }

    /// When the next completion becomes overdue.
    pub fn overdue_at(&self, last_completed: Option<OffsetDateTime>) -> OffsetDateTime {
        add_days(self.next_due(last_completed), self.grace_days)
    }

    /// Status at `now`, given the last completion (if any).
    pub fn status(&self, last_completed: Option<OffsetDateTime>, now: OffsetDateTime) -> DueStatus {
        let due_at = self.next_due(last_completed);
        let overdue_at = self.overdue_at(last_completed);
        if now < due_at {
            DueStatus::Upcoming { due_at }
        } else if now < overdue_at {
            DueStatus::Due { due_at, overdue_at }
        } else {
            DueStatus::Overdue {
                due_at,
                days_late: (now - due_at).whole_days(),
            }
        }
    }
}
