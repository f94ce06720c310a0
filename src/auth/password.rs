//! Password hashing in Django's `pbkdf2_sha256` format, so hashes imported from the old
//! service verify unchanged and hashes written here could be read back by it.
//!
//! Format: `pbkdf2_sha256$<iterations>$<salt>$<base64 std of the 32-byte PBKDF2-HMAC-SHA256>`.
//! Hashing is CPU-bound on purpose; callers on the async runtime run it on
//! `tokio::task::spawn_blocking`.

use std::num::NonZeroU32;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ring::pbkdf2;
use ring::rand::{SecureRandom, SystemRandom};

const ALGORITHM_NAME: &str = "pbkdf2_sha256";
const HASH_LEN: usize = 32;
const SALT_LEN: usize = 22;
/// Django's salt alphabet: letters and digits.
const SALT_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// Hashes `password` with a fresh random salt. `iterations` of 0 is treated as 1, since a
/// zero-round PBKDF2 does not exist (settings validation already refuses 0).
pub fn hash_password(password: &str, iterations: u32) -> String {
    let iterations = NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN);
    let salt = random_salt();
    let mut out = [0u8; HASH_LEN];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt.as_bytes(),
        password.as_bytes(),
        &mut out,
    );
    encode(iterations.get(), &salt, &out)
}

/// True when `password` matches `encoded`. Any iteration count in the string is honoured
/// (older hashes keep working); anything malformed is simply `false`. The final comparison
/// is ring's constant-time one.
pub fn verify_password(password: &str, encoded: &str) -> bool {
    let Some(parsed) = parse(encoded) else {
        return false;
    };
    pbkdf2::verify(
        pbkdf2::PBKDF2_HMAC_SHA256,
        parsed.iterations,
        parsed.salt.as_bytes(),
        password.as_bytes(),
        &parsed.hash,
    )
    .is_ok()
}

/// The iteration count of an encoded hash, if it is well formed.
pub fn iterations_of(encoded: &str) -> Option<u32> {
    parse(encoded).map(|p| p.iterations.get())
}

/// A stand-in hash with the configured iteration count, verified against when the user
/// does not exist, so that "no such user" costs as much time as "wrong password".
///
/// Its hash bytes are random rather than derived from any password: verifying costs the
/// same either way, and nothing can ever match it by construction except by chance of
/// 2^-256, so building one costs no PBKDF2 run.
#[derive(Clone)]
pub struct TimingDecoy {
    encoded: String,
}

impl TimingDecoy {
    pub fn new(iterations: u32) -> Self {
        let iterations = iterations.max(1);
        let mut hash = [0u8; HASH_LEN];
        // A failed system RNG leaves zeros; still a valid, unmatchable-in-practice decoy.
        let _ = SystemRandom::new().fill(&mut hash);
        TimingDecoy {
            encoded: encode(iterations, &random_salt(), &hash),
        }
    }

    /// Spends the time of one verification and always answers `false`.
    pub fn burn(&self, password: &str) -> bool {
        let _ = verify_password(password, &self.encoded);
        false
    }
}

impl std::fmt::Debug for TimingDecoy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimingDecoy").finish_non_exhaustive()
    }
}

struct Parsed<'a> {
    iterations: NonZeroU32,
    salt: &'a str,
    hash: [u8; HASH_LEN],
}

fn parse(encoded: &str) -> Option<Parsed<'_>> {
    let mut parts = encoded.split('$');
    let (algorithm, iterations, salt, hash) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || algorithm != ALGORITHM_NAME || salt.is_empty() {
        return None;
    }
    if !iterations.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let iterations = NonZeroU32::new(iterations.parse().ok()?)?;
    let hash: [u8; HASH_LEN] = BASE64.decode(hash).ok()?.try_into().ok()?;
    Some(Parsed {
        iterations,
        salt,
        hash,
    })
}

fn encode(iterations: u32, salt: &str, hash: &[u8]) -> String {
    format!(
        "{ALGORITHM_NAME}${iterations}${salt}${}",
        BASE64.encode(hash)
    )
}

/// 22 characters from [`SALT_ALPHABET`], drawn without modulo bias: bytes at or above the
/// largest multiple of 62 are thrown away.
fn random_salt() -> String {
    let rng = SystemRandom::new();
    let limit = 256 - (256 % SALT_ALPHABET.len());
    let mut salt = String::with_capacity(SALT_LEN);
    let mut buf = [0u8; 64];
    while salt.len() < SALT_LEN {
        if rng.fill(&mut buf).is_err() {
            // ring's SystemRandom reads the OS generator; it does not fail on supported
            // platforms. Should it, fall back to `rand`'s OS-seeded generator.
            rand::fill(&mut buf[..]);
        }
        for &b in buf.iter().filter(|&&b| usize::from(b) < limit) {
            if salt.len() == SALT_LEN {
                break;
            }
            salt.push(char::from(
                SALT_ALPHABET[usize::from(b) % SALT_ALPHABET.len()],
            ));
        }
    }
    salt
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fixed vectors computed on this machine with Python's
    /// `hashlib.pbkdf2_hmac('sha256', password, salt, iterations)` (the function Django's
    /// `PBKDF2PasswordHasher` calls), base64 encoded as Django does.
    const DJANGO_PASSWORD_1000: &str =
        "pbkdf2_sha256$1000$FiI3ZwYyFqHvGZ2Vs3RY6b$vQ6AFEMGu5K5T1PBRs3vGC5XAKcV/+SO7TFbar++ARg=";
    const DJANGO_CORRECT_HORSE_1200: &str =
        "pbkdf2_sha256$1200$bPq1W9zXc0L2mN7rT4yU8e$VYjYMM4cXLDu0wEU0NpyK+OxoJE9x8Eurh8yvVQKIdM=";

    #[test]
    fn django_hashes_verify_with_their_own_iteration_counts() {
        assert!(verify_password("password", DJANGO_PASSWORD_1000));
        assert!(verify_password("correct horse", DJANGO_CORRECT_HORSE_1200));
        assert!(!verify_password("Password", DJANGO_PASSWORD_1000));
        assert!(!verify_password("password", DJANGO_CORRECT_HORSE_1200));
    }

    #[test]
    fn new_hashes_have_django_shape_and_verify() {
        let encoded = hash_password("s3cret-pass", 1000);
        let parts: Vec<&str> = encoded.split('$').collect();
        assert_eq!(parts.len(), 4);
        assert_eq!(parts[0], "pbkdf2_sha256");
        assert_eq!(parts[1], "1000");
        assert_eq!(parts[2].len(), 22);
        assert!(parts[2].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(BASE64.decode(parts[3]).unwrap().len(), 32);
        assert!(verify_password("s3cret-pass", &encoded));
        assert!(!verify_password("s3cret-pasS", &encoded));
        assert_eq!(iterations_of(&encoded), Some(1000));
    }

    #[test]
    fn same_password_gets_a_different_salt_each_time() {
        assert_ne!(hash_password("pw", 1000), hash_password("pw", 1000));
    }

    #[test]
    fn a_hash_recomputed_from_its_own_salt_matches_the_python_vector() {
        let salt = "FiI3ZwYyFqHvGZ2Vs3RY6b";
        let mut out = [0u8; HASH_LEN];
        let iters = NonZeroU32::new(1000).unwrap();
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            iters,
            salt.as_bytes(),
            b"password",
            &mut out,
        );
        assert_eq!(encode(1000, salt, &out), DJANGO_PASSWORD_1000);
    }

    #[test]
    fn malformed_hashes_never_verify() {
        for bad in [
            "",
            "password",
            "pbkdf2_sha1$1000$FiI3ZwYyFqHvGZ2Vs3RY6b$vQ6AFEMGu5K5T1PBRs3vGC5XAKcV/+SO7TFbar++ARg=",
            "pbkdf2_sha256$0$FiI3ZwYyFqHvGZ2Vs3RY6b$vQ6AFEMGu5K5T1PBRs3vGC5XAKcV/+SO7TFbar++ARg=",
            "pbkdf2_sha256$-1$FiI3ZwYyFqHvGZ2Vs3RY6b$vQ6AFEMGu5K5T1PBRs3vGC5XAKcV/+SO7TFbar++ARg=",
            "pbkdf2_sha256$1000$$vQ6AFEMGu5K5T1PBRs3vGC5XAKcV/+SO7TFbar++ARg=",
            "pbkdf2_sha256$1000$FiI3ZwYyFqHvGZ2Vs3RY6b$not base64!",
            "pbkdf2_sha256$1000$FiI3ZwYyFqHvGZ2Vs3RY6b$AAAA",
            "pbkdf2_sha256$1000$FiI3ZwYyFqHvGZ2Vs3RY6b$vQ6AFEMGu5K5T1PBRs3vGC5XAKcV/+SO7TFbar++ARg=$x",
        ] {
            assert!(!verify_password("password", bad), "{bad:?} verified");
        }
    }

    #[test]
    fn decoy_never_matches_and_uses_the_configured_iterations() {
        let decoy = TimingDecoy::new(1000);
        assert_eq!(iterations_of(&decoy.encoded), Some(1000));
        assert!(!decoy.burn("password"));
        assert!(!decoy.burn(""));
    }
}
