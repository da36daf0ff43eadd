#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Reliable change, caseness, recovery and caseload rates (NHS Talking Therapies definitions),
//! and stepped care.

use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use tandem_measures::{
    outcome_rates, patient_outcome, step_up_recommendation, Assessment, Registry, StepUpReason,
    PATIENT_STEP_UP_MESSAGE,
};

fn reg() -> Registry {
    Registry::builtin().unwrap()
}

const T0: OffsetDateTime = datetime!(2025-01-06 09:00 UTC);

fn series(instrument: &str, totals: &[u32]) -> Vec<Assessment> {
    totals
        .iter()
        .enumerate()
        .map(|(i, &total)| Assessment {
            instrument: instrument.into(),
            total,
            at: T0 + Duration::weeks(i64::try_from(i).unwrap() * 2),
        })
        .collect()
}

#[test]
fn phq9_reliable_improvement_needs_six_points() {
    let r = reg();
    let o = patient_outcome(&r, &series("PHQ-9", &[18, 14, 12]));
    assert!(o.paired);
    assert!(o.reliable_improvement, "18 -> 12 is -6");
    let o = patient_outcome(&r, &series("PHQ-9", &[18, 13]));
    assert!(!o.reliable_improvement, "18 -> 13 is -5");
    assert!(!o.reliable_deterioration);
}

#[test]
fn gad7_reliable_change_needs_four_points() {
    let r = reg();
    assert!(patient_outcome(&r, &series("gad7", &[12, 8])).reliable_improvement);
    assert!(!patient_outcome(&r, &series("gad7", &[12, 9])).reliable_improvement);
    assert!(patient_outcome(&r, &series("gad7", &[6, 10])).reliable_deterioration);
    assert!(!patient_outcome(&r, &series("gad7", &[6, 9])).reliable_deterioration);
}

#[test]
fn recovery_is_caseness_to_non_caseness_on_both_measures() {
    let r = reg();
    // PHQ-9 15 -> 8 (recovered, reliable -7); GAD-7 10 -> 7 (below 8, change -3 not reliable).
    let mut s = series("PHQ-9", &[15, 8]);
    s.extend(series("GAD-7", &[10, 7]));
    let o = patient_outcome(&r, &s);
    assert!(o.caseness_first && !o.caseness_latest);
    assert!(o.recovery);
    assert!(o.reliable_improvement);
    assert!(o.reliable_recovery);

    // PHQ-9 recovers but GAD-7 is still at caseness: not recovered.
    let mut s = series("PHQ-9", &[15, 8]);
    s.extend(series("GAD-7", &[10, 9]));
    let o = patient_outcome(&r, &s);
    assert!(!o.recovery);
    assert!(o.reliable_improvement);

    // Recovery without reliable improvement: 11 -> 9.
    let o = patient_outcome(&r, &series("PHQ-9", &[11, 9]));
    assert!(o.recovery);
    assert!(!o.reliable_improvement);
    assert!(!o.reliable_recovery);

    // Not at caseness at the start: cannot recover.
    let o = patient_outcome(&r, &series("PHQ-9", &[9, 2]));
    assert!(!o.caseness_first);
    assert!(!o.recovery);
    assert!(o.reliable_improvement);
}

#[test]
fn improvement_on_one_and_deterioration_on_the_other_is_neither() {
    let r = reg();
    let mut s = series("PHQ-9", &[20, 10]);
    s.extend(series("GAD-7", &[5, 12]));
    let o = patient_outcome(&r, &s);
    assert!(!o.reliable_improvement);
    assert!(!o.reliable_deterioration);
}

#[test]
fn single_scores_and_other_instruments_are_unpaired() {
    let r = reg();
    let o = patient_outcome(&r, &series("PHQ-9", &[20]));
    assert!(!o.paired && !o.recovery && !o.reliable_improvement);
    let o = patient_outcome(&r, &series("WHO-5", &[5, 20]));
    assert!(!o.paired);
    assert!(o.measures.is_empty());
    let o = patient_outcome(&r, &[]);
    assert!(!o.paired);
}

#[test]
fn series_order_does_not_matter() {
    let r = reg();
    let mut s = series("PHQ-9", &[20, 15, 9]);
    s.reverse();
    let o = patient_outcome(&r, &s);
    assert_eq!((o.measures[0].first, o.measures[0].latest), (20, 9));
    assert!(o.recovery && o.reliable_recovery);
}

#[test]
fn caseload_rates_use_nhs_denominators() {
    let r = reg();
    let outcomes = vec![
        patient_outcome(&r, &series("PHQ-9", &[15, 5])), // caseness, recovered, reliable
        patient_outcome(&r, &series("PHQ-9", &[12, 9])), // caseness, recovered, not reliable
        patient_outcome(&r, &series("PHQ-9", &[14, 13])), // caseness, not recovered
        patient_outcome(&r, &series("PHQ-9", &[4, 12])), // not caseness, deteriorated
        patient_outcome(&r, &series("PHQ-9", &[10])),    // unpaired: excluded
    ];
    let rates = outcome_rates(&outcomes);
    assert_eq!(rates.finished, 4);
    assert_eq!(rates.finished_at_caseness, 3);
    assert_eq!(rates.recovered, 2);
    assert_eq!(rates.reliably_recovered, 1);
    assert_eq!(rates.reliably_improved, 1);
    assert_eq!(rates.deteriorated, 1);
    assert!((rates.recovery_rate.unwrap() - 2.0 / 3.0).abs() < 1e-9);
    assert!((rates.reliable_recovery_rate.unwrap() - 1.0 / 3.0).abs() < 1e-9);
    assert!((rates.reliable_improvement_rate.unwrap() - 0.25).abs() < 1e-9);
    assert!((rates.deterioration_rate.unwrap() - 0.25).abs() < 1e-9);

    let empty = outcome_rates(&[]);
    assert_eq!(empty.finished, 0);
    assert_eq!(empty.recovery_rate, None);
}

#[test]
fn step_up_for_severe_item9_risk_and_deterioration() {
    let r = reg();
    let fine = r.score("PHQ-9", &[Some(0); 9]).unwrap();
    assert!(step_up_recommendation(std::slice::from_ref(&fine), None).is_none());

    let severe = r.score("GAD-7", &[Some(3); 7]).unwrap();
    let rec = step_up_recommendation(&[severe], None).unwrap();
    assert!(
        matches!(rec.reasons[0], StepUpReason::SevereScore { ref band, .. } if band == "severe")
    );
    assert_eq!(rec.patient_message, PATIENT_STEP_UP_MESSAGE);
    assert!(rec.patient_message.contains("a human should"));

    let item9 = r
        .score("PHQ-9", &[0, 0, 0, 0, 0, 0, 0, 0, 2].map(Some))
        .unwrap();
    let rec = step_up_recommendation(&[item9], None).unwrap();
    assert!(matches!(
        rec.reasons[0],
        StepUpReason::SafetyItem { item: 9, .. }
    ));
    assert!(rec.clinician_summary.contains("item 9"));

    let cssrs = r
        .score(
            "C-SSRS",
            &[Some(1), Some(1), Some(1), Some(0), Some(0), Some(0)],
        )
        .unwrap();
    let rec = step_up_recommendation(&[cssrs], None).unwrap();
    assert!(matches!(rec.reasons[0], StepUpReason::SuicideRisk { .. }));

    let o = patient_outcome(&r, &series("PHQ-9", &[5, 11]));
    assert!(o.reliable_deterioration);
    let rec = step_up_recommendation(&[fine], Some(&o)).unwrap();
    assert_eq!(
        rec.reasons,
        vec![StepUpReason::ReliableDeterioration {
            instrument: "PHQ-9".into(),
            first: 5,
            latest: 11,
            change: 6
        }]
    );
}

#[test]
fn severe_with_item9_gives_both_reasons() {
    let r = reg();
    let s = r
        .score("PHQ-9", &[3, 3, 3, 3, 3, 3, 2, 0, 1].map(Some))
        .unwrap();
    let rec = step_up_recommendation(&[s.clone(), s], None).unwrap();
    assert_eq!(rec.reasons.len(), 2, "deduplicated: {:?}", rec.reasons);
}
