//! The clinician-facing conversation summary: the prompt that asks the model for it, and the
//! label every stored summary carries. The engine stores the result with the ids of the
//! messages it covers (the first `covered_turns` of the turns passed in) and
//! `ai_generated = true`; the same text serves as the rolling summary in later prompts.

use crate::context::{Budget, PromptMessage, Role, Turn};
use crate::templates::Templates;
use serde::{Deserialize, Serialize};

/// Shown with every stored summary, to clinicians.
pub const AI_SUMMARY_LABEL: &str =
    "AI-generated summary: it may be incomplete or wrong; check the conversation before acting on it.";

/// A request for the model to summarise a stretch of conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryRequest {
    pub messages: Vec<PromptMessage>,
    /// Template id, e.g. `companion-summary/v1`.
    pub template_version: String,
    /// How many of the given turns (oldest first) the transcript covers.
    pub covered_turns: usize,
}

/// Builds the summary prompt for `turns` (oldest first), continuing `previous_summary` if
/// any. Takes as many turns from the start as fit the budget; summarise the rest next time.
pub fn summary_request(
    previous_summary: Option<&str>,
    turns: &[Turn],
    budget: &Budget,
    count_tokens: &dyn Fn(&str) -> usize,
) -> SummaryRequest {
    let template = &Templates::embedded().summary;
    let previous = previous_summary
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| format!("\nSummary so far (update it, do not repeat it word for word):\n{s}\n"))
        .unwrap_or_default();
    let limit = budget
        .prompt_limit()
        .saturating_sub(budget.per_message_overhead);
    let base = count_tokens(&template.render(&[("previous_summary", &previous)]));
    let mut used = base;
    let mut transcript = String::new();
    let mut covered = 0;
    for turn in turns {
        let speaker = match turn.role {
            Role::User => "Patient",
            Role::Assistant => "Tandem",
            Role::System => continue,
        };
        let line = format!(
            "{speaker}: {}\n",
            turn.text.split_whitespace().collect::<Vec<_>>().join(" ")
        );
        let c = count_tokens(&line);
        if used + c > limit && covered > 0 {
            break;
        }
        used += c;
        transcript.push_str(&line);
        covered += 1;
    }
    let content = template.render(&[
        ("previous_summary", &previous),
        ("transcript", transcript.trim_end()),
    ]);
    SummaryRequest {
        messages: vec![PromptMessage {
            role: Role::User,
            content,
        }],
        template_version: template.id().to_string(),
        covered_turns: covered,
    }
}

/// The summary as shown to a clinician: the label, then the text.
pub fn label_summary(text: &str) -> String {
    format!("{AI_SUMMARY_LABEL}\n\n{}", text.trim())
}
