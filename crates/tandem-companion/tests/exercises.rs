#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tandem_companion::exercises::{Breathing, BreathingStep};
use tandem_companion::{ExerciseError, ExerciseInput, ExerciseKind, ExerciseState, Expects};

fn ans(s: &str) -> ExerciseInput {
    ExerciseInput::Answer(s.to_string())
}

fn run(mut state: ExerciseState, inputs: Vec<ExerciseInput>) -> ExerciseState {
    for input in inputs {
        let (next, _prompt) = state.next(input.clone()).unwrap_or_else(|e| {
            panic!(
                "{input:?} rejected at {:?}: {e}",
                state.current_prompt().step
            )
        });
        state = next;
    }
    state
}

/// Serialise to JSON and back, as saving and resuming does.
fn save_and_resume(state: &ExerciseState) -> ExerciseState {
    let json = serde_json::to_string(state).unwrap();
    let back: ExerciseState = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, state);
    back
}

#[test]
fn thought_record_end_to_end() {
    let (state, first) = ExerciseState::start(ExerciseKind::ThoughtRecord);
    assert_eq!(first.step, "thought_record/situation");
    let state = run(
        state,
        vec![
            ans("My manager didn't reply to my email"),
            ans("She thinks my work is useless"),
            ans("anxious"),
            ans("80%"),
            ans("She replied quickly last time"),
            ans("She is travelling this week and replies late to everyone"),
            ans("She is probably busy; it says nothing about my work"),
            ans("40"),
        ],
    );
    assert!(state.is_complete());
    assert_eq!(state.current_prompt().expects, Expects::Nothing);
    assert!(state.current_prompt().text.contains("from 80 to 40"));
    let summary = state.summary();
    for needle in [
        "Thought record (complete)",
        "Situation: My manager didn't reply",
        "Emotion: anxious (80/100)",
        "Balanced thought: She is probably busy",
        "Re-rated emotion: 40/100 (was 80/100)",
    ] {
        assert!(summary.contains(needle), "{needle} not in {summary}");
    }
    assert_eq!(state.next(ans("more")), Err(ExerciseError::AlreadyComplete));
}

#[test]
fn thought_record_rejects_invalid_input_without_losing_state() {
    let (state, _) = ExerciseState::start(ExerciseKind::ThoughtRecord);
    let state = run(state, vec![ans("At work"), ans("I'll fail"), ans("scared")]);
    let before = state.clone();
    assert_eq!(
        state.next(ans("150")),
        Err(ExerciseError::OutOfRange {
            value: 150,
            min: 0,
            max: 100
        })
    );
    assert_eq!(
        state.next(ans("-5")),
        Err(ExerciseError::OutOfRange {
            value: -5,
            min: 0,
            max: 100
        })
    );
    assert_eq!(
        state.next(ans("very")),
        Err(ExerciseError::NotANumber { min: 0, max: 100 })
    );
    assert_eq!(
        state.next(ans("7.5")),
        Err(ExerciseError::NotANumber { min: 0, max: 100 })
    );
    assert_eq!(
        state.next(ExerciseInput::Skip),
        Err(ExerciseError::SkipNotAllowed)
    );
    assert_eq!(state, before);
    let err = state.next(ans("150")).unwrap_err().to_string();
    assert!(err.contains("0 to 100"), "{err}");

    // Free-text steps reject empty answers and over-long ones.
    let (fresh, _) = ExerciseState::start(ExerciseKind::ThoughtRecord);
    assert_eq!(fresh.next(ans("   ")), Err(ExerciseError::AnswerRequired));
    assert!(matches!(
        fresh.next(ans(&"x".repeat(5000))),
        Err(ExerciseError::TooLong { .. })
    ));
}

#[test]
fn thought_record_evidence_can_be_skipped() {
    let (state, _) = ExerciseState::start(ExerciseKind::ThoughtRecord);
    let state = run(
        state,
        vec![
            ans("a"),
            ans("b"),
            ans("sad"),
            ans("60"),
            ExerciseInput::Skip,
            ExerciseInput::Skip,
            ans("c"),
            ans("50"),
        ],
    );
    assert!(state.is_complete());
    assert!(state.summary().contains("Evidence for: (skipped)"));
}

#[test]
fn thought_record_pause_and_resume_midway() {
    let (state, _) = ExerciseState::start(ExerciseKind::ThoughtRecord);
    let state = run(
        state,
        vec![ans("At home"), ans("Nobody cares"), ans("lonely")],
    );
    let saved = serde_json::to_string(&state).unwrap();
    assert!(saved.contains("\"exercise\":\"thought_record\""));
    let resumed: ExerciseState = serde_json::from_str(&saved).unwrap();
    assert_eq!(resumed.current_prompt().step, "thought_record/intensity");
    assert!(resumed.current_prompt().text.contains("lonely"));
    let done = run(
        resumed,
        vec![ans("70"), ans("x"), ans("y"), ans("z"), ans("30")],
    );
    assert!(done.is_complete());
}

#[test]
fn thought_record_reflection_requests_are_narrow_with_fallbacks() {
    let (state, _) = ExerciseState::start(ExerciseKind::ThoughtRecord);
    assert!(state.reflection_request().is_none());
    let state = run(
        state,
        vec![ans("At a party"), ans("Everyone thinks I'm \"boring\"")],
    );
    let r = state.reflection_request().unwrap();
    assert!(r.instruction.contains("exactly one short"));
    assert!(r.instruction.contains("At a party"));
    assert!(r.instruction.contains("'boring'"));
    assert!(!r.fallback.is_empty());
    let state = run(
        state,
        vec![
            ans("embarrassed"),
            ans("70"),
            ans("a"),
            ans("b"),
            ans("Some people enjoyed talking to me"),
        ],
    );
    assert!(state.reflection_request().is_some());
}

#[test]
fn behavioural_activation_end_to_end() {
    let (state, first) = ExerciseState::start(ExerciseKind::BehaviouralActivation);
    assert_eq!(first.step, "behavioural_activation/list");
    let state = run(
        state,
        vec![ans("walk in the park, call my sister, tidy the kitchen")],
    );
    assert_eq!(
        state.current_prompt().expects,
        Expects::Ratings {
            count: 2,
            min: 0,
            max: 10
        }
    );
    let before = state.clone();
    assert!(matches!(
        state.next(ans("7")),
        Err(ExerciseError::WrongCount { .. })
    ));
    assert!(matches!(
        state.next(ans("7 11")),
        Err(ExerciseError::OutOfRange { value: 11, .. })
    ));
    assert_eq!(state, before);
    let state = run(state, vec![ans("7 4"), ans("6, 5"), ans("2 8")]);
    assert!(
        matches!(state.current_prompt().expects, Expects::Choice { ref options } if options.len() == 3)
    );
    assert_eq!(state.next(ans("9")), Err(ExerciseError::UnknownChoice));
    let state = save_and_resume(&state);
    let state = run(state, vec![ans("call"), ans("Saturday at 10am")]);
    assert!(state.reflection_request().is_some());
    assert_eq!(state.next(ans("perhaps")), Err(ExerciseError::NotYesNo));
    let state = run(state, vec![ans("yes")]);
    assert!(state.is_complete());
    let summary = state.summary();
    assert!(
        summary.contains("call my sister (expected pleasure 6/10, mastery 5/10) [chosen]"),
        "{summary}"
    );
    assert!(summary.contains("Scheduled: Saturday at 10am"));
    assert!(summary.contains("Committed: yes"));
}

#[test]
fn behavioural_activation_rejects_too_many_or_no_activities() {
    let (state, _) = ExerciseState::start(ExerciseKind::BehaviouralActivation);
    assert!(matches!(
        state.next(ans("a, b, c, d, e, f")),
        Err(ExerciseError::ActivityCount { .. })
    ));
    assert!(matches!(
        state.next(ans(" , ; ")),
        Err(ExerciseError::ActivityCount { .. })
    ));
    // A single activity skips the choice.
    let state = run(state, vec![ans("a short walk"), ans("5 5")]);
    assert_eq!(
        state.current_prompt().step,
        "behavioural_activation/schedule"
    );
}

#[test]
fn grounding_end_to_end_with_skips() {
    let (state, first) = ExerciseState::start(ExerciseKind::Grounding);
    assert_eq!(first.step, "grounding/see");
    assert!(first.can_skip);
    let state = run(
        state,
        vec![
            ans("lamp, door, window, cup, plant"),
            ans("chair, sleeve, table, floor"),
            ExerciseInput::Skip,
        ],
    );
    let state = save_and_resume(&state);
    assert_eq!(state.current_prompt().step, "grounding/smell");
    assert_eq!(
        state.next(ExerciseInput::Continue),
        Err(ExerciseError::EmptyAnswer)
    );
    let state = run(
        state,
        vec![ans("coffee, soap"), ExerciseInput::from_text("skip")],
    );
    assert!(state.is_complete());
    let summary = state.summary();
    assert!(summary.contains("5 see: lamp"));
    assert!(summary.contains("3 hear: (skipped)"));
    assert!(summary.contains("1 taste: (skipped)"));
}

#[test]
fn breathing_script_runs_its_cycles() {
    let b = Breathing::new(4, 6, 3).unwrap();
    let mut state = ExerciseState::Breathing(b);
    assert_eq!(state.current_prompt().step, "breathing/intro");
    let mut waits = Vec::new();
    while !state.is_complete() {
        let (next, prompt) = state.next(ExerciseInput::Continue).unwrap();
        if let Some(w) = prompt.wait_seconds {
            waits.push(w);
        }
        state = next;
    }
    assert_eq!(waits, vec![4, 6, 4, 6, 4, 6]);
    assert!(state.summary().contains("complete): 3 of 3 breaths"));
}

#[test]
fn breathing_can_stop_early_and_resume() {
    let (state, _) = ExerciseState::start(ExerciseKind::Breathing);
    let state = run(
        state,
        vec![ExerciseInput::Continue, ExerciseInput::Continue],
    );
    let state = save_and_resume(&state);
    match &state {
        ExerciseState::Breathing(b) => assert_eq!(b.step, BreathingStep::Exhale(1)),
        other => panic!("{other:?}"),
    }
    let state = run(
        state,
        vec![ExerciseInput::Continue, ExerciseInput::from_text("stop")],
    );
    assert!(state.is_complete());
    assert!(state.summary().contains("stopped early"));
    assert!(state.summary().contains("1 of 6"));
}

#[test]
fn breathing_settings_are_validated() {
    assert!(Breathing::new(1, 6, 3).is_err());
    assert!(Breathing::new(6, 4, 3).is_err());
    assert!(Breathing::new(4, 6, 0).is_err());
    assert!(Breathing::new(4, 6, 31).is_err());
}

#[test]
fn every_exercise_state_round_trips_at_every_step() {
    for &kind in ExerciseKind::ALL {
        let (mut state, _) = ExerciseState::start(kind);
        let mut steps = 0;
        while !state.is_complete() && steps < 50 {
            save_and_resume(&state);
            let input = match state.current_prompt().expects {
                Expects::Rating { .. } => ans("50"),
                Expects::Ratings { .. } => ans("5 5"),
                Expects::Choice { .. } => ans("1"),
                Expects::YesNo => ans("yes"),
                Expects::Continue => ExerciseInput::Continue,
                Expects::Text if kind == ExerciseKind::BehaviouralActivation && steps == 0 => {
                    ans("walk, read")
                }
                Expects::Text => ans("something"),
                Expects::Nothing => break,
            };
            state = state.next(input).unwrap().0;
            steps += 1;
        }
        assert!(state.is_complete(), "{kind:?}");
        save_and_resume(&state);
        assert_eq!(state.kind(), kind);
    }
}
