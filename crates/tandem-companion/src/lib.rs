#![doc = include_str!("../README.md")]

pub mod context;
pub mod disclosure;
pub mod exercises;
mod frontmatter;
pub mod library;
pub mod nudge;
pub mod summary;
pub mod templates;

pub use context::{
    approx_tokens, assemble, AssembledPrompt, Budget, CarePlanView, ContextInput, PromptMessage,
    Role, Turn,
};
pub use disclosure::{
    disclosure_banner, identity_answer, identity_question_locale, is_identity_question,
    IdentityDetector, Locale, DISCLOSURE_BANNER,
};
pub use exercises::{
    ExerciseError, ExerciseInput, ExerciseKind, ExerciseState, Expects, Prompt, ReflectionRequest,
};
pub use library::{Document, Library, Passage};
pub use nudge::{
    dependence_nudge, dependence_nudge_with, sessions_from_activity, Nudge, NudgeReason,
    NudgeThresholds, SessionSpan, UsageStats,
};
pub use summary::{label_summary, summary_request, SummaryRequest, AI_SUMMARY_LABEL};
pub use templates::{Template, Templates};

/// A shipped content file (template, pattern list, psychoeducation item) that failed to load.
/// The crate's tests load every shipped file, so this only appears for edited or custom files.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {detail}")]
pub struct ContentError {
    pub what: &'static str,
    pub detail: String,
}

impl ContentError {
    pub(crate) fn new(what: &'static str, detail: impl Into<String>) -> Self {
        ContentError {
            what,
            detail: detail.into(),
        }
    }
}
