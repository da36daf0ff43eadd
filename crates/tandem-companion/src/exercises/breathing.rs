//! Paced breathing: a fixed guided script of slow breaths with a longer out-breath.
//!
//! NHS guidance ("Breathing exercises for stress", nhs.uk/mental-health/self-help/guides-tools-
//! and-activities/breathing-exercises-for-stress) describes breathing in gently through the
//! nose and out through the mouth, counting steadily, for three to five minutes. Making the
//! out-breath longer than the in-breath (default 4 s in, 6 s out, about 6 breaths a minute) is
//! a common variant of slow paced breathing; see Zaccaro et al., "How breath-control can
//! change your life: a systematic review on psycho-physiological correlates of slow
//! breathing", Frontiers in Human Neuroscience 12:353 (2018).

use super::{ExerciseError, ExerciseInput, Expects, Prompt};
use serde::{Deserialize, Serialize};

/// Where the breathing script is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "step", content = "cycle")]
pub enum BreathingStep {
    #[default]
    Intro,
    /// Breathing in, on cycle n (1-based).
    Inhale(u8),
    /// Breathing out, on cycle n (1-based).
    Exhale(u8),
    Complete,
}

/// A paced-breathing exercise.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Breathing {
    pub inhale_seconds: u8,
    pub exhale_seconds: u8,
    pub cycles: u8,
    pub step: BreathingStep,
    /// Cycles fully completed.
    pub completed_cycles: u8,
    /// The patient chose to stop before the end.
    pub stopped_early: bool,
}

impl Default for Breathing {
    fn default() -> Self {
        Breathing {
            inhale_seconds: 4,
            exhale_seconds: 6,
            cycles: 6,
            step: BreathingStep::Intro,
            completed_cycles: 0,
            stopped_early: false,
        }
    }
}

impl Breathing {
    /// A custom pace: in 2–8 s, out 2–10 s, out no shorter than in, 1–30 cycles.
    pub fn new(inhale_seconds: u8, exhale_seconds: u8, cycles: u8) -> Result<Self, ExerciseError> {
        if !(2..=8).contains(&inhale_seconds)
            || !(2..=10).contains(&exhale_seconds)
            || exhale_seconds < inhale_seconds
            || !(1..=30).contains(&cycles)
        {
            return Err(ExerciseError::InvalidSettings(
                "breathe in 2–8 s, out 2–10 s (not shorter than in), 1–30 cycles".into(),
            ));
        }
        Ok(Breathing {
            inhale_seconds,
            exhale_seconds,
            cycles,
            ..Breathing::default()
        })
    }

    pub fn is_complete(&self) -> bool {
        self.step == BreathingStep::Complete
    }

    pub(super) fn apply(&self, input: ExerciseInput) -> Result<Self, ExerciseError> {
        use BreathingStep as S;
        let mut s = self.clone();
        if input == ExerciseInput::Skip {
            if self.step == S::Complete {
                return Err(ExerciseError::AlreadyComplete);
            }
            s.stopped_early = true;
            s.step = S::Complete;
            return Ok(s);
        }
        s.step = match self.step {
            S::Intro => S::Inhale(1),
            S::Inhale(n) => S::Exhale(n),
            S::Exhale(n) => {
                s.completed_cycles = n;
                if n >= self.cycles {
                    S::Complete
                } else {
                    S::Inhale(n.saturating_add(1))
                }
            }
            S::Complete => return Err(ExerciseError::AlreadyComplete),
        };
        Ok(s)
    }

    fn count(n: u8) -> String {
        (1..=n)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub(super) fn prompt(&self) -> Prompt {
        use BreathingStep as S;
        match self.step {
            S::Intro => Prompt::new(
                "breathing/intro",
                format!(
                    "Let's breathe slowly together for {} breaths. Sit or lie comfortably, drop your shoulders, and let your breath settle. We'll breathe in for {} and out for {}. Say \"ready\" when you are, or \"stop\" at any time.",
                    self.cycles, self.inhale_seconds, self.exhale_seconds
                ),
                Expects::Continue,
            ),
            S::Inhale(n) => {
                let mut p = Prompt::new(
                    "breathing/inhale",
                    format!(
                        "Breath {n} of {}: breathe in gently through your nose… {}",
                        self.cycles,
                        Breathing::count(self.inhale_seconds)
                    ),
                    Expects::Continue,
                );
                p.wait_seconds = Some(u32::from(self.inhale_seconds));
                p.can_skip = true;
                p
            }
            S::Exhale(_) => {
                let mut p = Prompt::new(
                    "breathing/exhale",
                    format!(
                        "And breathe out slowly through your mouth… {}",
                        Breathing::count(self.exhale_seconds)
                    ),
                    Expects::Continue,
                );
                p.wait_seconds = Some(u32::from(self.exhale_seconds));
                p.can_skip = true;
                p
            }
            S::Complete => Prompt::new(
                "breathing/complete",
                if self.stopped_early {
                    "That's fine, we can stop here. You can come back to this any time."
                } else {
                    "Well done. Let your breathing return to its own rhythm and notice how your body feels now."
                },
                Expects::Nothing,
            ),
        }
    }

    pub(super) fn summary(&self) -> String {
        let state = if !self.is_complete() {
            "in progress"
        } else if self.stopped_early {
            "stopped early"
        } else {
            "complete"
        };
        format!(
            "Paced breathing ({state}): {} of {} breaths, in {} s / out {} s",
            self.completed_cycles, self.cycles, self.inhale_seconds, self.exhale_seconds
        )
    }
}
