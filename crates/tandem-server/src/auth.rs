//! Sign-in, sessions, CSRF, TOTP, the role extractors, and the one door to a patient's
//! record ([`access_patient`]).
//!
//! * Sessions live in the database; the browser holds a random opaque token and the store
//!   only its SHA-256, so a database copy cannot sign anyone in. The cookie is `HttpOnly;
//!   SameSite=Strict`, plus `Secure` over HTTPS. Sessions end after an idle timeout and an
//!   absolute lifetime ([`session_status`], with time as a parameter).
//! * Every state-changing request authenticated by the cookie must carry the session's
//!   synchronizer token: the `X-CSRF-Token` header (API, scripts on our pages) or a `csrf`
//!   form field. `Authorization: Bearer <session token>` (for scripts) needs no CSRF token:
//!   browsers never send it on their own.
//! * Five failed sign-ins for a login name (known or not) lock it; each further failure
//!   doubles the lock ([`lockout_ms`]).
//! * Clinicians and admins who enrolled TOTP must enter a code after their password.
//!
//! Never logged here: passwords, tokens, codes, secrets.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::Duration;
use tandem_domain::{AuditAction, PatientId, Role, UserId, Username};
use tandem_store::{Actor, AuditEvent, NewSession, SessionRecord, User};
use totp_rs::{Algorithm, TOTP};
use utoipa::ToSchema;

use crate::error::redirect;
use crate::routes::Routes;
use crate::{ApiError, AppState, WebConfig};

pub const COOKIE: &str = "tandem_session";
const CSRF_HEADER: &str = "x-csrf-token";
const TOTP_STEP_SECS: i64 = 30;

pub(crate) fn routes(r: &mut Routes) {
    r.post("/login", login);
    r.post("/login/totp", login_totp);
    r.post("/logout", logout);
    r.post("/api/v1/me/totp", totp_enrol);
    r.post("/api/v1/me/totp/confirm", totp_confirm);
}

// --- tokens and rules (pure) ----------------------------------------------------------------

/// A new random token: 32 bytes from the OS generator, hex.
pub fn new_token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// What the store keeps of a token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compares without an early exit, so timing does not reveal how much matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStatus {
    Active,
    /// No request within the idle timeout.
    IdleExpired,
    /// Past its absolute lifetime.
    Expired,
}

pub fn session_status(rec: &SessionRecord, now_ms: i64, idle: Duration) -> SessionStatus {
    let idle_ms = i64::try_from(idle.as_millis()).unwrap_or(i64::MAX);
    if now_ms >= rec.expires_at_ms {
        SessionStatus::Expired
    } else if now_ms.saturating_sub(rec.last_seen_at_ms) >= idle_ms {
        SessionStatus::IdleExpired
    } else {
        SessionStatus::Active
    }
}

/// How long to lock a login name after `failures` failures in a row, if at all.
pub fn lockout_ms(failures: i64, cfg: &WebConfig) -> Option<i64> {
    if failures < cfg.lockout_threshold {
        return None;
    }
    let base = i64::try_from(cfg.lockout_base.as_millis()).unwrap_or(i64::MAX);
    let max = i64::try_from(cfg.lockout_max.as_millis()).unwrap_or(i64::MAX);
    let doublings = u32::try_from(failures - cfg.lockout_threshold)
        .unwrap_or(u32::MAX)
        .min(30);
    Some(base.saturating_mul(1i64 << doublings).min(max))
}

fn totp_for(secret: &[u8], account: &str) -> Result<TOTP, ApiError> {
    TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        30,
        secret.to_vec(),
        Some("Tandem".into()),
        account.to_string(),
    )
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("TOTP set-up failed: {e}")))
}

/// The time step whose code `code` is (allowing one step of clock drift either way).
pub fn totp_step_matching(totp: &TOTP, code: &str, now_ms: i64) -> Option<i64> {
    let code = code.trim();
    let step = now_ms.div_euclid(1000) / TOTP_STEP_SECS;
    (step - 1..=step + 1).find(|s| {
        let t = u64::try_from(s.saturating_mul(TOTP_STEP_SECS)).unwrap_or(0);
        constant_time_eq(totp.generate(t).as_bytes(), code.as_bytes())
    })
}

fn needs_second_factor(role: Role) -> bool {
    matches!(role, Role::Clinician | Role::Admin)
}

// --- the session layer ---------------------------------------------------------------------

/// Who is calling, put in the request by [`session_layer`].
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub user: User,
    pub token_hash: String,
    pub csrf: String,
    /// The password was right but the TOTP code is still to come.
    pub mfa_pending: bool,
    pub via_bearer: bool,
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

fn bearer_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string())
}

async fn load_session(
    st: &AppState,
    token: &str,
    via_bearer: bool,
) -> Result<Option<Authenticated>, ApiError> {
    let hash = hash_token(token);
    let Some(rec) = st.store.session(&hash).await? else {
        return Ok(None);
    };
    let now = st.now_ms();
    if session_status(&rec, now, st.config.idle_timeout) != SessionStatus::Active {
        st.store.delete_session(&hash).await?;
        return Ok(None);
    }
    let Some(user) = st.store.user(rec.user).await? else {
        return Ok(None);
    };
    if user.disabled {
        return Ok(None);
    }
    st.store.touch_session(&hash, now).await?;
    Ok(Some(Authenticated {
        user,
        token_hash: hash,
        csrf: rec.csrf_token,
        mfa_pending: !rec.mfa_verified,
        via_bearer,
    }))
}

fn is_page(path: &str) -> bool {
    !path.starts_with("/api/")
}

/// Finds the caller's session and checks CSRF on state-changing requests.
pub async fn session_layer(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    // Assets and probes need no session (and should not cost a database write each).
    if path.starts_with("/static/") || path == "/healthz" || path == "/readyz" {
        return next.run(req).await;
    }
    let (token, via_bearer) = match bearer_token(req.headers()) {
        Some(t) => (Some(t), true),
        None => (cookie_token(req.headers()), false),
    };
    let auth = match token {
        Some(t) => match load_session(&st, &t, via_bearer).await {
            Ok(a) => a,
            Err(e) => return e.into_response(),
        },
        None => None,
    };
    let mut req = req;
    let state_changing = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if let Some(a) = &auth {
        if state_changing && !a.via_bearer && path != "/login" {
            let (ok, rebuilt) = check_csrf(req, &a.csrf).await;
            req = rebuilt;
            if !ok {
                tracing::warn!(user = %a.user.id, path = %path, "CSRF token missing or wrong");
                let err = ApiError::Forbidden("missing or wrong CSRF token; reload the page");
                return if is_page(&path) {
                    err.into_page_response()
                } else {
                    err.into_response()
                };
            }
        }
    }
    if let Some(a) = auth {
        req.extensions_mut().insert(a);
    }
    next.run(req).await
}

const MAX_FORM_BYTES: usize = 256 * 1024;

async fn check_csrf(req: Request, expected: &str) -> (bool, Request) {
    if let Some(h) = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()) {
        return (constant_time_eq(h.as_bytes(), expected.as_bytes()), req);
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return (false, req);
    }
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_FORM_BYTES).await {
        Ok(b) => b,
        Err(_) => return (false, Request::from_parts(parts, Body::empty())),
    };
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
    let ok = fields
        .iter()
        .any(|(k, v)| k == "csrf" && constant_time_eq(v.as_bytes(), expected.as_bytes()));
    (ok, Request::from_parts(parts, Body::from(bytes)))
}

// --- extractors ----------------------------------------------------------------------------

/// The rejection of the role extractors: JSON for `/api`, a redirect or page otherwise.
pub struct AuthRejection {
    err: ApiError,
    page: bool,
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        if self.page {
            self.err.into_page_response()
        } else {
            self.err.into_response()
        }
    }
}

fn authenticated(parts: &Parts, allow_pending: bool) -> Result<Authenticated, AuthRejection> {
    let page = is_page(parts.uri.path());
    let a = parts
        .extensions
        .get::<Authenticated>()
        .cloned()
        .ok_or(AuthRejection {
            err: ApiError::Unauthorized,
            page,
        })?;
    if a.mfa_pending && !allow_pending {
        return Err(AuthRejection {
            err: ApiError::MfaRequired,
            page,
        });
    }
    Ok(a)
}

/// Any signed-in user who passed every factor.
pub struct AnySession(pub Authenticated);

impl FromRequestParts<AppState> for AnySession {
    type Rejection = AuthRejection;
    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        authenticated(parts, false).map(AnySession)
    }
}

/// A user whose password was right, with or without the second factor yet.
pub struct PendingSession(pub Authenticated);

impl FromRequestParts<AppState> for PendingSession {
    type Rejection = AuthRejection;
    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        authenticated(parts, true).map(PendingSession)
    }
}

macro_rules! role_session {
    ($(#[$doc:meta])* $name:ident, $role:expr, $msg:literal) => {
        $(#[$doc])*
        pub struct $name {
            pub user: User,
            pub actor: Actor,
            pub csrf: String,
        }

        impl FromRequestParts<AppState> for $name {
            type Rejection = AuthRejection;
            async fn from_request_parts(
                parts: &mut Parts,
                _: &AppState,
            ) -> Result<Self, Self::Rejection> {
                let a = authenticated(parts, false)?;
                if a.user.role != $role {
                    return Err(AuthRejection {
                        err: ApiError::Forbidden($msg),
                        page: is_page(parts.uri.path()),
                    });
                }
                Ok($name {
                    actor: Actor::user(a.user.id, a.user.role),
                    user: a.user,
                    csrf: a.csrf,
                })
            }
        }
    };
}

role_session!(
    /// A signed-in clinician.
    ClinicianSession, Role::Clinician, "this is for clinicians");
role_session!(
    /// A signed-in admin. Admins manage accounts and teams; they never read clinical content.
    AdminSession, Role::Admin, "this is for administrators");

/// A signed-in patient: everything they reach is their own record.
pub struct PatientSession {
    pub user: User,
    pub patient: PatientId,
    pub actor: Actor,
    pub csrf: String,
}

impl FromRequestParts<AppState> for PatientSession {
    type Rejection = AuthRejection;
    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        let a = authenticated(parts, false)?;
        let page = is_page(parts.uri.path());
        let patient = a.user.patient_id().ok_or(AuthRejection {
            err: ApiError::Forbidden("this is for patients"),
            page,
        })?;
        Ok(PatientSession {
            actor: Actor::user(a.user.id, a.user.role),
            patient,
            user: a.user,
            csrf: a.csrf,
        })
    }
}

/// The one door to a patient's record for staff. A clinician on the patient's care team
/// gets in, so does an on-call clinician an unacknowledged crisis alert was escalated to;
/// anyone else only with a reason (break-glass), which is audited as
/// [`AuditAction::BreakGlass`] and shown to the patient's care team. Returns the actor to
/// use for the reads (it carries the reason into every audit entry).
pub async fn access_patient(
    state: &AppState,
    clinician: &ClinicianSession,
    patient: PatientId,
    reason: Option<&str>,
) -> Result<Actor, ApiError> {
    let user = state
        .store
        .user(UserId::from(patient))
        .await?
        .filter(|u| u.role == Role::Patient)
        .ok_or(ApiError::NotFound)?;
    if state
        .store
        .is_on_care_team(clinician.user.id, patient)
        .await?
    {
        return Ok(clinician.actor.clone());
    }
    // An on-call clinician holding an escalated crisis alert for this patient may act on it;
    // every read is audited with that reason.
    if state
        .store
        .has_escalation(
            clinician.user.id,
            patient,
            state.config.escalation.access_since(state.now_ms()),
        )
        .await?
    {
        return Ok(clinician
            .actor
            .clone()
            .with_reason("on call: escalated crisis alert"));
    }
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    let Some(reason) = reason else {
        return Err(ApiError::Forbidden(
            "this patient is not on your care team; emergency access needs a reason",
        ));
    };
    let actor = clinician
        .actor
        .clone()
        .with_reason(reason.chars().take(500).collect::<String>());
    state
        .store
        .audit(
            &actor,
            AuditEvent {
                action: AuditAction::BreakGlass,
                patient: Some(patient),
                detail: Some(format!("clinician={}", clinician.user.id)),
            },
        )
        .await?;
    tracing::warn!(clinician = %clinician.user.id, patient = %user.id, "break-glass access");
    Ok(actor)
}

// --- handlers ------------------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    pub user_id: String,
    pub username: String,
    pub role: String,
    /// Send as `X-CSRF-Token` on state-changing requests made with the cookie.
    pub csrf_token: String,
    /// The session token, for `Authorization: Bearer` from scripts.
    pub token: String,
    /// A TOTP code must be posted to `/login/totp` before anything else.
    pub mfa_required: bool,
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

fn parse_body<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<T, ApiError> {
    if wants_json(headers) {
        serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("bad JSON: {e}")))
    } else {
        serde_urlencoded::from_bytes(body)
            .map_err(|e| ApiError::BadRequest(format!("bad form: {e}")))
    }
}

fn secure_request(st: &AppState, headers: &HeaderMap) -> bool {
    st.config.secure_cookies
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

pub(crate) fn session_cookie(token: &str, max_age_secs: u64, secure: bool) -> HeaderValue {
    let mut c =
        format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}");
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn login_key(raw: &str) -> String {
    raw.trim().to_ascii_lowercase().chars().take(64).collect()
}

async fn record_failure(st: &AppState, key: &str) -> Result<(), ApiError> {
    let now = st.now_ms();
    let n = st.store.record_login_failure(key, now).await?;
    if let Some(ms) = lockout_ms(n, &st.config) {
        st.store.lock_login(key, now.saturating_add(ms)).await?;
        tracing::warn!(failures = n, "sign-in locked after repeated failures");
    }
    Ok(())
}

async fn check_lock(st: &AppState, key: &str) -> Result<(), ApiError> {
    let state = st.store.login_state(key).await?;
    let now = st.now_ms();
    if let Some(until) = state.locked_until_ms.filter(|u| *u > now) {
        return Err(ApiError::Locked {
            retry_after_secs: (until - now + 999) / 1000,
        });
    }
    Ok(())
}

/// Checks a username and password; on success creates the session.
pub async fn sign_in(
    st: &AppState,
    username: &str,
    password: &str,
) -> Result<(User, String, String, bool), ApiError> {
    let key = login_key(username);
    check_lock(st, &key).await?;
    let found = match Username::parse(&key) {
        Ok(u) => st.store.user_credentials(&u).await?,
        Err(_) => None,
    };
    let stored = found.as_ref().map(|(_, h)| h.clone());
    let pw = password.to_string();
    // Argon2 is slow on purpose: keep it off the async workers. An unknown user is
    // verified against a dummy hash so the timing does not tell.
    let ok =
        tokio::task::spawn_blocking(move || tandem_vault::verify_password(stored.as_deref(), &pw))
            .await
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("password check failed: {e}")))?;
    let user = match found {
        Some((user, _)) if ok && !user.disabled => user,
        _ => {
            record_failure(st, &key).await?;
            return Err(ApiError::Unauthorized);
        }
    };
    st.store.clear_login_failures(&key).await?;
    let token = new_token();
    let csrf = new_token();
    let now = st.now_ms();
    let lifetime = i64::try_from(st.config.absolute_lifetime.as_millis()).unwrap_or(i64::MAX);
    st.store
        .create_session(NewSession {
            token_hash: hash_token(&token),
            user: user.id,
            csrf_token: csrf.clone(),
            created_at_ms: now,
            expires_at_ms: now.saturating_add(lifetime),
        })
        .await?;
    let mfa_required = needs_second_factor(user.role)
        && st.store.totp(user.id).await?.is_some_and(|t| t.confirmed);
    if !mfa_required {
        st.store.mark_session_mfa(&hash_token(&token)).await?;
    }
    st.store
        .audit(
            &Actor::user(user.id, user.role),
            AuditEvent {
                action: AuditAction::LoginSucceeded,
                patient: None,
                detail: Some(format!("user={} mfa_pending={mfa_required}", user.id)),
            },
        )
        .await?;
    Ok((user, token, csrf, mfa_required))
}

/// Sign in with a username and password (form or JSON).
#[utoipa::path(post, path = "/login", tag = "auth",
    request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401), (status = 429)))]
pub async fn login(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let json = wants_json(&headers);
    let req: LoginRequest = match parse_body(&headers, &body) {
        Ok(r) => r,
        Err(e) if json => return e.into_response(),
        Err(_) => {
            return crate::pages::login_page(
                Some("Enter your username and password."),
                StatusCode::BAD_REQUEST,
            )
        }
    };
    match sign_in(&st, &req.username, &req.password).await {
        Ok((user, token, csrf, mfa_required)) => {
            let max_age = st.config.absolute_lifetime.as_secs();
            let cookie = session_cookie(&token, max_age, secure_request(&st, &headers));
            let mut resp = if json {
                Json(LoginResponse {
                    user_id: user.id.to_string(),
                    username: user.username.to_string(),
                    role: user.role.to_string(),
                    csrf_token: csrf,
                    token,
                    mfa_required,
                })
                .into_response()
            } else if mfa_required {
                redirect("/login/totp")
            } else {
                redirect("/")
            };
            resp.headers_mut().append(header::SET_COOKIE, cookie);
            resp
        }
        Err(e) if json => e.into_response(),
        Err(e) => {
            let status = e.status();
            let msg = match e {
                ApiError::Unauthorized => "That username and password did not match.".to_string(),
                other => other.to_string(),
            };
            crate::pages::login_page(Some(&msg), status)
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CodeRequest {
    pub code: String,
}

/// The second step of sign-in for accounts with TOTP.
#[utoipa::path(post, path = "/login/totp", tag = "auth",
    request_body = CodeRequest,
    responses((status = 200), (status = 401), (status = 429)))]
pub async fn login_totp(
    State(st): State<AppState>,
    PendingSession(a): PendingSession,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json = wants_json(&headers);
    let result = async {
        let req: CodeRequest = parse_body(&headers, &body)?;
        let key = login_key(a.user.username.as_str());
        check_lock(&st, &key).await?;
        let rec = st
            .store
            .totp(a.user.id)
            .await?
            .filter(|t| t.confirmed)
            .ok_or(ApiError::BadRequest(
                "two-factor sign-in is not set up".into(),
            ))?;
        let totp = totp_for(&rec.secret, a.user.username.as_str())?;
        let accepted = match totp_step_matching(&totp, &req.code, st.now_ms()) {
            Some(step) => st.store.use_totp_step(a.user.id, step).await?,
            None => false,
        };
        if !accepted {
            record_failure(&st, &key).await?;
            return Err(ApiError::MfaRequired);
        }
        st.store.clear_login_failures(&key).await?;
        st.store.mark_session_mfa(&a.token_hash).await?;
        Ok(())
    }
    .await;
    match (result, json) {
        (Ok(()), true) => Json(serde_json::json!({"ok": true})).into_response(),
        (Ok(()), false) => redirect("/"),
        (Err(e), true) => e.into_response(),
        (Err(e), false) => crate::pages::totp_page(&a.csrf, Some(&e.to_string()), e.status()),
    }
}

/// Ends the session.
#[utoipa::path(post, path = "/logout", tag = "auth", responses((status = 204), (status = 303)))]
pub async fn logout(
    State(st): State<AppState>,
    headers: HeaderMap,
    a: Option<axum::Extension<Authenticated>>,
) -> Result<Response, ApiError> {
    if let Some(axum::Extension(a)) = a {
        st.store.delete_session(&a.token_hash).await?;
    }
    let mut resp = if wants_json(&headers) || headers.get(CSRF_HEADER).is_some() {
        StatusCode::NO_CONTENT.into_response()
    } else {
        redirect("/login")
    };
    resp.headers_mut().append(
        header::SET_COOKIE,
        session_cookie("", 0, secure_request(&st, &headers)),
    );
    Ok(resp)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TotpEnrolment {
    /// Scan this (or type the secret) into an authenticator app, then confirm a code.
    pub otpauth_uri: String,
    pub secret_base32: String,
}

/// Starts TOTP enrolment: a new secret, shown once.
#[utoipa::path(post, path = "/api/v1/me/totp", tag = "account",
    responses((status = 200, body = TotpEnrolment), (status = 409)))]
pub async fn totp_enrol(
    State(st): State<AppState>,
    AnySession(a): AnySession,
) -> Result<Json<TotpEnrolment>, ApiError> {
    let mut secret = [0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    st.store
        .set_totp_secret(&Actor::user(a.user.id, a.user.role), a.user.id, &secret)
        .await?;
    let totp = totp_for(&secret, a.user.username.as_str())?;
    Ok(Json(TotpEnrolment {
        otpauth_uri: totp.get_url(),
        secret_base32: totp.get_secret_base32(),
    }))
}

/// Confirms TOTP enrolment with a current code; from then on sign-in asks for a code.
#[utoipa::path(post, path = "/api/v1/me/totp/confirm", tag = "account",
    request_body = CodeRequest,
    responses((status = 204), (status = 400)))]
pub async fn totp_confirm(
    State(st): State<AppState>,
    AnySession(a): AnySession,
    Json(req): Json<CodeRequest>,
) -> Result<StatusCode, ApiError> {
    let rec = st
        .store
        .totp(a.user.id)
        .await?
        .ok_or(ApiError::BadRequest("start enrolment first".into()))?;
    if rec.confirmed {
        return Err(ApiError::Conflict(
            "two-factor sign-in is already set up".into(),
        ));
    }
    let totp = totp_for(&rec.secret, a.user.username.as_str())?;
    let step = totp_step_matching(&totp, &req.code, st.now_ms()).ok_or(ApiError::BadRequest(
        "that code did not match; try the next one".into(),
    ))?;
    st.store.use_totp_step(a.user.id, step).await?;
    st.store
        .confirm_totp(&Actor::user(a.user.id, a.user.role), a.user.id)
        .await?;
    st.store.mark_session_mfa(&a.token_hash).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(created: i64, seen: i64, expires: i64) -> SessionRecord {
        SessionRecord {
            token_hash: "h".into(),
            user: UserId::from_uuid(uuid::Uuid::nil()),
            csrf_token: "c".into(),
            created_at_ms: created,
            last_seen_at_ms: seen,
            expires_at_ms: expires,
            mfa_verified: true,
        }
    }

    #[test]
    fn sessions_expire_when_idle_and_at_their_absolute_end() {
        let idle = Duration::from_secs(30 * 60);
        let r = rec(0, 1_000, 10 * 3_600_000);
        assert_eq!(
            session_status(&r, 1_000 + 29 * 60_000, idle),
            SessionStatus::Active
        );
        assert_eq!(
            session_status(&r, 1_000 + 30 * 60_000, idle),
            SessionStatus::IdleExpired
        );
        let r = rec(0, 10 * 3_600_000 - 1, 10 * 3_600_000);
        assert_eq!(
            session_status(&r, 10 * 3_600_000, idle),
            SessionStatus::Expired
        );
    }

    #[test]
    fn lockout_starts_at_the_threshold_and_doubles_up_to_the_cap() {
        let cfg = WebConfig::default();
        assert_eq!(lockout_ms(4, &cfg), None);
        assert_eq!(lockout_ms(5, &cfg), Some(30_000));
        assert_eq!(lockout_ms(6, &cfg), Some(60_000));
        assert_eq!(lockout_ms(7, &cfg), Some(120_000));
        assert_eq!(lockout_ms(60, &cfg), Some(3_600_000));
    }

    #[test]
    fn tokens_are_random_and_stored_hashed() {
        let a = new_token();
        assert_eq!(a.len(), 64);
        assert_ne!(a, new_token());
        assert_eq!(hash_token(&a).len(), 64);
        assert_ne!(hash_token(&a), a);
    }

    #[test]
    fn totp_codes_match_their_step_with_one_step_of_drift() {
        let t = totp_for(b"0123456789abcdefghij", "clin").unwrap();
        let now_ms = 1_700_000_000_000i64;
        let step = now_ms / 1000 / 30;
        let code = t.generate(u64::try_from(step * 30).unwrap());
        assert_eq!(totp_step_matching(&t, &code, now_ms), Some(step));
        assert_eq!(totp_step_matching(&t, &code, now_ms + 30_000), Some(step));
        assert_eq!(totp_step_matching(&t, &code, now_ms + 90_000), None);
        assert_eq!(totp_step_matching(&t, "000000x", now_ms), None);
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_when_asked() {
        let c = session_cookie("tok", 60, false);
        let s = c.to_str().unwrap();
        assert!(s.contains("HttpOnly") && s.contains("SameSite=Strict") && !s.contains("Secure"));
        assert!(session_cookie("tok", 60, true)
            .to_str()
            .unwrap()
            .ends_with("; Secure"));
    }
}
