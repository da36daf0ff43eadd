//! A scripted backend for tests of prompt plumbing and of the conversation engine: it replies
//! with fixed text, streamed word by word, and records the requests it saw.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::backend::ModelBackend;
use crate::text::StopScanner;
use crate::types::{BackendInfo, ChatRequest, FinishReason, Generation, ModelError};

/// What the fake does on each call.
#[derive(Debug, Clone)]
pub enum FakeReply {
    /// Stream this text, split after each space.
    Text(String),
    /// Fail with [`ModelError::Unavailable`].
    Unavailable,
    /// Never answer until cancelled (a hung server).
    Hang,
}

/// A test double for [`ModelBackend`].
#[derive(Debug)]
pub struct FakeBackend {
    replies: Mutex<Vec<FakeReply>>,
    seen: Mutex<Vec<ChatRequest>>,
    context_window: u32,
}

impl FakeBackend {
    /// Replies in order; the last one repeats.
    #[must_use]
    pub fn new(replies: Vec<FakeReply>) -> Self {
        Self {
            replies: Mutex::new(replies),
            seen: Mutex::new(Vec::new()),
            context_window: 2048,
        }
    }

    /// Always replies with `text`.
    pub fn always(text: impl Into<String>) -> Self {
        Self::new(vec![FakeReply::Text(text.into())])
    }

    /// The requests received so far.
    #[must_use]
    pub fn requests(&self) -> Vec<ChatRequest> {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn next_reply(&self) -> FakeReply {
        let mut replies = self
            .replies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if replies.len() > 1 {
            replies.remove(0)
        } else {
            replies
                .first()
                .cloned()
                .unwrap_or(FakeReply::Text(String::new()))
        }
    }
}

#[async_trait]
impl ModelBackend for FakeBackend {
    fn describe(&self) -> BackendInfo {
        BackendInfo {
            backend: "fake",
            model_id: "fake".into(),
            context_window: self.context_window,
        }
    }

    async fn generate(
        &self,
        req: &ChatRequest,
        cancel: &CancellationToken,
        on_token: &mut (dyn for<'t> FnMut(&'t str) + Send),
    ) -> Result<Generation, ModelError> {
        req.validate()?;
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(req.clone());
        let started = Instant::now();
        let text = match self.next_reply() {
            FakeReply::Text(t) => t,
            FakeReply::Unavailable => {
                return Err(ModelError::Unavailable("fake backend is down".into()))
            }
            FakeReply::Hang => {
                cancel.cancelled().await;
                return Err(ModelError::Cancelled);
            }
        };
        let mut scanner = StopScanner::new(&req.stop);
        let mut out = String::new();
        let mut first = None;
        let mut finish = FinishReason::Stop;
        let max = usize::try_from(req.max_tokens).unwrap_or(usize::MAX);
        let mut count = 0;
        for word in text.split_inclusive(' ') {
            if cancel.is_cancelled() {
                return Err(ModelError::Cancelled);
            }
            if count == max {
                finish = FinishReason::Length;
                break;
            }
            count += 1;
            let scanned = scanner.push(word);
            if !scanned.emit.is_empty() {
                first.get_or_insert_with(|| started.elapsed());
                out.push_str(&scanned.emit);
                on_token(&scanned.emit);
            }
            if scanned.stopped {
                finish = FinishReason::StopSequence;
                break;
            }
            tokio::task::yield_now().await;
        }
        if finish != FinishReason::StopSequence {
            let rest = scanner.finish();
            if !rest.is_empty() {
                out.push_str(&rest);
                on_token(&rest);
            }
        }
        Ok(Generation {
            text: out,
            finish_reason: finish,
            prompt_tokens: self.count_prompt_tokens(&req.messages),
            completion_tokens: count,
            time_to_first_token: first,
            elapsed: started.elapsed().max(Duration::from_nanos(1)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ChatMessage;

    #[tokio::test]
    async fn fake_streams_words_and_honours_stop_and_max_tokens() {
        let fake = FakeBackend::always("one two three STOP four");
        let mut req = ChatRequest::new(vec![ChatMessage::user("hi")]);
        req.stop = vec!["STOP".into()];
        let mut pieces = Vec::new();
        let g = fake
            .generate(&req, &CancellationToken::new(), &mut |p| {
                pieces.push(p.to_owned())
            })
            .await
            .unwrap();
        assert_eq!(g.text, "one two three ");
        assert_eq!(pieces.concat(), g.text);
        assert_eq!(g.finish_reason, FinishReason::StopSequence);

        req.stop.clear();
        req.max_tokens = 2;
        let g = fake
            .generate(&req, &CancellationToken::new(), &mut |_| {})
            .await
            .unwrap();
        assert_eq!(g.text, "one two ");
        assert_eq!(g.finish_reason, FinishReason::Length);
        assert_eq!(fake.requests().len(), 2);
    }

    #[tokio::test]
    async fn invalid_requests_are_rejected_before_generation() {
        let fake = FakeBackend::always("x");
        let req = ChatRequest::new(vec![]);
        let err = fake
            .generate(&req, &CancellationToken::new(), &mut |_| {})
            .await
            .unwrap_err();
        assert!(matches!(err, ModelError::InvalidRequest(_)));
        assert!(fake.requests().is_empty());
    }

    #[tokio::test]
    async fn hang_ends_on_cancel() {
        let fake = FakeBackend::new(vec![FakeReply::Hang]);
        let cancel = CancellationToken::new();
        let req = ChatRequest::new(vec![ChatMessage::user("hi")]);
        let c2 = cancel.clone();
        tokio::spawn(async move { c2.cancel() });
        let err = fake.generate(&req, &cancel, &mut |_| {}).await.unwrap_err();
        assert!(matches!(err, ModelError::Cancelled));
    }

    #[test]
    fn debug_output_never_contains_message_text() {
        let req = ChatRequest::new(vec![ChatMessage::user("my secret worry")]);
        let dbg = format!("{req:?}");
        assert!(!dbg.contains("secret"), "{dbg}");
    }
}
