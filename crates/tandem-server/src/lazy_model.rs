//! A model backend that is filled in once the real one has loaded, so the server starts at
//! once: until then every generation fails as unavailable, and the engine answers with its
//! kind "I can't reply right now" text. Crisis responses never need the model.

use async_trait::async_trait;
use std::sync::{Arc, RwLock};
use tandem_model::{
    BackendInfo, CancellationToken, ChatRequest, Generation, ModelBackend, ModelError,
};

#[derive(Default)]
pub struct LazyBackend {
    inner: RwLock<Option<Arc<dyn ModelBackend>>>,
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

    pub fn is_loaded(&self) -> bool {
        self.get().is_some()
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
