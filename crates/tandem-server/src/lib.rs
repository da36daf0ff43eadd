//! Tandem's HTTP edge: the patient companion and clinician portal pages, the `/api/v1`
//! JSON API (described by the OpenAPI document at `/api/v1/openapi.json`), sign-in with
//! server-side sessions, CSRF protection, TOTP, and security headers on every response.
//!
//! Handlers stay thin: they parse, check the caller through the role extractors in
//! [`auth`] (a handler that takes a [`auth::ClinicianSession`] cannot run for anyone else),
//! reach a patient's record only through [`auth::access_patient`], call the store, the
//! engine or the care services, and map errors to status codes with a short message.
//! Details go to the log, never message text or personal data.
//!
//! Time is read through [`Clock`], so session expiry and lockout are testable without
//! sleeping.

pub mod api;
pub mod auth;
mod error;
pub mod escalation;
mod lazy_model;
pub mod pages;
pub mod routes;
mod security;

pub use error::ApiError;
pub use lazy_model::{LazyBackend, ModelState};
pub use routes::RouteInfo;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tandem_care::{Care, CaseloadRules, EscalationPolicy};
use tandem_engine::Engine;
use tandem_measures::Registry;
use tandem_store::Store;
use tokio::net::TcpListener;

/// Where "now" comes from.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// The system clock shifted by an adjustable offset: lets tests jump past an idle timeout.
#[derive(Default)]
pub struct OffsetClock {
    offset_ms: AtomicI64,
}

impl OffsetClock {
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for OffsetClock {
    fn now_ms(&self) -> i64 {
        SystemClock
            .now_ms()
            .saturating_add(self.offset_ms.load(Ordering::SeqCst))
    }
}

/// Web settings (the `[web]` section of the config).
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Signed out after this long without a request.
    pub idle_timeout: Duration,
    /// Signed out after this long whatever the activity.
    pub absolute_lifetime: Duration,
    /// Always mark cookies `Secure` (behind a TLS-terminating proxy that does not send
    /// `X-Forwarded-Proto`). Otherwise `Secure` is set when the request came over HTTPS.
    pub secure_cookies: bool,
    /// Failed sign-ins before an account is locked; each further failure doubles the lock.
    pub lockout_threshold: i64,
    /// The first lock's length.
    pub lockout_base: Duration,
    /// The longest lock.
    pub lockout_max: Duration,
    pub caseload: CaseloadRules,
    /// BCP 47 tag for crisis lines on pages.
    pub locale: String,
    /// When unacknowledged crisis alerts go to the on-call clinicians.
    pub escalation: EscalationPolicy,
    /// How often the escalation job runs.
    pub escalation_check: Duration,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            idle_timeout: Duration::from_secs(30 * 60),
            absolute_lifetime: Duration::from_secs(12 * 60 * 60),
            secure_cookies: false,
            lockout_threshold: 5,
            lockout_base: Duration::from_secs(30),
            lockout_max: Duration::from_secs(60 * 60),
            caseload: CaseloadRules::default(),
            locale: "en-US".into(),
            escalation: EscalationPolicy::default(),
            escalation_check: Duration::from_secs(30),
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub engine: Engine,
    pub care: Arc<Care>,
    pub registry: Arc<Registry>,
    pub config: Arc<WebConfig>,
    pub clock: Arc<dyn Clock>,
    /// Cancelled when the server shuts down, so long-lived streams (live alerts) end and
    /// graceful shutdown can finish.
    pub shutdown: tandem_model::CancellationToken,
    /// The model loading in the background, if it is (`/readyz` reports its state).
    pub lazy_model: Option<Arc<LazyBackend>>,
}

impl AppState {
    /// State over an engine (which holds the store, safety engine and model backend).
    pub fn new(engine: Engine, registry: Arc<Registry>, config: WebConfig) -> AppState {
        let store = engine.store().clone();
        let care = Arc::new(Care::new(store.clone(), registry.clone()));
        // The companion invites the patient to measures that are due.
        let engine = engine.with_care(care.clone());
        AppState {
            care,
            store,
            engine,
            registry,
            config: Arc::new(config),
            clock: Arc::new(SystemClock),
            shutdown: tandem_model::CancellationToken::new(),
            lazy_model: None,
        }
    }

    /// Reports this background-loading model's state on `/readyz`.
    pub fn with_lazy_model(mut self, model: Arc<LazyBackend>) -> AppState {
        self.lazy_model = Some(model);
        self
    }

    pub fn model_state(&self) -> ModelState {
        self.lazy_model
            .as_ref()
            .map_or(ModelState::Ready, |m| m.state())
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> AppState {
        self.clock = clock;
        self
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn now(&self) -> time::OffsetDateTime {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.now_ms()) * 1_000_000)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
    }
}

/// The application's routes, with the security headers and session layers.
pub fn router(state: AppState) -> Router {
    app(state).0
}

/// The router and the list of every route it serves (for the access-table test).
pub fn app(state: AppState) -> (Router, Vec<RouteInfo>) {
    let mut r = routes::Routes::new();
    r.get("/healthz", healthz);
    r.get("/readyz", readyz);
    auth::routes(&mut r);
    api::routes(&mut r);
    pages::routes(&mut r);
    let (router, list) = r.finish();
    let router = router
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::session_layer,
        ))
        .layer(axum::middleware::from_fn(security::headers))
        .with_state(state);
    (router, list)
}

/// A form sent without JavaScript to a page that only takes it through the API lands here:
/// say so instead of answering with an empty 405.
async fn method_not_allowed(uri: axum::http::Uri) -> Response {
    let status = StatusCode::METHOD_NOT_ALLOWED;
    if uri.path().starts_with("/api/") {
        return (
            status,
            Json(serde_json::json!({"error": "method not allowed"})),
        )
            .into_response();
    }
    pages::error_page(
        status,
        "This form needs JavaScript. Turn it on and try again; signing in and out, the chat and mood check-ins work without it.",
    )
}

async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the database answers. The model's state (`loading`, `ready`, `failed`) is
/// reported beside it but does not make the server unready: crisis responses and every
/// page work without the model.
async fn readyz(State(state): State<AppState>) -> Response {
    let backend = state.store.backend();
    let model = state.model_state();
    match state.store.ping().await {
        Ok(()) => Json(serde_json::json!({"status": "ready", "database": backend, "model": model}))
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed: database did not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(
                    serde_json::json!({"status": "unavailable", "database": backend, "model": model}),
                ),
            )
                .into_response()
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting connections
/// and waits for requests already in flight to finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| anyhow::anyhow!("the HTTP server stopped with an error: {e}"))
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received: finishing in-flight requests"),
        _ = term => tracing::info!("SIGTERM received: finishing in-flight requests"),
    }
}
