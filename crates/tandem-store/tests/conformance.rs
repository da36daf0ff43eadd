//! The storage conformance suite. Every test runs unchanged against SQLite (a real file in
//! a temporary directory) and PostgreSQL (a fresh database per test on the server named by
//! `TANDEM_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`).
//! Set `TANDEM_TEST_SKIP_POSTGRES=1` to run only SQLite on a machine without PostgreSQL;
//! CI never sets it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::json;
use sqlx::Connection;
use std::sync::Arc;
use tandem_domain::{
    CarePlanItemKind, ChainBreak, ConsentKind, MessageRole, PatientId, Role, UserId, Username,
};
use tandem_store::*;
use tandem_vault::MasterKey;

struct TestDb {
    backend: Backend,
    url: String,
    _dir: Option<tempfile::TempDir>,
    admin_url: Option<String>,
    name: String,
}

impl TestDb {
    async fn new(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("tandem.db").display()
                );
                Some(TestDb {
                    backend,
                    url,
                    _dir: Some(dir),
                    admin_url: None,
                    name: String::new(),
                })
            }
            Backend::Postgres => {
                if std::env::var("TANDEM_TEST_SKIP_POSTGRES").as_deref() == Ok("1") {
                    eprintln!("skipping PostgreSQL: TANDEM_TEST_SKIP_POSTGRES=1");
                    return None;
                }
                let admin = std::env::var("TANDEM_TEST_POSTGRES_URL")
                    .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
                let name = format!("tandem_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
                    panic!("PostgreSQL is required for the conformance suite ({e}); start it or set TANDEM_TEST_SKIP_POSTGRES=1")
                });
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap();
                Some(TestDb {
                    backend,
                    url: format!("{base}/{name}"),
                    _dir: None,
                    admin_url: Some(admin),
                    name,
                })
            }
        }
    }

    async fn open(&self, key: MasterKey) -> SqlStore {
        SqlStore::open(&self.url, key).await.unwrap()
    }

    /// Everything the database holds, as bytes: the SQLite files, or every PostgreSQL row
    /// rendered as JSON (bytea appears as hex there, so callers search for both forms).
    async fn raw_contents(&self, store: &SqlStore) -> Vec<u8> {
        match self.backend {
            Backend::Sqlite => {
                sqlx::query("PRAGMA wal_checkpoint(FULL)")
                    .execute(store.pool())
                    .await
                    .ok();
                let dir = self._dir.as_ref().unwrap().path();
                let mut all = Vec::new();
                for entry in std::fs::read_dir(dir).unwrap() {
                    all.extend(std::fs::read(entry.unwrap().path()).unwrap());
                }
                all
            }
            Backend::Postgres => {
                let mut all = Vec::new();
                let tables = sqlx::query(
                    "SELECT table_name::text AS t FROM information_schema.tables WHERE table_schema = 'public'",
                )
                .fetch_all(store.pool())
                .await
                .unwrap();
                for t in tables {
                    use sqlx::Row;
                    let t: String = t.try_get("t").unwrap();
                    let rows = sqlx::query(&format!("SELECT row_to_json(x)::text AS j FROM {t} x"))
                        .fetch_all(store.pool())
                        .await
                        .unwrap();
                    for r in rows {
                        let j: String = r.try_get("j").unwrap();
                        all.extend(j.into_bytes());
                    }
                }
                all
            }
        }
    }

    async fn disable_audit_guard(&self, store: &SqlStore) {
        let sql: &[&str] = match self.backend {
            Backend::Sqlite => &[
                "DROP TRIGGER audit_log_no_update",
                "DROP TRIGGER audit_log_no_delete",
            ],
            Backend::Postgres => &["DROP TRIGGER audit_log_no_update ON audit_log"],
        };
        for s in sql {
            sqlx::query(s).execute(store.pool()).await.unwrap();
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(admin) = self.admin_url.clone() {
            let name = self.name.clone();
            // Best effort: a leftover test database is harmless.
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut c)
                                .await;
                    }
                });
            })
            .join()
            .ok();
        }
    }
}

fn cli() -> Actor {
    Actor::system("test")
}

async fn add_user(store: &SqlStore, name: &str, role: Role) -> User {
    store
        .create_user(
            &cli(),
            NewUser {
                username: Username::parse(name).unwrap(),
                role,
                // A syntactically valid argon2id string; hashing is tested in tandem-vault.
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g".into(),
            },
        )
        .await
        .unwrap()
}

async fn patient(store: &SqlStore, name: &str) -> PatientId {
    add_user(store, name, Role::Patient)
        .await
        .patient_id()
        .unwrap()
}

macro_rules! conformance {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(db) = super::TestDb::new(tandem_store::Backend::Sqlite).await {
                        super::$name(db).await;
                    }
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(db) = super::TestDb::new(tandem_store::Backend::Postgres).await {
                        super::$name(db).await;
                    }
                }
            )+
        }
    };
}

conformance!(
    accounts_teams_and_consents,
    conversations_round_trip_and_reads_are_audited,
    no_plaintext_reaches_the_database,
    tampering_with_the_audit_log_is_found_at_that_entry,
    the_audit_log_refuses_updates,
    swapped_ciphertexts_do_not_open,
    key_rotation_rewraps_without_touching_data,
    erasure_leaves_only_the_audit_entry,
    export_contains_everything_decrypted,
    risk_alerts_are_acknowledged_once,
    checkins_are_claimed_by_one_worker_only,
    failed_writes_leave_nothing_behind,
    measure_schedules_are_set_and_replaced,
    exercises_are_saved_resumed_and_private_to_their_patient,
    a_turn_reads_its_context_and_stores_the_message_in_one_transaction,
    sessions_are_stored_hashed_touched_and_ended,
    login_failures_count_lock_and_clear,
    totp_secrets_are_sealed_confirmed_and_steps_never_replay,
    talk_requests_and_moods_are_sealed_audited_exported_and_erased,
    disabling_a_user_ends_their_sessions,
    care_plan_items_change_status,
    consent_decisions_keep_their_order_within_a_millisecond,
    overdue_alerts_escalate_once_to_the_clinicians_on_call,
);

async fn consent_decisions_keep_their_order_within_a_millisecond(db: TestDb) {
    let s = db.open(MasterKey::generate()).await;
    let p = patient(&s, "pat").await;
    // Many decisions in quick succession: the last one made is the one that holds.
    for i in 0..30 {
        s.record_consent(&cli(), p, ConsentKind::AiProcessing, i % 2 == 0)
            .await
            .unwrap();
    }
    let ai = s
        .consents(p)
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.kind == ConsentKind::AiProcessing)
        .unwrap();
    assert!(!ai.granted, "decision 29 (withdrawn) is the latest");
}

async fn sessions_are_stored_hashed_touched_and_ended(db: TestDb) {
    let s = db.open(MasterKey::generate()).await;
    let u = add_user(&s, "clin", Role::Clinician).await;
    s.create_session(NewSession {
        token_hash: "h1".into(),
        user: u.id,
        csrf_token: "csrf".into(),
        created_at_ms: 1_000,
        expires_at_ms: 9_000,
    })
    .await
    .unwrap();
    let rec = s.session("h1").await.unwrap().unwrap();
    assert_eq!(rec.user, u.id);
    assert_eq!(rec.last_seen_at_ms, 1_000);
    assert!(!rec.mfa_verified);
    s.touch_session("h1", 2_000).await.unwrap();
    // Time never goes backwards for a session.
    s.touch_session("h1", 1_500).await.unwrap();
    s.mark_session_mfa("h1").await.unwrap();
    let rec = s.session("h1").await.unwrap().unwrap();
    assert_eq!(rec.last_seen_at_ms, 2_000);
    assert!(rec.mfa_verified);
    assert!(s.session("other").await.unwrap().is_none());
    s.delete_session("h1").await.unwrap();
    assert!(s.session("h1").await.unwrap().is_none());
    for h in ["a", "b"] {
        s.create_session(NewSession {
            token_hash: h.into(),
            user: u.id,
            csrf_token: "c".into(),
            created_at_ms: 0,
            expires_at_ms: 1,
        })
        .await
        .unwrap();
    }
    assert_eq!(s.delete_user_sessions(u.id).await.unwrap(), 2);
}

async fn login_failures_count_lock_and_clear(db: TestDb) {
    let s = db.open(MasterKey::generate()).await;
    assert_eq!(
        s.login_state("nobody").await.unwrap(),
        LoginState::default()
    );
    assert_eq!(s.record_login_failure("nobody", 10).await.unwrap(), 1);
    assert_eq!(s.record_login_failure("nobody", 20).await.unwrap(), 2);
    s.lock_login("nobody", 500).await.unwrap();
    let st = s.login_state("nobody").await.unwrap();
    assert_eq!(st.failures, 2);
    assert_eq!(st.last_failure_at_ms, Some(20));
    assert_eq!(st.locked_until_ms, Some(500));
    s.clear_login_failures("nobody").await.unwrap();
    assert_eq!(
        s.login_state("nobody").await.unwrap(),
        LoginState::default()
    );
}

async fn totp_secrets_are_sealed_confirmed_and_steps_never_replay(db: TestDb) {
    let s = db.open(MasterKey::generate()).await;
    let u = add_user(&s, "clin", Role::Clinician).await;
    assert!(s.totp(u.id).await.unwrap().is_none());
    let secret = b"0123456789abcdefTOTPSECRET".to_vec();
    s.set_totp_secret(&cli(), u.id, &secret).await.unwrap();
    let rec = s.totp(u.id).await.unwrap().unwrap();
    assert_eq!(rec.secret, secret);
    assert!(!rec.confirmed);
    assert!(!format!("{rec:?}").contains("TOTPSECRET"));
    let raw = db.raw_contents(&s).await;
    assert!(
        !raw.windows(10).any(|w| w == b"TOTPSECRET"),
        "the TOTP secret is stored in the clear"
    );
    s.confirm_totp(&cli(), u.id).await.unwrap();
    assert!(s.totp(u.id).await.unwrap().unwrap().confirmed);
    // A confirmed secret cannot be silently replaced.
    assert!(matches!(
        s.set_totp_secret(&cli(), u.id, b"another-secret-of-16")
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(s.use_totp_step(u.id, 100).await.unwrap());
    assert!(!s.use_totp_step(u.id, 100).await.unwrap());
    assert!(!s.use_totp_step(u.id, 99).await.unwrap());
    assert!(s.use_totp_step(u.id, 101).await.unwrap());
    // Key rotation re-wraps TOTP keys too.
    s.rotate_master_key(&cli(), MasterKey::generate())
        .await
        .unwrap();
    assert_eq!(s.totp(u.id).await.unwrap().unwrap().secret, secret);
}

async fn talk_requests_and_moods_are_sealed_audited_exported_and_erased(db: TestDb) {
    let s = db.open(MasterKey::generate()).await;
    let p = patient(&s, "pat").await;
    let q = patient(&s, "other").await;
    let actor = Actor::user(p.into(), Role::Patient);
    let id = s
        .create_talk_request(&actor, p, Some("PLEASECALLME".into()), 1_000)
        .await
        .unwrap();
    s.create_talk_request(&actor, p, None, 2_000).await.unwrap();
    s.record_mood(
        &actor,
        NewMood {
            patient: p,
            rating: 3,
            words: vec!["WORDLONELY".into()],
            at_ms: 3_000,
        },
    )
    .await
    .unwrap();
    assert!(s
        .record_mood(
            &actor,
            NewMood {
                patient: p,
                rating: 11,
                words: vec![],
                at_ms: 3_000,
            },
        )
        .await
        .is_err());
    let raw = db.raw_contents(&s).await;
    for needle in [&b"PLEASECALLME"[..], b"WORDLONELY"] {
        assert!(!raw.windows(needle.len()).any(|w| w == needle));
    }
    let reqs = s.talk_requests(&actor, p).await.unwrap();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].note.as_deref(), Some("PLEASECALLME"));
    assert!(s.talk_requests(&actor, q).await.unwrap().is_empty());
    // Resolving needs the right patient, and only once.
    assert!(matches!(
        s.resolve_talk_request(&cli(), q, id, 4_000).await,
        Err(StoreError::NotFound(_))
    ));
    s.resolve_talk_request(&cli(), p, id, 4_000).await.unwrap();
    let rid = s
        .record_risk_event(
            &actor,
            NewRiskEvent {
                patient: p,
                conversation: None,
                message: None,
                source: "test".into(),
                level: "high".into(),
                categories: vec![],
                evidence: json!({}),
            },
        )
        .await
        .unwrap();
    assert_eq!(s.risk_event_patient(rid).await.unwrap(), Some(p));
    assert!(matches!(
        s.resolve_talk_request(&cli(), p, id, 5_000).await,
        Err(StoreError::Conflict(_))
    ));
    let reqs = s.talk_requests(&actor, p).await.unwrap();
    assert_eq!(reqs[0].resolved_at_ms, Some(4_000));
    let moods = s.moods(&actor, p).await.unwrap();
    assert_eq!(moods.len(), 1);
    assert_eq!((moods[0].rating, moods[0].at_ms), (3, 3_000));
    assert_eq!(moods[0].words, vec!["WORDLONELY".to_string()]);
    assert_eq!(s.last_patient_activity(p).await.unwrap(), Some(3_000));
    assert_eq!(s.last_patient_activity(q).await.unwrap(), None);
    let actions: Vec<String> = s
        .audit_entries(Some(p))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    for a in [
        "talk_requested",
        "talk_requests_read",
        "talk_request_resolved",
        "mood_recorded",
        "moods_read",
    ] {
        assert!(actions.iter().any(|x| x == a), "no {a} audit entry");
    }
    let export = s.export_patient(&cli(), p).await.unwrap();
    assert_eq!(export.moods.len(), 1);
    assert_eq!(export.talk_requests.len(), 2);
    s.create_session(NewSession {
        token_hash: "ph".into(),
        user: p.into(),
        csrf_token: "c".into(),
        created_at_ms: 0,
        expires_at_ms: 10,
    })
    .await
    .unwrap();
    s.erase_patient(&cli(), p).await.unwrap();
    assert!(s.session("ph").await.unwrap().is_none());
    assert_eq!(s.last_patient_activity(p).await.unwrap(), None);
    assert!(s.talk_requests(&cli(), p).await.is_err());
}

async fn disabling_a_user_ends_their_sessions(db: TestDb) {
    let s = db.open(MasterKey::generate()).await;
    let u = add_user(&s, "clin", Role::Clinician).await;
    s.create_session(NewSession {
        token_hash: "x".into(),
        user: u.id,
        csrf_token: "c".into(),
        created_at_ms: 0,
        expires_at_ms: 10,
    })
    .await
    .unwrap();
    s.set_user_disabled(&cli(), u.id, true).await.unwrap();
    assert!(s.user(u.id).await.unwrap().unwrap().disabled);
    assert!(s.session("x").await.unwrap().is_none());
    s.set_user_disabled(&cli(), u.id, false).await.unwrap();
    assert!(!s.user(u.id).await.unwrap().unwrap().disabled);
    assert!(matches!(
        s.set_user_disabled(
            &cli(),
            tandem_domain::UserId::from_uuid(uuid::Uuid::new_v4()),
            true
        )
        .await,
        Err(StoreError::NotFound(_))
    ));
}

async fn care_plan_items_change_status(db: TestDb) {
    let s = db.open(MasterKey::generate()).await;
    let p = patient(&s, "pat").await;
    let q = patient(&s, "other").await;
    let item = s
        .add_care_plan_item(
            &cli(),
            NewCarePlanItem {
                patient: p,
                kind: CarePlanItemKind::Homework,
                text: "walk".into(),
                due_at_ms: None,
            },
        )
        .await
        .unwrap();
    s.set_care_plan_item_status(&cli(), p, item, "done")
        .await
        .unwrap();
    assert_eq!(
        s.care_plan(&cli(), p).await.unwrap().items[0].status,
        "done"
    );
    assert!(s
        .set_care_plan_item_status(&cli(), p, item, "bogus")
        .await
        .is_err());
    assert!(matches!(
        s.set_care_plan_item_status(&cli(), q, item, "removed")
            .await,
        Err(StoreError::NotFound(_))
    ));
}

async fn exercises_are_saved_resumed_and_private_to_their_patient(db: TestDb) {
    let s = db.open(MasterKey::generate()).await;
    let p = patient(&s, "pat").await;
    let q = patient(&s, "other").await;
    let id = s
        .save_exercise(
            &cli(),
            SaveExercise {
                id: None,
                patient: p,
                kind: "thought_record".into(),
                state: json!({"step": "situation", "secret": "exercise plaintext"}),
                completed: false,
            },
        )
        .await
        .unwrap();
    s.save_exercise(
        &cli(),
        SaveExercise {
            id: Some(id),
            patient: p,
            kind: "thought_record".into(),
            state: json!({"step": "done"}),
            completed: true,
        },
    )
    .await
    .unwrap();
    let got = s.exercises(&cli(), p).await.unwrap();
    assert_eq!(got.len(), 1);
    assert!(got[0].completed);
    assert_eq!(got[0].state, json!({"step": "done"}));
    // Another patient cannot write to it.
    assert!(matches!(
        s.save_exercise(
            &cli(),
            SaveExercise {
                id: Some(id),
                patient: q,
                kind: "thought_record".into(),
                state: json!({}),
                completed: false
            }
        )
        .await,
        Err(StoreError::NotFound(_))
    ));
    let raw = db.raw_contents(&s).await;
    assert!(!raw.windows(18).any(|w| w == b"exercise plaintext"));
    assert_eq!(
        s.export_patient(&cli(), p).await.unwrap().exercises.len(),
        1
    );
    s.erase_patient(&cli(), p).await.unwrap();
    assert!(matches!(
        s.exercises(&cli(), p).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn measure_schedules_are_set_and_replaced(db: TestDb) {
    let s = db.open(MasterKey::generate()).await;
    let p = patient(&s, "pat").await;
    let row = |every| MeasureScheduleRow {
        instrument: "phq9".into(),
        every_days: every,
        grace_days: 3,
        start_at_ms: 1_000,
    };
    s.set_measure_schedule(&cli(), p, row(14)).await.unwrap();
    s.set_measure_schedule(
        &cli(),
        p,
        MeasureScheduleRow {
            instrument: "gad7".into(),
            ..row(14)
        },
    )
    .await
    .unwrap();
    s.set_measure_schedule(&cli(), p, row(7)).await.unwrap();
    let got = s.measure_schedules(p).await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(
        got.iter()
            .find(|r| r.instrument == "phq9")
            .unwrap()
            .every_days,
        7
    );
    assert!(matches!(
        s.set_measure_schedule(&cli(), p, row(0)).await,
        Err(StoreError::Invalid(_))
    ));
}

async fn accounts_teams_and_consents(db: TestDb) {
    let s = db.open(MasterKey::generate()).await;
    let p = patient(&s, "pat").await;
    let c = add_user(&s, "clin", Role::Clinician).await;
    let a = add_user(&s, "admin", Role::Admin).await;
    assert!(matches!(
        s.create_user(
            &cli(),
            NewUser {
                username: Username::parse("PAT").unwrap(),
                role: Role::Admin,
                password_hash: "x".into()
            }
        )
        .await,
        Err(StoreError::Conflict(_))
    ));
    let (u, hash) = s
        .user_credentials(&Username::parse("pat").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(u.role, Role::Patient);
    assert!(hash.starts_with("$argon2id$"));
    assert_eq!(s.list_users().await.unwrap().len(), 3);

    assert!(!s.is_on_care_team(c.id, p).await.unwrap());
    s.assign_care_team(&cli(), c.id, p).await.unwrap();
    s.assign_care_team(&cli(), c.id, p).await.unwrap(); // idempotent
    assert!(s.is_on_care_team(c.id, p).await.unwrap());
    assert_eq!(s.caseload(c.id).await.unwrap(), vec![p]);
    assert_eq!(s.care_team(p).await.unwrap(), vec![c.id]);
    assert!(matches!(
        s.assign_care_team(&cli(), a.id, p).await,
        Err(StoreError::Invalid(_))
    ));
    let not_patient = PatientId::from_user(c.id);
    assert!(matches!(
        s.assign_care_team(&cli(), c.id, not_patient).await,
        Err(StoreError::Invalid(_))
    ));

    s.record_consent(&cli(), p, ConsentKind::AiProcessing, true)
        .await
        .unwrap();
    s.record_consent(&cli(), p, ConsentKind::AiProcessing, false)
        .await
        .unwrap();
    s.record_consent(&cli(), p, ConsentKind::DataStorage, true)
        .await
        .unwrap();
    let consents = s.consents(p).await.unwrap();
    assert_eq!(consents.len(), 2);
    let ai = consents
        .iter()
        .find(|c| c.kind == ConsentKind::AiProcessing)
        .unwrap();
    assert!(!ai.granted, "the latest decision wins");
}

async fn conversations_round_trip_and_reads_are_audited(db: TestDb) {
    let s = db.open(MasterKey::generate()).await;
    let p = patient(&s, "pat").await;
    let c = add_user(&s, "clin", Role::Clinician).await;
    let conv = s.create_conversation(&cli(), p).await.unwrap();
    let m1 = s
        .append_message(
            &cli(),
            NewMessage {
                conversation: conv,
                role: MessageRole::Patient,
                text: "hello ✨ there".into(),
                provenance: None,
            },
        )
        .await
        .unwrap();
    let prov = json!({"backend": "embedded", "model": "smollm2", "template": "v1"});
    let m2 = s
        .append_message(
            &cli(),
            NewMessage {
                conversation: conv,
                role: MessageRole::Assistant,
                text: "hi!".into(),
                provenance: Some(prov.clone()),
            },
        )
        .await
        .unwrap();
    assert_eq!((m1.seq, m2.seq), (1, 2));
    let reader = Actor::user(c.id, Role::Clinician);
    let msgs = s.messages(&reader, conv).await.unwrap();
    assert_eq!(
        msgs.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
        ["hello ✨ there", "hi!"]
    );
    assert_eq!(msgs[1].provenance.as_ref(), Some(&prov));
    assert_eq!(s.conversations(p).await.unwrap().len(), 1);

    s.add_summary(
        &cli(),
        NewSummary {
            conversation: conv,
            first_message: m1.id,
            last_message: m2.id,
            text: "They said hello.".into(),
            provenance: None,
        },
    )
    .await
    .unwrap();
    let sums = s.summaries(&reader, p).await.unwrap();
    assert!(sums[0].ai_generated);
    assert_eq!(sums[0].first_message, m1.id);

    let audit = s.audit_entries(Some(p)).await.unwrap();
    let read = audit
        .iter()
        .find(|e| e.action == "messages_read")
        .expect("reads are audited");
    assert_eq!(read.actor.as_deref(), Some(c.id.to_string().as_str()));
    assert!(audit.iter().any(|e| e.action == "summaries_read"));
    assert!(s.verify_audit().await.unwrap().first_break.is_none());
}

const SECRETS: [&str; 7] = [
    "I have been feeling hopeless since the funeral",
    "Assistant reply mentioning the funeral gently",
    "Summary: grief after the funeral of a brother",
    "Clinician note: called the patient back at 9pm",
    "Goal: walk to the park with Sam twice a week",
    "Check in about sleep and the funeral anniversary",
    "prefers a gentle tone and no talk of religion",
];

async fn no_plaintext_reaches_the_database(db: TestDb) {
    let s = db.open(MasterKey::generate()).await;
    let p = patient(&s, "pat").await;
    let conv = s.create_conversation(&cli(), p).await.unwrap();
    let m = s
        .append_message(
            &cli(),
            NewMessage {
                conversation: conv,
                role: MessageRole::Patient,
                text: SECRETS[0].into(),
                provenance: None,
            },
        )
        .await
        .unwrap();
    s.append_message(
        &cli(),
        NewMessage {
            conversation: conv,
            role: MessageRole::Assistant,
            text: SECRETS[1].into(),
            provenance: Some(json!({"guard": SECRETS[1]})),
        },
    )
    .await
    .unwrap();
    s.add_summary(
        &cli(),
        NewSummary {
            conversation: conv,
            first_message: m.id,
            last_message: m.id,
            text: SECRETS[2].into(),
            provenance: None,
        },
    )
    .await
    .unwrap();
    let ev = s
        .record_risk_event(
            &cli(),
            NewRiskEvent {
                patient: p,
                conversation: Some(conv),
                message: Some(m.id),
                source: "chat".into(),
                level: "high".into(),
                categories: vec!["suicide".into()],
                evidence: json!([{"span": SECRETS[0]}]),
            },
        )
        .await
        .unwrap();
    s.acknowledge_risk_event(&cli(), ev, Some(SECRETS[3].into()))
        .await
        .unwrap();
    s.add_care_plan_item(
        &cli(),
        NewCarePlanItem {
            patient: p,
            kind: CarePlanItemKind::Goal,
            text: SECRETS[4].into(),
            due_at_ms: None,
        },
    )
    .await
    .unwrap();
    s.schedule_checkin(
        &cli(),
        NewCheckin {
            patient: p,
            clinician: None,
            due_at_ms: 1,
            prompt: Some(SECRETS[5].into()),
        },
    )
    .await
    .unwrap();
    s.set_ai_preferences(&cli(), p, json!({"tone": SECRETS[6]}))
        .await
        .unwrap();
    s.record_assessment(
        &cli(),
        NewAssessment {
            patient: p,
            instrument: "phq9".into(),
            answers: vec![Some(3), Some(1), None],
            total: None,
            band: None,
            completed_at_ms: 5,
        },
    )
    .await
    .unwrap();

    let raw = db.raw_contents(&s).await;
    for secret in SECRETS {
        let hex_form = hex::encode(secret.as_bytes());
        for needle in [
            secret.as_bytes(),
            hex_form.as_bytes(),
            b"funeral".as_slice(),
        ] {
            assert!(
                !raw.windows(needle.len()).any(|w| w == needle),
                "plaintext found in the raw database: {}",
                String::from_utf8_lossy(needle)
            );
        }
    }
    // ... and the store still reads every field back.
    let export = s.export_patient(&cli(), p).await.unwrap();
    let text = serde_json::to_string(&export).unwrap();
    for secret in SECRETS {
        assert!(text.contains(secret), "export lost {secret:?}");
    }
}

async fn tampering_with_the_audit_log_is_found_at_that_entry(db: TestDb) {
    let s = db.open(MasterKey::generate()).await;
    let p = patient(&s, "pat").await;
    for _ in 0..5 {
        s.create_conversation(&cli(), p).await.unwrap();
    }
    let report = s.verify_audit().await.unwrap();
    assert_eq!(report.entries_checked, 6);
    assert!(report.first_break.is_none());

    db.disable_audit_guard(&s).await;
    sqlx::query("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 4")
        .execute(s.pool())
        .await
        .unwrap();
    let report = s.verify_audit().await.unwrap();
    assert_eq!(
        report.first_break,
        Some(ChainBreak::HashMismatch { seq: 4 })
    );
    assert_eq!(report.entries_checked, 3);

    // Deleting the newest entries is caught by the chain head.
    sqlx::query("UPDATE audit_log SET actor = 'system:test' WHERE seq = 4")
        .execute(s.pool())
        .await
        .unwrap();
    assert!(s.verify_audit().await.unwrap().first_break.is_none());
    sqlx::query("DELETE FROM audit_log WHERE seq >= 5")
        .execute(s.pool())
        .await
        .unwrap();
    assert_eq!(
        s.verify_audit().await.unwrap().first_break,
        Some(ChainBreak::Truncated {
            head_seq: 6,
            last_seq: 4
        })
    );
}

async fn the_audit_log_refuses_updates(db: TestDb) {
    let s = db.open(MasterKey::generate()).await;
    patient(&s, "pat").await;
    assert!(sqlx::query("UPDATE audit_log SET actor = 'x'")
        .execute(s.pool())
        .await
        .is_err());
    assert!(sqlx::query("DELETE FROM audit_log")
        .execute(s.pool())
        .await
        .is_err());
    assert!(s.verify_audit().await.unwrap().first_break.is_none());
}

async fn swapped_ciphertexts_do_not_open(db: TestDb) {
    let s = db.open(MasterKey::generate()).await;
    let p = patient(&s, "pat").await;
    let conv = s.create_conversation(&cli(), p).await.unwrap();
    for text in ["first", "second"] {
        s.append_message(
            &cli(),
            NewMessage {
                conversation: conv,
                role: MessageRole::Patient,
                text: text.into(),
                provenance: None,
            },
        )
        .await
        .unwrap();
    }
    sqlx::query(
        "UPDATE messages SET body = (SELECT body FROM messages WHERE seq = 1) WHERE seq = 2",
    )
    .execute(s.pool())
    .await
    .unwrap();
    assert!(matches!(
        s.messages(&cli(), conv).await,
        Err(StoreError::Crypto(_))
    ));
}

async fn key_rotation_rewraps_without_touching_data(db: TestDb) {
    let old = MasterKey::generate();
    let s = db.open(old.clone()).await;
    let p = patient(&s, "pat").await;
    let q = patient(&s, "pat2").await;
    let conv = s.create_conversation(&cli(), p).await.unwrap();
    s.append_message(
        &cli(),
        NewMessage {
            conversation: conv,
            role: MessageRole::Patient,
            text: "still here".into(),
            provenance: None,
        },
    )
    .await
    .unwrap();
    use sqlx::Row;
    let body_before: Vec<u8> = sqlx::query("SELECT body FROM messages")
        .fetch_one(s.pool())
        .await
        .unwrap()
        .try_get("body")
        .unwrap();

    let new = MasterKey::generate();
    assert_eq!(s.rotate_master_key(&cli(), new.clone()).await.unwrap(), 2);
    let body_after: Vec<u8> = sqlx::query("SELECT body FROM messages")
        .fetch_one(s.pool())
        .await
        .unwrap()
        .try_get("body")
        .unwrap();
    assert_eq!(body_before, body_after, "data is not re-encrypted");
    assert_eq!(
        s.messages(&cli(), conv).await.unwrap()[0].text,
        "still here"
    );
    s.create_conversation(&cli(), q).await.unwrap();
    s.close().await;

    assert!(matches!(
        SqlStore::open(&db.url, old).await,
        Err(StoreError::WrongMasterKey { .. })
    ));
    let reopened = db.open(new).await;
    assert_eq!(
        reopened.messages(&cli(), conv).await.unwrap()[0].text,
        "still here"
    );
    assert!(reopened
        .audit_entries(None)
        .await
        .unwrap()
        .iter()
        .any(|e| e.action == "keys_rotated"));
}

async fn erasure_leaves_only_the_audit_entry(db: TestDb) {
    let s = db.open(MasterKey::generate()).await;
    let p = patient(&s, "pat").await;
    let keep = patient(&s, "other").await;
    let c = add_user(&s, "clin", Role::Clinician).await;
    s.assign_care_team(&cli(), c.id, p).await.unwrap();
    s.assign_care_team(&cli(), c.id, keep).await.unwrap();
    let conv = s.create_conversation(&cli(), p).await.unwrap();
    let m = s
        .append_message(
            &cli(),
            NewMessage {
                conversation: conv,
                role: MessageRole::Patient,
                text: "erase me".into(),
                provenance: None,
            },
        )
        .await
        .unwrap();
    let ev = s
        .record_risk_event(
            &cli(),
            NewRiskEvent {
                patient: p,
                conversation: Some(conv),
                message: Some(m.id),
                source: "chat".into(),
                level: "moderate".into(),
                categories: vec!["self_harm".into()],
                evidence: json!([]),
            },
        )
        .await
        .unwrap();
    s.acknowledge_risk_event(&cli(), ev, None).await.unwrap();
    s.record_consent(&cli(), p, ConsentKind::AiProcessing, true)
        .await
        .unwrap();
    s.add_care_plan_item(
        &cli(),
        NewCarePlanItem {
            patient: p,
            kind: CarePlanItemKind::Homework,
            text: "x".into(),
            due_at_ms: None,
        },
    )
    .await
    .unwrap();
    s.set_ai_preferences(&cli(), p, json!({})).await.unwrap();
    s.schedule_checkin(
        &cli(),
        NewCheckin {
            patient: p,
            clinician: Some(c.id),
            due_at_ms: 1,
            prompt: None,
        },
    )
    .await
    .unwrap();
    s.record_assessment(
        &cli(),
        NewAssessment {
            patient: p,
            instrument: "gad7".into(),
            answers: vec![Some(1); 7],
            total: Some(7),
            band: Some("mild".into()),
            completed_at_ms: 1,
        },
    )
    .await
    .unwrap();

    let report = s
        .erase_patient(&cli().with_reason("patient request"), p)
        .await
        .unwrap();
    assert!(report.rows_deleted >= 12, "{report:?}");

    use sqlx::Row;
    let pid = p.to_string();
    for (table, col) in [
        ("users", "id"),
        ("patient_keys", "patient_id"),
        ("care_team", "patient_id"),
        ("consents", "patient_id"),
        ("conversations", "patient_id"),
        ("messages", "patient_id"),
        ("summaries", "patient_id"),
        ("risk_events", "patient_id"),
        ("assessments", "patient_id"),
        ("measure_schedules", "patient_id"),
        ("care_plan_items", "patient_id"),
        ("ai_preferences", "patient_id"),
        ("checkins", "patient_id"),
    ] {
        let n: i64 = sqlx::query(&format!(
            "SELECT COUNT(*) AS n FROM {table} WHERE {col} = $1"
        ))
        .bind(pid.clone())
        .fetch_one(s.pool())
        .await
        .unwrap()
        .try_get("n")
        .unwrap();
        assert_eq!(n, 0, "{table} still holds rows for the erased patient");
    }
    let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM risk_acknowledgements")
        .fetch_one(s.pool())
        .await
        .unwrap()
        .try_get("n")
        .unwrap();
    assert_eq!(n, 0);
    assert!(matches!(
        s.export_patient(&cli(), p).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        s.caseload(c.id).await.unwrap(),
        vec![keep],
        "other patients are untouched"
    );
    let audit = s.audit_entries(Some(p)).await.unwrap();
    let last = audit.last().unwrap();
    assert_eq!(last.action, "patient_erased");
    assert_eq!(last.reason.as_deref(), Some("patient request"));
    assert!(s.verify_audit().await.unwrap().first_break.is_none());
}

async fn export_contains_everything_decrypted(db: TestDb) {
    let s = db.open(MasterKey::generate()).await;
    let p = patient(&s, "pat").await;
    let c = add_user(&s, "clin", Role::Clinician).await;
    s.assign_care_team(&cli(), c.id, p).await.unwrap();
    let conv = s.create_conversation(&cli(), p).await.unwrap();
    s.append_message(
        &cli(),
        NewMessage {
            conversation: conv,
            role: MessageRole::Patient,
            text: "my words".into(),
            provenance: None,
        },
    )
    .await
    .unwrap();
    s.record_assessment(
        &cli(),
        NewAssessment {
            patient: p,
            instrument: "phq9".into(),
            answers: vec![Some(1); 9],
            total: Some(9),
            band: Some("mild".into()),
            completed_at_ms: 7,
        },
    )
    .await
    .unwrap();
    let e = s.export_patient(&cli(), p).await.unwrap();
    assert_eq!(e.patient.username.as_str(), "pat");
    assert_eq!(e.care_team, vec![c.id]);
    assert_eq!(e.conversations[0].messages[0].text, "my words");
    assert_eq!(e.assessments[0].answers, vec![Some(1); 9]);
    assert!(e.audit.iter().any(|a| a.action == "message_written"));
    let again = s.export_patient(&cli(), p).await.unwrap();
    assert!(
        again.audit.iter().any(|a| a.action == "patient_exported"),
        "exports are audited"
    );
}

async fn risk_alerts_are_acknowledged_once(db: TestDb) {
    let s = db.open(MasterKey::generate()).await;
    let p = patient(&s, "pat").await;
    let c = add_user(&s, "clin", Role::Clinician).await;
    let ev = s
        .record_risk_event(
            &cli(),
            NewRiskEvent {
                patient: p,
                conversation: None,
                message: None,
                source: "measure".into(),
                level: "high".into(),
                categories: vec!["suicide".into()],
                evidence: json!({"item9": 2}),
            },
        )
        .await
        .unwrap();
    let who = Actor::user(c.id, Role::Clinician);
    assert!(s.risk_events(&who, p).await.unwrap()[0]
        .acknowledgement
        .is_none());
    s.acknowledge_risk_event(&who, ev, Some("called".into()))
        .await
        .unwrap();
    assert!(matches!(
        s.acknowledge_risk_event(&who, ev, None).await,
        Err(StoreError::Conflict(_))
    ));
    let events = s.risk_events(&who, p).await.unwrap();
    let ack = events[0].acknowledgement.as_ref().unwrap();
    assert_eq!(ack.clinician, c.id.to_string());
    assert_eq!(ack.note.as_deref(), Some("called"));
    assert!(matches!(
        s.record_risk_event(
            &cli(),
            NewRiskEvent {
                patient: p,
                conversation: None,
                message: None,
                source: "chat".into(),
                level: "severe".into(),
                categories: vec![],
                evidence: json!(null)
            }
        )
        .await,
        Err(StoreError::Invalid(_))
    ));
}

async fn checkins_are_claimed_by_one_worker_only(db: TestDb) {
    let s = Arc::new(db.open(MasterKey::generate()).await);
    let p = patient(&s, "pat").await;
    for due in [10, 20, 30, 1_000] {
        s.schedule_checkin(
            &cli(),
            NewCheckin {
                patient: p,
                clinician: None,
                due_at_ms: due,
                prompt: Some(format!("check {due}")),
            },
        )
        .await
        .unwrap();
    }
    let (a, b) = tokio::join!(
        {
            let s = s.clone();
            async move { s.claim_due_checkins("a", 100, 60_000, 10).await.unwrap() }
        },
        {
            let s = s.clone();
            async move { s.claim_due_checkins("b", 100, 60_000, 10).await.unwrap() }
        },
    );
    let mut got: Vec<i64> = a.iter().chain(b.iter()).map(|c| c.due_at_ms).collect();
    got.sort();
    assert_eq!(
        got,
        vec![10, 20, 30],
        "each due check-in is claimed exactly once"
    );
    assert!(a
        .iter()
        .chain(b.iter())
        .all(|c| c.prompt.as_deref() == Some(&format!("check {}", c.due_at_ms)[..])));
    // Before the lease lapses nothing is claimable; after it, the unsent ones come back
    // (with the one due at 1 000 ms, now also due).
    assert!(s
        .claim_due_checkins("c", 200, 60_000, 10)
        .await
        .unwrap()
        .is_empty());
    let again: Vec<i64> = s
        .claim_due_checkins("c", 100 + 60_001, 1, 10)
        .await
        .unwrap()
        .iter()
        .map(|c| c.due_at_ms)
        .collect();
    assert_eq!(again, vec![10, 20, 30, 1_000]);
}

async fn failed_writes_leave_nothing_behind(db: TestDb) {
    let s = db.open(MasterKey::generate()).await;
    let p = patient(&s, "pat").await;
    let before = s.audit_entries(None).await.unwrap().len();
    assert!(s
        .create_user(
            &cli(),
            NewUser {
                username: Username::parse("pat").unwrap(),
                role: Role::Patient,
                password_hash: "x".into()
            }
        )
        .await
        .is_err());
    let missing = tandem_domain::ConversationId::from_uuid(uuid::Uuid::new_v4());
    assert!(matches!(
        s.append_message(
            &cli(),
            NewMessage {
                conversation: missing,
                role: MessageRole::Patient,
                text: "lost".into(),
                provenance: None
            }
        )
        .await,
        Err(StoreError::NotFound(_))
    ));
    let stranger = PatientId::from_uuid(uuid::Uuid::new_v4());
    assert!(matches!(
        s.erase_patient(&cli(), stranger).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.export_patient(&cli(), stranger).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        s.audit_entries(None).await.unwrap().len(),
        before,
        "no audit entry for a write that did not happen"
    );
    use sqlx::Row;
    let keys: i64 = sqlx::query("SELECT COUNT(*) AS n FROM patient_keys")
        .fetch_one(s.pool())
        .await
        .unwrap()
        .try_get("n")
        .unwrap();
    assert_eq!(keys, 1);
    assert!(s.verify_audit().await.unwrap().first_break.is_none());
    let _ = p;
}

async fn a_turn_reads_its_context_and_stores_the_message_in_one_transaction(db: TestDb) {
    let s = db.open(MasterKey::generate()).await;
    let p = patient(&s, "pat").await;
    let conv = s.create_conversation(&cli(), p).await.unwrap();
    let m = s
        .append_message(
            &cli(),
            NewMessage {
                conversation: conv,
                role: MessageRole::Patient,
                text: "hello".into(),
                provenance: None,
            },
        )
        .await
        .unwrap();
    s.add_care_plan_item(
        &cli(),
        NewCarePlanItem {
            patient: p,
            kind: CarePlanItemKind::Goal,
            text: "walk daily".into(),
            due_at_ms: None,
        },
    )
    .await
    .unwrap();
    s.add_summary(
        &cli(),
        NewSummary {
            conversation: conv,
            first_message: m.id,
            last_message: m.id,
            text: "said hello".into(),
            provenance: None,
        },
    )
    .await
    .unwrap();
    let before = s.audit_entries(Some(p)).await.unwrap().len();
    let ctx = s.open_turn(&cli(), conv, "how are you", 0).await.unwrap();
    assert_eq!(ctx.patient, p);
    // Usage: both patient messages' times; the care plan item written by someone other
    // than the patient counts as human contact; no nudge yet.
    assert_eq!(
        ctx.usage.patient_message_times_ms,
        vec![m.created_at_ms, ctx.patient_message.created_at_ms]
    );
    assert!(ctx.usage.last_human_contact_ms.is_some());
    assert_eq!(ctx.usage.last_nudge_ms, None);
    assert_eq!(
        ctx.messages.len(),
        1,
        "the new message is not its own context"
    );
    assert_eq!(ctx.messages[0].text, "hello");
    assert_eq!(ctx.care_plan.items[0].text, "walk daily");
    assert_eq!(ctx.summary.unwrap().text, "said hello");
    assert!(!ctx.ai_consent, "no consent recorded yet");
    assert_eq!(ctx.patient_message.text, "how are you");
    assert_eq!(ctx.patient_message.seq, ctx.messages[0].seq + 1);
    let audit = s.audit_entries(Some(p)).await.unwrap();
    assert_eq!(
        audit.len(),
        before + 2,
        "the read and the write, one entry each"
    );
    assert_eq!(audit[before].action, "messages_read");
    assert_eq!(audit[before + 1].action, "message_written");
    assert_eq!(audit[before + 1].seq, audit[before].seq + 1);
    assert_eq!(
        s.verify_audit().await.unwrap().first_break,
        None,
        "the two entries chain"
    );
    let stored = s.messages(&cli(), conv).await.unwrap();
    assert_eq!(stored.last().unwrap().text, "how are you");
    let later = stored.last().unwrap().created_at_ms + 1;
    assert!(s
        .open_turn(&cli(), conv, "bounded", later + 60_000)
        .await
        .unwrap()
        .usage
        .patient_message_times_ms
        .is_empty());

    s.record_consent(&cli(), p, ConsentKind::AiProcessing, true)
        .await
        .unwrap();
    s.record_nudge(&cli(), p, &["heavy_daily_use".into()])
        .await
        .unwrap();
    let ctx = s.open_turn(&cli(), conv, "again", 0).await.unwrap();
    assert!(ctx.ai_consent);
    assert!(ctx.usage.last_nudge_ms.is_some());
    let export = s.export_patient(&cli(), p).await.unwrap();
    assert_eq!(export.nudges[0].reasons, vec!["heavy_daily_use"]);
    let missing = tandem_domain::ConversationId::from_uuid(uuid::Uuid::new_v4());
    let n = s.audit_entries(None).await.unwrap().len();
    assert!(matches!(
        s.open_turn(&cli(), missing, "lost", 0).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        s.audit_entries(None).await.unwrap().len(),
        n,
        "nothing half-written"
    );
}

async fn overdue_alerts_escalate_once_to_the_clinicians_on_call(db: TestDb) {
    let s = Arc::new(db.open(MasterKey::generate()).await);
    let p = patient(&s, "pat").await;
    let other = patient(&s, "other").await;
    let team = add_user(&s, "clin", Role::Clinician).await;
    let oncall = add_user(&s, "oncall", Role::Clinician).await;
    s.assign_care_team(&cli(), team.id, p).await.unwrap();
    let event = |patient: PatientId, level: &str| NewRiskEvent {
        patient,
        conversation: None,
        message: None,
        source: "chat".into(),
        level: level.into(),
        categories: vec!["suicide".into(), "self_harm".into()],
        evidence: json!({"rules": ["x"]}),
    };
    let high = s.record_risk_event(&cli(), event(p, "high")).await.unwrap();
    let moderate = s
        .record_risk_event(&cli(), event(p, "moderate"))
        .await
        .unwrap();
    let acked = s
        .record_risk_event(&cli(), event(other, "imminent"))
        .await
        .unwrap();
    let who = Actor::user(team.id, Role::Clinician);
    s.acknowledge_risk_event(&who, acked, None).await.unwrap();

    // The level filter and the time bound select; acknowledged events never come back.
    let far = i64::MAX / 2;
    let open = s
        .unescalated_alerts(&["high", "imminent"], far)
        .await
        .unwrap();
    assert_eq!(open.iter().map(|a| a.id).collect::<Vec<_>>(), vec![high]);
    assert_eq!(open[0].patient, p);
    assert_eq!(open[0].categories, vec!["suicide", "self_harm"]);
    assert!(s.unescalated_alerts(&["high"], 0).await.unwrap().is_empty());
    assert_eq!(
        s.unescalated_alerts(&["moderate"], far).await.unwrap()[0].id,
        moderate
    );

    // The rota: only clinicians, audited, on and off.
    assert!(matches!(
        s.set_on_call(&cli(), UserId::from(p), true).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(s.on_call().await.unwrap().is_empty());
    s.set_on_call(&cli(), oncall.id, true).await.unwrap();
    s.set_on_call(&cli(), oncall.id, true).await.unwrap();
    assert_eq!(s.on_call().await.unwrap(), vec![oncall.id]);

    // Two workers race to escalate the same alert: exactly one wins.
    assert!(!s.has_escalation(oncall.id, p, 0).await.unwrap());
    let (a, b) = tokio::join!(
        {
            let s = s.clone();
            async move {
                s.escalate_risk_event(&cli(), high, &[oncall.id], 5_000)
                    .await
                    .unwrap()
            }
        },
        {
            let s = s.clone();
            async move {
                s.escalate_risk_event(&cli(), high, &[oncall.id], 5_000)
                    .await
                    .unwrap()
            }
        },
    );
    assert!(a ^ b, "exactly one escalation: {a} {b}");
    assert!(!s
        .escalate_risk_event(&cli(), acked, &[oncall.id], 5_000)
        .await
        .unwrap());
    assert!(s
        .unescalated_alerts(&["high", "imminent"], far)
        .await
        .unwrap()
        .is_empty());
    let mine = s.escalated_to(oncall.id).await.unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].escalated_at_ms, Some(5_000));
    assert!(s.escalated_to(team.id).await.unwrap().is_empty());
    let events = s.risk_events(&who, p).await.unwrap();
    let escalated_at = |id| events.iter().find(|e| e.id == id).unwrap().escalated_at_ms;
    assert_eq!(escalated_at(high), Some(5_000));
    assert_eq!(escalated_at(moderate), None);
    // Access: while unacknowledged always; once acknowledged, only within the window.
    assert!(s.has_escalation(oncall.id, p, far).await.unwrap());
    assert!(!s.has_escalation(oncall.id, other, 0).await.unwrap());
    s.acknowledge_risk_event(&Actor::user(oncall.id, Role::Clinician), high, None)
        .await
        .unwrap();
    assert!(s.escalated_to(oncall.id).await.unwrap().is_empty());
    assert!(s.has_escalation(oncall.id, p, 5_000).await.unwrap());
    assert!(!s.has_escalation(oncall.id, p, 5_001).await.unwrap());

    let actions: Vec<String> = s
        .audit_entries(None)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions.iter().filter(|a| *a == "alert_escalated").count(),
        1
    );
    assert_eq!(
        actions.iter().filter(|a| *a == "on_call_changed").count(),
        2
    );

    s.set_on_call(&cli(), oncall.id, false).await.unwrap();
    assert!(s.on_call().await.unwrap().is_empty());
    // Erasure removes the escalation rows with the patient.
    s.erase_patient(&cli().with_reason("test"), p)
        .await
        .unwrap();
    assert!(!s.has_escalation(oncall.id, p, 0).await.unwrap());
}
