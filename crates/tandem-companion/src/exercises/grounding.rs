//! 5-4-3-2-1 grounding: noticing five things you can see, four you can touch, three you can
//! hear, two you can smell and one you can taste, to bring attention back to the present.
//! Described in NHS guidance (NHS Every Mind Matters and NHS trust self-help leaflets on
//! grounding techniques for anxiety and panic). Any step may be skipped.

use super::{text_answer, ExerciseError, ExerciseInput, Expects, Prompt};
use serde::{Deserialize, Serialize};

/// The five steps: (count, sense, verb phrase).
pub const SENSES: [(u8, &str, &str); 5] = [
    (5, "see", "things you can see"),
    (4, "touch", "things you can touch or feel"),
    (3, "hear", "things you can hear"),
    (2, "smell", "things you can smell"),
    (1, "taste", "thing you can taste"),
];

/// A grounding exercise in progress or complete.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grounding {
    /// One entry per answered step; `None` for a skipped step.
    pub answers: Vec<Option<String>>,
}

impl Grounding {
    pub fn is_complete(&self) -> bool {
        self.answers.len() >= SENSES.len()
    }

    pub(super) fn apply(&self, input: ExerciseInput) -> Result<Self, ExerciseError> {
        if self.is_complete() {
            return Err(ExerciseError::AlreadyComplete);
        }
        let mut s = self.clone();
        s.answers.push(text_answer(input, true)?);
        Ok(s)
    }

    pub(super) fn prompt(&self) -> Prompt {
        match SENSES.get(self.answers.len()) {
            Some(&(n, sense, what)) => {
                let intro = if self.answers.is_empty() {
                    "Let's bring your attention to the here and now. Take your time. "
                } else {
                    ""
                };
                Prompt::new(
                    &format!("grounding/{sense}"),
                    format!("{intro}Name {n} {what}. (You can say \"skip\".)"),
                    Expects::Text,
                )
                .skippable()
            }
            None => Prompt::new(
                "grounding/complete",
                "Well done. Take a slow breath and notice how you feel now compared with when we started.",
                Expects::Nothing,
            ),
        }
    }

    pub(super) fn summary(&self) -> String {
        let mut out = format!(
            "5-4-3-2-1 grounding ({})\n",
            if self.is_complete() {
                "complete"
            } else {
                "in progress"
            }
        );
        for (answer, (n, sense, _)) in self.answers.iter().zip(SENSES.iter()) {
            match answer {
                Some(a) => out.push_str(&format!("{n} {sense}: {a}\n")),
                None => out.push_str(&format!("{n} {sense}: (skipped)\n")),
            }
        }
        out.trim_end().to_string()
    }
}
