//! The audit chain rule. Each entry's hash covers its own fields and the previous entry's
//! hash (SHA-256), so changing, inserting or deleting any stored row breaks the chain at
//! exactly that row. Storage appends; this module only defines what is hashed and how a
//! chain is checked.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened. Stored as text; new actions can be added without a migration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    UserCreated,
    TeamAssigned,
    ConsentRecorded,
    ConversationCreated,
    MessageWritten,
    MessagesRead,
    RiskEventRecorded,
    RiskEventAcknowledged,
    RiskEventsRead,
    AssessmentRecorded,
    AssessmentsRead,
    CarePlanWritten,
    CarePlanRead,
    CheckinScheduled,
    SummaryWritten,
    SummariesRead,
    ExerciseSaved,
    ExercisesRead,
    PatientExported,
    PatientErased,
    KeysRotated,
    BreakGlass,
    TotpEnrolled,
    UserDisabled,
    MoodRecorded,
    MoodsRead,
    TalkRequested,
    TalkRequestsRead,
    TalkRequestResolved,
    LoginSucceeded,
    OnCallChanged,
    AlertEscalated,
    NudgeGiven,
    NudgesRead,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::UserCreated => "user_created",
            AuditAction::TeamAssigned => "team_assigned",
            AuditAction::ConsentRecorded => "consent_recorded",
            AuditAction::ConversationCreated => "conversation_created",
            AuditAction::MessageWritten => "message_written",
            AuditAction::MessagesRead => "messages_read",
            AuditAction::RiskEventRecorded => "risk_event_recorded",
            AuditAction::RiskEventAcknowledged => "risk_event_acknowledged",
            AuditAction::RiskEventsRead => "risk_events_read",
            AuditAction::AssessmentRecorded => "assessment_recorded",
            AuditAction::AssessmentsRead => "assessments_read",
            AuditAction::CarePlanWritten => "care_plan_written",
            AuditAction::CarePlanRead => "care_plan_read",
            AuditAction::CheckinScheduled => "checkin_scheduled",
            AuditAction::SummaryWritten => "summary_written",
            AuditAction::SummariesRead => "summaries_read",
            AuditAction::ExerciseSaved => "exercise_saved",
            AuditAction::ExercisesRead => "exercises_read",
            AuditAction::PatientExported => "patient_exported",
            AuditAction::PatientErased => "patient_erased",
            AuditAction::KeysRotated => "keys_rotated",
            AuditAction::BreakGlass => "break_glass",
            AuditAction::TotpEnrolled => "totp_enrolled",
            AuditAction::UserDisabled => "user_disabled",
            AuditAction::MoodRecorded => "mood_recorded",
            AuditAction::MoodsRead => "moods_read",
            AuditAction::TalkRequested => "talk_requested",
            AuditAction::TalkRequestsRead => "talk_requests_read",
            AuditAction::TalkRequestResolved => "talk_request_resolved",
            AuditAction::LoginSucceeded => "login_succeeded",
            AuditAction::OnCallChanged => "on_call_changed",
            AuditAction::AlertEscalated => "alert_escalated",
            AuditAction::NudgeGiven => "nudge_given",
            AuditAction::NudgesRead => "nudges_read",
        }
    }
}

/// One audit entry as stored. Free text never goes here: `detail` carries ids and counts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub seq: i64,
    pub at_ms: i64,
    /// `None` for the system itself (jobs, the CLI run by the operator is recorded as `cli`).
    pub actor: Option<String>,
    pub actor_role: String,
    pub action: String,
    pub patient: Option<String>,
    pub reason: Option<String>,
    pub detail: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

/// The hash of an entry given the previous entry's hash. Fields are length-prefixed so that
/// no two different entries serialise to the same bytes.
pub fn chain_hash(prev_hash: &str, r: &AuditRecord) -> String {
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    };
    field(b"tandem-audit-v1");
    field(prev_hash.as_bytes());
    field(&r.seq.to_be_bytes());
    field(&r.at_ms.to_be_bytes());
    opt(&mut field, r.actor.as_deref());
    field(r.actor_role.as_bytes());
    field(r.action.as_bytes());
    opt(&mut field, r.patient.as_deref());
    opt(&mut field, r.reason.as_deref());
    opt(&mut field, r.detail.as_deref());
    hex::encode(h.finalize())
}

fn opt(field: &mut impl FnMut(&[u8]), v: Option<&str>) {
    match v {
        None => field(b"\x00none"),
        Some(s) => {
            field(b"\x01some");
            field(s.as_bytes());
        }
    }
}

/// Why a chain failed verification, naming the first bad entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum ChainBreak {
    /// The stored hash does not match the entry's contents: the row was changed.
    HashMismatch { seq: i64 },
    /// The entry does not point at the previous entry's hash: a row was removed or inserted.
    LinkMismatch { seq: i64 },
    /// Sequence numbers skip: a row was removed.
    Gap { expected: i64, found: i64 },
    /// The chain ends before the recorded head: the newest entries were removed.
    Truncated { head_seq: i64, last_seq: i64 },
}

impl ChainBreak {
    pub fn seq(&self) -> i64 {
        match self {
            ChainBreak::HashMismatch { seq } | ChainBreak::LinkMismatch { seq } => *seq,
            ChainBreak::Gap { expected, .. } => *expected,
            ChainBreak::Truncated { last_seq, .. } => last_seq + 1,
        }
    }
}

impl std::fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainBreak::HashMismatch { seq } => write!(
                f,
                "entry {seq} was altered: its contents no longer match its stored hash"
            ),
            ChainBreak::LinkMismatch { seq } => write!(
                f,
                "entry {seq} does not link to the entry before it: an entry was removed or inserted"
            ),
            ChainBreak::Gap { expected, found } => write!(
                f,
                "entry {expected} is missing (the next entry found is {found}): entries were removed"
            ),
            ChainBreak::Truncated { head_seq, last_seq } => write!(
                f,
                "entries {} to {head_seq} are missing: the newest entries were removed",
                last_seq + 1
            ),
        }
    }
}

/// Walks entries in order, carrying the state between calls so huge logs can be checked
/// page by page without loading them whole.
#[derive(Clone, Debug)]
pub struct ChainVerifier {
    prev_hash: String,
    next_seq: i64,
    checked: u64,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        ChainVerifier {
            prev_hash: GENESIS_HASH.to_string(),
            next_seq: 1,
            checked: 0,
        }
    }
}

impl ChainVerifier {
    /// Checks the next entry; returns the first break found.
    pub fn check(&mut self, r: &AuditRecord) -> Result<(), ChainBreak> {
        if r.seq != self.next_seq {
            return Err(ChainBreak::Gap {
                expected: self.next_seq,
                found: r.seq,
            });
        }
        if r.prev_hash != self.prev_hash {
            return Err(ChainBreak::LinkMismatch { seq: r.seq });
        }
        if chain_hash(&r.prev_hash, r) != r.hash {
            return Err(ChainBreak::HashMismatch { seq: r.seq });
        }
        self.prev_hash = r.hash.clone();
        self.next_seq = r.seq + 1;
        self.checked += 1;
        Ok(())
    }
    /// Checks that the walk ended where the recorded chain head says it should.
    pub fn finish(&self, head_seq: i64, head_hash: &str) -> Result<(), ChainBreak> {
        let last_seq = self.next_seq - 1;
        if head_seq != last_seq || (head_seq > 0 && head_hash != self.prev_hash) {
            return Err(ChainBreak::Truncated { head_seq, last_seq });
        }
        Ok(())
    }
    pub fn checked(&self) -> u64 {
        self.checked
    }
    pub fn head(&self) -> &str {
        &self.prev_hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditRecord> {
        let mut prev = GENESIS_HASH.to_string();
        (1..=n)
            .map(|seq| {
                let mut r = AuditRecord {
                    seq,
                    at_ms: 1_700_000_000_000 + seq,
                    actor: Some("a".into()),
                    actor_role: "clinician".into(),
                    action: "messages_read".into(),
                    patient: Some("p".into()),
                    reason: None,
                    detail: None,
                    prev_hash: prev.clone(),
                    hash: String::new(),
                };
                r.hash = chain_hash(&prev, &r);
                prev = r.hash.clone();
                r
            })
            .collect()
    }

    fn verify(rs: &[AuditRecord]) -> Result<(), ChainBreak> {
        let mut v = ChainVerifier::default();
        rs.iter().try_for_each(|r| v.check(r))
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(verify(&chain(5)), Ok(()));
    }

    #[test]
    fn changing_a_field_breaks_at_that_entry() {
        let mut rs = chain(5);
        rs[2].actor = Some("mallory".into());
        assert_eq!(verify(&rs), Err(ChainBreak::HashMismatch { seq: 3 }));
    }

    #[test]
    fn removing_an_entry_is_a_gap() {
        let mut rs = chain(5);
        rs.remove(1);
        assert_eq!(
            verify(&rs),
            Err(ChainBreak::Gap {
                expected: 2,
                found: 3
            })
        );
    }

    #[test]
    fn none_and_empty_hash_differently() {
        let mut a = chain(1).remove(0);
        let h1 = chain_hash(GENESIS_HASH, &a);
        a.reason = Some(String::new());
        assert_ne!(h1, chain_hash(GENESIS_HASH, &a));
    }
}
