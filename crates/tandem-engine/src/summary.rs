//! Clinician-facing conversation summaries, written by the model and labelled as such.

use serde_json::json;
use tandem_companion::{label_summary, summary_request, Budget, Turn};
use tandem_domain::ConversationId;
use tandem_model::{CancellationToken, ChatMessage, ChatRequest, Role as ModelRole};
use tandem_store::{Actor, NewSummary, StoreError};

use crate::{Engine, EngineError};

pub(crate) async fn summarise(
    engine: &Engine,
    actor: &Actor,
    conversation: ConversationId,
) -> Result<Option<NewSummary>, EngineError> {
    let store = engine.store();
    let patient = store
        .conversation(conversation)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("conversation {conversation}")))?
        .patient;
    let messages = store.messages(actor, conversation).await?;
    let previous = store
        .summaries(actor, patient)
        .await?
        .into_iter()
        .rfind(|s| s.conversation == conversation);
    let start = match &previous {
        Some(p) => messages
            .iter()
            .position(|m| m.id == p.last_message)
            .map_or(0, |i| i + 1),
        None => 0,
    };
    let pending: Vec<_> = messages.get(start..).unwrap_or(&[]).to_vec();
    let turns: Vec<Turn> = pending
        .iter()
        .filter_map(|m| Turn::from_message(m.role, m.text.clone()))
        .collect();
    if turns.is_empty() {
        return Ok(None);
    }
    let info = engine.model().describe();
    let budget = Budget::for_window(usize::try_from(info.context_window).unwrap_or(2048));
    let model = engine.model().clone();
    let count = move |s: &str| model.count_tokens(s);
    let req = summary_request(
        previous.as_ref().map(|p| p.text.as_str()),
        &turns,
        &budget,
        &count,
    );
    let covered = req.covered_turns.clamp(1, pending.len());
    let mut chat = ChatRequest::new(
        req.messages
            .iter()
            .map(|m| ChatMessage {
                role: match m.role {
                    tandem_companion::Role::System => ModelRole::System,
                    tandem_companion::Role::User => ModelRole::User,
                    tandem_companion::Role::Assistant => ModelRole::Assistant,
                },
                content: m.content.clone(),
            })
            .collect(),
    );
    chat.max_tokens = 200;
    chat.temperature = 0.2;
    chat.seed = engine.config().seed;
    let cancel = CancellationToken::new();
    let generation = tokio::time::timeout(
        engine.config().model_timeout,
        engine
            .model()
            .generate(&chat, &cancel, &mut |_piece: &str| {}),
    )
    .await
    .map_err(|_| StoreError::Invalid("the model did not finish the summary in time".into()))?
    .map_err(|e| StoreError::Invalid(format!("the model could not write a summary: {e}")))?;
    let text = generation.text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let (Some(first), Some(last)) = (pending.first(), pending.get(covered - 1)) else {
        return Ok(None);
    };
    let new = NewSummary {
        conversation,
        first_message: first.id,
        last_message: last.id,
        text: label_summary(text),
        provenance: Some(json!({
            "generator": "model",
            "backend": info.backend,
            "model": info.model_id,
            "template": req.template_version,
            "covers_messages": covered,
        })),
    };
    store.add_summary(actor, new.clone()).await?;
    Ok(Some(new))
}
