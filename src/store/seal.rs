//! Sealing of router passwords under a master key, and the master key file.
//!
//! Owns the cipher (AES-256-GCM from `ring`, a fresh random 96-bit nonce per sealing) and
//! key rotation: a [`Sealer`] seals under its current key and opens anything sealed under
//! the current or an older key it was given, so records can be resealed lazily
//! ([`Sealer::needs_reseal`]). Where the master key comes from is the server's choice; in
//! embedded mode it is a key file read by [`load_or_create_key_file`].
//!
//! Random nonces under one key are safe for far more sealings than a fleet's router
//! passwords will ever need (the usual bound is 2^32 per key).

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::Duration;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

use super::SealedSecret;

/// Binds every ciphertext to its purpose, so a sealed router password cannot be replayed
/// as some other sealed value that a later version might add.
pub const ROUTER_PASSWORD_AAD: &[u8] = b"cloudpilot/router-password/v1";

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The secret was sealed under a key this sealer was not given.
    #[error("no master key with id {key_id}")]
    UnknownKey { key_id: u32 },
    /// Authentication failed: the ciphertext, nonce or tag was altered, or the key with
    /// that id is not the one that sealed it.
    #[error("sealed secret under key {key_id} failed authentication")]
    Tampered { key_id: u32 },
    #[error("system random number generator failed")]
    RandomnessUnavailable,
    #[error("encryption under key {key_id} failed")]
    SealingFailed { key_id: u32 },
}

/// Seals under one current key and opens under any known key. Keys never appear in
/// `Debug` output.
pub struct Sealer {
    current: u32,
    keys: HashMap<u32, LessSafeKey>,
    rng: SystemRandom,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<u32> = self.keys.keys().copied().collect();
        ids.sort_unstable();
        f.debug_struct("Sealer")
            .field("current_key_id", &self.current)
            .field("key_ids", &ids)
            .finish()
    }
}

fn aes_key(key: &[u8; 32]) -> LessSafeKey {
    // AES-256 takes exactly 32 bytes, which the array type guarantees.
    let unbound = UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte AES-256 key is valid");
    LessSafeKey::new(unbound)
}

impl Sealer {
    pub fn new(key_id: u32, key: [u8; 32]) -> Self {
        let mut keys = HashMap::new();
        keys.insert(key_id, aes_key(&key));
        Sealer {
            current: key_id,
            keys,
            rng: SystemRandom::new(),
        }
    }

    /// Adds a retired key that can still open what it sealed. An id equal to the current
    /// key's is ignored: the current key is never replaced this way.
    pub fn with_old_key(mut self, key_id: u32, key: [u8; 32]) -> Self {
        if key_id != self.current {
            self.keys.insert(key_id, aes_key(&key));
        }
        self
    }

    pub fn current_key_id(&self) -> u32 {
        self.current
    }

    pub fn seal(&self, plaintext: &[u8]) -> Result<SealedSecret, SealError> {
        let key_id = self.current;
        let key = self
            .keys
            .get(&key_id)
            .ok_or(SealError::UnknownKey { key_id })?;
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| SealError::RandomnessUnavailable)?;
        let mut ciphertext = plaintext.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(ROUTER_PASSWORD_AAD),
            &mut ciphertext,
        )
        .map_err(|_| SealError::SealingFailed { key_id })?;
        Ok(SealedSecret {
            key_id,
            nonce,
            ciphertext,
        })
    }

    pub fn open(&self, sealed: &SealedSecret) -> Result<Vec<u8>, SealError> {
        let key_id = sealed.key_id;
        let key = self
            .keys
            .get(&key_id)
            .ok_or(SealError::UnknownKey { key_id })?;
        let mut buffer = sealed.ciphertext.clone();
        let plaintext = key
            .open_in_place(
                Nonce::assume_unique_for_key(sealed.nonce),
                Aad::from(ROUTER_PASSWORD_AAD),
                &mut buffer,
            )
            .map_err(|_| SealError::Tampered { key_id })?;
        Ok(plaintext.to_vec())
    }

    /// True when `sealed` was sealed under an older key and should be sealed again.
    pub fn needs_reseal(&self, sealed: &SealedSecret) -> bool {
        sealed.key_id != self.current
    }

    /// Opens `sealed` and seals the plaintext again under the current key.
    pub fn reseal(&self, sealed: &SealedSecret) -> Result<SealedSecret, SealError> {
        self.seal(&self.open(sealed)?)
    }
}

/// How long a reader waits for a key file another process has just created but not yet
/// filled.
const KEY_FILE_SETTLE: Duration = Duration::from_millis(2000);
const KEY_FILE_POLL: Duration = Duration::from_millis(25);

/// Reads the 32-byte master key stored as 64 hex characters at `path`, creating it with
/// fresh random bytes (mode 0600) when it does not exist.
///
/// Creation uses `create_new`, so when two processes start at once exactly one writes the
/// key and both then use the file's contents. A file readable by group or others is
/// refused rather than used, since the key opens every router password.
pub fn load_or_create_key_file(path: &Path) -> io::Result<[u8; 32]> {
    match read_key_file(path) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        other => return other,
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut key = [0u8; 32];
    SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| io::Error::other("system random number generator failed"))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(format!("{}\n", hex::encode(key)).as_bytes())?;
            file.sync_all()?;
            tracing::info!(key_file = %path.display(), "created master key file");
        }
        // Another process won the race; fall through and use what it wrote.
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
        Err(err) => return Err(err),
    }
    read_key_file(path)
}

/// Reads and checks the key file, waiting briefly while it is still empty (a racing
/// creator between `create_new` and its write).
fn read_key_file(path: &Path) -> io::Result<[u8; 32]> {
    let started = std::time::Instant::now();
    loop {
        let mut file = std::fs::File::open(path)?;
        refuse_shared_permissions(&file, path)?;
        let mut text = String::new();
        file.read_to_string(&mut text)?;
        let text = text.trim();
        if text.is_empty() && started.elapsed() < KEY_FILE_SETTLE {
            std::thread::sleep(KEY_FILE_POLL);
            continue;
        }
        let mut key = [0u8; 32];
        hex::decode_to_slice(text, &mut key).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: expected 64 hex characters", path.display()),
            )
        })?;
        return Ok(key);
    }
}

#[cfg(unix)]
fn refuse_shared_permissions(file: &std::fs::File, path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = file.metadata()?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{}: master key file has mode {:o}; allow the owner only (chmod 600)",
                path.display(),
                mode & 0o777
            ),
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn refuse_shared_permissions(_file: &std::fs::File, _path: &Path) -> io::Result<()> {
    Ok(())
}
