//! [`SqlStore`]: the [`Store`] over sqlx's `Any` driver, so one set of queries serves both
//! SQLite and PostgreSQL. The dialects differ only in their migrations (`migrations/sqlite`,
//! `migrations/postgres`) and in connection set-up below; queries use `$n` placeholders,
//! `RETURNING` and `ON CONFLICT`, which both understand.
//!
//! Every write transaction starts by bumping the audit chain head (`audit_head`): on
//! PostgreSQL that row lock serialises appends from several server instances, and on
//! SQLite it takes the write lock up front so a transaction never has to upgrade a read.

use async_trait::async_trait;
use serde::{de::DeserializeOwned, Serialize};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::AnyConnection;
use sqlx::{Any, AnyPool, Row, Transaction};
use std::str::FromStr;
use std::sync::RwLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tandem_domain::{
    chain_hash, AssessmentId, AuditAction, AuditRecord, CarePlanItemId, CarePlanItemKind,
    ChainVerifier, CheckinId, CheckinStatus, ConsentKind, ConversationId, ExerciseId, MessageId,
    MessageRole, MoodId, PatientId, RiskEventId, Role, SummaryId, TalkRequestId, UserId, Username,
};
use tandem_vault::{field_ad, DataKey, MasterKey};
use uuid::Uuid;

use crate::model::*;
use crate::{Actor, Result, Store, StoreError};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Which database engine a store runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// PostgreSQL for `postgres://` or `postgresql://` URLs, SQLite for `sqlite:` URLs.
    pub fn from_url(url: &str) -> Result<Backend> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else {
            Err(StoreError::Invalid(format!(
                "unsupported database URL {:?}: use sqlite://PATH or postgres://USER@HOST/DB",
                redact_url(url)
            )))
        }
    }
}

/// The URL with any password replaced, safe to print.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let creds = &url[scheme_end + 3..at];
            match creds.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &creds[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// The SQL store. Cheap to share behind an `Arc`.
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
    master: RwLock<MasterKey>,
    /// SQLite only: the background WAL checkpointer, stopped when the store is dropped.
    checkpointer: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for SqlStore {
    fn drop(&mut self) {
        if let Some(task) = self.checkpointer.take() {
            task.abort();
        }
    }
}

/// How often the SQLite write-ahead log is copied back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Copies the write-ahead log into the database file every [`CHECKPOINT_EVERY`], off the
/// request path. `PASSIVE` never waits for readers or writers: what it cannot copy now it
/// copies next time.
fn spawn_checkpointer(pool: AnyPool) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if pool.is_closed() {
                break;
            }
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&pool)
                .await
            {
                tracing::warn!(error = %e, "WAL checkpoint failed; retrying at the next tick");
            }
        }
    })
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn new_id() -> Uuid {
    Uuid::new_v4()
}

type Tx = Transaction<'static, Any>;

/// The audit slot a write transaction holds from its first statement.
struct Slot {
    seq: i64,
    prev_hash: String,
}

impl SqlStore {
    /// Connects and runs the embedded migrations: what `tandem serve` does on start.
    pub async fn open(url: &str, master: MasterKey) -> Result<SqlStore> {
        let store = SqlStore::connect(url, master).await?;
        store.migrate().await?;
        store.check_master_key().await?;
        Ok(store)
    }

    /// Connects without migrating (for `tandem db migrate`, which reports what it did).
    pub async fn connect(url: &str, master: MasterKey) -> Result<SqlStore> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let mut opts = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 4,
                Backend::Postgres => 10,
            })
            .acquire_timeout(Duration::from_secs(10));
        if backend == Backend::Sqlite {
            opts = opts.after_connect(|conn, _meta| {
                Box::pin(async move {
                    // WAL lets readers proceed during a write; the busy timeout makes a
                    // second process (the CLI beside a running server) wait, not fail.
                    sqlx::query("PRAGMA journal_mode = WAL")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA foreign_keys = ON")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA busy_timeout = 10000")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA synchronous = NORMAL")
                        .execute(&mut *conn)
                        .await?;
                    // No checkpoint inside a request's commit (it copies pages back and
                    // fsyncs: the slow tail of every write). The store's checkpointer does
                    // it in the background instead.
                    sqlx::query("PRAGMA wal_autocheckpoint = 0")
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            });
        }
        let pool = opts
            .connect(url)
            .await
            .map_err(|source| StoreError::Connect {
                url: redact_url(url),
                source,
            })?;
        let checkpointer = (backend == Backend::Sqlite).then(|| spawn_checkpointer(pool.clone()));
        Ok(SqlStore {
            checkpointer,
            pool,
            backend,
            master: RwLock::new(master),
        })
    }

    /// Applies pending migrations; returns how many were applied.
    pub async fn migrate(&self) -> Result<usize> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        let before = self.applied_migrations().await.unwrap_or(0);
        migrator.run(&self.pool).await?;
        let after = self.applied_migrations().await.unwrap_or(before);
        Ok(after.saturating_sub(before))
    }

    async fn applied_migrations(&self) -> Result<usize> {
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM _sqlx_migrations WHERE success = TRUE")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Fails early, with a clear message, when the key file is not the one in use.
    async fn check_master_key(&self) -> Result<()> {
        let given = self.master_id();
        let row =
            sqlx::query("SELECT master_key_id FROM patient_keys WHERE master_key_id <> $1 LIMIT 1")
                .bind(&given)
                .fetch_optional(&self.pool)
                .await?;
        if let Some(row) = row {
            return Err(StoreError::WrongMasterKey {
                given,
                stored: row.try_get("master_key_id")?,
            });
        }
        Ok(())
    }

    fn master_id(&self) -> String {
        match self.master.read() {
            Ok(m) => m.id(),
            Err(poisoned) => poisoned.into_inner().id(),
        }
    }

    fn master(&self) -> MasterKey {
        match self.master.read() {
            Ok(m) => m.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The raw pool, for tests and tools that must look under the store (tamper tests).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes the pool; on SQLite the write-ahead log is first folded into the database
    /// file, so a stopped server leaves one self-contained file.
    pub async fn close(&self) {
        if self.backend == Backend::Sqlite {
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.pool)
                .await
            {
                tracing::warn!(error = %e, "final WAL checkpoint failed; the next start recovers the log");
            }
        }
        self.pool.close().await;
    }

    // --- transactions and the audit chain ----------------------------------------------

    async fn begin_write(&self) -> Result<(Tx, Slot)> {
        self.begin_write_n(1).await
    }

    /// Begins a write transaction that will append `n` audit entries: the chain head is
    /// advanced by `n` at once (so it is locked first, as in every write), and the slot
    /// names the first of the `n` sequence numbers.
    async fn begin_write_n(&self, n: i64) -> Result<(Tx, Slot)> {
        let mut tx = self.pool.begin().await?;
        let row =
            sqlx::query("UPDATE audit_head SET seq = seq + $1 WHERE id = 1 RETURNING seq, hash")
                .bind(n)
                .fetch_one(&mut *tx)
                .await?;
        let last: i64 = row.try_get("seq")?;
        let slot = Slot {
            seq: last - n + 1,
            prev_hash: row.try_get("hash")?,
        };
        Ok((tx, slot))
    }

    /// Appends the audit entry for this transaction and commits.
    async fn commit_audited(
        &self,
        tx: Tx,
        slot: Slot,
        actor: &Actor,
        action: AuditAction,
        patient: Option<PatientId>,
        detail: Option<String>,
    ) -> Result<()> {
        self.commit_audited_many(tx, slot, actor, vec![(action, patient, detail)])
            .await
    }

    /// Appends one audit entry per element of `entries` (as many as the transaction was
    /// begun for), chained in order, and commits.
    async fn commit_audited_many(
        &self,
        mut tx: Tx,
        slot: Slot,
        actor: &Actor,
        entries: Vec<(AuditAction, Option<PatientId>, Option<String>)>,
    ) -> Result<()> {
        let at_ms = now_ms();
        let mut prev_hash = slot.prev_hash;
        for (seq, (action, patient, detail)) in (slot.seq..).zip(entries) {
            let mut rec = AuditRecord {
                seq,
                at_ms,
                actor: Some(actor.id.clone()),
                actor_role: actor.role.clone(),
                action: action.as_str().to_string(),
                patient: patient.map(|p| p.to_string()),
                reason: actor.reason.clone(),
                detail,
                prev_hash,
                hash: String::new(),
            };
            rec.hash = chain_hash(&rec.prev_hash, &rec);
            sqlx::query(
                "INSERT INTO audit_log (seq, at_ms, actor, actor_role, action, patient, reason, detail, prev_hash, hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(rec.seq)
            .bind(rec.at_ms)
            .bind(rec.actor)
            .bind(rec.actor_role)
            .bind(rec.action)
            .bind(rec.patient)
            .bind(rec.reason)
            .bind(rec.detail)
            .bind(rec.prev_hash)
            .bind(rec.hash.clone())
            .execute(&mut *tx)
            .await?;
            prev_hash = rec.hash;
        }
        sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
            .bind(prev_hash)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    // --- keys and sealing ------------------------------------------------------------------

    async fn data_key(&self, conn: &mut AnyConnection, patient: PatientId) -> Result<DataKey> {
        let row = sqlx::query(
            "SELECT wrapped_key, master_key_id FROM patient_keys WHERE patient_id = $1",
        )
        .bind(patient.to_string())
        .fetch_optional(&mut *conn)
        .await?;
        self.unwrap_key(row.as_ref(), patient)
    }

    /// Unwraps a patient's data key from a row with `wrapped_key` and `master_key_id`
    /// (`None`, or NULL columns from an outer join: the key is missing).
    fn unwrap_key(&self, row: Option<&AnyRow>, patient: PatientId) -> Result<DataKey> {
        let missing = || StoreError::not_found(format!("data key for patient {patient}"));
        let row = row.ok_or_else(missing)?;
        let stored: Option<String> = row.try_get("master_key_id")?;
        let stored = stored.ok_or_else(missing)?;
        let master = self.master();
        if stored != master.id() {
            return Err(StoreError::WrongMasterKey {
                given: master.id(),
                stored,
            });
        }
        let wrapped: Option<Vec<u8>> = row.try_get("wrapped_key")?;
        let wrapped = wrapped.ok_or_else(missing)?;
        Ok(DataKey::unwrap_from(
            &wrapped,
            &master,
            &patient.to_string(),
        )?)
    }

    /// Whose conversation this is, and their data key, in one query.
    async fn conversation_key(
        &self,
        conn: &mut AnyConnection,
        conversation: ConversationId,
    ) -> Result<(PatientId, DataKey)> {
        let row = sqlx::query(
            "SELECT c.patient_id, k.wrapped_key, k.master_key_id FROM conversations c \
             LEFT JOIN patient_keys k ON k.patient_id = c.patient_id WHERE c.id = $1",
        )
        .bind(conversation.to_string())
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("conversation {conversation}")))?;
        let patient: PatientId = parse_col(&row, "patient_id")?;
        let dek = self.unwrap_key(Some(&row), patient)?;
        Ok((patient, dek))
    }

    async fn require_patient(&self, conn: &mut AnyConnection, patient: PatientId) -> Result<()> {
        let row = sqlx::query("SELECT role FROM users WHERE id = $1")
            .bind(patient.to_string())
            .fetch_optional(&mut *conn)
            .await?;
        match row {
            None => Err(StoreError::not_found(format!("patient {patient}"))),
            Some(r) => {
                let role: Role = parse_col(&r, "role")?;
                if role == Role::Patient {
                    Ok(())
                } else {
                    Err(StoreError::Invalid(format!(
                        "user {patient} is a {role}, not a patient"
                    )))
                }
            }
        }
    }

    /// One audited read of a patient's clinical data: check the patient, open their key,
    /// read, and append the audit entry, all in one transaction.
    async fn audited_read<T>(
        &self,
        actor: &Actor,
        patient: PatientId,
        action: AuditAction,
        read: impl AsyncFnOnce(&mut AnyConnection, &DataKey) -> Result<T>,
    ) -> Result<T> {
        let (mut tx, slot) = self.begin_write().await?;
        self.require_patient(&mut tx, patient).await?;
        let dek = self.data_key(&mut tx, patient).await?;
        let out = read(&mut tx, &dek).await?;
        self.commit_audited(tx, slot, actor, action, Some(patient), None)
            .await?;
        Ok(out)
    }

    // --- reads shared by the audited methods and by export ------------------------------

    /// Usage times for the dependence nudge, and whether AI processing is consented, in
    /// two queries.
    async fn read_usage(
        &self,
        conn: &mut AnyConnection,
        patient: PatientId,
        since_ms: i64,
    ) -> Result<(UsageMeta, bool)> {
        let pid = patient.to_string();
        let times = sqlx::query(
            "SELECT created_at FROM messages WHERE patient_id = $1 AND role = 'patient' \
             AND created_at >= $2 ORDER BY created_at",
        )
        .bind(pid.clone())
        .bind(since_ms)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| r.try_get::<i64, _>("created_at"))
        .collect::<std::result::Result<Vec<_>, _>>()?;
        let row = sqlx::query(
            "SELECT \
               (SELECT MAX(assigned_at) FROM care_team WHERE patient_id = $1) AS team, \
               (SELECT MAX(a.acknowledged_at) FROM risk_acknowledgements a \
                  JOIN risk_events e ON e.id = a.risk_event_id WHERE e.patient_id = $1) AS ack, \
               (SELECT MAX(resolved_at) FROM talk_requests WHERE patient_id = $1) AS talk, \
               (SELECT MAX(created_at) FROM care_plan_items WHERE patient_id = $1 \
                  AND created_by IS NOT NULL AND created_by <> $1) AS plan, \
               (SELECT MAX(created_at) FROM companion_nudges WHERE patient_id = $1) AS nudge, \
               (SELECT granted FROM consents WHERE patient_id = $1 AND kind = $2 \
                  ORDER BY audit_seq DESC LIMIT 1) AS ai_consent",
        )
        .bind(pid)
        .bind(ConsentKind::AiProcessing.as_str())
        .fetch_one(&mut *conn)
        .await?;
        // The latest AI-processing decision (none recorded: not consented).
        let ai_consent = row
            .try_get::<Option<i64>, _>("ai_consent")?
            .is_some_and(|g| g != 0);
        let contact = ["team", "ack", "talk", "plan"]
            .iter()
            .map(|c| row.try_get::<Option<i64>, _>(*c))
            .collect::<std::result::Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .max();
        Ok((
            UsageMeta {
                patient_message_times_ms: times,
                last_human_contact_ms: contact,
                last_nudge_ms: row.try_get("nudge")?,
            },
            ai_consent,
        ))
    }

    async fn read_nudges(
        &self,
        conn: &mut AnyConnection,
        patient: PatientId,
    ) -> Result<Vec<NudgeRecord>> {
        let rows = sqlx::query(
            "SELECT reasons, created_at FROM companion_nudges WHERE patient_id = $1 \
             ORDER BY created_at, id",
        )
        .bind(patient.to_string())
        .fetch_all(&mut *conn)
        .await?;
        rows.iter()
            .map(|r| {
                let reasons: String = r.try_get("reasons")?;
                Ok(NudgeRecord {
                    reasons: reasons
                        .split(',')
                        .filter(|x| !x.is_empty())
                        .map(str::to_string)
                        .collect(),
                    at_ms: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Seals and inserts one message at sequence number `seq` (unique per conversation, so
    /// two writers racing for the same number make one of them fail, never interleave).
    async fn insert_message(
        &self,
        conn: &mut AnyConnection,
        dek: &DataKey,
        patient: PatientId,
        seq: i64,
        new: NewMessage,
    ) -> Result<Message> {
        let id = MessageId::from_uuid(new_id());
        let at = now_ms();
        let row_id = id.to_string();
        let body = seal(
            dek,
            "messages",
            "body",
            &row_id,
            patient,
            new.text.as_bytes(),
        )?;
        let provenance = new
            .provenance
            .as_ref()
            .map(|p| seal_json(dek, "messages", "provenance", &row_id, patient, p))
            .transpose()?;
        sqlx::query(
            "INSERT INTO messages (id, conversation_id, patient_id, seq, role, body, provenance, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(row_id)
        .bind(new.conversation.to_string())
        .bind(patient.to_string())
        .bind(seq)
        .bind(new.role.as_str())
        .bind(body)
        .bind(provenance)
        .bind(at)
        .execute(&mut *conn)
        .await?;
        Ok(Message {
            id,
            conversation: new.conversation,
            seq,
            role: new.role,
            text: new.text,
            provenance: new.provenance,
            created_at_ms: at,
        })
    }

    async fn read_messages(
        &self,
        conn: &mut AnyConnection,
        dek: &DataKey,
        patient: PatientId,
        conversation: ConversationId,
    ) -> Result<Vec<Message>> {
        let rows = sqlx::query(
            "SELECT id, seq, role, body, provenance, created_at FROM messages \
             WHERE conversation_id = $1 ORDER BY seq",
        )
        .bind(conversation.to_string())
        .fetch_all(&mut *conn)
        .await?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("id")?;
                Ok(Message {
                    id: parse_text(&id)?,
                    conversation,
                    seq: r.try_get("seq")?,
                    role: parse_col(r, "role")?,
                    text: open_text(dek, r, "messages", "body", &id, patient)?,
                    provenance: open_json_opt(dek, r, "messages", "provenance", &id, patient)?,
                    created_at_ms: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    async fn read_conversations(
        &self,
        conn: &mut AnyConnection,
        patient: PatientId,
    ) -> Result<Vec<Conversation>> {
        let rows = sqlx::query(
            "SELECT id, started_at FROM conversations WHERE patient_id = $1 ORDER BY started_at, id",
        )
        .bind(patient.to_string())
        .fetch_all(&mut *conn)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Conversation {
                    id: parse_col(r, "id")?,
                    patient,
                    started_at_ms: r.try_get("started_at")?,
                })
            })
            .collect()
    }

    async fn read_summaries(
        &self,
        conn: &mut AnyConnection,
        dek: &DataKey,
        patient: PatientId,
    ) -> Result<Vec<Summary>> {
        let rows = sqlx::query(
            "SELECT id, conversation_id, first_message_id, last_message_id, body, provenance, created_at \
             FROM summaries WHERE patient_id = $1 ORDER BY created_at, id",
        )
        .bind(patient.to_string())
        .fetch_all(&mut *conn)
        .await?;
        rows.iter().map(|r| summary_row(r, dek, patient)).collect()
    }

    /// The newest summary of one conversation (the only one a turn needs).
    async fn read_latest_summary(
        &self,
        conn: &mut AnyConnection,
        dek: &DataKey,
        patient: PatientId,
        conversation: ConversationId,
    ) -> Result<Option<Summary>> {
        let row = sqlx::query(
            "SELECT id, conversation_id, first_message_id, last_message_id, body, provenance, created_at \
             FROM summaries WHERE conversation_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .bind(conversation.to_string())
        .fetch_optional(&mut *conn)
        .await?;
        row.map(|r| summary_row(&r, dek, patient)).transpose()
    }

    async fn read_risk_events(
        &self,
        conn: &mut AnyConnection,
        dek: &DataKey,
        patient: PatientId,
    ) -> Result<Vec<RiskEvent>> {
        let rows = sqlx::query(
            "SELECT e.id, e.conversation_id, e.message_id, e.source, e.level, e.categories, e.evidence, \
                    e.created_at, e.escalated_at, a.clinician_id, a.acknowledged_at, a.note \
             FROM risk_events e LEFT JOIN risk_acknowledgements a ON a.risk_event_id = e.id \
             WHERE e.patient_id = $1 ORDER BY e.created_at, e.id",
        )
        .bind(patient.to_string())
        .fetch_all(&mut *conn)
        .await?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("id")?;
                let categories: String = r.try_get("categories")?;
                let ack_by: Option<String> = r.try_get("clinician_id")?;
                let acknowledgement = match ack_by {
                    None => None,
                    Some(clinician) => Some(Acknowledgement {
                        clinician,
                        at_ms: r.try_get("acknowledged_at")?,
                        note: open_opt(dek, r, "risk_acknowledgements", "note", &id, patient)?
                            .map(bytes_to_string)
                            .transpose()?,
                    }),
                };
                Ok(RiskEvent {
                    id: parse_text(&id)?,
                    patient,
                    conversation: parse_opt_col(r, "conversation_id")?,
                    message: parse_opt_col(r, "message_id")?,
                    source: r.try_get("source")?,
                    level: r.try_get("level")?,
                    categories: categories
                        .split(',')
                        .filter(|c| !c.is_empty())
                        .map(str::to_string)
                        .collect(),
                    evidence: open_json(dek, r, "risk_events", "evidence", &id, patient)?,
                    created_at_ms: r.try_get("created_at")?,
                    escalated_at_ms: r.try_get("escalated_at")?,
                    acknowledgement,
                })
            })
            .collect()
    }

    async fn read_assessments(
        &self,
        conn: &mut AnyConnection,
        dek: &DataKey,
        patient: PatientId,
    ) -> Result<Vec<Assessment>> {
        let rows = sqlx::query(
            "SELECT id, instrument, answers, total, band, completed_at FROM assessments \
             WHERE patient_id = $1 ORDER BY completed_at, id",
        )
        .bind(patient.to_string())
        .fetch_all(&mut *conn)
        .await?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("id")?;
                Ok(Assessment {
                    id: parse_text(&id)?,
                    patient,
                    instrument: r.try_get("instrument")?,
                    answers: open_json(dek, r, "assessments", "answers", &id, patient)?,
                    total: r.try_get("total")?,
                    band: r.try_get("band")?,
                    completed_at_ms: r.try_get("completed_at")?,
                })
            })
            .collect()
    }

    async fn read_care_plan(
        &self,
        conn: &mut AnyConnection,
        dek: &DataKey,
        patient: PatientId,
    ) -> Result<CarePlan> {
        let rows = sqlx::query(
            "SELECT id, kind, body, status, due_at, created_by, created_at FROM care_plan_items \
             WHERE patient_id = $1 ORDER BY created_at, id",
        )
        .bind(patient.to_string())
        .fetch_all(&mut *conn)
        .await?;
        let items = rows
            .iter()
            .map(|r| {
                let id: String = r.try_get("id")?;
                Ok(CarePlanItem {
                    id: parse_text(&id)?,
                    kind: parse_col::<CarePlanItemKind>(r, "kind")?,
                    text: open_text(dek, r, "care_plan_items", "body", &id, patient)?,
                    status: r.try_get("status")?,
                    due_at_ms: r.try_get("due_at")?,
                    created_by: r.try_get("created_by")?,
                    created_at_ms: r.try_get("created_at")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let prefs = sqlx::query("SELECT body FROM ai_preferences WHERE patient_id = $1")
            .bind(patient.to_string())
            .fetch_optional(&mut *conn)
            .await?;
        let ai_preferences = match prefs {
            None => None,
            Some(r) => Some(open_json(
                dek,
                &r,
                "ai_preferences",
                "body",
                &patient.to_string(),
                patient,
            )?),
        };
        Ok(CarePlan {
            items,
            ai_preferences,
        })
    }

    async fn read_checkins(
        &self,
        conn: &mut AnyConnection,
        dek: &DataKey,
        patient: PatientId,
    ) -> Result<Vec<Checkin>> {
        let rows = sqlx::query(
            "SELECT id, clinician_id, due_at, status, prompt FROM checkins \
             WHERE patient_id = $1 ORDER BY due_at, id",
        )
        .bind(patient.to_string())
        .fetch_all(&mut *conn)
        .await?;
        rows.iter()
            .map(|r| checkin_from_row(r, dek, patient))
            .collect()
    }

    async fn read_audit(
        &self,
        conn: &mut AnyConnection,
        patient: Option<PatientId>,
    ) -> Result<Vec<AuditRecord>> {
        let rows = match patient {
            Some(p) => {
                sqlx::query(&format!("{AUDIT_SELECT} WHERE patient = $1 ORDER BY seq"))
                    .bind(p.to_string())
                    .fetch_all(&mut *conn)
                    .await?
            }
            None => {
                sqlx::query(&format!("{AUDIT_SELECT} ORDER BY seq"))
                    .fetch_all(&mut *conn)
                    .await?
            }
        };
        rows.iter().map(audit_from_row).collect()
    }

    async fn read_consents(
        &self,
        conn: &mut AnyConnection,
        patient: PatientId,
    ) -> Result<Vec<Consent>> {
        let rows = sqlx::query(
            "SELECT kind, granted, recorded_at, recorded_by FROM consents \
             WHERE patient_id = $1 ORDER BY audit_seq",
        )
        .bind(patient.to_string())
        .fetch_all(&mut *conn)
        .await?;
        // Latest decision per kind wins.
        let mut latest: Vec<Consent> = Vec::new();
        for r in &rows {
            let c = Consent {
                kind: parse_col::<ConsentKind>(r, "kind")?,
                granted: r.try_get::<i64, _>("granted")? != 0,
                recorded_at_ms: r.try_get("recorded_at")?,
                recorded_by: r.try_get("recorded_by")?,
            };
            latest.retain(|old| old.kind != c.kind);
            latest.push(c);
        }
        Ok(latest)
    }

    async fn read_care_team(
        &self,
        conn: &mut AnyConnection,
        patient: PatientId,
    ) -> Result<Vec<UserId>> {
        let rows = sqlx::query(
            "SELECT clinician_id FROM care_team WHERE patient_id = $1 ORDER BY assigned_at, clinician_id",
        )
        .bind(patient.to_string())
        .fetch_all(&mut *conn)
        .await?;
        rows.iter().map(|r| parse_col(r, "clinician_id")).collect()
    }

    async fn read_schedules(
        &self,
        conn: &mut AnyConnection,
        patient: PatientId,
    ) -> Result<Vec<MeasureScheduleRow>> {
        let rows = sqlx::query(
            "SELECT instrument, every_days, grace_days, start_at FROM measure_schedules \
             WHERE patient_id = $1 ORDER BY instrument",
        )
        .bind(patient.to_string())
        .fetch_all(&mut *conn)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MeasureScheduleRow {
                    instrument: r.try_get("instrument")?,
                    every_days: r.try_get("every_days")?,
                    grace_days: r.try_get("grace_days")?,
                    start_at_ms: r.try_get("start_at")?,
                })
            })
            .collect()
    }

    async fn read_exercises(
        &self,
        conn: &mut AnyConnection,
        dek: &DataKey,
        patient: PatientId,
    ) -> Result<Vec<ExerciseRecord>> {
        let rows = sqlx::query(
            "SELECT id, kind, state, completed, started_at, updated_at FROM exercise_sessions \
             WHERE patient_id = $1 ORDER BY updated_at, id",
        )
        .bind(patient.to_string())
        .fetch_all(&mut *conn)
        .await?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("id")?;
                Ok(ExerciseRecord {
                    id: parse_text(&id)?,
                    patient,
                    kind: r.try_get("kind")?,
                    state: open_json(dek, r, "exercise_sessions", "state", &id, patient)?,
                    completed: r.try_get::<i64, _>("completed")? != 0,
                    started_at_ms: r.try_get("started_at")?,
                    updated_at_ms: r.try_get("updated_at")?,
                })
            })
            .collect()
    }

    async fn read_talk_requests(
        &self,
        conn: &mut AnyConnection,
        dek: &DataKey,
        patient: PatientId,
    ) -> Result<Vec<TalkRequest>> {
        let rows = sqlx::query(
            "SELECT id, note, created_at, resolved_at, resolved_by FROM talk_requests \
             WHERE patient_id = $1 ORDER BY created_at, id",
        )
        .bind(patient.to_string())
        .fetch_all(&mut *conn)
        .await?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("id")?;
                let note = open_opt(dek, r, "talk_requests", "note", &id, patient)?
                    .map(bytes_to_string)
                    .transpose()?;
                Ok(TalkRequest {
                    id: parse_text(&id)?,
                    patient,
                    note,
                    created_at_ms: r.try_get("created_at")?,
                    resolved_at_ms: r.try_get("resolved_at")?,
                    resolved_by: r.try_get("resolved_by")?,
                })
            })
            .collect()
    }

    async fn read_moods(
        &self,
        conn: &mut AnyConnection,
        dek: &DataKey,
        patient: PatientId,
    ) -> Result<Vec<MoodEntry>> {
        #[derive(serde::Deserialize)]
        struct Body {
            rating: u8,
            words: Vec<String>,
        }
        let rows = sqlx::query(
            "SELECT id, body, created_at FROM mood_checkins WHERE patient_id = $1 ORDER BY created_at, id",
        )
        .bind(patient.to_string())
        .fetch_all(&mut *conn)
        .await?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("id")?;
                let body: Body = open_json(dek, r, "mood_checkins", "body", &id, patient)?;
                Ok(MoodEntry {
                    id: parse_text(&id)?,
                    patient,
                    rating: body.rating,
                    words: body.words,
                    at_ms: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    async fn read_user(&self, conn: &mut AnyConnection, id: UserId) -> Result<Option<User>> {
        let row = sqlx::query(&format!("{USER_SELECT} WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&mut *conn)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }
}

const USER_SELECT: &str = "SELECT id, username, role, created_at, disabled FROM users";
const AUDIT_SELECT: &str =
    "SELECT seq, at_ms, actor, actor_role, action, patient, reason, detail, prev_hash, hash FROM audit_log";

// --- row helpers -------------------------------------------------------------------------

fn parse_text<T: FromStr>(s: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    s.parse::<T>()
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn parse_col<T: FromStr>(r: &AnyRow, col: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    let s: String = r.try_get(col)?;
    parse_text(&s)
}

fn parse_opt_col<T: FromStr>(r: &AnyRow, col: &str) -> Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    let s: Option<String> = r.try_get(col)?;
    s.as_deref().map(parse_text).transpose()
}

fn user_from_row(r: &AnyRow) -> Result<User> {
    let username: String = r.try_get("username")?;
    Ok(User {
        id: parse_col(r, "id")?,
        username: Username::parse(&username).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        role: parse_col(r, "role")?,
        created_at_ms: r.try_get("created_at")?,
        disabled: r.try_get::<i64, _>("disabled")? != 0,
    })
}

fn audit_from_row(r: &AnyRow) -> Result<AuditRecord> {
    Ok(AuditRecord {
        seq: r.try_get("seq")?,
        at_ms: r.try_get("at_ms")?,
        actor: r.try_get("actor")?,
        actor_role: r.try_get("actor_role")?,
        action: r.try_get("action")?,
        patient: r.try_get("patient")?,
        reason: r.try_get("reason")?,
        detail: r.try_get("detail")?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

fn checkin_from_row(r: &AnyRow, dek: &DataKey, patient: PatientId) -> Result<Checkin> {
    let id: String = r.try_get("id")?;
    Ok(Checkin {
        id: parse_text(&id)?,
        patient,
        clinician: r.try_get("clinician_id")?,
        due_at_ms: r.try_get("due_at")?,
        status: parse_col::<CheckinStatus>(r, "status")?,
        prompt: open_opt(dek, r, "checkins", "prompt", &id, patient)?
            .map(bytes_to_string)
            .transpose()?,
    })
}

fn seal(
    dek: &DataKey,
    table: &str,
    col: &str,
    row: &str,
    patient: PatientId,
    plain: &[u8],
) -> Result<Vec<u8>> {
    Ok(dek.seal(&field_ad(table, col, row, &patient.to_string()), plain)?)
}

fn seal_json<T: Serialize>(
    dek: &DataKey,
    table: &str,
    col: &str,
    row: &str,
    patient: PatientId,
    value: &T,
) -> Result<Vec<u8>> {
    let bytes = serde_json::to_vec(value).map_err(|e| StoreError::Invalid(e.to_string()))?;
    seal(dek, table, col, row, patient, &bytes)
}

fn open_opt(
    dek: &DataKey,
    r: &AnyRow,
    table: &str,
    col: &str,
    row: &str,
    patient: PatientId,
) -> Result<Option<Vec<u8>>> {
    let blob: Option<Vec<u8>> = r.try_get(col)?;
    blob.map(|b| dek.open(&field_ad(table, col, row, &patient.to_string()), &b))
        .transpose()
        .map_err(StoreError::from)
}

fn open_text(
    dek: &DataKey,
    r: &AnyRow,
    table: &str,
    col: &str,
    row: &str,
    patient: PatientId,
) -> Result<String> {
    let bytes = open_opt(dek, r, table, col, row, patient)?
        .ok_or_else(|| StoreError::Corrupt(format!("{table}.{col} is empty")))?;
    bytes_to_string(bytes)
}

fn open_json<T: DeserializeOwned>(
    dek: &DataKey,
    r: &AnyRow,
    table: &str,
    col: &str,
    row: &str,
    patient: PatientId,
) -> Result<T> {
    open_json_opt(dek, r, table, col, row, patient)?
        .ok_or_else(|| StoreError::Corrupt(format!("{table}.{col} is empty")))
}

fn open_json_opt<T: DeserializeOwned>(
    dek: &DataKey,
    r: &AnyRow,
    table: &str,
    col: &str,
    row: &str,
    patient: PatientId,
) -> Result<Option<T>> {
    open_opt(dek, r, table, col, row, patient)?
        .map(|b| {
            serde_json::from_slice(&b)
                .map_err(|e| StoreError::Corrupt(format!("{table}.{col}: {e}")))
        })
        .transpose()
}

fn bytes_to_string(b: Vec<u8>) -> Result<String> {
    String::from_utf8(b).map_err(|_| StoreError::Corrupt("text is not UTF-8".into()))
}

fn constraint_to_conflict(e: sqlx::Error, what: &str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(format!("{what} already exists"))
        }
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            StoreError::Invalid(format!("{what} refers to something that does not exist"))
        }
        _ => StoreError::Database(e),
    }
}

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> Backend {
        self.backend
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT COUNT(*) AS n FROM audit_head")
            .fetch_one(&self.pool)
            .await?;
        Ok(())
    }

    async fn create_user(&self, actor: &Actor, new: NewUser) -> Result<User> {
        let id = UserId::from_uuid(new_id());
        let at = now_ms();
        let (mut tx, slot) = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO users (id, username, role, password_hash, created_at, disabled) \
             VALUES ($1, $2, $3, $4, $5, 0)",
        )
        .bind(id.to_string())
        .bind(new.username.as_str().to_string())
        .bind(new.role.as_str())
        .bind(new.password_hash)
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(|e| constraint_to_conflict(e, &format!("a user named {}", new.username)))?;
        let patient = (new.role == Role::Patient).then(|| PatientId::from_user(id));
        if let Some(p) = patient {
            let master = self.master();
            let wrapped = DataKey::generate().wrap(&master, &p.to_string())?;
            sqlx::query(
                "INSERT INTO patient_keys (patient_id, wrapped_key, master_key_id, created_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(p.to_string())
            .bind(wrapped)
            .bind(master.id())
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        let detail = format!("user={id} role={}", new.role);
        self.commit_audited(
            tx,
            slot,
            actor,
            AuditAction::UserCreated,
            patient,
            Some(detail),
        )
        .await?;
        Ok(User {
            id,
            username: new.username,
            role: new.role,
            created_at_ms: at,
            disabled: false,
        })
    }

    async fn user(&self, id: UserId) -> Result<Option<User>> {
        let mut conn = self.pool.acquire().await?;
        self.read_user(&mut conn, id).await
    }

    async fn user_credentials(&self, username: &Username) -> Result<Option<(User, String)>> {
        let row = sqlx::query(
            "SELECT id, username, role, created_at, disabled, password_hash FROM users WHERE username = $1",
        )
        .bind(username.as_str().to_string())
        .fetch_optional(&self.pool)
        .await?;
        match row {
            None => Ok(None),
            Some(r) => Ok(Some((user_from_row(&r)?, r.try_get("password_hash")?))),
        }
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        let rows = sqlx::query(&format!("{USER_SELECT} ORDER BY role, username"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(user_from_row).collect()
    }

    async fn assign_care_team(
        &self,
        actor: &Actor,
        clinician: UserId,
        patient: PatientId,
    ) -> Result<()> {
        let (mut tx, slot) = self.begin_write().await?;
        let role = self
            .read_user(&mut tx, clinician)
            .await?
            .ok_or_else(|| StoreError::not_found(format!("clinician {clinician}")))?
            .role;
        if role != Role::Clinician {
            return Err(StoreError::Invalid(format!(
                "user {clinician} is a {role}, not a clinician"
            )));
        }
        self.require_patient(&mut tx, patient).await?;
        sqlx::query(
            "INSERT INTO care_team (clinician_id, patient_id, assigned_at, assigned_by) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (clinician_id, patient_id) DO NOTHING",
        )
        .bind(clinician.to_string())
        .bind(patient.to_string())
        .bind(now_ms())
        .bind(actor.id.clone())
        .execute(&mut *tx)
        .await?;
        self.commit_audited(
            tx,
            slot,
            actor,
            AuditAction::TeamAssigned,
            Some(patient),
            Some(format!("clinician={clinician}")),
        )
        .await
    }

    async fn care_team(&self, patient: PatientId) -> Result<Vec<UserId>> {
        let mut conn = self.pool.acquire().await?;
        self.read_care_team(&mut conn, patient).await
    }

    async fn caseload(&self, clinician: UserId) -> Result<Vec<PatientId>> {
        let rows = sqlx::query(
            "SELECT patient_id FROM care_team WHERE clinician_id = $1 ORDER BY assigned_at, patient_id",
        )
        .bind(clinician.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| parse_col(r, "patient_id")).collect()
    }

    async fn is_on_care_team(&self, clinician: UserId, patient: PatientId) -> Result<bool> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM care_team WHERE clinician_id = $1 AND patient_id = $2",
        )
        .bind(clinician.to_string())
        .bind(patient.to_string())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    async fn record_consent(
        &self,
        actor: &Actor,
        patient: PatientId,
        kind: ConsentKind,
        granted: bool,
    ) -> Result<()> {
        let (mut tx, slot) = self.begin_write().await?;
        self.require_patient(&mut tx, patient).await?;
        sqlx::query(
            "INSERT INTO consents (id, patient_id, kind, granted, recorded_at, recorded_by, audit_seq) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(new_id().to_string())
        .bind(patient.to_string())
        .bind(kind.as_str())
        .bind(i64::from(granted))
        .bind(now_ms())
        .bind(actor.id.clone())
        .bind(slot.seq)
        .execute(&mut *tx)
        .await?;
        self.commit_audited(
            tx,
            slot,
            actor,
            AuditAction::ConsentRecorded,
            Some(patient),
            Some(format!("kind={kind} granted={granted}")),
        )
        .await
    }

    async fn consents(&self, patient: PatientId) -> Result<Vec<Consent>> {
        let mut conn = self.pool.acquire().await?;
        self.read_consents(&mut conn, patient).await
    }

    async fn create_conversation(
        &self,
        actor: &Actor,
        patient: PatientId,
    ) -> Result<ConversationId> {
        let id = ConversationId::from_uuid(new_id());
        let (mut tx, slot) = self.begin_write().await?;
        self.require_patient(&mut tx, patient).await?;
        sqlx::query("INSERT INTO conversations (id, patient_id, started_at) VALUES ($1, $2, $3)")
            .bind(id.to_string())
            .bind(patient.to_string())
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        self.commit_audited(
            tx,
            slot,
            actor,
            AuditAction::ConversationCreated,
            Some(patient),
            Some(format!("conversation={id}")),
        )
        .await?;
        Ok(id)
    }

    async fn conversations(&self, patient: PatientId) -> Result<Vec<Conversation>> {
        let mut conn = self.pool.acquire().await?;
        self.read_conversations(&mut conn, patient).await
    }

    async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>> {
        let row = sqlx::query("SELECT patient_id, started_at FROM conversations WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(Conversation {
                id,
                patient: parse_col(&r, "patient_id")?,
                started_at_ms: r.try_get("started_at")?,
            })
        })
        .transpose()
    }

    async fn append_message(&self, actor: &Actor, new: NewMessage) -> Result<Message> {
        let (mut tx, slot) = self.begin_write().await?;
        let (patient, dek) = self.conversation_key(&mut tx, new.conversation).await?;
        let seq: i64 = sqlx::query(
            "SELECT COALESCE(MAX(seq), 0) + 1 AS next FROM messages WHERE conversation_id = $1",
        )
        .bind(new.conversation.to_string())
        .fetch_one(&mut *tx)
        .await?
        .try_get("next")?;
        let message = self
            .insert_message(&mut tx, &dek, patient, seq, new)
            .await?;
        self.commit_audited(
            tx,
            slot,
            actor,
            AuditAction::MessageWritten,
            Some(patient),
            Some(format!(
                "conversation={} message={}",
                message.conversation, message.id
            )),
        )
        .await?;
        Ok(message)
    }

    async fn messages(&self, actor: &Actor, conversation: ConversationId) -> Result<Vec<Message>> {
        let (mut tx, slot) = self.begin_write().await?;
        let (patient, dek) = self.conversation_key(&mut tx, conversation).await?;
        let messages = self
            .read_messages(&mut tx, &dek, patient, conversation)
            .await?;
        self.commit_audited(
            tx,
            slot,
            actor,
            AuditAction::MessagesRead,
            Some(patient),
            Some(format!(
                "conversation={conversation} count={}",
                messages.len()
            )),
        )
        .await?;
        Ok(messages)
    }

    async fn open_turn(
        &self,
        actor: &Actor,
        conversation: ConversationId,
        text: &str,
        usage_since_ms: i64,
    ) -> Result<TurnContext> {
        let (mut tx, slot) = self.begin_write_n(2).await?;
        let (patient, dek) = self.conversation_key(&mut tx, conversation).await?;
        let messages = self
            .read_messages(&mut tx, &dek, patient, conversation)
            .await?;
        let care_plan = self.read_care_plan(&mut tx, &dek, patient).await?;
        let summary = self
            .read_latest_summary(&mut tx, &dek, patient, conversation)
            .await?;
        let next_seq = messages.last().map_or(1, |m| m.seq + 1);
        let patient_message = self
            .insert_message(
                &mut tx,
                &dek,
                patient,
                next_seq,
                NewMessage {
                    conversation,
                    role: MessageRole::Patient,
                    text: text.to_string(),
                    provenance: None,
                },
            )
            .await?;
        let (usage, ai_consent) = self.read_usage(&mut tx, patient, usage_since_ms).await?;
        self.commit_audited_many(
            tx,
            slot,
            actor,
            vec![
                (
                    AuditAction::MessagesRead,
                    Some(patient),
                    Some(format!(
                        "conversation={conversation} count={} with=care_plan,summary",
                        messages.len()
                    )),
                ),
                (
                    AuditAction::MessageWritten,
                    Some(patient),
                    Some(format!(
                        "conversation={conversation} message={}",
                        patient_message.id
                    )),
                ),
            ],
        )
        .await?;
        Ok(TurnContext {
            patient,
            messages,
            care_plan,
            summary,
            ai_consent,
            patient_message,
            usage,
        })
    }

    async fn record_nudge(
        &self,
        actor: &Actor,
        patient: PatientId,
        reasons: &[String],
    ) -> Result<()> {
        let (mut tx, slot) = self.begin_write().await?;
        self.require_patient(&mut tx, patient).await?;
        let joined = reasons.join(",");
        sqlx::query(
            "INSERT INTO companion_nudges (id, patient_id, reasons, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(new_id().to_string())
        .bind(patient.to_string())
        .bind(joined.clone())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        self.commit_audited(
            tx,
            slot,
            actor,
            AuditAction::NudgeGiven,
            Some(patient),
            Some(format!("reasons={joined}")),
        )
        .await
    }

    async fn nudges(&self, actor: &Actor, patient: PatientId) -> Result<Vec<NudgeRecord>> {
        self.audited_read(
            actor,
            patient,
            AuditAction::NudgesRead,
            async |conn, _dek| self.read_nudges(conn, patient).await,
        )
        .await
    }

    async fn add_summary(&self, actor: &Actor, new: NewSummary) -> Result<SummaryId> {
        let id = SummaryId::from_uuid(new_id());
        let (mut tx, slot) = self.begin_write().await?;
        let (patient, dek) = self.conversation_key(&mut tx, new.conversation).await?;
        let row_id = id.to_string();
        let body = seal(
            &dek,
            "summaries",
            "body",
            &row_id,
            patient,
            new.text.as_bytes(),
        )?;
        let provenance = new
            .provenance
            .as_ref()
            .map(|p| seal_json(&dek, "summaries", "provenance", &row_id, patient, p))
            .transpose()?;
        sqlx::query(
            "INSERT INTO summaries (id, conversation_id, patient_id, first_message_id, last_message_id, body, provenance, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(row_id)
        .bind(new.conversation.to_string())
        .bind(patient.to_string())
        .bind(new.first_message.to_string())
        .bind(new.last_message.to_string())
        .bind(body)
        .bind(provenance)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        self.commit_audited(
            tx,
            slot,
            actor,
            AuditAction::SummaryWritten,
            Some(patient),
            Some(format!("summary={id}")),
        )
        .await?;
        Ok(id)
    }

    async fn summaries(&self, actor: &Actor, patient: PatientId) -> Result<Vec<Summary>> {
        self.audited_read(
            actor,
            patient,
            AuditAction::SummariesRead,
            async |conn, dek| self.read_summaries(conn, dek, patient).await,
        )
        .await
    }

    async fn record_risk_event(&self, actor: &Actor, new: NewRiskEvent) -> Result<RiskEventId> {
        const LEVELS: [&str; 5] = ["none", "low", "moderate", "high", "imminent"];
        if !LEVELS.contains(&new.level.as_str()) {
            return Err(StoreError::Invalid(format!(
                "unknown risk level {:?}; expected one of {LEVELS:?}",
                new.level
            )));
        }
        if new
            .categories
            .iter()
            .any(|c| c.contains(',') || c.is_empty())
        {
            return Err(StoreError::Invalid(
                "risk categories must be non-empty names without commas".into(),
            ));
        }
        let id = RiskEventId::from_uuid(new_id());
        let (mut tx, slot) = self.begin_write().await?;
        self.require_patient(&mut tx, new.patient).await?;
        let dek = self.data_key(&mut tx, new.patient).await?;
        let row_id = id.to_string();
        let evidence = seal_json(
            &dek,
            "risk_events",
            "evidence",
            &row_id,
            new.patient,
            &new.evidence,
        )?;
        sqlx::query(
            "INSERT INTO risk_events (id, patient_id, conversation_id, message_id, source, level, categories, evidence, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(row_id)
        .bind(new.patient.to_string())
        .bind(new.conversation.map(|c| c.to_string()))
        .bind(new.message.map(|m| m.to_string()))
        .bind(new.source.clone())
        .bind(new.level.clone())
        .bind(new.categories.join(","))
        .bind(evidence)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        self.commit_audited(
            tx,
            slot,
            actor,
            AuditAction::RiskEventRecorded,
            Some(new.patient),
            Some(format!("risk_event={id} level={}", new.level)),
        )
        .await?;
        Ok(id)
    }

    async fn acknowledge_risk_event(
        &self,
        actor: &Actor,
        id: RiskEventId,
        note: Option<String>,
    ) -> Result<()> {
        let (mut tx, slot) = self.begin_write().await?;
        let row = sqlx::query("SELECT patient_id FROM risk_events WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::not_found(format!("risk event {id}")))?;
        let patient: PatientId = parse_col(&row, "patient_id")?;
        let dek = self.data_key(&mut tx, patient).await?;
        let sealed = note
            .as_ref()
            .map(|n| {
                seal(
                    &dek,
                    "risk_acknowledgements",
                    "note",
                    &id.to_string(),
                    patient,
                    n.as_bytes(),
                )
            })
            .transpose()?;
        sqlx::query(
            "INSERT INTO risk_acknowledgements (risk_event_id, clinician_id, acknowledged_at, note) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(id.to_string())
        .bind(actor.id.clone())
        .bind(now_ms())
        .bind(sealed)
        .execute(&mut *tx)
        .await
        .map_err(|e| constraint_to_conflict(e, &format!("an acknowledgement of risk event {id}")))?;
        self.commit_audited(
            tx,
            slot,
            actor,
            AuditAction::RiskEventAcknowledged,
            Some(patient),
            Some(format!("risk_event={id}")),
        )
        .await
    }

    async fn risk_events(&self, actor: &Actor, patient: PatientId) -> Result<Vec<RiskEvent>> {
        self.audited_read(
            actor,
            patient,
            AuditAction::RiskEventsRead,
            async |conn, dek| self.read_risk_events(conn, dek, patient).await,
        )
        .await
    }

    async fn set_on_call(&self, actor: &Actor, clinician: UserId, on_call: bool) -> Result<()> {
        let (mut tx, slot) = self.begin_write().await?;
        let role: Option<String> = sqlx::query("SELECT role FROM users WHERE id = $1")
            .bind(clinician.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get("role"))
            .transpose()?;
        match role.as_deref() {
            None => return Err(StoreError::not_found(format!("user {clinician}"))),
            Some("clinician") => {}
            Some(_) => return Err(StoreError::Invalid("only clinicians can be on call".into())),
        }
        if on_call {
            sqlx::query(
                "INSERT INTO on_call (clinician_id, since, set_by) VALUES ($1, $2, $3) \
                 ON CONFLICT (clinician_id) DO NOTHING",
            )
            .bind(clinician.to_string())
            .bind(now_ms())
            .bind(actor.id.clone())
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query("DELETE FROM on_call WHERE clinician_id = $1")
                .bind(clinician.to_string())
                .execute(&mut *tx)
                .await?;
        }
        self.commit_audited(
            tx,
            slot,
            actor,
            AuditAction::OnCallChanged,
            None,
            Some(format!("clinician={clinician} on_call={on_call}")),
        )
        .await
    }

    async fn on_call(&self) -> Result<Vec<UserId>> {
        let rows = sqlx::query(
            "SELECT o.clinician_id FROM on_call o JOIN users u ON u.id = o.clinician_id \
             WHERE u.disabled = 0 ORDER BY o.since, o.clinician_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| parse_col(r, "clinician_id")).collect()
    }

    async fn unescalated_alerts(
        &self,
        levels: &[&str],
        created_before_ms: i64,
    ) -> Result<Vec<AlertHead>> {
        if levels.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (0..levels.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT e.id, e.patient_id, e.level, e.categories, e.created_at, e.escalated_at \
             FROM risk_events e LEFT JOIN risk_acknowledgements a ON a.risk_event_id = e.id \
             WHERE e.escalated_at IS NULL AND a.risk_event_id IS NULL AND e.created_at <= $1 \
               AND e.level IN ({}) ORDER BY e.created_at, e.id",
            placeholders.join(", ")
        );
        let mut q = sqlx::query(&sql).bind(created_before_ms);
        for l in levels {
            q = q.bind(*l);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(alert_head).collect()
    }

    async fn escalate_risk_event(
        &self,
        actor: &Actor,
        id: RiskEventId,
        to: &[UserId],
        at_ms: i64,
    ) -> Result<bool> {
        let (mut tx, slot) = self.begin_write().await?;
        // The claim: only one worker's UPDATE finds the event still open.
        let claimed = sqlx::query(
            "UPDATE risk_events SET escalated_at = $1 WHERE id = $2 AND escalated_at IS NULL \
             AND NOT EXISTS (SELECT 1 FROM risk_acknowledgements a WHERE a.risk_event_id = $2)",
        )
        .bind(at_ms)
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if claimed != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        let row = sqlx::query("SELECT patient_id FROM risk_events WHERE id = $1")
            .bind(id.to_string())
            .fetch_one(&mut *tx)
            .await?;
        let patient: PatientId = parse_col(&row, "patient_id")?;
        for clinician in to {
            sqlx::query(
                "INSERT INTO risk_escalations (risk_event_id, clinician_id, patient_id, escalated_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (risk_event_id, clinician_id) DO NOTHING",
            )
            .bind(id.to_string())
            .bind(clinician.to_string())
            .bind(patient.to_string())
            .bind(at_ms)
            .execute(&mut *tx)
            .await?;
        }
        let to_list: Vec<String> = to.iter().map(ToString::to_string).collect();
        self.commit_audited(
            tx,
            slot,
            actor,
            AuditAction::AlertEscalated,
            Some(patient),
            Some(format!("risk_event={id} to={}", to_list.join(","))),
        )
        .await?;
        Ok(true)
    }

    async fn escalated_to(&self, clinician: UserId) -> Result<Vec<AlertHead>> {
        let rows = sqlx::query(
            "SELECT e.id, e.patient_id, e.level, e.categories, e.created_at, e.escalated_at \
             FROM risk_escalations x JOIN risk_events e ON e.id = x.risk_event_id \
             LEFT JOIN risk_acknowledgements a ON a.risk_event_id = e.id \
             WHERE x.clinician_id = $1 AND a.risk_event_id IS NULL \
             ORDER BY e.created_at DESC, e.id",
        )
        .bind(clinician.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(alert_head).collect()
    }

    async fn has_escalation(
        &self,
        clinician: UserId,
        patient: PatientId,
        since_ms: i64,
    ) -> Result<bool> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM risk_escalations x \
             LEFT JOIN risk_acknowledgements a ON a.risk_event_id = x.risk_event_id \
             WHERE x.clinician_id = $1 AND x.patient_id = $2 \
               AND (a.risk_event_id IS NULL OR x.escalated_at >= $3)",
        )
        .bind(clinician.to_string())
        .bind(patient.to_string())
        .bind(since_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    async fn risk_event_patient(&self, id: RiskEventId) -> Result<Option<PatientId>> {
        let row = sqlx::query("SELECT patient_id FROM risk_events WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| parse_col(&r, "patient_id")).transpose()
    }

    async fn record_assessment(&self, actor: &Actor, new: NewAssessment) -> Result<AssessmentId> {
        let id = AssessmentId::from_uuid(new_id());
        let (mut tx, slot) = self.begin_write().await?;
        self.require_patient(&mut tx, new.patient).await?;
        let dek = self.data_key(&mut tx, new.patient).await?;
        let row_id = id.to_string();
        let answers = seal_json(
            &dek,
            "assessments",
            "answers",
            &row_id,
            new.patient,
            &new.answers,
        )?;
        sqlx::query(
            "INSERT INTO assessments (id, patient_id, instrument, answers, total, band, completed_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(row_id)
        .bind(new.patient.to_string())
        .bind(new.instrument.clone())
        .bind(answers)
        .bind(new.total)
        .bind(new.band.clone())
        .bind(new.completed_at_ms)
        .execute(&mut *tx)
        .await?;
        self.commit_audited(
            tx,
            slot,
            actor,
            AuditAction::AssessmentRecorded,
            Some(new.patient),
            Some(format!("assessment={id} instrument={}", new.instrument)),
        )
        .await?;
        Ok(id)
    }

    async fn assessments(&self, actor: &Actor, patient: PatientId) -> Result<Vec<Assessment>> {
        self.audited_read(
            actor,
            patient,
            AuditAction::AssessmentsRead,
            async |conn, dek| self.read_assessments(conn, dek, patient).await,
        )
        .await
    }

    async fn set_measure_schedule(
        &self,
        actor: &Actor,
        patient: PatientId,
        schedule: MeasureScheduleRow,
    ) -> Result<()> {
        if schedule.every_days <= 0 || schedule.grace_days < 0 {
            return Err(StoreError::Invalid(
                "a measure schedule needs every_days > 0 and grace_days >= 0".into(),
            ));
        }
        let (mut tx, slot) = self.begin_write().await?;
        self.require_patient(&mut tx, patient).await?;
        sqlx::query(
            "INSERT INTO measure_schedules (patient_id, instrument, every_days, grace_days, start_at, set_by) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (patient_id, instrument) DO UPDATE SET \
             every_days = excluded.every_days, grace_days = excluded.grace_days, \
             start_at = excluded.start_at, set_by = excluded.set_by",
        )
        .bind(patient.to_string())
        .bind(schedule.instrument.clone())
        .bind(schedule.every_days)
        .bind(schedule.grace_days)
        .bind(schedule.start_at_ms)
        .bind(actor.id.clone())
        .execute(&mut *tx)
        .await?;
        self.commit_audited(
            tx,
            slot,
            actor,
            AuditAction::CarePlanWritten,
            Some(patient),
            Some(format!(
                "measure_schedule instrument={} every_days={}",
                schedule.instrument, schedule.every_days
            )),
        )
        .await
    }

    async fn measure_schedules(&self, patient: PatientId) -> Result<Vec<MeasureScheduleRow>> {
        let mut conn = self.pool.acquire().await?;
        self.read_schedules(&mut conn, patient).await
    }

    async fn add_care_plan_item(
        &self,
        actor: &Actor,
        new: NewCarePlanItem,
    ) -> Result<CarePlanItemId> {
        let id = CarePlanItemId::from_uuid(new_id());
        let at = now_ms();
        let (mut tx, slot) = self.begin_write().await?;
        self.require_patient(&mut tx, new.patient).await?;
        let dek = self.data_key(&mut tx, new.patient).await?;
        let row_id = id.to_string();
        let body = seal(
            &dek,
            "care_plan_items",
            "body",
            &row_id,
            new.patient,
            new.text.as_bytes(),
        )?;
        sqlx::query(
            "INSERT INTO care_plan_items (id, patient_id, kind, body, status, due_at, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 'active', $5, $6, $7, $7)",
        )
        .bind(row_id)
        .bind(new.patient.to_string())
        .bind(new.kind.as_str())
        .bind(body)
        .bind(new.due_at_ms)
        .bind(actor.id.clone())
        .bind(at)
        .execute(&mut *tx)
        .await?;
        self.commit_audited(
            tx,
            slot,
            actor,
            AuditAction::CarePlanWritten,
            Some(new.patient),
            Some(format!("item={id} kind={}", new.kind)),
        )
        .await?;
        Ok(id)
    }

    async fn set_ai_preferences(
        &self,
        actor: &Actor,
        patient: PatientId,
        prefs: serde_json::Value,
    ) -> Result<()> {
        let (mut tx, slot) = self.begin_write().await?;
        self.require_patient(&mut tx, patient).await?;
        let dek = self.data_key(&mut tx, patient).await?;
        let body = seal_json(
            &dek,
            "ai_preferences",
            "body",
            &patient.to_string(),
            patient,
            &prefs,
        )?;
        sqlx::query(
            "INSERT INTO ai_preferences (patient_id, body, updated_by, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (patient_id) DO UPDATE SET body = excluded.body, updated_by = excluded.updated_by, \
             updated_at = excluded.updated_at",
        )
        .bind(patient.to_string())
        .bind(body)
        .bind(actor.id.clone())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        self.commit_audited(
            tx,
            slot,
            actor,
            AuditAction::CarePlanWritten,
            Some(patient),
            Some("ai_preferences".into()),
        )
        .await
    }

    async fn care_plan(&self, actor: &Actor, patient: PatientId) -> Result<CarePlan> {
        self.audited_read(
            actor,
            patient,
            AuditAction::CarePlanRead,
            async |conn, dek| self.read_care_plan(conn, dek, patient).await,
        )
        .await
    }

    async fn save_exercise(&self, actor: &Actor, save: SaveExercise) -> Result<ExerciseId> {
        let at = now_ms();
        let (mut tx, slot) = self.begin_write().await?;
        self.require_patient(&mut tx, save.patient).await?;
        let dek = self.data_key(&mut tx, save.patient).await?;
        let id = match save.id {
            Some(id) => {
                let owner = sqlx::query("SELECT patient_id FROM exercise_sessions WHERE id = $1")
                    .bind(id.to_string())
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| StoreError::not_found(format!("exercise {id}")))?;
                if parse_col::<PatientId>(&owner, "patient_id")? != save.patient {
                    return Err(StoreError::not_found(format!("exercise {id}")));
                }
                let state = seal_json(
                    &dek,
                    "exercise_sessions",
                    "state",
                    &id.to_string(),
                    save.patient,
                    &save.state,
                )?;
                sqlx::query(
                    "UPDATE exercise_sessions SET state = $1, completed = $2, updated_at = $3 WHERE id = $4",
                )
                .bind(state)
                .bind(i64::from(save.completed))
                .bind(at)
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
                id
            }
            None => {
                let id = ExerciseId::from_uuid(new_id());
                let state = seal_json(
                    &dek,
                    "exercise_sessions",
                    "state",
                    &id.to_string(),
                    save.patient,
                    &save.state,
                )?;
                sqlx::query(
                    "INSERT INTO exercise_sessions (id, patient_id, kind, state, completed, started_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $6)",
                )
                .bind(id.to_string())
                .bind(save.patient.to_string())
                .bind(save.kind.clone())
                .bind(state)
                .bind(i64::from(save.completed))
                .bind(at)
                .execute(&mut *tx)
                .await?;
                id
            }
        };
        self.commit_audited(
            tx,
            slot,
            actor,
            AuditAction::ExerciseSaved,
            Some(save.patient),
            Some(format!(
                "exercise={id} kind={} completed={}",
                save.kind, save.completed
            )),
        )
        .await?;
        Ok(id)
    }

    async fn exercises(&self, actor: &Actor, patient: PatientId) -> Result<Vec<ExerciseRecord>> {
        self.audited_read(
            actor,
            patient,
            AuditAction::ExercisesRead,
            async |conn, dek| self.read_exercises(conn, dek, patient).await,
        )
        .await
    }

    async fn schedule_checkin(&self, actor: &Actor, new: NewCheckin) -> Result<CheckinId> {
        let id = CheckinId::from_uuid(new_id());
        let (mut tx, slot) = self.begin_write().await?;
        self.require_patient(&mut tx, new.patient).await?;
        let dek = self.data_key(&mut tx, new.patient).await?;
        let row_id = id.to_string();
        let prompt = new
            .prompt
            .as_ref()
            .map(|p| {
                seal(
                    &dek,
                    "checkins",
                    "prompt",
                    &row_id,
                    new.patient,
                    p.as_bytes(),
                )
            })
            .transpose()?;
        sqlx::query(
            "INSERT INTO checkins (id, patient_id, clinician_id, due_at, status, prompt, created_at) \
             VALUES ($1, $2, $3, $4, 'scheduled', $5, $6)",
        )
        .bind(row_id)
        .bind(new.patient.to_string())
        .bind(new.clinician.map(|c| c.to_string()))
        .bind(new.due_at_ms)
        .bind(prompt)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        self.commit_audited(
            tx,
            slot,
            actor,
            AuditAction::CheckinScheduled,
            Some(new.patient),
            Some(format!("checkin={id}")),
        )
        .await?;
        Ok(id)
    }

    async fn claim_due_checkins(
        &self,
        worker: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<Checkin>> {
        // The claim is one UPDATE, so two instances racing for the same rows cannot both
        // win: on PostgreSQL the second waits for the first's row locks and then re-checks
        // the WHERE clause; on SQLite writers are serialised.
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "UPDATE checkins SET claimed_by = $1, claimed_until = $2 \
             WHERE id IN (SELECT id FROM checkins WHERE status = 'scheduled' AND due_at <= $3 \
                          AND (claimed_until IS NULL OR claimed_until < $3) ORDER BY due_at LIMIT $4) \
             AND (claimed_until IS NULL OR claimed_until < $3) \
             RETURNING id, patient_id, clinician_id, due_at, status, prompt",
        )
        .bind(worker.to_string())
        .bind(now_ms.saturating_add(lease_ms))
        .bind(now_ms)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let patient: PatientId = parse_col(r, "patient_id")?;
            let dek = self.data_key(&mut tx, patient).await?;
            out.push(checkin_from_row(r, &dek, patient)?);
        }
        tx.commit().await?;
        out.sort_by_key(|c| c.due_at_ms);
        Ok(out)
    }

    async fn create_session(&self, new: NewSession) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, last_seen_at, expires_at, mfa_verified) \
             VALUES ($1, $2, $3, $4, $4, $5, 0)",
        )
        .bind(new.token_hash)
        .bind(new.user.to_string())
        .bind(new.csrf_token)
        .bind(new.created_at_ms)
        .bind(new.expires_at_ms)
        .execute(&self.pool)
        .await
        .map_err(|e| constraint_to_conflict(e, "a session"))?;
        Ok(())
    }

    async fn session(&self, token_hash: &str) -> Result<Option<SessionRecord>> {
        let row = sqlx::query(
            "SELECT token_hash, user_id, csrf_token, created_at, last_seen_at, expires_at, mfa_verified \
             FROM sessions WHERE token_hash = $1",
        )
        .bind(token_hash.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(SessionRecord {
                token_hash: r.try_get("token_hash")?,
                user: parse_col(&r, "user_id")?,
                csrf_token: r.try_get("csrf_token")?,
                created_at_ms: r.try_get("created_at")?,
                last_seen_at_ms: r.try_get("last_seen_at")?,
                expires_at_ms: r.try_get("expires_at")?,
                mfa_verified: r.try_get::<i64, _>("mfa_verified")? != 0,
            })
        })
        .transpose()
    }

    async fn touch_session(&self, token_hash: &str, now_ms: i64) -> Result<()> {
        sqlx::query(
            "UPDATE sessions SET last_seen_at = $1 WHERE token_hash = $2 AND last_seen_at < $1",
        )
        .bind(now_ms)
        .bind(token_hash.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn mark_session_mfa(&self, token_hash: &str) -> Result<()> {
        sqlx::query("UPDATE sessions SET mfa_verified = 1 WHERE token_hash = $1")
            .bind(token_hash.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_user_sessions(&self, user: UserId) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(user.to_string())
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    async fn login_state(&self, username: &str) -> Result<LoginState> {
        let row = sqlx::query(
            "SELECT failures, last_failure_at, locked_until FROM login_attempts WHERE username = $1",
        )
        .bind(username.to_string())
        .fetch_optional(&self.pool)
        .await?;
        match row {
            None => Ok(LoginState::default()),
            Some(r) => Ok(LoginState {
                failures: r.try_get("failures")?,
                last_failure_at_ms: Some(r.try_get("last_failure_at")?),
                locked_until_ms: r.try_get("locked_until")?,
            }),
        }
    }

    async fn record_login_failure(&self, username: &str, at_ms: i64) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO login_attempts (username, failures, last_failure_at) VALUES ($1, 1, $2) \
             ON CONFLICT (username) DO UPDATE SET failures = login_attempts.failures + 1, \
             last_failure_at = excluded.last_failure_at RETURNING failures",
        )
        .bind(username.to_string())
        .bind(at_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("failures")?)
    }

    async fn lock_login(&self, username: &str, until_ms: i64) -> Result<()> {
        sqlx::query("UPDATE login_attempts SET locked_until = $1 WHERE username = $2")
            .bind(until_ms)
            .bind(username.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn clear_login_failures(&self, username: &str) -> Result<()> {
        sqlx::query("DELETE FROM login_attempts WHERE username = $1")
            .bind(username.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn set_user_disabled(&self, actor: &Actor, user: UserId, disabled: bool) -> Result<()> {
        let (mut tx, slot) = self.begin_write().await?;
        let n = sqlx::query("UPDATE users SET disabled = $1 WHERE id = $2")
            .bind(i64::from(disabled))
            .bind(user.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::not_found(format!("user {user}")));
        }
        if disabled {
            sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(user.to_string())
                .execute(&mut *tx)
                .await?;
        }
        self.commit_audited(
            tx,
            slot,
            actor,
            AuditAction::UserDisabled,
            None,
            Some(format!("user={user} disabled={disabled}")),
        )
        .await
    }

    async fn set_totp_secret(&self, actor: &Actor, user: UserId, secret: &[u8]) -> Result<()> {
        let (mut tx, slot) = self.begin_write().await?;
        let confirmed = sqlx::query("SELECT confirmed FROM totp_secrets WHERE user_id = $1")
            .bind(user.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(r) = confirmed {
            if r.try_get::<i64, _>("confirmed")? != 0 {
                return Err(StoreError::Conflict(
                    "two-factor sign-in is already set up for this account".into(),
                ));
            }
        }
        let uid = user.to_string();
        let master = self.master();
        let key = DataKey::generate();
        let wrapped = key.wrap(&master, &uid)?;
        let sealed = key.seal(&field_ad("totp_secrets", "secret", &uid, &uid), secret)?;
        sqlx::query(
            "INSERT INTO totp_secrets (user_id, wrapped_key, master_key_id, secret, confirmed, last_step, created_at) \
             VALUES ($1, $2, $3, $4, 0, 0, $5) ON CONFLICT (user_id) DO UPDATE SET \
             wrapped_key = excluded.wrapped_key, master_key_id = excluded.master_key_id, \
             secret = excluded.secret, created_at = excluded.created_at",
        )
        .bind(uid)
        .bind(wrapped)
        .bind(master.id())
        .bind(sealed)
        .bind(now_ms())
        .execute(&mut *tx)
        .await
        .map_err(|e| constraint_to_conflict(e, &format!("a TOTP secret for user {user}")))?;
        self.commit_audited(
            tx,
            slot,
            actor,
            AuditAction::TotpEnrolled,
            None,
            Some(format!("user={user} step=secret")),
        )
        .await
    }

    async fn confirm_totp(&self, actor: &Actor, user: UserId) -> Result<()> {
        let (mut tx, slot) = self.begin_write().await?;
        let n = sqlx::query("UPDATE totp_secrets SET confirmed = 1 WHERE user_id = $1")
            .bind(user.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::not_found(format!(
                "TOTP secret for user {user}"
            )));
        }
        self.commit_audited(
            tx,
            slot,
            actor,
            AuditAction::TotpEnrolled,
            None,
            Some(format!("user={user} step=confirmed")),
        )
        .await
    }

    async fn totp(&self, user: UserId) -> Result<Option<TotpRecord>> {
        let uid = user.to_string();
        let row = sqlx::query(
            "SELECT wrapped_key, master_key_id, secret, confirmed, last_step FROM totp_secrets WHERE user_id = $1",
        )
        .bind(uid.clone())
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let master = self.master();
        let stored: String = r.try_get("master_key_id")?;
        if stored != master.id() {
            return Err(StoreError::WrongMasterKey {
                given: master.id(),
                stored,
            });
        }
        let wrapped: Vec<u8> = r.try_get("wrapped_key")?;
        let key = DataKey::unwrap_from(&wrapped, &master, &uid)?;
        let sealed: Vec<u8> = r.try_get("secret")?;
        let secret = key.open(&field_ad("totp_secrets", "secret", &uid, &uid), &sealed)?;
        Ok(Some(TotpRecord {
            secret,
            confirmed: r.try_get::<i64, _>("confirmed")? != 0,
            last_step: r.try_get("last_step")?,
        }))
    }

    async fn use_totp_step(&self, user: UserId, step: i64) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE totp_secrets SET last_step = $1 WHERE user_id = $2 AND last_step < $1",
        )
        .bind(step)
        .bind(user.to_string())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn create_talk_request(
        &self,
        actor: &Actor,
        patient: PatientId,
        note: Option<String>,
        at_ms: i64,
    ) -> Result<TalkRequestId> {
        let id = TalkRequestId::from_uuid(new_id());
        let row_id = id.to_string();
        let (mut tx, slot) = self.begin_write().await?;
        self.require_patient(&mut tx, patient).await?;
        let dek = self.data_key(&mut tx, patient).await?;
        let sealed = note
            .as_ref()
            .map(|n| {
                seal(
                    &dek,
                    "talk_requests",
                    "note",
                    &row_id,
                    patient,
                    n.as_bytes(),
                )
            })
            .transpose()?;
        sqlx::query(
            "INSERT INTO talk_requests (id, patient_id, note, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(row_id)
        .bind(patient.to_string())
        .bind(sealed)
        .bind(at_ms)
        .execute(&mut *tx)
        .await?;
        self.commit_audited(
            tx,
            slot,
            actor,
            AuditAction::TalkRequested,
            Some(patient),
            Some(format!("request={id}")),
        )
        .await?;
        Ok(id)
    }

    async fn talk_requests(&self, actor: &Actor, patient: PatientId) -> Result<Vec<TalkRequest>> {
        let (mut tx, slot) = self.begin_write().await?;
        self.require_patient(&mut tx, patient).await?;
        let dek = self.data_key(&mut tx, patient).await?;
        let out = self.read_talk_requests(&mut tx, &dek, patient).await?;
        self.commit_audited(
            tx,
            slot,
            actor,
            AuditAction::TalkRequestsRead,
            Some(patient),
            None,
        )
        .await?;
        Ok(out)
    }

    async fn resolve_talk_request(
        &self,
        actor: &Actor,
        patient: PatientId,
        id: TalkRequestId,
        at_ms: i64,
    ) -> Result<()> {
        let (mut tx, slot) = self.begin_write().await?;
        let row =
            sqlx::query("SELECT resolved_at FROM talk_requests WHERE id = $1 AND patient_id = $2")
                .bind(id.to_string())
                .bind(patient.to_string())
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| StoreError::not_found(format!("talk request {id}")))?;
        if row.try_get::<Option<i64>, _>("resolved_at")?.is_some() {
            return Err(StoreError::Conflict(format!(
                "talk request {id} is already resolved"
            )));
        }
        sqlx::query("UPDATE talk_requests SET resolved_at = $1, resolved_by = $2 WHERE id = $3")
            .bind(at_ms)
            .bind(actor.id.clone())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        self.commit_audited(
            tx,
            slot,
            actor,
            AuditAction::TalkRequestResolved,
            Some(patient),
            Some(format!("request={id}")),
        )
        .await
    }

    async fn record_mood(&self, actor: &Actor, new: NewMood) -> Result<MoodId> {
        if new.rating > 10 {
            return Err(StoreError::Invalid("a mood rating is 0 to 10".into()));
        }
        let id = MoodId::from_uuid(new_id());
        let row_id = id.to_string();
        let (mut tx, slot) = self.begin_write().await?;
        self.require_patient(&mut tx, new.patient).await?;
        let dek = self.data_key(&mut tx, new.patient).await?;
        let body = seal_json(
            &dek,
            "mood_checkins",
            "body",
            &row_id,
            new.patient,
            &serde_json::json!({"rating": new.rating, "words": new.words}),
        )?;
        sqlx::query(
            "INSERT INTO mood_checkins (id, patient_id, body, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(row_id)
        .bind(new.patient.to_string())
        .bind(body)
        .bind(new.at_ms)
        .execute(&mut *tx)
        .await?;
        self.commit_audited(
            tx,
            slot,
            actor,
            AuditAction::MoodRecorded,
            Some(new.patient),
            Some(format!("mood={id}")),
        )
        .await?;
        Ok(id)
    }

    async fn moods(&self, actor: &Actor, patient: PatientId) -> Result<Vec<MoodEntry>> {
        let (mut tx, slot) = self.begin_write().await?;
        self.require_patient(&mut tx, patient).await?;
        let dek = self.data_key(&mut tx, patient).await?;
        let out = self.read_moods(&mut tx, &dek, patient).await?;
        self.commit_audited(tx, slot, actor, AuditAction::MoodsRead, Some(patient), None)
            .await?;
        Ok(out)
    }

    async fn last_patient_activity(&self, patient: PatientId) -> Result<Option<i64>> {
        let p = patient.to_string();
        let mut latest: Option<i64> = None;
        for sql in [
            "SELECT MAX(created_at) AS t FROM messages WHERE patient_id = $1 AND role = 'patient'",
            "SELECT MAX(created_at) AS t FROM mood_checkins WHERE patient_id = $1",
            "SELECT MAX(completed_at) AS t FROM assessments WHERE patient_id = $1",
        ] {
            let row = sqlx::query(sql)
                .bind(p.clone())
                .fetch_one(&self.pool)
                .await?;
            let t: Option<i64> = row.try_get("t")?;
            latest = latest.max(t);
        }
        Ok(latest)
    }

    async fn set_care_plan_item_status(
        &self,
        actor: &Actor,
        patient: PatientId,
        item: CarePlanItemId,
        status: &str,
    ) -> Result<()> {
        if !matches!(status, "active" | "done" | "removed") {
            return Err(StoreError::Invalid(format!(
                "unknown care plan item status {status:?}: use active, done or removed"
            )));
        }
        let (mut tx, slot) = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE care_plan_items SET status = $1, updated_at = $2 WHERE id = $3 AND patient_id = $4",
        )
        .bind(status.to_string())
        .bind(now_ms())
        .bind(item.to_string())
        .bind(patient.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::not_found(format!("care plan item {item}")));
        }
        self.commit_audited(
            tx,
            slot,
            actor,
            AuditAction::CarePlanWritten,
            Some(patient),
            Some(format!("item={item} status={status}")),
        )
        .await
    }

    async fn audit(&self, actor: &Actor, event: AuditEvent) -> Result<()> {
        let (tx, slot) = self.begin_write().await?;
        self.commit_audited(tx, slot, actor, event.action, event.patient, event.detail)
            .await
    }

    async fn audit_entries(&self, patient: Option<PatientId>) -> Result<Vec<AuditRecord>> {
        let mut conn = self.pool.acquire().await?;
        self.read_audit(&mut conn, patient).await
    }

    async fn verify_audit(&self) -> Result<AuditReport> {
        // One read transaction so the chain and its head are a consistent snapshot.
        let mut tx = self.pool.begin().await?;
        let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        let head_seq: i64 = head.try_get("seq")?;
        let head_hash: String = head.try_get("hash")?;
        let mut verifier = ChainVerifier::default();
        let mut after = 0i64;
        const PAGE: i64 = 1000;
        loop {
            let rows = sqlx::query(&format!(
                "{AUDIT_SELECT} WHERE seq > $1 ORDER BY seq LIMIT {PAGE}"
            ))
            .bind(after)
            .fetch_all(&mut *tx)
            .await?;
            if rows.is_empty() {
                break;
            }
            for r in &rows {
                let rec = audit_from_row(r)?;
                after = rec.seq;
                if let Err(b) = verifier.check(&rec) {
                    return Ok(AuditReport {
                        entries_checked: verifier.checked(),
                        first_break: Some(b),
                    });
                }
            }
        }
        tx.commit().await?;
        Ok(AuditReport {
            entries_checked: verifier.checked(),
            first_break: verifier.finish(head_seq, &head_hash).err(),
        })
    }

    async fn rotate_master_key(&self, actor: &Actor, new_key: MasterKey) -> Result<u64> {
        let old = self.master();
        let (mut tx, slot) = self.begin_write().await?;
        let rows = sqlx::query("SELECT patient_id, wrapped_key, master_key_id FROM patient_keys")
            .fetch_all(&mut *tx)
            .await?;
        let mut n = 0u64;
        for r in &rows {
            let patient: String = r.try_get("patient_id")?;
            let stored: String = r.try_get("master_key_id")?;
            if stored != old.id() {
                return Err(StoreError::WrongMasterKey {
                    given: old.id(),
                    stored,
                });
            }
            let wrapped: Vec<u8> = r.try_get("wrapped_key")?;
            let dek = DataKey::unwrap_from(&wrapped, &old, &patient)?;
            sqlx::query(
                "UPDATE patient_keys SET wrapped_key = $1, master_key_id = $2 WHERE patient_id = $3",
            )
            .bind(dek.wrap(&new_key, &patient)?)
            .bind(new_key.id())
            .bind(patient)
            .execute(&mut *tx)
            .await?;
            n += 1;
        }
        // Per-user TOTP keys are wrapped by the same master key.
        let rows = sqlx::query("SELECT user_id, wrapped_key, master_key_id FROM totp_secrets")
            .fetch_all(&mut *tx)
            .await?;
        for r in &rows {
            let user: String = r.try_get("user_id")?;
            let stored: String = r.try_get("master_key_id")?;
            if stored != old.id() {
                return Err(StoreError::WrongMasterKey {
                    given: old.id(),
                    stored,
                });
            }
            let wrapped: Vec<u8> = r.try_get("wrapped_key")?;
            let key = DataKey::unwrap_from(&wrapped, &old, &user)?;
            sqlx::query(
                "UPDATE totp_secrets SET wrapped_key = $1, master_key_id = $2 WHERE user_id = $3",
            )
            .bind(key.wrap(&new_key, &user)?)
            .bind(new_key.id())
            .bind(user)
            .execute(&mut *tx)
            .await?;
            n += 1;
        }
        let detail = format!(
            "keys={n} old_master={} new_master={}",
            old.id(),
            new_key.id()
        );
        self.commit_audited(
            tx,
            slot,
            actor,
            AuditAction::KeysRotated,
            None,
            Some(detail),
        )
        .await?;
        match self.master.write() {
            Ok(mut m) => *m = new_key,
            Err(poisoned) => *poisoned.into_inner() = new_key,
        }
        Ok(n)
    }

    async fn export_patient(&self, actor: &Actor, patient: PatientId) -> Result<PatientExport> {
        let (mut tx, slot) = self.begin_write().await?;
        self.require_patient(&mut tx, patient).await?;
        let user = self
            .read_user(&mut tx, patient.into())
            .await?
            .ok_or_else(|| StoreError::not_found(format!("patient {patient}")))?;
        let dek = self.data_key(&mut tx, patient).await?;
        let mut conversations = Vec::new();
        for c in self.read_conversations(&mut tx, patient).await? {
            let messages = self.read_messages(&mut tx, &dek, patient, c.id).await?;
            conversations.push(ConversationExport {
                conversation: c,
                messages,
            });
        }
        let export = PatientExport {
            format: "tandem-patient-export/v1".into(),
            exported_at_ms: now_ms(),
            care_team: self.read_care_team(&mut tx, patient).await?,
            consents: self.read_consents(&mut tx, patient).await?,
            conversations,
            summaries: self.read_summaries(&mut tx, &dek, patient).await?,
            risk_events: self.read_risk_events(&mut tx, &dek, patient).await?,
            assessments: self.read_assessments(&mut tx, &dek, patient).await?,
            care_plan: self.read_care_plan(&mut tx, &dek, patient).await?,
            checkins: self.read_checkins(&mut tx, &dek, patient).await?,
            measure_schedules: self.read_schedules(&mut tx, patient).await?,
            exercises: self.read_exercises(&mut tx, &dek, patient).await?,
            moods: self.read_moods(&mut tx, &dek, patient).await?,
            talk_requests: self.read_talk_requests(&mut tx, &dek, patient).await?,
            nudges: self.read_nudges(&mut tx, patient).await?,
            audit: self.read_audit(&mut tx, Some(patient)).await?,
            patient: user,
        };
        self.commit_audited(
            tx,
            slot,
            actor,
            AuditAction::PatientExported,
            Some(patient),
            None,
        )
        .await?;
        Ok(export)
    }

    async fn erase_patient(&self, actor: &Actor, patient: PatientId) -> Result<ErasureReport> {
        let (mut tx, slot) = self.begin_write().await?;
        self.require_patient(&mut tx, patient).await?;
        let p = patient.to_string();
        // The data key goes first: from here on nothing sealed for this patient can be
        // opened, wherever a copy of it lives.
        let mut deleted = 0u64;
        let statements = [
            "DELETE FROM patient_keys WHERE patient_id = $1",
            "DELETE FROM risk_acknowledgements WHERE risk_event_id IN (SELECT id FROM risk_events WHERE patient_id = $1)",
            "DELETE FROM risk_escalations WHERE patient_id = $1",
            "DELETE FROM companion_nudges WHERE patient_id = $1",
            "DELETE FROM risk_events WHERE patient_id = $1",
            "DELETE FROM summaries WHERE patient_id = $1",
            "DELETE FROM messages WHERE patient_id = $1",
            "DELETE FROM conversations WHERE patient_id = $1",
            "DELETE FROM assessments WHERE patient_id = $1",
            "DELETE FROM measure_schedules WHERE patient_id = $1",
            "DELETE FROM care_plan_items WHERE patient_id = $1",
            "DELETE FROM ai_preferences WHERE patient_id = $1",
            "DELETE FROM checkins WHERE patient_id = $1",
            "DELETE FROM exercise_sessions WHERE patient_id = $1",
            "DELETE FROM consents WHERE patient_id = $1",
            "DELETE FROM care_team WHERE patient_id = $1",
            "DELETE FROM talk_requests WHERE patient_id = $1",
            "DELETE FROM mood_checkins WHERE patient_id = $1",
            "DELETE FROM sessions WHERE user_id = $1",
            "DELETE FROM totp_secrets WHERE user_id = $1",
            "DELETE FROM login_attempts WHERE username IN (SELECT username FROM users WHERE id = $1)",
            "DELETE FROM users WHERE id = $1",
        ];
        for sql in statements {
            deleted += sqlx::query(sql)
                .bind(p.clone())
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        self.commit_audited(
            tx,
            slot,
            actor,
            AuditAction::PatientErased,
            Some(patient),
            Some(format!("rows={deleted}")),
        )
        .await?;
        Ok(ErasureReport {
            patient,
            rows_deleted: deleted,
        })
    }
}

fn summary_row(r: &AnyRow, dek: &DataKey, patient: PatientId) -> Result<Summary> {
    let id: String = r.try_get("id")?;
    Ok(Summary {
        id: parse_text(&id)?,
        conversation: parse_col(r, "conversation_id")?,
        first_message: parse_col(r, "first_message_id")?,
        last_message: parse_col(r, "last_message_id")?,
        text: open_text(dek, r, "summaries", "body", &id, patient)?,
        provenance: open_json_opt(dek, r, "summaries", "provenance", &id, patient)?,
        created_at_ms: r.try_get("created_at")?,
        ai_generated: true,
    })
}

fn alert_head(r: &AnyRow) -> Result<AlertHead> {
    let categories: String = r.try_get("categories")?;
    Ok(AlertHead {
        id: parse_col(r, "id")?,
        patient: parse_col(r, "patient_id")?,
        level: r.try_get("level")?,
        categories: categories
            .split(',')
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect(),
        created_at_ms: r.try_get("created_at")?,
        escalated_at_ms: r.try_get("escalated_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted_and_classified() {
        assert_eq!(
            redact_url("postgres://tandem:s3cret@db:5432/tandem"),
            "postgres://tandem:***@db:5432/tandem"
        );
        assert_eq!(redact_url("sqlite:///x/y.db"), "sqlite:///x/y.db");
        assert_eq!(
            Backend::from_url("postgresql://h/d").unwrap(),
            Backend::Postgres
        );
        assert!(Backend::from_url("mysql://h/d").is_err());
    }
}
