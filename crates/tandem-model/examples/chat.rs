//! A one-shot streamed reply, for trying a backend by hand:
//!
//! ```text
//! cargo run -p tandem-model --release --example chat -- "I can't sleep before exams."
//! TANDEM_OPENAI_URL=http://127.0.0.1:11434/v1 TANDEM_OPENAI_MODEL=qwen2.5:7b-instruct \
//!   cargo run -p tandem-model --release --example chat -- "Hello"
//! ```
//! Without `TANDEM_OPENAI_URL` it runs the embedded backend on `TANDEM_MODEL_PATH`, else the
//! default model in `<repo>/target/models` (pulled if absent).

use std::io::Write;
use std::sync::Arc;

use tandem_model::{
    pull_default_model, CancellationToken, ChatMessage, ChatRequest, EmbeddedBackend,
    EmbeddedConfig, ModelBackend, OpenAiBackend, OpenAiConfig,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let text = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    let text = if text.is_empty() {
        "Hello! How are you?".to_owned()
    } else {
        text
    };
    let backend: Arc<dyn ModelBackend> = if let Ok(url) = std::env::var("TANDEM_OPENAI_URL") {
        let model = std::env::var("TANDEM_OPENAI_MODEL").unwrap_or_else(|_| "default".into());
        Arc::new(OpenAiBackend::new(OpenAiConfig::new(url, model))?)
    } else {
        let path = match std::env::var_os("TANDEM_MODEL_PATH") {
            Some(p) => p.into(),
            None => {
                let dir =
                    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/models");
                pull_default_model(&dir, &mut |done, total| {
                    eprint!("\rpulling model: {} / {} MB", done >> 20, total >> 20);
                })
                .await?
            }
        };
        Arc::new(EmbeddedBackend::load(EmbeddedConfig::new(path)).await?)
    };
    let req = ChatRequest::new(vec![
        ChatMessage::system(
            "You are Tandem, a warm companion that supports people between therapy sessions. \
             Reply briefly and kindly.",
        ),
        ChatMessage::user(text),
    ]);
    let g = backend
        .generate(&req, &CancellationToken::new(), &mut |piece| {
            print!("{piece}");
            let _ = std::io::stdout().flush();
        })
        .await?;
    println!();
    eprintln!("{:?} {:?}", backend.describe(), g);
    Ok(())
}
