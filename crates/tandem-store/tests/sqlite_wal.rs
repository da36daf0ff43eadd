//! SQLite keeps checkpoints off the request path: writes go to the write-ahead log, the
//! store's background checkpointer folds it into the database file, and closing the store
//! leaves one self-contained file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};
use tandem_domain::{Role, Username};
use tandem_store::{Actor, NewUser, SqlStore, Store};
use tandem_vault::MasterKey;

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_reaches_the_database_file_in_the_background_and_on_close() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let wal = dir.path().join("t.db-wal");
    let url = format!("sqlite://{}?mode=rwc", db.display());
    let store = SqlStore::open(&url, MasterKey::generate()).await.unwrap();
    store
        .create_user(
            &Actor::system("test"),
            NewUser {
                username: Username::parse("walrus-keeper").unwrap(),
                role: Role::Clinician,
                password_hash: "x".into(),
            },
        )
        .await
        .unwrap();
    // Usernames are stored in clear; wait (bounded) until the row is in the main file.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !contains(&std::fs::read(&db).unwrap(), b"walrus-keeper") {
        assert!(
            Instant::now() < deadline,
            "the background checkpointer never copied the log into the database file"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    store.close().await;
    let left = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(left, 0, "closing truncates the write-ahead log");
}
