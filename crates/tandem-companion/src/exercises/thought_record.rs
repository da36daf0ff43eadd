//! The thought record, a core CBT exercise.
//!
//! Steps follow the seven-column thought record of Greenberger & Padesky, *Mind Over Mood*
//! (2nd ed., Guilford, 2015), itself derived from the Dysfunctional Thought Record in Beck,
//! Rush, Shaw & Emery, *Cognitive Therapy of Depression* (Guilford, 1979): situation,
//! automatic thought, emotion and its intensity (0–100), evidence for, evidence against, a
//! balanced thought, and re-rating the emotion.

use super::{
    quote, rating, text_answer, ExerciseError, ExerciseInput, Expects, Prompt, ReflectionRequest,
    REFLECTION_RULES,
};
use serde::{Deserialize, Serialize};

/// Where a thought record is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThoughtRecordStep {
    #[default]
    Situation,
    AutomaticThought,
    Emotion,
    Intensity,
    EvidenceFor,
    EvidenceAgainst,
    BalancedThought,
    Rerate,
    Complete,
}

/// A thought record in progress or complete.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThoughtRecord {
    pub step: ThoughtRecordStep,
    pub situation: Option<String>,
    pub automatic_thought: Option<String>,
    pub emotion: Option<String>,
    /// 0–100.
    pub intensity_before: Option<u8>,
    /// `None` after the step if skipped.
    pub evidence_for: Option<String>,
    pub evidence_against: Option<String>,
    pub balanced_thought: Option<String>,
    /// 0–100.
    pub intensity_after: Option<u8>,
}

impl ThoughtRecord {
    pub fn is_complete(&self) -> bool {
        self.step == ThoughtRecordStep::Complete
    }

    pub(super) fn apply(&self, input: ExerciseInput) -> Result<Self, ExerciseError> {
        use ThoughtRecordStep as S;
        let mut s = self.clone();
        match self.step {
            S::Situation => {
                s.situation = text_answer(input, false)?;
                s.step = S::AutomaticThought;
            }
            S::AutomaticThought => {
                s.automatic_thought = text_answer(input, false)?;
                s.step = S::Emotion;
            }
            S::Emotion => {
                s.emotion = text_answer(input, false)?;
                s.step = S::Intensity;
            }
            S::Intensity => {
                s.intensity_before = Some(rating(&input, 0, 100)?);
                s.step = S::EvidenceFor;
            }
            S::EvidenceFor => {
                s.evidence_for = text_answer(input, true)?;
                s.step = S::EvidenceAgainst;
            }
            S::EvidenceAgainst => {
                s.evidence_against = text_answer(input, true)?;
                s.step = S::BalancedThought;
            }
            S::BalancedThought => {
                s.balanced_thought = text_answer(input, false)?;
                s.step = S::Rerate;
            }
            S::Rerate => {
                s.intensity_after = Some(rating(&input, 0, 100)?);
                s.step = S::Complete;
            }
            S::Complete => return Err(ExerciseError::AlreadyComplete),
        }
        Ok(s)
    }

    pub(super) fn prompt(&self) -> Prompt {
        use ThoughtRecordStep as S;
        let emotion = self.emotion.as_deref().unwrap_or("that feeling");
        match self.step {
            S::Situation => Prompt::new(
                "thought_record/situation",
                "Let's look at one moment together. What was the situation? Where were you, who was there, what was happening?",
                Expects::Text,
            ),
            S::AutomaticThought => Prompt::new(
                "thought_record/automatic_thought",
                "What went through your mind in that moment? Try to write the thought just as it came.",
                Expects::Text,
            ),
            S::Emotion => Prompt::new(
                "thought_record/emotion",
                "What emotion did you feel? One word is enough, for example anxious, sad, angry or ashamed.",
                Expects::Text,
            ),
            S::Intensity => Prompt::new(
                "thought_record/intensity",
                format!("How strong was {emotion}, from 0 (not at all) to 100 (the most you can imagine)?"),
                Expects::Rating { min: 0, max: 100 },
            ),
            S::EvidenceFor => Prompt::new(
                "thought_record/evidence_for",
                "What facts support the thought? Stick to things that happened, not interpretations. You can say \"skip\".",
                Expects::Text,
            )
            .skippable(),
            S::EvidenceAgainst => Prompt::new(
                "thought_record/evidence_against",
                "What facts don't fit the thought? What might a good friend point out? You can say \"skip\".",
                Expects::Text,
            )
            .skippable(),
            S::BalancedThought => Prompt::new(
                "thought_record/balanced_thought",
                "Looking at both sides, what is a more balanced way to see the situation? It doesn't have to be positive, just fair.",
                Expects::Text,
            ),
            S::Rerate => Prompt::new(
                "thought_record/rerate",
                format!("Thinking of that balanced thought, how strong is {emotion} now, from 0 to 100?"),
                Expects::Rating { min: 0, max: 100 },
            ),
            S::Complete => Prompt::new(
                "thought_record/complete",
                format!(
                    "Well done for working through this. {} Your clinician can see this thought record, so you can talk it through together.",
                    self.change_sentence()
                ),
                Expects::Nothing,
            ),
        }
    }

    fn change_sentence(&self) -> String {
        let emotion = self.emotion.as_deref().unwrap_or("the feeling");
        match (self.intensity_before, self.intensity_after) {
            (Some(b), Some(a)) if a < b => {
                format!("{emotion} went from {b} to {a}; even a small shift matters.")
            }
            (Some(b), Some(a)) if a == b => format!(
                "{emotion} stayed at {a}; that's useful to know, and some thoughts take more than one try."
            ),
            (Some(b), Some(a)) => format!(
                "{emotion} went from {b} to {a}; it's okay if it feels stronger right now, and it may help to try grounding or breathing."
            ),
            _ => String::new(),
        }
    }

    pub(super) fn reflection_request(&self) -> Option<ReflectionRequest> {
        use ThoughtRecordStep as S;
        match self.step {
            // The automatic thought has just been written down.
            S::Emotion => Some(ReflectionRequest {
                instruction: format!(
                    "The patient is doing a thought record. In the situation {}, they had the thought {}. Acknowledge that this thought sounds painful, without agreeing with it or challenging it. {REFLECTION_RULES}",
                    quote(self.situation.as_deref().unwrap_or("")),
                    quote(self.automatic_thought.as_deref().unwrap_or("")),
                ),
                fallback: "Thank you for writing that down; thoughts like that can feel very real in the moment.".into(),
            }),
            // The balanced thought has just been written down.
            S::Rerate => Some(ReflectionRequest {
                instruction: format!(
                    "The patient is doing a thought record. They replaced the thought {} with the more balanced thought {}. Acknowledge the effort of looking at both sides. {REFLECTION_RULES}",
                    quote(self.automatic_thought.as_deref().unwrap_or("")),
                    quote(self.balanced_thought.as_deref().unwrap_or("")),
                ),
                fallback: "That's a fairer way of looking at it, and it takes effort to get there.".into(),
            }),
            _ => None,
        }
    }

    pub(super) fn summary(&self) -> String {
        let line = |label: &str, v: &Option<String>, reached: bool| -> String {
            match (v, reached) {
                (Some(v), _) => format!("{label}: {v}\n"),
                (None, true) => format!("{label}: (skipped)\n"),
                (None, false) => String::new(),
            }
        };
        let step = self.step as u8;
        let mut out = format!(
            "Thought record ({})\n",
            if self.is_complete() {
                "complete"
            } else {
                "in progress"
            }
        );
        out.push_str(&line("Situation", &self.situation, false));
        out.push_str(&line("Automatic thought", &self.automatic_thought, false));
        if let Some(e) = &self.emotion {
            match self.intensity_before {
                Some(i) => out.push_str(&format!("Emotion: {e} ({i}/100)\n")),
                None => out.push_str(&format!("Emotion: {e}\n")),
            }
        }
        out.push_str(&line(
            "Evidence for",
            &self.evidence_for,
            step > ThoughtRecordStep::EvidenceFor as u8,
        ));
        out.push_str(&line(
            "Evidence against",
            &self.evidence_against,
            step > ThoughtRecordStep::EvidenceAgainst as u8,
        ));
        out.push_str(&line("Balanced thought", &self.balanced_thought, false));
        if let (Some(b), Some(a)) = (self.intensity_before, self.intensity_after) {
            out.push_str(&format!("Re-rated emotion: {a}/100 (was {b}/100)\n"));
        }
        out.trim_end().to_string()
    }
}
