#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Schedules: time is a parameter, so nothing waits.

use time::macros::datetime;
use time::Duration;

use tandem_measures::{DueStatus, MeasureSchedule, ScheduleError};

#[test]
fn never_completed_is_due_at_start() {
    let start = datetime!(2025-03-01 09:00 UTC);
    let s = MeasureSchedule::new("PHQ-9", 14, start, 3).unwrap();
    assert_eq!(s.next_due(None), start);
    assert_eq!(
        s.status(None, start - Duration::hours(1)),
        DueStatus::Upcoming { due_at: start }
    );
    let st = s.status(None, start);
    assert!(st.is_due() && !st.is_overdue());
    assert_eq!(
        st,
        DueStatus::Due {
            due_at: start,
            overdue_at: start + Duration::days(3)
        }
    );
    let st = s.status(None, start + Duration::days(3));
    assert_eq!(
        st,
        DueStatus::Overdue {
            due_at: start,
            days_late: 3
        }
    );
}

#[test]
fn every_two_weeks_from_the_last_completion() {
    let start = datetime!(2025-03-01 09:00 UTC);
    let s = MeasureSchedule::new("gad7", 14, start, 2).unwrap();
    let done = datetime!(2025-03-02 20:30 UTC);
    let due = datetime!(2025-03-16 20:30 UTC);
    assert_eq!(s.next_due(Some(done)), due);
    assert!(!s.status(Some(done), due - Duration::seconds(1)).is_due());
    assert!(s.status(Some(done), due).is_due());
    assert!(!s.status(Some(done), due + Duration::days(1)).is_overdue());
    let st = s.status(Some(done), due + Duration::days(10));
    assert!(st.is_overdue());
    assert_eq!(
        st,
        DueStatus::Overdue {
            due_at: due,
            days_late: 10
        }
    );
}

#[test]
fn completion_before_a_new_start_waits_for_the_start() {
    let start = datetime!(2025-06-01 00:00 UTC);
    let s = MeasureSchedule::new("PHQ-9", 7, start, 0).unwrap();
    let old = datetime!(2025-05-20 00:00 UTC);
    assert_eq!(
        s.next_due(Some(datetime!(2025-05-28 00:00 UTC))),
        datetime!(2025-06-04 00:00 UTC)
    );
    assert_eq!(s.next_due(Some(old)), start);
    // Zero grace: overdue as soon as due.
    assert!(s.status(Some(old), start).is_overdue());
}

#[test]
fn bad_intervals_are_rejected() {
    let start = datetime!(2025-06-01 00:00 UTC);
    assert_eq!(
        MeasureSchedule::new("PHQ-9", 0, start, 1).unwrap_err(),
        ScheduleError::BadInterval(0)
    );
    assert!(MeasureSchedule::new("PHQ-9", 100_000, start, 1).is_err());
    assert!(MeasureSchedule::new("PHQ-9", 7, start, 1000).is_err());
}

#[test]
fn offsets_are_respected() {
    let start = datetime!(2025-03-01 09:00 +01:00);
    let s = MeasureSchedule::new("PHQ-9", 1, start, 0).unwrap();
    assert!(s.status(None, datetime!(2025-03-01 08:00 UTC)).is_due());
    assert!(!s.status(None, datetime!(2025-03-01 07:59 UTC)).is_due());
}

#[test]
fn status_serialises_with_a_tag() {
    let start = datetime!(2025-03-01 09:00 UTC);
    let s = MeasureSchedule::new("PHQ-9", 14, start, 3).unwrap();
    let v = serde_json::to_value(s.status(None, start)).unwrap();
    assert_eq!(v["status"], "due");
}
