//! Measures end to end through a real SQLite store: the item-9 safety flow, stepped care,
//! reliable change and recovery, and schedules, with time passed in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use tandem_care::{Care, CareError};
use tandem_domain::{PatientId, Role, Username};
use tandem_measures::{DueStatus, Registry, StepUpReason};
use tandem_store::{Actor, NewUser, SqlStore, Store};
use tandem_vault::MasterKey;
use time::{Duration, OffsetDateTime};

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<SqlStore>,
    care: Care,
    patient: PatientId,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let store = Arc::new(SqlStore::open(&url, MasterKey::generate()).await.unwrap());
    let user = store
        .create_user(
            &Actor::system("test"),
            NewUser {
                username: Username::parse("pat").unwrap(),
                role: Role::Patient,
                password_hash: "x".into(),
            },
        )
        .await
        .unwrap();
    let care = Care::new(store.clone(), Arc::new(Registry::builtin().unwrap()));
    Fixture {
        _dir: dir,
        store,
        care,
        patient: user.patient_id().unwrap(),
    }
}

fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_780_000_000).unwrap()
}

fn answers(v: &[u8]) -> Vec<Option<u8>> {
    v.iter().map(|&x| Some(x)).collect()
}

fn me(f: &Fixture) -> Actor {
    Actor::user(f.patient.into(), Role::Patient)
}

#[tokio::test]
async fn a_positive_item_9_opens_the_safety_flow_and_steps_up_care() {
    let f = fixture().await;
    let sub = f
        .care
        .submit_assessment(
            &me(&f),
            f.patient,
            "PHQ-9",
            &answers(&[1, 1, 1, 1, 1, 1, 0, 0, 2]),
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(sub.score.total, 8);
    assert!(sub.offer_cssrs, "the C-SSRS screener is offered next");
    let step_up = sub.step_up.expect("a positive item 9 always steps up");
    assert!(step_up
        .reasons
        .iter()
        .any(|r| matches!(r, StepUpReason::SafetyItem { .. })));
    assert!(step_up.patient_message.contains("person"));

    let events = f
        .store
        .risk_events(&Actor::system("test"), f.patient)
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(Some(events[0].id), sub.risk_event);
    assert_eq!(events[0].level, "high");
    assert_eq!(events[0].source, "measure");
    assert_eq!(events[0].categories, vec!["suicide"]);
    assert!(
        events[0].acknowledgement.is_none(),
        "the clinician must acknowledge it"
    );

    // Item 9 on "several days" is a concern, recorded as moderate.
    let sub = f
        .care
        .submit_assessment(
            &me(&f),
            f.patient,
            "phq9",
            &answers(&[0, 0, 0, 0, 0, 0, 0, 0, 1]),
            t0(),
        )
        .await
        .unwrap();
    let events = f
        .store
        .risk_events(&Actor::system("test"), f.patient)
        .await
        .unwrap();
    assert_eq!(
        events
            .iter()
            .find(|e| Some(e.id) == sub.risk_event)
            .unwrap()
            .level,
        "moderate"
    );
}

#[tokio::test]
async fn a_high_risk_cssrs_screen_raises_a_high_risk_event_without_offering_itself_again() {
    let f = fixture().await;
    let inst = f.care.registry().get("cssrs").unwrap();
    // Yes to wish to be dead, active thoughts, method and intent; no plan, no recent behaviour.
    let mut a = vec![Some(0u8); inst.items.len()];
    for answer in a.iter_mut().take(4) {
        *answer = Some(1);
    }
    let sub = f
        .care
        .submit_assessment(&me(&f), f.patient, "cssrs", &a, t0())
        .await
        .unwrap();
    assert!(!sub.offer_cssrs);
    let events = f
        .store
        .risk_events(&Actor::system("test"), f.patient)
        .await
        .unwrap();
    assert_eq!(events[0].level, "high");
}

#[tokio::test]
async fn reliable_improvement_and_recovery_through_the_store() {
    let f = fixture().await;
    let first = answers(&[3, 3, 3, 3, 2, 2, 1, 1, 0]); // 18: moderately severe, caseness
    let later = answers(&[1, 1, 1, 1, 1, 1, 1, 1, 0]); // 8: below caseness
    f.care
        .submit_assessment(&me(&f), f.patient, "phq9", &first, t0())
        .await
        .unwrap();
    f.care
        .submit_assessment(
            &me(&f),
            f.patient,
            "phq9",
            &later,
            t0() + Duration::days(28),
        )
        .await
        .unwrap();
    let (outcome, step_up) = f.care.outcome(&me(&f), f.patient).await.unwrap();
    assert!(outcome.caseness_first && !outcome.caseness_latest);
    assert!(outcome.reliable_improvement, "a fall of 10 is at least 6");
    assert!(outcome.recovery && outcome.reliable_recovery);
    assert!(!outcome.reliable_deterioration);
    assert!(step_up.is_none());
}

#[tokio::test]
async fn reliable_deterioration_recommends_a_step_up() {
    let f = fixture().await;
    f.care
        .submit_assessment(
            &me(&f),
            f.patient,
            "phq9",
            &answers(&[1, 1, 1, 1, 1, 1, 1, 1, 0]),
            t0(),
        )
        .await
        .unwrap();
    let sub = f
        .care
        .submit_assessment(
            &me(&f),
            f.patient,
            "phq9",
            &answers(&[2, 2, 2, 2, 2, 2, 2, 1, 0]),
            t0() + Duration::days(14),
        )
        .await
        .unwrap();
    assert_eq!(sub.score.total, 15);
    assert!(sub.risk_event.is_none());
    let step_up = sub.step_up.expect("a rise of 7 is reliable deterioration");
    assert!(step_up
        .reasons
        .iter()
        .any(|r| matches!(r, StepUpReason::ReliableDeterioration { .. })));
    let (outcome, _) = f.care.outcome(&me(&f), f.patient).await.unwrap();
    assert!(outcome.reliable_deterioration);
}

#[tokio::test]
async fn invalid_forms_store_nothing() {
    let f = fixture().await;
    let err = f
        .care
        .submit_assessment(
            &me(&f),
            f.patient,
            "gad7",
            &answers(&[1, 1, 1, 1, 1, 1, 4]),
            t0(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, CareError::Score(_)), "{err}");
    assert!(err.to_string().contains('7'), "names the item: {err}");
    let mut incomplete = answers(&[1; 9]);
    incomplete[3] = None;
    assert!(f
        .care
        .submit_assessment(&me(&f), f.patient, "phq9", &incomplete, t0())
        .await
        .is_err());
    assert!(f
        .care
        .submit_assessment(&me(&f), f.patient, "nope", &incomplete, t0())
        .await
        .is_err());
    assert!(f
        .store
        .assessments(&Actor::system("test"), f.patient)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn schedules_say_what_is_due_and_overdue_at_a_given_time() {
    let f = fixture().await;
    let clin = Actor::system("test");
    f.care
        .set_schedule(&clin, f.patient, "PHQ-9", 14, 3, t0())
        .await
        .unwrap();
    assert!(f
        .care
        .set_schedule(&clin, f.patient, "phq9", 0, 3, t0())
        .await
        .is_err());
    let due = f
        .care
        .due_measures(&me(&f), f.patient, t0() + Duration::days(1))
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    assert!(
        due[0].status.is_due(),
        "due from the start: {:?}",
        due[0].status
    );
    let late = f
        .care
        .due_measures(&me(&f), f.patient, t0() + Duration::days(5))
        .await
        .unwrap();
    assert!(late[0].status.is_overdue());
    f.care
        .submit_assessment(
            &me(&f),
            f.patient,
            "phq9",
            &answers(&[0; 9]),
            t0() + Duration::days(5),
        )
        .await
        .unwrap();
    let after = f
        .care
        .due_measures(&me(&f), f.patient, t0() + Duration::days(6))
        .await
        .unwrap();
    assert!(
        matches!(after[0].status, DueStatus::Upcoming { .. }),
        "{:?}",
        after[0].status
    );
}
