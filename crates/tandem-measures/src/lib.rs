#![doc = include_str!("../README.md")]

pub mod change;
pub mod chart;
pub mod fhir;
pub mod instrument;
pub mod registry;
pub mod schedule;
pub mod score;
pub mod stepped;

pub use change::{
    outcome_rates, patient_outcome, Assessment, MeasureChange, OutcomeRates, PatientOutcome,
};
pub use chart::{trajectory_svg, ChartOptions};
pub use fhir::{fhir_observation, fhir_questionnaire_response, FhirError};
pub use instrument::{Instrument, RiskLevel};
pub use registry::{normalize_id, parse_instrument, Registry, RegistryError};
pub use schedule::{DueStatus, MeasureSchedule, ScheduleError};
pub use score::{
    parse_answers_csv, score_answers_json, score_instrument, Score, ScoreError,
    FLAG_ITEM9_POSITIVE, FLAG_SAFETY_FLOW, FLAG_STEP_UP,
};
pub use stepped::{
    step_up_recommendation, StepUpReason, StepUpRecommendation, PATIENT_STEP_UP_MESSAGE,
};
