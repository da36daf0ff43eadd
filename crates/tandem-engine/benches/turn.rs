//! The engine's own cost per turn, model time excluded: a scripted instant model, the real
//! safety engine, the real SQLite store (sealing, audit chain) in a temporary file.
//! The engine runs as the server does (care services attached: due measures checked, usage
//! read for the dependence nudge). Reference in the same run: the bare store writes a turn
//! needs (two sealed message appends), so the figure reads as a ratio to storage alone.
//! Run: `cargo bench -p tandem-engine --bench turn`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};
use tandem_companion::Library;
use tandem_domain::{ConsentKind, MessageRole, Role, Username};
use tandem_engine::{Engine, EngineConfig, StreamEvent};
use tandem_model::fake::FakeBackend;
use tandem_model::CancellationToken;
use tandem_safety::SafetyEngine;
use tandem_store::{Actor, NewMessage, NewUser, SqlStore, Store};
use tandem_vault::MasterKey;

const TURNS: usize = 300;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display());
        let store = Arc::new(SqlStore::open(&url, MasterKey::generate()).await.unwrap());
        let user = store
            .create_user(&Actor::system("bench"), NewUser { username: Username::parse("bench").unwrap(), role: Role::Patient, password_hash: "x".into() })
            .await
            .unwrap();
        let patient = user.patient_id().unwrap();
        let actor = Actor::user(user.id, Role::Patient);
        store.record_consent(&actor, patient, ConsentKind::AiProcessing, true).await.unwrap();
        let engine = Engine::new(
            store.clone(),
            Arc::new(SafetyEngine::load_default().unwrap()),
            Arc::new(FakeBackend::always("That sounds like a lot to carry. What would help a little tonight?")),
            Arc::new(Library::load_default().unwrap()),
            EngineConfig { summary_every: usize::MAX, ..EngineConfig::default() },
        )
        // As the server and the terminal chat run it: due measures are checked every turn.
        .with_care(Arc::new(tandem_care::Care::new(store.clone(), Arc::new(tandem_measures::Registry::builtin().unwrap()))));
        let text = "Work was overwhelming again today and I could not switch off when I got home, so I barely slept.";

        // Each turn starts a fresh conversation after 8 turns, so history stays realistic.
        let mut engine_times = Vec::with_capacity(TURNS);
        let mut conv = store.create_conversation(&actor, patient).await.unwrap();
        for i in 0..TURNS {
            if i % 8 == 0 {
                conv = store.create_conversation(&actor, patient).await.unwrap();
            }
            let mut sink = |_e: StreamEvent<'_>| {};
            let t = Instant::now();
            engine.turn(&actor, conv, text, &mut sink, &CancellationToken::new()).await.unwrap();
            engine_times.push(t.elapsed());
        }
        let mut store_times = Vec::with_capacity(TURNS);
        let conv = store.create_conversation(&actor, patient).await.unwrap();
        for _ in 0..TURNS {
            let t = Instant::now();
            for role in [MessageRole::Patient, MessageRole::Assistant] {
                store.append_message(&actor, NewMessage { conversation: conv, role, text: text.into(), provenance: None }).await.unwrap();
            }
            store_times.push(t.elapsed());
        }
        engine_times.sort();
        store_times.sort();
        let (e50, e95) = (percentile(&engine_times, 0.5), percentile(&engine_times, 0.95));
        let (s50, s95) = (percentile(&store_times, 0.5), percentile(&store_times, 0.95));
        println!("engine turn (model excluded): p50 {e50:?}  p95 {e95:?}   [{TURNS} turns]");
        println!("reference, two sealed appends: p50 {s50:?}  p95 {s95:?}");
        println!(
            "ratio engine/reference: p50 {:.2}x  p95 {:.2}x",
            e50.as_secs_f64() / s50.as_secs_f64(),
            e95.as_secs_f64() / s95.as_secs_f64()
        );
        let peak = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM")).map(str::to_string))
            .unwrap_or_default();
        println!("peak memory: {peak}");
    });
}
