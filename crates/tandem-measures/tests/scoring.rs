#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Scoring against the instruments' documented cut-points and rules.

use tandem_measures::{
    score_answers_json, Registry, RiskLevel, ScoreError, FLAG_ITEM9_POSITIVE, FLAG_SAFETY_FLOW,
    FLAG_STEP_UP,
};

fn reg() -> Registry {
    Registry::builtin().unwrap()
}

fn some(v: &[u8]) -> Vec<Option<u8>> {
    v.iter().copied().map(Some).collect()
}

#[test]
fn builtin_registry_has_all_six_instruments() {
    let r = reg();
    let mut ids = r.ids();
    ids.sort_unstable();
    assert_eq!(ids, ["C-SSRS", "GAD-2", "GAD-7", "PHQ-2", "PHQ-9", "WHO-5"]);
    for spelling in ["phq9", "PHQ-9", "Phq_9", "phq 9"] {
        assert_eq!(r.get(spelling).unwrap().id, "PHQ-9", "{spelling}");
    }
    assert_eq!(r.get("cssrs").unwrap().id, "C-SSRS");
    assert_eq!(r.get("who-5").unwrap().id, "WHO-5");
    assert!(r.get("phq8").is_none());
}

#[test]
fn instruments_carry_wording_sources_and_loinc() {
    let r = reg();
    let phq9 = r.get("PHQ-9").unwrap();
    assert_eq!(phq9.items.len(), 9);
    assert_eq!(
        phq9.items[8].text,
        "Thoughts that you would be better off dead or of hurting yourself in some way"
    );
    assert_eq!(phq9.loinc.panel.as_deref(), Some("44249-1"));
    assert_eq!(phq9.loinc.total.as_deref(), Some("44261-6"));
    let codes: Vec<_> = phq9
        .items
        .iter()
        .map(|i| i.loinc.clone().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5", "44253-3",
            "44260-8"
        ]
    );
    let gad7 = r.get("GAD-7").unwrap();
    assert_eq!(gad7.loinc.panel.as_deref(), Some("69737-5"));
    assert_eq!(gad7.loinc.total.as_deref(), Some("70274-6"));
    for i in r.instruments() {
        assert!(!i.sources.is_empty(), "{}", i.id);
        assert!(!i.licence.is_empty(), "{}", i.id);
        assert!(!i.recall_period.is_empty(), "{}", i.id);
        assert!(!i.scoring.incomplete.note.is_empty(), "{}", i.id);
    }
}

/// PHQ-9 instructions (Kroenke 2001; Pfizer manual): scores of 5, 10, 15 and 20 are the
/// cut-points for mild, moderate, moderately severe and severe depression.
#[test]
fn phq9_band_cut_points() {
    let r = reg();
    let cases: &[(&[u8], u32, &str)] = &[
        (&[0, 0, 0, 0, 0, 0, 0, 0, 0], 0, "minimal"),
        (&[1, 1, 1, 1, 0, 0, 0, 0, 0], 4, "minimal"),
        (&[1, 1, 1, 1, 1, 0, 0, 0, 0], 5, "mild"),
        (&[2, 2, 2, 2, 1, 0, 0, 0, 0], 9, "mild"),
        (&[2, 2, 2, 2, 2, 0, 0, 0, 0], 10, "moderate"),
        (&[3, 3, 3, 3, 2, 0, 0, 0, 0], 14, "moderate"),
        (&[3, 3, 3, 3, 3, 0, 0, 0, 0], 15, "moderately severe"),
        (&[3, 3, 3, 3, 3, 2, 2, 0, 0], 19, "moderately severe"),
        (&[3, 3, 3, 3, 3, 3, 2, 0, 0], 20, "severe"),
        (&[3, 3, 3, 3, 3, 3, 3, 3, 3], 27, "severe"),
    ];
    for (answers, total, band) in cases {
        let s = r.score("PHQ-9", &some(answers)).unwrap();
        assert_eq!(s.total, *total);
        assert_eq!(s.band, *band, "total {total}");
        assert_eq!(s.max_total, 27);
        assert!(!s.prorated);
        assert_eq!(s.step_up(), *total >= 20, "total {total}");
    }
}

/// A form as it might come back: 1,0,2,1,1,0,1,0,0 = 6, mild, nothing flagged.
#[test]
fn phq9_worked_example_json() {
    let v = score_answers_json(&reg(), "phq9", "1,0,2,1,1,0,1,0,0").unwrap();
    assert_eq!(v["instrument"], "PHQ-9");
    assert_eq!(v["total"], 6);
    assert_eq!(v["band"], "mild");
    assert_eq!(v["flags"], serde_json::json!([]));
}

#[test]
fn phq9_item9_positive_opens_safety_flow_and_steps_up() {
    let r = reg();
    let s = r
        .score("PHQ-9", &some(&[0, 0, 0, 0, 0, 0, 0, 0, 1]))
        .unwrap();
    assert_eq!(s.total, 1);
    assert_eq!(s.band, "minimal");
    assert!(s.has_flag(FLAG_ITEM9_POSITIVE));
    assert!(s.has_flag(FLAG_SAFETY_FLOW));
    assert!(s.has_flag(FLAG_STEP_UP));
    assert!(s.safety_flow());
    let v = score_answers_json(&r, "PHQ-9", "0,0,0,0,0,0,0,0,1").unwrap();
    let flags: Vec<&str> = v["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(flags.contains(&"item9_positive"));
    assert!(flags.contains(&"step_up"));
}

#[test]
fn phq9_severe_steps_up_without_item9() {
    let s = reg()
        .score("PHQ-9", &some(&[3, 3, 3, 3, 3, 3, 2, 0, 0]))
        .unwrap();
    assert!(s.has_flag(FLAG_STEP_UP));
    assert!(!s.has_flag(FLAG_ITEM9_POSITIVE));
    assert!(!s.safety_flow());
}

/// GAD-7 (Spitzer 2006): 5, 10, 15 are the cut-points for mild, moderate, severe.
#[test]
fn gad7_band_cut_points() {
    let r = reg();
    let cases: &[(&[u8], u32, &str)] = &[
        (&[0, 0, 0, 0, 0, 0, 0], 0, "minimal"),
        (&[1, 1, 1, 1, 0, 0, 0], 4, "minimal"),
        (&[1, 1, 1, 1, 1, 0, 0], 5, "mild"),
        (&[2, 2, 2, 2, 1, 0, 0], 9, "mild"),
        (&[2, 2, 2, 2, 2, 0, 0], 10, "moderate"),
        (&[2, 2, 2, 2, 2, 2, 2], 14, "moderate"),
        (&[3, 3, 3, 3, 3, 0, 0], 15, "severe"),
        (&[3, 3, 3, 3, 3, 3, 3], 21, "severe"),
    ];
    for (answers, total, band) in cases {
        let s = r.score("gad7", &some(answers)).unwrap();
        assert_eq!((s.total, s.band.as_str()), (*total, *band));
        assert_eq!(s.has_flag(FLAG_STEP_UP), *total >= 15);
    }
}

/// PHQ-2 (Kroenke 2003) and GAD-2 (Kroenke 2007): cut-point 3.
#[test]
fn two_item_screeners_cut_at_three() {
    let r = reg();
    for id in ["PHQ-2", "GAD-2"] {
        assert_eq!(r.score(id, &some(&[1, 1])).unwrap().band, "negative screen");
        assert_eq!(r.score(id, &some(&[2, 1])).unwrap().band, "positive screen");
        assert_eq!(r.score(id, &some(&[3, 3])).unwrap().total, 6);
    }
}

/// WHO-5 (Topp et al. 2015): raw x 4 = percentage; <= 50 poor wellbeing, <= 28 likely depression.
#[test]
fn who5_percentage_and_bands() {
    let r = reg();
    let s = r.score("WHO-5", &some(&[3, 3, 3, 2, 2])).unwrap();
    assert_eq!(s.total, 13);
    assert_eq!(s.scaled_total, Some(52));
    assert_eq!(s.band, "not indicative of poor wellbeing");
    let s = r.score("WHO-5", &some(&[3, 3, 2, 2, 2])).unwrap();
    assert_eq!((s.total, s.scaled_total), (12, Some(48)));
    assert_eq!(s.band, "poor wellbeing");
    let s = r.score("WHO-5", &some(&[2, 2, 2, 1, 1])).unwrap();
    assert_eq!(s.scaled_total, Some(32));
    assert_eq!(s.band, "poor wellbeing");
    let s = r.score("WHO-5", &some(&[2, 2, 1, 1, 1])).unwrap();
    assert_eq!(s.scaled_total, Some(28));
    assert_eq!(s.band, "likely depression");
    let s = r.score("WHO-5", &some(&[5, 5, 5, 5, 5])).unwrap();
    assert_eq!(s.scaled_total, Some(100));
    let v = s.to_json();
    assert_eq!(v["scaled_total"], 100);
    assert_eq!(v["scaled_unit"], "percent");
    assert_eq!(v["total"], 25);
}

/// C-SSRS screener triage: Q1/Q2 low, Q3 moderate, Q4/Q5 high, Q6 > 3 months moderate,
/// Q6 within 3 months high. Q3-5 are skipped when Q2 is NO.
#[test]
fn cssrs_triage_levels() {
    let r = reg();
    let n = None;
    let y = Some(1);
    let no = Some(0);
    let cases: Vec<(Vec<Option<u8>>, RiskLevel)> = vec![
        (vec![no, no, n, n, n, no], RiskLevel::None),
        (vec![y, no, n, n, n, no], RiskLevel::Low),
        (vec![y, y, no, no, no, no], RiskLevel::Low),
        (vec![y, y, y, no, no, no], RiskLevel::Moderate),
        (vec![y, y, y, y, no, no], RiskLevel::High),
        (vec![y, y, y, no, y, no], RiskLevel::High),
        (vec![no, no, n, n, n, Some(1)], RiskLevel::Moderate),
        (vec![no, no, n, n, n, Some(2)], RiskLevel::High),
    ];
    for (answers, level) in cases {
        let s = r.score("C-SSRS", &answers).unwrap();
        assert_eq!(s.risk_level, Some(level), "{answers:?}");
        assert_eq!(s.band, level.as_str());
        assert!(s.has_flag(&format!("risk_{}", level.as_str())));
        assert_eq!(s.step_up(), level >= RiskLevel::Moderate, "{answers:?}");
        assert_eq!(s.to_json()["risk_level"], level.as_str());
    }
}

#[test]
fn cssrs_refuses_missing_required_questions() {
    let r = reg();
    // Q2 yes: Q3-5 must be answered.
    let err = r
        .score(
            "C-SSRS",
            &[Some(1), Some(1), None, Some(0), Some(0), Some(0)],
        )
        .unwrap_err();
    assert!(matches!(err, ScoreError::Incomplete { ref missing, .. } if missing == &vec![3]));
    // Q6 always.
    let err = r
        .score("C-SSRS", &[Some(0), Some(0), None, None, None, None])
        .unwrap_err();
    assert!(matches!(err, ScoreError::Incomplete { ref missing, .. } if missing == &vec![6]));
    // Q2 unanswered: Q3-5 count as required too (never guess a risk screen).
    let err = r
        .score("C-SSRS", &[Some(0), None, None, None, None, Some(0)])
        .unwrap_err();
    assert!(
        matches!(err, ScoreError::Incomplete { ref missing, .. } if missing == &vec![2, 3, 4, 5])
    );
    // Q6 answer 3 does not exist.
    let err = r
        .score("C-SSRS", &[Some(0), Some(0), None, None, None, Some(3)])
        .unwrap_err();
    assert!(matches!(err, ScoreError::OutOfRange { item: 6, .. }));
}

#[test]
fn incomplete_forms_are_refused_never_silently_totalled() {
    let r = reg();
    let mut answers = some(&[1, 1, 1, 1, 1, 1, 1, 1, 0]);
    answers[3] = None;
    let err = r.score("PHQ-9", &answers).unwrap_err();
    match &err {
        ScoreError::Incomplete { missing, .. } => assert_eq!(missing, &vec![4]),
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("item(s) 4 unanswered"), "{err}");
    let err = score_answers_json(&r, "GAD-7", "1,,1,1,1,1,1").unwrap_err();
    assert!(matches!(err, ScoreError::Incomplete { .. }));
}

#[test]
fn out_of_range_and_wrong_counts_name_the_item() {
    let r = reg();
    let err = r
        .score("PHQ-9", &some(&[0, 0, 4, 0, 0, 0, 0, 0, 0]))
        .unwrap_err();
    match &err {
        ScoreError::OutOfRange {
            item,
            value,
            allowed,
            ..
        } => {
            assert_eq!((*item, *value), (3, 4));
            assert_eq!(allowed, "0, 1, 2, 3");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("item 3"), "{err}");
    assert!(err
        .to_string()
        .contains("Trouble falling or staying asleep"));

    let err = score_answers_json(&r, "PHQ9", "1,0,2").unwrap_err();
    assert_eq!(
        err,
        ScoreError::WrongItemCount {
            instrument: "PHQ-9".into(),
            expected: 9,
            got: 3
        }
    );
    let err = score_answers_json(&r, "PHQ9", "1,0,2,0,0,0,0,0,-1").unwrap_err();
    assert!(matches!(
        err,
        ScoreError::OutOfRange {
            item: 9,
            value: -1,
            ..
        }
    ));
    let err = score_answers_json(&r, "PHQ9", "1,0,2,0,0,0,0,0,999").unwrap_err();
    assert!(matches!(
        err,
        ScoreError::OutOfRange {
            item: 9,
            value: 999,
            ..
        }
    ));
    let err = score_answers_json(&r, "PHQ9", "1,0,two,0,0,0,0,0,0").unwrap_err();
    assert!(matches!(err, ScoreError::NotANumber { position: 3, .. }));
    let err = score_answers_json(&r, "BDI", "1").unwrap_err();
    assert!(matches!(err, ScoreError::UnknownInstrument(_)));
    // WHO-5 goes to 5, PHQ-9 stops at 3.
    assert!(score_answers_json(&r, "WHO5", "5,5,5,5,5").is_ok());
}

#[test]
fn json_has_the_cli_shape() {
    let v = score_answers_json(&reg(), "PHQ-9", " 3, 3, 3, 3, 3, 3, 3, 3, 3 ").unwrap();
    for key in ["instrument", "total", "band", "flags"] {
        assert!(v.get(key).is_some(), "{key}");
    }
    assert_eq!(v["total"], 27);
    assert_eq!(v["band"], "severe");
    assert_eq!(
        v["flags"],
        serde_json::json!(["item9_positive", "safety_flow", "step_up"])
    );
}
