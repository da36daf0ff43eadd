//! `tandem model`: fetch the default model, and build the configured backend.

use anyhow::{anyhow, Context};
use clap::Subcommand;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use tandem_model::{
    pull_default_model, resolve_model_path, BackendKind, ModelBackend, ModelConfig,
    DEFAULT_MODEL_FILE,
};

use crate::config::Settings;

#[derive(Subcommand, Debug)]
pub enum ModelCommand {
    /// Download the default model (SmolLM2-135M-Instruct Q4_1) and check its sha256
    Pull {
        /// Directory to put it in [default: DATA_DIR/models]
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

pub async fn run(settings: &Settings, cmd: ModelCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ModelCommand::Pull { dir } => {
            let dir = dir.unwrap_or_else(|| settings.data_dir.join("models"));
            let path = pull(&dir).await?;
            // Absolute, so scripts can export it and use it from any directory.
            let path = std::fs::canonicalize(&path).unwrap_or(path);
            outln!("{}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Pulls the default model into `dir` with a progress bar on stderr.
pub async fn pull(dir: &Path) -> anyhow::Result<PathBuf> {
    let tty = std::io::stderr().is_terminal();
    let mut last_decile = u64::MAX;
    let mut progress = move |done: u64, total: u64| {
        let total = total.max(1);
        let pct = done.saturating_mul(100) / total;
        let mut err = std::io::stderr();
        if tty {
            let filled = usize::try_from(pct / 4).unwrap_or(25).min(25);
            let _ = write!(
                err,
                "\r  [{}{}] {pct:>3}%  {:.1}/{:.1} MB",
                "#".repeat(filled),
                " ".repeat(25 - filled),
                done as f64 / 1e6,
                total as f64 / 1e6
            );
        } else if pct / 10 != last_decile {
            last_decile = pct / 10;
            let _ = writeln!(err, "  {pct}% of {:.1} MB", total as f64 / 1e6);
        }
    };
    eprintln!(
        "Fetching the default model {DEFAULT_MODEL_FILE} into {}",
        dir.display()
    );
    let path = pull_default_model(dir, &mut progress)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    if tty {
        eprintln!();
    }
    eprintln!("Model ready (sha256 verified): {}", path.display());
    Ok(path)
}

/// Command-line overrides of the `[model]` section.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ModelArgs {
    /// Model backend: embedded (llama.cpp in-process) or openai (an OpenAI-compatible server)
    #[arg(long, value_parser = ["embedded", "openai"])]
    pub backend: Option<String>,
    /// The GGUF file (embedded) or the model name on the server (openai)
    #[arg(long)]
    pub model: Option<String>,
    /// Base URL of the OpenAI-compatible server, e.g. http://127.0.0.1:11434/v1
    #[arg(long)]
    pub base_url: Option<String>,
}

pub fn apply_overrides(mut cfg: ModelConfig, args: &ModelArgs) -> anyhow::Result<ModelConfig> {
    if let Some(b) = &args.backend {
        cfg.backend = if b == "openai" {
            BackendKind::OpenAi
        } else {
            BackendKind::Embedded
        };
    }
    match cfg.backend {
        BackendKind::Embedded => {
            if let Some(m) = &args.model {
                cfg.embedded.model_path = Some(PathBuf::from(m));
            }
        }
        BackendKind::OpenAi => {
            let mut oc = match cfg.openai.take() {
                Some(oc) => oc,
                None => {
                    let base = args.base_url.clone().ok_or_else(|| {
                        anyhow!("the openai backend needs --base-url (or [model.openai] base_url in the config)")
                    })?;
                    let model = args.model.clone().ok_or_else(|| {
                        anyhow!("the openai backend needs --model NAME (or [model.openai] model)")
                    })?;
                    tandem_model::OpenAiConfig::new(base, model)
                }
            };
            if let Some(b) = &args.base_url {
                oc.base_url = b.clone();
            }
            if let Some(m) = &args.model {
                oc.model = m.clone();
            }
            cfg.openai = Some(oc);
        }
    }
    Ok(cfg)
}

/// Builds the configured backend, pulling the default model first when it is the one
/// configured and it is not there yet.
pub async fn build(
    settings: &Settings,
    cfg: &ModelConfig,
) -> anyhow::Result<Arc<dyn ModelBackend>> {
    if cfg.backend == BackendKind::Embedded && cfg.embedded.model_path.is_none() {
        let path = resolve_model_path(None, &settings.data_dir);
        if !path.is_file() {
            let dir = path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| settings.data_dir.join("models"));
            pull(&dir).await?;
        }
    }
    cfg.build(&settings.data_dir)
        .await
        .map_err(|e| anyhow!("{e}"))
        .context("could not start the model backend")
}
