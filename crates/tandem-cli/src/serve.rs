//! `tandem serve`: open the store (creating the data directory and, on a brand-new
//! embedded install, the master key), then serve until a shutdown signal.

use anyhow::Context;
use secrecy::ExposeSecret;
use std::sync::Arc;
use tandem_server::{router, serve, shutdown_signal, AppState};
use tandem_store::{redact_url, SqlStore, Store};

use crate::admin::{ensure_data_dir, open_store_with};
use crate::config::{Settings, DB_FILE};
use tandem_vault::MasterKey;

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
    // Printed on stdout so scripts (and the tests) can find the port when binding to :0.
    println!("Tandem listening on http://{addr}");
    let app = router(AppState {
        store: store.clone(),
    });
    serve(listener, app, shutdown_signal()).await?;
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
