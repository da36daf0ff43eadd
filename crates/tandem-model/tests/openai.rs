//! The OpenAI-compatible backend against a real HTTP server on loopback that speaks the Chat
//! Completions streaming protocol (server-sent events), with scripted failures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use futures_util::stream::{self, StreamExt};
use secrecy::SecretString;
use serde_json::{json, Value};
use tandem_model::{
    CancellationToken, ChatMessage, ChatRequest, FinishReason, ModelBackend, ModelError,
    OpenAiBackend, OpenAiConfig,
};

/// What the test server does for the n-th request (0-based).
type Script = Arc<dyn Fn(usize, Value, HeaderMap) -> Response + Send + Sync>;

struct Server {
    base_url: String,
    hits: Arc<AtomicUsize>,
}

/// Starts a server on 127.0.0.1:0. The listener is bound before this returns, so the first
/// request cannot race the start-up.
async fn serve(script: Script) -> Server {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let app = Router::new().route(
        "/v1/chat/completions",
        post(move |headers: HeaderMap, body: Bytes| {
            let n = h.fetch_add(1, Ordering::SeqCst);
            let script = script.clone();
            async move {
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                script(n, v, headers)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server {
        base_url: format!("http://{addr}/v1"),
        hits,
    }
}

fn chunk(content: &str) -> String {
    let v = json!({"id": "c1", "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}]});
    format!("data: {v}\n\n")
}

fn finish(reason: &str) -> String {
    let v = json!({"id": "c1", "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {}, "finish_reason": reason}]});
    format!("data: {v}\n\n")
}

fn sse(body: impl Into<Body>) -> Response {
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(body.into())
        .unwrap()
}

/// A normal streamed reply: a role-only chunk, content chunks, the finish chunk, [DONE].
fn reply(pieces: &[&str]) -> String {
    let role =
        json!({"choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": null}]});
    let mut s = format!("data: {role}\n\n");
    for p in pieces {
        s.push_str(&chunk(p));
    }
    s.push_str(&finish("stop"));
    s.push_str("data: [DONE]\n\n");
    s
}

/// An SSE body that sends `events` with `gap` between them, and sets `dropped` when the
/// client goes away before the end.
fn slow_sse(events: Vec<String>, gap: Duration, dropped: Arc<AtomicBool>) -> Response {
    struct OnDrop(Arc<AtomicBool>);
    impl Drop for OnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let guard = OnDrop(dropped);
    let s = stream::iter(events).then(move |e| {
        let _keep = &guard;
        async move {
            tokio::time::sleep(gap).await;
            Ok::<_, Infallible>(Bytes::from(e))
        }
    });
    sse(Body::from_stream(s))
}

fn config(base_url: &str) -> OpenAiConfig {
    let mut c = OpenAiConfig::new(base_url, "test-model");
    c.retry_backoff_ms = 10;
    c.token_timeout_ms = 2_000;
    c.request_timeout_ms = 10_000;
    c
}

fn req() -> ChatRequest {
    ChatRequest::new(vec![
        ChatMessage::system("Be kind."),
        ChatMessage::user("Hello"),
    ])
}

async fn run(
    b: &OpenAiBackend,
    r: &ChatRequest,
) -> (Result<tandem_model::Generation, ModelError>, Vec<String>) {
    let mut pieces = Vec::new();
    let g = b
        .generate(r, &CancellationToken::new(), &mut |p| {
            pieces.push(p.to_owned())
        })
        .await;
    (g, pieces)
}

#[tokio::test]
async fn streams_pieces_and_sends_the_chat_request() {
    let seen: Arc<Mutex<Option<(Value, HeaderMap)>>> = Arc::default();
    let s2 = seen.clone();
    let server = serve(Arc::new(move |_, body, headers| {
        *s2.lock().unwrap() = Some((body, headers));
        sse(reply(&["Hello", ", ", "world", "!"]))
    }))
    .await;
    let mut c = config(&server.base_url);
    c.api_key = Some(SecretString::from("sk-test"));
    let b = OpenAiBackend::new(c).unwrap();
    let mut r = req();
    r.max_tokens = 33;
    r.seed = Some(7);
    let (g, pieces) = run(&b, &r).await;
    let g = g.unwrap();
    assert_eq!(pieces, ["Hello", ", ", "world", "!"]);
    assert_eq!(g.text, "Hello, world!");
    assert_eq!(g.finish_reason, FinishReason::Stop);
    assert_eq!(g.completion_tokens, 4);
    assert!(
        g.prompt_tokens > 0,
        "estimated when the server sends no usage"
    );
    assert!(g.time_to_first_token.is_some());

    let (body, headers) = seen.lock().unwrap().clone().unwrap();
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["stream"], true);
    assert_eq!(body["max_tokens"], 33);
    assert_eq!(body["seed"], 7);
    assert_eq!(
        body["messages"][0],
        json!({"role": "system", "content": "Be kind."})
    );
    assert_eq!(
        body["messages"][1],
        json!({"role": "user", "content": "Hello"})
    );
    assert_eq!(headers["authorization"], "Bearer sk-test");
    assert_eq!(b.describe().backend, "openai");
}

#[tokio::test]
async fn events_split_anywhere_even_inside_a_character_are_reassembled() {
    let body = reply(&["Ça va ", "😊 ", "très bien"]).replace("\n\n", "\r\n\r\n");
    let server = serve(Arc::new(move |_, _, _| {
        // 3-byte chunks: splits lines, JSON and multi-byte characters.
        let parts: Vec<Result<Bytes, Infallible>> = body
            .as_bytes()
            .chunks(3)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        sse(Body::from_stream(stream::iter(parts)))
    }))
    .await;
    let b = OpenAiBackend::new(config(&server.base_url)).unwrap();
    let (g, pieces) = run(&b, &req()).await;
    assert_eq!(g.unwrap().text, "Ça va 😊 très bien");
    assert_eq!(pieces.len(), 3);
}

#[tokio::test]
async fn stop_strings_are_enforced_client_side_too() {
    let server = serve(Arc::new(|_, _, _| sse(reply(&["abc ", "EN", "D def"])))).await;
    let b = OpenAiBackend::new(config(&server.base_url)).unwrap();
    let mut r = req();
    r.stop = vec!["END".into()];
    let (g, pieces) = run(&b, &r).await;
    let g = g.unwrap();
    assert_eq!(g.text, "abc ");
    assert_eq!(pieces.concat(), "abc ");
    assert_eq!(g.finish_reason, FinishReason::StopSequence);
}

#[tokio::test]
async fn retries_503_with_backoff_then_succeeds() {
    let server = serve(Arc::new(|n, _, _| {
        if n < 2 {
            Response::builder()
                .status(StatusCode::SERVICE_UNAVAILABLE)
                .body(Body::from(r#"{"error":{"message":"loading model"}}"#))
                .unwrap()
        } else {
            sse(reply(&["ok"]))
        }
    }))
    .await;
    let b = OpenAiBackend::new(config(&server.base_url)).unwrap();
    let started = Instant::now();
    let (g, _) = run(&b, &req()).await;
    assert_eq!(g.unwrap().text, "ok");
    assert_eq!(server.hits.load(Ordering::SeqCst), 3);
    assert!(
        started.elapsed() >= Duration::from_millis(30),
        "10 ms then 20 ms back-off"
    );
}

#[tokio::test]
async fn retries_are_bounded() {
    let server = serve(Arc::new(|_, _, _| {
        Response::builder()
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .body(Body::from(r#"{"error":{"message":"overloaded"}}"#))
            .unwrap()
    }))
    .await;
    let mut c = config(&server.base_url);
    c.max_retries = 1;
    let b = OpenAiBackend::new(c).unwrap();
    let (g, _) = run(&b, &req()).await;
    let err = g.unwrap_err();
    assert!(matches!(err, ModelError::Unavailable(_)), "{err}");
    assert!(
        err.to_string().contains("503") && err.to_string().contains("overloaded"),
        "{err}"
    );
    assert!(err.is_unavailable());
    assert_eq!(server.hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_slow_first_token_times_out() {
    let server = serve(Arc::new(|_, _, _| {
        slow_sse(
            vec![reply(&["late"])],
            Duration::from_secs(5),
            Arc::default(),
        )
    }))
    .await;
    let mut c = config(&server.base_url);
    c.token_timeout_ms = 200;
    c.max_retries = 0;
    let b = OpenAiBackend::new(c).unwrap();
    let started = Instant::now();
    let (g, _) = run(&b, &req()).await;
    let err = g.unwrap_err();
    assert!(
        matches!(
            err,
            ModelError::Timeout {
                phase: "first token",
                ..
            }
        ),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_stall_mid_stream_times_out_without_retrying() {
    let server = serve(Arc::new(|_, _, _| {
        slow_sse(
            vec![chunk("Hel"), chunk("lo")],
            Duration::from_millis(50),
            Arc::default(),
        )
        .map(|b| {
            // After the two chunks, hang: chain a never-ending stream.
            let tail = stream::pending::<Result<Bytes, Infallible>>();
            Body::from_stream(
                b.into_data_stream()
                    .map(|r| r.map_err(|_| unreachable!()))
                    .chain(tail),
            )
        })
    }))
    .await;
    let mut c = config(&server.base_url);
    c.token_timeout_ms = 300;
    let b = OpenAiBackend::new(c).unwrap();
    let (g, pieces) = run(&b, &req()).await;
    let err = g.unwrap_err();
    assert!(
        matches!(
            err,
            ModelError::Timeout {
                phase: "between tokens",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(pieces, ["Hel", "lo"]);
    assert_eq!(
        server.hits.load(Ordering::SeqCst),
        1,
        "no retry once the patient saw text"
    );
}

#[tokio::test]
async fn the_overall_timeout_bounds_the_whole_call() {
    // A token every 100 ms forever: never stalls, never ends.
    let server = serve(Arc::new(|_, _, _| {
        let s = stream::repeat_with(|| chunk("x")).then(|e| async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok::<_, Infallible>(Bytes::from(e))
        });
        sse(Body::from_stream(s))
    }))
    .await;
    let mut c = config(&server.base_url);
    c.request_timeout_ms = 600;
    let b = OpenAiBackend::new(c).unwrap();
    let (g, pieces) = run(&b, &req()).await;
    let err = g.unwrap_err();
    assert!(
        matches!(
            err,
            ModelError::Timeout {
                phase: "overall",
                ..
            }
        ),
        "{err}"
    );
    assert!((3..=7).contains(&pieces.len()), "{}", pieces.len());
}

#[tokio::test]
async fn cancelling_mid_stream_stops_and_closes_the_connection() {
    let dropped = Arc::new(AtomicBool::new(false));
    let d2 = dropped.clone();
    let server = serve(Arc::new(move |_, _, _| {
        let events = (0..200).map(|i| chunk(&format!("t{i} "))).collect();
        slow_sse(events, Duration::from_millis(20), d2.clone())
    }))
    .await;
    let b = OpenAiBackend::new(config(&server.base_url)).unwrap();
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    let mut n = 0;
    let started = Instant::now();
    let err = b
        .generate(&req(), &cancel, &mut |_| {
            n += 1;
            if n == 3 {
                c2.cancel();
            }
        })
        .await
        .unwrap_err();
    assert!(matches!(err, ModelError::Cancelled), "{err}");
    assert_eq!(n, 3);
    assert!(started.elapsed() < Duration::from_secs(2));
    // The server notices the client went away (poll; no fixed sleep).
    let deadline = Instant::now() + Duration::from_secs(5);
    while !dropped.load(Ordering::SeqCst) {
        assert!(
            Instant::now() < deadline,
            "server still streaming after cancel"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A cancellation is not a server failure.
    assert!(!b.breaker().is_open(Instant::now()));
}

#[tokio::test]
async fn the_circuit_opens_after_consecutive_failures_and_recovers() {
    let healthy = Arc::new(AtomicBool::new(false));
    let h2 = healthy.clone();
    let server = serve(Arc::new(move |_, _, _| {
        if h2.load(Ordering::SeqCst) {
            sse(reply(&["back"]))
        } else {
            Response::builder()
                .status(StatusCode::INTERNAL_SERVER_ERROR)
                .body(Body::empty())
                .unwrap()
        }
    }))
    .await;
    let mut c = config(&server.base_url);
    c.max_retries = 0;
    c.circuit_failure_threshold = 3;
    c.circuit_cooldown_ms = 300;
    let b = OpenAiBackend::new(c).unwrap();
    for _ in 0..3 {
        let err = run(&b, &req()).await.0.unwrap_err();
        assert!(err.to_string().contains("HTTP 500"), "{err}");
    }
    assert_eq!(server.hits.load(Ordering::SeqCst), 3);
    // Open: fails fast without touching the server.
    let started = Instant::now();
    let err = run(&b, &req()).await.0.unwrap_err();
    assert!(matches!(err, ModelError::Unavailable(_)), "{err}");
    assert!(err.to_string().contains("circuit breaker open"), "{err}");
    assert!(started.elapsed() < Duration::from_millis(50));
    assert_eq!(server.hits.load(Ordering::SeqCst), 3);

    // After the cool-down a trial call goes through and closes the circuit.
    healthy.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(run(&b, &req()).await.0.unwrap().text, "back");
    assert!(!b.breaker().is_open(Instant::now()));
}

#[tokio::test]
async fn connection_refused_is_unavailable() {
    // A port that was just free: nothing listens there.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let mut c = config(&format!("http://127.0.0.1:{port}/v1"));
    c.max_retries = 1;
    let b = OpenAiBackend::new(c).unwrap();
    let err = run(&b, &req()).await.0.unwrap_err();
    assert!(matches!(err, ModelError::Unavailable(_)), "{err}");
    assert!(err.to_string().contains("cannot connect"), "{err}");
}

#[tokio::test]
async fn bad_responses_are_reported_not_retried_forever() {
    // Not JSON.
    let server = serve(Arc::new(|_, _, _| sse("data: this is not json\n\n"))).await;
    let mut c = config(&server.base_url);
    c.max_retries = 0;
    let b = OpenAiBackend::new(c.clone()).unwrap();
    let err = run(&b, &req()).await.0.unwrap_err();
    assert!(matches!(err, ModelError::BadResponse(_)), "{err}");

    // 404: wrong path or model; a configuration error, never retried.
    let server = serve(Arc::new(|_, _, _| {
        Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Body::from(
                r#"{"error":{"message":"model 'test-model' not found"}}"#,
            ))
            .unwrap()
    }))
    .await;
    let mut c404 = config(&server.base_url);
    c404.max_retries = 3;
    c404.circuit_failure_threshold = 1;
    let b = OpenAiBackend::new(c404).unwrap();
    let err = run(&b, &req()).await.0.unwrap_err();
    assert!(matches!(err, ModelError::BadResponse(_)), "{err}");
    assert!(err.to_string().contains("not found"), "{err}");
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);
    assert!(
        !b.breaker().is_open(Instant::now()),
        "a configuration error is not a server failure"
    );

    // The stream ends early: no finish reason, no [DONE].
    let server = serve(Arc::new(|_, _, _| sse(chunk("Hal")))).await;
    let b = OpenAiBackend::new(config(&server.base_url)).unwrap();
    let (g, pieces) = run(&b, &req()).await;
    let err = g.unwrap_err();
    assert!(err.to_string().contains("ended before"), "{err}");
    assert_eq!(pieces, ["Hal"]);
    assert_eq!(
        server.hits.load(Ordering::SeqCst),
        1,
        "not retried after a streamed piece"
    );

    // An error event mid-stream.
    let server = serve(Arc::new(|_, _, _| {
        sse(format!(
            "{}data: {{\"error\":{{\"message\":\"out of memory\"}}}}\n\n",
            chunk("a")
        ))
    }))
    .await;
    let b = OpenAiBackend::new(config(&server.base_url)).unwrap();
    let err = run(&b, &req()).await.0.unwrap_err();
    assert!(err.to_string().contains("out of memory"), "{err}");

    // A server that ignores stream: true and answers with one JSON completion is still usable.
    let server = serve(Arc::new(|_, _, _| {
        Response::builder()
            .header("content-type", "application/json")
            .body(Body::from(
                json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": "whole"}, "finish_reason": "length"}],
                       "usage": {"prompt_tokens": 12, "completion_tokens": 1}})
                .to_string(),
            ))
            .unwrap()
    }))
    .await;
    let b = OpenAiBackend::new(config(&server.base_url)).unwrap();
    let (g, pieces) = run(&b, &req()).await;
    let g = g.unwrap();
    assert_eq!(
        (g.text.as_str(), g.finish_reason, g.prompt_tokens),
        ("whole", FinishReason::Length, 12)
    );
    assert_eq!(pieces, ["whole"]);
}

#[tokio::test]
async fn server_errors_that_quote_the_conversation_are_withheld() {
    let server = serve(Arc::new(|_, body, _| {
        // Like a validation error that echoes the request.
        let echoed = body["messages"][0]["content"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .body(Body::from(
                json!({"error": {"message": format!("invalid value in: {echoed}")}}).to_string(),
            ))
            .unwrap()
    }))
    .await;
    let b = OpenAiBackend::new(config(&server.base_url)).unwrap();
    let r = ChatRequest::new(vec![ChatMessage::user("my private worry about my family")]);
    let err = run(&b, &r).await.0.unwrap_err();
    let msg = err.to_string();
    assert!(!msg.contains("private worry"), "{msg}");
    assert!(msg.contains("withheld") && msg.contains("400"), "{msg}");
    assert_eq!(err.kind(), "bad_response");
}
