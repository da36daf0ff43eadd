//! Guided exercises through the engine: the step machine (pure, in `tandem-companion`) does
//! the structure, the model only phrases an optional one-sentence reflection, and every
//! answer still passes the safety screen (an answer that reveals a crisis gets the crisis
//! response and pauses the exercise). State is saved after every step, sealed, so a
//! patient can pause and resume and the clinician can see progress.

use serde::Serialize;
use tandem_companion::{ExerciseInput, ExerciseKind, ExerciseState, Prompt};
use tandem_domain::{ExerciseId, PatientId};
use tandem_model::{CancellationToken, ChatMessage, ChatRequest};
use tandem_safety::{Action, GuardContext, ScreenInput};
use tandem_store::{Actor, SaveExercise, StoreError};

use crate::{Engine, EngineError};

/// What the patient sees after an exercise step.
#[derive(Debug, Clone, Serialize)]
pub struct ExerciseTurn {
    pub exercise: ExerciseId,
    pub kind: ExerciseKind,
    /// The next step (or the closing text when complete).
    pub prompt: Prompt,
    /// A short reflection on the last answer, phrased by the model (or its fixed fallback).
    pub reflection: Option<String>,
    pub completed: bool,
    /// Set when the answer screened as high or imminent risk: show this instead of the
    /// prompt. The exercise is paused, not advanced.
    pub crisis_response: Option<String>,
}

impl Engine {
    /// Starts an exercise and saves it.
    pub async fn start_exercise(
        &self,
        actor: &Actor,
        patient: PatientId,
        kind: ExerciseKind,
    ) -> Result<ExerciseTurn, EngineError> {
        let (state, prompt) = ExerciseState::start(kind);
        let id = self
            .store
            .save_exercise(
                actor,
                SaveExercise {
                    id: None,
                    patient,
                    kind: kind.as_str().into(),
                    state: to_json(&state)?,
                    completed: false,
                },
            )
            .await?;
        Ok(ExerciseTurn {
            exercise: id,
            kind,
            prompt,
            reflection: None,
            completed: false,
            crisis_response: None,
        })
    }

    /// The patient's most recent unfinished exercise, to resume.
    pub async fn resumable_exercise(
        &self,
        actor: &Actor,
        patient: PatientId,
    ) -> Result<Option<ExerciseTurn>, EngineError> {
        let latest = self
            .store
            .exercises(actor, patient)
            .await?
            .into_iter()
            .rev()
            .find(|e| !e.completed);
        let Some(rec) = latest else { return Ok(None) };
        let state: ExerciseState = from_json(rec.state)?;
        Ok(Some(ExerciseTurn {
            exercise: rec.id,
            kind: state.kind(),
            prompt: state.current_prompt(),
            reflection: None,
            completed: false,
            crisis_response: None,
        }))
    }

    /// Applies one answer to an exercise. A rejected answer is an
    /// [`EngineError::Exercise`] whose message is written for the patient; nothing changes.
    pub async fn exercise_step(
        &self,
        actor: &Actor,
        patient: PatientId,
        exercise: ExerciseId,
        text: &str,
    ) -> Result<ExerciseTurn, EngineError> {
        let rec = self
            .store
            .exercises(actor, patient)
            .await?
            .into_iter()
            .find(|e| e.id == exercise)
            .ok_or_else(|| StoreError::NotFound(format!("exercise {exercise}")))?;
        let state: ExerciseState = from_json(rec.state)?;

        // Answers are patient text like any other: screen them first.
        let verdict = self.safety.screen(&ScreenInput { text, context: &[] });
        let protocol = self.safety.protocol(&verdict, &self.config.locale);
        let mut actions = Vec::new();
        self.record_risk_event(
            actor,
            patient,
            None,
            None,
            "exercise",
            &verdict,
            &mut actions,
        )
        .await?;
        if let Action::CrisisResponse { text, .. } = protocol.action {
            return Ok(ExerciseTurn {
                exercise,
                kind: state.kind(),
                prompt: state.current_prompt(),
                reflection: None,
                completed: false,
                crisis_response: Some(text),
            });
        }

        let (next, prompt) = state
            .next(ExerciseInput::from_text(text))
            .map_err(|e| EngineError::Exercise(e.to_string()))?;
        let reflection = match next.reflection_request() {
            Some(req) => Some(self.reflect(&req.instruction, &req.fallback).await),
            None => None,
        };
        let completed = next.is_complete();
        self.store
            .save_exercise(
                actor,
                SaveExercise {
                    id: Some(exercise),
                    patient,
                    kind: next.kind().as_str().into(),
                    state: to_json(&next)?,
                    completed,
                },
            )
            .await?;
        Ok(ExerciseTurn {
            exercise,
            kind: next.kind(),
            prompt,
            reflection,
            completed,
            crisis_response: None,
        })
    }

    /// One guarded sentence from the model, or the fixed fallback on any failure.
    async fn reflect(&self, instruction: &str, fallback: &str) -> String {
        let mut req = ChatRequest::new(vec![ChatMessage::user(instruction)]);
        req.max_tokens = 60;
        req.temperature = 0.3;
        req.seed = self.config.seed;
        let cancel = CancellationToken::new();
        let mut ignore = |_p: &str| {};
        let fut = self.model.generate(&req, &cancel, &mut ignore);
        let text = match tokio::time::timeout(self.config.model_timeout, fut).await {
            Ok(Ok(g)) => g.text.trim().to_string(),
            _ => {
                cancel.cancel();
                return fallback.to_string();
            }
        };
        let sentence = first_sentence(&text);
        let ok = !sentence.is_empty()
            && !echoes(&sentence, instruction)
            && self
                .safety
                .guard_output(&sentence, &GuardContext { user_verdict: None })
                .allowed;
        if ok {
            sentence
        } else {
            fallback.to_string()
        }
    }
}

/// The reply up to its first sentence end: a reflection is one sentence.
fn first_sentence(text: &str) -> String {
    let t = text.trim();
    let end = t
        .char_indices()
        .find(|&(i, c)| {
            matches!(c, '.' | '!' | '?') && t[i + c.len_utf8()..].starts_with([' ', '\n'])
        })
        .map_or(t.len(), |(i, c)| i + c.len_utf8());
    t[..end].trim().to_string()
}

/// Small models often repeat their instruction back; such a "reflection" is dropped.
fn echoes(reply: &str, instruction: &str) -> bool {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_alphanumeric() || c.is_whitespace())
            .flat_map(char::to_lowercase)
            .collect::<String>()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (r, i) = (norm(reply), norm(instruction));
    let probe: String = r.chars().take(30).collect();
    r.contains("the patient") || (probe.chars().count() >= 20 && i.contains(&probe))
}

fn to_json(state: &ExerciseState) -> Result<serde_json::Value, EngineError> {
    serde_json::to_value(state)
        .map_err(|e| EngineError::Exercise(format!("could not save the exercise: {e}")))
}

fn from_json(v: serde_json::Value) -> Result<ExerciseState, EngineError> {
    serde_json::from_value(v)
        .map_err(|e| StoreError::Corrupt(format!("saved exercise state is unreadable: {e}")).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoed_instructions_are_detected() {
        let instr =
            "The patient is doing a thought record. Reply with exactly one short, warm sentence.";
        assert!(echoes(
            "The patient is doing a thought record. In the situation",
            instr
        ));
        assert!(echoes(
            "Reply with exactly one short, warm sentence please",
            instr
        ));
        assert!(!echoes(
            "That sounds like a painful thought to have.",
            instr
        ));
        assert_eq!(first_sentence("One here. Two there."), "One here.");
        assert_eq!(first_sentence("No end"), "No end");
    }
}
