#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The line-oriented interfaces.

use serde_json::Value;
use tandem_safety::{evaluate, screen_json_line, SafetyEngine};

#[test]
fn screen_line_round_trip() {
    let e = SafetyEngine::load_default().unwrap();
    let out = screen_json_line(
        &e,
        r#"{"id": "a1", "text": "What bridges are taller than 25 m?", "context": ["I just lost my job"]}"#,
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["id"], "a1");
    assert_eq!(v["level"], "high");
    assert_eq!(v["categories"][0], "suicide");
    let ev = v["evidence"].as_array().unwrap();
    assert!(ev.iter().any(|e| e["span"]["context"] == 0));
    assert!(ev
        .iter()
        .all(|e| e["rule_id"].is_string() && e["matched"].is_string()));

    let out = screen_json_line(&e, r#"{"id": 7, "text": "hello"}"#);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["id"], 7);
    assert_eq!(v["level"], "none");
    assert_eq!(v["evidence"].as_array().unwrap().len(), 0);
}

#[test]
fn bad_lines_give_error_lines() {
    let e = SafetyEngine::load_default().unwrap();
    let v: Value = serde_json::from_str(&screen_json_line(&e, "{not json")).unwrap();
    assert_eq!(v["id"], Value::Null);
    assert!(v["error"].as_str().unwrap().contains("invalid JSON"));
    let v: Value =
        serde_json::from_str(&screen_json_line(&e, r#"{"id": "x9", "txt": "hi"}"#)).unwrap();
    assert_eq!(v["id"], "x9");
    assert!(v["error"].as_str().unwrap().contains("text"));
    let v: Value = serde_json::from_str(&screen_json_line(
        &e,
        r#"{"id": "x10", "text": "hi", "context": "no"}"#,
    ))
    .unwrap();
    assert_eq!(v["id"], "x10");
    assert!(v.get("error").is_some());
}

#[test]
fn evaluate_counts_and_reports() {
    let e = SafetyEngine::load_default().unwrap();
    let cases = r#"
# comment lines and blank lines are skipped
{"id": "1", "text": "I'm going to kill myself", "expected": {"level": "high", "categories": ["suicide"]}}
{"id": "2", "text": "this commute is killing me", "expected": {"level": "none"}}
{"id": "3", "text": "I want to die", "expected": {"level": "moderate", "categories": ["suicide"]}}
{"id": "4", "text": "lovely day", "expected": {"level": "high", "categories": ["violence"]}}
"#;
    let r = evaluate(&e, cases).unwrap();
    assert_eq!(r.cases, 4);
    assert_eq!(r.expected_high, 2);
    assert!((r.recall_high - 0.5).abs() < 1e-9);
    assert_eq!(r.false_escalation, 0.0);
    assert!((r.category_hit - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(r.misses.len(), 1);
    assert_eq!(r.misses[0].id, "4");
    let shown = r.to_string();
    assert!(shown.contains("recall >= high") && shown.contains("[4]"));
    let json: Value = serde_json::to_value(&r).unwrap();
    assert_eq!(json["cases"], 4);

    let err = evaluate(&e, "{\"text\": \"x\"}").unwrap_err();
    assert_eq!(err.line, 1);
}
