#![doc = include_str!("../README.md")]

mod backend;
mod config;
pub mod embedded;
pub mod fake;
pub mod openai;
pub mod pull;
pub mod template;
pub mod text;
mod types;

pub use backend::{ModelBackend, TEMPLATE_TOKENS_PER_MESSAGE};
pub use config::{BackendKind, ModelConfig};
pub use embedded::{EmbeddedBackend, EmbeddedConfig, TemplateSource};
pub use openai::{CircuitBreaker, OpenAiBackend, OpenAiConfig};
pub use pull::{
    pull_default_model, pull_default_model_with, resolve_model_path, verify_default_model,
    PullError, PullOptions, PullRoute, Pulled, DEFAULT_MODEL_FILE, DEFAULT_MODEL_SHA256,
    DEFAULT_MODEL_SIZE,
};
pub use template::PromptFormat;
pub use tokio_util::sync::CancellationToken;
pub use types::{
    estimate_tokens, BackendInfo, ChatMessage, ChatRequest, FinishReason, Generation, ModelError,
    Role,
};
