//! Password hashing with argon2id (the `argon2` crate's default parameters, which follow
//! RFC 9106's recommendations for memory-constrained servers).

use argon2::password_hash::{rand_core::OsRng, PasswordHash, SaltString};
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use std::sync::LazyLock;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password must be at least {0} characters")]
    TooShort(usize),
    #[error("password must be at most 1024 characters")]
    TooLong,
    #[error("password hashing failed")]
    Hash,
}

/// A real argon2id hash with the same parameters as live ones, computed once, so that a
/// login for a missing account costs the same as one for a real account.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    SaltString::from_b64("dGFuZGVtZHVtbXlzYWx0")
        .ok()
        .and_then(|salt| {
            Argon2::default()
                .hash_password(b"tandem-dummy-password", &salt)
                .ok()
                .map(|h| h.to_string())
        })
        .unwrap_or_default()
});

pub const MIN_PASSWORD_LEN: usize = 10;

/// Hashes a new password. Slow on purpose: call it off the async runtime.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_LEN {
        return Err(PasswordError::TooShort(MIN_PASSWORD_LEN));
    }
    if n > 1024 {
        return Err(PasswordError::TooLong);
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| PasswordError::Hash)
}

/// Checks a password. With `stored = None` (no such account) it verifies against a fixed
/// dummy hash anyway, so the time taken does not reveal whether the account exists.
pub fn verify_password(stored: Option<&str>, password: &str) -> bool {
    let (hash, real) = match stored {
        Some(h) => (h, true),
        None => (DUMMY_HASH.as_str(), false),
    };
    let ok = PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false);
    ok && real
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_reject() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(Some(&h), "correct horse battery"));
        assert!(!verify_password(Some(&h), "wrong horse battery"));
        assert!(!verify_password(None, "correct horse battery"));
        assert!(DUMMY_HASH.starts_with("$argon2id$"));
        assert!(matches!(
            hash_password("short"),
            Err(PasswordError::TooShort(_))
        ));
    }
}
