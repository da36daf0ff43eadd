//! Configuration in layers: built-in defaults, then a TOML file, then `TANDEM_`
//! environment variables, then command-line flags. Unknown keys are errors, so a typo
//! never silently falls back to a default. Secrets (`database_url`, `model.api_key`) are
//! `SecretString`s: their `Debug` output is redacted and they are never logged.

use anyhow::{bail, Context};
use figment::providers::{Env, Format, Toml};
use figment::Figment;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub const CONFIG_FILE: &str = "tandem.toml";
pub const KEY_FILE: &str = "master.key";
pub const DB_FILE: &str = "tandem.db";
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";

/// The file and environment layers, as written. Every field is optional: what is absent
/// falls back to the layer below.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layered {
    pub data_dir: Option<PathBuf>,
    pub bind: Option<String>,
    pub database_url: Option<SecretString>,
    pub master_key_file: Option<PathBuf>,
    #[serde(default)]
    pub safety: SafetyLayer,
    #[serde(default)]
    pub model: tandem_model::ModelConfig,
    #[serde(default)]
    pub web: WebLayer,
}

/// The `[web]` section: sign-in sessions and cookies.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebLayer {
    /// Sign out after this many minutes without a request (default 30).
    pub idle_timeout_minutes: Option<u64>,
    /// Sign out after this many hours whatever the activity (default 12).
    pub absolute_lifetime_hours: Option<u64>,
    /// Always mark the session cookie `Secure` (default: only when the request came over
    /// HTTPS, as told by `X-Forwarded-Proto: https`).
    pub secure_cookies: Option<bool>,
    /// Escalate a crisis alert to the on-call clinicians when nobody acknowledged it within
    /// this many minutes (default 15).
    pub escalate_after_minutes: Option<u64>,
    /// How often the escalation job looks for overdue alerts, in seconds (default 30).
    pub escalation_check_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SafetyLayer {
    /// Which crisis resources to show: en-US, en-GB, en-CA, en-IE, en-AU, es, fr.
    pub locale: Option<String>,
}

/// The settings every command runs with, after all layers.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub bind: String,
    pub database_url: SecretString,
    pub master_key_file: PathBuf,
    pub locale: String,
    pub model: tandem_model::ModelConfig,
    pub web: WebLayer,
    /// The config file that was read, if any.
    pub config_file: Option<PathBuf>,
}

impl Settings {
    pub fn is_default_sqlite(&self) -> bool {
        self.database_url.expose_secret() == default_db_url(&self.data_dir)
    }
}

/// Where data lives when nothing says otherwise: `$XDG_DATA_HOME/tandem`, else
/// `~/.local/share/tandem`, else `./tandem-data`.
pub fn default_data_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("tandem");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(h).join(".local/share/tandem");
    }
    PathBuf::from("tandem-data")
}

pub fn default_db_url(data_dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", data_dir.join(DB_FILE).display())
}

/// Flags that override every other layer.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub config: Option<PathBuf>,
    pub bind: Option<String>,
}

/// Environment variables that start with `TANDEM_` but are not settings.
fn is_setting_env(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    // TANDEM_MODEL_PATH points the model tests and benchmarks at a GGUF file.
    !(key.starts_with("test_") || key == "log" || key == "model_path")
}

pub fn load(over: &Overrides) -> anyhow::Result<Settings> {
    // The data directory decides where the default config file is, so resolve it first
    // from the flag or the environment.
    let env_dir = std::env::var_os("TANDEM_DATA_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let early_dir = over
        .data_dir
        .clone()
        .or(env_dir)
        .unwrap_or_else(default_data_dir);
    let config_file = match &over.config {
        Some(path) => {
            if !path.is_file() {
                bail!(
                    "config file {} does not exist; create it with `tandem init` or fix the --config path",
                    path.display()
                );
            }
            Some(path.clone())
        }
        None => {
            let p = early_dir.join(CONFIG_FILE);
            p.is_file().then_some(p)
        }
    };
    let mut fig = Figment::new();
    if let Some(path) = &config_file {
        fig = fig.merge(Toml::file_exact(path));
    }
    fig = fig.merge(
        Env::prefixed("TANDEM_")
            .split("__")
            .filter(|k| is_setting_env(k.as_str())),
    );
    let layered: Layered = fig.extract().map_err(|e| {
        anyhow::anyhow!(
            "invalid configuration: {e}. See the commented file that `tandem init` writes for every key"
        )
    })?;
    resolve(layered, over, early_dir, config_file)
}

fn resolve(
    l: Layered,
    over: &Overrides,
    early_dir: PathBuf,
    config_file: Option<PathBuf>,
) -> anyhow::Result<Settings> {
    let data_dir = over.data_dir.clone().or(l.data_dir).unwrap_or(early_dir);
    let bind = over
        .bind
        .clone()
        .or(l.bind)
        .unwrap_or_else(|| DEFAULT_BIND.to_string());
    bind.parse::<std::net::SocketAddr>()
        .with_context(|| format!("bind address {bind:?} is not HOST:PORT, e.g. 127.0.0.1:8080"))?;
    let database_url = l
        .database_url
        .unwrap_or_else(|| SecretString::from(default_db_url(&data_dir)));
    let master_key_file = l.master_key_file.unwrap_or_else(|| data_dir.join(KEY_FILE));
    let locale = l.safety.locale.unwrap_or_else(|| "en-US".to_string());
    Ok(Settings {
        data_dir,
        bind,
        database_url,
        master_key_file,
        locale,
        model: l.model,
        web: l.web,
        config_file,
    })
}

/// The commented file `tandem init` writes.
pub fn template(data_dir: &Path) -> String {
    format!(
        r#"# Tandem configuration.
# Layers, lowest first: built-in defaults, this file, TANDEM_* environment variables
# (nested keys with a double underscore, e.g. TANDEM_SAFETY__LOCALE=en-GB), then flags.
# Unknown keys are an error.

# Where Tandem keeps its SQLite database, master key and model files.
# data_dir = "{dir}"

# Address the web server listens on. Put a TLS-terminating proxy in front of it
# before exposing it beyond this machine.
# bind = "{bind}"

# The database. Default: a SQLite file in data_dir. For several server instances use
# PostgreSQL, e.g. "postgres://tandem:PASSWORD@db.internal:5432/tandem"
# (better: set TANDEM_DATABASE_URL in the environment so the password is not in a file).
# database_url = "{db}"

# The master key that wraps every patient's data key. Keep it OUTSIDE database backups
# and back it up separately: without it the data cannot be read.
# master_key_file = "{key}"

[model]
# "embedded" (default: llama.cpp in-process with the small default model, pulled on first
# start) or "openai" (any OpenAI-compatible server: Ollama, vLLM, llama.cpp server).
# The default model (SmolLM2-135M-Instruct) is fluent but shallow; for real use serve a
# 3B-8B instruct model, e.g. with Ollama:
#   backend = "openai"
#   [model.openai]
#   base_url = "http://127.0.0.1:11434/v1"
#   model = "qwen2.5:7b-instruct"
#   (api_key: set TANDEM_MODEL__OPENAI__API_KEY in the environment, not here)
# backend = "embedded"

[model.embedded]
# model_path = "{models}/SmolLM2-135M-Instruct.Q4_1.gguf"
# threads = 2

[web]
# Sign out after this many minutes without activity, and after this many hours in any case.
# idle_timeout_minutes = 30
# absolute_lifetime_hours = 12
# Always mark the session cookie Secure. Without this it is Secure when the proxy in front
# sends X-Forwarded-Proto: https.
# secure_cookies = false
# A crisis alert nobody on the care team acknowledged within this many minutes goes to the
# clinicians on call (`tandem team on-call --clinician NAME`); checked every N seconds.
# escalate_after_minutes = 15
# escalation_check_seconds = 30

[safety]
# Which crisis lines the fixed crisis response shows: en-US, en-GB, en-CA, en-IE, en-AU, es, fr.
# locale = "en-US"
"#,
        dir = data_dir.display(),
        bind = DEFAULT_BIND,
        db = default_db_url(data_dir),
        key = data_dir.join(KEY_FILE).display(),
        models = data_dir.join("models").display(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_parses_and_unknown_keys_are_rejected() {
        let t = template(Path::new("/tmp/x"));
        let l: Layered = Figment::new().merge(Toml::string(&t)).extract().unwrap();
        assert!(l.bind.is_none());
        let bad: Result<Layered, _> = Figment::new()
            .merge(Toml::string("bnd = \"1.2.3.4:5\""))
            .extract();
        assert!(bad.unwrap_err().to_string().contains("bnd"));
    }

    #[test]
    fn flags_beat_the_file_and_defaults_fill_the_rest() {
        let l: Layered = Figment::new()
            .merge(Toml::string(
                "bind = \"127.0.0.1:9000\"\ndatabase_url = \"postgres://u:pw@h/d\"",
            ))
            .extract()
            .unwrap();
        let over = Overrides {
            bind: Some("127.0.0.1:9100".into()),
            ..Default::default()
        };
        let s = resolve(l, &over, PathBuf::from("/d"), None).unwrap();
        assert_eq!(s.bind, "127.0.0.1:9100");
        assert_eq!(s.master_key_file, PathBuf::from("/d/master.key"));
        assert!(
            !format!("{s:?}").contains("pw@"),
            "secrets are redacted in Debug"
        );
        assert!(!s.is_default_sqlite());
    }

    #[test]
    fn bad_bind_addresses_are_explained() {
        let over = Overrides {
            bind: Some("localhost".into()),
            ..Default::default()
        };
        let err = resolve(Layered::default(), &over, PathBuf::from("/d"), None).unwrap_err();
        assert!(err.to_string().contains("HOST:PORT"));
    }
}
