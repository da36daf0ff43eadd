//! Prints an assembled prompt for a sample care plan and conversation, to see what a model
//! receives: `cargo run -p tandem-companion --example show_prompt`.

use tandem_companion::{
    approx_tokens, assemble, Budget, CarePlanView, ContentError, ContextInput, Library, Turn,
};

fn main() -> Result<(), ContentError> {
    let library = Library::load_default()?;
    let question = "I can't sleep at night, my mind keeps racing";
    let input = ContextInput {
        care_plan: CarePlanView {
            goals: vec!["Get back to a regular sleep routine".into()],
            homework: vec!["Keep a sleep diary this week".into()],
            instructions: vec!["Suggest worry time when worries come up at night".into()],
            topics_to_avoid: vec!["details of the divorce".into()],
            tone: Some("gentle and informal".into()),
            psychoeducation_ids: vec!["sleep".into()],
        },
        summary: Some("- Patient described stress at work and waking at 3am.".into()),
        psychoeducation: library.search(question, 2),
        turns: vec![
            Turn::user("Hi, rough week."),
            Turn::assistant("I'm sorry it's been rough. What has been hardest?"),
            Turn::user(question),
        ],
        safety_instruction: None,
    };
    let prompt = assemble(&input, &Budget::default(), &approx_tokens);
    for m in &prompt.messages {
        println!(
            "--- {} ({} tokens)\n{}",
            m.role.as_str(),
            approx_tokens(&m.content),
            m.content
        );
    }
    println!(
        "--- template {}, {} turns in, {} dropped, ~{} tokens, psychoeducation {:?}",
        prompt.template_version,
        prompt.included_turns,
        prompt.dropped_turns,
        prompt.prompt_tokens,
        prompt.psychoeducation_ids
    );
    Ok(())
}
