//! FHIR R4 export of a scored assessment: a `QuestionnaireResponse` (the answers) and an
//! `Observation` (the total), as JSON values ready to send to an electronic health record.
//!
//! Coding choices:
//! - `QuestionnaireResponse.questionnaire` is LOINC's canonical for the panel
//!   (`http://loinc.org/q/44249-1` for the PHQ-9, `.../69737-5` for the GAD-7) where the
//!   instrument has a panel code; otherwise `urn:tandem:instrument:<ID>`.
//! - Each answered item is an `item` whose `linkId` is its LOINC item code where one exists
//!   (else its number); answers with a LOINC answer code (LA...) are `valueCoding` carrying the
//!   score in the R4 `ordinalValue` extension, others `valueInteger`. The total is the last item.
//! - `Observation.code` is the LOINC total-score code (PHQ-9 `44261-6`, GAD-7 `70274-6`) where
//!   it exists, else the panel code, else text only; the panel code is also carried as a second
//!   `code.coding` so the record says which questionnaire the total belongs to. The total is
//!   `valueInteger`; the band is `interpretation.text`; each item is a `component`.

use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::instrument::Instrument;
use crate::registry::normalize_id;
use crate::score::Score;

/// The LOINC code system.
pub const LOINC: &str = "http://loinc.org";
/// The FHIR observation-category code system.
pub const OBSERVATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
/// The R4 extension that carries an answer's score.
pub const ORDINAL_VALUE: &str = "http://hl7.org/fhir/StructureDefinition/ordinalValue";

/// Export failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FhirError {
    /// The score is not for this instrument or has the wrong number of answers.
    #[error("score for {score} does not match instrument {instrument}")]
    Mismatch {
        /// The score's instrument id.
        score: String,
        /// The instrument given.
        instrument: String,
    },
    /// The time cannot be written as an RFC 3339 date-time.
    #[error("time cannot be written as a FHIR dateTime: {0}")]
    Time(String),
    /// The subject reference is empty.
    #[error("subject reference is empty")]
    NoSubject,
}

fn check(instrument: &Instrument, score: &Score, subject: &str) -> Result<(), FhirError> {
    if subject.trim().is_empty() {
        return Err(FhirError::NoSubject);
    }
    if normalize_id(&score.instrument) != normalize_id(&instrument.id)
        || score.answers.len() != instrument.items.len()
    {
        return Err(FhirError::Mismatch {
            score: score.instrument.clone(),
            instrument: instrument.id.clone(),
        });
    }
    Ok(())
}

fn datetime(t: OffsetDateTime) -> Result<String, FhirError> {
    t.format(&Rfc3339)
        .map_err(|e| FhirError::Time(e.to_string()))
}

fn loinc_coding(code: &str, display: Option<&str>) -> Value {
    let mut coding = Map::new();
    coding.insert("system".into(), json!(LOINC));
    coding.insert("code".into(), json!(code));
    if let Some(display) = display {
        coding.insert("display".into(), json!(display));
    }
    Value::Object(coding)
}

/// The questionnaire canonical for an instrument.
pub fn questionnaire_canonical(instrument: &Instrument) -> String {
    match &instrument.loinc.panel {
        Some(panel) => format!("{LOINC}/q/{panel}"),
        None => format!("urn:tandem:instrument:{}", normalize_id(&instrument.id)),
    }
}

/// A FHIR R4 `QuestionnaireResponse` for a scored form.
/// `subject_reference` is e.g. `Patient/123`; `authored` is the completion time.
pub fn fhir_questionnaire_response(
    instrument: &Instrument,
    score: &Score,
    subject_reference: &str,
    authored: OffsetDateTime,
) -> Result<Value, FhirError> {
    check(instrument, score, subject_reference)?;
    let mut items = Vec::new();
    for (index, (item, answer)) in instrument.items.iter().zip(&score.answers).enumerate() {
        let Some(value) = *answer else { continue };
        let option = instrument
            .options_for(index)
            .iter()
            .find(|o| o.value == value);
        let answer_value = match option {
            Some(opt) if opt.loinc.is_some() => {
                let mut coding =
                    loinc_coding(opt.loinc.as_deref().unwrap_or_default(), Some(&opt.label));
                if let Some(obj) = coding.as_object_mut() {
                    obj.insert(
                        "extension".into(),
                        json!([{ "url": ORDINAL_VALUE, "valueDecimal": value }]),
                    );
                }
                json!({ "valueCoding": coding })
            }
            _ => json!({ "valueInteger": value }),
        };
        items.push(json!({
            "linkId": item.loinc.clone().unwrap_or_else(|| item.number.to_string()),
            "text": item.text,
            "answer": [answer_value],
        }));
    }
    items.push(json!({
        "linkId": instrument.loinc.total.clone().unwrap_or_else(|| "total".into()),
        "text": format!("{} total score", instrument.id),
        "answer": [{ "valueInteger": score.total }],
    }));
    Ok(json!({
        "resourceType": "QuestionnaireResponse",
        "status": "completed",
        "questionnaire": questionnaire_canonical(instrument),
        "subject": { "reference": subject_reference },
        "authored": datetime(authored)?,
        "item": items,
    }))
}

/// A FHIR R4 `Observation` of a scored form's total. `effective` is the completion time;
/// `derived_from` optionally references the `QuestionnaireResponse` (e.g.
/// `QuestionnaireResponse/abc`).
pub fn fhir_observation(
    instrument: &Instrument,
    score: &Score,
    subject_reference: &str,
    effective: OffsetDateTime,
    derived_from: Option<&str>,
) -> Result<Value, FhirError> {
    check(instrument, score, subject_reference)?;
    let mut codings = Vec::new();
    if let Some(total) = &instrument.loinc.total {
        codings.push(loinc_coding(
            total,
            instrument.loinc.total_display.as_deref(),
        ));
    }
    if let Some(panel) = &instrument.loinc.panel {
        codings.push(loinc_coding(
            panel,
            instrument.loinc.panel_display.as_deref(),
        ));
    }
    let mut code = Map::new();
    if !codings.is_empty() {
        code.insert("coding".into(), Value::Array(codings));
    }
    code.insert(
        "text".into(),
        json!(format!("{} total score", instrument.name)),
    );

    let components: Vec<Value> = instrument
        .items
        .iter()
        .zip(&score.answers)
        .filter_map(|(item, answer)| {
            let value = (*answer)?;
            let mut item_code = Map::new();
            if let Some(c) = &item.loinc {
                item_code.insert("coding".into(), json!([loinc_coding(c, Some(&item.text))]));
            }
            item_code.insert("text".into(), json!(item.text));
            Some(json!({ "code": Value::Object(item_code), "valueInteger": value }))
        })
        .collect();

    let mut obs = json!({
        "resourceType": "Observation",
        "status": "final",
        "category": [{
            "coding": [{ "system": OBSERVATION_CATEGORY, "code": "survey", "display": "Survey" }]
        }],
        "code": Value::Object(code),
        "subject": { "reference": subject_reference },
        "effectiveDateTime": datetime(effective)?,
        "valueInteger": score.total,
        "interpretation": [{ "text": score.band }],
        "component": components,
    });
    if let Some(obj) = obs.as_object_mut() {
        if let Some(reference) = derived_from {
            obj.insert("derivedFrom".into(), json!([{ "reference": reference }]));
        }
        let mut notes = Vec::new();
        if score.prorated {
            notes.push(json!({ "text": format!("Total prorated from {} of {} items.", score.answered, instrument.items.len()) }));
        }
        if let (Some(scaled), Some(unit)) = (score.scaled_total, &score.scaled_unit) {
            notes.push(json!({ "text": format!("Scaled score: {scaled} {unit}.") }));
        }
        if !notes.is_empty() {
            obj.insert("note".into(), Value::Array(notes));
        }
    }
    Ok(obs)
}
