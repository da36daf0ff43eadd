#![allow(clippy::unwrap_used, clippy::expect_used)]
//! FHIR R4 export: shape of QuestionnaireResponse and Observation.

use serde_json::Value;
use time::macros::datetime;

use tandem_measures::{fhir_observation, fhir_questionnaire_response, FhirError, Registry};

const LOINC: &str = "http://loinc.org";

fn codes(v: &Value) -> Vec<String> {
    v["coding"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| {
                    assert_eq!(c["system"], LOINC);
                    c["code"].as_str().unwrap().to_owned()
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn phq9_questionnaire_response() {
    let r = Registry::builtin().unwrap();
    let inst = r.get("PHQ-9").unwrap();
    let score = r
        .score("PHQ-9", &[1, 2, 0, 1, 3, 0, 1, 2, 1].map(Some))
        .unwrap();
    let qr = fhir_questionnaire_response(
        inst,
        &score,
        "Patient/p1",
        datetime!(2025-02-03 10:15:00 UTC),
    )
    .unwrap();
    assert_eq!(qr["resourceType"], "QuestionnaireResponse");
    assert_eq!(qr["status"], "completed");
    assert_eq!(qr["questionnaire"], "http://loinc.org/q/44249-1");
    assert_eq!(qr["subject"]["reference"], "Patient/p1");
    assert_eq!(qr["authored"], "2025-02-03T10:15:00Z");
    let items = qr["item"].as_array().unwrap();
    assert_eq!(items.len(), 10);
    assert_eq!(items[0]["linkId"], "44250-9");
    assert_eq!(items[8]["linkId"], "44260-8");
    let answer = &items[1]["answer"][0]["valueCoding"];
    assert_eq!(answer["system"], LOINC);
    assert_eq!(answer["code"], "LA6570-1");
    assert_eq!(answer["display"], "More than half the days");
    assert_eq!(answer["extension"][0]["valueDecimal"], 2);
    assert_eq!(items[9]["linkId"], "44261-6");
    assert_eq!(items[9]["answer"][0]["valueInteger"], 11);
    for item in items {
        assert!(item["linkId"].is_string());
        assert!(item["answer"].as_array().unwrap().len() == 1);
    }
}

#[test]
fn phq9_observation() {
    let r = Registry::builtin().unwrap();
    let inst = r.get("PHQ-9").unwrap();
    let score = r
        .score("PHQ-9", &[1, 2, 0, 1, 3, 0, 1, 2, 1].map(Some))
        .unwrap();
    let obs = fhir_observation(
        inst,
        &score,
        "Patient/p1",
        datetime!(2025-02-03 10:15:00 +01:00),
        Some("QuestionnaireResponse/qr1"),
    )
    .unwrap();
    assert_eq!(obs["resourceType"], "Observation");
    assert_eq!(obs["status"], "final");
    assert_eq!(
        obs["category"][0]["coding"][0]["system"],
        "http://terminology.hl7.org/CodeSystem/observation-category"
    );
    assert_eq!(obs["category"][0]["coding"][0]["code"], "survey");
    assert_eq!(codes(&obs["code"]), ["44261-6", "44249-1"]);
    assert_eq!(obs["subject"]["reference"], "Patient/p1");
    assert_eq!(obs["effectiveDateTime"], "2025-02-03T10:15:00+01:00");
    assert_eq!(obs["valueInteger"], 11);
    assert_eq!(obs["interpretation"][0]["text"], "moderate");
    assert_eq!(
        obs["derivedFrom"][0]["reference"],
        "QuestionnaireResponse/qr1"
    );
    let components = obs["component"].as_array().unwrap();
    assert_eq!(components.len(), 9);
    assert_eq!(codes(&components[8]["code"]), ["44260-8"]);
    assert_eq!(components[8]["valueInteger"], 1);
}

#[test]
fn gad7_codes() {
    let r = Registry::builtin().unwrap();
    let inst = r.get("GAD-7").unwrap();
    let score = r.score("GAD-7", &[Some(1); 7]).unwrap();
    let obs = fhir_observation(
        inst,
        &score,
        "Patient/x",
        datetime!(2025-01-01 0:00 UTC),
        None,
    )
    .unwrap();
    assert_eq!(codes(&obs["code"]), ["70274-6", "69737-5"]);
    assert!(obs.get("derivedFrom").is_none());
    let item_codes: Vec<_> = obs["component"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| codes(&c["code"]))
        .collect();
    assert_eq!(
        item_codes,
        ["69725-0", "68509-9", "69733-4", "69734-2", "69735-9", "69689-8", "69736-7"]
    );
    let qr = fhir_questionnaire_response(inst, &score, "Patient/x", datetime!(2025-01-01 0:00 UTC))
        .unwrap();
    assert_eq!(qr["questionnaire"], "http://loinc.org/q/69737-5");
}

#[test]
fn instruments_without_loinc_still_export() {
    let r = Registry::builtin().unwrap();
    let inst = r.get("WHO-5").unwrap();
    let score = r.score("WHO-5", &[Some(3); 5]).unwrap();
    let obs = fhir_observation(
        inst,
        &score,
        "Patient/x",
        datetime!(2025-01-01 0:00 UTC),
        None,
    )
    .unwrap();
    assert!(obs["code"].get("coding").is_none());
    assert!(obs["code"]["text"].is_string());
    assert_eq!(obs["valueInteger"], 15);
    assert!(obs["note"][0]["text"]
        .as_str()
        .unwrap()
        .contains("60 percent"));
    let qr = fhir_questionnaire_response(inst, &score, "Patient/x", datetime!(2025-01-01 0:00 UTC))
        .unwrap();
    assert_eq!(qr["item"][0]["linkId"], "1");
    assert_eq!(qr["item"][0]["answer"][0]["valueInteger"], 3);

    // C-SSRS with skipped items: only answered ones are exported.
    let inst = r.get("C-SSRS").unwrap();
    let score = r
        .score("C-SSRS", &[Some(1), Some(0), None, None, None, Some(0)])
        .unwrap();
    let qr = fhir_questionnaire_response(inst, &score, "Patient/x", datetime!(2025-01-01 0:00 UTC))
        .unwrap();
    assert_eq!(qr["item"].as_array().unwrap().len(), 4);
    assert_eq!(qr["item"][0]["answer"][0]["valueCoding"]["code"], "LA33-6");
}

#[test]
fn mismatches_are_errors() {
    let r = Registry::builtin().unwrap();
    let score = r.score("GAD-7", &[Some(1); 7]).unwrap();
    let phq9 = r.get("PHQ-9").unwrap();
    let t = datetime!(2025-01-01 0:00 UTC);
    assert!(matches!(
        fhir_observation(phq9, &score, "Patient/x", t, None),
        Err(FhirError::Mismatch { .. })
    ));
    let gad7 = r.get("GAD-7").unwrap();
    assert_eq!(
        fhir_questionnaire_response(gad7, &score, " ", t).unwrap_err(),
        FhirError::NoSubject
    );
}
