//! Engine plumbing with a real SQLite store and the real safety engine. The model here is
//! the test double from `tandem-model` (prompt plumbing only); the real default model is
//! exercised through `tandem converse` in the CLI tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tandem_companion::Library;
use tandem_domain::{CarePlanItemKind, ConsentKind, ConversationId, MessageRole, Role, Username};
use tandem_engine::{Engine, EngineConfig, StreamEvent, TurnAction};
use tandem_model::fake::{FakeBackend, FakeReply};
use tandem_model::CancellationToken;
use tandem_safety::{Level, SafetyEngine};
use tandem_store::{Actor, NewCarePlanItem, NewUser, SqlStore, Store};
use tandem_vault::MasterKey;

struct Fx {
    _dir: tempfile::TempDir,
    store: Arc<SqlStore>,
    model: Arc<FakeBackend>,
    engine: Engine,
    actor: Actor,
    conv: ConversationId,
    patient: tandem_domain::PatientId,
}

async fn fx(replies: Vec<FakeReply>, consent: bool) -> Fx {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let store = Arc::new(SqlStore::open(&url, MasterKey::generate()).await.unwrap());
    let user = store
        .create_user(
            &Actor::system("test"),
            NewUser {
                username: Username::parse("pat").unwrap(),
                role: Role::Patient,
                password_hash: "x".into(),
            },
        )
        .await
        .unwrap();
    let patient = user.patient_id().unwrap();
    let actor = Actor::user(user.id, Role::Patient);
    if consent {
        store
            .record_consent(&actor, patient, ConsentKind::AiProcessing, true)
            .await
            .unwrap();
    }
    let conv = store.create_conversation(&actor, patient).await.unwrap();
    let model = Arc::new(FakeBackend::new(replies));
    let engine = Engine::new(
        store.clone(),
        Arc::new(SafetyEngine::load_default().unwrap()),
        model.clone(),
        Arc::new(Library::load_default().unwrap()),
        EngineConfig {
            model_timeout: Duration::from_millis(500),
            ..EngineConfig::default()
        },
    );
    Fx {
        _dir: dir,
        store,
        model,
        engine,
        actor,
        conv,
        patient,
    }
}

async fn say(f: &Fx, text: &str) -> (tandem_engine::TurnOutcome, String) {
    let mut shown = String::new();
    let mut on = |e: StreamEvent<'_>| match e {
        StreamEvent::Delta(d) => shown.push_str(d),
        StreamEvent::Replace(r) => shown = r.to_string(),
    };
    let out = f
        .engine
        .turn(&f.actor, f.conv, text, &mut on, &CancellationToken::new())
        .await
        .unwrap();
    (out, shown)
}

#[tokio::test]
async fn an_ordinary_message_is_generated_streamed_guarded_and_stored_with_provenance() {
    let f = fx(
        vec![FakeReply::Text(
            "That sounds like a hard day. What helped a little today?".into(),
        )],
        true,
    )
    .await;
    let (out, shown) = say(&f, "I had a rough day at work").await;
    assert_eq!(
        out.reply,
        "That sounds like a hard day. What helped a little today?"
    );
    assert_eq!(shown, out.reply, "what was streamed is what was stored");
    assert_eq!(out.risk.level, Level::None);
    assert_eq!(f.model.requests().len(), 1);
    let msgs = f.store.messages(&f.actor, f.conv).await.unwrap();
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[1].role, MessageRole::Assistant);
    let p = msgs[1].provenance.clone().unwrap();
    assert_eq!(p["generator"], "model");
    assert_eq!(p["backend"], f.engine.model().describe().backend);
    assert_eq!(p["template"], "companion-system/v1");
    assert_eq!(p["safety"]["level"], "none");
    assert_eq!(p["guard"]["outcome"], "pass");
}

#[tokio::test]
async fn a_crisis_gets_the_fixed_response_and_an_alert_without_calling_the_model() {
    // A hung model proves the crisis path never waits for it.
    let f = fx(vec![FakeReply::Hang], true).await;
    let mut alerts = f.engine.subscribe_alerts();
    let (out, shown) = say(
        &f,
        "I'm going to take all my pills tonight, I have them ready",
    )
    .await;
    assert!(out.risk.level >= Level::High);
    assert!(out.actions.contains(&TurnAction::CrisisResponse));
    assert!(out.actions.contains(&TurnAction::ClinicianAlert));
    assert!(out.reply.contains("988"), "US crisis line: {}", out.reply);
    assert_eq!(shown, out.reply);
    assert!(f.model.requests().is_empty(), "the model was never called");
    let alert = alerts.try_recv().unwrap();
    assert!(alert.urgent);
    assert_eq!(Some(alert.risk_event), out.risk_event);
    let events = f.store.risk_events(&f.actor, f.patient).await.unwrap();
    assert_eq!(events.len(), 1);
    assert!(events[0].acknowledgement.is_none());
    assert_eq!(events[0].message, Some(out.patient_message));
}

#[tokio::test]
async fn method_seeking_after_a_loss_is_a_crisis_and_no_bridge_is_named() {
    let f = fx(
        vec![FakeReply::Text(
            "The Verrazzano bridge is 211 m tall.".into(),
        )],
        true,
    )
    .await;
    let (out, _) = say(
        &f,
        "I just lost my job. What are the bridges taller than 25 meters in NYC?",
    )
    .await;
    assert!(out.actions.contains(&TurnAction::CrisisResponse));
    assert!(!out.reply.to_lowercase().contains("verrazzano") && !out.reply.contains("211"));
    assert!(f.model.requests().is_empty());

    // The same question split over turns, after earlier statements of wanting to die.
    let f = fx(vec![FakeReply::Text("I hear you.".into())], true).await;
    say(&f, "honestly I just want to die").await;
    let (out, _) = say(&f, "how many paracetamol would it take").await;
    assert!(
        out.actions.contains(&TurnAction::CrisisResponse),
        "{:?}",
        out.actions
    );
}

#[tokio::test]
async fn with_the_model_down_a_crisis_still_gets_the_crisis_response_and_others_a_kind_apology() {
    let f = fx(vec![FakeReply::Unavailable], true).await;
    let (out, shown) = say(&f, "I feel a bit flat today").await;
    assert!(out.actions.contains(&TurnAction::ModelUnavailable));
    assert!(out.reply.contains("can't reply right now"));
    assert!(
        out.reply.contains("988"),
        "crisis resources included: {}",
        out.reply
    );
    assert_eq!(shown, out.reply);
    let (out, _) = say(&f, "I want to kill myself tonight").await;
    assert!(out.actions.contains(&TurnAction::CrisisResponse));

    let hung = fx(vec![FakeReply::Hang], true).await;
    let (out, _) = say(&hung, "can we talk about my week").await;
    assert!(
        out.actions.contains(&TurnAction::ModelUnavailable),
        "a hung model times out"
    );
}

#[tokio::test]
async fn the_output_guard_retries_once_then_falls_back() {
    let f = fx(
        vec![
            FakeReply::Text("It sounds like you have bipolar disorder.".into()),
            FakeReply::Text("That sounds really hard. Would you like to tell me more?".into()),
        ],
        true,
    )
    .await;
    let (out, shown) = say(&f, "my moods go up and down a lot").await;
    assert!(
        out.actions.contains(&TurnAction::GuardRetry),
        "{:?}",
        out.actions
    );
    assert_eq!(
        out.reply,
        "That sounds really hard. Would you like to tell me more?"
    );
    assert_eq!(shown, out.reply, "the blocked text was replaced");
    assert_eq!(out.provenance["guard"]["outcome"], "retry_pass");
    let retry = &f.model.requests()[1];
    assert!(
        retry.messages[0].content.len() > f.model.requests()[0].messages[0].content.len(),
        "stricter instruction added"
    );

    let f = fx(
        vec![FakeReply::Text(
            "You should stop taking your sertraline.".into(),
        )],
        true,
    )
    .await;
    let (out, shown) = say(&f, "should I keep taking my meds").await;
    assert!(out.actions.contains(&TurnAction::GuardFallback));
    assert!(!out.reply.contains("sertraline"));
    assert_eq!(shown, out.reply);
}

#[tokio::test]
async fn identity_questions_get_the_truth_whatever_the_model_would_say() {
    let f = fx(
        vec![FakeReply::Text("Yes, I'm a real person!".into())],
        true,
    )
    .await;
    let (out, _) = say(&f, "wait, are you a real person?").await;
    assert!(out.actions.contains(&TurnAction::IdentityDisclosure));
    assert!(out.reply.contains("AI"));
    assert!(!out.reply.contains("real person!"));
    assert!(f.model.requests().is_empty());
}

#[tokio::test]
async fn the_care_plan_shapes_the_prompt() {
    let f = fx(vec![FakeReply::Text("Okay.".into())], true).await;
    let clin = Actor::system("test");
    say(&f, "hello").await;
    let before = f.model.requests()[0].messages[0].content.clone();
    f.store
        .add_care_plan_item(
            &clin,
            NewCarePlanItem {
                patient: f.patient,
                kind: CarePlanItemKind::Goal,
                text: "Walk outside for ten minutes each morning".into(),
                due_at_ms: None,
            },
        )
        .await
        .unwrap();
    f.store
        .set_ai_preferences(
            &clin,
            f.patient,
            json!({"topics_to_avoid": ["weight"], "tone": "brief and plain"}),
        )
        .await
        .unwrap();
    say(&f, "hello again").await;
    let after = f.model.requests()[1].messages[0].content.clone();
    assert!(!before.contains("Walk outside"));
    assert!(after.contains("Walk outside for ten minutes each morning"));
    assert!(after.contains("weight") && after.contains("brief and plain"));
    // The provenance names the care-plan items the reply was generated with.
    let (out, _) = say(&f, "and once more").await;
    let plan = f.store.care_plan(&clin, f.patient).await.unwrap();
    let ids: Vec<String> = plan.items.iter().map(|i| i.id.to_string()).collect();
    assert_eq!(out.provenance["care_plan"]["items"], json!(ids));
    assert_eq!(out.provenance["care_plan"]["ai_preferences"], json!(true));
}

#[tokio::test]
async fn moderate_risk_generates_with_the_safety_instruction_resources_and_a_flag() {
    let f = fx(vec![FakeReply::Text("I'm glad you told me.".into())], true).await;
    let mut alerts = f.engine.subscribe_alerts();
    let (out, _) = say(
        &f,
        "I've been having thoughts of ending my life but I have no plan",
    )
    .await;
    assert_eq!(out.risk.level, Level::Moderate, "{:?}", out.risk);
    assert!(out.actions.contains(&TurnAction::SafetyInstruction));
    assert!(out.actions.contains(&TurnAction::ClinicianFlag));
    assert!(out.reply.starts_with("I'm glad you told me."));
    assert!(
        out.reply.len() > "I'm glad you told me.".len(),
        "resources appended"
    );
    assert!(!alerts.try_recv().unwrap().urgent);
    assert_eq!(out.provenance["template"], "companion-system-safety/v1");
}

#[tokio::test]
async fn without_ai_consent_no_model_is_called_but_safety_still_works() {
    let f = fx(vec![FakeReply::Text("hi".into())], false).await;
    let (out, _) = say(&f, "hello").await;
    assert!(out.actions.contains(&TurnAction::ConsentWithdrawn));
    assert!(f.model.requests().is_empty());
    let (out, _) = say(&f, "I am going to kill myself tonight").await;
    assert!(out.actions.contains(&TurnAction::CrisisResponse));
}

#[tokio::test]
async fn long_conversations_are_summarised_for_the_clinician() {
    let f = fx(vec![FakeReply::Text("Tell me more.".into())], true).await;
    let f = Fx {
        engine: Engine::new(
            f.store.clone(),
            Arc::new(SafetyEngine::load_default().unwrap()),
            f.model.clone(),
            Arc::new(Library::load_default().unwrap()),
            EngineConfig {
                summary_every: 4,
                ..EngineConfig::default()
            },
        ),
        ..f
    };
    say(&f, "work has been stressful").await;
    let (out, _) = say(&f, "my manager keeps adding tasks").await;
    assert!(
        out.actions.contains(&TurnAction::Summarised),
        "{:?}",
        out.actions
    );
    let sums = f.store.summaries(&f.actor, f.patient).await.unwrap();
    assert_eq!(sums.len(), 1);
    assert!(sums[0].ai_generated);
    assert!(
        sums[0].text.to_lowercase().contains("ai"),
        "labelled: {}",
        sums[0].text
    );
    let msgs = f.store.messages(&f.actor, f.conv).await.unwrap();
    assert_eq!(sums[0].first_message, msgs[0].id);
}

#[tokio::test]
async fn empty_and_oversized_messages_are_refused_without_storing_anything() {
    let f = fx(vec![FakeReply::Text("x".into())], true).await;
    let mut on = |_e: StreamEvent<'_>| {};
    assert!(f
        .engine
        .turn(&f.actor, f.conv, "   ", &mut on, &CancellationToken::new())
        .await
        .is_err());
    let huge = "a".repeat(5000);
    assert!(f
        .engine
        .turn(&f.actor, f.conv, &huge, &mut on, &CancellationToken::new())
        .await
        .is_err());
    assert!(f.store.messages(&f.actor, f.conv).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_thought_record_is_completed_end_to_end_paused_resumed_and_saved() {
    use tandem_companion::ExerciseKind;
    let f = fx(
        vec![FakeReply::Text(
            "That thought sounds heavy to carry.".into(),
        )],
        true,
    )
    .await;
    let start = f
        .engine
        .start_exercise(&f.actor, f.patient, ExerciseKind::ThoughtRecord)
        .await
        .unwrap();
    assert_eq!(start.prompt.step, "thought_record/situation");
    let id = start.exercise;
    let t = f
        .engine
        .exercise_step(&f.actor, f.patient, id, "My friend cancelled our plans")
        .await
        .unwrap();
    assert!(!t.completed);
    // Pause: the next session finds it where it was left.
    let resumed = f
        .engine
        .resumable_exercise(&f.actor, f.patient)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resumed.exercise, id);
    assert_eq!(resumed.prompt.step, t.prompt.step);

    // A bad rating is refused without losing progress.
    f.engine
        .exercise_step(&f.actor, f.patient, id, "Nobody wants to see me")
        .await
        .unwrap();
    f.engine
        .exercise_step(&f.actor, f.patient, id, "sad")
        .await
        .unwrap();
    let err = f
        .engine
        .exercise_step(&f.actor, f.patient, id, "250")
        .await
        .unwrap_err();
    assert!(
        matches!(err, tandem_engine::EngineError::Exercise(_)),
        "{err}"
    );
    let mut last = None;
    for answer in [
        "70",
        "They cancelled once before",
        "They invited me last week and said they were ill",
        "They were ill; it is not about me",
        "35",
    ] {
        last = Some(
            f.engine
                .exercise_step(&f.actor, f.patient, id, answer)
                .await
                .unwrap(),
        );
    }
    let last = last.unwrap();
    assert!(last.completed, "{:?}", last.prompt);
    assert!(f
        .engine
        .resumable_exercise(&f.actor, f.patient)
        .await
        .unwrap()
        .is_none());
    let saved = f.store.exercises(&f.actor, f.patient).await.unwrap();
    assert!(saved[0].completed);
    let state: tandem_companion::ExerciseState =
        serde_json::from_value(saved[0].state.clone()).unwrap();
    assert!(
        state
            .summary()
            .contains("Re-rated emotion: 35/100 (was 70/100)"),
        "{}",
        state.summary()
    );
}

#[tokio::test]
async fn an_exercise_answer_that_reveals_a_crisis_gets_the_crisis_response_and_pauses() {
    use tandem_companion::ExerciseKind;
    let f = fx(vec![FakeReply::Hang], true).await;
    let start = f
        .engine
        .start_exercise(&f.actor, f.patient, ExerciseKind::ThoughtRecord)
        .await
        .unwrap();
    let t = f
        .engine
        .exercise_step(
            &f.actor,
            f.patient,
            start.exercise,
            "I'm going to kill myself tonight",
        )
        .await
        .unwrap();
    assert!(t.crisis_response.unwrap().contains("988"));
    assert_eq!(t.prompt.step, "thought_record/situation", "not advanced");
    let events = f.store.risk_events(&f.actor, f.patient).await.unwrap();
    assert_eq!(events[0].source, "exercise");
}

#[tokio::test]
async fn a_due_measure_is_offered_once_per_conversation() {
    use tandem_care::Care;
    use tandem_measures::Registry;
    let f = fx(vec![FakeReply::Text("I'm glad you're here.".into())], true).await;
    let care = Arc::new(Care::new(
        f.store.clone(),
        Arc::new(Registry::builtin().unwrap()),
    ));
    care.set_schedule(
        &Actor::system("test"),
        f.patient,
        "PHQ-9",
        14,
        3,
        time::OffsetDateTime::now_utc() - time::Duration::days(1),
    )
    .await
    .unwrap();
    let f = Fx {
        engine: f.engine.clone().with_care(care),
        ..f
    };
    let (first, _) = say(&f, "hi").await;
    assert!(
        first.actions.contains(&TurnAction::MeasureInvitation),
        "{:?}",
        first.actions
    );
    assert!(
        first.reply.contains("PHQ-9") || first.reply.contains("Patient Health Questionnaire"),
        "{}",
        first.reply
    );
    let (second, _) = say(&f, "ok, later").await;
    assert!(
        !second.actions.contains(&TurnAction::MeasureInvitation),
        "offered once"
    );
}

#[tokio::test]
async fn daily_use_without_human_contact_earns_one_nudge_towards_people() {
    const DAY: i64 = 86_400_000;
    let f = fx(vec![FakeReply::Text("I hear you.".into())], true).await;
    for _ in 0..5 {
        let (out, _) = say(&f, "I keep thinking about work").await;
        assert!(!out.actions.contains(&TurnAction::DependenceNudge));
    }
    // Those five conversations happened on the five days before today.
    let msgs = f.store.messages(&f.actor, f.conv).await.unwrap();
    let patient_msgs: Vec<_> = msgs
        .iter()
        .filter(|m| m.role == MessageRole::Patient)
        .collect();
    for (i, m) in patient_msgs.iter().enumerate() {
        sqlx::query("UPDATE messages SET created_at = $1 WHERE id = $2")
            .bind(m.created_at_ms - (i as i64 + 1) * DAY)
            .bind(m.id.to_string())
            .execute(f.store.pool())
            .await
            .unwrap();
    }
    // A clinician joined the care team today: that is recent human contact, no nudge.
    let clin = f
        .store
        .create_user(
            &Actor::system("test"),
            NewUser {
                username: Username::parse("clin").unwrap(),
                role: Role::Clinician,
                password_hash: "x".into(),
            },
        )
        .await
        .unwrap();
    f.store
        .assign_care_team(&Actor::system("test"), clin.id, f.patient)
        .await
        .unwrap();
    let (out, _) = say(&f, "still thinking about work").await;
    assert!(!out.actions.contains(&TurnAction::DependenceNudge));

    // Three weeks and more without contact while using the companion six days of seven.
    sqlx::query("UPDATE care_team SET assigned_at = assigned_at - $1")
        .bind(30 * DAY)
        .execute(f.store.pool())
        .await
        .unwrap();
    let (out, shown) = say(&f, "and again tonight").await;
    assert!(
        out.actions.contains(&TurnAction::DependenceNudge),
        "{:?}",
        out.actions
    );
    assert!(out.reply.starts_with("I hear you."));
    assert!(out.reply.contains("your clinician"), "{}", out.reply);
    assert!(out.reply.contains("I'm an AI"));
    assert_eq!(shown, out.reply, "the nudge is streamed too");
    assert_eq!(out.provenance["nudge"], json!(["no_human_contact"]));
    let audit = f.store.audit_entries(Some(f.patient)).await.unwrap();
    assert_eq!(
        audit.iter().filter(|e| e.action == "nudge_given").count(),
        1
    );

    // Not again within the cool-down.
    let (out, _) = say(&f, "one more thing").await;
    assert!(!out.actions.contains(&TurnAction::DependenceNudge));
    assert_eq!(
        f.store
            .export_patient(&f.actor, f.patient)
            .await
            .unwrap()
            .nudges
            .len(),
        1
    );
}
