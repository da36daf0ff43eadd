#![doc = include_str!("../README.md")]

pub mod guard;
pub mod jsonl;
pub mod lexicon;
pub mod normalise;
pub mod protocol;
pub mod screen;
pub mod taxonomy;

use std::fmt::Write as _;

pub use guard::{GuardBlock, GuardCategory, GuardContext, GuardData, GuardDecision, GuardVerdict};
pub use jsonl::{evaluate, screen_json_line, EvalError, EvalReport, Miss};
pub use lexicon::Lexicon;
pub use protocol::{Action, Alert, LocaleTexts, Protocol, ProtocolData, Reviewed};
pub use screen::{Evidence, EvidenceKind, ScreenInput, Span, Verdict};
pub use taxonomy::{Category, Level, ParseTaxonomyError};

/// The screening lexicon shipped with the crate.
pub const DEFAULT_LEXICON: &str = include_str!("../data/lexicon.toml");
/// The crisis protocol shipped with the crate.
pub const DEFAULT_PROTOCOL: &str = include_str!("../data/protocol.toml");
/// The output-guard rules shipped with the crate.
pub const DEFAULT_GUARD: &str = include_str!("../data/guard.toml");
/// The development set (labelled JSONL).
pub const DEVSET: &str = include_str!("../data/devset.jsonl");
/// The held-out set (labelled JSONL), written before tuning.
pub const HOLDOUT: &str = include_str!("../data/holdout.jsonl");

/// A data file that could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The file is not valid TOML for its format.
    #[error("{0} data: {1}")]
    Parse(&'static str, String),
    /// The file parsed but breaks a rule (missing sources, bad pattern, ...).
    #[error("{0}")]
    Invalid(String),
}

/// The text of the three data files, for [`SafetyEngine::from_sources`].
#[derive(Debug, Clone, Copy)]
pub struct Sources<'a> {
    /// Screening lexicon (`data/lexicon.toml` format).
    pub lexicon: &'a str,
    /// Crisis protocol (`data/protocol.toml` format).
    pub protocol: &'a str,
    /// Output guard (`data/guard.toml` format).
    pub guard: &'a str,
}

impl Default for Sources<'static> {
    fn default() -> Self {
        Sources {
            lexicon: DEFAULT_LEXICON,
            protocol: DEFAULT_PROTOCOL,
            guard: DEFAULT_GUARD,
        }
    }
}

/// The safety engine: built once at start-up, then shared (it is `Send + Sync`).
#[derive(Debug, Clone)]
pub struct SafetyEngine {
    lexicon: Lexicon,
    protocol: ProtocolData,
    guard: GuardData,
}

impl SafetyEngine {
    /// Build from the data files shipped with the crate.
    pub fn load_default() -> Result<Self, LoadError> {
        Self::from_sources(Sources::default())
    }

    /// Build from custom data (same formats as the shipped files).
    pub fn from_sources(sources: Sources<'_>) -> Result<Self, LoadError> {
        Ok(SafetyEngine {
            lexicon: Lexicon::parse(sources.lexicon)?,
            protocol: ProtocolData::parse(sources.protocol)?,
            guard: GuardData::parse(sources.guard)?,
        })
    }

    /// Screen a user message with its context.
    pub fn screen(&self, input: &ScreenInput<'_>) -> Verdict {
        self.lexicon.screen(input)
    }

    /// Decide the protocol action for a verdict and the patient's locale (BCP 47).
    pub fn protocol(&self, verdict: &Verdict, locale: &str) -> Protocol {
        self.protocol.decide(verdict, locale)
    }

    /// Screen a model reply before the patient sees it.
    pub fn guard_output(&self, reply: &str, ctx: &GuardContext<'_>) -> GuardVerdict {
        self.guard.check(reply, ctx)
    }

    /// What to do after the guard: pass, retry once with a stricter instruction, or fall back.
    /// `attempt` is 1 for the first reply and 2 for the retry.
    pub fn guard_decision(
        &self,
        verdict: &GuardVerdict,
        attempt: u32,
        locale: &str,
    ) -> GuardDecision {
        self.guard.decide(verdict, attempt, locale)
    }

    /// The compiled lexicon.
    pub fn lexicon(&self) -> &Lexicon {
        &self.lexicon
    }

    /// The protocol data.
    pub fn protocol_data(&self) -> &ProtocolData {
        &self.protocol
    }

    /// The guard data.
    pub fn guard_data(&self) -> &GuardData {
        &self.guard
    }

    /// The whole protocol as Markdown (levels, mapping, actions, each locale's texts,
    /// the guard, and every source), for `tandem safety protocol`.
    pub fn protocol_markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# Tandem safety protocol\n");
        let _ = writeln!(
            out,
            "Every patient message is screened before any model call, with the patient's earlier \
             messages as context. The screen is rule-based and explainable: each level comes with \
             the phrases and rule ids that produced it. At `high` and `imminent` the patient gets \
             the fixed crisis response below, never generated text, and what they asked for \
             (methods, heights, doses) is never answered. Every model reply is checked by the \
             output guard before the patient sees it.\n"
        );
        self.protocol.render_markdown(&mut out);
        let _ = writeln!(out, "## Output guard\n");
        let _ = writeln!(
            out,
            "A reply that breaks a rule is withheld; the model gets one retry with a stricter \
             instruction, then the patient gets a fixed fallback reply. Each block is logged with \
             its rule id (never the text).\n"
        );
        let _ = writeln!(out, "| Rule | Blocks |");
        let _ = writeln!(out, "| --- | --- |");
        for (id, cat) in self.guard.rules() {
            let cat = serde_json::to_value(cat)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let _ = writeln!(out, "| `{id}` | {cat} |");
        }
        let _ = writeln!(
            out,
            "\nFallback reply (en): {}\n",
            self.guard.fallback_reply("en")
        );
        let _ = writeln!(
            out,
            "Guard data version `{}`. Sources:\n",
            self.guard.version
        );
        for s in &self.guard.sources {
            let _ = writeln!(out, "- {s}");
        }
        let _ = writeln!(
            out,
            "\n## Screening lexicon\n\nVersion `{}`, {} phrases. Sources:\n",
            self.lexicon.version,
            self.lexicon.phrase_count()
        );
        for s in &self.lexicon.sources {
            let _ = writeln!(out, "- {s}");
        }
        out
    }
}
