use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use std::fmt;
use std::io::Write;
use std::path::Path;
use zeroize::{Zeroize, ZeroizeOnDrop};

const BLOB_VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const KEY_FILE_HEADER: &str =
    "# tandem master key v1: keep this file secret and backed up apart from the database";

/// Sealing or opening failed.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("encrypted data could not be opened: it was altered, moved to another row, or sealed with a different key")]
    Open,
    #[error("encrypted data has an unknown format (version byte {0}); was it written by a newer Tandem?")]
    Format(u8),
    #[error("encrypted data is truncated")]
    Truncated,
    #[error("encryption failed")]
    Seal,
}

/// Loading or writing the master key file failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("master key file {path} does not exist; run `tandem init` to create one, or set master_key_file in the config")]
    Missing { path: String },
    #[error("master key file {path} already exists; refusing to overwrite it (that would make existing data unreadable)")]
    Exists { path: String },
    #[error(
        "master key file {path} is not a valid Tandem key ({why}); restore it from your backup"
    )]
    Corrupt { path: String, why: &'static str },
    #[error("could not {op} master key file {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        source: std::io::Error,
    },
}

/// 32 bytes that wrap every patient's data key. Zeroed on drop; `Debug` shows only its id.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MasterKey([u8; 32]);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey(id={}, <redacted>)", self.id())
    }
}

impl MasterKey {
    pub fn generate() -> Self {
        MasterKey(XChaCha20Poly1305::generate_key(&mut OsRng).into())
    }

    /// A short public fingerprint, stored beside each wrapped key so a wrong key file is
    /// reported as such instead of as corrupt data.
    pub fn id(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"tandem-master-key-id");
        h.update(self.0);
        hex::encode(&h.finalize()[..8])
    }

    /// Reads a key file written by [`MasterKey::write_new`].
    pub fn load(path: &Path) -> Result<Self, KeyFileError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                KeyFileError::Missing {
                    path: shown.clone(),
                }
            } else {
                KeyFileError::Io {
                    op: "read",
                    path: shown.clone(),
                    source: e,
                }
            }
        })?;
        Self::parse(&text).map_err(|why| KeyFileError::Corrupt { path: shown, why })
    }

    fn parse(text: &str) -> Result<Self, &'static str> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .ok_or("no key line")?;
        let mut bytes = hex::decode(line).map_err(|_| "the key line is not hexadecimal")?;
        if bytes.len() != 32 {
            bytes.zeroize();
            return Err("the key must be 32 bytes (64 hex digits)");
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(&bytes);
        bytes.zeroize();
        Ok(MasterKey(key))
    }

    /// Writes the key to a new file with mode 0600. Never overwrites an existing file.
    pub fn write_new(&self, path: &Path) -> Result<(), KeyFileError> {
        let shown = path.display().to_string();
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                KeyFileError::Exists {
                    path: shown.clone(),
                }
            } else {
                KeyFileError::Io {
                    op: "create",
                    path: shown.clone(),
                    source: e,
                }
            }
        })?;
        let mut body = format!("{KEY_FILE_HEADER}\n{}\n", hex::encode(self.0));
        let res = f.write_all(body.as_bytes()).and_then(|_| f.sync_all());
        body.zeroize();
        res.map_err(|e| KeyFileError::Io {
            op: "write",
            path: shown,
            source: e,
        })
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.0).into())
    }
}

/// A patient's data key. Zeroed on drop; never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DataKey([u8; 32]);

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

impl DataKey {
    pub fn generate() -> Self {
        DataKey(XChaCha20Poly1305::generate_key(&mut OsRng).into())
    }

    /// Seals this key under the master key, bound to the patient it belongs to.
    pub fn wrap(&self, master: &MasterKey, patient_id: &str) -> Result<Vec<u8>, VaultError> {
        seal_with(&master.cipher(), &wrap_ad(patient_id), &self.0)
    }

    pub fn unwrap_from(
        blob: &[u8],
        master: &MasterKey,
        patient_id: &str,
    ) -> Result<Self, VaultError> {
        let mut bytes = open_with(&master.cipher(), &wrap_ad(patient_id), blob)?;
        if bytes.len() != 32 {
            bytes.zeroize();
            return Err(VaultError::Open);
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(&bytes);
        bytes.zeroize();
        Ok(DataKey(key))
    }

    /// Encrypts `plaintext`; `ad` should come from [`crate::field_ad`].
    pub fn seal(&self, ad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
        seal_with(&XChaCha20Poly1305::new((&self.0).into()), ad, plaintext)
    }

    pub fn open(&self, ad: &[u8], blob: &[u8]) -> Result<Vec<u8>, VaultError> {
        open_with(&XChaCha20Poly1305::new((&self.0).into()), ad, blob)
    }
}

fn wrap_ad(patient_id: &str) -> Vec<u8> {
    format!("tandem:v1:data-key:{patient_id}").into_bytes()
}

fn seal_with(c: &XChaCha20Poly1305, ad: &[u8], msg: &[u8]) -> Result<Vec<u8>, VaultError> {
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let ct = c
        .encrypt(&nonce, Payload { msg, aad: ad })
        .map_err(|_| VaultError::Seal)?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
    out.push(BLOB_VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

fn open_with(c: &XChaCha20Poly1305, ad: &[u8], blob: &[u8]) -> Result<Vec<u8>, VaultError> {
    let (&version, rest) = blob.split_first().ok_or(VaultError::Truncated)?;
    if version != BLOB_VERSION {
        return Err(VaultError::Format(version));
    }
    if rest.len() < NONCE_LEN + 16 {
        return Err(VaultError::Truncated);
    }
    let (nonce, ct) = rest.split_at(NONCE_LEN);
    c.decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: ad })
        .map_err(|_| VaultError::Open)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field_ad;

    #[test]
    fn sealed_fields_open_only_at_their_own_row() {
        let k = DataKey::generate();
        let ad = field_ad("messages", "body", "row-1", "p1");
        let blob = k.seal(&ad, b"I feel low today").unwrap();
        assert_eq!(k.open(&ad, &blob).unwrap(), b"I feel low today");
        let other_row = field_ad("messages", "body", "row-2", "p1");
        assert!(matches!(k.open(&other_row, &blob), Err(VaultError::Open)));
        let mut tampered = blob.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(k.open(&ad, &tampered).is_err());
        assert!(matches!(
            k.open(&ad, &blob[..10]),
            Err(VaultError::Truncated)
        ));
    }

    #[test]
    fn wrapped_keys_are_bound_to_patient_and_master() {
        let m = MasterKey::generate();
        let k = DataKey::generate();
        let w = k.wrap(&m, "p1").unwrap();
        let back = DataKey::unwrap_from(&w, &m, "p1").unwrap();
        let ad = b"x";
        assert_eq!(back.open(ad, &k.seal(ad, b"hi").unwrap()).unwrap(), b"hi");
        assert!(DataKey::unwrap_from(&w, &m, "p2").is_err());
        assert!(DataKey::unwrap_from(&w, &MasterKey::generate(), "p1").is_err());
    }

    #[test]
    fn key_files_round_trip_refuse_overwrite_and_report_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let m = MasterKey::generate();
        m.write_new(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(MasterKey::load(&path).unwrap().id(), m.id());
        assert!(matches!(
            MasterKey::generate().write_new(&path),
            Err(KeyFileError::Exists { .. })
        ));
        std::fs::write(dir.path().join("bad.key"), "zz\n").unwrap();
        assert!(matches!(
            MasterKey::load(&dir.path().join("bad.key")),
            Err(KeyFileError::Corrupt { .. })
        ));
        assert!(matches!(
            MasterKey::load(&dir.path().join("none.key")),
            Err(KeyFileError::Missing { .. })
        ));
        assert!(!format!("{m:?}").contains(&hex::encode(m.0)));
    }
}
