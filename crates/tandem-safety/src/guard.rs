//! The output guard: screens every model reply before the patient sees it.
//!
//! Rules live in `data/guard.toml` as regular expressions over the normalised reply. All
//! patterns are compiled into one [`regex::RegexSet`], so a clean reply costs one pass;
//! only the rules that matched are run again to find their spans.
//! On a block the conversation engine retries once with [`GuardData::retry_instruction`],
//! then sends the fallback reply ([`GuardDecision`]).

use std::collections::BTreeMap;

use regex::{Regex, RegexSet};
use serde::{Deserialize, Serialize};

use crate::normalise::normalise_reply;
use crate::screen::Verdict;
use crate::taxonomy::Category;
use crate::LoadError;

/// What kind of unsafe content a guard rule blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardCategory {
    /// Methods, means or lethal amounts.
    Methods,
    /// Weight-loss, calorie, fasting or purging advice.
    EatingDisorderAdvice,
    /// Telling the person they have a condition.
    Diagnosis,
    /// Starting, stopping or dosing medication.
    Medication,
    /// Claiming to be human or a licensed professional.
    HumanClaim,
    /// Romantic or sexual content.
    RomanticSexual,
    /// Guilt at leaving, discouraging breaks, secrecy, isolation.
    Manipulation,
    /// Agreeing with delusional content.
    DelusionAgreement,
}

/// What the reply was screened alongside.
#[derive(Debug, Clone, Copy, Default)]
pub struct GuardContext<'a> {
    /// The screening verdict of the user message this reply answers, if known.
    pub user_verdict: Option<&'a Verdict>,
}

/// One blocked passage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardBlock {
    /// The rule that fired.
    pub rule_id: String,
    /// What it blocks.
    pub category: GuardCategory,
    /// Byte range in the reply.
    pub span: (usize, usize),
}

/// The guard's verdict on a reply.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GuardVerdict {
    /// Whether the reply may be shown.
    pub allowed: bool,
    /// Why not, if not.
    pub blocks: Vec<GuardBlock>,
}

impl GuardVerdict {
    /// The distinct rule ids that fired, for the log and the retry instruction.
    pub fn rule_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.blocks.iter().map(|b| b.rule_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

/// What to do with a reply after the guard has seen it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GuardDecision {
    /// Show the reply.
    Pass,
    /// Generate again with this stricter instruction added.
    RetryWithInstruction(String),
    /// Show this fixed reply instead.
    Fallback(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GuardFile {
    version: String,
    sources: Vec<String>,
    negation_before: Vec<String>,
    retry: Retry,
    fallback: BTreeMap<String, String>,
    rule: Vec<RuleSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Retry {
    instruction: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    id: String,
    category: GuardCategory,
    patterns: Vec<String>,
    #[serde(default)]
    allow_before: Vec<String>,
    #[serde(default = "yes")]
    negatable: bool,
    #[serde(default)]
    requires_user_category: Option<Category>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone)]
struct Rule {
    id: String,
    category: GuardCategory,
    allow_before: Vec<Regex>,
    negatable: bool,
    requires_user_category: Option<Category>,
}

/// The compiled guard.
#[derive(Debug, Clone)]
pub struct GuardData {
    /// Data version.
    pub version: String,
    /// Cited sources.
    pub sources: Vec<String>,
    retry_instruction: String,
    fallback: BTreeMap<String, String>,
    negation_before: Vec<Regex>,
    rules: Vec<Rule>,
    set: RegexSet,
    patterns: Vec<Regex>,
    pattern_rule: Vec<usize>,
}

/// Make `\b` an ASCII word boundary, which keeps the DFA engines usable.
fn ascii_boundaries(p: &str) -> String {
    p.replace(r"\b", r"(?-u:\b)")
}

fn compile(p: &str, what: &str) -> Result<Regex, LoadError> {
    Regex::new(&ascii_boundaries(p))
        .map_err(|e| LoadError::Invalid(format!("guard: bad pattern in {what}: {e}")))
}

impl GuardData {
    /// Parse and compile a guard file.
    pub fn parse(source: &str) -> Result<Self, LoadError> {
        let file: GuardFile =
            toml::from_str(source).map_err(|e| LoadError::Parse("guard", e.to_string()))?;
        if file.version.trim().is_empty() || file.sources.is_empty() {
            return Err(LoadError::Invalid(
                "guard: version and sources are required".into(),
            ));
        }
        if !file.fallback.contains_key("en") {
            return Err(LoadError::Invalid(
                "guard: an `en` fallback reply is required".into(),
            ));
        }
        let negation_before = file
            .negation_before
            .iter()
            .map(|p| compile(p, "negation_before"))
            .collect::<Result<Vec<_>, _>>()?;
        let mut rules = Vec::new();
        let mut sources = Vec::new();
        let mut patterns = Vec::new();
        let mut pattern_rule = Vec::new();
        for (i, r) in file.rule.iter().enumerate() {
            if r.patterns.is_empty() {
                return Err(LoadError::Invalid(format!(
                    "guard: rule `{}` has no patterns",
                    r.id
                )));
            }
            for p in &r.patterns {
                let src = ascii_boundaries(p);
                patterns.push(compile(p, &r.id)?);
                sources.push(src);
                pattern_rule.push(i);
            }
            rules.push(Rule {
                id: r.id.clone(),
                category: r.category,
                allow_before: r
                    .allow_before
                    .iter()
                    .map(|p| compile(p, &r.id))
                    .collect::<Result<Vec<_>, _>>()?,
                negatable: r.negatable,
                requires_user_category: r.requires_user_category,
            });
        }
        let set = RegexSet::new(&sources)
            .map_err(|e| LoadError::Invalid(format!("guard: regex set: {e}")))?;
        Ok(GuardData {
            version: file.version,
            sources: file.sources,
            retry_instruction: file.retry.instruction,
            fallback: file.fallback,
            negation_before,
            rules,
            set,
            patterns,
            pattern_rule,
        })
    }

    /// Screen a model reply.
    pub fn check(&self, reply: &str, ctx: &GuardContext<'_>) -> GuardVerdict {
        let norm = normalise_reply(reply);
        let t = norm.text.as_str();
        let mut blocks: Vec<GuardBlock> = Vec::new();
        for pi in self.set.matches(t).iter() {
            let (Some(re), Some(&ri)) = (self.patterns.get(pi), self.pattern_rule.get(pi)) else {
                continue;
            };
            let Some(rule) = self.rules.get(ri) else {
                continue;
            };
            if let Some(needed) = rule.requires_user_category {
                let has = ctx
                    .user_verdict
                    .is_some_and(|v| v.categories.contains(&needed));
                if !has {
                    continue;
                }
            }
            for m in re.find_iter(t) {
                let before = preceding(t, m.start(), 60);
                let waived = rule.allow_before.iter().any(|r| r.is_match(before))
                    || (rule.negatable && self.negation_before.iter().any(|r| r.is_match(before)));
                if waived {
                    continue;
                }
                let span = norm.original_range(m.start(), m.end());
                if !blocks
                    .iter()
                    .any(|b| b.rule_id == rule.id && b.span.0 < span.1 && span.0 < b.span.1)
                {
                    blocks.push(GuardBlock {
                        rule_id: rule.id.clone(),
                        category: rule.category,
                        span,
                    });
                }
            }
        }
        blocks.sort_by_key(|b| b.span);
        GuardVerdict {
            allowed: blocks.is_empty(),
            blocks,
        }
    }

    /// The stricter instruction for the retry, naming the rules that fired.
    pub fn retry_instruction(&self, verdict: &GuardVerdict) -> String {
        self.retry_instruction
            .replace("{rule_ids}", &verdict.rule_ids().join(", "))
    }

    /// The safe fallback reply for a locale (by language; English if none).
    pub fn fallback_reply(&self, locale: &str) -> &str {
        let lang = locale
            .split(['-', '_'])
            .next()
            .unwrap_or("en")
            .to_ascii_lowercase();
        self.fallback
            .get(&lang)
            .or_else(|| self.fallback.get("en"))
            .map_or("", String::as_str)
    }

    /// What to do after `attempt` generations (1 for the first reply, 2 for the retry).
    pub fn decide(&self, verdict: &GuardVerdict, attempt: u32, locale: &str) -> GuardDecision {
        if verdict.allowed {
            GuardDecision::Pass
        } else if attempt <= 1 {
            GuardDecision::RetryWithInstruction(self.retry_instruction(verdict))
        } else {
            GuardDecision::Fallback(self.fallback_reply(locale).to_string())
        }
    }

    /// Rule ids and categories, for documentation.
    pub fn rules(&self) -> impl Iterator<Item = (&str, GuardCategory)> {
        self.rules.iter().map(|r| (r.id.as_str(), r.category))
    }
}

/// Up to `n` bytes of `t` before `at`, cut at a character boundary.
fn preceding(t: &str, at: usize, n: usize) -> &str {
    let mut s = at.saturating_sub(n);
    while s < at && !t.is_char_boundary(s) {
        s += 1;
    }
    t.get(s..at).unwrap_or("")
}
