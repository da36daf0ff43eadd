#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tandem_companion::{
    approx_tokens, label_summary, summary_request, Budget, Role, Turn, AI_SUMMARY_LABEL,
};

#[test]
fn summary_prompt_covers_turns_and_is_versioned() {
    let turns = vec![
        Turn::user("I had a rough day at work."),
        Turn::assistant("That sounds hard. What happened?"),
        Turn::user("My manager criticised my report."),
    ];
    let r = summary_request(
        Some("Earlier: poor sleep."),
        &turns,
        &Budget::default(),
        &approx_tokens,
    );
    assert_eq!(r.template_version, "companion-summary/v1");
    assert_eq!(r.covered_turns, 3);
    assert_eq!(r.messages.len(), 1);
    assert_eq!(r.messages[0].role, Role::User);
    let c = &r.messages[0].content;
    assert!(c.contains("Never diagnose"));
    assert!(c.contains("Patient: I had a rough day at work."));
    assert!(c.contains("Tandem: That sounds hard."));
    assert!(c.contains("Earlier: poor sleep."));
    assert!(!c.contains("{{"));
}

#[test]
fn long_stretches_are_covered_from_the_oldest_within_budget() {
    let turns: Vec<Turn> = (0..500)
        .map(|i| {
            Turn::user(format!(
                "Turn {i}: a fairly long message about the day and feelings."
            ))
        })
        .collect();
    let budget = Budget::for_window(2048);
    let r = summary_request(None, &turns, &budget, &approx_tokens);
    assert!(r.covered_turns > 0 && r.covered_turns < 500);
    assert!(r.messages[0].content.contains("Turn 0:"));
    assert!(approx_tokens(&r.messages[0].content) <= budget.prompt_limit());
}

#[test]
fn stored_summaries_are_labelled() {
    let s = label_summary("- Patient reported poor sleep.");
    assert!(s.starts_with(AI_SUMMARY_LABEL));
    assert!(AI_SUMMARY_LABEL.contains("AI-generated"));
}
