//! A model backend that is filled in once the real one has loaded, so the server starts at
//! once: until then every generation fails as unavailable, and the engine answers with its
//! kind "I can't reply right now" text. Crisis responses never need the model.

use async_trait::async_trait;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use tandem_model::{
    BackendInfo, CancellationToken, ChatRequest, Generation, ModelBackend, ModelError,
};

#[derive(Default)]
pub struct LazyBackend {
    inner: RwLock<Option<Arc<dyn ModelBackend>>>,
    failed: AtomicBool,
}

/// Where the model is, as `/readyz` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelState {
    Loading,
    Ready,
    /// Loading failed: the companion answers that it cannot reply until a restart.
    Failed,
}

impl LazyBackend {
    pub fn new() -> LazyBackend {
        LazyBackend::default()
    }

    /// Installs the loaded backend.
    pub fn set(&self, backend: Arc<dyn ModelBackend>) {
        match self.inner.write() {
            Ok(mut g) => *g = Some(backend),
            Err(p) => *p.into_inner() = Some(backend),
        }
    }

    /// Records that loading failed (the reason is in the log).
    pub fn set_failed(&self) {
        self.failed.store(true, Ordering::SeqCst);
    }

    pub fn is_loaded(&self) -> bool {
        self.get().is_some()
    }

    pub fn state(&self) -> ModelState {
        if self.is_loaded() {
            ModelState::Ready
        } else if self.failed.load(Ordering::SeqCst) {
            ModelState::Failed
        } else {
            ModelState::Loading
        }
    }

    fn get(&self) -> Option<Arc<dyn ModelBackend>> {
        match self.inner.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
}

#[async_trait]
impl ModelBackend for LazyBackend {
    fn describe(&self) -> BackendInfo {
        match self.get() {
            Some(b) => b.describe(),
            None => BackendInfo {
                backend: "loading",
                model_id: "not loaded yet".into(),
                context_window: 2048,
            },
        }
    }

    fn count_tokens(&self, text: &str) -> usize {
        match self.get() {
            Some(b) => b.count_tokens(text),
            None => tandem_model::estimate_tokens(text),
        }
    }

    async fn generate(
        &self,
        req: &ChatRequest,
        cancel: &CancellationToken,
        on_token: &mut (dyn for<'t> FnMut(&'t str) + Send),
    ) -> Result<Generation, ModelError> {
        match self.get() {
            Some(b) => b.generate(req, cancel, on_token).await,
            None => Err(ModelError::Unavailable("the model is still loading".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_goes_from_loading_to_ready_or_failed() {
        let lazy = LazyBackend::new();
        assert_eq!(lazy.state(), ModelState::Loading);
        lazy.set_failed();
        assert_eq!(lazy.state(), ModelState::Failed);
        let lazy = LazyBackend::new();
        lazy.set(Arc::new(tandem_model::fake::FakeBackend::always("hi")));
        assert_eq!(lazy.state(), ModelState::Ready);
        assert_eq!(
            serde_json::to_value(ModelState::Loading).unwrap_or_default(),
            "loading"
        );
    }
}
