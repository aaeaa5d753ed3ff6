//! The key file of the embedded store: 32 random bytes next to the database (`cashout.key`
//! beside `cashout.sqlite3`), created once with mode 0600, never logged. It wraps the data key
//! of every sealed secret; losing it loses every secret it sealed, so it is backed up with the
//! database (`docs/store.md`).

use std::io::Write;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{DataKey, NONCE_LEN, Sealed, SealingError, decrypt, encrypt, header};

/// The key of a key file (or of a process, for tests).
pub struct KeyFile {
    /// First 8 bytes of a SHA-256 of the key, in hex: names the key in sealed texts without
    /// revealing it, so that a wrong key file is recognised as such.
    id: String,
    key: DataKey,
}

fn key_file_error(path: &Path, message: impl Into<String>) -> SealingError {
    SealingError::KeyFile {
        path: path.to_owned(),
        message: message.into(),
    }
}

impl KeyFile {
    fn from_bytes(key: DataKey) -> KeyFile {
        let digest = Sha256::new_with_prefix(b"cashout key id\0")
            .chain_update(key.as_slice())
            .finalize();
        KeyFile {
            id: digest[..8].iter().map(|b| format!("{b:02x}")).collect(),
            key,
        }
    }

    /// A fresh key kept in memory only.
    pub(crate) fn in_memory() -> KeyFile {
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&Aes256Gcm::generate_key(OsRng));
        KeyFile::from_bytes(key)
    }

    /// The key in `path`, or `None` if there is no such file. A file that is not exactly 32
    /// bytes is an error (damaged, or not a key), never replaced.
    pub fn load(path: &Path) -> Result<Option<KeyFile>, SealingError> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => Zeroizing::new(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(key_file_error(path, format!("cannot be read: {e}"))),
        };
        let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            key_file_error(
                path,
                format!(
                    "holds {} bytes, not a 32-byte key: damaged, or not cashout's key file (restore it from its backup)",
                    bytes.len()
                ),
            )
        })?;
        warn_if_readable_by_others(path);
        Ok(Some(KeyFile::from_bytes(Zeroizing::new(key))))
    }

    /// Creates the key file at `path` with a new random key (mode 0600), or loads the one another
    /// process created meanwhile. The key is written to a temporary file first and linked to
    /// `path` only when complete, so no reader ever sees half a key and an existing file is
    /// never overwritten.
    pub fn create(path: &Path) -> Result<KeyFile, SealingError> {
        let fresh = KeyFile::in_memory();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| key_file_error(path, format!("cannot create its directory: {e}")))?;
        }
        let temporary = temporary_path(path);
        let written = write_private(&temporary, fresh.key.as_slice());
        let linked = written.and_then(|()| std::fs::hard_link(&temporary, path));
        let _ = std::fs::remove_file(&temporary);
        match linked {
            Ok(()) => {
                sync_parent(path);
                tracing::info!(path = %path.display(), key = %fresh.id, "created the key file of signing secrets");
                Ok(fresh)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                KeyFile::load(path)?.ok_or_else(|| key_file_error(path, "vanished while it was being created"))
            }
            Err(e) => Err(key_file_error(path, format!("cannot be created: {e}"))),
        }
    }

    /// [`Self::load`], or [`Self::create`] where there is none.
    pub fn load_or_create(path: &Path) -> Result<KeyFile, SealingError> {
        match KeyFile::load(path)? {
            Some(key) => Ok(key),
            None => KeyFile::create(path),
        }
    }

    /// The key's fingerprint (not the key).
    pub fn id(&self) -> &str {
        &self.id
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(self.key.as_slice()))
    }

    fn wrapping_aad(&self) -> Vec<u8> {
        format!("cashout data key|file:{}", self.id).into_bytes()
    }

    /// Seals with a new data key wrapped by this key (nonce, then the encrypted data key).
    pub(crate) fn seal(&self, plaintext: &str, bound_to: &str) -> Result<String, SealingError> {
        let data_key = KeyFile::in_memory().key;
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let aad = self.wrapping_aad();
        let encrypted = self
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: data_key.as_slice(),
                    aad: &aad,
                },
            )
            .map_err(|_| SealingError::Malformed)?;
        let mut wrapped = nonce.to_vec();
        wrapped.extend_from_slice(&encrypted);
        encrypt(header("file", &self.id, &wrapped), &data_key, plaintext, bound_to)
    }

    pub(super) fn open(&self, sealed: &Sealed, bound_to: &str) -> Result<Zeroizing<String>, SealingError> {
        if sealed.key_id != self.id {
            return Err(SealingError::OtherKey {
                found: format!("file:{}", sealed.key_id),
                held: format!("file:{}", self.id),
            });
        }
        let (nonce, encrypted) = sealed
            .wrapped
            .split_at_checked(NONCE_LEN)
            .ok_or(SealingError::Malformed)?;
        let aad = self.wrapping_aad();
        let unwrapped = Zeroizing::new(
            self.cipher()
                .decrypt(
                    Nonce::from_slice(nonce),
                    Payload {
                        msg: encrypted,
                        aad: &aad,
                    },
                )
                .map_err(|_| SealingError::DoesNotOpen)?,
        );
        let mut data_key = Zeroizing::new([0u8; 32]);
        if unwrapped.len() != data_key.len() {
            return Err(SealingError::DoesNotOpen);
        }
        data_key.copy_from_slice(&unwrapped);
        decrypt(sealed, &data_key, bound_to)
    }
}

fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".{}.tmp", uuid::Uuid::now_v7().simple()));
    path.with_file_name(name)
}

/// Writes `bytes` to a new file readable by its owner only, on disk before it returns.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Makes the new directory entry durable (best effort: not every platform can sync a directory).
fn sync_parent(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(dir) = std::fs::File::open(dir)
    {
        let _ = dir.sync_all();
    }
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{:o}", meta.permissions().mode() & 0o777),
                "the key file of signing secrets is readable by others than its owner (chmod 600 it)"
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_created_key_file_is_32_bytes_private_and_loads_as_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cashout.key");
        let created = KeyFile::create(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap().len(), 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let loaded = KeyFile::load(&path).unwrap().unwrap();
        assert_eq!(loaded.id(), created.id());
        let sealed = created.seal("whsec_abc", "ep_1").unwrap();
        assert_eq!(
            loaded.open(&Sealed::parse(&sealed).unwrap(), "ep_1").unwrap().as_str(),
            "whsec_abc"
        );
        // Nothing else left in the directory (the temporary file is gone).
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn creating_over_an_existing_key_file_keeps_the_existing_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cashout.key");
        let first = KeyFile::create(&path).unwrap();
        let second = KeyFile::create(&path).unwrap();
        assert_eq!(first.id(), second.id());
    }

    #[test]
    fn a_key_file_of_the_wrong_size_is_an_error_that_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cashout.key");
        std::fs::write(&path, b"short").unwrap();
        let err = KeyFile::load(&path).err().unwrap().to_string();
        assert!(err.contains("cashout.key") && err.contains("5 bytes"), "{err}");
        assert!(KeyFile::load(&dir.path().join("absent.key")).unwrap().is_none());
    }
}
