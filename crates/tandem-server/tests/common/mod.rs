//! A real server on 127.0.0.1:0 over a real SQLite file, with the fake model, for the web
//! tests. Readiness is awaited by polling `/healthz`, never by sleeping a fixed time.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tandem_companion::Library;
use tandem_domain::{ConsentKind, PatientId, Role, Username};
use tandem_engine::{Engine, EngineConfig};
use tandem_measures::Registry;
use tandem_model::fake::FakeBackend;
use tandem_model::ModelBackend;
use tandem_safety::SafetyEngine;
use tandem_server::{app, serve, AppState, OffsetClock, RouteInfo, WebConfig};
use tandem_store::{Actor, NewUser, SqlStore, Store, User};
use tandem_vault::MasterKey;

pub const PASSWORD: &str = "correct horse battery";
pub const FAKE_REPLY: &str = "That sounds hard. What helped a little today?";

pub struct TestApp {
    pub base: String,
    pub store: Arc<SqlStore>,
    pub fake: Arc<FakeBackend>,
    pub clock: Arc<OffsetClock>,
    pub routes: Vec<RouteInfo>,
    pub state: AppState,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.state.shutdown.cancel();
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

pub async fn start() -> TestApp {
    let fake = Arc::new(FakeBackend::always(FAKE_REPLY));
    start_with(fake.clone(), fake, WebConfig::default()).await
}

pub async fn start_with(
    fake: Arc<FakeBackend>,
    model: Arc<dyn ModelBackend>,
    config: WebConfig,
) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let store = Arc::new(SqlStore::open(&url, MasterKey::generate()).await.unwrap());
    let engine = Engine::new(
        store.clone(),
        Arc::new(SafetyEngine::load_default().unwrap()),
        model,
        Arc::new(Library::load_default().unwrap()),
        EngineConfig {
            seed: Some(1),
            model_timeout: Duration::from_secs(20),
            ..EngineConfig::default()
        },
    );
    let clock = Arc::new(OffsetClock::default());
    let state = AppState::new(engine, Arc::new(Registry::builtin().unwrap()), config)
        .with_clock(clock.clone());
    let (router, routes) = app(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(listener, router, async {
        let _ = stop_rx.await;
    }));
    let probe = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(r) = probe.get(format!("{base}/healthz")).send().await {
            if r.status() == 200 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    TestApp {
        base,
        store,
        fake,
        clock,
        routes,
        state,
        _dir: dir,
        stop: Some(stop_tx),
    }
}

/// A browser-like client: cookies kept, redirects not followed (tests look at them).
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Creates an account directly in the store (as `tandem user add` does). Patients get
    /// AI consent, as the admin API gives it.
    pub async fn user(&self, name: &str, role: Role) -> User {
        let hash = tandem_vault::hash_password(PASSWORD).unwrap();
        let u = self
            .store
            .create_user(
                &Actor::system("test"),
                NewUser {
                    username: Username::parse(name).unwrap(),
                    role,
                    password_hash: hash,
                },
            )
            .await
            .unwrap();
        if let Some(p) = u.patient_id() {
            self.store
                .record_consent(&Actor::system("test"), p, ConsentKind::AiProcessing, true)
                .await
                .unwrap();
        }
        u
    }

    pub async fn team(&self, clinician: &User, patient: &User) {
        self.store
            .assign_care_team(
                &Actor::system("test"),
                clinician.id,
                patient.patient_id().unwrap(),
            )
            .await
            .unwrap();
    }

    /// Signs in over JSON; returns the client holding the session cookie.
    pub async fn login(&self, name: &str) -> Session {
        let client = browser();
        let r = client
            .post(self.url("/login"))
            .json(&json!({"username": name, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "login {name}");
        let body: Value = r.json().await.unwrap();
        Session {
            client,
            csrf: body["csrf_token"].as_str().unwrap().to_string(),
            token: body["token"].as_str().unwrap().to_string(),
            base: self.base.clone(),
        }
    }
}

/// A signed-in client.
pub struct Session {
    pub client: reqwest::Client,
    pub csrf: String,
    pub token: String,
    pub base: String,
}

impl Session {
    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(format!("{}{path}", self.base))
    }
    /// A state-changing request with the session's CSRF token.
    pub fn send(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .header("x-csrf-token", &self.csrf)
    }
    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.send(reqwest::Method::POST, path)
    }
    /// A page's HTML, whatever the status.
    pub async fn page(&self, path: &str) -> String {
        self.get(path).send().await.unwrap().text().await.unwrap()
    }
    pub async fn json(&self, path: &str) -> Value {
        let r = self.get(path).send().await.unwrap();
        assert_eq!(r.status(), 200, "GET {path}");
        r.json().await.unwrap()
    }
}

/// Reads a server-sent event stream to its end; returns (event, data) pairs.
pub async fn read_sse(resp: reqwest::Response) -> Vec<(String, Value)> {
    let text = resp.text().await.unwrap();
    parse_sse(&text)
}

pub fn parse_sse(text: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for block in text.replace('\r', "").split("\n\n") {
        let mut name = "message".to_string();
        let mut data = String::new();
        for line in block.lines() {
            if let Some(n) = line.strip_prefix("event:") {
                name = n.trim().to_string();
            } else if let Some(d) = line.strip_prefix("data:") {
                data.push_str(d.trim_start());
            }
        }
        if !data.is_empty() {
            out.push((name, serde_json::from_str(&data).unwrap_or(Value::Null)));
        }
    }
    out
}

pub fn pid(u: &User) -> PatientId {
    u.patient_id().unwrap()
}

/// Reads a server-sent event stream until an event called `name` arrives (10 s at most);
/// returns its data.
pub async fn next_event(
    stream: &mut (impl futures_util::Stream<Item = reqwest::Result<axum::body::Bytes>> + Unpin),
    buf: &mut String,
    name: &str,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some((_, v)) = parse_sse(buf).into_iter().find(|(n, _)| n == name) {
            // Consume what was parsed.
            if let Some(end) = buf.rfind("\n\n") {
                buf.drain(..end + 2);
            }
            return v;
        }
        let chunk = tokio::time::timeout_at(deadline, futures_util::StreamExt::next(stream))
            .await
            .expect("no event in time")
            .expect("stream ended")
            .unwrap();
        buf.push_str(&String::from_utf8_lossy(&chunk));
    }
}
