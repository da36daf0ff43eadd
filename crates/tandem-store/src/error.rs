//! Storage errors. Callers match on the kinds they handle (not found, conflict, invalid);
//! everything else says what went wrong and what to do, and never carries personal data.

use tandem_vault::VaultError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the master key (id {given}) is not the one that wrapped the data keys (id {stored}); point master_key_file at the right key file")]
    WrongMasterKey { given: String, stored: String },
    #[error(
        "stored data could not be decrypted ({0}); the database row may have been tampered with"
    )]
    Crypto(#[from] VaultError),
    #[error("could not connect to the database at {url}: {source}. Check database_url and that the database server is running")]
    Connect { url: String, source: sqlx::Error },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored data is malformed: {0}")]
    Corrupt(String),
}

impl StoreError {
    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        StoreError::NotFound(what.into())
    }
}
