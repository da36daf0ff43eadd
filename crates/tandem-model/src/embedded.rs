//! The embedded backend: a GGUF model run in-process by llama.cpp (through `llama-cpp-2`).
//!
//! # Concurrency
//! The model (weights, vocabulary, chat template) is loaded once and shared, read-only, by
//! every conversation through an `Arc`. Each generation gets **its own llama.cpp context**
//! (KV cache sized to that request's prompt plus reply, capped at the window), created and used
//! entirely inside one `tokio::task::spawn_blocking` task, so the async runtime never blocks on
//! inference and no context is ever shared between threads. A semaphore bounds how many
//! generations run at once (`max_concurrent`); the rest wait their turn (cancellable).
//! A per-request context costs a few milliseconds to create for small models and avoids a
//! pool's bookkeeping and the risk of one conversation's KV cache leaking into another's.
//!
//! Context creation is serialised by a mutex: `llama-cpp-2` documents that creating contexts
//! from one model in parallel is unsound (llama.cpp may write to the model while doing so).
//!
//! # Logging
//! llama.cpp's own log output is switched off entirely (it can echo prompt pieces at debug
//! level); this module logs only sizes, counts and timings, never text.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::{send_logs_to_tracing, LogOptions};
use serde::Deserialize;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::backend::ModelBackend;
use crate::template::PromptFormat;
use crate::text::{StopScanner, Utf8Assembler};
use crate::types::{BackendInfo, ChatMessage, ChatRequest, FinishReason, Generation, ModelError};

/// Repetition penalty over the last [`REPEAT_LAST_N`] generated tokens.
const REPEAT_PENALTY: f32 = 1.1;
const REPEAT_LAST_N: i32 = 64;

/// Window used when the config sets none: the model's training window, capped here because a
/// larger KV cache costs memory and small models do not use long contexts well.
pub const DEFAULT_CONTEXT_CAP: u32 = 4096;

/// Settings of the embedded backend (the `[model.embedded]` config section).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedConfig {
    /// The GGUF file. `None`: the default model under the data directory (see
    /// [`EmbeddedConfig::with_default_path`] and [`crate::resolve_model_path`]).
    #[serde(default)]
    pub model_path: Option<PathBuf>,
    /// CPU threads per generation. `None`: the number of available cores.
    #[serde(default)]
    pub threads: Option<usize>,
    /// Context window in tokens. `None`: the model's training window, at most 4096.
    #[serde(default)]
    pub context_window: Option<u32>,
    /// Generations that may run at the same time; more wait. Each uses `threads` threads, so
    /// more than 2 on a small CPU only slows every conversation down.
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent: usize,
    /// Prompt tokens evaluated per llama.cpp batch.
    #[serde(default = "default_batch")]
    pub batch_size: u32,
    /// Force a built-in prompt format (`"chatml"`, `"llama3"`, `"gemma"`) instead of the GGUF's
    /// own chat template. `None`: the GGUF's template, else one detected from the model.
    #[serde(default)]
    pub chat_format: Option<PromptFormat>,
}

fn default_max_concurrent() -> usize {
    2
}

fn default_batch() -> u32 {
    512
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        Self {
            model_path: None,
            threads: None,
            context_window: None,
            max_concurrent: default_max_concurrent(),
            batch_size: default_batch(),
            chat_format: None,
        }
    }
}

impl EmbeddedConfig {
    /// Defaults for a model file.
    pub fn new(model_path: impl Into<PathBuf>) -> Self {
        Self {
            model_path: Some(model_path.into()),
            threads: None,
            context_window: None,
            max_concurrent: default_max_concurrent(),
            batch_size: default_batch(),
            chat_format: None,
        }
    }

    /// Fills in the default model path (`<data_dir>/models/<default file>`) when none is set.
    #[must_use]
    pub fn with_default_path(mut self, data_dir: &Path) -> Self {
        self.model_path = Some(crate::resolve_model_path(
            self.model_path.as_deref(),
            data_dir,
        ));
        self
    }
}

/// Where the prompt format comes from, for provenance and diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateSource {
    /// The chat template stored in the GGUF, applied by llama.cpp.
    Gguf,
    /// A built-in fallback for the model family (the GGUF has no template llama.cpp can apply).
    Fallback(PromptFormat),
}

/// A GGUF model run in-process. Cheap to clone (shares the loaded model).
#[derive(Clone)]
pub struct EmbeddedBackend {
    inner: Arc<Inner>,
}

struct Inner {
    backend: &'static LlamaBackend,
    model: LlamaModel,
    model_id: String,
    template: Option<LlamaChatTemplate>,
    format: PromptFormat,
    context_window: u32,
    threads: i32,
    batch_size: u32,
    ctx_create: Mutex<()>,
    permits: Arc<Semaphore>,
}

static LLAMA: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();

/// llama.cpp's process-wide backend: initialised once, with its logging silenced.
fn llama_backend() -> Result<&'static LlamaBackend, ModelError> {
    LLAMA
        .get_or_init(|| {
            send_logs_to_tracing(LogOptions::default().with_logs_enabled(false));
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| ModelError::Load(format!("llama.cpp could not start: {e}")))
}

/// Number of cores this process may use.
#[must_use]
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

impl EmbeddedBackend {
    /// Loads the model on a blocking thread.
    ///
    /// # Errors
    /// [`ModelError::Load`] when the file is missing or not a GGUF llama.cpp can load.
    pub async fn load(config: EmbeddedConfig) -> Result<Self, ModelError> {
        tokio::task::spawn_blocking(move || Self::load_blocking(&config))
            .await
            .map_err(|e| ModelError::Load(format!("model loading task failed: {e}")))?
    }

    /// Loads the model on the current thread (takes a moment: call outside async code).
    ///
    /// # Errors
    /// [`ModelError::Load`] when the file is missing or not a GGUF llama.cpp can load.
    pub fn load_blocking(config: &EmbeddedConfig) -> Result<Self, ModelError> {
        let Some(path) = &config.model_path else {
            return Err(ModelError::Load(
                "no model file configured; set model.embedded.model_path or use the default under the data directory".into(),
            ));
        };
        if !path.is_file() {
            return Err(ModelError::Load(format!(
                "model file {} not found; run `tandem model pull` or set model.embedded.model_path",
                path.display()
            )));
        }
        if config.max_concurrent == 0 || config.batch_size == 0 {
            return Err(ModelError::Load(
                "model.embedded.max_concurrent and batch_size must be at least 1".into(),
            ));
        }
        let backend = llama_backend()?;
        let started = Instant::now();
        let model = LlamaModel::load_from_file(backend, path, &LlamaModelParams::default())
            .map_err(|e| {
                ModelError::Load(format!(
                    "llama.cpp could not load {} ({e}); is it a complete GGUF file? Re-run `tandem model pull`",
                    path.display()
                ))
            })?;
        let train_ctx = model.n_ctx_train();
        let context_window = config
            .context_window
            .unwrap_or(DEFAULT_CONTEXT_CAP)
            .min(if train_ctx > 0 {
                train_ctx
            } else {
                DEFAULT_CONTEXT_CAP
            })
            .max(64);
        let threads = i32::try_from(config.threads.unwrap_or_else(available_cores).max(1))
            .map_err(|_| ModelError::Load("model.embedded.threads is too large".into()))?;

        let architecture = model.meta_val_str("general.architecture").ok();
        let detected = {
            let vocab = model.vocab();
            PromptFormat::detect(architecture.as_deref(), |text| {
                let toks = vocab.tokenize(text.as_bytes(), false, true);
                toks.len() == 1 && vocab.is_control(toks[0])
            })
        };
        let format = config.chat_format.unwrap_or(detected);
        // Use the GGUF's template (unless a format is forced) only if llama.cpp can apply it.
        let template = model
            .chat_template(None)
            .ok()
            .filter(|_| config.chat_format.is_none())
            .filter(|t| {
                LlamaChatMessage::new("user".into(), "hi".into())
                    .ok()
                    .is_some_and(|m| model.apply_chat_template(t, &[m], true).is_ok())
            });
        let model_id = path
            .file_name()
            .map(|n| n.to_string_lossy().trim_end_matches(".gguf").to_owned())
            .unwrap_or_default();
        tracing::info!(
            model = %model_id,
            params = model.n_params(),
            context_window,
            threads,
            template = if template.is_some() { "gguf" } else { "fallback" },
            format = ?format,
            load_ms = started.elapsed().as_millis(),
            "embedded model loaded"
        );
        Ok(Self {
            inner: Arc::new(Inner {
                backend,
                model,
                model_id,
                template,
                format,
                context_window,
                threads,
                batch_size: config.batch_size,
                ctx_create: Mutex::new(()),
                permits: Arc::new(Semaphore::new(config.max_concurrent)),
            }),
        })
    }

    /// Where the prompt format comes from.
    #[must_use]
    pub fn template_source(&self) -> TemplateSource {
        if self.inner.template.is_some() {
            TemplateSource::Gguf
        } else {
            TemplateSource::Fallback(self.inner.format)
        }
    }

    /// The exact prompt text the model will see for these messages (for tests and diagnostics;
    /// it contains patient text: never log it).
    ///
    /// # Errors
    /// [`ModelError::InvalidRequest`] if llama.cpp rejects the messages.
    pub fn render_prompt(&self, messages: &[ChatMessage]) -> Result<String, ModelError> {
        self.inner.render_prompt(messages)
    }

    /// Threads each generation uses.
    #[must_use]
    pub fn threads(&self) -> usize {
        usize::try_from(self.inner.threads).unwrap_or(1)
    }
}

impl Inner {
    fn render_prompt(&self, messages: &[ChatMessage]) -> Result<String, ModelError> {
        if let Some(template) = &self.template {
            let chat = messages
                .iter()
                .map(|m| {
                    // A NUL byte cannot cross into C; it carries no meaning in a chat message.
                    LlamaChatMessage::new(m.role.as_str().to_owned(), m.content.replace('\0', ""))
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ModelError::InvalidRequest(format!("message not usable: {e}")))?;
            return self
                .model
                .apply_chat_template(template, &chat, true)
                .map_err(|e| ModelError::InvalidRequest(format!("chat template failed: {e}")));
        }
        Ok(self.format.render(messages))
    }

    fn tokenize_prompt(&self, prompt: &str) -> Vec<llama_cpp_2::token::LlamaToken> {
        // add_special: the BOS token where the model wants one; parse_special: template markers
        // such as <|im_start|> become their special tokens.
        self.model.vocab().tokenize(prompt.as_bytes(), true, true)
    }

    /// Runs one generation on the calling (blocking) thread, sending pieces through `tx`.
    fn run(
        &self,
        prompt: &str,
        req: &ChatRequest,
        cancel: &CancellationToken,
        tx: &mpsc::Sender<String>,
    ) -> Result<RunOutcome, ModelError> {
        let vocab = self.model.vocab();
        let tokens = self.tokenize_prompt(prompt);
        let n_prompt = tokens.len();
        let window = usize::try_from(self.context_window).unwrap_or(usize::MAX);
        if n_prompt == 0 {
            return Err(ModelError::InvalidRequest("the prompt is empty".into()));
        }
        if n_prompt >= window {
            return Err(ModelError::ContextTooLong {
                prompt_tokens: n_prompt,
                context_window: self.context_window,
            });
        }
        let max_new = usize::try_from(req.max_tokens)
            .unwrap_or(usize::MAX)
            .min(window - n_prompt);
        let n_ctx = (n_prompt + max_new).next_multiple_of(256).min(window);
        let n_ctx = u32::try_from(n_ctx).unwrap_or(self.context_window);

        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx))
            .with_n_batch(self.batch_size)
            .with_n_threads(self.threads)
            .with_n_threads_batch(self.threads);
        let mut ctx = {
            let _guard = self
                .ctx_create
                .lock()
                .map_err(|_| ModelError::Inference("context lock poisoned".into()))?;
            self.model
                .new_context(self.backend, params)
                .map_err(|e| ModelError::Inference(format!("could not create a context: {e}")))?
        };

        let batch_cap = usize::try_from(self.batch_size).unwrap_or(512);
        let mut batch = LlamaBatch::new(batch_cap.max(1), 1);
        let inference =
            |what: &str, e: &dyn std::fmt::Display| ModelError::Inference(format!("{what}: {e}"));
        for (chunk_no, chunk) in tokens.chunks(batch_cap.max(1)).enumerate() {
            if cancel.is_cancelled() {
                return Err(ModelError::Cancelled);
            }
            batch.clear();
            for (j, tok) in chunk.iter().enumerate() {
                let pos = chunk_no * batch_cap + j;
                let pos_i32 = i32::try_from(pos).map_err(|e| inference("position", &e))?;
                batch
                    .add(*tok, pos_i32, &[0], pos + 1 == n_prompt)
                    .map_err(|e| inference("batch", &e))?;
            }
            ctx.decode(&mut batch)
                .map_err(|e| inference("prompt evaluation failed", &e))?;
        }

        // Small models loop: tokens generated in the last 64 are made less likely (llama.cpp's
        // long-standing defaults, penalty 1.1 over 64 tokens; presence/frequency off).
        let penalties = || {
            LlamaSampler::penalties(
                self.model.n_vocab(),
                REPEAT_LAST_N,
                REPEAT_PENALTY,
                0.0,
                0.0,
            )
        };
        let mut sampler = if req.temperature <= 0.0 {
            LlamaSampler::chain_simple([penalties(), LlamaSampler::greedy()])
        } else {
            let seed = req.seed.unwrap_or_else(time_seed);
            LlamaSampler::chain_simple([
                penalties(),
                LlamaSampler::top_k(40),
                LlamaSampler::top_p(req.top_p, 1),
                LlamaSampler::temp(req.temperature),
                LlamaSampler::dist(seed),
            ])
        };

        // The request's stop strings, plus the format's turn markers in case the GGUF does not
        // flag them as end-of-generation (they are special tokens, so normally render empty).
        let mut stops = req.stop.clone();
        stops.extend(
            self.format
                .turn_end_markers()
                .iter()
                .map(|s| (*s).to_owned()),
        );
        let mut scanner = StopScanner::new(&stops);
        let mut utf8 = Utf8Assembler::new();
        let mut text = String::new();
        let emit = |piece: String, text: &mut String| -> Result<(), ModelError> {
            if piece.is_empty() {
                return Ok(());
            }
            text.push_str(&piece);
            // The receiver is gone when the caller dropped the future: stop.
            tx.blocking_send(piece).map_err(|_| ModelError::Cancelled)
        };

        let mut n_cur = n_prompt;
        let mut generated = 0usize;
        let mut finish = FinishReason::Length;
        let mut piece_buf = Vec::with_capacity(32);
        while generated < max_new {
            if cancel.is_cancelled() {
                return Err(ModelError::Cancelled);
            }
            let token = sampler.sample(&ctx, batch.n_tokens() - 1);
            if vocab.is_eog(token) {
                finish = FinishReason::Stop;
                break;
            }
            generated += 1;
            piece_buf.clear();
            vocab.token_to_piece_into(token, &mut piece_buf, false, None);
            let scanned = scanner.push(&utf8.push(&piece_buf));
            emit(scanned.emit, &mut text)?;
            if scanned.stopped {
                finish = FinishReason::StopSequence;
                break;
            }
            if generated == max_new {
                break;
            }
            batch.clear();
            let pos = i32::try_from(n_cur).map_err(|e| inference("position", &e))?;
            batch
                .add(token, pos, &[0], true)
                .map_err(|e| inference("batch", &e))?;
            ctx.decode(&mut batch)
                .map_err(|e| inference("generation failed", &e))?;
            n_cur += 1;
        }
        if finish != FinishReason::StopSequence {
            let scanned = scanner.push(&utf8.finish());
            emit(scanned.emit, &mut text)?;
            if scanned.stopped {
                finish = FinishReason::StopSequence;
            } else {
                emit(scanner.finish(), &mut text)?;
            }
        }
        Ok(RunOutcome {
            text,
            finish,
            prompt_tokens: n_prompt,
            completion_tokens: generated,
        })
    }
}

struct RunOutcome {
    text: String,
    finish: FinishReason,
    prompt_tokens: usize,
    completion_tokens: usize,
}

fn time_seed() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0x5EED, |d| d.subsec_nanos() ^ (d.as_secs() as u32))
}

#[async_trait]
impl ModelBackend for EmbeddedBackend {
    fn describe(&self) -> BackendInfo {
        BackendInfo {
            backend: "embedded",
            model_id: self.inner.model_id.clone(),
            context_window: self.inner.context_window,
        }
    }

    fn count_tokens(&self, text: &str) -> usize {
        self.inner
            .model
            .vocab()
            .tokenize(text.as_bytes(), false, false)
            .len()
    }

    fn count_prompt_tokens(&self, messages: &[ChatMessage]) -> usize {
        match self.inner.render_prompt(messages) {
            Ok(prompt) => self.inner.tokenize_prompt(&prompt).len(),
            Err(_) => messages
                .iter()
                .map(|m| {
                    self.count_tokens(&m.content) + crate::backend::TEMPLATE_TOKENS_PER_MESSAGE
                })
                .sum(),
        }
    }

    async fn generate(
        &self,
        req: &ChatRequest,
        cancel: &CancellationToken,
        on_token: &mut (dyn for<'t> FnMut(&'t str) + Send),
    ) -> Result<Generation, ModelError> {
        req.validate()?;
        let started = Instant::now();
        // Cancelled when this future is dropped, so the blocking task stops too.
        let task_cancel = cancel.child_token();
        let _stop_on_drop = task_cancel.clone().drop_guard();

        let permit = tokio::select! {
            p = self.inner.permits.clone().acquire_owned() => {
                p.map_err(|_| ModelError::Unavailable("the embedded backend is shutting down".into()))?
            }
            () = cancel.cancelled() => return Err(ModelError::Cancelled),
        };
        let prompt = self.inner.render_prompt(&req.messages)?;
        let (tx, mut rx) = mpsc::channel::<String>(64);
        let inner = Arc::clone(&self.inner);
        let req_owned = req.clone();
        let blocking_cancel = task_cancel.clone();
        let handle = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            inner.run(&prompt, &req_owned, &blocking_cancel, &tx)
        });

        let mut first: Option<Duration> = None;
        while let Some(piece) = rx.recv().await {
            if task_cancel.is_cancelled() {
                // Stop forwarding at once; the blocking task notices at its next token.
                break;
            }
            if first.is_none() {
                first = Some(started.elapsed());
            }
            on_token(&piece);
        }
        drop(rx);
        let outcome = handle
            .await
            .map_err(|e| ModelError::Inference(format!("generation task failed: {e}")))??;
        let elapsed = started.elapsed();
        tracing::debug!(
            prompt_tokens = outcome.prompt_tokens,
            completion_tokens = outcome.completion_tokens,
            finish = ?outcome.finish,
            elapsed_ms = elapsed.as_millis(),
            "embedded generation done"
        );
        Ok(Generation {
            text: outcome.text,
            finish_reason: outcome.finish,
            prompt_tokens: outcome.prompt_tokens,
            completion_tokens: outcome.completion_tokens,
            time_to_first_token: first,
            elapsed,
        })
    }
}
