//! Screening: a message plus its conversation context to a [`Verdict`] with evidence.
//!
//! Each message (the context messages oldest first, then the new one) is normalised and
//! scanned once by the lexicon automaton. Risk phrases then go through the modifiers found
//! in the same pass: exclusions (idioms, homonyms) and negation drop them; intent, plans,
//! timing, means at hand, recency and a child's involvement raise them; a third-party
//! subject, past history and fiction framing lower them. Method and means phrases count
//! when asked about, and rise to their risk-context level when the message or anything
//! earlier shows risk or distress, or when the message is a role-play or prompt-injection
//! attempt. Evidence from context messages is carried into the verdict, so a risk disclosed
//! earlier is never cleared by "ok" or "forget what I said".

use serde::{Deserialize, Serialize};

use crate::lexicon::{Effect, GroupRef, Lexicon, Person, RiskKind};
use crate::normalise::{normalise, Normalised};
use crate::taxonomy::{Category, Level};

/// What to screen: the new message and the patient's earlier messages, oldest first.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScreenInput<'a> {
    /// The new message.
    pub text: &'a str,
    /// Earlier user messages in this conversation, oldest first.
    pub context: &'a [&'a str],
}

/// Where a piece of evidence was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// Byte offset of the start in the message.
    pub start: usize,
    /// Byte offset just past the end.
    pub end: usize,
    /// `None` for the new message; `Some(n)` for `context[n]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<usize>,
}

/// What a piece of evidence is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    /// A risk phrase, after modifiers.
    Risk,
    /// Distress or a risk factor (makes a risk context; names no category).
    Distress,
    /// A question about methods or means.
    MethodSeeking,
    /// Fiction, academic or role-play framing: noticed, never escalating alone.
    Framing,
    /// A retraction after a disclosure: noticed, never clearing risk.
    Retraction,
}

/// One reason for a verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// Id of the lexicon group that fired.
    pub rule_id: String,
    /// Category it points to (none for distress and framing).
    pub category: Option<Category>,
    /// Level this evidence supports.
    pub level: Level,
    /// What kind of evidence this is.
    pub kind: EvidenceKind,
    /// Where it was found.
    pub span: Span,
    /// The matched text, as the user wrote it.
    pub matched: String,
}

/// The result of screening.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Verdict {
    /// Highest level supported by the evidence.
    pub level: Level,
    /// Categories of risk and method-seeking evidence at `low` or above, sorted.
    pub categories: Vec<Category>,
    /// Every reason, context messages first.
    pub evidence: Vec<Evidence>,
}

#[derive(Debug, Clone, Copy)]
struct Hit {
    group: GroupRef,
    /// The cue's effect and window, looked up once.
    cue: Option<(Effect, usize)>,
    excluded: bool,
    start: usize,
    end: usize,
    ts: usize,
    te: usize,
}

#[derive(Debug, Default, Clone, Copy)]
struct Prior {
    risk: bool,
    max: Level,
    roleplay: bool,
}

struct Analysis {
    norm: Normalised,
    hits: Vec<Hit>,
    /// Bit `effect as u32` is set when a live cue with that effect is in the message.
    present: u32,
    clause: Vec<u16>,
    sentence: Vec<u16>,
    question_sentences: Vec<u16>,
}

impl Analysis {
    fn cues<'s>(
        &'s self,
        lex: &'s Lexicon,
        effect: Effect,
    ) -> impl Iterator<Item = (&'s Hit, usize)> + 's {
        let _ = lex;
        let n = if self.has(effect) { usize::MAX } else { 0 };
        self.hits.iter().take(n).filter_map(move |h| match h.cue {
            Some((e, w)) if e == effect && !h.excluded => Some((h, w)),
            _ => None,
        })
    }
    fn has(&self, effect: Effect) -> bool {
        self.present & (1u32 << (effect as u32)) != 0
    }
    fn clause_of(&self, t: usize) -> u16 {
        self.clause.get(t).copied().unwrap_or(0)
    }
    fn sentence_of(&self, t: usize) -> u16 {
        self.sentence.get(t).copied().unwrap_or(0)
    }
    /// A cue of `effect` ends before `h`, in its clause, within the cue's window.
    fn before_in_clause(&self, lex: &Lexicon, effect: Effect, h: &Hit) -> bool {
        self.cues(lex, effect).any(|(c, w)| {
            !(effect == Effect::Negate
                && self
                    .cues(lex, Effect::PseudoNegation)
                    .any(|(p, _)| p.start < c.end && c.start < p.end))
                && c.end <= h.start
                && self.clause_of(c.te) == self.clause_of(h.ts)
                && h.ts.saturating_sub(c.te + 1) <= w
        })
    }
    fn in_sentence(&self, lex: &Lexicon, effect: Effect, h: &Hit) -> bool {
        let s = self.sentence_of(h.ts);
        self.cues(lex, effect)
            .any(|(c, _)| self.sentence_of(c.ts) == s || self.sentence_of(c.te) == s)
    }
    fn in_message(&self, _lex: &Lexicon, effect: Effect) -> bool {
        self.has(effect)
    }
    fn third_party(&self, lex: &Lexicon, h: &Hit) -> bool {
        let s = self.sentence_of(h.ts);
        self.cues(lex, Effect::ThirdParty).any(|(tp, _)| {
            tp.end <= h.start
                && self.sentence_of(tp.te) == s
                && !self
                    .cues(lex, Effect::FirstPerson)
                    .any(|(f, _)| f.start >= tp.end && f.end <= h.start)
        })
    }
    fn question(&self, lex: &Lexicon, h: &Hit) -> bool {
        let s = self.sentence_of(h.ts);
        self.question_sentences.contains(&s) || self.in_sentence(lex, Effect::Question, h)
    }
}

fn max_level(a: Level, b: Level) -> Level {
    a.max(b)
}

impl Lexicon {
    fn cue_of(&self, g: GroupRef) -> Option<(Effect, usize)> {
        match g {
            GroupRef::Cue(i) => self.cue.get(i).map(|c| (c.effect, c.window)),
            _ => None,
        }
    }

    fn analyse(&self, text: &str) -> Analysis {
        let norm = normalise(text);
        let t = norm.text.as_str();
        let bytes = t.as_bytes();
        // Token boundaries.
        let mut tokens: Vec<(usize, usize)> = Vec::with_capacity(bytes.len() / 4 + 1);
        let mut tok_of: Vec<u16> = vec![0; bytes.len()];
        let mut start = 0usize;
        for (i, &b) in bytes.iter().enumerate() {
            if b == b' ' {
                tokens.push((start, i));
                start = i + 1;
            }
        }
        if start < bytes.len() {
            tokens.push((start, bytes.len()));
        }
        for (ti, &(s, e)) in tokens.iter().enumerate() {
            let idx = u16::try_from(ti).unwrap_or(u16::MAX);
            for slot in tok_of.iter_mut().take(e).skip(s) {
                *slot = idx;
            }
            if let Some(slot) = tok_of.get_mut(e) {
                *slot = idx;
            }
        }
        let tok = |byte: usize| -> usize { tok_of.get(byte).copied().unwrap_or(0) as usize };

        let mut hits = Vec::new();
        for m in self.automaton.find_overlapping_iter(t) {
            let (s, e) = (m.start(), m.end());
            let left_ok = s == 0 || bytes.get(s - 1) == Some(&b' ');
            let right_ok = e == bytes.len() || bytes.get(e) == Some(&b' ');
            if !(left_ok && right_ok) {
                continue;
            }
            if let Some(gs) = self.pattern_groups.get(m.pattern().as_usize()) {
                for &g in gs {
                    hits.push(Hit {
                        group: g,
                        cue: self.cue_of(g),
                        excluded: false,
                        start: s,
                        end: e,
                        ts: tok(s),
                        te: tok(e.saturating_sub(1)),
                    });
                }
            }
        }
        // Words run together: only long single words that matched nothing whole.
        let direct_hits = hits.len();
        for (ti, &(s, e)) in tokens.iter().enumerate() {
            if e - s < self.compact_min_len
                || hits
                    .iter()
                    .take(direct_hits)
                    .any(|h| h.cue.is_none() && h.ts <= ti && ti <= h.te)
            {
                continue;
            }
            let word = t.get(s..e).unwrap_or("");
            for m in self.compact.find_overlapping_iter(word) {
                if let Some(gs) = self.compact_groups.get(m.pattern().as_usize()) {
                    for &g in gs {
                        hits.push(Hit {
                            group: g,
                            cue: self.cue_of(g),
                            excluded: false,
                            start: s + m.start(),
                            end: s + m.end(),
                            ts: ti,
                            te: ti,
                        });
                    }
                }
            }
        }
        // Exclusions: idioms and homonyms drop what they overlap.
        let excl: Vec<(usize, usize)> = hits
            .iter()
            .filter(|h| matches!(h.cue, Some((Effect::Exclude, _))))
            .map(|h| (h.start, h.end))
            .collect();
        let mut present = 0u32;
        for h in &mut hits {
            let is_exclusion = matches!(h.cue, Some((Effect::Exclude, _)));
            h.excluded = !is_exclusion
                && !excl.is_empty()
                && excl.iter().any(|&(s, e)| s < h.end && h.start < e);
            if let (Some((e, _)), false) = (h.cue, h.excluded) {
                present |= 1u32 << (e as u32);
            }
        }
        // Clauses and sentences.
        let breaks: Vec<usize> = hits
            .iter()
            .filter(|h| matches!(h.cue, Some((Effect::ClauseBreak, _))))
            .map(|h| h.ts)
            .collect();
        let mut clause = Vec::with_capacity(tokens.len());
        let mut sentence = Vec::with_capacity(tokens.len());
        let mut question_sentences = Vec::new();
        let (mut c, mut sn) = (0u16, 0u16);
        for (ti, &(s, e)) in tokens.iter().enumerate() {
            if breaks.contains(&ti) {
                c = c.saturating_add(1);
            }
            clause.push(c);
            sentence.push(sn);
            match t.get(s..e) {
                Some(",") => c = c.saturating_add(1),
                Some(".") | Some("?") => {
                    if t.get(s..e) == Some("?") {
                        question_sentences.push(sn);
                    }
                    c = c.saturating_add(1);
                    sn = sn.saturating_add(1);
                }
                _ => {}
            }
        }
        Analysis {
            norm,
            hits,
            present,
            clause,
            sentence,
            question_sentences,
        }
    }

    /// Screen one message given what came before; appends its evidence.
    fn screen_one(
        &self,
        text: &str,
        source: Option<usize>,
        prior: &Prior,
        out: &mut Vec<Evidence>,
    ) -> Prior {
        let a = self.analyse(text);
        let first_new = out.len();
        let push = |out: &mut Vec<Evidence>,
                    rule: &str,
                    category: Option<Category>,
                    level: Level,
                    kind: EvidenceKind,
                    h: &Hit| {
            let (s, e) = a.norm.original_range(h.start, h.end);
            let span = Span {
                start: s,
                end: e,
                context: source,
            };
            // One entry per rule and place: keep the strongest.
            if let Some(existing) = out.iter_mut().skip(first_new).find(|ev| {
                ev.rule_id == rule && ev.span.start < span.end && span.start < ev.span.end
            }) {
                if level > existing.level {
                    existing.level = level;
                    existing.span = span;
                    existing.matched = text.get(s..e).unwrap_or("").to_string();
                }
                return;
            }
            out.push(Evidence {
                rule_id: rule.to_string(),
                category,
                level,
                kind,
                span,
                matched: text.get(s..e).unwrap_or("").to_string(),
            });
        };

        let plan = a.in_message(self, Effect::Plan);
        let means_ready = a.in_message(self, Effect::MeansReady);
        let child = a.in_message(self, Effect::Child);
        let framed = a.in_message(self, Effect::Fiction) || a.in_message(self, Effect::Academic);
        let roleplay = a.in_message(self, Effect::Roleplay) || prior.roleplay;
        let mut risk_here = false;

        for h in &a.hits {
            let GroupRef::Risk(gi) = h.group else {
                continue;
            };
            let Some(g) = self.risk.get(gi) else { continue };
            if h.excluded || a.before_in_clause(self, Effect::Negate, h) {
                continue;
            }
            if g.kind == RiskKind::Distress {
                push(out, &g.id, None, Level::Low, EvidenceKind::Distress, h);
                risk_here = true;
                continue;
            }
            if g.needs_risk_context && !(prior.risk && prior.max >= Level::Moderate) {
                continue;
            }
            let mut lvl = g.level;
            let acting = matches!(g.kind, RiskKind::Act | RiskKind::Warning);
            let intent = acting && a.before_in_clause(self, Effect::Intent, h);
            let planned = matches!(g.kind, RiskKind::Act | RiskKind::Ideation) && plan;
            let recent = a.in_sentence(self, Effect::Recent, h);
            if intent || planned {
                lvl = max_level(lvl, Level::High);
                if a.in_sentence(self, Effect::Timing, h) || means_ready {
                    lvl = Level::Imminent;
                }
            }
            // A wish to end one's life with a time attached ("I want to kill myself tonight")
            // is treated as intent: a time frame is a step towards acting. Self-harm urges
            // with a time stay moderate (urges, per the level mapping).
            if g.kind == RiskKind::Act
                && g.category == Category::Suicide
                && !intent
                && !planned
                && a.in_sentence(self, Effect::Timing, h)
            {
                lvl = max_level(lvl, Level::High);
            }
            if g.kind == RiskKind::Behaviour && recent {
                lvl = max_level(lvl, Level::High);
            }
            if g.kind == RiskKind::MeansAtHand
                && (a.in_sentence(self, Effect::Intent, h)
                    || a.in_sentence(self, Effect::Timing, h))
            {
                lvl = Level::Imminent;
            }
            if g.category == Category::Abuse && child {
                lvl = max_level(lvl, Level::High);
            }
            if let Some(cap) = g.max_level {
                lvl = lvl.min(cap.max(g.level));
            }
            let third = match g.person {
                Person::First => false,
                Person::Third => true,
                Person::Any => a.third_party(self, h),
            };
            if third && !g.keep_for_third_party {
                lvl = match lvl {
                    Level::Imminent => Level::High,
                    Level::High => Level::Moderate,
                    l => l,
                };
            }
            if !recent && a.in_sentence(self, Effect::History, h) {
                lvl = lvl.min(Level::Low);
            }
            if framed && g.person != Person::First && (third || g.person == Person::Any) {
                lvl = lvl.min(Level::Low);
            }
            if lvl > Level::None {
                risk_here = true;
            }
            push(out, &g.id, Some(g.category), lvl, EvidenceKind::Risk, h);
        }

        let risk_context = prior.risk || risk_here;
        for h in &a.hits {
            let GroupRef::Means(gi) = h.group else {
                continue;
            };
            let Some(g) = self.means.get(gi) else {
                continue;
            };
            if h.excluded
                || a.before_in_clause(self, Effect::Negate, h)
                || (g.needs_question && !a.question(self, h))
            {
                continue;
            }
            let lvl = if risk_context || roleplay {
                g.level_in_risk_context
            } else {
                g.level_alone
            };
            push(
                out,
                &g.id,
                Some(g.category),
                lvl,
                EvidenceKind::MethodSeeking,
                h,
            );
        }

        for h in &a.hits {
            let GroupRef::Cue(ci) = h.group else { continue };
            let Some(c) = self.cue.get(ci) else { continue };
            match c.effect {
                Effect::Fiction | Effect::Academic | Effect::Roleplay => {
                    push(out, &c.id, None, Level::None, EvidenceKind::Framing, h);
                }
                Effect::Retraction if prior.max >= Level::Moderate => {
                    push(out, &c.id, None, Level::None, EvidenceKind::Retraction, h);
                }
                _ => {}
            }
        }

        let mut next = *prior;
        for ev in out.iter().skip(first_new) {
            next.max = next.max.max(ev.level);
            if ev.level >= Level::Low {
                next.risk = true;
            }
        }
        next.roleplay = roleplay;
        next
    }

    /// Screen a message with its context.
    pub fn screen(&self, input: &ScreenInput<'_>) -> Verdict {
        let mut evidence = Vec::new();
        let mut prior = Prior::default();
        for (i, c) in input.context.iter().enumerate() {
            prior = self.screen_one(c, Some(i), &prior, &mut evidence);
        }
        self.screen_one(input.text, None, &prior, &mut evidence);
        let level = evidence
            .iter()
            .map(|e| e.level)
            .max()
            .unwrap_or(Level::None);
        let mut categories: Vec<Category> = evidence
            .iter()
            .filter(|e| e.level >= Level::Low)
            .filter_map(|e| e.category)
            .collect();
        categories.sort();
        categories.dedup();
        Verdict {
            level,
            categories,
            evidence,
        }
    }
}
