//! `/api/v1`: everything the pages do, as JSON, described by the OpenAPI document served
//! at `/api/v1/openapi.json` (generated from the `#[utoipa::path]` annotations here).
//!
//! Patient routes never take a patient id: a patient reaches only their own record.
//! Clinician routes under `/api/v1/patients/{id}` go through [`access_patient`]; emergency
//! access outside the care team sends its reason in `X-Break-Glass-Reason`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use std::convert::Infallible;
use tandem_care::{rank_caseload, PatientSignals, RiskSignal};
use tandem_companion::{ExerciseKind, DISCLOSURE_BANNER};
use tandem_domain::{
    CarePlanItemId, CarePlanItemKind, ConsentKind, ConversationId, ExerciseId, PatientId,
    RiskEventId, Role, TalkRequestId, UserId, Username,
};
use tandem_engine::StreamEvent;
use tandem_measures::{ChartOptions, DueStatus};
use tandem_model::CancellationToken;
use tandem_store::{Actor, NewCarePlanItem, NewMood, NewUser};
use tokio_stream::wrappers::{BroadcastStream, UnboundedReceiverStream};
use utoipa::{OpenApi, ToSchema};

use crate::auth::{access_patient, AdminSession, AnySession, ClinicianSession, PatientSession};
use crate::routes::Routes;
use crate::{ApiError, AppState};

type ApiResult<T> = Result<T, ApiError>;

pub(crate) fn routes(r: &mut Routes) {
    r.get("/api/v1/openapi.json", openapi_json);
    r.get("/api/v1/me", me);
    r.get("/api/v1/conversations", list_conversations);
    r.post("/api/v1/conversations", create_conversation);
    r.get("/api/v1/conversations/{id}/messages", list_messages);
    r.post("/api/v1/conversations/{id}/messages", post_message);
    r.get("/api/v1/mood", list_moods);
    r.post("/api/v1/mood", record_mood);
    r.get("/api/v1/measures/due", due_measures);
    r.post("/api/v1/measures/{instrument}", submit_measure);
    r.get("/api/v1/measures/{instrument}/chart.svg", my_chart);
    r.get("/api/v1/care-plan", my_care_plan);
    r.post("/api/v1/exercises", start_exercise);
    r.get("/api/v1/exercises/current", current_exercise);
    r.post("/api/v1/exercises/{id}/steps", exercise_step);
    r.post("/api/v1/talk-requests", talk_request);
    r.get("/api/v1/me/export", export);
    r.post("/api/v1/me/consent", set_consent);
    r.post("/api/v1/me/delete", delete_account);
    r.get("/api/v1/patients", caseload);
    r.get("/api/v1/patients/{id}", patient_detail);
    r.get(
        "/api/v1/patients/{id}/conversations/{cid}/messages",
        patient_conversation,
    );
    r.get(
        "/api/v1/patients/{id}/measures/{instrument}/chart.svg",
        patient_chart,
    );
    r.post("/api/v1/patients/{id}/care-plan/items", add_care_plan_item);
    r.post(
        "/api/v1/patients/{id}/care-plan/items/{item}/status",
        set_care_plan_item_status,
    );
    r.put(
        "/api/v1/patients/{id}/care-plan/ai-preferences",
        set_ai_preferences,
    );
    r.put(
        "/api/v1/patients/{id}/measure-schedules",
        set_measure_schedule,
    );
    r.post(
        "/api/v1/patients/{id}/talk-requests/{rid}/resolve",
        resolve_talk_request,
    );
    r.get("/api/v1/alerts", alerts);
    r.post("/api/v1/alerts/{id}/acknowledge", acknowledge_alert);
    r.get("/api/v1/alerts/stream", alerts_stream);
    r.get("/api/v1/admin/users", admin_users);
    r.post("/api/v1/admin/users", admin_create_user);
    r.post("/api/v1/admin/users/{id}/disable", admin_disable_user);
    r.post("/api/v1/admin/teams", admin_assign_team);
    r.get("/api/v1/admin/on-call", admin_on_call);
    r.post("/api/v1/admin/on-call", admin_set_on_call);
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tandem API",
        version = "1",
        description = "Patient companion and clinician portal. Authenticate with the `tandem_session` cookie plus `X-CSRF-Token` on state-changing requests, or with `Authorization: Bearer <session token>`."
    ),
    paths(
        crate::auth::login,
        crate::auth::login_totp,
        crate::auth::logout,
        crate::auth::totp_enrol,
        crate::auth::totp_confirm,
        openapi_json,
        me,
        list_conversations,
        create_conversation,
        list_messages,
        post_message,
        list_moods,
        record_mood,
        due_measures,
        submit_measure,
        my_chart,
        my_care_plan,
        start_exercise,
        current_exercise,
        exercise_step,
        talk_request,
        export,
        set_consent,
        delete_account,
        caseload,
        patient_detail,
        patient_conversation,
        patient_chart,
        add_care_plan_item,
        set_care_plan_item_status,
        set_ai_preferences,
        set_measure_schedule,
        resolve_talk_request,
        alerts,
        acknowledge_alert,
        alerts_stream,
        admin_users,
        admin_create_user,
        admin_disable_user,
        admin_assign_team,
        admin_on_call,
        admin_set_on_call,
    ),
    components(schemas(
        crate::auth::LoginRequest,
        crate::auth::LoginResponse,
        crate::auth::CodeRequest,
        crate::auth::TotpEnrolment,
        MessageRequest,
        MoodRequest,
        AnswersRequest,
        ExerciseStart,
        StepRequest,
        TalkRequestBody,
        ConsentRequest,
        DeleteRequest,
        CarePlanItemRequest,
        StatusRequest,
        AiPreferencesRequest,
        ScheduleRequest,
        AcknowledgeRequest,
        NewUserRequest,
        DisableRequest,
        TeamRequest,
        OnCallRequest,
    ))
)]
pub struct ApiDoc;

/// The OpenAPI document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", responses((status = 200)))]
pub async fn openapi_json() -> Response {
    Json(ApiDoc::openapi()).into_response()
}

fn parse_id<T: std::str::FromStr>(raw: &str) -> ApiResult<T> {
    raw.parse().map_err(|_| ApiError::NotFound)
}

fn break_glass_reason(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-break-glass-reason")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn staff_access(
    st: &AppState,
    me: &ClinicianSession,
    raw_patient: &str,
    headers: &HeaderMap,
) -> ApiResult<(PatientId, Actor)> {
    let patient: PatientId = parse_id(raw_patient)?;
    let reason = break_glass_reason(headers);
    let actor = access_patient(st, me, patient, reason.as_deref()).await?;
    Ok((patient, actor))
}

// --- me -------------------------------------------------------------------------------------

/// Who is signed in.
#[utoipa::path(get, path = "/api/v1/me", tag = "account", responses((status = 200), (status = 401)))]
pub async fn me(State(st): State<AppState>, AnySession(a): AnySession) -> ApiResult<Json<Value>> {
    let consents = match a.user.patient_id() {
        Some(p) => serde_json::to_value(st.store.consents(p).await?).unwrap_or_default(),
        None => Value::Null,
    };
    let totp = st.store.totp(a.user.id).await?.is_some_and(|t| t.confirmed);
    Ok(Json(json!({
        "id": a.user.id,
        "username": a.user.username,
        "role": a.user.role,
        "csrf_token": a.csrf,
        "consents": consents,
        "totp_enrolled": totp,
    })))
}

// --- conversations --------------------------------------------------------------------------

/// The patient's conversations.
#[utoipa::path(get, path = "/api/v1/conversations", tag = "patient", responses((status = 200)))]
pub async fn list_conversations(
    State(st): State<AppState>,
    me: PatientSession,
) -> ApiResult<Json<Value>> {
    let list = st.store.conversations(me.patient).await?;
    Ok(Json(json!({"conversations": list})))
}

/// Starts a conversation; the answer carries the AI disclosure to show.
#[utoipa::path(post, path = "/api/v1/conversations", tag = "patient", responses((status = 201)))]
pub async fn create_conversation(
    State(st): State<AppState>,
    me: PatientSession,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let id = st.store.create_conversation(&me.actor, me.patient).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": id, "disclosure": DISCLOSURE_BANNER})),
    ))
}

pub(crate) async fn own_conversation(
    st: &AppState,
    me: &PatientSession,
    raw: &str,
) -> ApiResult<ConversationId> {
    let id: ConversationId = parse_id(raw)?;
    match st.store.conversation(id).await? {
        Some(c) if c.patient == me.patient => Ok(id),
        // Someone else's conversation looks exactly like a missing one.
        _ => Err(ApiError::NotFound),
    }
}

/// The messages of one of the patient's conversations.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/messages", tag = "patient",
    params(("id" = String, Path)), responses((status = 200), (status = 404)))]
pub async fn list_messages(
    State(st): State<AppState>,
    me: PatientSession,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = own_conversation(&st, &me, &id).await?;
    let msgs = st.store.messages(&me.actor, id).await?;
    let msgs: Vec<Value> = msgs
        .into_iter()
        .map(|m| json!({"id": m.id, "seq": m.seq, "role": m.role, "text": m.text, "created_at_ms": m.created_at_ms}))
        .collect();
    Ok(Json(json!({"messages": msgs})))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct MessageRequest {
    pub text: String,
}

/// Sends a message; the reply streams back as server-sent events: `delta` and `replace`
/// (`{"text": ...}`), then `done` with the turn outcome (or `error`).
#[utoipa::path(post, path = "/api/v1/conversations/{id}/messages", tag = "patient",
    params(("id" = String, Path)), request_body = MessageRequest,
    responses((status = 200, content_type = "text/event-stream"), (status = 400), (status = 404)))]
pub async fn post_message(
    State(st): State<AppState>,
    me: PatientSession,
    Path(id): Path<String>,
    Json(req): Json<MessageRequest>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let id = own_conversation(&st, &me, &id).await?;
    let text = req.text.trim().to_string();
    if text.is_empty() {
        return Err(ApiError::BadRequest("the message is empty".into()));
    }
    if text.chars().count() > tandem_engine::MAX_MESSAGE_CHARS {
        return Err(ApiError::BadRequest("the message is too long".into()));
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Result<Event, Infallible>>();
    let engine = st.engine.clone();
    let actor = me.actor.clone();
    tokio::spawn(async move {
        let cancel = CancellationToken::new();
        // The patient went away: stop generating (their message and any crisis handling
        // are kept by the engine).
        let watcher = {
            let tx = tx.clone();
            let cancel = cancel.clone();
            tokio::spawn(async move {
                tx.closed().await;
                cancel.cancel();
            })
        };
        let events = tx.clone();
        let mut on_event = move |ev: StreamEvent<'_>| {
            let (name, text) = match ev {
                StreamEvent::Delta(t) => ("delta", t),
                StreamEvent::Replace(t) => ("replace", t),
            };
            let _ = events.send(Ok(Event::default()
                .event(name)
                .data(json!({"text": text}).to_string())));
        };
        let result = engine.turn(&actor, id, &text, &mut on_event, &cancel).await;
        watcher.abort();
        let last = match result {
            Ok(outcome) => Event::default()
                .event("done")
                .data(serde_json::to_string(&outcome).unwrap_or_else(|_| "{}".into())),
            Err(e) => {
                tracing::warn!(conversation = %id, error = %e, "turn failed");
                Event::default()
                    .event("error")
                    .data(json!({"error": "the reply could not be completed"}).to_string())
            }
        };
        let _ = tx.send(Ok(last));
    });
    Ok(Sse::new(UnboundedReceiverStream::new(rx)).keep_alive(KeepAlive::default()))
}

// --- mood -----------------------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
pub struct MoodRequest {
    /// 0 (worst) to 10 (best).
    pub rating: u8,
    #[serde(default)]
    pub words: Vec<String>,
}

/// The patient's mood check-ins.
#[utoipa::path(get, path = "/api/v1/mood", tag = "patient", responses((status = 200)))]
pub async fn list_moods(State(st): State<AppState>, me: PatientSession) -> ApiResult<Json<Value>> {
    Ok(Json(
        json!({"moods": st.store.moods(&me.actor, me.patient).await?}),
    ))
}

/// Records a mood check-in.
#[utoipa::path(post, path = "/api/v1/mood", tag = "patient", request_body = MoodRequest,
    responses((status = 201), (status = 400)))]
pub async fn record_mood(
    State(st): State<AppState>,
    me: PatientSession,
    Json(req): Json<MoodRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let id = save_mood(&st, &me, req.rating, &req.words).await?;
    Ok((StatusCode::CREATED, Json(json!({"id": id}))))
}

/// Records a check-in for the API and for the page's plain form.
pub(crate) async fn save_mood(
    st: &AppState,
    me: &PatientSession,
    rating: u8,
    words: &[String],
) -> ApiResult<tandem_domain::MoodId> {
    if rating > 10 {
        return Err(ApiError::BadRequest("the rating is 0 to 10".into()));
    }
    let words: Vec<String> = words
        .iter()
        .map(|w| w.trim().chars().take(40).collect::<String>())
        .filter(|w| !w.is_empty())
        .take(12)
        .collect();
    Ok(st
        .store
        .record_mood(
            &me.actor,
            NewMood {
                patient: me.patient,
                rating,
                words,
                at_ms: st.now_ms(),
            },
        )
        .await?)
}

// --- measures -------------------------------------------------------------------------------

/// The patient's scheduled measures and whether each is due.
#[utoipa::path(get, path = "/api/v1/measures/due", tag = "patient", responses((status = 200)))]
pub async fn due_measures(
    State(st): State<AppState>,
    me: PatientSession,
) -> ApiResult<Json<Value>> {
    let due = st
        .care
        .due_measures(&me.actor, me.patient, st.now())
        .await?;
    Ok(Json(json!({"measures": due})))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct AnswersRequest {
    /// One value per item, in order; `null` for an item skipped by the form's logic.
    pub answers: Vec<Option<u8>>,
}

/// Submits a completed measure: the score, any step-up message, and whether the answers
/// raised a risk flag for the care team.
#[utoipa::path(post, path = "/api/v1/measures/{instrument}", tag = "patient",
    params(("instrument" = String, Path)), request_body = AnswersRequest,
    responses((status = 201), (status = 400)))]
pub async fn submit_measure(
    State(st): State<AppState>,
    me: PatientSession,
    Path(instrument): Path<String>,
    Json(req): Json<AnswersRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let s = st
        .care
        .submit_assessment(&me.actor, me.patient, &instrument, &req.answers, st.now())
        .await?;
    if let Some(id) = s.risk_event {
        publish_measure_alert(&st, &me, id).await?;
    }
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "assessment": s.assessment,
            "score": s.score,
            "risk_flag": s.risk_event.is_some(),
            "offer_cssrs": s.offer_cssrs,
            "step_up_message": s.step_up.as_ref().map(|r| r.patient_message.clone()),
        })),
    ))
}

/// A questionnaire that opened the safety flow reaches the live alert stream too.
async fn publish_measure_alert(
    st: &AppState,
    me: &PatientSession,
    id: RiskEventId,
) -> ApiResult<()> {
    let Some(ev) = st
        .store
        .risk_events(&me.actor, me.patient)
        .await?
        .into_iter()
        .find(|e| e.id == id)
    else {
        return Ok(());
    };
    st.engine
        .publish_alert(tandem_engine::AlertEvent::from_stored(
            id,
            me.patient,
            &ev.level,
            &ev.categories,
            Vec::new(),
        ));
    Ok(())
}

async fn chart(
    st: &AppState,
    actor: &Actor,
    patient: PatientId,
    instrument: &str,
) -> ApiResult<Response> {
    let inst = st.registry.get(instrument).ok_or(ApiError::NotFound)?;
    let series: Vec<tandem_measures::Assessment> = st
        .store
        .assessments(actor, patient)
        .await?
        .into_iter()
        .filter_map(|a| {
            Some(tandem_measures::Assessment {
                instrument: a.instrument,
                total: u32::try_from(a.total?).ok()?,
                at: time::OffsetDateTime::from_unix_timestamp_nanos(
                    i128::from(a.completed_at_ms) * 1_000_000,
                )
                .ok()?,
            })
        })
        .collect();
    let svg = tandem_measures::trajectory_svg(inst, &series, &ChartOptions::default());
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}

/// The patient's score chart for one measure (SVG).
#[utoipa::path(get, path = "/api/v1/measures/{instrument}/chart.svg", tag = "patient",
    params(("instrument" = String, Path)),
    responses((status = 200, content_type = "image/svg+xml"), (status = 404)))]
pub async fn my_chart(
    State(st): State<AppState>,
    me: PatientSession,
    Path(instrument): Path<String>,
) -> ApiResult<Response> {
    chart(&st, &me.actor, me.patient, &instrument).await
}

// --- care plan ------------------------------------------------------------------------------

/// The patient's care plan and homework.
#[utoipa::path(get, path = "/api/v1/care-plan", tag = "patient", responses((status = 200)))]
pub async fn my_care_plan(
    State(st): State<AppState>,
    me: PatientSession,
) -> ApiResult<Json<Value>> {
    let mut plan = st.store.care_plan(&me.actor, me.patient).await?;
    plan.items.retain(|i| i.status != "removed");
    Ok(Json(
        json!({"items": plan.items, "ai_preferences": plan.ai_preferences}),
    ))
}

// --- exercises ------------------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
pub struct ExerciseStart {
    /// `thought_record`, `behavioural_activation`, `grounding` or `breathing`.
    pub kind: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct StepRequest {
    pub text: String,
}

/// Starts a guided exercise.
#[utoipa::path(post, path = "/api/v1/exercises", tag = "patient", request_body = ExerciseStart,
    responses((status = 201), (status = 400)))]
pub async fn start_exercise(
    State(st): State<AppState>,
    me: PatientSession,
    Json(req): Json<ExerciseStart>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let kind: ExerciseKind = serde_json::from_value(Value::String(req.kind))
        .map_err(|_| ApiError::BadRequest("unknown exercise".into()))?;
    let turn = st
        .engine
        .start_exercise(&me.actor, me.patient, kind)
        .await?;
    Ok((StatusCode::CREATED, Json(json!(turn))))
}

/// The unfinished exercise to resume, if any (`null` otherwise).
#[utoipa::path(get, path = "/api/v1/exercises/current", tag = "patient", responses((status = 200)))]
pub async fn current_exercise(
    State(st): State<AppState>,
    me: PatientSession,
) -> ApiResult<Json<Value>> {
    let turn = st.engine.resumable_exercise(&me.actor, me.patient).await?;
    Ok(Json(json!({"exercise": turn})))
}

/// Answers the current step of an exercise.
#[utoipa::path(post, path = "/api/v1/exercises/{id}/steps", tag = "patient",
    params(("id" = String, Path)), request_body = StepRequest,
    responses((status = 200), (status = 400), (status = 404)))]
pub async fn exercise_step(
    State(st): State<AppState>,
    me: PatientSession,
    Path(id): Path<String>,
    Json(req): Json<StepRequest>,
) -> ApiResult<Json<Value>> {
    let id: ExerciseId = parse_id(&id)?;
    let turn = st
        .engine
        .exercise_step(&me.actor, me.patient, id, &req.text)
        .await?;
    Ok(Json(json!(turn)))
}

// --- talk to my clinician -------------------------------------------------------------------

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct TalkRequestBody {
    #[serde(default)]
    pub note: Option<String>,
}

/// Asks the care team to get in touch ("talk to my clinician").
#[utoipa::path(post, path = "/api/v1/talk-requests", tag = "patient", request_body = TalkRequestBody,
    responses((status = 201)))]
pub async fn talk_request(
    State(st): State<AppState>,
    me: PatientSession,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let req: TalkRequestBody = if body.is_empty() {
        TalkRequestBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("bad JSON: {e}")))?
    };
    let note = req
        .note
        .map(|n| n.trim().chars().take(1000).collect::<String>())
        .filter(|n| !n.is_empty());
    let id = st
        .store
        .create_talk_request(&me.actor, me.patient, note, st.now_ms())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({"id": id, "message": "Your care team has been asked to get in touch with you. If you need help right now, use the crisis resources."}),
        ),
    ))
}

// --- my data --------------------------------------------------------------------------------

/// Everything held about the patient, as a JSON download.
#[utoipa::path(get, path = "/api/v1/me/export", tag = "patient", responses((status = 200)))]
pub async fn export(State(st): State<AppState>, me: PatientSession) -> ApiResult<Response> {
    let data = st.store.export_patient(&me.actor, me.patient).await?;
    let mut resp = Json(data).into_response();
    resp.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        header::HeaderValue::from_static("attachment; filename=\"tandem-export.json\""),
    );
    Ok(resp)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ConsentRequest {
    /// `false` withdraws consent: the AI companion stops and the care team is told.
    pub ai_processing: bool,
}

/// Gives or withdraws consent to AI processing.
#[utoipa::path(post, path = "/api/v1/me/consent", tag = "patient", request_body = ConsentRequest,
    responses((status = 204)))]
pub async fn set_consent(
    State(st): State<AppState>,
    me: PatientSession,
    Json(req): Json<ConsentRequest>,
) -> ApiResult<StatusCode> {
    st.store
        .record_consent(
            &me.actor,
            me.patient,
            ConsentKind::AiProcessing,
            req.ai_processing,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct DeleteRequest {
    pub password: String,
    /// Must be the words `delete my account`.
    pub confirm: String,
}

/// Erases the patient's account and everything in it, after the password and the words
/// "delete my account".
#[utoipa::path(post, path = "/api/v1/me/delete", tag = "patient", request_body = DeleteRequest,
    responses((status = 200), (status = 400), (status = 401)))]
pub async fn delete_account(
    State(st): State<AppState>,
    me: PatientSession,
    Json(req): Json<DeleteRequest>,
) -> ApiResult<Response> {
    if req.confirm.trim().to_lowercase() != "delete my account" {
        return Err(ApiError::BadRequest(
            "type \"delete my account\" to confirm".into(),
        ));
    }
    let stored = st
        .store
        .user_credentials(&me.user.username)
        .await?
        .map(|(_, h)| h);
    let pw = req.password;
    let ok =
        tokio::task::spawn_blocking(move || tandem_vault::verify_password(stored.as_deref(), &pw))
            .await
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("password check failed: {e}")))?;
    if !ok {
        return Err(ApiError::Forbidden("that password is not right"));
    }
    let report = st
        .store
        .erase_patient(&me.actor.clone().with_reason("patient request"), me.patient)
        .await?;
    let mut resp =
        Json(json!({"erased": true, "rows_deleted": report.rows_deleted})).into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        crate::auth::session_cookie("", 0, st.config.secure_cookies),
    );
    Ok(resp)
}

// --- clinician: caseload and patient --------------------------------------------------------

pub(crate) async fn patient_signals(
    st: &AppState,
    actor: &Actor,
    patient: PatientId,
) -> ApiResult<PatientSignals> {
    let user = st
        .store
        .user(patient.into())
        .await?
        .ok_or(ApiError::NotFound)?;
    let risk = st.store.risk_events(actor, patient).await?;
    let (outcome, _) = st.care.outcome(actor, patient).await?;
    let assessments = st.store.assessments(actor, patient).await?;
    let mut severe: Vec<String> = Vec::new();
    for a in assessments.iter().rev() {
        if severe.contains(&a.instrument) {
            continue;
        }
        let latest_of_kind = assessments
            .iter()
            .rev()
            .find(|b| b.instrument == a.instrument)
            .map(|b| b.id == a.id)
            .unwrap_or(false);
        if latest_of_kind
            && a.band
                .as_deref()
                .is_some_and(|b| b.to_lowercase().contains("severe"))
        {
            severe.push(a.instrument.clone());
        }
    }
    let due = st.care.due_measures(actor, patient, st.now()).await?;
    let talk = st.store.talk_requests(actor, patient).await?;
    let consents = st.store.consents(patient).await?;
    Ok(PatientSignals {
        patient: Some(patient),
        username: user.username.to_string(),
        risk_events: risk
            .iter()
            .map(|e| RiskSignal {
                level: e.level.clone(),
                at_ms: e.created_at_ms,
                acknowledged: e.acknowledgement.is_some(),
            })
            .collect(),
        deteriorated: outcome
            .measures
            .iter()
            .filter(|m| m.reliable_deterioration)
            .map(|m| m.instrument.clone())
            .collect(),
        severe,
        overdue: due
            .iter()
            .filter(|d| matches!(d.status, DueStatus::Overdue { .. }))
            .map(|d| d.instrument.clone())
            .collect(),
        last_activity_ms: st.store.last_patient_activity(patient).await?,
        open_talk_requests: u32::try_from(
            talk.iter().filter(|t| t.resolved_at_ms.is_none()).count(),
        )
        .unwrap_or(u32::MAX),
        ai_consent_withdrawn: consents
            .iter()
            .any(|c| c.kind == ConsentKind::AiProcessing && !c.granted),
    })
}

pub(crate) async fn ranked_caseload(
    st: &AppState,
    me: &ClinicianSession,
) -> ApiResult<Vec<tandem_care::RankedPatient>> {
    let mut signals = Vec::new();
    for p in st.store.caseload(me.user.id).await? {
        signals.push(patient_signals(st, &me.actor, p).await?);
    }
    Ok(rank_caseload(&signals, st.now_ms(), &st.config.caseload))
}

/// The clinician's caseload, most urgent first, with the reason for each place.
#[utoipa::path(get, path = "/api/v1/patients", tag = "clinician", responses((status = 200)))]
pub async fn caseload(State(st): State<AppState>, me: ClinicianSession) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"patients": ranked_caseload(&st, &me).await?})))
}

pub(crate) async fn patient_detail_value(
    st: &AppState,
    actor: &Actor,
    patient: PatientId,
) -> ApiResult<Value> {
    let user = st
        .store
        .user(patient.into())
        .await?
        .ok_or(ApiError::NotFound)?;
    let summaries: Vec<Value> = st
        .store
        .summaries(actor, patient)
        .await?
        .into_iter()
        .map(|s| {
            json!({
                "id": s.id,
                "text": s.text,
                "ai_generated": true,
                "label": "AI-generated summary: check it against the messages",
                "conversation": s.conversation,
                "first_message": s.first_message,
                "last_message": s.last_message,
                "messages_url": format!("/api/v1/patients/{patient}/conversations/{}/messages#m-{}", s.conversation, s.first_message),
                "created_at_ms": s.created_at_ms,
            })
        })
        .collect();
    let (outcome, step_up) = st.care.outcome(actor, patient).await?;
    let mut plan = st.store.care_plan(actor, patient).await?;
    plan.items.retain(|i| i.status != "removed");
    let break_glass: Vec<Value> = st
        .store
        .audit_entries(Some(patient))
        .await?
        .into_iter()
        .filter(|e| e.action == "break_glass")
        .map(|e| json!({"by": e.actor, "at_ms": e.at_ms, "reason": e.reason}))
        .collect();
    Ok(json!({
        "patient": {"id": patient, "username": user.username, "disabled": user.disabled},
        "consents": st.store.consents(patient).await?,
        "conversations": st.store.conversations(patient).await?,
        "summaries": summaries,
        "risk_events": st.store.risk_events(actor, patient).await?,
        "assessments": st.store.assessments(actor, patient).await?,
        "outcome": outcome,
        "step_up": step_up,
        "due_measures": st.care.due_measures(actor, patient, st.now()).await?,
        "care_plan": plan,
        "measure_schedules": st.store.measure_schedules(patient).await?,
        "talk_requests": st.store.talk_requests(actor, patient).await?,
        "moods": st.store.moods(actor, patient).await?,
        "nudges": st.store.nudges(actor, patient).await?,
        "break_glass": break_glass,
    }))
}

/// One patient: AI summaries (labelled, linking to their messages), risk events with
/// evidence, measures with outcome and step-up, care plan, requests, emergency accesses.
#[utoipa::path(get, path = "/api/v1/patients/{id}", tag = "clinician",
    params(("id" = String, Path), ("X-Break-Glass-Reason" = Option<String>, Header)),
    responses((status = 200), (status = 403), (status = 404)))]
pub async fn patient_detail(
    State(st): State<AppState>,
    me: ClinicianSession,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let (patient, actor) = staff_access(&st, &me, &id, &headers).await?;
    Ok(Json(patient_detail_value(&st, &actor, patient).await?))
}

/// A whole conversation, on demand (each view is audited).
#[utoipa::path(get, path = "/api/v1/patients/{id}/conversations/{cid}/messages", tag = "clinician",
    params(("id" = String, Path), ("cid" = String, Path)),
    responses((status = 200), (status = 403), (status = 404)))]
pub async fn patient_conversation(
    State(st): State<AppState>,
    me: ClinicianSession,
    Path((id, cid)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let (patient, actor) = staff_access(&st, &me, &id, &headers).await?;
    let cid: ConversationId = parse_id(&cid)?;
    match st.store.conversation(cid).await? {
        Some(c) if c.patient == patient => {}
        _ => return Err(ApiError::NotFound),
    }
    let msgs = st.store.messages(&actor, cid).await?;
    Ok(Json(json!({"messages": msgs})))
}

/// A patient's score chart (SVG).
#[utoipa::path(get, path = "/api/v1/patients/{id}/measures/{instrument}/chart.svg", tag = "clinician",
    params(("id" = String, Path), ("instrument" = String, Path)),
    responses((status = 200, content_type = "image/svg+xml"), (status = 403), (status = 404)))]
pub async fn patient_chart(
    State(st): State<AppState>,
    me: ClinicianSession,
    Path((id, instrument)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (patient, actor) = staff_access(&st, &me, &id, &headers).await?;
    chart(&st, &actor, patient, &instrument).await
}

// --- clinician: care plan editing -----------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
pub struct CarePlanItemRequest {
    /// `goal`, `homework`, `psychoeducation` (text = a library document id), `note` or
    /// `instruction`.
    pub kind: String,
    pub text: String,
    #[serde(default)]
    pub due_at_ms: Option<i64>,
}

/// Adds a goal, homework, psychoeducation assignment, note or instruction.
#[utoipa::path(post, path = "/api/v1/patients/{id}/care-plan/items", tag = "clinician",
    params(("id" = String, Path)), request_body = CarePlanItemRequest,
    responses((status = 201), (status = 400), (status = 403)))]
pub async fn add_care_plan_item(
    State(st): State<AppState>,
    me: ClinicianSession,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(req): Json<CarePlanItemRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (patient, actor) = staff_access(&st, &me, &id, &headers).await?;
    let kind: CarePlanItemKind = req
        .kind
        .parse()
        .map_err(|e: tandem_domain::ParseError| ApiError::BadRequest(e.to_string()))?;
    let text = req.text.trim().to_string();
    if text.is_empty() || text.chars().count() > 4000 {
        return Err(ApiError::BadRequest(
            "the text must be 1 to 4000 characters".into(),
        ));
    }
    let item = st
        .store
        .add_care_plan_item(
            &actor,
            NewCarePlanItem {
                patient,
                kind,
                text,
                due_at_ms: req.due_at_ms,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(json!({"id": item}))))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct StatusRequest {
    /// `active`, `done` or `removed`.
    pub status: String,
}

/// Marks a care plan item active, done or removed.
#[utoipa::path(post, path = "/api/v1/patients/{id}/care-plan/items/{item}/status", tag = "clinician",
    params(("id" = String, Path), ("item" = String, Path)), request_body = StatusRequest,
    responses((status = 204), (status = 400), (status = 403), (status = 404)))]
pub async fn set_care_plan_item_status(
    State(st): State<AppState>,
    me: ClinicianSession,
    Path((id, item)): Path<(String, String)>,
    headers: HeaderMap,
    Json(req): Json<StatusRequest>,
) -> ApiResult<StatusCode> {
    let (patient, actor) = staff_access(&st, &me, &id, &headers).await?;
    let item: CarePlanItemId = parse_id(&item)?;
    st.store
        .set_care_plan_item_status(&actor, patient, item, &req.status)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct AiPreferencesRequest {
    #[serde(default)]
    pub topics_to_avoid: Vec<String>,
    #[serde(default)]
    pub tone: Option<String>,
}

/// Sets how the companion talks to this patient: tone, topics to avoid.
#[utoipa::path(put, path = "/api/v1/patients/{id}/care-plan/ai-preferences", tag = "clinician",
    params(("id" = String, Path)), request_body = AiPreferencesRequest,
    responses((status = 204), (status = 403)))]
pub async fn set_ai_preferences(
    State(st): State<AppState>,
    me: ClinicianSession,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(req): Json<AiPreferencesRequest>,
) -> ApiResult<StatusCode> {
    let (patient, actor) = staff_access(&st, &me, &id, &headers).await?;
    let topics: Vec<String> = req
        .topics_to_avoid
        .iter()
        .map(|t| t.trim().chars().take(100).collect::<String>())
        .filter(|t| !t.is_empty())
        .take(20)
        .collect();
    let tone = req
        .tone
        .map(|t| t.trim().chars().take(200).collect::<String>())
        .filter(|t| !t.is_empty());
    st.store
        .set_ai_preferences(
            &actor,
            patient,
            json!({"topics_to_avoid": topics, "tone": tone}),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ScheduleRequest {
    pub instrument: String,
    pub every_days: u32,
    #[serde(default)]
    pub grace_days: Option<u32>,
}

/// Sets how often the patient gets a measure.
#[utoipa::path(put, path = "/api/v1/patients/{id}/measure-schedules", tag = "clinician",
    params(("id" = String, Path)), request_body = ScheduleRequest,
    responses((status = 204), (status = 400), (status = 403)))]
pub async fn set_measure_schedule(
    State(st): State<AppState>,
    me: ClinicianSession,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(req): Json<ScheduleRequest>,
) -> ApiResult<StatusCode> {
    let (patient, actor) = staff_access(&st, &me, &id, &headers).await?;
    st.care
        .set_schedule(
            &actor,
            patient,
            &req.instrument,
            req.every_days,
            req.grace_days.unwrap_or(3),
            st.now(),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Closes a "talk to my clinician" request.
#[utoipa::path(post, path = "/api/v1/patients/{id}/talk-requests/{rid}/resolve", tag = "clinician",
    params(("id" = String, Path), ("rid" = String, Path)),
    responses((status = 204), (status = 403), (status = 404), (status = 409)))]
pub async fn resolve_talk_request(
    State(st): State<AppState>,
    me: ClinicianSession,
    Path((id, rid)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let (patient, actor) = staff_access(&st, &me, &id, &headers).await?;
    let rid: TalkRequestId = parse_id(&rid)?;
    st.store
        .resolve_talk_request(&actor, patient, rid, st.now_ms())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// --- clinician: alerts ----------------------------------------------------------------------

pub(crate) async fn open_alerts(st: &AppState, me: &ClinicianSession) -> ApiResult<Vec<Value>> {
    Ok(alerts_overview(st, me, i64::MAX).await?.0)
}

/// The caseload's alerts in one pass over its risk events: the open ones (with those
/// escalated to me as the on-call clinician, `escalated_to_me`), and those acknowledged
/// at or after `acknowledged_since_ms` (with who and when), newest first.
pub(crate) async fn alerts_overview(
    st: &AppState,
    me: &ClinicianSession,
    acknowledged_since_ms: i64,
) -> ApiResult<(Vec<Value>, Vec<Value>)> {
    let mut open = Vec::new();
    let mut acknowledged = Vec::new();
    let caseload = st.store.caseload(me.user.id).await?;
    for &p in &caseload {
        let name = username_of(st, p).await?;
        for e in st.store.risk_events(&me.actor, p).await? {
            let mut v = json!({
                "id": e.id, "patient": p, "username": name, "level": e.level,
                "categories": e.categories, "source": e.source,
                "urgent": tandem_care::caseload::level_rank(&e.level) >= 3,
                "created_at_ms": e.created_at_ms,
                "escalated_at_ms": e.escalated_at_ms,
                "escalated_to_me": false,
            });
            match &e.acknowledgement {
                None => open.push(v),
                Some(a) if a.at_ms >= acknowledged_since_ms => {
                    v["acknowledged_by"] = json!(staff_name(st, &a.clinician).await?);
                    v["acknowledged_at_ms"] = json!(a.at_ms);
                    acknowledged.push(v);
                }
                Some(_) => {}
            }
        }
    }
    // Alerts escalated to me as the on-call clinician, for patients outside my caseload.
    for e in st.store.escalated_to(me.user.id).await? {
        if caseload.contains(&e.patient) {
            continue;
        }
        open.push(json!({
            "id": e.id, "patient": e.patient, "username": username_of(st, e.patient).await?,
            "level": e.level, "categories": e.categories,
            "urgent": tandem_care::caseload::level_rank(&e.level) >= 3,
            "created_at_ms": e.created_at_ms,
            "escalated_at_ms": e.escalated_at_ms,
            "escalated_to_me": true,
        }));
    }
    open.sort_by_key(|v| std::cmp::Reverse(v["created_at_ms"].as_i64().unwrap_or(0)));
    acknowledged.sort_by_key(|v| std::cmp::Reverse(v["acknowledged_at_ms"].as_i64().unwrap_or(0)));
    Ok((open, acknowledged))
}

/// The login name of the staff account an audit or acknowledgement record names by id
/// (`system:...` actors keep their label).
pub(crate) async fn staff_name(st: &AppState, actor_id: &str) -> ApiResult<String> {
    let Ok(id) = actor_id.parse::<UserId>() else {
        return Ok(actor_id.to_string());
    };
    Ok(st.store.user(id).await?.map_or_else(
        || "a deleted account".to_string(),
        |u| u.username.to_string(),
    ))
}

pub(crate) async fn username_of(st: &AppState, patient: PatientId) -> ApiResult<String> {
    Ok(st
        .store
        .user(patient.into())
        .await?
        .map(|u| u.username.to_string())
        .unwrap_or_default())
}

/// Unacknowledged risk alerts for the clinician's caseload, and those escalated to the
/// clinician as on call (`escalated_to_me`), newest first.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "clinician", responses((status = 200)))]
pub async fn alerts(State(st): State<AppState>, me: ClinicianSession) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"alerts": open_alerts(&st, &me).await?})))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct AcknowledgeRequest {
    #[serde(default)]
    pub note: Option<String>,
}

pub(crate) async fn acknowledge(
    st: &AppState,
    me: &ClinicianSession,
    raw_id: &str,
    reason: Option<&str>,
    note: Option<String>,
) -> ApiResult<()> {
    let id: RiskEventId = parse_id(raw_id)?;
    let patient = st
        .store
        .risk_event_patient(id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let actor = access_patient(st, me, patient, reason).await?;
    let note = note
        .map(|n| n.trim().chars().take(2000).collect::<String>())
        .filter(|n| !n.is_empty());
    st.store.acknowledge_risk_event(&actor, id, note).await?;
    Ok(())
}

/// Acknowledges an alert: records who and when.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/acknowledge", tag = "clinician",
    params(("id" = String, Path)), request_body = AcknowledgeRequest,
    responses((status = 204), (status = 403), (status = 404), (status = 409)))]
pub async fn acknowledge_alert(
    State(st): State<AppState>,
    me: ClinicianSession,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let req: AcknowledgeRequest = if body.is_empty() {
        AcknowledgeRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("bad JSON: {e}")))?
    };
    acknowledge(
        &st,
        &me,
        &id,
        break_glass_reason(&headers).as_deref(),
        req.note,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Live alerts for the clinician's caseload as server-sent events (`alert`), and alerts
/// escalated to the clinician as on call (`escalated_to_me`).
#[utoipa::path(get, path = "/api/v1/alerts/stream", tag = "clinician",
    responses((status = 200, content_type = "text/event-stream")))]
pub async fn alerts_stream(
    State(st): State<AppState>,
    me: ClinicianSession,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = st.engine.subscribe_alerts();
    let store = st.store.clone();
    let clinician = me.user.id;
    let shutdown = st.shutdown.clone();
    let stream = BroadcastStream::new(rx)
        .filter_map(move |r| {
            let store = store.clone();
            async move {
                let alert = r.ok()?;
                let escalated_to_me = alert.escalated_to.contains(&clinician);
                if !escalated_to_me
                    && !store.is_on_care_team(clinician, alert.patient).await.ok()?
                {
                    return None;
                }
                let username = store
                    .user(alert.patient.into())
                    .await
                    .ok()
                    .flatten()
                    .map(|u| u.username.to_string());
                let data = json!({
                    "id": alert.risk_event, "patient": alert.patient, "username": username,
                    "level": alert.level, "categories": alert.categories, "urgent": alert.urgent,
                    "escalated": !alert.escalated_to.is_empty(), "escalated_to_me": escalated_to_me,
                });
                Some(Ok(Event::default().event("alert").data(data.to_string())))
            }
        })
        .take_until(async move { shutdown.cancelled().await });
    let opening =
        futures_util::stream::once(async { Ok(Event::default().event("ready").data("{}")) });
    Sse::new(opening.chain(stream)).keep_alive(KeepAlive::default())
}

// --- admin ----------------------------------------------------------------------------------

fn user_json(u: &tandem_store::User) -> Value {
    json!({"id": u.id, "username": u.username, "role": u.role, "disabled": u.disabled, "created_at_ms": u.created_at_ms})
}

/// Every account (no clinical content).
#[utoipa::path(get, path = "/api/v1/admin/users", tag = "admin", responses((status = 200)))]
pub async fn admin_users(State(st): State<AppState>, _me: AdminSession) -> ApiResult<Json<Value>> {
    let users: Vec<Value> = st.store.list_users().await?.iter().map(user_json).collect();
    Ok(Json(json!({"users": users})))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewUserRequest {
    pub username: String,
    pub password: String,
    /// `patient`, `clinician` or `admin`.
    pub role: String,
}

/// Creates an account.
#[utoipa::path(post, path = "/api/v1/admin/users", tag = "admin", request_body = NewUserRequest,
    responses((status = 201), (status = 400), (status = 409)))]
pub async fn admin_create_user(
    State(st): State<AppState>,
    me: AdminSession,
    Json(req): Json<NewUserRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let username =
        Username::parse(&req.username).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let role: Role = req
        .role
        .parse()
        .map_err(|e: tandem_domain::ParseError| ApiError::BadRequest(e.to_string()))?;
    let pw = req.password;
    let hash = tokio::task::spawn_blocking(move || tandem_vault::hash_password(&pw))
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("hashing failed: {e}")))?
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let user = st
        .store
        .create_user(
            &me.actor,
            NewUser {
                username,
                role,
                password_hash: hash,
            },
        )
        .await?;
    // Consent to AI processing is the patient's own decision: the chat page asks for it.
    Ok((StatusCode::CREATED, Json(user_json(&user))))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct DisableRequest {
    #[serde(default = "yes")]
    pub disabled: bool,
}

fn yes() -> bool {
    true
}

/// Disables (or re-enables) an account; a disabled account's sessions end at once.
#[utoipa::path(post, path = "/api/v1/admin/users/{id}/disable", tag = "admin",
    params(("id" = String, Path)), request_body = DisableRequest,
    responses((status = 204), (status = 404)))]
pub async fn admin_disable_user(
    State(st): State<AppState>,
    me: AdminSession,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let req: DisableRequest = if body.is_empty() {
        DisableRequest { disabled: true }
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("bad JSON: {e}")))?
    };
    let id: UserId = parse_id(&id)?;
    if id == me.user.id {
        return Err(ApiError::BadRequest(
            "you cannot disable your own account".into(),
        ));
    }
    st.store
        .set_user_disabled(&me.actor, id, req.disabled)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct TeamRequest {
    pub clinician: String,
    pub patient: String,
}

/// Puts a clinician on a patient's care team.
#[utoipa::path(post, path = "/api/v1/admin/teams", tag = "admin", request_body = TeamRequest,
    responses((status = 204), (status = 400), (status = 404)))]
pub async fn admin_assign_team(
    State(st): State<AppState>,
    me: AdminSession,
    Json(req): Json<TeamRequest>,
) -> ApiResult<StatusCode> {
    let clinician: UserId = parse_id(&req.clinician)?;
    let patient: PatientId = parse_id(&req.patient)?;
    st.store
        .assign_care_team(&me.actor, clinician, patient)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct OnCallRequest {
    /// The clinician's user id.
    pub clinician: String,
    /// `true` puts them on call, `false` takes them off.
    pub on_call: bool,
}

/// The clinicians on call: unacknowledged crisis alerts escalate to them.
#[utoipa::path(get, path = "/api/v1/admin/on-call", tag = "admin", responses((status = 200)))]
pub async fn admin_on_call(
    State(st): State<AppState>,
    _me: AdminSession,
) -> ApiResult<Json<Value>> {
    let mut list = Vec::new();
    for id in st.store.on_call().await? {
        if let Some(u) = st.store.user(id).await? {
            list.push(user_json(&u));
        }
    }
    Ok(Json(json!({"on_call": list})))
}

/// Puts a clinician on or off call.
#[utoipa::path(post, path = "/api/v1/admin/on-call", tag = "admin", request_body = OnCallRequest,
    responses((status = 204), (status = 400), (status = 404)))]
pub async fn admin_set_on_call(
    State(st): State<AppState>,
    me: AdminSession,
    Json(req): Json<OnCallRequest>,
) -> ApiResult<StatusCode> {
    let clinician: UserId = parse_id(&req.clinician)?;
    st.store
        .set_on_call(&me.actor, clinician, req.on_call)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
