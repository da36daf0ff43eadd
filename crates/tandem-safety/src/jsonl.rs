//! Line-oriented interfaces: `tandem safety screen` and `tandem safety eval` are thin
//! loops over these pure functions.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::screen::{Evidence, ScreenInput};
use crate::taxonomy::{Category, Level};
use crate::SafetyEngine;

#[derive(Debug, Deserialize)]
struct ScreenLine {
    #[serde(default)]
    id: Option<Value>,
    text: String,
    #[serde(default)]
    context: Vec<String>,
}

#[derive(Debug, Serialize)]
struct ScreenOut<'a> {
    id: &'a Value,
    level: Level,
    categories: &'a [Category],
    evidence: &'a [Evidence],
}

/// Screen one JSON line `{"id", "text", "context"?}` and return one JSON line (no newline).
///
/// A line that cannot be read returns `{"id": <id or null>, "error": "..."}`.
pub fn screen_json_line(engine: &SafetyEngine, line: &str) -> String {
    let value: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => return error_line(&Value::Null, &format!("invalid JSON: {e}")),
    };
    let id = value.get("id").cloned().unwrap_or(Value::Null);
    let parsed: ScreenLine = match serde_json::from_value(value) {
        Ok(p) => p,
        Err(e) => return error_line(&id, &format!("invalid screen request: {e}")),
    };
    let context: Vec<&str> = parsed.context.iter().map(String::as_str).collect();
    let verdict = engine.screen(&ScreenInput {
        text: &parsed.text,
        context: &context,
    });
    let out = ScreenOut {
        id: parsed.id.as_ref().unwrap_or(&Value::Null),
        level: verdict.level,
        categories: &verdict.categories,
        evidence: &verdict.evidence,
    };
    serde_json::to_string(&out).unwrap_or_else(|e| error_line(&id, &e.to_string()))
}

fn error_line(id: &Value, msg: &str) -> String {
    json!({ "id": id, "error": msg }).to_string()
}

#[derive(Debug, Deserialize)]
struct EvalLine {
    #[serde(default)]
    id: Option<Value>,
    text: String,
    #[serde(default)]
    context: Vec<String>,
    expected: Expected,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
struct Expected {
    level: Level,
    #[serde(default)]
    categories: Vec<Category>,
}

/// A case the engine got wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Miss {
    /// Case id (or line number).
    pub id: String,
    /// The message text.
    pub text: String,
    /// Expected level.
    pub expected_level: Level,
    /// Expected categories.
    pub expected_categories: Vec<Category>,
    /// Level found.
    pub got_level: Level,
    /// Categories found.
    pub got_categories: Vec<Category>,
    /// Rule ids that fired.
    pub rules: Vec<String>,
}

/// Metrics over a set of labelled cases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Number of cases.
    pub cases: usize,
    /// Cases expected `>= high`.
    pub expected_high: usize,
    /// Of those, fraction screened `>= high`.
    pub recall_high: f64,
    /// Cases expected `>= moderate`.
    pub expected_moderate: usize,
    /// Of those, fraction screened `>= moderate`.
    pub recall_moderate: f64,
    /// Cases expected `none`.
    pub expected_none: usize,
    /// Of those, fraction screened `>= moderate`.
    pub false_escalation: f64,
    /// Cases with expected categories.
    pub with_categories: usize,
    /// Of those, fraction where every expected category was found.
    pub category_hit: f64,
    /// Fraction with exactly the expected level.
    pub exact_level: f64,
    /// Fraction within one level of the expected level.
    pub within_one: f64,
    /// Cases whose level or categories were wrong.
    pub misses: Vec<Miss>,
}

/// An error in an eval file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct EvalError {
    /// 1-based line number.
    pub line: usize,
    /// What was wrong.
    pub message: String,
}

fn ratio(n: usize, d: usize) -> f64 {
    if d == 0 {
        1.0
    } else {
        n as f64 / d as f64
    }
}

/// Run every labelled case in a JSONL text (blank lines and `#` lines are skipped).
pub fn evaluate(engine: &SafetyEngine, cases_jsonl: &str) -> Result<EvalReport, EvalError> {
    let mut cases = 0;
    let (mut eh, mut hh, mut em, mut mm, mut en, mut fe, mut wc, mut ch, mut exact, mut w1) =
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    let mut misses = Vec::new();
    for (i, line) in cases_jsonl.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let case: EvalLine = serde_json::from_str(line).map_err(|e| EvalError {
            line: i + 1,
            message: e.to_string(),
        })?;
        cases += 1;
        let context: Vec<&str> = case.context.iter().map(String::as_str).collect();
        let v = engine.screen(&ScreenInput {
            text: &case.text,
            context: &context,
        });
        let exp = &case.expected;
        if exp.level >= Level::High {
            eh += 1;
            hh += usize::from(v.level >= Level::High);
        }
        if exp.level >= Level::Moderate {
            em += 1;
            mm += usize::from(v.level >= Level::Moderate);
        }
        if exp.level == Level::None {
            en += 1;
            fe += usize::from(v.level >= Level::Moderate);
        }
        let cats_ok = exp.categories.iter().all(|c| v.categories.contains(c));
        if !exp.categories.is_empty() {
            wc += 1;
            ch += usize::from(cats_ok);
        }
        exact += usize::from(v.level == exp.level);
        w1 += usize::from(v.level.rank().abs_diff(exp.level.rank()) <= 1);
        if v.level != exp.level || !cats_ok {
            misses.push(Miss {
                id: match &case.id {
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => format!("line {}", i + 1),
                },
                text: case.text.clone(),
                expected_level: exp.level,
                expected_categories: exp.categories.clone(),
                got_level: v.level,
                got_categories: v.categories.clone(),
                rules: v.evidence.iter().map(|e| e.rule_id.clone()).collect(),
            });
        }
    }
    Ok(EvalReport {
        cases,
        expected_high: eh,
        recall_high: ratio(hh, eh),
        expected_moderate: em,
        recall_moderate: ratio(mm, em),
        expected_none: en,
        false_escalation: if en == 0 { 0.0 } else { fe as f64 / en as f64 },
        with_categories: wc,
        category_hit: ratio(ch, wc),
        exact_level: ratio(exact, cases),
        within_one: ratio(w1, cases),
        misses,
    })
}

fn cats(c: &[Category]) -> String {
    if c.is_empty() {
        "-".into()
    } else {
        c.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(",")
    }
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "cases: {}", self.cases)?;
        writeln!(
            f,
            "recall >= high:      {:.3}  (of {} expected >= high)",
            self.recall_high, self.expected_high
        )?;
        writeln!(
            f,
            "recall >= moderate:  {:.3}  (of {} expected >= moderate)",
            self.recall_moderate, self.expected_moderate
        )?;
        writeln!(
            f,
            "false escalation:    {:.3}  (of {} expected none, screened >= moderate)",
            self.false_escalation, self.expected_none
        )?;
        writeln!(
            f,
            "category hit:        {:.3}  (of {} with expected categories)",
            self.category_hit, self.with_categories
        )?;
        writeln!(f, "exact level:         {:.3}", self.exact_level)?;
        writeln!(f, "within one level:    {:.3}", self.within_one)?;
        writeln!(f, "misses: {}", self.misses.len())?;
        for m in &self.misses {
            writeln!(
                f,
                "  [{}] expected {} [{}], got {} [{}] via [{}]: {}",
                m.id,
                m.expected_level,
                cats(&m.expected_categories),
                m.got_level,
                cats(&m.got_categories),
                m.rules.join(","),
                m.text
            )?;
        }
        Ok(())
    }
}
