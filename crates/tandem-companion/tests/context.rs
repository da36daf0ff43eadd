#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tandem_companion::{
    approx_tokens, assemble, Budget, CarePlanView, ContextInput, Library, Role, Templates, Turn,
};
use tandem_domain::CarePlanItemKind;

fn long_conversation(n: usize) -> Vec<Turn> {
    let mut turns = Vec::new();
    for i in 0..n {
        turns.push(Turn::user(format!(
            "Message {i} from the patient about their week, work, sleep and how things have been going lately."
        )));
        turns.push(Turn::assistant(format!(
            "Reply {i}: that sounds like a lot to carry. What felt hardest about it?"
        )));
    }
    turns.push(Turn::user("NEWEST: I couldn't sleep again last night."));
    turns
}

fn total_tokens(p: &tandem_companion::AssembledPrompt, budget: &Budget) -> usize {
    p.messages
        .iter()
        .map(|m| approx_tokens(&m.content) + budget.per_message_overhead)
        .sum()
}

#[test]
fn system_prompt_is_compact_for_small_models() {
    let t = Templates::load_default().unwrap();
    let empty = t.system.render(&[]);
    assert!(approx_tokens(&empty) < 350, "{}", approx_tokens(&empty));
    let strict = t.system_safety.render(&[]);
    assert!(approx_tokens(&strict) < 350, "{}", approx_tokens(&strict));
}

#[test]
fn budget_is_respected_and_newest_message_kept() {
    let library = Library::load_default().unwrap();
    for window in [512usize, 1024, 2048, 8192] {
        let budget = Budget::for_window(window);
        let input = ContextInput {
            care_plan: CarePlanView {
                goals: vec!["Sleep 7 hours most nights".into()],
                ..Default::default()
            },
            summary: Some("The patient has talked about stress at work and poor sleep.".into()),
            psychoeducation: library.search("can't sleep at night", 3),
            turns: long_conversation(200),
            safety_instruction: None,
        };
        let p = assemble(&input, &budget, &approx_tokens);
        assert!(!p.over_budget, "window {window}");
        assert!(p.prompt_tokens <= budget.prompt_limit(), "window {window}");
        assert_eq!(
            total_tokens(&p, &budget),
            p.prompt_tokens,
            "window {window}"
        );
        let last = p.messages.last().unwrap();
        assert_eq!(last.role, Role::User);
        assert!(last.content.starts_with("NEWEST"));
        assert!(p.dropped_turns > 0, "window {window}");
        assert_eq!(p.included_turns + p.dropped_turns, 401);
    }
}

#[test]
fn oldest_turns_are_dropped_first_and_order_is_kept() {
    let budget = Budget::for_window(1024);
    let input = ContextInput {
        turns: long_conversation(30),
        ..Default::default()
    };
    let p = assemble(&input, &budget, &approx_tokens);
    assert_eq!(p.messages.first().unwrap().role, Role::System);
    // After the system message the dialogue starts with the patient and alternates.
    let dialogue = &p.messages[1..];
    assert_eq!(dialogue.first().unwrap().role, Role::User);
    for pair in dialogue.windows(2) {
        assert_ne!(pair[0].role, pair[1].role);
    }
    // The kept turns are the most recent ones, in order.
    let kept: Vec<&str> = dialogue.iter().map(|m| m.content.as_str()).collect();
    let all: Vec<&str> = input.turns.iter().map(|t| t.text.as_str()).collect();
    assert_eq!(&all[all.len() - kept.len()..], kept.as_slice());
}

#[test]
fn everything_fits_in_a_large_window() {
    let budget = Budget::for_window(32_768);
    let input = ContextInput {
        turns: long_conversation(5),
        summary: Some("Earlier summary.".into()),
        ..Default::default()
    };
    let p = assemble(&input, &budget, &approx_tokens);
    assert_eq!(p.dropped_turns, 0);
    assert_eq!(p.included_turns, 11);
    assert!(p.summary_included);
    assert!(p.messages[0].content.contains("Earlier summary."));
}

#[test]
fn sections_come_in_priority_order() {
    let library = Library::load_default().unwrap();
    let input = ContextInput {
        care_plan: CarePlanView {
            instructions: vec!["Focus on sleep routines".into()],
            ..Default::default()
        },
        summary: Some("SUMMARY-TEXT".into()),
        psychoeducation: library.search("sleep", 1),
        turns: vec![Turn::user("hello")],
        safety_instruction: None,
    };
    let p = assemble(&input, &Budget::for_window(4096), &approx_tokens);
    let sys = &p.messages[0].content;
    let rules = sys.find("You are an AI").unwrap();
    let plan = sys.find("Focus on sleep routines").unwrap();
    let summary = sys.find("SUMMARY-TEXT").unwrap();
    let psy = sys.find("Background notes").unwrap();
    assert!(rules < plan && plan < summary && summary < psy);
    assert_eq!(p.psychoeducation_ids, vec!["sleep".to_string()]);
    assert_eq!(p.template_version, "companion-system/v1");
}

#[test]
fn care_plan_change_changes_the_prompt() {
    let base = ContextInput {
        turns: vec![Turn::user("Can we talk about my family?")],
        ..Default::default()
    };
    let budget = Budget::default();
    let before = assemble(&base, &budget, &approx_tokens);

    let prefs = serde_json::json!({"topics_to_avoid": ["details of the accident"], "tone": "gentle, informal"});
    let plan = CarePlanView::from_items(
        [
            (CarePlanItemKind::Goal, "Walk three times a week"),
            (
                CarePlanItemKind::Instruction,
                "Suggest grounding when she feels overwhelmed",
            ),
            (CarePlanItemKind::Note, "Clinician-only note: never shown"),
            (CarePlanItemKind::Psychoeducation, "sleep"),
        ],
        Some(&prefs),
    );
    assert_eq!(plan.psychoeducation_ids, vec!["sleep"]);
    let after = assemble(
        &ContextInput {
            care_plan: plan,
            ..base.clone()
        },
        &budget,
        &approx_tokens,
    );
    let sys = &after.messages[0].content;
    assert_ne!(before.messages[0].content, *sys);
    assert!(sys.contains("Topics to avoid"));
    assert!(sys.contains("details of the accident"));
    assert!(sys.contains("Preferred tone: gentle, informal"));
    assert!(sys.contains("Walk three times a week"));
    assert!(sys.contains("Suggest grounding"));
    assert!(!sys.contains("Clinician-only note"));
    assert!(!before.messages[0].content.contains("Topics to avoid"));
}

#[test]
fn safety_instruction_switches_template_and_goes_first() {
    let input = ContextInput {
        turns: vec![Turn::user("Everything feels pointless lately.")],
        safety_instruction: Some("SAFETY-SLOT: check they are safe and share resources.".into()),
        care_plan: CarePlanView {
            instructions: vec!["Use her first name".into()],
            ..Default::default()
        },
        ..Default::default()
    };
    let p = assemble(&input, &Budget::default(), &approx_tokens);
    assert_eq!(p.template_version, "companion-system-safety/v1");
    let sys = &p.messages[0].content;
    assert!(sys.find("SAFETY-SLOT").unwrap() < sys.find("Use her first name").unwrap());
    assert!(!sys.contains("{{"));
}

#[test]
fn an_oversized_newest_message_is_cut_from_the_front() {
    let huge = format!("{} FINAL WORDS", "word ".repeat(5000));
    let input = ContextInput {
        turns: vec![
            Turn::user("earlier"),
            Turn::assistant("ok"),
            Turn::user(huge),
        ],
        ..Default::default()
    };
    let budget = Budget::for_window(2048);
    let p = assemble(&input, &budget, &approx_tokens);
    assert!(p.newest_truncated);
    assert!(!p.over_budget);
    assert!(p.prompt_tokens <= budget.prompt_limit());
    let last = p.messages.last().unwrap();
    assert!(last.content.starts_with("[…]"));
    assert!(last.content.ends_with("FINAL WORDS"));
}

#[test]
fn psychoeducation_is_capped() {
    let library = Library::load_default().unwrap();
    let mut budget = Budget::for_window(2048);
    budget.max_psychoeducation_tokens = 150;
    let input = ContextInput {
        psychoeducation: library.search("anxiety worry panic sleep", 8),
        turns: vec![Turn::user("hi")],
        ..Default::default()
    };
    let p = assemble(&input, &budget, &approx_tokens);
    assert!(p.psychoeducation_ids.len() < 8);
    let no_psy = assemble(
        &ContextInput {
            psychoeducation: vec![],
            ..input.clone()
        },
        &budget,
        &approx_tokens,
    );
    let extra = approx_tokens(&p.messages[0].content) - approx_tokens(&no_psy.messages[0].content);
    assert!(extra <= 150, "{extra}");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn turn() -> impl Strategy<Value = Turn> {
        (any::<bool>(), "[a-zA-Z ,.?!éñ]{0,400}").prop_map(|(user, text)| {
            if user {
                Turn::user(text)
            } else {
                Turn::assistant(text)
            }
        })
    }

    proptest! {
        #[test]
        fn budget_holds_and_newest_is_last(
            turns in proptest::collection::vec(turn(), 0..60),
            newest in "[a-zA-Z ]{1,3000}",
            window in 512usize..16384,
            summary in proptest::option::of("[a-z ]{0,2000}"),
        ) {
            let mut turns = turns;
            turns.push(Turn::user(newest.clone()));
            let input = ContextInput { turns, summary, ..Default::default() };
            let budget = Budget::for_window(window);
            let p = assemble(&input, &budget, &approx_tokens);
            prop_assert!(p.prompt_tokens <= budget.prompt_limit());
            prop_assert_eq!(total_tokens(&p, &budget), p.prompt_tokens);
            let last = p.messages.last().unwrap();
            prop_assert_eq!(last.role, Role::User);
            if !p.newest_truncated {
                prop_assert_eq!(&last.content, &newest);
            }
            prop_assert_eq!(p.included_turns + p.dropped_turns, input.turns.len());
            prop_assert_eq!(p.messages.len(), p.included_turns + 1);
        }
    }
}
