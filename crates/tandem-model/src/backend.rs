//! The one streaming trait every model backend implements.

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::types::{
    estimate_tokens, BackendInfo, ChatMessage, ChatRequest, Generation, ModelError,
};

/// Per-message overhead of chat templates (role markers, separators), in tokens.
pub const TEMPLATE_TOKENS_PER_MESSAGE: usize = 8;

/// A model that turns a conversation into a streamed reply.
///
/// Implementations are shared between all conversations (`Arc<dyn ModelBackend>`), so
/// `generate` takes `&self` and must be safe to call concurrently.
#[async_trait]
pub trait ModelBackend: Send + Sync {
    /// What this backend is (for provenance and context budgeting).
    fn describe(&self) -> BackendInfo;

    /// Tokens `text` takes in this model. Exact where the backend has the tokenizer (embedded),
    /// a conservative estimate otherwise.
    fn count_tokens(&self, text: &str) -> usize {
        estimate_tokens(text)
    }

    /// Tokens a whole prompt takes, including the chat template's markers.
    fn count_prompt_tokens(&self, messages: &[ChatMessage]) -> usize {
        messages
            .iter()
            .map(|m| self.count_tokens(&m.content) + TEMPLATE_TOKENS_PER_MESSAGE)
            .sum::<usize>()
            + TEMPLATE_TOKENS_PER_MESSAGE
    }

    /// Generates a reply, calling `on_token` with each piece of text as it arrives (pieces are
    /// whole UTF-8 strings, never split characters, and never contain a stop string).
    ///
    /// Stops early with [`ModelError::Cancelled`] once `cancel` is cancelled, typically because
    /// the patient disconnected; dropping the returned future stops generation too.
    ///
    /// # Errors
    /// See [`ModelError`]; after an error, pieces already passed to `on_token` are a partial
    /// reply that the caller must discard or label.
    async fn generate(
        &self,
        req: &ChatRequest,
        cancel: &CancellationToken,
        on_token: &mut (dyn for<'t> FnMut(&'t str) + Send),
    ) -> Result<Generation, ModelError>;
}
