//! The embedded backend on the REAL default model (SmolLM2-135M-Instruct Q4_1), pulled on
//! first use. Replies are not checked for wording, only for the mechanics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tandem_model::{
    CancellationToken, ChatMessage, ChatRequest, EmbeddedBackend, EmbeddedConfig, FinishReason,
    ModelBackend, ModelError, PromptFormat, TemplateSource,
};

async fn backend() -> EmbeddedBackend {
    static BACKEND: tokio::sync::OnceCell<EmbeddedBackend> = tokio::sync::OnceCell::const_new();
    BACKEND
        .get_or_init(|| async {
            let path = common::model_path().await;
            EmbeddedBackend::load(EmbeddedConfig::new(path))
                .await
                .unwrap()
        })
        .await
        .clone()
}

fn chat(user: &str) -> ChatRequest {
    let mut req = ChatRequest::new(vec![
        ChatMessage::system("You are a warm, supportive companion. Reply in two sentences."),
        ChatMessage::user(user),
    ]);
    req.temperature = 0.0;
    req.max_tokens = 40;
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_a_reply_with_the_gguf_chat_template() {
    let b = backend().await;
    let info = b.describe();
    assert_eq!(info.backend, "embedded");
    assert_eq!(info.model_id, "SmolLM2-135M-Instruct.Q4_1");
    assert!(info.context_window >= 2048, "{info:?}");
    assert_eq!(b.template_source(), TemplateSource::Gguf);

    let req = chat("I had a stressful day at work.");
    let prompt = b.render_prompt(&req.messages).unwrap();
    assert!(
        prompt.contains("<|im_start|>system\n"),
        "ChatML from the GGUF"
    );
    assert!(prompt.ends_with("<|im_start|>assistant\n"));

    let mut pieces: Vec<String> = Vec::new();
    let g = b
        .generate(&req, &CancellationToken::new(), &mut |p| {
            pieces.push(p.to_owned())
        })
        .await
        .unwrap();
    assert!(!g.text.trim().is_empty());
    assert!(pieces.len() > 3, "streamed in pieces: {}", pieces.len());
    assert_eq!(pieces.concat(), g.text);
    assert!(!g.text.contains("<|im_end|>") && !g.text.contains("<|im_start|>"));
    assert!(g.completion_tokens > 0 && g.completion_tokens <= 40);
    assert!(g.prompt_tokens > 10);
    assert!(g.time_to_first_token.unwrap() <= g.elapsed);
    assert!(matches!(
        g.finish_reason,
        FinishReason::Stop | FinishReason::Length
    ));

    // The prompt count the engine budgets with is the exact tokenised prompt.
    assert_eq!(b.count_prompt_tokens(&req.messages), g.prompt_tokens);
    assert!(b.count_tokens("Hello there, how are you?") >= 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_stops_generation() {
    let b = backend().await;
    let mut req = chat("Tell me a long story about a lighthouse keeper.");
    req.max_tokens = 200;
    let cancel = CancellationToken::new();
    let count = Arc::new(AtomicUsize::new(0));
    let (c, k) = (cancel.clone(), count.clone());
    let err = b
        .generate(&req, &cancel, &mut move |_| {
            if k.fetch_add(1, Ordering::SeqCst) + 1 == 3 {
                c.cancel();
            }
        })
        .await
        .unwrap_err();
    assert!(matches!(err, ModelError::Cancelled), "{err}");
    assert_eq!(count.load(Ordering::SeqCst), 3, "no piece after cancel");

    // Dropping the future (the patient's request went away) also frees the slot.
    let dropped = tokio::time::timeout(
        Duration::from_millis(50),
        b.generate(&req, &CancellationToken::new(), &mut |_| {}),
    )
    .await;
    assert!(dropped.is_err(), "timed out, so the future was dropped");
    let g = b
        .generate(&chat("Hi"), &CancellationToken::new(), &mut |_| {})
        .await
        .unwrap();
    assert!(!g.text.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_generations_share_one_model() {
    let b = backend().await;
    let req = chat("How can I sleep better?");
    let alone = b
        .generate(&req, &CancellationToken::new(), &mut |_| {})
        .await
        .unwrap();

    let (b1, b2) = (b.clone(), b.clone());
    let (r1, r2) = (req.clone(), chat("I feel anxious before exams."));
    let t1 = tokio::spawn(async move {
        let mut n = 0;
        let g = b1
            .generate(&r1, &CancellationToken::new(), &mut |_| n += 1)
            .await;
        (g, n)
    });
    let t2 = tokio::spawn(async move {
        b2.generate(&r2, &CancellationToken::new(), &mut |_| {})
            .await
    });
    let ((g1, n1), g2) = (t1.await.unwrap(), t2.await.unwrap());
    let (g1, g2) = (g1.unwrap(), g2.unwrap());
    assert!(n1 > 0 && !g2.text.is_empty());
    // Greedy decoding in a context of its own: the same reply as when run alone, so no
    // conversation's state leaks into another's.
    assert_eq!(g1.text, alone.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_fallback_format_and_context_limits() {
    let path = common::model_path().await;
    let mut config = EmbeddedConfig::new(&path);
    config.chat_format = Some(PromptFormat::ChatMl);
    config.context_window = Some(128);
    config.threads = Some(1);
    let b = EmbeddedBackend::load(config).await.unwrap();
    assert_eq!(
        b.template_source(),
        TemplateSource::Fallback(PromptFormat::ChatMl)
    );
    assert_eq!(b.describe().context_window, 128);
    let g = b
        .generate(&chat("Hello!"), &CancellationToken::new(), &mut |_| {})
        .await
        .unwrap();
    assert!(!g.text.trim().is_empty());

    let long = chat(&"I keep worrying about everything. ".repeat(40));
    let err = b
        .generate(&long, &CancellationToken::new(), &mut |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ModelError::ContextTooLong {
                context_window: 128,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn missing_model_file_says_what_to_do() {
    let err = EmbeddedBackend::load(EmbeddedConfig::new("/nonexistent/model.gguf"))
        .await
        .err()
        .unwrap();
    assert!(matches!(err, ModelError::Load(_)));
    assert!(err.to_string().contains("tandem model pull"), "{err}");
}

#[tokio::test]
async fn a_file_that_is_not_gguf_is_a_load_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.gguf");
    std::fs::write(&path, b"this is not a GGUF file at all").unwrap();
    let err = EmbeddedBackend::load(EmbeddedConfig::new(&path))
        .await
        .err()
        .unwrap();
    assert!(matches!(err, ModelError::Load(_)), "{err}");
    assert!(err.to_string().contains("GGUF"), "{err}");
}
