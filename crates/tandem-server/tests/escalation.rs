//! Unacknowledged crisis alerts escalate to the on-call clinician: live over the alert
//! stream from the background job, on their alerts list, with audited access to the
//! patient until they acknowledge. Time moves with the server's clock, never by sleeping.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{next_event, pid, read_sse, Session, TestApp};
use serde_json::{json, Value};
use std::time::Duration;
use tandem_domain::Role;
use tandem_model::fake::FakeBackend;
use tandem_server::WebConfig;
use tandem_store::{Store, User};

const CRISIS: &str = "I'm going to take all my pills tonight, I have them ready";

struct World {
    t: TestApp,
    patient: User,
    clinician: User,
    oncall: User,
}

async fn world(config: WebConfig) -> World {
    let fake = std::sync::Arc::new(FakeBackend::always(common::FAKE_REPLY));
    let t = common::start_with(fake.clone(), fake, config).await;
    let patient = t.user("pat", Role::Patient).await;
    let clinician = t.user("clin", Role::Clinician).await;
    let oncall = t.user("oncall", Role::Clinician).await;
    t.user("admin", Role::Admin).await;
    t.team(&clinician, &patient).await;
    World {
        t,
        patient,
        clinician,
        oncall,
    }
}

async fn set_on_call(t: &TestApp, who: &User, on: bool) {
    let admin = t.login("admin").await;
    let r = admin
        .post("/api/v1/admin/on-call")
        .json(&json!({"clinician": who.id.to_string(), "on_call": on}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let list = admin.json("/api/v1/admin/on-call").await;
    let names: Vec<&str> = list["on_call"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names.contains(&who.username.as_str()), on, "{names:?}");
}

/// The patient sends a crisis message; returns the risk event id.
async fn crisis(t: &TestApp) -> String {
    let s = t.login("pat").await;
    let r = s.post("/api/v1/conversations").send().await.unwrap();
    let cid = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = s
        .post(&format!("/api/v1/conversations/{cid}/messages"))
        .json(&json!({"text": CRISIS}))
        .send()
        .await
        .unwrap();
    let events = read_sse(r).await;
    let done = &events.iter().find(|(n, _)| n == "done").unwrap().1;
    done["risk_event"].as_str().unwrap().to_string()
}

async fn status(s: &Session, path: &str) -> u16 {
    s.get(path).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn an_alert_nobody_acknowledges_reaches_the_on_call_clinician_live() {
    let w = world(WebConfig {
        escalation_check: Duration::from_millis(50),
        ..WebConfig::default()
    })
    .await;
    let job = tandem_server::escalation::spawn_job(w.t.state.clone());
    set_on_call(&w.t, &w.oncall, true).await;

    let oncall = w.t.login("oncall").await;
    let patient_api = format!("/api/v1/patients/{}", pid(&w.patient));
    assert_eq!(status(&oncall, &patient_api).await, 403);
    let resp = oncall.get("/api/v1/alerts/stream").send().await.unwrap();
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    next_event(&mut stream, &mut buf, "ready").await;

    let risk_event = crisis(&w.t).await;
    // Not yet overdue: the job runs but the on-call clinician has nothing.
    assert!(oncall.json("/api/v1/alerts").await["alerts"]
        .as_array()
        .unwrap()
        .is_empty());

    w.t.clock.advance(Duration::from_secs(16 * 60));
    let alert = next_event(&mut stream, &mut buf, "alert").await;
    assert_eq!(alert["id"], risk_event.as_str());
    assert_eq!(alert["escalated_to_me"], true);
    assert_eq!(alert["urgent"], true);
    assert_eq!(alert["username"], "pat");

    let list = oncall.json("/api/v1/alerts").await;
    let alerts = list["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["escalated_to_me"], true);
    assert!(alerts[0]["escalated_at_ms"].as_i64().unwrap() > 0);
    let page = oncall.page("/clinician/alerts").await;
    assert!(page.contains("Escalated to you"), "the alerts page says so");

    // The on-call clinician may now open the record; the reads carry the reason.
    assert_eq!(status(&oncall, &patient_api).await, 200);
    let audit =
        w.t.store
            .audit_entries(Some(pid(&w.patient)))
            .await
            .unwrap();
    assert!(audit.iter().any(|e| e.action == "alert_escalated"
        && e.detail
            .as_deref()
            .unwrap()
            .contains(&w.oncall.id.to_string())));
    assert!(audit
        .iter()
        .any(|e| e.actor.as_deref() == Some(&w.oncall.id.to_string()[..])
            && e.reason.as_deref() == Some("on call: escalated crisis alert")));

    let ack = oncall
        .post(&format!("/api/v1/alerts/{risk_event}/acknowledge"))
        .json(&json!({"note": "Reached the patient by phone."}))
        .send()
        .await
        .unwrap();
    assert_eq!(ack.status(), 204);
    assert!(oncall.json("/api/v1/alerts").await["alerts"]
        .as_array()
        .unwrap()
        .is_empty());
    // The care team sees who acknowledged and that it had been escalated.
    let clin = w.t.login("clin").await;
    let detail = clin.json(&patient_api).await;
    let ev = &detail["risk_events"][0];
    assert_eq!(ev["acknowledgement"]["clinician"], w.oncall.id.to_string());
    assert!(ev["escalated_at_ms"].as_i64().is_some());
    job.abort();
}

#[tokio::test]
async fn acknowledged_alerts_never_escalate_and_without_anyone_on_call_they_wait() {
    let w = world(WebConfig::default()).await;
    let first = crisis(&w.t).await;
    let clin = w.t.login("clin").await;
    let r = clin
        .post(&format!("/api/v1/alerts/{first}/acknowledge"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let second = crisis(&w.t).await;

    // Fourteen minutes: not overdue.
    w.t.clock.advance(Duration::from_secs(14 * 60));
    let run = tandem_server::escalation::run_once(&w.t.state)
        .await
        .unwrap();
    assert!(run.escalated.is_empty());
    assert_eq!(run.waiting_for_on_call, 0);

    // Overdue, but nobody is on call: it waits, and the on-call clinician has no access.
    w.t.clock.advance(Duration::from_secs(2 * 60));
    let run = tandem_server::escalation::run_once(&w.t.state)
        .await
        .unwrap();
    assert!(run.escalated.is_empty());
    assert_eq!(run.waiting_for_on_call, 1);
    let oncall = w.t.login("oncall").await;
    let patient_api = format!("/api/v1/patients/{}", pid(&w.patient));
    assert_eq!(status(&oncall, &patient_api).await, 403);

    // Someone goes on call: only the unacknowledged one escalates, once.
    set_on_call(&w.t, &w.oncall, true).await;
    let run = tandem_server::escalation::run_once(&w.t.state)
        .await
        .unwrap();
    assert_eq!(run.escalated.len(), 1);
    assert_eq!(run.escalated[0].risk_event.to_string(), second);
    assert_eq!(run.escalated[0].to, vec![w.oncall.id]);
    let again = tandem_server::escalation::run_once(&w.t.state)
        .await
        .unwrap();
    assert!(again.escalated.is_empty());

    // The care-team clinician keeps the alert too, now marked escalated.
    let alerts = clin.json("/api/v1/alerts").await;
    let a = &alerts["alerts"].as_array().unwrap()[0];
    assert_eq!(a["id"], second.as_str());
    assert_eq!(a["escalated_to_me"], false);
    assert!(a["escalated_at_ms"].as_i64().is_some());

    // After acknowledgement the on-call clinician keeps access for the window, then not.
    let r = clin
        .post(&format!("/api/v1/alerts/{second}/acknowledge"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(status(&oncall, &patient_api).await, 200);
    w.t.clock.advance(Duration::from_secs(73 * 60 * 60));
    // The session would have expired; sign in again.
    let oncall = w.t.login("oncall").await;
    assert_eq!(status(&oncall, &patient_api).await, 403);
    let _ = &w.clinician;
}
