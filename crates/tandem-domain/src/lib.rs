//! Tandem's domain: identifiers, roles, validated values, and the audit chain rule.
//!
//! This crate is pure. It never reads the clock, the disk, the network or a random
//! source: callers pass time in as [`Timestamp`] and generate ids at the edge. That keeps
//! every rule here testable without sleeping or mocking.

pub mod audit;
pub mod ids;
pub mod values;

pub use audit::{chain_hash, AuditAction, AuditRecord, ChainBreak, ChainVerifier, GENESIS_HASH};
pub use ids::{
    AssessmentId, CarePlanItemId, CheckinId, ConversationId, ExerciseId, MessageId, MoodId,
    PatientId, RiskEventId, SummaryId, TalkRequestId, UserId,
};
pub use values::{
    CarePlanItemKind, CheckinStatus, ConsentKind, MessageRole, ParseError, Role, Timestamp,
    Username,
};
