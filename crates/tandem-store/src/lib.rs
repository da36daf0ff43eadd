//! Tandem's storage: one [`Store`] trait, implemented by [`SqlStore`] over SQLite (the
//! embedded default: one file, WAL) and PostgreSQL (chosen by a `postgres://` URL, for
//! several server instances sharing one database).
//!
//! What this crate guarantees to every caller:
//! * everything a person writes is sealed with the patient's data key before it reaches
//!   the database, bound to its table, column and row (see `tandem-vault`);
//! * every write, and every read of a patient's clinical data, appends an entry to the
//!   hash-chained audit log **in the same transaction**, so there is no access without a
//!   record and no record without the access;
//! * multi-row writes are transactions: a failure leaves nothing half-written.
//!
//! What it never does: log message text, names or scores (only ids and event kinds).
//! Access control (is this clinician on the care team?) is the caller's job; the store
//! records who the caller said they were.

mod error;
mod model;
mod sql;

pub use error::StoreError;
pub use model::*;
pub use sql::{redact_url, Backend, SqlStore};

use async_trait::async_trait;
use tandem_domain::{
    AssessmentId, CarePlanItemId, CheckinId, ConsentKind, ConversationId, ExerciseId, MoodId,
    PatientId, RiskEventId, Role, SummaryId, TalkRequestId, UserId, Username,
};
use tandem_vault::MasterKey;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The one storage interface. Every backend passes the same conformance suite
/// (`tests/conformance.rs`).
#[async_trait]
pub trait Store: Send + Sync {
    /// Which database this is, for `/readyz` and diagnostics.
    fn backend(&self) -> Backend;
    /// A cheap round trip to the database.
    async fn ping(&self) -> Result<()>;

    // --- accounts and teams -------------------------------------------------------------
    /// Creates an account; for patients also creates their data key. `password_hash` must
    /// already be an argon2id hash.
    async fn create_user(&self, actor: &Actor, new: NewUser) -> Result<User>;
    async fn user(&self, id: UserId) -> Result<Option<User>>;
    /// The account and its password hash, for login.
    async fn user_credentials(&self, username: &Username) -> Result<Option<(User, String)>>;
    async fn list_users(&self) -> Result<Vec<User>>;
    async fn assign_care_team(
        &self,
        actor: &Actor,
        clinician: UserId,
        patient: PatientId,
    ) -> Result<()>;
    async fn care_team(&self, patient: PatientId) -> Result<Vec<UserId>>;
    async fn caseload(&self, clinician: UserId) -> Result<Vec<PatientId>>;
    async fn is_on_care_team(&self, clinician: UserId, patient: PatientId) -> Result<bool>;

    // --- consent ------------------------------------------------------------------------
    async fn record_consent(
        &self,
        actor: &Actor,
        patient: PatientId,
        kind: ConsentKind,
        granted: bool,
    ) -> Result<()>;
    /// The latest decision per kind; a kind never recorded is absent.
    async fn consents(&self, patient: PatientId) -> Result<Vec<Consent>>;

    // --- conversations --------------------------------------------------------------------
    async fn create_conversation(
        &self,
        actor: &Actor,
        patient: PatientId,
    ) -> Result<ConversationId>;
    async fn conversations(&self, patient: PatientId) -> Result<Vec<Conversation>>;
    /// One conversation's metadata (who it belongs to, when it started); no content.
    async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>>;
    async fn append_message(&self, actor: &Actor, new: NewMessage) -> Result<Message>;
    /// Reads a conversation; audited as a read of the patient's messages.
    async fn messages(&self, actor: &Actor, conversation: ConversationId) -> Result<Vec<Message>>;
    /// Opens a conversation turn in one transaction: reads everything the turn needs (the
    /// messages so far, the care plan, the conversation's latest summary, whether AI
    /// processing is consented, usage times) and appends the patient's new message after them. Audited
    /// as that read and that write (two chained entries, one transaction).
    /// `usage_since_ms` bounds the usage times read for the dependence nudge.
    async fn open_turn(
        &self,
        actor: &Actor,
        conversation: ConversationId,
        text: &str,
        usage_since_ms: i64,
    ) -> Result<TurnContext>;
    /// Records that the companion nudged the patient towards people (audited).
    async fn record_nudge(
        &self,
        actor: &Actor,
        patient: PatientId,
        reasons: &[String],
    ) -> Result<()>;
    /// The dependence nudges the patient was given, oldest first (audited read).
    async fn nudges(&self, actor: &Actor, patient: PatientId) -> Result<Vec<NudgeRecord>>;
    async fn add_summary(&self, actor: &Actor, new: NewSummary) -> Result<SummaryId>;
    async fn summaries(&self, actor: &Actor, patient: PatientId) -> Result<Vec<Summary>>;

    // --- risk -----------------------------------------------------------------------------
    async fn record_risk_event(&self, actor: &Actor, new: NewRiskEvent) -> Result<RiskEventId>;
    /// Records who acknowledged an alert and when. Acknowledging twice is a conflict.
    async fn acknowledge_risk_event(
        &self,
        actor: &Actor,
        id: RiskEventId,
        note: Option<String>,
    ) -> Result<()>;
    async fn risk_events(&self, actor: &Actor, patient: PatientId) -> Result<Vec<RiskEvent>>;
    /// Whose risk event this is (no content), so access can be checked before acting on it.
    async fn risk_event_patient(&self, id: RiskEventId) -> Result<Option<PatientId>>;

    // --- on call and escalation ------------------------------------------------------------
    /// Puts a clinician on or off the on-call rota (audited). Only clinicians can be on call.
    async fn set_on_call(&self, actor: &Actor, clinician: UserId, on_call: bool) -> Result<()>;
    /// The clinicians on call now, longest on call first.
    async fn on_call(&self) -> Result<Vec<UserId>>;
    /// Risk events at one of `levels`, neither acknowledged nor escalated, recorded at or
    /// before `created_before_ms`, oldest first. Metadata only: nothing sealed is read.
    async fn unescalated_alerts(
        &self,
        levels: &[&str],
        created_before_ms: i64,
    ) -> Result<Vec<AlertHead>>;
    /// Escalates an unacknowledged risk event to the clinicians `to`, at `at_ms`, audited.
    /// Exactly once across workers: returns `false` (and changes nothing) when the event was
    /// already escalated or acknowledged meanwhile.
    async fn escalate_risk_event(
        &self,
        actor: &Actor,
        id: RiskEventId,
        to: &[UserId],
        at_ms: i64,
    ) -> Result<bool>;
    /// The unacknowledged risk events escalated to `clinician`, newest first.
    async fn escalated_to(&self, clinician: UserId) -> Result<Vec<AlertHead>>;
    /// Whether `clinician` holds an escalation for `patient` that is unacknowledged or was
    /// made at or after `since_ms` (the window in which the on-call clinician may act).
    async fn has_escalation(
        &self,
        clinician: UserId,
        patient: PatientId,
        since_ms: i64,
    ) -> Result<bool>;

    // --- measures -------------------------------------------------------------------------
    async fn record_assessment(&self, actor: &Actor, new: NewAssessment) -> Result<AssessmentId>;
    async fn assessments(&self, actor: &Actor, patient: PatientId) -> Result<Vec<Assessment>>;
    /// Sets (or replaces) how often a patient gets one measure.
    async fn set_measure_schedule(
        &self,
        actor: &Actor,
        patient: PatientId,
        schedule: MeasureScheduleRow,
    ) -> Result<()>;
    async fn measure_schedules(&self, patient: PatientId) -> Result<Vec<MeasureScheduleRow>>;

    // --- care plan --------------------------------------------------------------------------
    async fn add_care_plan_item(
        &self,
        actor: &Actor,
        new: NewCarePlanItem,
    ) -> Result<CarePlanItemId>;
    async fn set_ai_preferences(
        &self,
        actor: &Actor,
        patient: PatientId,
        prefs: serde_json::Value,
    ) -> Result<()>;
    async fn care_plan(&self, actor: &Actor, patient: PatientId) -> Result<CarePlan>;

    // --- guided exercises --------------------------------------------------------------------
    /// Saves an exercise's state (creating it when `id` is `None`); returns its id.
    async fn save_exercise(&self, actor: &Actor, save: SaveExercise) -> Result<ExerciseId>;
    /// The patient's exercises, newest activity last.
    async fn exercises(&self, actor: &Actor, patient: PatientId) -> Result<Vec<ExerciseRecord>>;

    // --- check-ins --------------------------------------------------------------------------
    async fn schedule_checkin(&self, actor: &Actor, new: NewCheckin) -> Result<CheckinId>;
    /// Claims up to `limit` scheduled check-ins due at `now_ms` for `worker`, so that
    /// several instances never send the same one. A claim lapses after `lease_ms`.
    async fn claim_due_checkins(
        &self,
        worker: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<Checkin>>;

    // --- web sign-in (not clinical; sessions are not audited per request) ---------------------
    async fn create_session(&self, new: NewSession) -> Result<()>;
    async fn session(&self, token_hash: &str) -> Result<Option<SessionRecord>>;
    /// Records activity at `now_ms` (the idle timeout counts from here).
    async fn touch_session(&self, token_hash: &str, now_ms: i64) -> Result<()>;
    /// Marks the session as having passed the second factor.
    async fn mark_session_mfa(&self, token_hash: &str) -> Result<()>;
    async fn delete_session(&self, token_hash: &str) -> Result<()>;
    /// Ends every session of a user (disable, erase, password change); returns how many.
    async fn delete_user_sessions(&self, user: UserId) -> Result<u64>;
    /// Failed sign-ins for a login name (any name, known or not).
    async fn login_state(&self, username: &str) -> Result<LoginState>;
    /// Counts one more failure at `at_ms`; returns the new count.
    async fn record_login_failure(&self, username: &str, at_ms: i64) -> Result<i64>;
    async fn lock_login(&self, username: &str, until_ms: i64) -> Result<()>;
    async fn clear_login_failures(&self, username: &str) -> Result<()>;
    /// Turns an account off (or on again); a disabled account cannot sign in.
    async fn set_user_disabled(&self, actor: &Actor, user: UserId, disabled: bool) -> Result<()>;

    // --- TOTP second factor ---------------------------------------------------------------------
    /// Stores a new, unconfirmed secret (replacing any unconfirmed one), sealed under a
    /// per-user key wrapped by the master key.
    async fn set_totp_secret(&self, actor: &Actor, user: UserId, secret: &[u8]) -> Result<()>;
    async fn confirm_totp(&self, actor: &Actor, user: UserId) -> Result<()>;
    async fn totp(&self, user: UserId) -> Result<Option<TotpRecord>>;
    /// Accepts time step `step` only if it is later than the last accepted one (so a code
    /// cannot be replayed); returns whether it was accepted.
    async fn use_totp_step(&self, user: UserId, step: i64) -> Result<bool>;

    // --- talk-to-clinician requests and mood check-ins -----------------------------------------
    async fn create_talk_request(
        &self,
        actor: &Actor,
        patient: PatientId,
        note: Option<String>,
        at_ms: i64,
    ) -> Result<TalkRequestId>;
    async fn talk_requests(&self, actor: &Actor, patient: PatientId) -> Result<Vec<TalkRequest>>;
    /// Closes a request; resolving twice is a conflict.
    async fn resolve_talk_request(
        &self,
        actor: &Actor,
        patient: PatientId,
        id: TalkRequestId,
        at_ms: i64,
    ) -> Result<()>;
    async fn record_mood(&self, actor: &Actor, new: NewMood) -> Result<MoodId>;
    async fn moods(&self, actor: &Actor, patient: PatientId) -> Result<Vec<MoodEntry>>;
    /// When the patient last did anything (message, mood, measure), without reading content.
    async fn last_patient_activity(&self, patient: PatientId) -> Result<Option<i64>>;
    /// Sets a care plan item's status (`active`, `done`, `removed`).
    async fn set_care_plan_item_status(
        &self,
        actor: &Actor,
        patient: PatientId,
        item: CarePlanItemId,
        status: &str,
    ) -> Result<()>;

    // --- audit, keys, export, erasure --------------------------------------------------------
    /// Appends a free-standing audit entry (for example a break-glass access).
    async fn audit(&self, actor: &Actor, event: AuditEvent) -> Result<()>;
    /// Entries about one patient, oldest first.
    async fn audit_entries(
        &self,
        patient: Option<PatientId>,
    ) -> Result<Vec<tandem_domain::AuditRecord>>;
    /// Walks the whole chain and reports the first broken entry.
    async fn verify_audit(&self) -> Result<AuditReport>;
    /// Re-wraps every data key under `new_key` in one transaction, without touching data.
    /// Returns how many keys were re-wrapped. The store uses `new_key` from then on.
    async fn rotate_master_key(&self, actor: &Actor, new_key: MasterKey) -> Result<u64>;
    /// Everything held about a patient, decrypted.
    async fn export_patient(&self, actor: &Actor, patient: PatientId) -> Result<PatientExport>;
    /// Destroys the patient's data key, then every row about them, in one transaction;
    /// leaves only the audit entry that it happened.
    async fn erase_patient(&self, actor: &Actor, patient: PatientId) -> Result<ErasureReport>;
}

/// Who is acting, for the audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    /// A user id, or a system component such as `system:cli` or `system:jobs`.
    pub id: String,
    pub role: String,
    /// Why, where a reason is required (break-glass access, erasure by staff).
    pub reason: Option<String>,
}

impl Actor {
    pub fn user(id: UserId, role: Role) -> Actor {
        Actor {
            id: id.to_string(),
            role: role.as_str().to_string(),
            reason: None,
        }
    }
    pub fn system(component: &str) -> Actor {
        Actor {
            id: format!("system:{component}"),
            role: "system".to_string(),
            reason: None,
        }
    }
    pub fn with_reason(mut self, reason: impl Into<String>) -> Actor {
        self.reason = Some(reason.into());
        self
    }
}
