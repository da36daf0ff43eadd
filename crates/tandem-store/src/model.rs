//! Records the store takes and returns. Text fields here are plaintext: sealing happens
//! inside the store, so callers can never write clinical text unencrypted by mistake.

use serde::{Deserialize, Serialize};
use tandem_domain::{
    AssessmentId, AuditAction, AuditRecord, CarePlanItemId, CarePlanItemKind, ChainBreak,
    CheckinId, CheckinStatus, ConsentKind, ConversationId, ExerciseId, MessageId, MessageRole,
    MoodId, PatientId, RiskEventId, Role, SummaryId, TalkRequestId, UserId, Username,
};

#[derive(Clone, Debug)]
pub struct NewUser {
    pub username: Username,
    pub role: Role,
    /// An argon2id PHC string from `tandem_vault::hash_password`.
    pub password_hash: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub username: Username,
    pub role: Role,
    pub created_at_ms: i64,
    pub disabled: bool,
}

impl User {
    pub fn patient_id(&self) -> Option<PatientId> {
        (self.role == Role::Patient).then(|| PatientId::from_user(self.id))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    pub kind: ConsentKind,
    pub granted: bool,
    pub recorded_at_ms: i64,
    pub recorded_by: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: ConversationId,
    pub patient: PatientId,
    pub started_at_ms: i64,
}

#[derive(Clone, Debug)]
pub struct NewMessage {
    pub conversation: ConversationId,
    pub role: MessageRole,
    pub text: String,
    /// For assistant messages: backend, model id, template version, safety verdicts,
    /// guard actions.
    pub provenance: Option<serde_json::Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub id: MessageId,
    pub conversation: ConversationId,
    pub seq: i64,
    pub role: MessageRole,
    pub text: String,
    pub provenance: Option<serde_json::Value>,
    pub created_at_ms: i64,
}

#[derive(Clone, Debug)]
pub struct NewSummary {
    pub conversation: ConversationId,
    pub first_message: MessageId,
    pub last_message: MessageId,
    pub text: String,
    pub provenance: Option<serde_json::Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub id: SummaryId,
    pub conversation: ConversationId,
    pub first_message: MessageId,
    pub last_message: MessageId,
    pub text: String,
    pub provenance: Option<serde_json::Value>,
    pub created_at_ms: i64,
    /// Always true: summaries are written by the model and must be shown as such.
    pub ai_generated: bool,
}

#[derive(Clone, Debug)]
pub struct NewRiskEvent {
    pub patient: PatientId,
    pub conversation: Option<ConversationId>,
    pub message: Option<MessageId>,
    /// Where it came from: `chat`, `measure`, ...
    pub source: String,
    /// `none` | `low` | `moderate` | `high` | `imminent`.
    pub level: String,
    pub categories: Vec<String>,
    /// The rules and spans that fired (sealed: spans quote the patient).
    pub evidence: serde_json::Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Acknowledgement {
    pub clinician: String,
    pub at_ms: i64,
    pub note: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RiskEvent {
    pub id: RiskEventId,
    pub patient: PatientId,
    pub conversation: Option<ConversationId>,
    pub message: Option<MessageId>,
    pub source: String,
    pub level: String,
    pub categories: Vec<String>,
    pub evidence: serde_json::Value,
    pub created_at_ms: i64,
    /// When the alert was escalated to the on-call clinicians (unacknowledged too long).
    pub escalated_at_ms: Option<i64>,
    pub acknowledgement: Option<Acknowledgement>,
}

/// A risk event's metadata without its sealed evidence: what the escalation job and the
/// on-call clinician's alert list need.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertHead {
    pub id: RiskEventId,
    pub patient: PatientId,
    pub level: String,
    pub categories: Vec<String>,
    pub created_at_ms: i64,
    pub escalated_at_ms: Option<i64>,
}

#[derive(Clone, Debug)]
pub struct NewAssessment {
    pub patient: PatientId,
    pub instrument: String,
    pub answers: Vec<Option<u8>>,
    pub total: Option<i64>,
    pub band: Option<String>,
    pub completed_at_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    pub id: AssessmentId,
    pub patient: PatientId,
    pub instrument: String,
    pub answers: Vec<Option<u8>>,
    pub total: Option<i64>,
    pub band: Option<String>,
    pub completed_at_ms: i64,
}

#[derive(Clone, Debug)]
pub struct NewCarePlanItem {
    pub patient: PatientId,
    pub kind: CarePlanItemKind,
    pub text: String,
    pub due_at_ms: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CarePlanItem {
    pub id: CarePlanItemId,
    pub kind: CarePlanItemKind,
    pub text: String,
    pub status: String,
    pub due_at_ms: Option<i64>,
    pub created_by: Option<String>,
    pub created_at_ms: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CarePlan {
    pub items: Vec<CarePlanItem>,
    pub ai_preferences: Option<serde_json::Value>,
}

#[derive(Clone, Debug)]
pub struct NewCheckin {
    pub patient: PatientId,
    pub clinician: Option<UserId>,
    pub due_at_ms: i64,
    pub prompt: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkin {
    pub id: CheckinId,
    pub patient: PatientId,
    pub clinician: Option<String>,
    pub due_at_ms: i64,
    pub status: CheckinStatus,
    pub prompt: Option<String>,
}

/// A free-standing audit entry.
#[derive(Clone, Debug)]
pub struct AuditEvent {
    pub action: AuditAction,
    pub patient: Option<PatientId>,
    /// Ids and counts only; never free text.
    pub detail: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditReport {
    pub entries_checked: u64,
    pub first_break: Option<ChainBreak>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConversationExport {
    pub conversation: Conversation,
    pub messages: Vec<Message>,
}

/// Everything held about one patient, decrypted: what `tandem patient export` writes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PatientExport {
    pub format: String,
    pub exported_at_ms: i64,
    pub patient: User,
    pub care_team: Vec<UserId>,
    pub consents: Vec<Consent>,
    pub conversations: Vec<ConversationExport>,
    pub summaries: Vec<Summary>,
    pub risk_events: Vec<RiskEvent>,
    pub assessments: Vec<Assessment>,
    pub care_plan: CarePlan,
    pub checkins: Vec<Checkin>,
    pub measure_schedules: Vec<MeasureScheduleRow>,
    pub exercises: Vec<ExerciseRecord>,
    #[serde(default)]
    pub moods: Vec<MoodEntry>,
    #[serde(default)]
    pub talk_requests: Vec<TalkRequest>,
    #[serde(default)]
    pub nudges: Vec<NudgeRecord>,
    /// Who did what with this record (ids and event kinds).
    pub audit: Vec<AuditRecord>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ErasureReport {
    pub patient: PatientId,
    pub rows_deleted: u64,
}

/// Which measure a patient gets and how often; set by their clinician.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeasureScheduleRow {
    pub instrument: String,
    pub every_days: i64,
    /// Days after the due date before the measure counts as overdue.
    pub grace_days: i64,
    pub start_at_ms: i64,
}

/// A guided exercise to save: new (`id: None`) or an update of one in progress.
#[derive(Clone, Debug)]
pub struct SaveExercise {
    pub id: Option<ExerciseId>,
    pub patient: PatientId,
    /// `thought_record`, `behavioural_activation`, `grounding`, `breathing`.
    pub kind: String,
    /// The step machine's state (sealed at rest).
    pub state: serde_json::Value,
    pub completed: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExerciseRecord {
    pub id: ExerciseId,
    pub patient: PatientId,
    pub kind: String,
    pub state: serde_json::Value,
    pub completed: bool,
    pub started_at_ms: i64,
    pub updated_at_ms: i64,
}

/// A new web session. Only the hash of the token the browser holds is stored.
#[derive(Clone, Debug)]
pub struct NewSession {
    /// Hex SHA-256 of the opaque token.
    pub token_hash: String,
    pub user: UserId,
    /// The synchronizer token forms and `X-CSRF-Token` must carry.
    pub csrf_token: String,
    pub created_at_ms: i64,
    /// The absolute end of the session, whatever the activity.
    pub expires_at_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    pub token_hash: String,
    pub user: UserId,
    pub csrf_token: String,
    pub created_at_ms: i64,
    pub last_seen_at_ms: i64,
    pub expires_at_ms: i64,
    /// The second factor was checked in this session.
    pub mfa_verified: bool,
}

/// Failed sign-ins for one login name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoginState {
    pub failures: i64,
    pub last_failure_at_ms: Option<i64>,
    pub locked_until_ms: Option<i64>,
}

/// A user's TOTP secret, opened.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpRecord {
    pub secret: Vec<u8>,
    /// Set once the user proved they hold it; from then on sign-in requires a code.
    pub confirmed: bool,
    /// The last accepted time step (codes are never accepted twice).
    pub last_step: i64,
}

impl std::fmt::Debug for TotpRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpRecord")
            .field("secret", &"<redacted>")
            .field("confirmed", &self.confirmed)
            .field("last_step", &self.last_step)
            .finish()
    }
}

/// A patient asking to talk to their clinician.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TalkRequest {
    pub id: TalkRequestId,
    pub patient: PatientId,
    pub note: Option<String>,
    pub created_at_ms: i64,
    pub resolved_at_ms: Option<i64>,
    pub resolved_by: Option<String>,
}

#[derive(Clone, Debug)]
pub struct NewMood {
    pub patient: PatientId,
    /// 0 (worst) to 10 (best).
    pub rating: u8,
    pub words: Vec<String>,
    pub at_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MoodEntry {
    pub id: MoodId,
    pub patient: PatientId,
    pub rating: u8,
    pub words: Vec<String>,
    pub at_ms: i64,
}

/// What one conversation turn reads, fetched in one audited transaction.
#[derive(Clone, Debug, PartialEq)]
pub struct TurnContext {
    pub patient: PatientId,
    /// The conversation so far, oldest first.
    pub messages: Vec<Message>,
    pub care_plan: CarePlan,
    /// The newest summary of this conversation, if any.
    pub summary: Option<Summary>,
    /// The patient's latest AI-processing consent decision is "granted".
    pub ai_consent: bool,
    /// The patient's message that opened this turn (not among `messages`).
    pub patient_message: Message,
    /// How the patient has been using the companion (for the dependence nudge).
    pub usage: UsageMeta,
}

/// Times only, no content: when the patient wrote to the companion, when a person on the
/// care team last acted for them, and when they were last nudged towards people.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageMeta {
    /// The patient's messages since the `usage_since_ms` asked for, oldest first (this
    /// turn's message included).
    pub patient_message_times_ms: Vec<i64>,
    /// The latest of: joining the care team, a clinician acknowledging one of their
    /// alerts, resolving a "talk to my clinician" request, or writing their care plan.
    pub last_human_contact_ms: Option<i64>,
    pub last_nudge_ms: Option<i64>,
}

/// A dependence nudge the companion gave (reason codes only).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NudgeRecord {
    pub reasons: Vec<String>,
    pub at_ms: i64,
}
