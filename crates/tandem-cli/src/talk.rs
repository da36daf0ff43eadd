//! `tandem converse` (JSON lines in, JSON lines out) and `tandem chat` (a terminal chat):
//! the full conversation engine, with the safety layer, on the configured model.
//!
//! Without `--patient` they run as a demo patient in a throwaway encrypted SQLite database
//! (deleted on exit), with a demo clinician on the care team so alerts are real.

use anyhow::{anyhow, Context};
use clap::Args;
use serde::Deserialize;
use serde_json::json;
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use tandem_care::Care;
use tandem_companion::{disclosure_banner, Library, Locale};
use tandem_domain::{ConsentKind, ConversationId, Role, Username};
use tandem_engine::{Engine, EngineConfig, StreamEvent};
use tandem_measures::Registry;
use tandem_model::CancellationToken;
use tandem_store::{Actor, NewUser, SqlStore, Store};
use tandem_vault::MasterKey;

use crate::admin::{find_patient, open_store};
use crate::config::Settings;
use crate::model::{apply_overrides, build, ModelArgs};
use crate::safety;

#[derive(Args, Debug, Clone)]
pub struct TalkArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Talk as this existing patient (login name or id) in the configured database,
    /// instead of a throwaway demo patient
    #[arg(long)]
    pub patient: Option<String>,
    /// Locale for crisis lines and fixed texts [default: safety.locale from the config]
    #[arg(long)]
    pub locale: Option<String>,
    /// Sampling seed, for repeatable replies
    #[arg(long)]
    pub seed: Option<u32>,
    /// Longest reply in tokens
    #[arg(long, default_value_t = 160)]
    pub max_tokens: u32,
}

struct Session {
    _tmp: Option<tempfile::TempDir>,
    engine: Engine,
    actor: Actor,
    patient: tandem_domain::PatientId,
    conversation: ConversationId,
}

async fn demo_store(dir: &tempfile::TempDir) -> anyhow::Result<(Arc<SqlStore>, Actor)> {
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("demo.db").display());
    let store = Arc::new(SqlStore::open(&url, MasterKey::generate()).await?);
    let system = Actor::system("cli");
    let hash =
        "$argon2id$v=19$m=19456,t=2,p=1$ZGVtb2RlbW8$ZGVtby1hY2NvdW50LW5vLWxvZ2lu".to_string();
    let patient = store
        .create_user(
            &system,
            NewUser {
                username: Username::parse("demo-patient")?,
                role: Role::Patient,
                password_hash: hash.clone(),
            },
        )
        .await?;
    let clinician = store
        .create_user(
            &system,
            NewUser {
                username: Username::parse("demo-clinician")?,
                role: Role::Clinician,
                password_hash: hash,
            },
        )
        .await?;
    let pid = patient
        .patient_id()
        .ok_or_else(|| anyhow!("demo patient has no patient id"))?;
    store.assign_care_team(&system, clinician.id, pid).await?;
    let actor = Actor::user(patient.id, Role::Patient);
    store
        .record_consent(&actor, pid, ConsentKind::AiProcessing, true)
        .await?;
    Ok((store, actor))
}

async fn session(settings: &Settings, args: &TalkArgs) -> anyhow::Result<Session> {
    let model_cfg = apply_overrides(settings.model.clone(), &args.model)?;
    let model = build(settings, &model_cfg).await?;
    let (tmp, store, actor): (_, Arc<dyn Store>, Actor) = match &args.patient {
        Some(who) => {
            let store = Arc::new(open_store(settings).await?);
            let (user, _) = find_patient(&store, who).await?;
            (None, store, Actor::user(user.id, Role::Patient))
        }
        None => {
            let tmp = tempfile::tempdir().context("could not create a temporary directory")?;
            let (store, actor) = demo_store(&tmp).await?;
            (Some(tmp), store, actor)
        }
    };
    let patient_id: tandem_domain::UserId =
        actor.id.parse().map_err(|e| anyhow!("bad actor id: {e}"))?;
    let pid = tandem_domain::PatientId::from_user(patient_id);
    let conversation = store.create_conversation(&actor, pid).await?;
    let library = Library::load_default().map_err(|e| anyhow!("psychoeducation library: {e}"))?;
    let registry = Registry::builtin().map_err(|e| anyhow!("measure instruments: {e}"))?;
    // With care services the companion invites the patient to measures that are due.
    let care = Arc::new(Care::new(store.clone(), Arc::new(registry)));
    let engine = Engine::new(
        store,
        Arc::new(safety::engine()?),
        model,
        Arc::new(library),
        EngineConfig {
            locale: args
                .locale
                .clone()
                .unwrap_or_else(|| settings.locale.clone()),
            max_reply_tokens: args.max_tokens,
            seed: args.seed,
            ..EngineConfig::default()
        },
    )
    .with_care(care);
    Ok(Session {
        _tmp: tmp,
        engine,
        actor,
        patient: pid,
        conversation,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    user: String,
}

/// `tandem converse`.
pub async fn converse(settings: &Settings, args: TalkArgs) -> anyhow::Result<ExitCode> {
    let s = session(settings, &args).await?;
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let line = line.context("could not read standard input")?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Line = match serde_json::from_str(&line) {
            Ok(l) => l,
            Err(e) => {
                writeln!(
                    out,
                    "{}",
                    json!({"error": format!("expected {{\"user\": \"...\"}}: {e}")})
                )?;
                continue;
            }
        };
        let mut ignore = |_e: StreamEvent<'_>| {};
        let result = s
            .engine
            .turn(
                &s.actor,
                s.conversation,
                &parsed.user,
                &mut ignore,
                &CancellationToken::new(),
            )
            .await;
        let v = match result {
            Ok(t) => json!({
                "assistant": t.reply,
                "risk": t.risk,
                "actions": t.actions,
                "provenance": t.provenance,
            }),
            Err(e) => json!({"error": e.to_string()}),
        };
        writeln!(out, "{v}")?;
        out.flush()?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `tandem chat`.
pub async fn chat(settings: &Settings, args: TalkArgs) -> anyhow::Result<ExitCode> {
    let s = session(settings, &args).await?;
    let locale = Locale::from_tag(&s.engine.config().locale);
    let interactive = std::io::stdin().is_terminal();
    println!("{}\n", disclosure_banner(locale));
    if interactive {
        println!("(Type a message and press Enter. /exercise for guided exercises, /pause, /resume. Ctrl-D to leave.)");
    }
    let mut exercise: Option<tandem_domain::ExerciseId> = None;
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        if interactive {
            print!("\nyou> ");
            std::io::stdout().flush()?;
        }
        let Some(line) = lines.next() else { break };
        let line = line.context("could not read standard input")?;
        if line.trim().is_empty() {
            continue;
        }
        if let Some(cmd) = line.trim().strip_prefix('/') {
            exercise = exercise_command(&s, cmd, exercise).await?;
            continue;
        }
        if let Some(id) = exercise {
            match s.engine.exercise_step(&s.actor, s.patient, id, &line).await {
                Ok(t) => {
                    if let Some(crisis) = &t.crisis_response {
                        println!("tandem> {crisis}\n(The exercise is paused: /resume when you are ready.)");
                        exercise = None;
                        continue;
                    }
                    if let Some(r) = &t.reflection {
                        println!("tandem> {r}");
                    }
                    println!("tandem> {}", t.prompt.text);
                    if t.completed {
                        exercise = None;
                    }
                }
                Err(e) => println!("tandem> {e}"),
            }
            continue;
        }
        print!("tandem> ");
        std::io::stdout().flush()?;
        let mut shown = String::new();
        let mut on = |e: StreamEvent<'_>| {
            let mut o = std::io::stdout();
            match e {
                StreamEvent::Delta(d) => {
                    shown.push_str(d);
                    let _ = write!(o, "{d}");
                }
                StreamEvent::Replace(r) => {
                    if !shown.is_empty() {
                        let _ = write!(o, "\n[revised] ");
                    }
                    shown = r.to_string();
                    let _ = write!(o, "{r}");
                }
            }
            let _ = o.flush();
        };
        match s
            .engine
            .turn(
                &s.actor,
                s.conversation,
                &line,
                &mut on,
                &CancellationToken::new(),
            )
            .await
        {
            Ok(_) => println!(),
            Err(e) => println!("\n(could not send that: {e})"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `/exercise [kind]`, `/pause`, `/resume` in `tandem chat`.
async fn exercise_command(
    s: &Session,
    cmd: &str,
    current: Option<tandem_domain::ExerciseId>,
) -> anyhow::Result<Option<tandem_domain::ExerciseId>> {
    use tandem_companion::ExerciseKind;
    let mut words = cmd.split_whitespace();
    match words.next().unwrap_or("") {
        "exercise" | "exercises" => {
            let wanted = words.next().unwrap_or("");
            let kind = ExerciseKind::ALL
                .iter()
                .copied()
                .find(|k| k.as_str() == wanted || k.as_str().replace('_', "-") == wanted);
            match kind {
                None => {
                    println!("Guided exercises:");
                    for k in ExerciseKind::ALL {
                        println!("  /exercise {:<24} {}", k.as_str(), k.title());
                    }
                    Ok(current)
                }
                Some(kind) => {
                    let t = s.engine.start_exercise(&s.actor, s.patient, kind).await?;
                    println!("tandem> {}\ntandem> {}", kind.title(), t.prompt.text);
                    Ok(Some(t.exercise))
                }
            }
        }
        "pause" => {
            println!("Paused. Your progress is saved: /resume to carry on.");
            Ok(None)
        }
        "resume" => match s.engine.resumable_exercise(&s.actor, s.patient).await? {
            Some(t) => {
                println!("tandem> {}\ntandem> {}", t.kind.title(), t.prompt.text);
                Ok(Some(t.exercise))
            }
            None => {
                println!("There is no paused exercise.");
                Ok(None)
            }
        },
        other => {
            println!("Unknown command /{other}. Try /exercise, /pause or /resume.");
            Ok(current)
        }
    }
}
