//! The `[model]` config section and building the configured backend from it.

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use crate::backend::ModelBackend;
use crate::embedded::{EmbeddedBackend, EmbeddedConfig};
use crate::openai::{OpenAiBackend, OpenAiConfig};
use crate::types::ModelError;

/// Which backend serves the companion.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// llama.cpp in-process (the default).
    #[default]
    Embedded,
    /// An OpenAI-compatible server.
    OpenAi,
}

/// The `[model]` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// `"embedded"` (default) or `"openai"`.
    #[serde(default)]
    pub backend: BackendKind,
    /// `[model.embedded]`.
    #[serde(default)]
    pub embedded: EmbeddedConfig,
    /// `[model.openai]`; required when `backend = "openai"`.
    #[serde(default)]
    pub openai: Option<OpenAiConfig>,
}

impl ModelConfig {
    /// Builds the configured backend. The embedded model must already be on disk (the CLI
    /// pulls it first with [`crate::pull_default_model`] when it is the default and absent).
    ///
    /// # Errors
    /// [`ModelError::Load`] or [`ModelError::InvalidRequest`] for a missing model or a bad
    /// configuration.
    pub async fn build(&self, data_dir: &Path) -> Result<Arc<dyn ModelBackend>, ModelError> {
        match self.backend {
            BackendKind::Embedded => {
                let cfg = self.embedded.clone().with_default_path(data_dir);
                Ok(Arc::new(EmbeddedBackend::load(cfg).await?))
            }
            BackendKind::OpenAi => {
                let cfg = self.openai.clone().ok_or_else(|| {
                    ModelError::InvalidRequest(
                        "model.backend is \"openai\" but there is no [model.openai] section with base_url and model".into(),
                    )
                })?;
                Ok(Arc::new(OpenAiBackend::new(cfg)?))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_backends() {
        let c: ModelConfig = serde_json::from_value(serde_json::json!({
            "backend": "openai",
            "openai": {"base_url": "http://127.0.0.1:11434/v1", "model": "qwen2.5:7b-instruct"},
            "embedded": {"threads": 2, "chat_format": "chatml"}
        }))
        .unwrap();
        assert_eq!(c.backend, BackendKind::OpenAi);
        assert_eq!(c.embedded.threads, Some(2));
        assert_eq!(
            c.embedded.chat_format,
            Some(crate::template::PromptFormat::ChatMl)
        );
        let d: ModelConfig = serde_json::from_value(serde_json::json!({})).unwrap();
        assert_eq!(d.backend, BackendKind::Embedded);
        assert!(d.embedded.model_path.is_none());
        let cfg = d.embedded.with_default_path(Path::new("/data"));
        assert_eq!(
            cfg.model_path.unwrap(),
            Path::new("/data/models/SmolLM2-135M-Instruct.Q4_1.gguf")
        );
    }

    #[tokio::test]
    async fn openai_without_its_section_is_a_clear_error() {
        let c = ModelConfig {
            backend: BackendKind::OpenAi,
            ..ModelConfig::default()
        };
        let err = c.build(Path::new("/data")).await.err().unwrap();
        assert!(err.to_string().contains("[model.openai]"), "{err}");
    }

    #[tokio::test]
    async fn builds_an_openai_backend() {
        let c = ModelConfig {
            backend: BackendKind::OpenAi,
            openai: Some(OpenAiConfig::new("http://127.0.0.1:1/v1", "m")),
            ..ModelConfig::default()
        };
        let b = c.build(Path::new("/data")).await.unwrap();
        assert_eq!(b.describe().backend, "openai");
    }
}
