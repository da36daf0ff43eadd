//! Context assembly: what the model sees on one turn.
//!
//! The prompt is one system message followed by the most recent turns that fit. The system
//! message is, in order: the template's rules (the most important first, so a small model
//! that attends mostly to the start still sees them), the clinician's care plan, the rolling
//! summary of older turns, and retrieved psychoeducation passages.
//!
//! Budget rules, in priority order:
//! 1. tokens for the reply are reserved first ([`Budget::reserve_for_reply`]);
//! 2. the rules and the care plan are always included;
//! 3. the newest patient message is always included (if it alone does not fit, its end is
//!    kept, since that is what the patient said last, and [`AssembledPrompt::newest_truncated`]
//!    is set);
//! 4. then the summary, then psychoeducation passages (each capped by its own share);
//! 5. then earlier turns, newest first, until the next one does not fit: the oldest go first.
//!
//! Tokens are counted by the caller's `count_tokens`, normally the model's own tokenizer;
//! [`approx_tokens`] is a conservative stand-in for tests and for backends without one.

use crate::library::Passage;
use crate::templates::Templates;
use serde::{Deserialize, Serialize};
use tandem_domain::{CarePlanItemKind, MessageRole};

/// Who speaks in a prompt message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    /// The role name as chat templates spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One message of the assembled prompt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptMessage {
    pub role: Role,
    pub content: String,
}

/// One earlier turn of the conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Turn {
    /// [`Role::User`] for the patient, [`Role::Assistant`] for the companion.
    pub role: Role,
    pub text: String,
}

impl Turn {
    pub fn user(text: impl Into<String>) -> Self {
        Turn {
            role: Role::User,
            text: text.into(),
        }
    }

    pub fn assistant(text: impl Into<String>) -> Self {
        Turn {
            role: Role::Assistant,
            text: text.into(),
        }
    }

    /// From a stored message's role; system messages are not part of the dialogue.
    pub fn from_message(role: MessageRole, text: impl Into<String>) -> Option<Self> {
        match role {
            MessageRole::Patient => Some(Turn::user(text)),
            MessageRole::Assistant => Some(Turn::assistant(text)),
            MessageRole::System => None,
        }
    }
}

/// The parts of the clinician's care plan the companion uses, filled by the engine from the
/// store (`CarePlan` items and `ai_preferences`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarePlanView {
    pub goals: Vec<String>,
    pub homework: Vec<String>,
    /// Instructions to the companion from the clinician ("focus on sleep", "use her first name").
    pub instructions: Vec<String>,
    pub topics_to_avoid: Vec<String>,
    /// Preferred tone, e.g. "gentle and informal".
    pub tone: Option<String>,
    /// Psychoeducation library ids the clinician assigned.
    pub psychoeducation_ids: Vec<String>,
}

impl CarePlanView {
    /// Builds the view from active care-plan items (`(kind, text)`) and the plan's
    /// `ai_preferences` JSON, which may hold `"topics_to_avoid": [..]` and `"tone": ".."`.
    /// Notes are clinician-only and are not shown to the model.
    pub fn from_items<'a>(
        items: impl IntoIterator<Item = (CarePlanItemKind, &'a str)>,
        ai_preferences: Option<&serde_json::Value>,
    ) -> Self {
        let mut view = CarePlanView::default();
        for (kind, text) in items {
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            let list = match kind {
                CarePlanItemKind::Goal => &mut view.goals,
                CarePlanItemKind::Homework => &mut view.homework,
                CarePlanItemKind::Instruction => &mut view.instructions,
                CarePlanItemKind::Psychoeducation => &mut view.psychoeducation_ids,
                CarePlanItemKind::Note => continue,
            };
            list.push(text.to_string());
        }
        if let Some(prefs) = ai_preferences {
            if let Some(topics) = prefs.get("topics_to_avoid").and_then(|t| t.as_array()) {
                view.topics_to_avoid.extend(
                    topics
                        .iter()
                        .filter_map(|t| t.as_str())
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(String::from),
                );
            }
            view.tone = prefs
                .get("tone")
                .and_then(|t| t.as_str())
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(String::from);
        }
        view
    }

    fn is_empty(&self) -> bool {
        self.goals.is_empty()
            && self.homework.is_empty()
            && self.instructions.is_empty()
            && self.topics_to_avoid.is_empty()
            && self.tone.is_none()
    }

    /// The care-plan section of the system prompt; clinician directions come first.
    pub fn render(&self) -> String {
        if self.is_empty() {
            return String::new();
        }
        let mut out = String::from("\n## Care plan from the clinician\n");
        push_list(&mut out, "Clinician's instructions", &self.instructions);
        push_list(
            &mut out,
            "Topics to avoid (never bring these up; if the patient does, reply briefly and suggest talking with the clinician)",
            &self.topics_to_avoid,
        );
        if let Some(tone) = &self.tone {
            out.push_str(&format!("Preferred tone: {}\n", one_line(tone)));
        }
        push_list(&mut out, "Goals", &self.goals);
        push_list(&mut out, "Homework", &self.homework);
        out
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn push_list(out: &mut String, label: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    out.push_str(label);
    out.push_str(":\n");
    for item in items {
        out.push_str("- ");
        out.push_str(&one_line(item));
        out.push('\n');
    }
}

/// Everything the assembler needs for one turn.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ContextInput {
    pub care_plan: CarePlanView,
    /// The rolling, AI-generated summary of turns older than `turns`.
    pub summary: Option<String>,
    /// Retrieved passages, best first (see [`crate::Library::search`]).
    pub psychoeducation: Vec<Passage>,
    /// The conversation, oldest first, ending with the newest patient message.
    pub turns: Vec<Turn>,
    /// Set by the engine when the safety engine screened this turn as moderate risk: the
    /// stricter template is used and this text (from the safety crate) goes first.
    pub safety_instruction: Option<String>,
}

/// The model's window and how it is shared out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    /// The model's context length in tokens.
    pub context_window: usize,
    /// Tokens kept free for the reply.
    pub reserve_for_reply: usize,
    /// Chat-template tokens around each message (ChatML: `<|im_start|>role\n … <|im_end|>\n`).
    pub per_message_overhead: usize,
    /// At most this many tokens of the system message go to the summary section.
    pub max_summary_tokens: usize,
    /// At most this many tokens of the system message go to psychoeducation.
    pub max_psychoeducation_tokens: usize,
}

impl Budget {
    /// A sensible split of a window: 1/8 for the reply (at least 128, at most 1024), 1/8 each
    /// at most for summary and psychoeducation.
    pub fn for_window(context_window: usize) -> Self {
        Budget {
            context_window,
            reserve_for_reply: (context_window / 8).clamp(128, 1024),
            per_message_overhead: 5,
            max_summary_tokens: context_window / 8,
            max_psychoeducation_tokens: context_window / 8,
        }
    }

    /// Tokens available for the prompt itself.
    pub fn prompt_limit(&self) -> usize {
        self.context_window.saturating_sub(self.reserve_for_reply)
    }
}

impl Default for Budget {
    /// SmolLM2-135M's 2048-token window.
    fn default() -> Self {
        Budget::for_window(2048)
    }
}

/// The prompt to send, and what went into it (recorded in the message's provenance).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssembledPrompt {
    pub messages: Vec<PromptMessage>,
    /// Template id, e.g. `companion-system/v1`.
    pub template_version: String,
    /// Dialogue turns included (including the newest patient message).
    pub included_turns: usize,
    /// Dialogue turns left out (oldest first) to fit the window.
    pub dropped_turns: usize,
    /// Library ids of the passages included.
    pub psychoeducation_ids: Vec<String>,
    pub summary_included: bool,
    /// The newest patient message alone did not fit and only its end was kept.
    pub newest_truncated: bool,
    /// Even the mandatory parts exceed the budget (care plan far too long for the model).
    pub over_budget: bool,
    /// Tokens of the prompt by `count_tokens`, including per-message overhead.
    pub prompt_tokens: usize,
}

/// A conservative token estimate: the larger of ~4 characters and ~0.75 words per token.
pub fn approx_tokens(text: &str) -> usize {
    let chars = text.chars().count();
    let words = text.split_whitespace().count();
    chars.div_ceil(4).max((words * 4).div_ceil(3))
}

/// Minimum tokens of the newest message kept when it must be truncated.
const MIN_NEWEST_TOKENS: usize = 48;

fn summary_section(summary: &str) -> String {
    format!(
        "\n## Earlier in this conversation (AI-generated summary)\n{}\n",
        summary.trim()
    )
}

fn psychoeducation_section(passages: &[&Passage]) -> String {
    if passages.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\n## Background notes from Tandem's library (use in your own words, only if relevant)\n",
    );
    for p in passages {
        out.push_str(&format!("[{}] {}\n", p.title, one_line(&p.text)));
    }
    out
}

/// Keeps the end of `text` so that it fits in `limit` tokens, marking the cut.
fn keep_tail(text: &str, limit: usize, count: &dyn Fn(&str) -> usize) -> String {
    let starts: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
    let (mut lo, mut hi) = (0usize, starts.len());
    // Find the smallest start index whose tail fits.
    while lo < hi {
        let mid = (lo + hi) / 2;
        let tail = starts.get(mid).and_then(|&i| text.get(i..)).unwrap_or("");
        if count(&format!("[…] {tail}")) <= limit {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let tail = starts.get(lo).and_then(|&i| text.get(i..)).unwrap_or("");
    format!("[…] {tail}")
}

/// Builds the prompt for one turn. See the module docs for the rules.
pub fn assemble(
    input: &ContextInput,
    budget: &Budget,
    count_tokens: &dyn Fn(&str) -> usize,
) -> AssembledPrompt {
    let templates = Templates::embedded();
    let (template, safety) = match input.safety_instruction.as_deref().map(str::trim) {
        Some(instr) if !instr.is_empty() => (&templates.system_safety, instr),
        _ => (&templates.system, ""),
    };
    let care_plan = input.care_plan.render();
    let render = |summary: &str, psy: &str| {
        template.render(&[
            ("safety_instruction", safety),
            ("care_plan", &care_plan),
            ("summary", summary),
            ("psychoeducation", psy),
        ])
    };
    let overhead = budget.per_message_overhead;
    let limit = budget.prompt_limit();
    let cost = |text: &str| count_tokens(text) + overhead;

    // Dialogue: only turns up to and including the newest patient message.
    let last_user = input.turns.iter().rposition(|t| t.role == Role::User);
    let dialogue: &[Turn] = match last_user {
        Some(i) => input.turns.get(..=i).unwrap_or(&[]),
        None => &[],
    };
    let trailing = input.turns.len() - dialogue.len();

    // 1–3: mandatory parts.
    let mut system = render("", "");
    let base_cost = cost(&system);
    let mut newest_truncated = false;
    let mut newest: Option<PromptMessage> = None;
    let mut used = base_cost;
    if let Some(turn) = dialogue.last() {
        let room = limit.saturating_sub(base_cost + overhead);
        let text = if count_tokens(&turn.text) <= room {
            turn.text.clone()
        } else {
            newest_truncated = true;
            keep_tail(&turn.text, room.max(MIN_NEWEST_TOKENS), count_tokens)
        };
        used += cost(&text);
        newest = Some(PromptMessage {
            role: Role::User,
            content: text,
        });
    }

    // 4: summary, then psychoeducation passages, each within its cap and the window.
    let mut summary_text = String::new();
    if let Some(summary) = input.summary.as_deref().filter(|s| !s.trim().is_empty()) {
        let section = summary_section(summary);
        let candidate = render(&section, "");
        let with = cost(&candidate);
        if with - base_cost.min(with) <= budget.max_summary_tokens
            && used - base_cost + with <= limit
        {
            summary_text = section;
            used = used - base_cost + with;
            system = candidate;
        }
    }
    let sys_before_psy = cost(&system);
    let mut chosen: Vec<&Passage> = Vec::new();
    for passage in &input.psychoeducation {
        let mut trial = chosen.clone();
        trial.push(passage);
        let candidate = render(&summary_text, &psychoeducation_section(&trial));
        let with = cost(&candidate);
        let current = cost(&system);
        if with.saturating_sub(sys_before_psy) <= budget.max_psychoeducation_tokens
            && used - current + with <= limit
        {
            used = used - current + with;
            system = candidate;
            chosen = trial;
        }
    }

    // 5: earlier turns, newest first.
    let earlier = dialogue.len().saturating_sub(1);
    let mut kept: Vec<PromptMessage> = Vec::new();
    for turn in dialogue.get(..earlier).unwrap_or(&[]).iter().rev() {
        if turn.role == Role::System {
            continue; // not dialogue: counted as dropped
        }
        let c = cost(&turn.text);
        if used + c > limit {
            break;
        }
        used += c;
        kept.push(PromptMessage {
            role: turn.role,
            content: turn.text.clone(),
        });
    }
    kept.reverse();
    // The dialogue after the system message starts with the patient: some chat templates
    // (Gemma, Mistral) require user/assistant alternation beginning with the user.
    while kept.first().is_some_and(|m| m.role != Role::User) {
        let dropped = kept.remove(0);
        used -= cost(&dropped.content);
    }

    let included_turns = kept.len() + usize::from(newest.is_some());
    let mut messages = Vec::with_capacity(included_turns + 1);
    messages.push(PromptMessage {
        role: Role::System,
        content: system,
    });
    messages.extend(kept);
    messages.extend(newest);

    let mut psychoeducation_ids: Vec<String> = Vec::new();
    for p in &chosen {
        if !psychoeducation_ids.contains(&p.doc_id) {
            psychoeducation_ids.push(p.doc_id.clone());
        }
    }
    AssembledPrompt {
        template_version: template.id().to_string(),
        included_turns,
        dropped_turns: dialogue.len() - included_turns + trailing,
        psychoeducation_ids,
        summary_included: !summary_text.is_empty(),
        newest_truncated,
        over_budget: used > limit,
        prompt_tokens: used,
        messages,
    }
}
