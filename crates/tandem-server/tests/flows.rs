//! End-to-end flows over the real server with the fake model: chat streaming, the crisis
//! path with a live alert on the clinician's stream, care plan edits reaching the prompt,
//! privacy by URL, break-glass, measures, consent, export and erasure, security headers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{next_event, read_sse, TestApp, FAKE_REPLY, PASSWORD};
use serde_json::{json, Value};
use std::sync::Arc;
use tandem_domain::Role;
use tandem_model::fake::FakeBackend;
use tandem_server::{LazyBackend, WebConfig};
use tandem_store::{Store, User};

const CRISIS: &str = "I'm going to take all my pills tonight, I have them ready";

struct World {
    t: TestApp,
    patient: User,
    other: User,
    clinician: User,
}

async fn world_on(t: TestApp) -> World {
    let patient = t.user("pat", Role::Patient).await;
    let other = t.user("other", Role::Patient).await;
    let clinician = t.user("clin", Role::Clinician).await;
    t.user("outsider", Role::Clinician).await;
    t.team(&clinician, &patient).await;
    World {
        t,
        patient,
        other,
        clinician,
    }
}

async fn world() -> World {
    world_on(common::start().await).await
}

async fn new_conversation(s: &common::Session) -> String {
    let r = s.post("/api/v1/conversations").send().await.unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert!(v["disclosure"].as_str().unwrap().contains("not a person"));
    v["id"].as_str().unwrap().to_string()
}

async fn say(s: &common::Session, cid: &str, text: &str) -> Vec<(String, Value)> {
    let r = s
        .post(&format!("/api/v1/conversations/{cid}/messages"))
        .json(&json!({"text": text}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    read_sse(r).await
}

fn done(events: &[(String, Value)]) -> Value {
    events
        .iter()
        .find(|(n, _)| n == "done")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("no done event: {events:?}"))
}

/// What the patient saw: deltas appended, replace starting over.
fn shown(events: &[(String, Value)]) -> String {
    let mut s = String::new();
    for (n, v) in events {
        match n.as_str() {
            "delta" => s.push_str(v["text"].as_str().unwrap()),
            "replace" => s = v["text"].as_str().unwrap().to_string(),
            _ => {}
        }
    }
    s
}

#[tokio::test]
async fn a_chat_reply_streams_in_and_the_history_and_page_show_it() {
    let w = world().await;
    let s = w.t.login("pat").await;
    let cid = new_conversation(&s).await;
    let events = say(&s, &cid, "I had a rough day at work").await;
    assert!(events.iter().any(|(n, _)| n == "delta"));
    let d = done(&events);
    assert_eq!(d["reply"], FAKE_REPLY);
    assert_eq!(shown(&events).trim(), FAKE_REPLY);
    let msgs = s
        .json(&format!("/api/v1/conversations/{cid}/messages"))
        .await;
    assert_eq!(msgs["messages"].as_array().unwrap().len(), 2);
    let page = s.page("/chat").await;
    assert!(page.contains("Tandem is an AI, not a person"));
    assert!(page.contains("id=\"crisis-link\""));
    assert!(page.contains("id=\"talk-to-clinician\""));
    assert!(page.contains("I had a rough day at work"));
    assert!(page.contains(&format!("data-conversation=\"{cid}\"")));
}

#[tokio::test]
async fn a_crisis_gets_the_fixed_response_and_a_live_alert_the_clinician_acknowledges() {
    let w = world().await;
    let clin = w.t.login("clin").await;
    let resp = clin.get("/api/v1/alerts/stream").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    next_event(&mut stream, &mut buf, "ready").await;

    let s = w.t.login("pat").await;
    let cid = new_conversation(&s).await;
    let events = say(&s, &cid, CRISIS).await;
    let d = done(&events);
    let actions: Vec<&str> = d["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(actions.contains(&"crisis_response"), "{actions:?}");
    assert!(actions.contains(&"clinician_alert"), "{actions:?}");
    assert!(
        shown(&events).contains("988"),
        "the US crisis line is shown"
    );
    assert!(
        w.t.fake.requests().is_empty(),
        "the crisis path never calls the model"
    );
    let risk_event = d["risk_event"].as_str().unwrap().to_string();

    let alert = next_event(&mut stream, &mut buf, "alert").await;
    assert_eq!(alert["id"], risk_event.as_str());
    assert_eq!(alert["username"], "pat");
    assert_eq!(alert["urgent"], true);

    // The caseload puts it first and says why.
    let other = w.t.user("calm", Role::Patient).await;
    w.t.team(&w.clinician, &other).await;
    let caseload = clin.json("/api/v1/patients").await;
    let rows = caseload["patients"].as_array().unwrap();
    assert_eq!(rows[0]["username"], "pat");
    assert!(rows[0]["reason"]
        .as_str()
        .unwrap()
        .starts_with("1 unacknowledged crisis alert"));
    let page = clin.page("/clinician").await;
    assert!(page.contains("data-alert-stream"));
    assert!(page.contains("unacknowledged crisis alert"));

    let alerts = clin.json("/api/v1/alerts").await;
    assert_eq!(alerts["alerts"].as_array().unwrap().len(), 1);
    let ack = clin
        .post(&format!("/api/v1/alerts/{risk_event}/acknowledge"))
        .json(&json!({"note": "Called the patient; safe with family."}))
        .send()
        .await
        .unwrap();
    assert_eq!(ack.status(), 204);
    let again = clin
        .post(&format!("/api/v1/alerts/{risk_event}/acknowledge"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    assert!(clin.json("/api/v1/alerts").await["alerts"]
        .as_array()
        .unwrap()
        .is_empty());
    let detail = clin
        .json(&format!("/api/v1/patients/{}", common::pid(&w.patient)))
        .await;
    let ackd = &detail["risk_events"][0]["acknowledgement"];
    assert_eq!(ackd["clinician"], w.clinician.id.to_string());
    assert!(ackd["at_ms"].as_i64().unwrap() > 0);
}

#[tokio::test]
async fn a_patient_cannot_reach_another_patients_record_by_url() {
    let w = world().await;
    let owner = w.t.login("pat").await;
    let cid = new_conversation(&owner).await;
    say(&owner, &cid, "A private message").await;
    let ex: Value = owner
        .post("/api/v1/exercises")
        .json(&json!({"kind": "thought_record"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ex = ex["exercise"].as_str().unwrap().to_string();
    let p = common::pid(&w.patient);

    let intruder = w.t.login("other").await;
    let status = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(
        status(
            intruder
                .get(&format!("/api/v1/conversations/{cid}/messages"))
                .send()
                .await
                .unwrap()
        ),
        404
    );
    assert_eq!(
        status(
            intruder
                .post(&format!("/api/v1/conversations/{cid}/messages"))
                .json(&json!({"text": "hi"}))
                .send()
                .await
                .unwrap()
        ),
        404
    );
    assert_eq!(
        status(
            intruder
                .post(&format!("/api/v1/exercises/{ex}/steps"))
                .json(&json!({"text": "x"}))
                .send()
                .await
                .unwrap()
        ),
        404
    );
    assert_eq!(
        status(
            intruder
                .get(&format!("/api/v1/patients/{p}"))
                .send()
                .await
                .unwrap()
        ),
        403
    );
    assert_eq!(
        status(
            intruder
                .get(&format!("/clinician/patients/{p}"))
                .send()
                .await
                .unwrap()
        ),
        403
    );
    assert_eq!(
        status(
            intruder
                .get(&format!("/clinician/patients/{p}/conversations/{cid}"))
                .send()
                .await
                .unwrap()
        ),
        403
    );
    // Their own views show none of it.
    let mine = intruder.json("/api/v1/conversations").await;
    assert!(mine["conversations"].as_array().unwrap().is_empty());
    let export: Value = intruder.json("/api/v1/me/export").await;
    assert!(!export.to_string().contains("A private message"));
    let _ = w.other;
}

#[tokio::test]
async fn the_care_plan_a_clinician_edits_reaches_the_next_prompt() {
    let w = world().await;
    let clin = w.t.login("clin").await;
    let p = common::pid(&w.patient);
    let homework = "Try the 5-4-3-2-1 grounding exercise when anxious";
    let r = clin
        .post(&format!("/api/v1/patients/{p}/care-plan/items"))
        .json(&json!({"kind": "homework", "text": homework}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = clin
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/patients/{p}/care-plan/ai-preferences"),
        )
        .json(&json!({"topics_to_avoid": ["body weight"], "tone": "gentle and brief"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    let s = w.t.login("pat").await;
    let plan = s.json("/api/v1/care-plan").await;
    assert_eq!(plan["items"][0]["text"], homework);
    let page = s.page("/care-plan").await;
    assert!(page.contains(homework));

    let cid = new_conversation(&s).await;
    say(&s, &cid, "I felt anxious on the bus today").await;
    let req = w.t.fake.requests().pop().expect("the model was called");
    let prompt: String = req
        .messages
        .iter()
        .map(|m| m.content.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        prompt.contains(homework),
        "homework missing from the prompt"
    );
    assert!(
        prompt.contains("body weight"),
        "topics to avoid missing from the prompt"
    );
    assert!(
        prompt.contains("gentle and brief"),
        "tone missing from the prompt"
    );

    // The clinician's page shows the plan with its editor.
    let page = clin.page(&format!("/clinician/patients/{p}")).await;
    assert!(page.contains(homework));
    assert!(page.contains("id=\"care-plan-form\""));
    assert!(page.contains("value=\"gentle and brief\""));
}

#[tokio::test]
async fn export_downloads_everything_and_delete_erases_after_the_password() {
    let w = world().await;
    let s = w.t.login("pat").await;
    let cid = new_conversation(&s).await;
    say(&s, &cid, "Something to remember").await;
    let r = s.get("/api/v1/me/export").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    let export: Value = r.json().await.unwrap();
    assert_eq!(export["format"], "tandem-patient-export/v1");
    assert!(export.to_string().contains("Something to remember"));

    let wrong = s
        .post("/api/v1/me/delete")
        .json(&json!({"password": "not my password", "confirm": "delete my account"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 403);
    let ok = s
        .post("/api/v1/me/delete")
        .json(&json!({"password": PASSWORD, "confirm": "delete my account"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(s.get("/api/v1/me").send().await.unwrap().status(), 401);
    assert!(w.t.store.user(w.patient.id).await.unwrap().is_none());
    let again = common::browser()
        .post(w.t.url("/login"))
        .json(&json!({"username": "pat", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 401);
}

#[tokio::test]
async fn security_headers_are_on_every_response_and_pages_have_no_inline_code() {
    let w = world().await;
    let s = w.t.login("pat").await;
    let clin = w.t.login("clin").await;
    let p = common::pid(&w.patient);
    let csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
    let anon = common::browser();
    let mut responses = vec![
        anon.get(w.t.url("/login")).send().await.unwrap(),
        anon.get(w.t.url("/api/v1/me")).send().await.unwrap(),
        anon.get(w.t.url("/no-such-page")).send().await.unwrap(),
        anon.get(w.t.url("/static/app.js")).send().await.unwrap(),
        anon.get(w.t.url("/healthz")).send().await.unwrap(),
    ];
    for path in [
        "/chat",
        "/mood",
        "/measures",
        "/measures/phq9",
        "/exercises",
        "/progress",
        "/care-plan",
        "/my-data",
        "/api/v1/me",
    ] {
        responses.push(s.get(path).send().await.unwrap());
    }
    for path in [
        "/clinician",
        "/clinician/alerts",
        &format!("/clinician/patients/{p}"),
    ] {
        responses.push(clin.get(path).send().await.unwrap());
    }
    for r in responses {
        let url = r.url().path().to_string();
        let h = r.headers().clone();
        assert_eq!(h["content-security-policy"], csp, "{url}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{url}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{url}");
        assert_eq!(h["x-frame-options"], "DENY", "{url}");
        if !url.starts_with("/static/") {
            assert_eq!(h["cache-control"], "no-store", "{url}");
        }
        let is_html = h
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap().starts_with("text/html"));
        if is_html {
            let body = r.text().await.unwrap();
            assert!(!body.contains("<script>"), "inline script on {url}");
            assert!(!body.contains("<style"), "inline style on {url}");
            assert!(!body.contains(" style="), "style attribute on {url}");
            assert!(!has_inline_handler(&body), "inline event handler on {url}");
            assert!(body.contains("class=\"skip-link\""), "skip link on {url}");
            assert!(body.contains("<main id=\"main\""), "main landmark on {url}");
            assert!(body.contains("href=\"/crisis\""), "crisis link on {url}");
        }
    }
}

/// `onclick=`, `onload=`...: an attribute that starts with "on" and is all letters.
fn has_inline_handler(html: &str) -> bool {
    html.match_indices(" on").any(|(i, _)| {
        let rest = &html[i + 3..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_lowercase())
            .collect();
        !name.is_empty() && rest[name.len()..].starts_with('=')
    })
}

#[tokio::test]
async fn break_glass_needs_a_reason_is_audited_and_shown_to_the_care_team() {
    let w = world().await;
    let out = w.t.login("outsider").await;
    let p = common::pid(&w.patient);
    assert_eq!(
        out.get(&format!("/api/v1/patients/{p}"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    let r = out
        .get(&format!("/api/v1/patients/{p}"))
        .header(
            "x-break-glass-reason",
            "On call: patient phoned the crisis line",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page = out
        .get(&format!(
            "/clinician/patients/{p}?reason=Covering+for+a+colleague"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page
        .text()
        .await
        .unwrap()
        .contains("id=\"break-glass-notice\""));

    let clin = w.t.login("clin").await;
    let d = clin.json(&format!("/api/v1/patients/{p}")).await;
    let bg = d["break_glass"].as_array().unwrap();
    assert_eq!(bg.len(), 2);
    assert_eq!(bg[0]["reason"], "On call: patient phoned the crisis line");
    let audit = w.t.store.audit_entries(Some(p)).await.unwrap();
    assert!(audit
        .iter()
        .any(|e| e.action == "break_glass"
            && e.reason.as_deref() == Some("Covering for a colleague")));
    // Reads under break-glass carry the reason too.
    assert!(audit
        .iter()
        .any(|e| e.action == "risk_events_read" && e.reason.is_some()));
}

#[tokio::test]
async fn measures_mood_exercises_talk_requests_and_consent_work_and_shape_the_caseload() {
    let w = world().await;
    let s = w.t.login("pat").await;
    let clin = w.t.login("clin").await;
    let p = common::pid(&w.patient);
    // The clinician schedules PHQ-9; it is due at once.
    let r = clin
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/patients/{p}/measure-schedules"),
        )
        .json(&json!({"instrument": "PHQ-9", "every_days": 14}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let due = s.json("/api/v1/measures/due").await;
    assert_eq!(due["measures"][0]["status"]["status"], "due");
    let live = clin.get("/api/v1/alerts/stream").send().await.unwrap();
    let mut stream = live.bytes_stream();
    let mut buf = String::new();
    next_event(&mut stream, &mut buf, "ready").await;
    // Item 9 answered "more than half the days": a risk flag and a step-up message.
    let r = s
        .post("/api/v1/measures/phq9")
        .json(&json!({"answers": [3, 3, 2, 3, 2, 3, 2, 2, 2]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let sub: Value = r.json().await.unwrap();
    assert_eq!(sub["risk_flag"], true);
    assert!(sub["step_up_message"].as_str().is_some());
    assert!(sub["score"]["total"].as_u64().unwrap() >= 20);
    let alert = next_event(&mut stream, &mut buf, "alert").await;
    assert_eq!(alert["level"], "high");
    assert_eq!(alert["username"], "pat");
    let bad = s
        .post("/api/v1/measures/phq9")
        .json(&json!({"answers": [9]}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let svg = s
        .get("/api/v1/measures/phq9/chart.svg")
        .send()
        .await
        .unwrap();
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    assert!(svg.text().await.unwrap().contains("<svg"));
    let progress = s.page("/progress").await;
    assert!(progress.contains("/api/v1/measures/PHQ-9/chart.svg"));

    let r = s
        .post("/api/v1/mood")
        .json(&json!({"rating": 3, "words": ["tired", "flat"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(s.json("/api/v1/mood").await["moods"][0]["words"][1], "flat");

    let ex: Value = s
        .post("/api/v1/exercises")
        .json(&json!({"kind": "thought_record"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = ex["exercise"].as_str().unwrap();
    let step: Value = s
        .post(&format!("/api/v1/exercises/{id}/steps"))
        .json(&json!({"text": "My friend did not answer my message"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(step["prompt"]["text"].as_str().is_some());
    let current = s.json("/api/v1/exercises/current").await;
    assert_eq!(current["exercise"]["exercise"], id);

    let r = s
        .post("/api/v1/talk-requests")
        .json(&json!({"note": "Could we talk before Thursday?"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let row = &clin.json("/api/v1/patients").await["patients"][0];
    let reason = row["reason"].as_str().unwrap();
    assert!(reason.contains("current risk: high"), "{reason}");
    assert!(reason.contains("severe score on PHQ-9"), "{reason}");
    assert!(reason.contains("asked to talk to you"), "{reason}");
    let detail = clin.json(&format!("/api/v1/patients/{p}")).await;
    assert!(detail["step_up"]["clinician_summary"].as_str().is_some());
    assert_eq!(
        detail["talk_requests"][0]["note"],
        "Could we talk before Thursday?"
    );

    // Withdrawing consent stops the companion and tells the care team.
    let r = s
        .post("/api/v1/me/consent")
        .json(&json!({"ai_processing": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let before = w.t.fake.requests().len();
    let cid = new_conversation(&s).await;
    let events = say(&s, &cid, "Hello again").await;
    assert!(done(&events)["actions"]
        .as_array()
        .unwrap()
        .contains(&json!("consent_withdrawn")));
    assert_eq!(
        w.t.fake.requests().len(),
        before,
        "no model call without consent"
    );
    let row = &clin.json("/api/v1/patients").await["patients"][0];
    assert!(row["reason"]
        .as_str()
        .unwrap()
        .contains("withdrew consent to AI processing"));
}

#[tokio::test]
async fn before_the_model_loads_the_companion_cannot_reply_but_crises_are_answered() {
    let fake = Arc::new(FakeBackend::always("unused"));
    let lazy = Arc::new(LazyBackend::new());
    let t = common::start_with(fake, lazy.clone(), WebConfig::default()).await;
    let w = world_on(t).await;
    let s = w.t.login("pat").await;
    let cid = new_conversation(&s).await;
    let events = say(&s, &cid, "How do I sleep better?").await;
    assert!(shown(&events).contains("can't reply right now"));
    let events = say(&s, &cid, CRISIS).await;
    assert!(shown(&events).contains("988"));
    // Once loaded, replies come from the model.
    lazy.set(Arc::new(FakeBackend::always("Loaded now.")));
    let cid = new_conversation(&s).await;
    let events = say(&s, &cid, "Hello?").await;
    assert_eq!(done(&events)["reply"], "Loaded now.");
}

#[tokio::test]
async fn an_admin_creates_accounts_and_teams_and_the_patient_decides_on_ai_consent() {
    let w = world().await;
    w.t.user("admin", Role::Admin).await;
    let a = w.t.login("admin").await;
    let r = a
        .post("/api/v1/admin/users")
        .json(&json!({"username": "sam", "password": "a long enough password", "role": "patient"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let sam: Value = r.json().await.unwrap();
    let r = a
        .post("/api/v1/admin/teams")
        .json(&json!({"clinician": w.clinician.id.to_string(), "patient": sam["id"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let short = a
        .post("/api/v1/admin/users")
        .json(&json!({"username": "kim", "password": "short", "role": "patient"}))
        .send()
        .await
        .unwrap();
    assert_eq!(short.status(), 400);

    let c = common::browser();
    let r = c
        .post(w.t.url("/login"))
        .json(&json!({"username": "sam", "password": "a long enough password"}))
        .send()
        .await
        .unwrap();
    let csrf = r.json::<Value>().await.unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_string();
    let page = c
        .get(w.t.url("/chat"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("id=\"consent-prompt\""),
        "no consent given yet"
    );
    let r = c
        .post(w.t.url("/api/v1/me/consent"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"ai_processing": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let page = c
        .get(w.t.url("/chat"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("id=\"consent-prompt\""));
    let clin = w.t.login("clin").await;
    let rows = clin.json("/api/v1/patients").await;
    assert!(rows["patients"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["username"] == "sam"));
}

#[tokio::test]
async fn the_care_team_sees_when_the_companion_nudged_towards_people() {
    let w = world().await;
    let pid = common::pid(&w.patient);
    w.t.store
        .record_nudge(
            &tandem_store::Actor::system("test"),
            pid,
            &["no_human_contact".into()],
        )
        .await
        .unwrap();
    let clin = w.t.login("clin").await;
    let detail = clin.json(&format!("/api/v1/patients/{pid}")).await;
    assert_eq!(detail["nudges"][0]["reasons"], json!(["no_human_contact"]));
    let page = clin.page(&format!("/clinician/patients/{pid}")).await;
    assert!(page.contains("Reliance on the companion"));
    assert!(page.contains("no human contact"));
    let audit = w.t.store.audit_entries(Some(pid)).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "nudges_read"
        && e.actor.as_deref() == Some(&w.clinician.id.to_string()[..])));
}

#[tokio::test]
async fn the_plain_chat_form_runs_the_same_safety_checked_turn() {
    let w = world().await;
    let s = w.t.login("pat").await;
    let send = |text: &str| {
        let body = format!(
            "csrf={}&text={}",
            s.csrf,
            text.replace(' ', "+")
                .replace(',', "%2C")
                .replace('\'', "%27")
        );
        s.post("/chat/send")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    // No conversation yet: the first message starts one; the reply is in the history.
    let r = send("I had a rough day").await.unwrap();
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_string();
    assert!(to.starts_with("/chat#m-"), "{to}");
    let page = s.page("/chat").await;
    assert!(page.contains("I had a rough day"));
    assert!(page.contains(FAKE_REPLY));

    let r = send(CRISIS).await.unwrap();
    assert_eq!(r.status(), 303);
    let page = s.page("/chat").await;
    assert!(
        page.contains("988"),
        "the crisis response with the crisis line"
    );
    let clin = w.t.login("clin").await;
    let alerts = clin.json("/api/v1/alerts").await;
    assert_eq!(
        alerts["alerts"].as_array().unwrap().len(),
        1,
        "the care team is alerted"
    );
    assert_eq!(
        w.t.fake.requests().len(),
        1,
        "only the ordinary message reached the model"
    );

    // Empty: a clear error, nothing stored.
    let r = send("   ").await.unwrap();
    assert_eq!(r.status(), 400);
    let convs = s.json("/api/v1/conversations").await;
    assert_eq!(convs["conversations"].as_array().unwrap().len(), 1);
}
