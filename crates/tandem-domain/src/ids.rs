//! Typed identifiers. Each is a UUID, generated at the edge (never here: no randomness in
//! pure code) and parsed from text with a clear error.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

use crate::values::ParseError;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps a UUID made by the caller (for example `Uuid::new_v4()` at the edge).
            pub fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s.trim()).map(Self).map_err(|_| ParseError::Id {
                    what: $what,
                    value: s.chars().take(64).collect(),
                })
            }
        }
    };
}

typed_id!(
    /// Any account: patient, clinician or admin.
    UserId, "user id");
typed_id!(
    /// A user whose role is patient. Same value space as [`UserId`].
    PatientId, "patient id");
typed_id!(ConversationId, "conversation id");
typed_id!(MessageId, "message id");
typed_id!(RiskEventId, "risk event id");
typed_id!(AssessmentId, "assessment id");
typed_id!(CarePlanItemId, "care plan item id");
typed_id!(CheckinId, "check-in id");
typed_id!(SummaryId, "summary id");
typed_id!(ExerciseId, "exercise id");
typed_id!(
    /// A patient's "talk to my clinician" request.
    TalkRequestId, "talk request id");
typed_id!(
    /// A mood check-in (0-10 and feeling words).
    MoodId, "mood check-in id");

impl From<PatientId> for UserId {
    fn from(p: PatientId) -> Self {
        UserId(p.0)
    }
}

impl PatientId {
    /// A patient id is a user id whose account has the patient role; the role is checked
    /// by the caller that looked the user up.
    pub fn from_user(user: UserId) -> Self {
        PatientId(user.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_round_trips_and_rejects_garbage() {
        let id = UserId::from_uuid(Uuid::from_u128(42));
        assert_eq!(id.to_string().parse::<UserId>().unwrap(), id);
        let err = "not-a-uuid".parse::<PatientId>().unwrap_err();
        assert!(err.to_string().contains("patient id"));
    }
}
