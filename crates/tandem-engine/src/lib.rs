//! The conversation engine: what happens to one patient message.
//!
//! ```text
//! persist patient message
//!   -> screen (safety engine, with the patient's earlier messages)           [no model]
//!        high / imminent -> fixed crisis text + risk event + urgent alert    [no model]
//!        moderate        -> generation with the safety instruction + resources + flag
//!        none / low      -> generation
//!   -> identity question ("are you a human?") -> fixed truthful answer       [no model]
//!   -> context assembly (care plan, summary, psychoeducation, recent turns)
//!   -> model, streamed; each sentence passes the output guard before release
//!   -> guard block: one stricter retry, then the safe fallback
//!   -> persist reply (sealed) with provenance
//! ```
//! The crisis path never touches the model, and a model failure never hides a crisis
//! response: a failed or slow model gives a kind "I can't reply right now" with the crisis
//! lines. Logs carry ids, levels and rule ids, never message text.

use serde::Serialize;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
pub use tandem_companion::NudgeThresholds;
use tandem_companion::{
    assemble, dependence_nudge_with, identity_answer, identity_question_locale,
    sessions_from_activity, Budget, CarePlanView, ContextInput, Library, Locale, Nudge, Turn,
    UsageStats,
};
use tandem_domain::{
    ConversationId, MessageId, MessageRole, PatientId, RiskEventId, Timestamp, UserId,
};
use tandem_model::{
    CancellationToken, ChatMessage, ChatRequest, FinishReason, ModelBackend, ModelError,
    Role as ModelRole,
};
use tandem_safety::{
    Action, Category, GuardContext, GuardDecision, Level, SafetyEngine, ScreenInput, Verdict,
};
use tandem_store::{
    Actor, Message, NewMessage, NewRiskEvent, NewSummary, Store, StoreError, UsageMeta,
};
use tokio::sync::broadcast;

mod exercise;
mod summary;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub use exercise::ExerciseTurn;

/// What the client sees while a reply is produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent<'a> {
    /// More text, already checked by the output guard.
    Delta(&'a str),
    /// Throw away what was shown and show this instead (a guard retry or fallback).
    Replace(&'a str),
}

/// Something the engine did this turn (`tandem converse` prints these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnAction {
    CrisisResponse,
    ClinicianAlert,
    ClinicianFlag,
    SafetyInstruction,
    IdentityDisclosure,
    GuardBlocked,
    GuardRetry,
    GuardFallback,
    ModelUnavailable,
    ConsentWithdrawn,
    Summarised,
    MeasureInvitation,
    /// Heavy use: the reply suggested turning to the clinician and to trusted people.
    DependenceNudge,
}

/// A risk event the clinician must see. Sent on the engine's alert channel.
#[derive(Debug, Clone, Serialize)]
pub struct AlertEvent {
    pub risk_event: RiskEventId,
    pub patient: PatientId,
    pub level: Level,
    pub categories: Vec<Category>,
    /// High or imminent: the clinician must act now.
    pub urgent: bool,
    /// Empty for a new alert (it goes to the patient's care team); for an alert nobody
    /// acknowledged in time, the on-call clinicians it was escalated to.
    pub escalated_to: Vec<UserId>,
}

impl AlertEvent {
    /// An alert for a risk event as the store holds it (level and categories as text). A
    /// level that does not parse counts as high: an alert is never played down.
    pub fn from_stored(
        risk_event: RiskEventId,
        patient: PatientId,
        level: &str,
        categories: &[String],
        escalated_to: Vec<UserId>,
    ) -> AlertEvent {
        let level: Level = level.parse().unwrap_or(Level::High);
        AlertEvent {
            risk_event,
            patient,
            urgent: level >= Level::High,
            level,
            categories: categories.iter().filter_map(|c| c.parse().ok()).collect(),
            escalated_to,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RiskSummary {
    pub level: Level,
    pub categories: Vec<Category>,
}

/// The result of one turn.
#[derive(Debug, Clone, Serialize)]
pub struct TurnOutcome {
    pub patient_message: MessageId,
    pub assistant_message: MessageId,
    pub reply: String,
    pub risk: RiskSummary,
    pub actions: Vec<TurnAction>,
    pub risk_event: Option<RiskEventId>,
    pub provenance: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the message is empty")]
    EmptyMessage,
    #[error("the message is too long ({0} characters; at most {MAX_MESSAGE_CHARS})")]
    TooLong(usize),
    /// An exercise answer was not accepted; the message is written for the patient.
    #[error("{0}")]
    Exercise(String),
}

pub const MAX_MESSAGE_CHARS: usize = 4000;

/// Tunables, with defaults sized for the small embedded model.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// BCP 47 tag choosing crisis lines and fixed texts.
    pub locale: String,
    pub max_reply_tokens: u32,
    pub temperature: f32,
    pub seed: Option<u32>,
    /// A reply that takes longer than this is abandoned for the "can't reply" text.
    pub model_timeout: Duration,
    /// Summarise when this many messages are not yet covered by a summary.
    pub summary_every: usize,
    /// How many library passages go into the prompt.
    pub psychoeducation_passages: usize,
    /// When heavy use earns a nudge towards people (see `tandem_companion::nudge`).
    pub nudge: NudgeThresholds,
    /// A pause longer than this (minutes) between messages starts a new session.
    pub session_gap_minutes: i64,
    /// The patients' offset from UTC, for "late at night" and calendar days.
    pub utc_offset_minutes: i32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            locale: "en-US".into(),
            max_reply_tokens: 160,
            temperature: 0.6,
            seed: None,
            model_timeout: Duration::from_secs(90),
            summary_every: 16,
            psychoeducation_passages: 1,
            nudge: NudgeThresholds::DEFAULT,
            session_gap_minutes: 30,
            utc_offset_minutes: 0,
        }
    }
}

/// The engine. Cheap to share: everything inside is behind `Arc`.
#[derive(Clone)]
pub struct Engine {
    store: Arc<dyn Store>,
    safety: Arc<SafetyEngine>,
    model: Arc<dyn ModelBackend>,
    library: Arc<Library>,
    config: EngineConfig,
    alerts: broadcast::Sender<AlertEvent>,
    care: Option<Arc<tandem_care::Care>>,
}

impl Engine {
    pub fn new(
        store: Arc<dyn Store>,
        safety: Arc<SafetyEngine>,
        model: Arc<dyn ModelBackend>,
        library: Arc<Library>,
        config: EngineConfig,
    ) -> Engine {
        let (alerts, _) = broadcast::channel(256);
        Engine {
            store,
            safety,
            model,
            library,
            config,
            alerts,
            care: None,
        }
    }

    /// With care services, the companion invites the patient to complete measures that are
    /// due (once per conversation each).
    pub fn with_care(mut self, care: Arc<tandem_care::Care>) -> Engine {
        self.care = Some(care);
        self
    }

    /// Live alerts for clinicians (the web server forwards them over SSE).
    pub fn subscribe_alerts(&self) -> broadcast::Receiver<AlertEvent> {
        self.alerts.subscribe()
    }

    /// Sends an alert recorded outside a conversation turn (for example a questionnaire
    /// answer that opened the safety flow) to the live alert subscribers.
    pub fn publish_alert(&self, alert: AlertEvent) {
        // No receivers is fine: the event is in the store and the caseload shows it.
        let _ = self.alerts.send(alert);
    }

    pub fn safety(&self) -> &SafetyEngine {
        &self.safety
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn model(&self) -> &Arc<dyn ModelBackend> {
        &self.model
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Handles one patient message. `on_event` receives the reply as it is released;
    /// `cancel` stops generation when the patient goes away (the patient's message and
    /// any crisis handling are kept).
    pub async fn turn(
        &self,
        actor: &Actor,
        conversation: ConversationId,
        text: &str,
        on_event: &mut (dyn FnMut(StreamEvent<'_>) + Send),
        cancel: &CancellationToken,
    ) -> Result<TurnOutcome, EngineError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(EngineError::EmptyMessage);
        }
        let chars = text.chars().count();
        if chars > MAX_MESSAGE_CHARS {
            return Err(EngineError::TooLong(chars));
        }
        // One transaction reads the context (earlier messages first: the new one must not
        // count as its own context) and stores the patient's message.
        let now = now_ms();
        // One day beyond the nudge's window, for patients east or west of UTC.
        let usage_since = now.saturating_sub(
            (self.config.nudge.window_days.saturating_add(1)).saturating_mul(86_400_000),
        );
        let ctx = self
            .store
            .open_turn(actor, conversation, text, usage_since)
            .await?;
        let patient = ctx.patient;
        let history = ctx.messages;
        let patient_message = ctx.patient_message;
        let usage = ctx.usage;

        // 1. Screen, with the patient's earlier messages as context.
        let context: Vec<&str> = history
            .iter()
            .filter(|m| m.role == MessageRole::Patient)
            .map(|m| m.text.as_str())
            .collect();
        let verdict = self.safety.screen(&ScreenInput {
            text,
            context: &context,
        });
        let protocol = self.safety.protocol(&verdict, &self.config.locale);
        let mut actions = Vec::new();
        let risk_event = self
            .record_risk_event(
                actor,
                patient,
                Some(conversation),
                Some(patient_message.id),
                "chat",
                &verdict,
                &mut actions,
            )
            .await?;
        let mut prov = json!({
            "safety": {
                "level": verdict.level,
                "categories": verdict.categories,
                "rules": verdict.evidence.iter().map(|e| e.rule_id.as_str()).collect::<Vec<_>>(),
                "protocol_version": self.safety.protocol_data().version(),
            },
        });

        // 2. Crisis: the fixed text, never the model.
        let reply = if let Action::CrisisResponse { text, .. } = &protocol.action {
            actions.push(TurnAction::CrisisResponse);
            prov["generator"] = json!("crisis-protocol");
            on_event(StreamEvent::Delta(text));
            text.clone()
        } else if !ctx.ai_consent {
            actions.push(TurnAction::ConsentWithdrawn);
            prov["generator"] = json!("fixed:consent");
            let t = self.consent_off_text();
            on_event(StreamEvent::Delta(&t));
            t
        } else if let Some(loc) = identity_question_locale(text) {
            // 3. "Are you a human?" is answered truthfully by fixed text.
            actions.push(TurnAction::IdentityDisclosure);
            prov["generator"] = json!("fixed:identity");
            let t = identity_answer(loc).to_string();
            on_event(StreamEvent::Delta(&t));
            t
        } else {
            // 4. Generation, guarded.
            let (instruction, resources) = match &protocol.action {
                Action::GenerateWithSafety {
                    system_instruction,
                    resources,
                } => {
                    actions.push(TurnAction::SafetyInstruction);
                    (Some(system_instruction.clone()), Some(resources.clone()))
                }
                _ => (None, None),
            };
            let mut reply = self
                .generate_guarded(
                    &ctx.care_plan,
                    ctx.summary.as_ref().map(|s| s.text.clone()),
                    &history,
                    text,
                    &verdict,
                    instruction,
                    &mut actions,
                    &mut prov,
                    on_event,
                    cancel,
                )
                .await?;
            if let Some(res) = resources {
                let extra = format!("\n\n{res}");
                on_event(StreamEvent::Delta(&extra));
                reply.push_str(&extra);
            } else if let Some(nudge) = self.dependence_nudge(actor, patient, &usage, now).await {
                prov["nudge"] = json!(nudge.reasons);
                actions.push(TurnAction::DependenceNudge);
                let extra = format!("\n\n{}", nudge.text);
                on_event(StreamEvent::Delta(&extra));
                reply.push_str(&extra);
            } else if let Some(invite) = self.measure_invitation(actor, patient, &history).await {
                prov["measure_invitation"] = json!(invite.0);
                actions.push(TurnAction::MeasureInvitation);
                let extra = format!("\n\n{}", invite.1);
                on_event(StreamEvent::Delta(&extra));
                reply.push_str(&extra);
            }
            reply
        };
        prov["actions"] = json!(actions);
        let assistant = self
            .store
            .append_message(
                actor,
                NewMessage {
                    conversation,
                    role: MessageRole::Assistant,
                    text: reply.clone(),
                    provenance: Some(prov.clone()),
                },
            )
            .await?;
        tracing::info!(
            conversation = %conversation,
            message = %assistant.id,
            level = %verdict.level,
            actions = ?actions,
            "turn complete"
        );
        if self.needs_summary(&history) {
            match self.summarise(actor, conversation).await {
                Ok(Some(_)) => actions.push(TurnAction::Summarised),
                Ok(None) => {}
                // A failed summary never fails the patient's turn.
                Err(e) => {
                    tracing::warn!(conversation = %conversation, error = %e, "summary failed")
                }
            }
        }
        Ok(TurnOutcome {
            patient_message: patient_message.id,
            assistant_message: assistant.id,
            reply,
            risk: RiskSummary {
                level: verdict.level,
                categories: verdict.categories.clone(),
            },
            actions,
            risk_event,
            provenance: prov,
        })
    }

    /// Whether the patient's use of the companion calls for a nudge towards people now; a
    /// given nudge is recorded (so the next waits out the cool-down). Never fails a turn.
    async fn dependence_nudge(
        &self,
        actor: &Actor,
        patient: PatientId,
        usage: &UsageMeta,
        now: i64,
    ) -> Option<Nudge> {
        let stats = UsageStats {
            sessions: sessions_from_activity(
                &usage.patient_message_times_ms,
                self.config.session_gap_minutes,
            ),
            last_human_contact: usage.last_human_contact_ms.map(Timestamp),
            last_nudge: usage.last_nudge_ms.map(Timestamp),
            utc_offset_minutes: self.config.utc_offset_minutes,
        };
        let nudge = dependence_nudge_with(&stats, Timestamp(now), &self.config.nudge)?;
        let reasons: Vec<String> = nudge
            .reasons
            .iter()
            .map(|r| r.as_str().to_string())
            .collect();
        if let Err(e) = self.store.record_nudge(actor, patient, &reasons).await {
            tracing::warn!(error = %e, "could not record a dependence nudge; not giving it");
            return None;
        }
        tracing::info!(patient = %patient, reasons = ?reasons, "dependence nudge given");
        Some(nudge)
    }

    /// The first due measure not yet offered in this conversation: (instrument, text).
    /// Never offered in a turn that carried risk (resources come first then).
    async fn measure_invitation(
        &self,
        actor: &Actor,
        patient: PatientId,
        history: &[Message],
    ) -> Option<(String, String)> {
        let care = self.care.as_ref()?;
        let due = match care
            .due_measures(actor, patient, time::OffsetDateTime::now_utc())
            .await
        {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "could not check due measures");
                return None;
            }
        };
        let offered: Vec<&str> = history
            .iter()
            .filter_map(|m| m.provenance.as_ref()?.get("measure_invitation")?.as_str())
            .collect();
        let next = due
            .iter()
            .find(|d| d.status.is_due() && !offered.contains(&d.instrument.as_str()))?;
        let name = care
            .registry()
            .get(&next.instrument)
            .map_or(next.instrument.clone(), |i| i.name.clone());
        Some((
            next.instrument.clone(),
            format!(
                "By the way, your care team has asked you to fill in a short questionnaire, the {name}. It takes a couple of minutes, and it helps you and your clinician see how things are changing. You can find it under Measures (or `tandem measure fill {}`).",
                next.instrument
            ),
        ))
    }

    fn consent_off_text(&self) -> String {
        let lines = &self
            .safety
            .protocol_data()
            .locale(&self.config.locale)
            .moderate_resources;
        format!(
            "The AI companion is switched off for your account because consent to AI processing has not been given (or was withdrawn). Your care team can still see your messages. You can turn it back on in My data.\n\n{lines}"
        )
    }

    #[allow(clippy::too_many_arguments)]
    async fn record_risk_event(
        &self,
        actor: &Actor,
        patient: PatientId,
        conversation: Option<ConversationId>,
        message: Option<MessageId>,
        source: &str,
        verdict: &Verdict,
        actions: &mut Vec<TurnAction>,
    ) -> Result<Option<RiskEventId>, EngineError> {
        if verdict.level < Level::Moderate {
            return Ok(None);
        }
        let id = self
            .store
            .record_risk_event(
                actor,
                NewRiskEvent {
                    patient,
                    conversation,
                    message,
                    source: source.into(),
                    level: verdict.level.to_string(),
                    categories: verdict.categories.iter().map(|c| c.to_string()).collect(),
                    evidence: serde_json::to_value(&verdict.evidence).unwrap_or_default(),
                },
            )
            .await?;
        let urgent = verdict.level >= Level::High;
        actions.push(if urgent {
            TurnAction::ClinicianAlert
        } else {
            TurnAction::ClinicianFlag
        });
        // No receivers is fine: the event is in the store and the caseload shows it.
        let _ = self.alerts.send(AlertEvent {
            risk_event: id,
            patient,
            level: verdict.level,
            categories: verdict.categories.clone(),
            urgent,
            escalated_to: Vec::new(),
        });
        tracing::info!(patient = %patient, risk_event = %id, level = %verdict.level, "risk event recorded");
        Ok(Some(id))
    }

    #[allow(clippy::too_many_arguments)]
    async fn generate_guarded(
        &self,
        plan: &tandem_store::CarePlan,
        summary: Option<String>,
        history: &[Message],
        text: &str,
        verdict: &Verdict,
        safety_instruction: Option<String>,
        actions: &mut Vec<TurnAction>,
        prov: &mut serde_json::Value,
        on_event: &mut (dyn FnMut(StreamEvent<'_>) + Send),
        cancel: &CancellationToken,
    ) -> Result<String, EngineError> {
        let info = self.model.describe();
        let view = CarePlanView::from_items(
            plan.items
                .iter()
                .filter(|i| i.status == "active")
                .map(|i| (i.kind, i.text.as_str())),
            plan.ai_preferences.as_ref(),
        );
        let psychoeducation = if view.psychoeducation_ids.is_empty() {
            self.library
                .search(text, self.config.psychoeducation_passages)
        } else {
            self.library.search_in(
                text,
                self.config.psychoeducation_passages,
                &view.psychoeducation_ids,
            )
        };
        let mut turns: Vec<Turn> = history
            .iter()
            .filter_map(|m| Turn::from_message(m.role, m.text.clone()))
            .collect();
        turns.push(Turn::user(text));
        let input = ContextInput {
            care_plan: view,
            summary,
            psychoeducation,
            turns,
            safety_instruction,
        };
        let budget = Budget::for_window(usize::try_from(info.context_window).unwrap_or(2048));
        let model = self.model.clone();
        let count = move |s: &str| model.count_tokens(s);
        let assembled = assemble(&input, &budget, &count);
        prov["generator"] = json!("model");
        prov["backend"] = json!(info.backend);
        prov["model"] = json!(info.model_id);
        prov["template"] = json!(assembled.template_version);
        prov["psychoeducation"] = json!(assembled.psychoeducation_ids);
        prov["prompt_tokens"] = json!(assembled.prompt_tokens);
        prov["dropped_turns"] = json!(assembled.dropped_turns);
        prov["summary_included"] = json!(assembled.summary_included);
        // Which parts of the clinician's care plan this reply was generated with.
        prov["care_plan"] = json!({
            "items": plan.items.iter().filter(|i| i.status == "active").map(|i| i.id.to_string()).collect::<Vec<_>>(),
            "ai_preferences": plan.ai_preferences.is_some(),
        });

        let mut messages = to_chat(&assembled.messages);
        let ctx = GuardContext {
            user_verdict: Some(verdict),
        };
        let mut blocked_rules: Vec<String> = Vec::new();
        let started = Instant::now();
        for attempt in 1..=2u32 {
            let streaming = attempt == 1;
            let result = self
                .generate_once(&messages, &ctx, streaming, on_event, cancel)
                .await;
            let (reply, completion_tokens) = match result {
                Ok(r) => r,
                Err(ModelError::Cancelled) if cancel.is_cancelled() => {
                    return Err(EngineError::Store(StoreError::Invalid(
                        "the patient disconnected before the reply finished".into(),
                    )));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "model unavailable; sending the can't-reply text");
                    actions.push(TurnAction::ModelUnavailable);
                    prov["generator"] = json!("fixed:model_unavailable");
                    prov["model_error"] = json!(e.to_string());
                    let t = self.unavailable_text();
                    on_event(StreamEvent::Replace(&t));
                    return Ok(t);
                }
            };
            prov["completion_tokens"] = json!(completion_tokens);
            prov["generation_ms"] = json!(started.elapsed().as_millis());
            let gv = self.safety.guard_output(&reply, &ctx);
            blocked_rules.extend(gv.rule_ids().iter().map(|s| s.to_string()));
            match self
                .safety
                .guard_decision(&gv, attempt, &self.config.locale)
            {
                GuardDecision::Pass => {
                    prov["guard"] = json!({"attempts": attempt, "blocked_rules": blocked_rules, "outcome": if attempt == 1 { "pass" } else { "retry_pass" }});
                    if !streaming {
                        on_event(StreamEvent::Replace(&reply));
                    }
                    let reply = if reply.trim().is_empty() {
                        let t = self.unavailable_text();
                        on_event(StreamEvent::Replace(&t));
                        t
                    } else {
                        reply
                    };
                    return Ok(reply);
                }
                GuardDecision::RetryWithInstruction(instr) => {
                    actions.push(TurnAction::GuardBlocked);
                    actions.push(TurnAction::GuardRetry);
                    tracing::info!(rules = ?gv.rule_ids(), "output guard blocked a reply; retrying");
                    if let Some(first) = messages.first_mut() {
                        first.content = format!("{instr}\n\n{}", first.content);
                    }
                }
                GuardDecision::Fallback(t) => {
                    if !actions.contains(&TurnAction::GuardBlocked) {
                        actions.push(TurnAction::GuardBlocked);
                    }
                    actions.push(TurnAction::GuardFallback);
                    tracing::info!(rules = ?gv.rule_ids(), "output guard blocked the retry; safe fallback");
                    prov["guard"] = json!({"attempts": attempt, "blocked_rules": blocked_rules, "outcome": "fallback"});
                    on_event(StreamEvent::Replace(&t));
                    return Ok(t);
                }
            }
        }
        // Unreachable in practice: the second attempt always passes or falls back.
        let t = self
            .safety
            .guard_data()
            .fallback_reply(&self.config.locale)
            .to_string();
        on_event(StreamEvent::Replace(&t));
        Ok(t)
    }

    /// One model call. The reply is cut into sentences as it arrives; a sentence that
    /// repeats an earlier one is dropped (small models loop), and each new sentence is
    /// released only if the output guard passes everything accepted so far. A block stops
    /// generation; the raw text is then returned so the caller's guard decision sees it.
    async fn generate_once(
        &self,
        messages: &[ChatMessage],
        ctx: &GuardContext<'_>,
        stream: bool,
        on_event: &mut (dyn FnMut(StreamEvent<'_>) + Send),
        cancel: &CancellationToken,
    ) -> Result<(String, usize), ModelError> {
        let mut req = ChatRequest::new(messages.to_vec());
        req.max_tokens = self.config.max_reply_tokens;
        req.temperature = self.config.temperature;
        req.seed = self.config.seed;
        let child = cancel.child_token();
        let mut acc = Accepted::new(self.safety.clone(), stream);
        let stopper = child.clone();
        let mut on_token = |piece: &str| {
            if acc.push(piece, ctx, &mut *on_event) {
                stopper.cancel();
            }
        };
        let fut = self.model.generate(&req, &child, &mut on_token);
        let result = match tokio::time::timeout(self.config.model_timeout, fut).await {
            Ok(r) => r,
            Err(_) => {
                child.cancel();
                Err(ModelError::Timeout {
                    after: self.config.model_timeout,
                    phase: "reply",
                })
            }
        };
        let (completion_tokens, cut_off) = match result {
            Ok(g) => (g.completion_tokens, g.finish_reason == FinishReason::Length),
            // We stopped it ourselves (a loop or a guard block): keep what we have.
            Err(ModelError::Cancelled) if !cancel.is_cancelled() => (0, false),
            Err(e) => return Err(e),
        };
        acc.finish(ctx, cut_off, &mut *on_event);
        Ok((acc.into_reply(), completion_tokens))
    }

    fn unavailable_text(&self) -> String {
        let resources = &self
            .safety
            .protocol_data()
            .locale(&self.config.locale)
            .moderate_resources;
        format!(
            "I'm sorry, I can't reply right now. Your message has been saved and your care team can see it. If you need to talk to someone now, please reach out:\n\n{resources}"
        )
    }

    fn needs_summary(&self, history: &[Message]) -> bool {
        // +2 for this turn's two messages.
        let n = history.len() + 2;
        n >= self.config.summary_every && n % self.config.summary_every < 2
    }

    /// Writes an AI summary of the conversation for the clinician, covering the messages
    /// since the previous summary. Returns `None` when there is nothing new to cover.
    pub async fn summarise(
        &self,
        actor: &Actor,
        conversation: ConversationId,
    ) -> Result<Option<NewSummary>, EngineError> {
        summary::summarise(self, actor, conversation).await
    }
}

/// The assembled prompt in the model crate's types.
pub(crate) fn to_chat(messages: &[tandem_companion::PromptMessage]) -> Vec<ChatMessage> {
    messages
        .iter()
        .map(|m| ChatMessage {
            role: match m.role {
                tandem_companion::Role::System => ModelRole::System,
                tandem_companion::Role::User => ModelRole::User,
                tandem_companion::Role::Assistant => ModelRole::Assistant,
            },
            content: m.content.clone(),
        })
        .collect()
}

/// Byte offset just past the first sentence end in `s` (". ", "! ", "? " or a newline).
fn first_sentence_end(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let next_is_space = bytes.get(i + 1).is_some_and(|n| *n == b' ' || *n == b'\n');
        if b == b'\n' || (matches!(b, b'.' | b'!' | b'?') && next_is_space) {
            return Some(i + 1);
        }
    }
    None
}

/// The reply as it is accepted, sentence by sentence.
struct Accepted {
    safety: Arc<SafetyEngine>,
    stream: bool,
    buf: String,
    consumed: usize,
    out: String,
    seen: std::collections::HashSet<String>,
    repeats: usize,
    blocked: bool,
}

impl Accepted {
    /// Stop after this many repeated sentences: the model is looping.
    const MAX_REPEATS: usize = 2;

    fn new(safety: Arc<SafetyEngine>, stream: bool) -> Accepted {
        Accepted {
            safety,
            stream,
            buf: String::new(),
            consumed: 0,
            out: String::new(),
            seen: std::collections::HashSet::new(),
            repeats: 0,
            blocked: false,
        }
    }

    /// Takes a piece; returns true when generation should stop.
    fn push(
        &mut self,
        piece: &str,
        ctx: &GuardContext<'_>,
        on_event: &mut (dyn FnMut(StreamEvent<'_>) + Send),
    ) -> bool {
        if self.blocked || self.repeats >= Self::MAX_REPEATS {
            return true;
        }
        self.buf.push_str(piece);
        while let Some(end) = self.buf.get(self.consumed..).and_then(first_sentence_end) {
            let upto = self.consumed + end;
            let sentence = self.buf.get(self.consumed..upto).unwrap_or("").to_string();
            self.consumed = upto;
            if self.accept(&sentence, ctx, on_event) {
                return true;
            }
        }
        false
    }

    fn accept(
        &mut self,
        sentence: &str,
        ctx: &GuardContext<'_>,
        on_event: &mut (dyn FnMut(StreamEvent<'_>) + Send),
    ) -> bool {
        let key: String = sentence
            .chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect();
        if key.is_empty() {
            return false;
        }
        if !self.seen.insert(key) {
            self.repeats += 1;
            return self.repeats >= Self::MAX_REPEATS;
        }
        let piece = if self.out.is_empty() {
            sentence.trim_start().to_string()
        } else if sentence.starts_with(char::is_whitespace) {
            sentence.to_string()
        } else {
            format!(" {sentence}")
        };
        let candidate = format!("{}{piece}", self.out);
        if !self.safety.guard_output(&candidate, ctx).allowed {
            self.blocked = true;
            return true;
        }
        self.out = candidate;
        if self.stream {
            on_event(StreamEvent::Delta(&piece));
        }
        false
    }

    /// Handles the text after the last sentence end.
    /// Releases what is left after the last sentence end. When the reply was `cut_off` at
    /// the token limit, that half sentence is dropped instead, unless it is all there is.
    fn finish(
        &mut self,
        ctx: &GuardContext<'_>,
        cut_off: bool,
        on_event: &mut (dyn FnMut(StreamEvent<'_>) + Send),
    ) {
        if self.blocked || self.repeats >= Self::MAX_REPEATS {
            return;
        }
        let tail = self.buf.get(self.consumed..).unwrap_or("").to_string();
        self.consumed = self.buf.len();
        if cut_off && !self.out.trim().is_empty() {
            return;
        }
        if !tail.trim().is_empty() {
            self.accept(&tail, ctx, on_event);
        }
    }

    /// The accepted reply; when the guard blocked, everything generated, so the caller's
    /// guard decision sees what was blocked.
    fn into_reply(self) -> String {
        if self.blocked {
            self.buf.trim().to_string()
        } else {
            self.out.trim_end().to_string()
        }
    }
}

/// The locale the fixed companion texts use for a BCP 47 tag.
pub fn companion_locale(tag: &str) -> Locale {
    Locale::from_tag(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentence_ends_are_found() {
        assert_eq!(first_sentence_end("Hi there. How. Are"), Some(9));
        assert_eq!(first_sentence_end("No end yet"), None);
        assert_eq!(first_sentence_end("3.5 is a number"), None);
        assert_eq!(first_sentence_end("One.\nTwo"), Some(4));
    }

    #[test]
    fn repeated_sentences_are_dropped_and_loops_stop() {
        let safety = Arc::new(SafetyEngine::load_default().unwrap());
        let ctx = GuardContext { user_verdict: None };
        let mut shown = String::new();
        let mut on = |e: StreamEvent<'_>| {
            if let StreamEvent::Delta(d) = e {
                shown.push_str(d);
            }
        };
        let mut acc = Accepted::new(safety, true);
        let mut stopped = false;
        for piece in [
            "I'm here. ",
            "How are you? ",
            "I'm here. ",
            "I'm  HERE! ",
            "Never shown.",
        ] {
            stopped = acc.push(piece, &ctx, &mut on);
            if stopped {
                break;
            }
        }
        assert!(stopped, "two repeats stop generation");
        acc.finish(&ctx, false, &mut on);
        assert_eq!(acc.into_reply(), "I'm here. How are you?");
        assert_eq!(shown.trim_end(), "I'm here. How are you?");
    }

    #[test]
    fn a_half_sentence_cut_off_at_the_token_limit_is_dropped_unless_it_is_all() {
        let safety = Arc::new(SafetyEngine::load_default().unwrap());
        let ctx = GuardContext { user_verdict: None };
        let run = |pieces: &[&str], cut_off: bool| {
            let mut shown = String::new();
            let mut on = |e: StreamEvent<'_>| {
                if let StreamEvent::Delta(d) = e {
                    shown.push_str(d);
                }
            };
            let mut acc = Accepted::new(safety.clone(), true);
            for p in pieces {
                acc.push(p, &ctx, &mut on);
            }
            acc.finish(&ctx, cut_off, &mut on);
            (acc.into_reply(), shown)
        };
        let pieces = [
            "Small steps count. ",
            "Remember, even small changes can mak",
        ];
        let (reply, shown) = run(&pieces, true);
        assert_eq!(reply, "Small steps count.");
        assert_eq!(shown.trim_end(), "Small steps count.");
        assert_eq!(
            run(&pieces, false).0,
            "Small steps count. Remember, even small changes can mak",
            "a reply that ended on its own keeps its last words"
        );
        assert_eq!(run(&["Only a half sente"], true).0, "Only a half sente");
    }
}
