//! Server-rendered pages (askama templates in `templates/`), one script and one stylesheet
//! served from the binary. No inline script or style (the CSP forbids both): forms marked
//! `data-api` are sent as JSON to `/api/v1` by `static/app.js` with the CSRF token from the
//! page's `<meta name="csrf-token">`; sign-in and sign-out are plain forms.
//!
//! Every page has a skip link, landmarks, the crisis link, and for patients the persistent
//! "Tandem is an AI, not a person" banner. Elements tests drive have stable ids.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use tandem_companion::{ExerciseKind, DISCLOSURE_BANNER};
use tandem_domain::{ConversationId, MessageRole, PatientId, Role};

use crate::auth::{
    access_patient, AdminSession, AnySession, ClinicianSession, PatientSession, PendingSession,
};
use crate::error::redirect;
use crate::routes::Routes;
use crate::{ApiError, AppState};

pub(crate) fn routes(r: &mut Routes) {
    r.get("/", home);
    r.get("/login", login_form);
    r.get("/login/totp", totp_form);
    r.get("/crisis", crisis);
    r.get("/account/security", security_page);
    r.get("/chat", chat);
    r.post("/chat/send", chat_form);
    r.get("/mood", mood);
    r.post("/mood", mood_form);
    r.get("/measures", measures);
    r.get("/measures/{instrument}", measure_form);
    r.get("/exercises", exercises);
    r.get("/progress", progress);
    r.get("/care-plan", care_plan);
    r.get("/my-data", my_data);
    r.get("/clinician", caseload);
    r.get("/clinician/alerts", alerts);
    r.get("/clinician/patients/{id}", patient_page);
    r.get(
        "/clinician/patients/{id}/conversations/{cid}",
        conversation_page,
    );
    r.get("/admin", admin);
    r.get("/static/app.js", app_js);
    r.get("/static/app.css", app_css);
}

type PageResult = Result<Response, Response>;

fn page_err(e: ApiError) -> Response {
    e.into_page_response()
}

fn render<T: Template>(t: &T) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "page failed").into_response()
        }
    }
}

/// What the layout needs: who is signed in and the CSRF token for forms.
pub struct Nav {
    pub role: String,
    pub username: String,
    pub csrf: String,
    pub banner: &'static str,
}

impl Nav {
    fn anonymous() -> Nav {
        Nav {
            role: String::new(),
            username: String::new(),
            csrf: String::new(),
            banner: DISCLOSURE_BANNER,
        }
    }
    fn of(user: &tandem_store::User, csrf: &str) -> Nav {
        Nav {
            role: user.role.to_string(),
            username: user.username.to_string(),
            csrf: csrf.to_string(),
            banner: DISCLOSURE_BANNER,
        }
    }
}

fn date(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map(|t| {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02} UTC",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute()
            )
        })
        .unwrap_or_default()
}

// --- error and sign-in pages ----------------------------------------------------------------

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    nav: Nav,
    status: u16,
    message: String,
}

pub(crate) fn error_page(status: StatusCode, message: &str) -> Response {
    let mut r = render(&ErrorPage {
        nav: Nav::anonymous(),
        status: status.as_u16(),
        message: message.to_string(),
    });
    *r.status_mut() = status;
    r
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    nav: Nav,
    error: Option<String>,
}

pub(crate) fn login_page(error: Option<&str>, status: StatusCode) -> Response {
    let mut r = render(&LoginPage {
        nav: Nav::anonymous(),
        error: error.map(str::to_string),
    });
    *r.status_mut() = status;
    r
}

async fn login_form() -> Response {
    login_page(None, StatusCode::OK)
}

#[derive(Template)]
#[template(path = "totp.html")]
struct TotpPage {
    nav: Nav,
    error: Option<String>,
}

pub(crate) fn totp_page(csrf: &str, error: Option<&str>, status: StatusCode) -> Response {
    let mut nav = Nav::anonymous();
    nav.csrf = csrf.to_string();
    let mut r = render(&TotpPage {
        nav,
        error: error.map(str::to_string),
    });
    *r.status_mut() = status;
    r
}

async fn totp_form(PendingSession(a): PendingSession) -> Response {
    totp_page(&a.csrf, None, StatusCode::OK)
}

async fn home(a: Option<axum::Extension<crate::auth::Authenticated>>) -> Response {
    match a {
        None => redirect("/login"),
        Some(axum::Extension(a)) if a.mfa_pending => redirect("/login/totp"),
        Some(axum::Extension(a)) => match a.user.role {
            Role::Patient => redirect("/chat"),
            Role::Clinician => redirect("/clinician"),
            Role::Admin => redirect("/admin"),
        },
    }
}

#[derive(Template)]
#[template(path = "crisis.html")]
struct CrisisPage {
    nav: Nav,
    resources: String,
}

async fn crisis(
    State(st): State<AppState>,
    a: Option<axum::Extension<crate::auth::Authenticated>>,
) -> Response {
    let nav = match a {
        Some(axum::Extension(a)) if !a.mfa_pending => Nav::of(&a.user, &a.csrf),
        _ => Nav::anonymous(),
    };
    let resources = st
        .engine
        .safety()
        .protocol_data()
        .locale(&st.config.locale)
        .moderate_resources
        .clone();
    render(&CrisisPage { nav, resources })
}

#[derive(Template)]
#[template(path = "security.html")]
struct SecurityPage {
    nav: Nav,
    enrolled: bool,
}

async fn security_page(State(st): State<AppState>, AnySession(a): AnySession) -> PageResult {
    let enrolled = st
        .store
        .totp(a.user.id)
        .await
        .map_err(|e| page_err(e.into()))?
        .is_some_and(|t| t.confirmed);
    Ok(render(&SecurityPage {
        nav: Nav::of(&a.user, &a.csrf),
        enrolled,
    }))
}

// --- patient pages --------------------------------------------------------------------------

pub struct MessageView {
    pub id: String,
    pub from_patient: bool,
    pub text: String,
    pub when: String,
}

#[derive(Template)]
#[template(path = "chat.html")]
struct ChatPage {
    nav: Nav,
    ai_on: bool,
    conversation: Option<String>,
    messages: Vec<MessageView>,
}

async fn chat(State(st): State<AppState>, me: PatientSession) -> PageResult {
    let nav = Nav::of(&me.user, &me.csrf);
    let latest = st
        .store
        .conversations(me.patient)
        .await
        .map_err(|e| page_err(e.into()))?
        .into_iter()
        .max_by_key(|c| c.started_at_ms);
    let mut messages = Vec::new();
    if let Some(c) = &latest {
        for m in st
            .store
            .messages(&me.actor, c.id)
            .await
            .map_err(|e| page_err(e.into()))?
        {
            messages.push(MessageView {
                id: m.id.to_string(),
                from_patient: m.role == MessageRole::Patient,
                text: m.text,
                when: date(m.created_at_ms),
            });
        }
    }
    let ai_on = st
        .store
        .consents(me.patient)
        .await
        .map_err(|e| page_err(e.into()))?
        .iter()
        .any(|c| c.kind == tandem_domain::ConsentKind::AiProcessing && c.granted);
    Ok(render(&ChatPage {
        nav,
        ai_on,
        conversation: latest.map(|c| c.id.to_string()),
        messages,
    }))
}

/// The chat form as a plain form post, for browsers without JavaScript: the same turn as
/// the streaming API (screened, crisis protocol, guarded reply), then back to the page with
/// the reply in the history. A patient without JavaScript is never cut off from the safety
/// layer.
#[derive(Debug, Default, Deserialize)]
struct ChatFormBody {
    #[serde(default)]
    text: String,
    #[serde(default)]
    conversation: String,
}

async fn chat_form(
    State(st): State<AppState>,
    me: PatientSession,
    body: axum::body::Bytes,
) -> PageResult {
    let form: ChatFormBody = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let text = form.text.trim();
    if text.is_empty() {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            "The message was empty. Go back and write something to send.",
        ));
    }
    if text.chars().count() > tandem_engine::MAX_MESSAGE_CHARS {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            "The message is too long. Go back and send it in parts.",
        ));
    }
    let conversation = match form.conversation.trim() {
        "" => match st
            .store
            .conversations(me.patient)
            .await
            .map_err(|e| page_err(e.into()))?
            .into_iter()
            .max_by_key(|c| c.started_at_ms)
        {
            Some(c) => c.id,
            None => st
                .store
                .create_conversation(&me.actor, me.patient)
                .await
                .map_err(|e| page_err(e.into()))?,
        },
        raw => crate::api::own_conversation(&st, &me, raw)
            .await
            .map_err(page_err)?,
    };
    let mut ignore = |_: tandem_engine::StreamEvent<'_>| {};
    let outcome = st
        .engine
        .turn(
            &me.actor,
            conversation,
            text,
            &mut ignore,
            &tandem_model::CancellationToken::new(),
        )
        .await
        .map_err(|e| {
            tracing::warn!(conversation = %conversation, error = %e, "turn failed");
            error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Your message could not be answered. If you are in danger, call your local emergency number or a crisis line now.",
            )
        })?;
    Ok(redirect(&format!("/chat#m-{}", outcome.assistant_message)))
}

pub struct MoodView {
    pub rating: u8,
    pub words: String,
    pub when: String,
}

#[derive(Template)]
#[template(path = "mood.html")]
struct MoodPage {
    nav: Nav,
    moods: Vec<MoodView>,
    error: Option<String>,
}

/// The mood form as a plain form post, for browsers without JavaScript.
#[derive(Debug, Deserialize)]
struct MoodFormBody {
    #[serde(default)]
    rating: String,
    #[serde(default)]
    words: String,
}

async fn mood_form(
    State(st): State<AppState>,
    me: PatientSession,
    body: axum::body::Bytes,
) -> PageResult {
    let form: MoodFormBody = serde_urlencoded::from_bytes(&body).unwrap_or(MoodFormBody {
        rating: String::new(),
        words: String::new(),
    });
    let saved = match form.rating.trim().parse::<u8>() {
        Ok(rating) => {
            let words: Vec<String> = form.words.split(',').map(str::to_string).collect();
            crate::api::save_mood(&st, &me, rating, &words).await
        }
        Err(_) => Err(ApiError::BadRequest("the rating is 0 to 10".into())),
    };
    match saved {
        Ok(_) => Ok(redirect("/mood")),
        Err(ApiError::BadRequest(msg)) => {
            let mut r = mood_page(&st, &me, Some(msg)).await?;
            *r.status_mut() = StatusCode::BAD_REQUEST;
            Ok(r)
        }
        Err(e) => Err(page_err(e)),
    }
}

async fn mood(State(st): State<AppState>, me: PatientSession) -> PageResult {
    mood_page(&st, &me, None).await
}

async fn mood_page(st: &AppState, me: &PatientSession, error: Option<String>) -> PageResult {
    let moods = st
        .store
        .moods(&me.actor, me.patient)
        .await
        .map_err(|e| page_err(e.into()))?
        .into_iter()
        .rev()
        .take(20)
        .map(|m| MoodView {
            rating: m.rating,
            words: m.words.join(", "),
            when: date(m.at_ms),
        })
        .collect();
    Ok(render(&MoodPage {
        nav: Nav::of(&me.user, &me.csrf),
        moods,
        error,
    }))
}

pub struct DueView {
    pub id: String,
    pub name: String,
    pub status: String,
}

#[derive(Template)]
#[template(path = "measures.html")]
struct MeasuresPage {
    nav: Nav,
    due: Vec<DueView>,
    all: Vec<DueView>,
}

async fn measures(State(st): State<AppState>, me: PatientSession) -> PageResult {
    let due = st
        .care
        .due_measures(&me.actor, me.patient, st.now())
        .await
        .map_err(|e| page_err(e.into()))?
        .into_iter()
        .map(|d| {
            let status = serde_json::to_value(d.status)
                .ok()
                .and_then(|v| v["status"].as_str().map(str::to_string))
                .unwrap_or_default();
            DueView {
                name: st
                    .registry
                    .get(&d.instrument)
                    .map(|i| i.name.clone())
                    .unwrap_or_else(|| d.instrument.clone()),
                id: d.instrument,
                status,
            }
        })
        .collect();
    let all = st
        .registry
        .instruments()
        .iter()
        .map(|i| DueView {
            id: i.id.clone(),
            name: i.name.clone(),
            status: String::new(),
        })
        .collect();
    Ok(render(&MeasuresPage {
        nav: Nav::of(&me.user, &me.csrf),
        due,
        all,
    }))
}

pub struct OptionView {
    pub value: u8,
    pub label: String,
}

pub struct ItemView {
    pub number: usize,
    pub text: String,
    pub options: Vec<OptionView>,
}

#[derive(Template)]
#[template(path = "measure_form.html")]
struct MeasureFormPage {
    nav: Nav,
    id: String,
    name: String,
    preamble: String,
    items: Vec<ItemView>,
}

async fn measure_form(
    State(st): State<AppState>,
    me: PatientSession,
    Path(instrument): Path<String>,
) -> PageResult {
    let inst = st
        .registry
        .get(&instrument)
        .ok_or_else(|| page_err(ApiError::NotFound))?;
    let items = inst
        .items
        .iter()
        .enumerate()
        .map(|(i, item)| ItemView {
            number: item.number,
            text: item.text.clone(),
            options: inst
                .options_for(i)
                .iter()
                .map(|o| OptionView {
                    value: o.value,
                    label: o.label.clone(),
                })
                .collect(),
        })
        .collect();
    Ok(render(&MeasureFormPage {
        nav: Nav::of(&me.user, &me.csrf),
        id: inst.id.clone(),
        name: inst.name.clone(),
        preamble: inst.preamble.clone(),
        items,
    }))
}

pub struct KindView {
    pub id: &'static str,
    pub label: &'static str,
}

#[derive(Template)]
#[template(path = "exercises.html")]
struct ExercisesPage {
    nav: Nav,
    kinds: Vec<KindView>,
    current_id: Option<String>,
    current_prompt: String,
}

async fn exercises(State(st): State<AppState>, me: PatientSession) -> PageResult {
    let current = st
        .engine
        .resumable_exercise(&me.actor, me.patient)
        .await
        .map_err(|e| page_err(e.into()))?;
    let kinds = ExerciseKind::ALL
        .iter()
        .map(|k| KindView {
            id: k.as_str(),
            label: match k {
                ExerciseKind::ThoughtRecord => "Thought record",
                ExerciseKind::BehaviouralActivation => "Plan an activity",
                ExerciseKind::Grounding => "Grounding (5-4-3-2-1)",
                ExerciseKind::Breathing => "Paced breathing",
            },
        })
        .collect();
    Ok(render(&ExercisesPage {
        nav: Nav::of(&me.user, &me.csrf),
        kinds,
        current_prompt: current
            .as_ref()
            .map(|c| c.prompt.text.clone())
            .unwrap_or_default(),
        current_id: current.map(|c| c.exercise.to_string()),
    }))
}

pub struct ChartView {
    pub id: String,
    pub name: String,
    pub src: String,
}

#[derive(Template)]
#[template(path = "progress.html")]
struct ProgressPage {
    nav: Nav,
    charts: Vec<ChartView>,
}

async fn charts_for(
    st: &AppState,
    actor: &tandem_store::Actor,
    patient: PatientId,
    base: &str,
) -> Result<Vec<ChartView>, Response> {
    let done = st
        .store
        .assessments(actor, patient)
        .await
        .map_err(|e| page_err(e.into()))?;
    let mut ids: Vec<String> = Vec::new();
    for a in done {
        if let Some(inst) = st.registry.get(&a.instrument) {
            if !ids.contains(&inst.id) {
                ids.push(inst.id.clone());
            }
        }
    }
    Ok(ids
        .into_iter()
        .map(|id| ChartView {
            name: st
                .registry
                .get(&id)
                .map(|i| i.name.clone())
                .unwrap_or_default(),
            src: format!("{base}/{id}/chart.svg"),
            id,
        })
        .collect())
}

async fn progress(State(st): State<AppState>, me: PatientSession) -> PageResult {
    let charts = charts_for(&st, &me.actor, me.patient, "/api/v1/measures").await?;
    Ok(render(&ProgressPage {
        nav: Nav::of(&me.user, &me.csrf),
        charts,
    }))
}

pub struct ItemRow {
    pub id: String,
    pub kind: String,
    pub text: String,
    pub status: String,
}

#[derive(Template)]
#[template(path = "care_plan.html")]
struct CarePlanPage {
    nav: Nav,
    items: Vec<ItemRow>,
}

fn item_rows(plan: &tandem_store::CarePlan) -> Vec<ItemRow> {
    plan.items
        .iter()
        .filter(|i| i.status != "removed")
        .map(|i| ItemRow {
            id: i.id.to_string(),
            kind: i.kind.to_string(),
            text: i.text.clone(),
            status: i.status.clone(),
        })
        .collect()
}

async fn care_plan(State(st): State<AppState>, me: PatientSession) -> PageResult {
    let plan = st
        .store
        .care_plan(&me.actor, me.patient)
        .await
        .map_err(|e| page_err(e.into()))?;
    Ok(render(&CarePlanPage {
        nav: Nav::of(&me.user, &me.csrf),
        items: item_rows(&plan),
    }))
}

#[derive(Template)]
#[template(path = "my_data.html")]
struct MyDataPage {
    nav: Nav,
    ai_on: bool,
}

async fn my_data(State(st): State<AppState>, me: PatientSession) -> PageResult {
    let ai_on = st
        .store
        .consents(me.patient)
        .await
        .map_err(|e| page_err(e.into()))?
        .iter()
        .any(|c| c.kind == tandem_domain::ConsentKind::AiProcessing && c.granted);
    Ok(render(&MyDataPage {
        nav: Nav::of(&me.user, &me.csrf),
        ai_on,
    }))
}

// --- clinician pages ------------------------------------------------------------------------

pub struct CaseloadRow {
    pub id: String,
    pub username: String,
    pub risk: String,
    pub alerts: u32,
    pub reason: String,
}

#[derive(Template)]
#[template(path = "caseload.html")]
struct CaseloadPage {
    nav: Nav,
    rows: Vec<CaseloadRow>,
}

async fn caseload(State(st): State<AppState>, me: ClinicianSession) -> PageResult {
    let rows = crate::api::ranked_caseload(&st, &me)
        .await
        .map_err(page_err)?
        .into_iter()
        .map(|r| CaseloadRow {
            id: r.patient.map(|p| p.to_string()).unwrap_or_default(),
            username: r.username,
            risk: r.risk_level,
            alerts: r.unacknowledged_alerts,
            reason: r.reason,
        })
        .collect();
    Ok(render(&CaseloadPage {
        nav: Nav::of(&me.user, &me.csrf),
        rows,
    }))
}

pub struct AlertRow {
    pub id: String,
    pub patient: String,
    pub username: String,
    pub level: String,
    pub when: String,
    /// Escalated to this clinician as on call (the patient is not on their caseload).
    pub escalated_to_me: bool,
    /// Escalated to the on-call clinicians because nobody acknowledged it in time.
    pub escalated: bool,
}

pub struct AckRow {
    pub alert: AlertRow,
    pub by: String,
    pub at: String,
}

#[derive(Template)]
#[template(path = "alerts.html")]
struct AlertsPage {
    nav: Nav,
    alerts: Vec<AlertRow>,
    acknowledged: Vec<AckRow>,
}

/// How far back the alerts page lists acknowledged alerts.
const ACKNOWLEDGED_SHOWN_MS: i64 = 7 * 24 * 60 * 60 * 1000;

fn alert_row(a: &Value) -> AlertRow {
    AlertRow {
        id: a["id"].as_str().unwrap_or_default().to_string(),
        patient: a["patient"].as_str().unwrap_or_default().to_string(),
        username: a["username"].as_str().unwrap_or_default().to_string(),
        level: a["level"].as_str().unwrap_or_default().to_string(),
        when: date(a["created_at_ms"].as_i64().unwrap_or(0)),
        escalated_to_me: a["escalated_to_me"].as_bool().unwrap_or(false),
        escalated: a["escalated_at_ms"].as_i64().is_some(),
    }
}

async fn alerts(State(st): State<AppState>, me: ClinicianSession) -> PageResult {
    let (open, acknowledged) =
        crate::api::alerts_overview(&st, &me, st.now_ms().saturating_sub(ACKNOWLEDGED_SHOWN_MS))
            .await
            .map_err(page_err)?;
    Ok(render(&AlertsPage {
        nav: Nav::of(&me.user, &me.csrf),
        alerts: open.iter().map(alert_row).collect(),
        acknowledged: acknowledged
            .iter()
            .map(|a| AckRow {
                alert: alert_row(a),
                by: a["acknowledged_by"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                at: date(a["acknowledged_at_ms"].as_i64().unwrap_or(0)),
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize)]
pub struct ReasonQuery {
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Template)]
#[template(path = "break_glass.html")]
struct BreakGlassPage {
    nav: Nav,
    patient: String,
}

pub struct SummaryView {
    pub text: String,
    pub link: String,
    pub when: String,
}

pub struct RiskView {
    pub id: String,
    pub level: String,
    pub categories: String,
    pub source: String,
    pub evidence: String,
    pub when: String,
    pub acknowledged: Option<String>,
    /// When it went to the on-call clinicians, unacknowledged for too long.
    pub escalated: Option<String>,
}

pub struct TalkView {
    pub id: String,
    pub note: String,
    pub when: String,
    pub open: bool,
}

pub struct ConvView {
    pub id: String,
    pub when: String,
}

#[derive(Template)]
#[template(path = "patient.html")]
struct PatientPage {
    nav: Nav,
    id: String,
    username: String,
    reason_header: String,
    summaries: Vec<SummaryView>,
    risks: Vec<RiskView>,
    charts: Vec<ChartView>,
    step_up: String,
    items: Vec<ItemRow>,
    tone: String,
    topics: String,
    talks: Vec<TalkView>,
    conversations: Vec<ConvView>,
    break_glass: Vec<String>,
    /// When the companion nudged the patient towards people, and why.
    nudges: Vec<String>,
    ai_off: bool,
    instruments: Vec<String>,
}

async fn patient_page(
    State(st): State<AppState>,
    me: ClinicianSession,
    Path(id): Path<String>,
    Query(q): Query<ReasonQuery>,
) -> PageResult {
    let nav = Nav::of(&me.user, &me.csrf);
    let patient: PatientId = id.parse().map_err(|_| page_err(ApiError::NotFound))?;
    let actor = match access_patient(&st, &me, patient, q.reason.as_deref()).await {
        Ok(a) => a,
        Err(ApiError::Forbidden(_)) => {
            let mut r = render(&BreakGlassPage { nav, patient: id });
            *r.status_mut() = StatusCode::FORBIDDEN;
            return Ok(r);
        }
        Err(e) => return Err(page_err(e)),
    };
    let d: Value = crate::api::patient_detail_value(&st, &actor, patient)
        .await
        .map_err(page_err)?;
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let arr = |k: &str| d[k].as_array().cloned().unwrap_or_default();
    let summaries = arr("summaries")
        .iter()
        .map(|x| SummaryView {
            text: s(&x["text"]),
            link: format!(
                "/clinician/patients/{id}/conversations/{}#m-{}",
                s(&x["conversation"]),
                s(&x["first_message"])
            ),
            when: date(x["created_at_ms"].as_i64().unwrap_or(0)),
        })
        .collect();
    let mut risks = Vec::new();
    for x in arr("risk_events").iter().rev() {
        // Records name staff by account id; people read names.
        let acknowledged = match x["acknowledgement"].as_object() {
            Some(a) => Some(format!(
                "by {} at {}",
                crate::api::staff_name(
                    &st,
                    a.get("clinician").and_then(|v| v.as_str()).unwrap_or("")
                )
                .await
                .map_err(page_err)?,
                date(a.get("at_ms").and_then(|v| v.as_i64()).unwrap_or(0))
            )),
            None => None,
        };
        risks.push(RiskView {
            id: s(&x["id"]),
            level: s(&x["level"]),
            categories: strs(&x["categories"]).join(", "),
            source: s(&x["source"]),
            evidence: serde_json::to_string_pretty(&x["evidence"]).unwrap_or_default(),
            when: date(x["created_at_ms"].as_i64().unwrap_or(0)),
            acknowledged,
            escalated: x["escalated_at_ms"].as_i64().map(date),
        });
    }
    let plan: tandem_store::CarePlan =
        serde_json::from_value(d["care_plan"].clone()).unwrap_or_default();
    let prefs = plan.ai_preferences.clone().unwrap_or(Value::Null);
    let talks = arr("talk_requests")
        .iter()
        .rev()
        .map(|x| TalkView {
            id: s(&x["id"]),
            note: s(&x["note"]),
            when: date(x["created_at_ms"].as_i64().unwrap_or(0)),
            open: x["resolved_at_ms"].is_null(),
        })
        .collect();
    let conversations = arr("conversations")
        .iter()
        .rev()
        .map(|x| ConvView {
            id: s(&x["id"]),
            when: date(x["started_at_ms"].as_i64().unwrap_or(0)),
        })
        .collect();
    let mut break_glass = Vec::new();
    for x in arr("break_glass") {
        let by = crate::api::staff_name(&st, &s(&x["by"]))
            .await
            .map_err(page_err)?;
        break_glass.push(format!(
            "{} by {by}: {}",
            date(x["at_ms"].as_i64().unwrap_or(0)),
            s(&x["reason"])
        ));
    }
    let nudges = arr("nudges")
        .iter()
        .rev()
        .map(|x| {
            format!(
                "{}: {}",
                date(x["at_ms"].as_i64().unwrap_or(0)),
                strs(&x["reasons"]).join(", ").replace('_', " ")
            )
        })
        .collect();
    let ai_off = arr("consents")
        .iter()
        .any(|c| c["kind"] == "ai_processing" && c["granted"] == false);
    let charts = charts_for(
        &st,
        &actor,
        patient,
        &format!("/api/v1/patients/{id}/measures"),
    )
    .await?;
    Ok(render(&PatientPage {
        nav,
        username: s(&d["patient"]["username"]),
        reason_header: actor.reason.clone().unwrap_or_default(),
        summaries,
        risks,
        charts,
        step_up: s(&d["step_up"]["clinician_summary"]),
        items: item_rows(&plan),
        tone: s(&prefs["tone"]),
        topics: strs(&prefs["topics_to_avoid"]).join(", "),
        talks,
        conversations,
        break_glass,
        nudges,
        ai_off,
        instruments: st
            .registry
            .instruments()
            .iter()
            .map(|i| i.id.clone())
            .collect(),
        id,
    }))
}

/// One care-plan item a reply was written with.
pub struct PlanItemUsed {
    pub id: String,
    /// `goal: Walk daily`, or the id when the item no longer exists.
    pub label: String,
}

/// How a stored reply was made, from its provenance record, for the clinician.
pub struct ProvenanceView {
    pub generator: String,
    pub model: String,
    pub template: String,
    pub safety: String,
    pub guard: String,
    /// `None`: the record does not say (replies written without the care plan).
    pub care_plan: Option<Vec<PlanItemUsed>>,
    pub ai_preferences: String,
}

pub struct ConvMessageView {
    pub id: String,
    pub from_patient: bool,
    pub text: String,
    pub when: String,
    pub provenance: Option<ProvenanceView>,
}

/// The strings in a JSON array (none when it is not one).
fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn provenance_view(p: &Value, plan: &tandem_store::CarePlan) -> ProvenanceView {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let model = match (p["backend"].as_str(), p["model"].as_str()) {
        (Some(b), Some(m)) => format!("{m} ({b})"),
        (None, Some(m)) => m.to_string(),
        _ => String::new(),
    };
    let safety = match p["safety"]["level"].as_str() {
        Some(level) => {
            let rules = strs(&p["safety"]["rules"]);
            if rules.is_empty() {
                format!("risk level {level}")
            } else {
                format!("risk level {level} (rules: {})", rules.join(", "))
            }
        }
        None => String::new(),
    };
    let guard = match p["guard"]["outcome"].as_str() {
        Some(o) => {
            let blocked = strs(&p["guard"]["blocked_rules"]);
            if blocked.is_empty() {
                o.replace('_', " ")
            } else {
                format!("{} (blocked: {})", o.replace('_', " "), blocked.join(", "))
            }
        }
        None => String::new(),
    };
    let care_plan = p["care_plan"]["items"].as_array().map(|items| {
        items
            .iter()
            .filter_map(|v| v.as_str())
            .map(|id| PlanItemUsed {
                id: id.to_string(),
                label: plan
                    .items
                    .iter()
                    .find(|i| i.id.to_string() == id)
                    .map_or_else(|| id.to_string(), |i| format!("{}: {}", i.kind, i.text)),
            })
            .collect()
    });
    let ai_preferences = match p["care_plan"]["ai_preferences"].as_bool() {
        Some(true) => "yes",
        Some(false) => "none set",
        None => "not recorded",
    }
    .to_string();
    ProvenanceView {
        generator: s(&p["generator"]),
        model,
        template: s(&p["template"]),
        safety,
        guard,
        care_plan,
        ai_preferences,
    }
}

#[derive(Template)]
#[template(path = "conversation.html")]
struct ConversationPage {
    nav: Nav,
    patient: String,
    username: String,
    messages: Vec<ConvMessageView>,
}

async fn conversation_page(
    State(st): State<AppState>,
    me: ClinicianSession,
    Path((id, cid)): Path<(String, String)>,
    Query(q): Query<ReasonQuery>,
) -> PageResult {
    let patient: PatientId = id.parse().map_err(|_| page_err(ApiError::NotFound))?;
    let actor = access_patient(&st, &me, patient, q.reason.as_deref())
        .await
        .map_err(page_err)?;
    let cid: ConversationId = cid.parse().map_err(|_| page_err(ApiError::NotFound))?;
    match st
        .store
        .conversation(cid)
        .await
        .map_err(|e| page_err(e.into()))?
    {
        Some(c) if c.patient == patient => {}
        _ => return Err(page_err(ApiError::NotFound)),
    }
    let username = crate::api::username_of(&st, patient)
        .await
        .map_err(page_err)?;
    let stored = st
        .store
        .messages(&actor, cid)
        .await
        .map_err(|e| page_err(e.into()))?;
    // Provenance names care-plan items by id; the plan gives their text (removed items too).
    let plan = if stored.iter().any(|m| m.provenance.is_some()) {
        st.store
            .care_plan(&actor, patient)
            .await
            .map_err(|e| page_err(e.into()))?
    } else {
        tandem_store::CarePlan::default()
    };
    let messages = stored
        .into_iter()
        .map(|m| ConvMessageView {
            id: m.id.to_string(),
            from_patient: m.role == MessageRole::Patient,
            provenance: m
                .provenance
                .as_ref()
                .filter(|_| m.role != MessageRole::Patient)
                .map(|p| provenance_view(p, &plan)),
            text: m.text,
            when: date(m.created_at_ms),
        })
        .collect();
    Ok(render(&ConversationPage {
        nav: Nav::of(&me.user, &me.csrf),
        patient: id,
        username,
        messages,
    }))
}

// --- admin ----------------------------------------------------------------------------------

pub struct UserRow {
    pub id: String,
    pub username: String,
    pub role: String,
    pub disabled: bool,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    nav: Nav,
    users: Vec<UserRow>,
    clinicians: Vec<UserRow>,
    patients: Vec<UserRow>,
    /// Usernames of the clinicians on call.
    on_call: Vec<String>,
}

async fn admin(State(st): State<AppState>, me: AdminSession) -> PageResult {
    let users: Vec<UserRow> = st
        .store
        .list_users()
        .await
        .map_err(|e| page_err(e.into()))?
        .into_iter()
        .map(|u| UserRow {
            id: u.id.to_string(),
            username: u.username.to_string(),
            role: u.role.to_string(),
            disabled: u.disabled,
        })
        .collect();
    let pick = |role: &str| {
        users
            .iter()
            .filter(|u| u.role == role && !u.disabled)
            .map(|u| UserRow {
                id: u.id.clone(),
                username: u.username.clone(),
                role: u.role.clone(),
                disabled: false,
            })
            .collect::<Vec<_>>()
    };
    let clinicians = pick("clinician");
    let patients = pick("patient");
    let on_call_ids: Vec<String> = st
        .store
        .on_call()
        .await
        .map_err(|e| page_err(e.into()))?
        .iter()
        .map(ToString::to_string)
        .collect();
    let on_call = users
        .iter()
        .filter(|u| on_call_ids.contains(&u.id))
        .map(|u| u.username.clone())
        .collect();
    Ok(render(&AdminPage {
        nav: Nav::of(&me.user, &me.csrf),
        users,
        clinicians,
        patients,
        on_call,
    }))
}

// --- static assets --------------------------------------------------------------------------

const APP_JS: &str = include_str!("../static/app.js");
const APP_CSS: &str = include_str!("../static/app.css");

async fn app_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        APP_JS,
    )
        .into_response()
}

async fn app_css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        APP_CSS,
    )
        .into_response()
}
