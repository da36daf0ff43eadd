//! Every route, for every role, from ONE table: anonymous, the patient who owns the record,
//! another patient, a clinician on the patient's care team, a clinician outside it, and an
//! admin. A second test checks the table against the router's route list and the OpenAPI
//! document, so a new route without a row (or without documentation) fails the build.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use tandem_companion::ExerciseKind;
use tandem_domain::{CarePlanItemKind, Role};
use tandem_store::{Actor, NewCarePlanItem, NewRiskEvent, Store};

/// Expected status for [anonymous, patient, other patient, care-team clinician, clinician
/// outside the team, admin].
type Expect = [u16; 6];

const ROLES: [&str; 6] = [
    "anonymous",
    "patient",
    "other-patient",
    "clinician",
    "outsider",
    "admin",
];

// Shorthands for the common shapes.
const PUBLIC: Expect = [200, 200, 200, 200, 200, 200];
const ANY_API: Expect = [401, 200, 200, 200, 200, 200];
const PATIENT_API: Expect = [401, 200, 200, 403, 403, 403];
const PATIENT_API_CREATED: Expect = [401, 201, 201, 403, 403, 403];
const OWN_RECORD_API: Expect = [401, 200, 404, 403, 403, 403];
const TEAM_API: Expect = [401, 403, 403, 200, 403, 403];
const TEAM_API_NO_CONTENT: Expect = [401, 403, 403, 204, 403, 403];
const STAFF_API: Expect = [401, 403, 403, 200, 200, 403];
const PATIENT_PAGE: Expect = [303, 200, 200, 403, 403, 403];
const CLINICIAN_PAGE: Expect = [303, 403, 403, 200, 200, 403];
const TEAM_PAGE: Expect = [303, 403, 403, 200, 403, 403];

struct Row {
    method: &'static str,
    path: &'static str,
    body: Option<Value>,
    /// A url-encoded form body instead (the pages' plain forms).
    form: Option<&'static str>,
    expect: Expect,
}

fn row(method: &'static str, path: &'static str, body: Option<Value>, expect: Expect) -> Row {
    Row {
        method,
        path,
        body,
        form: None,
        expect,
    }
}

fn form_row(method: &'static str, path: &'static str, form: &'static str, expect: Expect) -> Row {
    Row {
        method,
        path,
        body: None,
        form: Some(form),
        expect,
    }
}

/// THE table. Rows run in order; within a row the care-team clinician goes last, so a
/// successful change (acknowledging an alert) never hides the other roles' answers.
fn table() -> Vec<Row> {
    vec![
        row("GET", "/healthz", None, PUBLIC),
        row("GET", "/readyz", None, PUBLIC),
        row("GET", "/api/v1/openapi.json", None, PUBLIC),
        row("POST", "/login", Some(json!({})), [400; 6]),
        row(
            "POST",
            "/login/totp",
            Some(json!({"code": "abcdef"})),
            [303, 400, 400, 400, 400, 400],
        ),
        row("POST", "/api/v1/me/totp", None, ANY_API),
        row(
            "POST",
            "/api/v1/me/totp/confirm",
            Some(json!({"code": "abcdef"})),
            [401, 400, 400, 400, 400, 400],
        ),
        row("GET", "/api/v1/me", None, ANY_API),
        row("GET", "/api/v1/conversations", None, PATIENT_API),
        row("POST", "/api/v1/conversations", None, PATIENT_API_CREATED),
        row(
            "GET",
            "/api/v1/conversations/{cid}/messages",
            None,
            OWN_RECORD_API,
        ),
        row(
            "POST",
            "/api/v1/conversations/{cid}/messages",
            Some(json!({"text": "hello"})),
            OWN_RECORD_API,
        ),
        row("GET", "/api/v1/mood", None, PATIENT_API),
        row(
            "POST",
            "/api/v1/mood",
            Some(json!({"rating": 5, "words": ["ok"]})),
            PATIENT_API_CREATED,
        ),
        row("GET", "/api/v1/measures/due", None, PATIENT_API),
        row(
            "POST",
            "/api/v1/measures/{instrument}",
            Some(json!({"answers": [0, 1, 0, 1, 0, 1, 0, 1, 0]})),
            PATIENT_API_CREATED,
        ),
        row(
            "GET",
            "/api/v1/measures/{instrument}/chart.svg",
            None,
            PATIENT_API,
        ),
        row("GET", "/api/v1/care-plan", None, PATIENT_API),
        row(
            "POST",
            "/api/v1/exercises",
            Some(json!({"kind": "grounding"})),
            PATIENT_API_CREATED,
        ),
        row("GET", "/api/v1/exercises/current", None, PATIENT_API),
        row(
            "POST",
            "/api/v1/exercises/{exercise}/steps",
            Some(json!({"text": "An argument at work"})),
            OWN_RECORD_API,
        ),
        row(
            "POST",
            "/api/v1/talk-requests",
            Some(json!({"note": "call me"})),
            PATIENT_API_CREATED,
        ),
        row("GET", "/api/v1/me/export", None, PATIENT_API),
        row(
            "POST",
            "/api/v1/me/consent",
            Some(json!({"ai_processing": true})),
            [401, 204, 204, 403, 403, 403],
        ),
        // The wrong confirmation words: proves the role gate without erasing anyone.
        row(
            "POST",
            "/api/v1/me/delete",
            Some(json!({"password": "x", "confirm": "no"})),
            [401, 400, 400, 403, 403, 403],
        ),
        row("GET", "/api/v1/patients", None, STAFF_API),
        row("GET", "/api/v1/patients/{pid}", None, TEAM_API),
        row(
            "GET",
            "/api/v1/patients/{pid}/conversations/{cid}/messages",
            None,
            TEAM_API,
        ),
        row(
            "GET",
            "/api/v1/patients/{pid}/measures/{instrument}/chart.svg",
            None,
            TEAM_API,
        ),
        row(
            "POST",
            "/api/v1/patients/{pid}/care-plan/items",
            Some(json!({"kind": "goal", "text": "Walk daily"})),
            [401, 403, 403, 201, 403, 403],
        ),
        row(
            "POST",
            "/api/v1/patients/{pid}/care-plan/items/{item}/status",
            Some(json!({"status": "done"})),
            TEAM_API_NO_CONTENT,
        ),
        row(
            "PUT",
            "/api/v1/patients/{pid}/care-plan/ai-preferences",
            Some(json!({"topics_to_avoid": ["work"], "tone": "warm"})),
            TEAM_API_NO_CONTENT,
        ),
        row(
            "PUT",
            "/api/v1/patients/{pid}/measure-schedules",
            Some(json!({"instrument": "phq9", "every_days": 14})),
            TEAM_API_NO_CONTENT,
        ),
        row(
            "POST",
            "/api/v1/patients/{pid}/talk-requests/{talk}/resolve",
            None,
            TEAM_API_NO_CONTENT,
        ),
        row("GET", "/api/v1/alerts", None, STAFF_API),
        row(
            "POST",
            "/api/v1/alerts/{alert}/acknowledge",
            Some(json!({})),
            TEAM_API_NO_CONTENT,
        ),
        row("GET", "/api/v1/alerts/stream", None, STAFF_API),
        row(
            "GET",
            "/api/v1/admin/users",
            None,
            [401, 403, 403, 403, 403, 200],
        ),
        row(
            "POST",
            "/api/v1/admin/users",
            Some(
                json!({"username": "newbie", "password": "long enough password", "role": "patient"}),
            ),
            [401, 403, 403, 403, 403, 201],
        ),
        row(
            "POST",
            "/api/v1/admin/users/{spare}/disable",
            Some(json!({})),
            [401, 403, 403, 403, 403, 204],
        ),
        row(
            "POST",
            "/api/v1/admin/teams",
            Some(json!({"clinician": "{clinician}", "patient": "{pid}"})),
            [401, 403, 403, 403, 403, 204],
        ),
        row(
            "GET",
            "/api/v1/admin/on-call",
            None,
            [401, 403, 403, 403, 403, 200],
        ),
        row(
            "POST",
            "/api/v1/admin/on-call",
            Some(json!({"clinician": "{clinician}", "on_call": true})),
            [401, 403, 403, 403, 403, 204],
        ),
        row("GET", "/", None, [303; 6]),
        row("GET", "/login", None, PUBLIC),
        row("GET", "/login/totp", None, [303, 200, 200, 200, 200, 200]),
        row("GET", "/crisis", None, PUBLIC),
        row(
            "GET",
            "/account/security",
            None,
            [303, 200, 200, 200, 200, 200],
        ),
        row("GET", "/chat", None, PATIENT_PAGE),
        // The plain chat form (no JavaScript): the turn runs, then back to the page.
        form_row(
            "POST",
            "/chat/send",
            "text=hello+there",
            [303, 303, 303, 403, 403, 403],
        ),
        row("GET", "/mood", None, PATIENT_PAGE),
        // The plain form (no JavaScript): saved, then back to the page.
        form_row(
            "POST",
            "/mood",
            "rating=6&words=calm%2C+ok",
            [303, 303, 303, 403, 403, 403],
        ),
        row("GET", "/measures", None, PATIENT_PAGE),
        row("GET", "/measures/{instrument}", None, PATIENT_PAGE),
        row("GET", "/exercises", None, PATIENT_PAGE),
        row("GET", "/progress", None, PATIENT_PAGE),
        row("GET", "/care-plan", None, PATIENT_PAGE),
        row("GET", "/my-data", None, PATIENT_PAGE),
        row("GET", "/clinician", None, CLINICIAN_PAGE),
        row("GET", "/clinician/alerts", None, CLINICIAN_PAGE),
        row("GET", "/clinician/patients/{pid}", None, TEAM_PAGE),
        row(
            "GET",
            "/clinician/patients/{pid}/conversations/{cid}",
            None,
            TEAM_PAGE,
        ),
        row("GET", "/admin", None, [303, 403, 403, 403, 403, 200]),
        row("GET", "/static/app.js", None, PUBLIC),
        row("GET", "/static/app.css", None, PUBLIC),
        // Last: it ends the sessions.
        row("POST", "/logout", None, [303, 204, 204, 204, 204, 204]),
    ]
}

/// The route as the router names it: `{cid}` etc. stand for the router's own parameter names.
fn router_path(path: &str) -> String {
    path.replace("{cid}", "{id}")
        .replace("{exercise}", "{id}")
        .replace("{alert}", "{id}")
        .replace("{spare}", "{id}")
        .replace(
            "/patients/{pid}/conversations/{id}",
            "/patients/{id}/conversations/{cid}",
        )
        .replace("{pid}", "{id}")
        .replace("/talk-requests/{talk}", "/talk-requests/{rid}")
}

#[tokio::test]
async fn the_table_covers_every_route_and_the_openapi_document() {
    let t = common::start().await;
    let table: BTreeSet<(String, String)> = table()
        .iter()
        .map(|r| (r.method.to_string(), router_path(r.path)))
        .collect();
    let served: BTreeSet<(String, String)> = t
        .routes
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    let missing: Vec<_> = served.difference(&table).collect();
    let extra: Vec<_> = table.difference(&served).collect();
    assert!(
        missing.is_empty(),
        "routes with no row in the access table: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "rows for routes the router does not serve: {extra:?}"
    );

    let doc: Value = reqwest::get(t.url("/api/v1/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let api: BTreeSet<(String, String)> = served
        .iter()
        .filter(|(_, p)| p.starts_with("/api/") || p.starts_with("/login") || p == "/logout")
        .filter(|(m, p)| !(m == "GET" && (p == "/login" || p == "/login/totp")))
        .cloned()
        .collect();
    assert_eq!(
        api, documented,
        "the OpenAPI document and the API routes differ"
    );
}

#[tokio::test]
async fn every_route_answers_each_role_as_the_table_says() {
    let t = common::start().await;
    let system = Actor::system("test");
    let admin = t.user("admin", Role::Admin).await;
    let clinician = t.user("clin", Role::Clinician).await;
    let _outsider = t.user("outsider", Role::Clinician).await;
    let patient = t.user("pat", Role::Patient).await;
    let _other = t.user("other", Role::Patient).await;
    let spare = t.user("spare", Role::Clinician).await;
    t.team(&clinician, &patient).await;
    let p = common::pid(&patient);
    let pa = Actor::user(patient.id, Role::Patient);
    let cid = t.store.create_conversation(&pa, p).await.unwrap();
    let alert = t
        .store
        .record_risk_event(
            &pa,
            NewRiskEvent {
                patient: p,
                conversation: Some(cid),
                message: None,
                source: "chat".into(),
                level: "high".into(),
                categories: vec!["suicide".into()],
                evidence: json!({"rules": ["test"]}),
            },
        )
        .await
        .unwrap();
    let item = t
        .store
        .add_care_plan_item(
            &system,
            NewCarePlanItem {
                patient: p,
                kind: CarePlanItemKind::Homework,
                text: "Keep a sleep diary".into(),
                due_at_ms: None,
            },
        )
        .await
        .unwrap();
    let talk = t
        .store
        .create_talk_request(&pa, p, None, t.state.now_ms())
        .await
        .unwrap();
    let exercise = t
        .state
        .engine
        .start_exercise(&pa, p, ExerciseKind::ThoughtRecord)
        .await
        .unwrap()
        .exercise;
    let _ = admin;

    let fill = |path: &str| {
        path.replace("{cid}", &cid.to_string())
            .replace("{pid}", &p.to_string())
            .replace("{instrument}", "phq9")
            .replace("{exercise}", &exercise.to_string())
            .replace("{item}", &item.to_string())
            .replace("{talk}", &talk.to_string())
            .replace("{alert}", &alert.to_string())
            .replace("{spare}", &spare.id.to_string())
            .replace("{clinician}", &clinician.id.to_string())
    };

    // One client per role, signed in once. Index as in ROLES.
    let mut sessions: Vec<Option<common::Session>> = vec![None];
    for name in ["pat", "other", "clin", "outsider", "admin"] {
        sessions.push(Some(t.login(name).await));
    }
    let anon = common::browser();
    let order = [0usize, 1, 2, 4, 5, 3];
    let mut failures = Vec::new();
    for r in table() {
        let url = t.url(&fill(r.path));
        for &i in &order {
            let method = Method::from_bytes(r.method.as_bytes()).unwrap();
            let mut req = match &sessions[i] {
                Some(s) => s
                    .client
                    .request(method, &url)
                    .header("x-csrf-token", &s.csrf),
                None => anon.request(method, &url),
            };
            if let Some(b) = &r.body {
                req = req
                    .body(fill(&b.to_string()))
                    .header("content-type", "application/json");
            }
            if let Some(f) = r.form {
                req = req
                    .body(f)
                    .header("content-type", "application/x-www-form-urlencoded");
            }
            let resp = req.send().await.unwrap();
            let got = resp.status().as_u16();
            if got != r.expect[i] {
                let body = if resp
                    .headers()
                    .get("content-type")
                    .is_some_and(|v| v.to_str().unwrap_or("").contains("event-stream"))
                {
                    String::from("<stream>")
                } else {
                    resp.text()
                        .await
                        .unwrap_or_default()
                        .chars()
                        .take(200)
                        .collect()
                };
                failures.push(format!(
                    "{} {} as {}: expected {}, got {got} ({body})",
                    r.method, r.path, ROLES[i], r.expect[i]
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
