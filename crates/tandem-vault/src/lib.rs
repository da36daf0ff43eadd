//! Encryption at rest for Tandem.
//!
//! * A **master key** (32 random bytes) lives in a file outside the database, mode 0600.
//! * Each patient has a **data key**; it is stored only wrapped (sealed) by the master key,
//!   with the patient id as associated data, so a wrapped key cannot be moved to another
//!   patient. Destroying the wrapped key makes that patient's data unreadable everywhere it
//!   was copied to, as long as the master key that wrapped it is also retired
//!   (`tandem keys rotate` after an erasure does that for old backups).
//! * Every field a person writes is sealed with XChaCha20-Poly1305 under the patient's data
//!   key, with associated data naming the table, column and row, so ciphertexts cannot be
//!   swapped between rows or columns without failing to open.
//!
//! Blob layout: one version byte (`1`), the 24-byte nonce, then ciphertext and tag.
//! This crate never logs, and keys never appear in `Debug` output.

mod keys;
mod password;

pub use keys::{DataKey, KeyFileError, MasterKey, VaultError};
pub use password::{hash_password, verify_password, PasswordError};

/// Associated data binding a sealed field to where it is stored.
pub fn field_ad(table: &str, column: &str, row_id: &str, patient_id: &str) -> Vec<u8> {
    format!("tandem:v1:{table}.{column}:{row_id}:{patient_id}").into_bytes()
}
