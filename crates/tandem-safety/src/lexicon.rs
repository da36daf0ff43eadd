//! The screening lexicon: the data-file format and its compiled matchers.
//!
//! `data/lexicon.toml` holds three kinds of groups, each with an `id` (which becomes the
//! evidence `rule_id`) and a list of `phrases`:
//!
//! - `[[risk]]`: phrases that are themselves a sign of risk, with a `category`, a base
//!   `level`, a `kind` (how modifiers treat it) and a `person` (who the phrase is about).
//! - `[[means]]`: methods and means; they count as method-seeking when asked about (or
//!   always, if `needs_question = false`), at `level_alone` without a risk context and
//!   `level_in_risk_context` with one.
//! - `[[cue]]`: modifiers with an `effect` (negation, intent, history, third party, ...) and
//!   an optional `window` in words.
//!
//! Phrases are normalised with [`crate::normalise`] when loaded, so they are written in
//! plain language. All phrases go into one Aho-Corasick automaton, so screening a message
//! is one pass over it whatever the size of the lexicon. Multi-word risk phrases are also
//! compiled without spaces into a second automaton that runs only over long single words,
//! which catches words run together ("iwanttodie").

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use serde::Deserialize;

use crate::normalise::normalise_phrase;
use crate::taxonomy::{Category, Level};
use crate::LoadError;

/// How a risk phrase reacts to modifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskKind {
    /// Thoughts or wishes ("I wish I was dead", "suicidal thoughts").
    Ideation,
    /// An act that intent or a plan makes high and timing makes imminent ("kill myself").
    Act,
    /// Something done; recent makes it high, history makes it low ("I attempted").
    Behaviour,
    /// A warning sign or preparation ("wrote a note", "gave away my things").
    Warning,
    /// Distress or a risk factor; makes a risk context, never names a category.
    Distress,
    /// Means at hand ("the pills are in my hand"): intent or timing in the sentence makes it
    /// imminent.
    MeansAtHand,
}

/// Who a risk phrase is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Person {
    /// The speaker ("kill myself").
    First,
    /// Someone else ("kill herself").
    Third,
    /// Depends on the subject of the sentence ("took pills").
    #[default]
    Any,
}

/// What a cue does to nearby risk phrases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Drops a risk phrase that follows within `window` words in the same clause.
    Negate,
    /// Idioms, hyperbole and homonyms: drops any risk, means or cue phrase it overlaps.
    Exclude,
    /// Looks like a negation but is not ("not sure", "no one"): NegEx pseudo-negation.
    PseudoNegation,
    /// Intent ("going to", "will") before an act within `window` words: high.
    Intent,
    /// A plan anywhere in the message: acts and ideation become high.
    Plan,
    /// Timing ("tonight", "right now") in the sentence of an intended act: imminent.
    Timing,
    /// Means at hand ("the pills are ready"): an intended act becomes imminent.
    MeansReady,
    /// Past history ("when I was 16", "years ago"): caps the sentence at low.
    History,
    /// Recency ("last night", "yesterday"): behaviour and acts become high.
    Recent,
    /// A third-party subject ("my friend", "she").
    ThirdParty,
    /// A first-person subject ("I", "I'm"): cancels a third-party subject before it.
    FirstPerson,
    /// A child is involved: abuse becomes high.
    Child,
    /// A question word; a `?` also counts.
    Question,
    /// Fiction framing ("for my novel"): noticed, caps others' risk at low.
    Fiction,
    /// Academic framing ("for my pharmacology class"): noticed, caps others' risk at low.
    Academic,
    /// Role-play or prompt injection ("pretend you are", "ignore your instructions").
    Roleplay,
    /// Taking back a disclosure ("forget what I said", "I'm fine").
    Retraction,
    /// Starts a new clause ("but").
    ClauseBreak,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LexiconFile {
    version: String,
    #[serde(default)]
    description: String,
    sources: Vec<String>,
    #[serde(default)]
    risk: Vec<RiskGroup>,
    #[serde(default)]
    means: Vec<MeansGroup>,
    #[serde(default)]
    cue: Vec<CueGroup>,
}

/// A group of risk phrases.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskGroup {
    /// Rule id reported as evidence.
    pub id: String,
    /// Category the phrases point to.
    pub category: Category,
    /// Base level before modifiers.
    pub level: Level,
    /// How modifiers treat the phrases.
    pub kind: RiskKind,
    /// Who the phrases are about.
    #[serde(default)]
    pub person: Person,
    /// Fires only when an earlier message showed risk at `moderate` or above
    /// ("I have a plan", "I'm going to do it tonight").
    #[serde(default)]
    pub needs_risk_context: bool,
    /// Not lowered for a third-party subject (abuse, medical emergencies: someone else's
    /// emergency is still an emergency for the person asking).
    #[serde(default)]
    pub keep_for_third_party: bool,
    /// Highest level modifiers may raise it to (e.g. self-harm stops at `high`).
    #[serde(default)]
    pub max_level: Option<Level>,
    /// Free-text note (e.g. the C-SSRS item).
    #[serde(default)]
    pub note: String,
    /// The phrases, in plain language.
    pub phrases: Vec<String>,
}

/// A group of method or means phrases.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeansGroup {
    /// Rule id reported as evidence.
    pub id: String,
    /// Category the phrases point to.
    pub category: Category,
    /// Level when there is no risk context (`none` still records evidence).
    pub level_alone: Level,
    /// Level with a risk context or a role-play attempt.
    pub level_in_risk_context: Level,
    /// Whether a question (a `?` or a question word in the sentence) is needed.
    #[serde(default = "yes")]
    pub needs_question: bool,
    /// Free-text note.
    #[serde(default)]
    pub note: String,
    /// The phrases, in plain language.
    pub phrases: Vec<String>,
}

fn yes() -> bool {
    true
}

/// A group of modifier cues.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CueGroup {
    /// Rule id reported when the cue itself is evidence (framings, role-play, retraction).
    pub id: String,
    /// What the cue does.
    pub effect: Effect,
    /// Reach in words, for effects that look a few words ahead.
    #[serde(default = "default_window")]
    pub window: usize,
    /// The phrases, in plain language.
    pub phrases: Vec<String>,
}

fn default_window() -> usize {
    3
}

/// Index of a group in the lexicon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupRef {
    /// `risk[i]`
    Risk(usize),
    /// `means[i]`
    Means(usize),
    /// `cue[i]`
    Cue(usize),
}

/// The compiled lexicon.
#[derive(Debug, Clone)]
pub struct Lexicon {
    /// Data version.
    pub version: String,
    /// What the file is.
    pub description: String,
    /// Cited sources.
    pub sources: Vec<String>,
    /// Risk groups.
    pub risk: Vec<RiskGroup>,
    /// Means groups.
    pub means: Vec<MeansGroup>,
    /// Cue groups.
    pub cue: Vec<CueGroup>,
    pub(crate) automaton: AhoCorasick,
    /// For each automaton pattern, the groups it belongs to.
    pub(crate) pattern_groups: Vec<Vec<GroupRef>>,
    pub(crate) compact: AhoCorasick,
    pub(crate) compact_groups: Vec<Vec<GroupRef>>,
    /// Shortest compact pattern, to skip short words quickly.
    pub(crate) compact_min_len: usize,
}

impl Lexicon {
    /// Parse and compile a lexicon file.
    pub fn parse(source: &str) -> Result<Self, LoadError> {
        let file: LexiconFile =
            toml::from_str(source).map_err(|e| LoadError::Parse("lexicon", e.to_string()))?;
        if file.version.trim().is_empty() {
            return Err(LoadError::Invalid("lexicon: empty version".into()));
        }
        if file.sources.is_empty() {
            return Err(LoadError::Invalid("lexicon: no sources".into()));
        }
        let mut patterns: Vec<String> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut groups: Vec<Vec<GroupRef>> = Vec::new();
        let mut compact: Vec<String> = Vec::new();
        let mut compact_index: HashMap<String, usize> = HashMap::new();
        let mut compact_groups: Vec<Vec<GroupRef>> = Vec::new();

        let mut add = |phrase: &str, g: GroupRef, allow_compact: bool| -> Result<(), LoadError> {
            let p = normalise_phrase(phrase);
            if p.is_empty() {
                return Err(LoadError::Invalid(format!(
                    "lexicon: phrase `{phrase}` is empty after normalisation"
                )));
            }
            let i = *index.entry(p.clone()).or_insert_with(|| {
                patterns.push(p.clone());
                groups.push(Vec::new());
                patterns.len() - 1
            });
            if let Some(gs) = groups.get_mut(i) {
                if !gs.contains(&g) {
                    gs.push(g);
                }
            }
            if allow_compact && p.contains(' ') {
                let c: String = p.chars().filter(|c| *c != ' ').collect();
                if c.len() >= 7 && c.chars().all(char::is_alphabetic) {
                    let j = *compact_index.entry(c.clone()).or_insert_with(|| {
                        compact.push(c);
                        compact_groups.push(Vec::new());
                        compact_groups.len() - 1
                    });
                    if let Some(gs) = compact_groups.get_mut(j) {
                        if !gs.contains(&g) {
                            gs.push(g);
                        }
                    }
                }
            }
            Ok(())
        };
        let mut ids = std::collections::HashSet::new();
        for (i, g) in file.risk.iter().enumerate() {
            check_group(&mut ids, &g.id, g.phrases.len())?;
            for p in &g.phrases {
                add(p, GroupRef::Risk(i), g.kind != RiskKind::Distress)?;
            }
        }
        for (i, g) in file.means.iter().enumerate() {
            check_group(&mut ids, &g.id, g.phrases.len())?;
            for p in &g.phrases {
                add(p, GroupRef::Means(i), false)?;
            }
        }
        for (i, g) in file.cue.iter().enumerate() {
            check_group(&mut ids, &g.id, g.phrases.len())?;
            for p in &g.phrases {
                add(p, GroupRef::Cue(i), false)?;
            }
        }
        let automaton = AhoCorasickBuilder::new()
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&patterns)
            .map_err(|e| LoadError::Invalid(format!("lexicon automaton: {e}")))?;
        let compact_min_len = compact.iter().map(String::len).min().unwrap_or(usize::MAX);
        let compact_ac = AhoCorasickBuilder::new()
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&compact)
            .map_err(|e| LoadError::Invalid(format!("lexicon compact automaton: {e}")))?;
        Ok(Lexicon {
            version: file.version,
            description: file.description,
            sources: file.sources,
            risk: file.risk,
            means: file.means,
            cue: file.cue,
            automaton,
            pattern_groups: groups,
            compact: compact_ac,
            compact_groups,
            compact_min_len,
        })
    }

    /// Number of distinct phrases compiled.
    pub fn phrase_count(&self) -> usize {
        self.pattern_groups.len()
    }
}

fn check_group(
    ids: &mut std::collections::HashSet<String>,
    id: &str,
    n: usize,
) -> Result<(), LoadError> {
    if id.trim().is_empty() {
        return Err(LoadError::Invalid(
            "lexicon: a group has an empty id".into(),
        ));
    }
    if !ids.insert(id.to_string()) {
        return Err(LoadError::Invalid(format!(
            "lexicon: duplicate group id `{id}`"
        )));
    }
    if n == 0 {
        return Err(LoadError::Invalid(format!(
            "lexicon: group `{id}` has no phrases"
        )));
    }
    Ok(())
}
