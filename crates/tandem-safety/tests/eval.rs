#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Runs the labelled sets through `evaluate` and checks the bars on the devset.

use tandem_safety::{evaluate, SafetyEngine, DEVSET, HOLDOUT};

#[test]
fn devset_meets_the_bars() {
    let engine = SafetyEngine::load_default().unwrap();
    let report = evaluate(&engine, DEVSET).unwrap();
    println!("DEVSET\n{report}");
    assert!(report.cases >= 400, "devset has {} cases", report.cases);
    assert!(
        report.recall_high >= 0.97,
        "recall >= high {}",
        report.recall_high
    );
    assert!(
        report.false_escalation <= 0.03,
        "false escalation {}",
        report.false_escalation
    );
    assert!(
        report.category_hit >= 0.95,
        "category hit {}",
        report.category_hit
    );
}

#[test]
fn holdout_is_reported() {
    let engine = SafetyEngine::load_default().unwrap();
    let report = evaluate(&engine, HOLDOUT).unwrap();
    println!("HOLDOUT\n{report}");
    // The holdout was written before tuning and is not tuned against; it is reported, with
    // only a floor that catches a broken engine.
    assert!(report.cases >= 75);
    assert!(
        report.recall_high >= 0.6,
        "holdout recall >= high {}",
        report.recall_high
    );
    let json = serde_json::to_string(&report).unwrap();
    assert!(json.contains("\"recall_high\""));
}
