//! `tandem serve`: open the store (creating the data directory and, on a brand-new
//! embedded install, the master key), build the safety engine, psychoeducation library,
//! measure registry and conversation engine, then serve the web application until a
//! shutdown signal.
//!
//! The model loads in the background so the server answers at once: until it is ready the
//! companion replies "I can't reply right now" (with crisis lines), and crisis responses
//! never need the model at all.

use anyhow::{anyhow, Context};
use secrecy::ExposeSecret;
use std::sync::Arc;
use std::time::Duration;
use tandem_companion::Library;
use tandem_engine::{Engine, EngineConfig};
use tandem_measures::Registry;
use tandem_server::{app, serve, shutdown_signal, AppState, LazyBackend, WebConfig};
use tandem_store::{redact_url, SqlStore, Store};

use crate::admin::{ensure_data_dir, open_store_with};
use crate::config::{Settings, DB_FILE};
use crate::safety;
use tandem_vault::MasterKey;

pub fn web_config(settings: &Settings) -> WebConfig {
    let mut cfg = WebConfig {
        locale: settings.locale.clone(),
        ..WebConfig::default()
    };
    if let Some(m) = settings.web.idle_timeout_minutes {
        cfg.idle_timeout = Duration::from_secs(m.max(1) * 60);
    }
    if let Some(h) = settings.web.absolute_lifetime_hours {
        cfg.absolute_lifetime = Duration::from_secs(h.max(1) * 3600);
    }
    if let Some(s) = settings.web.secure_cookies {
        cfg.secure_cookies = s;
    }
    if let Some(m) = settings.web.escalate_after_minutes {
        cfg.escalation.after = Duration::from_secs(m.max(1) * 60);
    }
    if let Some(s) = settings.web.escalation_check_seconds {
        cfg.escalation_check = Duration::from_secs(s.max(1));
    }
    cfg
}

pub async fn run(settings: &Settings) -> anyhow::Result<()> {
    ensure_data_dir(&settings.data_dir)?;
    let key = first_start_key(settings)?;
    let store: Arc<SqlStore> = Arc::new(open_store_with(settings, key).await?);
    let listener = tokio::net::TcpListener::bind(&settings.bind)
        .await
        .with_context(|| {
            format!(
                "could not listen on {}; is another program using that port? Choose another with --bind",
                settings.bind
            )
        })?;
    let addr = listener.local_addr()?;
    tracing::info!(
        database = %redact_url(settings.database_url.expose_secret()),
        backend = ?store.backend(),
        config = ?settings.config_file,
        crisis_locale = %settings.locale,
        "store ready"
    );

    let library = Library::load_default().map_err(|e| anyhow!("psychoeducation library: {e}"))?;
    let registry = Arc::new(Registry::builtin().map_err(|e| anyhow!("measure instruments: {e}"))?);
    let model = Arc::new(LazyBackend::new());
    let engine = Engine::new(
        store.clone(),
        Arc::new(safety::engine()?),
        model.clone(),
        Arc::new(library),
        EngineConfig {
            locale: settings.locale.clone(),
            ..EngineConfig::default()
        },
    );
    // AppState gives the engine the care services (due measures in replies).
    let state =
        AppState::new(engine, registry, web_config(settings)).with_lazy_model(model.clone());
    let loader = {
        let settings = settings.clone();
        let model = model.clone();
        tokio::spawn(async move {
            match crate::model::build(&settings, &settings.model).await {
                Ok(backend) => {
                    let info = backend.describe();
                    model.set(backend);
                    tracing::info!(backend = info.backend, model = %info.model_id, "model ready");
                }
                Err(e) => {
                    model.set_failed();
                    tracing::error!(
                        error = %format!("{e:#}"),
                        "the model could not be loaded; the companion will answer that it cannot reply (crisis responses still work)"
                    )
                }
            }
        })
    };

    // Printed on stdout so scripts (and the tests) can find the port when binding to :0.
    println!("Tandem listening on http://{addr}");
    let stop = state.shutdown.clone();
    let escalation = tandem_server::escalation::spawn_job(state.clone());
    let (router, _) = app(state);
    serve(listener, router, async move {
        shutdown_signal().await;
        // End live streams so graceful shutdown does not wait for them.
        stop.cancel();
    })
    .await?;
    loader.abort();
    escalation.abort();
    store.close().await;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// On the very first start of an embedded install (no key, no database yet) a master key
/// is generated, so `tandem serve` works with no setup. A missing key beside an existing
/// database is an error: a new key could not read the data.
fn first_start_key(settings: &Settings) -> anyhow::Result<MasterKey> {
    match MasterKey::load(&settings.master_key_file) {
        Ok(k) => Ok(k),
        Err(tandem_vault::KeyFileError::Missing { .. })
            if settings.is_default_sqlite() && !settings.data_dir.join(DB_FILE).exists() =>
        {
            let key = MasterKey::generate();
            key.write_new(&settings.master_key_file)?;
            eprintln!(
                "First start: created master key {} (mode 0600). Back it up apart from the database.",
                settings.master_key_file.display()
            );
            Ok(key)
        }
        Err(e) => Err(e.into()),
    }
}
