//! Request, reply and error types shared by every backend.
//!
//! These types carry patient text (`ChatMessage::content`, `Generation::text`). Their `Debug`
//! output therefore never prints the text itself, only its length, so that a stray
//! `tracing::debug!(?req)` cannot leak a message into the logs.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions to the model (system prompt, care plan, summary).
    System,
    /// The patient.
    User,
    /// The companion (the model).
    Assistant,
}

impl Role {
    /// The role name used by chat templates and the OpenAI API.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::User => "user",
            Self::Assistant => "assistant",
        }
    }
}

/// One message of a conversation.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who said it.
    pub role: Role,
    /// What was said. Sensitive: never log it.
    pub content: String,
}

impl ChatMessage {
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: Role::System,
            content: content.into(),
        }
    }
    /// A patient message.
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
        }
    }
    /// A companion message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

impl fmt::Debug for ChatMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatMessage")
            .field("role", &self.role)
            .field("content_len", &self.content.len())
            .finish()
    }
}

/// What to generate.
///
/// Build one with [`ChatRequest::new`] and adjust the public fields.
#[derive(Clone, PartialEq)]
pub struct ChatRequest {
    /// The conversation so far, oldest first; usually a system message, then turns.
    pub messages: Vec<ChatMessage>,
    /// Upper bound on generated tokens.
    pub max_tokens: u32,
    /// Sampling temperature; `0.0` means greedy (deterministic) decoding.
    pub temperature: f32,
    /// Nucleus sampling: keep the smallest token set whose probability reaches `top_p`.
    pub top_p: f32,
    /// Stop generating when any of these strings appears; it is not included in the reply.
    pub stop: Vec<String>,
    /// Seed for sampling, for reproducible replies. `None`: a backend default.
    pub seed: Option<u32>,
}

impl ChatRequest {
    /// Default reply bound: a few sentences, which is what the companion should say per turn.
    pub const DEFAULT_MAX_TOKENS: u32 = 256;

    /// A request with the default sampling settings (temperature 0.7, top-p 0.9).
    #[must_use]
    pub fn new(messages: Vec<ChatMessage>) -> Self {
        Self {
            messages,
            max_tokens: Self::DEFAULT_MAX_TOKENS,
            temperature: 0.7,
            top_p: 0.9,
            stop: Vec::new(),
            seed: None,
        }
    }

    /// Checks what every backend needs; a failure is a bug in the caller.
    ///
    /// # Errors
    /// [`ModelError::InvalidRequest`] when there are no messages, `max_tokens` is 0, or the
    /// sampling settings are out of range.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.messages.is_empty() {
            return Err(ModelError::InvalidRequest(
                "the request has no messages".into(),
            ));
        }
        if self.max_tokens == 0 {
            return Err(ModelError::InvalidRequest(
                "max_tokens must be at least 1".into(),
            ));
        }
        if !(0.0..=2.0).contains(&self.temperature) {
            return Err(ModelError::InvalidRequest(
                "temperature must be between 0.0 and 2.0".into(),
            ));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(ModelError::InvalidRequest(
                "top_p must be in (0.0, 1.0]".into(),
            ));
        }
        if self.stop.iter().any(String::is_empty) {
            return Err(ModelError::InvalidRequest(
                "stop strings must not be empty".into(),
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for ChatRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatRequest")
            .field("messages", &self.messages)
            .field("max_tokens", &self.max_tokens)
            .field("temperature", &self.temperature)
            .field("top_p", &self.top_p)
            .field("stop_count", &self.stop.len())
            .field("seed", &self.seed)
            .finish()
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model ended its turn (end-of-generation token, or the server said `stop`).
    Stop,
    /// One of the request's stop strings appeared.
    StopSequence,
    /// `max_tokens` was reached (or the context window was full).
    Length,
}

/// A finished reply.
#[derive(Clone, PartialEq)]
pub struct Generation {
    /// The whole reply (the concatenation of every streamed piece). Sensitive: never log it.
    pub text: String,
    /// Why it ended.
    pub finish_reason: FinishReason,
    /// Prompt size in tokens (exact for the embedded backend, estimated for servers that do
    /// not report usage).
    pub prompt_tokens: usize,
    /// Tokens generated (for servers: streamed chunks with content).
    pub completion_tokens: usize,
    /// From the call to the first streamed piece.
    pub time_to_first_token: Option<Duration>,
    /// From the call to the end.
    pub elapsed: Duration,
}

impl fmt::Debug for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Generation")
            .field("text_len", &self.text.len())
            .field("finish_reason", &self.finish_reason)
            .field("prompt_tokens", &self.prompt_tokens)
            .field("completion_tokens", &self.completion_tokens)
            .field("time_to_first_token", &self.time_to_first_token)
            .field("elapsed", &self.elapsed)
            .finish()
    }
}

/// What a backend is, for provenance records and the admin page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendInfo {
    /// `"embedded"` or `"openai"`.
    pub backend: &'static str,
    /// The model: the GGUF file name for the embedded backend, the server's model name otherwise.
    pub model_id: String,
    /// Context window in tokens (prompt plus reply) that callers must fit into.
    pub context_window: u32,
}

/// Why a generation failed. Messages say what to do and contain no message text: a model
/// server's own error message is quoted (at most 200 characters) only when it does not quote
/// the conversation (see the OpenAI backend).
///
/// The conversation engine treats [`ModelError::is_unavailable`] errors as "the model can't
/// reply right now" (a kind fallback with crisis resources), and never lets any of them delay
/// a crisis response.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The backend cannot be reached or refuses work: connection refused, the circuit breaker
    /// is open, the server is overloaded.
    #[error("model backend unavailable: {0}")]
    Unavailable(String),
    /// No reply (or no next token) within the configured time.
    #[error("model backend timed out after {after:?} ({phase}); the server may be overloaded: raise the timeout or use a smaller model")]
    Timeout {
        /// The limit that was hit.
        after: Duration,
        /// Which limit: `connect`, `first token` or `overall`.
        phase: &'static str,
    },
    /// The caller cancelled (the patient disconnected).
    #[error("generation cancelled")]
    Cancelled,
    /// The server answered, but not with a usable Chat Completions stream.
    #[error("model server sent a bad response: {0}")]
    BadResponse(String),
    /// The embedded model could not be loaded.
    #[error("could not load the model: {0}")]
    Load(String),
    /// The prompt does not leave room for a reply in the context window.
    #[error("the prompt ({prompt_tokens} tokens) leaves no room for a reply in the {context_window}-token context window; drop older turns or summarise them")]
    ContextTooLong {
        /// Prompt size in tokens.
        prompt_tokens: usize,
        /// The model's window.
        context_window: u32,
    },
    /// The request itself is wrong (a caller bug).
    #[error("invalid model request: {0}")]
    InvalidRequest(String),
    /// llama.cpp failed while generating.
    #[error("the embedded model failed while generating: {0}")]
    Inference(String),
}

impl ModelError {
    /// True for failures of the backend rather than of the request: the caller should reply
    /// with "I can't reply right now" and may try again later.
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Unavailable(_)
                | Self::Timeout { .. }
                | Self::BadResponse(_)
                | Self::Load(_)
                | Self::Inference(_)
        )
    }

    /// A short, fixed name of the error kind, for metrics and log fields.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "unavailable",
            Self::Timeout { .. } => "timeout",
            Self::Cancelled => "cancelled",
            Self::BadResponse(_) => "bad_response",
            Self::Load(_) => "load",
            Self::ContextTooLong { .. } => "context_too_long",
            Self::InvalidRequest(_) => "invalid_request",
            Self::Inference(_) => "inference",
        }
    }
}

/// A conservative token estimate for text whose tokenizer we do not have (about 3 characters
/// per token; real English text is closer to 4, so this over-counts, which is the safe side
/// when fitting a prompt into a window).
#[must_use]
pub fn estimate_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(3)
}
