//! The OpenAI-compatible backend: any Chat Completions endpoint that streams with
//! `stream: true` (server-sent events): vLLM, Ollama, llama.cpp's `llama-server`,
//! `llama-cpp-python[server]`, hosted APIs.
//!
//! Resilience, in order of application:
//! - a **circuit breaker**: after `circuit_failure_threshold` consecutive failed generations it
//!   opens for `circuit_cooldown_ms` and every call fails at once with
//!   [`ModelError::Unavailable`] (so a dead server costs the patient nothing but the fallback
//!   reply); then one trial call is let through (half-open);
//! - **bounded retries** with exponential back-off, only while no token has been streamed
//!   (retrying after the patient saw part of a reply would duplicate it), on connection
//!   failures, timeouts, HTTP 408/429/5xx;
//! - **timeouts**: TCP connect, the first token (and any gap between tokens), and the whole call;
//! - **cancellation**: the caller's token, or dropping the future, closes the connection, which
//!   tells the server to stop generating.
//!
//! The API key is a [`SecretString`]: it never appears in `Debug` output or in logs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::backend::ModelBackend;
use crate::text::StopScanner;
use crate::types::{BackendInfo, ChatRequest, FinishReason, Generation, ModelError};

/// Settings of the OpenAI-compatible backend (the `[model.openai]` config section).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAiConfig {
    /// The API root, ending in `/v1`: `http://127.0.0.1:11434/v1` (Ollama),
    /// `http://127.0.0.1:8000/v1` (vLLM), `http://127.0.0.1:8080/v1` (llama-server).
    pub base_url: String,
    /// The model name the server knows, e.g. `qwen2.5:7b-instruct`.
    pub model: String,
    /// Sent as `Authorization: Bearer …` when set. Redacted in `Debug`.
    #[serde(default)]
    pub api_key: Option<SecretString>,
    /// The model's context window in tokens (servers do not report it).
    #[serde(default = "d_context_window")]
    pub context_window: u32,
    /// TCP connect timeout.
    #[serde(default = "d_connect_ms")]
    pub connect_timeout_ms: u64,
    /// Longest wait for the first token, and between two tokens.
    #[serde(default = "d_token_ms")]
    pub token_timeout_ms: u64,
    /// Longest whole call, retries included.
    #[serde(default = "d_request_ms")]
    pub request_timeout_ms: u64,
    /// Retries after the first attempt (only before any token was streamed).
    #[serde(default = "d_retries")]
    pub max_retries: u32,
    /// First back-off delay; doubles at each retry (capped at 8 s).
    #[serde(default = "d_backoff_ms")]
    pub retry_backoff_ms: u64,
    /// Consecutive failed calls that open the circuit.
    #[serde(default = "d_threshold")]
    pub circuit_failure_threshold: u32,
    /// How long the circuit stays open before one trial call.
    #[serde(default = "d_cooldown_ms")]
    pub circuit_cooldown_ms: u64,
}

fn d_context_window() -> u32 {
    8192
}
fn d_connect_ms() -> u64 {
    3_000
}
fn d_token_ms() -> u64 {
    60_000
}
fn d_request_ms() -> u64 {
    180_000
}
fn d_retries() -> u32 {
    2
}
fn d_backoff_ms() -> u64 {
    250
}
fn d_threshold() -> u32 {
    5
}
fn d_cooldown_ms() -> u64 {
    30_000
}

impl OpenAiConfig {
    /// Defaults for a server and model.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            context_window: d_context_window(),
            connect_timeout_ms: d_connect_ms(),
            token_timeout_ms: d_token_ms(),
            request_timeout_ms: d_request_ms(),
            max_retries: d_retries(),
            retry_backoff_ms: d_backoff_ms(),
            circuit_failure_threshold: d_threshold(),
            circuit_cooldown_ms: d_cooldown_ms(),
        }
    }
}

/// Counts consecutive failures; opens for a cool-down after too many.
#[derive(Debug)]
pub struct CircuitBreaker {
    threshold: u32,
    cooldown: Duration,
    state: Mutex<BreakerState>,
}

#[derive(Debug, Default)]
struct BreakerState {
    consecutive_failures: u32,
    open_until: Option<Instant>,
    trial_in_flight: bool,
}

/// The breaker refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitOpen {
    /// Consecutive failures so far.
    pub failures: u32,
    /// Time until a trial call is allowed.
    pub retry_in: Duration,
}

impl CircuitBreaker {
    /// A closed breaker.
    #[must_use]
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown,
            state: Mutex::new(BreakerState::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BreakerState> {
        // The state is a few counters, always valid: recover from a poisoned lock.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Asks to make a call at `now`.
    ///
    /// # Errors
    /// [`CircuitOpen`] while open, or while the one half-open trial call is in flight.
    pub fn try_acquire(&self, now: Instant) -> Result<(), CircuitOpen> {
        let mut s = self.lock();
        match s.open_until {
            None => Ok(()),
            Some(until) if now < until => Err(CircuitOpen {
                failures: s.consecutive_failures,
                retry_in: until - now,
            }),
            Some(_) if s.trial_in_flight => Err(CircuitOpen {
                failures: s.consecutive_failures,
                retry_in: Duration::ZERO,
            }),
            Some(_) => {
                s.trial_in_flight = true;
                Ok(())
            }
        }
    }

    /// The call succeeded: close the circuit.
    pub fn record_success(&self) {
        *self.lock() = BreakerState::default();
    }

    /// The call failed at `now`.
    pub fn record_failure(&self, now: Instant) {
        let mut s = self.lock();
        s.consecutive_failures = s.consecutive_failures.saturating_add(1);
        s.trial_in_flight = false;
        if s.consecutive_failures >= self.threshold {
            s.open_until = Some(now + self.cooldown);
        }
    }

    /// The call ended in a way that says nothing about the server (cancelled, bad request).
    pub fn record_neutral(&self) {
        self.lock().trial_in_flight = false;
    }

    /// True while calls are refused.
    #[must_use]
    pub fn is_open(&self, now: Instant) -> bool {
        self.lock().open_until.is_some_and(|until| now < until)
    }
}

/// Ends a call's breaker bookkeeping even if the future is dropped mid-way.
struct BreakerCall<'a> {
    breaker: &'a CircuitBreaker,
    done: bool,
}

impl BreakerCall<'_> {
    fn finish(mut self, result: &Result<Generation, CallError>) {
        self.done = true;
        match result {
            Ok(_) => self.breaker.record_success(),
            Err(e) if e.server_fault => self.breaker.record_failure(Instant::now()),
            Err(_) => self.breaker.record_neutral(),
        }
    }
}

impl Drop for BreakerCall<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.breaker.record_neutral();
        }
    }
}

/// A failed call, and whether it says the server is unhealthy (counts for the breaker).
/// Cancellations and client errors (bad key, unknown model: HTTP 4xx other than 408/429) do not.
struct CallError {
    error: ModelError,
    server_fault: bool,
}

impl From<AttemptError> for CallError {
    fn from(e: AttemptError) -> Self {
        Self {
            error: e.error,
            server_fault: e.retryable,
        }
    }
}

/// A Chat Completions client. Cheap to share (`Arc`); one connection pool for all calls.
pub struct OpenAiBackend {
    config: OpenAiConfig,
    url: String,
    client: reqwest::Client,
    breaker: CircuitBreaker,
}

impl std::fmt::Debug for OpenAiBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiBackend")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// One failed attempt, and whether another may follow.
struct AttemptError {
    error: ModelError,
    retryable: bool,
    retry_after: Option<Duration>,
}

impl AttemptError {
    fn fatal(error: ModelError) -> Self {
        Self {
            error,
            retryable: false,
            retry_after: None,
        }
    }
    fn retry(error: ModelError) -> Self {
        Self {
            error,
            retryable: true,
            retry_after: None,
        }
    }
}

const MAX_BACKOFF: Duration = Duration::from_secs(8);
const MAX_SSE_LINE: usize = 1 << 20;

impl OpenAiBackend {
    /// Builds the client (no request is made).
    ///
    /// # Errors
    /// [`ModelError::InvalidRequest`] for an unusable base URL, [`ModelError::Load`] if the
    /// HTTP client cannot be built.
    pub fn new(config: OpenAiConfig) -> Result<Self, ModelError> {
        let base = config.base_url.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ModelError::InvalidRequest(format!(
                "model.openai.base_url must start with http:// or https:// (got {base:?}), e.g. http://127.0.0.1:11434/v1"
            )));
        }
        if config.model.trim().is_empty() {
            return Err(ModelError::InvalidRequest(
                "model.openai.model must name the server's model, e.g. qwen2.5:7b-instruct".into(),
            ));
        }
        let url = format!("{base}/chat/completions");
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| ModelError::Load(format!("could not build the HTTP client: {e}")))?;
        let breaker = CircuitBreaker::new(
            config.circuit_failure_threshold,
            Duration::from_millis(config.circuit_cooldown_ms),
        );
        Ok(Self {
            config,
            url,
            client,
            breaker,
        })
    }

    /// The circuit breaker (for health pages and tests).
    #[must_use]
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    fn body(&self, req: &ChatRequest) -> Value {
        let messages: Vec<Value> = req
            .messages
            .iter()
            .map(|m| json!({"role": m.role.as_str(), "content": m.content}))
            .collect();
        let mut body = json!({
            "model": self.config.model,
            "messages": messages,
            "stream": true,
            "max_tokens": req.max_tokens,
            "temperature": req.temperature,
            "top_p": req.top_p,
        });
        if let Some(obj) = body.as_object_mut() {
            if !req.stop.is_empty() {
                obj.insert("stop".into(), json!(req.stop));
            }
            if let Some(seed) = req.seed {
                obj.insert("seed".into(), json!(seed));
            }
        }
        body
    }

    async fn generate_with_retries(
        &self,
        req: &ChatRequest,
        cancel: &CancellationToken,
        on_token: &mut (dyn for<'t> FnMut(&'t str) + Send),
    ) -> Result<Generation, CallError> {
        let started = Instant::now();
        let deadline = started + Duration::from_millis(self.config.request_timeout_ms);
        let body = self.body(req);
        let mut attempt: u32 = 0;
        loop {
            let streamed = AtomicBool::new(false);
            match self
                .attempt(&body, req, started, deadline, cancel, on_token, &streamed)
                .await
            {
                Ok(g) => return Ok(g),
                Err(e) => {
                    if streamed.load(Ordering::Relaxed)
                        || !e.retryable
                        || attempt >= self.config.max_retries
                    {
                        return Err(e.into());
                    }
                    let backoff = Duration::from_millis(self.config.retry_backoff_ms)
                        .saturating_mul(2u32.saturating_pow(attempt))
                        .min(MAX_BACKOFF);
                    let delay = e.retry_after.map_or(backoff, |ra| ra.min(MAX_BACKOFF));
                    if Instant::now() + delay >= deadline {
                        return Err(e.into());
                    }
                    tracing::debug!(attempt, delay_ms = delay.as_millis(), error = %e.error, "retrying model server");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = cancel.cancelled() => return Err(CallError {
                            error: ModelError::Cancelled,
                            server_fault: false,
                        }),
                    }
                    attempt += 1;
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn attempt(
        &self,
        body: &Value,
        req: &ChatRequest,
        started: Instant,
        deadline: Instant,
        cancel: &CancellationToken,
        on_token: &mut (dyn for<'t> FnMut(&'t str) + Send),
        streamed: &AtomicBool,
    ) -> Result<Generation, AttemptError> {
        let token_timeout = Duration::from_millis(self.config.token_timeout_ms);
        let overall = Duration::from_millis(self.config.request_timeout_ms);
        let timeout_error = |wait_until: Instant, streamed: bool| {
            if wait_until >= deadline {
                ModelError::Timeout {
                    after: overall,
                    phase: "overall",
                }
            } else {
                ModelError::Timeout {
                    after: token_timeout,
                    phase: if streamed {
                        "between tokens"
                    } else {
                        "first token"
                    },
                }
            }
        };

        let mut rb = self
            .client
            .post(&self.url)
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .json(body);
        if let Some(key) = &self.config.api_key {
            rb = rb.bearer_auth(key.expose_secret());
        }
        let wait_until = deadline.min(Instant::now() + token_timeout);
        let resp = tokio::select! {
            r = tokio::time::timeout_at(wait_until.into(), rb.send()) => match r {
                Err(_) => return Err(AttemptError::retry(timeout_error(wait_until, false))),
                Ok(Err(e)) => return Err(self.transport_error(&e)),
                Ok(Ok(resp)) => resp,
            },
            () = cancel.cancelled() => return Err(AttemptError::fatal(ModelError::Cancelled)),
        };

        let status = resp.status();
        if !status.is_success() {
            return Err(self.status_error(resp, req).await);
        }
        let is_sse = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !is_sse {
            return self
                .non_streamed(resp, req, started, deadline, cancel, on_token, streamed)
                .await;
        }

        let mut stream = resp.bytes_stream();
        let mut buf: Vec<u8> = Vec::new();
        let mut data = String::new();
        let mut parser = ChunkState::new(req);
        let first: OnceLock<Duration> = OnceLock::new();
        let mut emit = |piece: &str| {
            first.get_or_init(|| started.elapsed());
            streamed.store(true, Ordering::Relaxed);
            on_token(piece);
        };
        let mut done = false;
        while !done {
            let wait_until = deadline.min(Instant::now() + token_timeout);
            let next = tokio::select! {
                r = tokio::time::timeout_at(wait_until.into(), stream.next()) => match r {
                    Err(_) => return Err(AttemptError::retry(timeout_error(wait_until, streamed.load(Ordering::Relaxed)))),
                    Ok(next) => next,
                },
                () = cancel.cancelled() => return Err(AttemptError::fatal(ModelError::Cancelled)),
            };
            let bytes = match next {
                None => break,
                Some(Ok(b)) => b,
                Some(Err(e)) => {
                    return Err(AttemptError::retry(ModelError::Unavailable(format!(
                        "the connection to the model server broke mid-reply: {e}"
                    ))))
                }
            };
            buf.extend_from_slice(&bytes);
            // Handle complete lines; an event ends at an empty line.
            while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buf.drain(..=nl).collect();
                let line = String::from_utf8_lossy(&line);
                let line = line.trim_end_matches(['\n', '\r']);
                if line.is_empty() {
                    if !data.is_empty() {
                        let event = std::mem::take(&mut data);
                        if parser
                            .event(&event, &mut emit)
                            .map_err(AttemptError::retry)?
                        {
                            done = true;
                            break;
                        }
                    }
                } else if let Some(rest) = line.strip_prefix("data:") {
                    if !data.is_empty() {
                        data.push('\n');
                    }
                    data.push_str(rest.strip_prefix(' ').unwrap_or(rest));
                }
                // Other fields (event:, id:, retry:) and comments (":") are ignored.
            }
            if buf.len() > MAX_SSE_LINE {
                return Err(AttemptError::retry(ModelError::BadResponse(
                    "an event-stream line exceeded 1 MiB".into(),
                )));
            }
        }
        if !done {
            // The stream ended. A final event without its blank line still counts.
            if !data.is_empty() {
                let event = std::mem::take(&mut data);
                done = parser
                    .event(&event, &mut emit)
                    .map_err(AttemptError::retry)?;
            }
            if !done && parser.finish_reason.is_none() {
                return Err(AttemptError::retry(ModelError::BadResponse(
                    if parser.chunks == 0 {
                        "the server closed the stream without sending a completion".into()
                    } else {
                        "the stream ended before the reply was finished (no [DONE])".into()
                    },
                )));
            }
        }
        let mut g = parser.finish(&mut emit, started);
        g.time_to_first_token = first.get().copied();
        Ok(g)
    }

    /// A server that ignored `stream: true` and sent one JSON completion.
    #[allow(clippy::too_many_arguments)]
    async fn non_streamed(
        &self,
        resp: reqwest::Response,
        req: &ChatRequest,
        started: Instant,
        deadline: Instant,
        cancel: &CancellationToken,
        on_token: &mut (dyn for<'t> FnMut(&'t str) + Send),
        streamed: &AtomicBool,
    ) -> Result<Generation, AttemptError> {
        let body = tokio::select! {
            r = tokio::time::timeout_at(deadline.into(), resp.bytes()) => match r {
                Err(_) => return Err(AttemptError::retry(ModelError::Timeout {
                    after: Duration::from_millis(self.config.request_timeout_ms),
                    phase: "overall",
                })),
                Ok(Err(e)) => return Err(self.transport_error(&e)),
                Ok(Ok(b)) => b,
            },
            () = cancel.cancelled() => return Err(AttemptError::fatal(ModelError::Cancelled)),
        };
        let v: Value = serde_json::from_slice(&body).map_err(|_| {
            AttemptError::retry(ModelError::BadResponse(
                "expected an event stream or a JSON chat completion; is base_url the /v1 root of a Chat Completions API?".into(),
            ))
        })?;
        let content = v
            .pointer("/choices/0/message/content")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                AttemptError::retry(ModelError::BadResponse(
                    "the completion has no choices[0].message.content".into(),
                ))
            })?;
        let mut scanner = StopScanner::new(&req.stop);
        let scanned = scanner.push(content);
        let mut text = scanned.emit;
        if !scanned.stopped {
            text.push_str(&scanner.finish());
        }
        let first = if text.is_empty() {
            None
        } else {
            streamed.store(true, Ordering::Relaxed);
            on_token(&text);
            Some(started.elapsed())
        };
        let finish_reason = if scanned.stopped {
            FinishReason::StopSequence
        } else {
            map_finish(
                v.pointer("/choices/0/finish_reason")
                    .and_then(Value::as_str),
            )
        };
        Ok(Generation {
            completion_tokens: usage(&v, "completion_tokens")
                .unwrap_or(usize::from(!text.is_empty())),
            prompt_tokens: usage(&v, "prompt_tokens").unwrap_or(0),
            text,
            finish_reason,
            time_to_first_token: first,
            elapsed: started.elapsed(),
        })
    }

    fn transport_error(&self, e: &reqwest::Error) -> AttemptError {
        let base = &self.config.base_url;
        if e.is_timeout() {
            return AttemptError::retry(ModelError::Timeout {
                after: Duration::from_millis(self.config.connect_timeout_ms),
                phase: "connect",
            });
        }
        let what = if e.is_connect() {
            "cannot connect"
        } else {
            "request failed"
        };
        AttemptError::retry(ModelError::Unavailable(format!(
            "{what} to the model server at {base} ({}); is it running and is model.openai.base_url right?",
            root_cause(e)
        )))
    }

    async fn status_error(&self, resp: reqwest::Response, req: &ChatRequest) -> AttemptError {
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        // The server's own error message (bounded) helps the deployer; it names models and
        // limits, not conversation text.
        let body = tokio::time::timeout(Duration::from_secs(2), resp.bytes())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        let detail = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| {
                v.pointer("/error/message")
                    .or_else(|| v.pointer("/error"))
                    .or_else(|| v.pointer("/message"))
                    .and_then(Value::as_str)
                    .map(|s| server_detail(s, req))
            })
            .unwrap_or_default();
        let code = status.as_u16();
        let base = &self.config.base_url;
        let model = &self.config.model;
        let (error, retryable) = match code {
            401 | 403 => (
                ModelError::BadResponse(format!(
                    "HTTP {code} from {base}: the server rejected the API key ({detail}); check model.openai.api_key"
                )),
                false,
            ),
            404 => (
                ModelError::BadResponse(format!(
                    "HTTP 404 from {base}: no such endpoint or model {model:?} ({detail}); base_url must be the /v1 root and the model must be pulled on the server"
                )),
                false,
            ),
            408 | 429 | 500..=599 => (
                ModelError::Unavailable(format!(
                    "HTTP {code} from {base} ({detail}); the server is overloaded or failing"
                )),
                true,
            ),
            _ => (
                ModelError::BadResponse(format!("HTTP {code} from {base} ({detail})")),
                false,
            ),
        };
        AttemptError {
            error,
            retryable,
            retry_after,
        }
    }
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

/// A server's error message, fit to quote in our errors and logs: bounded, and withheld when
/// it quotes the conversation (some servers echo the request in validation errors).
fn server_detail(msg: &str, req: &ChatRequest) -> String {
    let quotes_input = msg.contains("'input'") || msg.contains("\"input\"");
    let quotes_message = req.messages.iter().any(|m| {
        let probe: String = m.content.trim().chars().take(16).collect();
        probe.chars().count() >= 4 && msg.contains(&probe)
    });
    if quotes_input || quotes_message {
        "[the server's message quoted the conversation and is withheld]".into()
    } else {
        truncate(msg, 200)
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

fn usage(v: &Value, field: &str) -> Option<usize> {
    v.get("usage")?
        .get(field)?
        .as_u64()
        .and_then(|n| usize::try_from(n).ok())
}

fn map_finish(reason: Option<&str>) -> FinishReason {
    match reason {
        Some("length") => FinishReason::Length,
        _ => FinishReason::Stop,
    }
}

/// Assembles a reply from Chat Completions chunks.
struct ChunkState<'r> {
    req: &'r ChatRequest,
    scanner: StopScanner,
    text: String,
    chunks: usize,
    content_chunks: usize,
    finish_reason: Option<FinishReason>,
    stopped_by_scanner: bool,
    prompt_tokens: Option<usize>,
    completion_tokens: Option<usize>,
}

impl<'r> ChunkState<'r> {
    fn new(req: &'r ChatRequest) -> Self {
        Self {
            req,
            scanner: StopScanner::new(&req.stop),
            text: String::new(),
            chunks: 0,
            content_chunks: 0,
            finish_reason: None,
            stopped_by_scanner: false,
            prompt_tokens: None,
            completion_tokens: None,
        }
    }

    /// Handles one event's data. Returns true when the reply is complete.
    fn event(&mut self, data: &str, emit: &mut dyn FnMut(&str)) -> Result<bool, ModelError> {
        if data.trim() == "[DONE]" {
            return Ok(true);
        }
        if self.stopped_by_scanner {
            return Ok(false);
        }
        let v: Value = serde_json::from_str(data).map_err(|_| {
            ModelError::BadResponse("an event was not a JSON chat-completion chunk".into())
        })?;
        if let Some(err) = v.get("error") {
            let msg = err
                .get("message")
                .and_then(Value::as_str)
                .or_else(|| err.as_str())
                .unwrap_or("no message");
            return Err(ModelError::BadResponse(format!(
                "the server reported an error mid-stream: {}",
                server_detail(msg, self.req)
            )));
        }
        self.chunks += 1;
        if let Some(n) = usage(&v, "prompt_tokens") {
            self.prompt_tokens = Some(n);
        }
        if let Some(n) = usage(&v, "completion_tokens") {
            self.completion_tokens = Some(n);
        }
        let Some(choice) = v.pointer("/choices/0") else {
            // Usage-only or keep-alive chunks have no choices.
            if v.get("choices").is_some() || v.get("usage").is_some() {
                return Ok(false);
            }
            return Err(ModelError::BadResponse(
                "a chunk had no choices; is this a Chat Completions endpoint?".into(),
            ));
        };
        if let Some(content) = choice.pointer("/delta/content").and_then(Value::as_str) {
            if !content.is_empty() {
                self.content_chunks += 1;
                let scanned = self.scanner.push(content);
                if !scanned.emit.is_empty() {
                    self.text.push_str(&scanned.emit);
                    emit(&scanned.emit);
                }
                if scanned.stopped {
                    self.stopped_by_scanner = true;
                    self.finish_reason = Some(FinishReason::StopSequence);
                }
            }
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            if !self.stopped_by_scanner {
                self.finish_reason = Some(map_finish(Some(reason)));
            }
        }
        Ok(false)
    }

    fn finish(&mut self, emit: &mut dyn FnMut(&str), started: Instant) -> Generation {
        if !self.stopped_by_scanner {
            let rest = self.scanner.finish();
            if !rest.is_empty() {
                self.text.push_str(&rest);
                emit(&rest);
            }
        }
        Generation {
            text: std::mem::take(&mut self.text),
            finish_reason: self.finish_reason.unwrap_or(FinishReason::Stop),
            prompt_tokens: self.prompt_tokens.unwrap_or(0),
            completion_tokens: self.completion_tokens.unwrap_or(self.content_chunks),
            time_to_first_token: None,
            elapsed: started.elapsed(),
        }
    }
}

#[async_trait]
impl ModelBackend for OpenAiBackend {
    fn describe(&self) -> BackendInfo {
        BackendInfo {
            backend: "openai",
            model_id: self.config.model.clone(),
            context_window: self.config.context_window,
        }
    }

    async fn generate(
        &self,
        req: &ChatRequest,
        cancel: &CancellationToken,
        on_token: &mut (dyn for<'t> FnMut(&'t str) + Send),
    ) -> Result<Generation, ModelError> {
        req.validate()?;
        if let Err(open) = self.breaker.try_acquire(Instant::now()) {
            return Err(ModelError::Unavailable(format!(
                "circuit breaker open after {} consecutive failures of the model server at {}; next try in {:.0?}. Check the server, or switch model.backend to \"embedded\"",
                open.failures, self.config.base_url, open.retry_in
            )));
        }
        let call = BreakerCall {
            breaker: &self.breaker,
            done: false,
        };
        let result = self.generate_with_retries(req, cancel, on_token).await;
        call.finish(&result);
        let result = result.map_err(|e| e.error);
        if let Err(e) = &result {
            tracing::warn!(
                backend = "openai",
                kind = e.kind(),
                "model generation failed"
            );
        }
        // Prompt size estimate when the server reported no usage.
        result.map(|mut g| {
            if g.prompt_tokens == 0 {
                g.prompt_tokens = self.count_prompt_tokens(&req.messages);
            }
            g
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaker_opens_after_threshold_then_half_opens_once() {
        let b = CircuitBreaker::new(3, Duration::from_secs(10));
        let t0 = Instant::now();
        for _ in 0..2 {
            assert!(b.try_acquire(t0).is_ok());
            b.record_failure(t0);
        }
        assert!(b.try_acquire(t0).is_ok());
        b.record_failure(t0);
        let open = b.try_acquire(t0 + Duration::from_secs(1)).unwrap_err();
        assert_eq!(open.failures, 3);
        assert_eq!(open.retry_in, Duration::from_secs(9));
        // After the cool-down: one trial only.
        let later = t0 + Duration::from_secs(11);
        assert!(b.try_acquire(later).is_ok());
        assert!(b.try_acquire(later).is_err());
        // Trial fails: open again for a full cool-down.
        b.record_failure(later);
        assert!(b.is_open(later + Duration::from_secs(5)));
        assert!(b.try_acquire(later + Duration::from_secs(11)).is_ok());
        b.record_success();
        assert!(b.try_acquire(later + Duration::from_secs(11)).is_ok());
        assert!(!b.is_open(later + Duration::from_secs(11)));
    }

    #[test]
    fn api_key_is_redacted_in_debug() {
        let mut c = OpenAiConfig::new("http://127.0.0.1:1/v1", "m");
        c.api_key = Some(SecretString::from("sk-very-secret"));
        let backend = OpenAiBackend::new(c).unwrap();
        let dbg = format!("{backend:?}");
        assert!(!dbg.contains("sk-very-secret"), "{dbg}");
        assert!(dbg.contains("REDACTED"), "{dbg}");
    }

    #[test]
    fn config_deserializes_with_defaults_and_rejects_unknown_fields() {
        let c: OpenAiConfig = serde_json::from_value(json!({
            "base_url": "http://127.0.0.1:11434/v1",
            "model": "qwen2.5:7b-instruct",
            "api_key": "k"
        }))
        .unwrap();
        assert_eq!(c.max_retries, 2);
        assert_eq!(c.api_key.unwrap().expose_secret(), "k");
        let bad = serde_json::from_value::<OpenAiConfig>(json!({
            "base_url": "http://x/v1", "model": "m", "apikey": "k"
        }));
        assert!(bad.is_err());
    }

    #[test]
    fn bad_base_url_is_rejected() {
        assert!(OpenAiBackend::new(OpenAiConfig::new("127.0.0.1:8080", "m")).is_err());
    }
}
