//! API key pairs: generation, the shape rules for each half, and hashing of the private
//! half. Only [`hash_private`]'s digest is ever stored; the private key itself is shown to
//! its owner once and then forgotten.
//!
//! Shape rules:
//! - a public key is exactly 32 characters of lowercase hex (`[0-9a-f]`); it is looked up
//!   by exact text, so an uppercase spelling would be a different key and is refused;
//! - a private key is exactly 64 characters of hex (`[0-9a-fA-F]`). Its digest is taken
//!   over the text as given, which is how the old service stored it, so exported keys keep
//!   working. Generated private keys are lowercase.

use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};

pub const PUBLIC_KEY_LEN: usize = 32;
pub const PRIVATE_KEY_LEN: usize = 64;

/// A freshly generated or user-chosen pair. The private half is redacted from `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyPair {
    pub public: String,
    pub private: String,
}

impl KeyPair {
    /// A new random pair from the system generator.
    pub fn generate() -> Self {
        KeyPair {
            public: random_hex(PUBLIC_KEY_LEN / 2),
            private: random_hex(PRIVATE_KEY_LEN / 2),
        }
    }

    pub fn private_sha256(&self) -> [u8; 32] {
        hash_private(&self.private)
    }
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("public", &self.public)
            .field("private", &"<redacted>")
            .finish()
    }
}

/// SHA-256 of the private key's text, the form in which it is stored.
pub fn hash_private(private: &str) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, private.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Compares a presented private key against a stored digest without leaking, through
/// timing, how many leading bytes matched.
pub fn private_matches(private: &str, stored_sha256: &[u8; 32]) -> bool {
    let presented = hash_private(private);
    constant_time_eq(&presented, stored_sha256)
}

/// True for exactly 32 lowercase hex characters.
pub fn is_public_key(text: &str) -> bool {
    text.len() == PUBLIC_KEY_LEN && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// True for exactly 64 hex characters of either case.
pub fn is_private_key(text: &str) -> bool {
    text.len() == PRIVATE_KEY_LEN && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Lowercase hex of `bytes` random bytes; also used for token ids and family ids.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if SystemRandom::new().fill(&mut buf).is_err() {
        // ring's SystemRandom reads the OS generator and does not fail on supported
        // platforms; should it, `rand`'s OS-seeded generator is the fallback.
        rand::fill(&mut buf[..]);
    }
    hex::encode(buf)
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_pairs_have_the_documented_shapes_and_differ() {
        let a = KeyPair::generate();
        let b = KeyPair::generate();
        assert!(is_public_key(&a.public), "{}", a.public);
        assert!(is_private_key(&a.private));
        assert!(a.private.bytes().all(|c| !c.is_ascii_uppercase()));
        assert_ne!(a.public, b.public);
        assert_ne!(a.private, b.private);
    }

    /// Fixed vector: `hashlib.sha256(b"0123456789abcdef" * 4).hexdigest()` in Python.
    #[test]
    fn private_hash_is_sha256_of_the_key_text() {
        let key = "0123456789abcdef".repeat(4);
        assert_eq!(
            hex::encode(hash_private(&key)),
            "a8ae6e6ee929abea3afcfc5258c8ccd6f85273e0d4626d26c7279f3250f77c8e"
        );
    }

    #[test]
    fn only_the_exact_private_key_matches_its_digest() {
        let pair = KeyPair::generate();
        let stored = pair.private_sha256();
        assert!(private_matches(&pair.private, &stored));
        let mut other = pair.private.clone();
        other.replace_range(63..64, if other.ends_with('0') { "1" } else { "0" });
        assert!(!private_matches(&other, &stored));
        assert!(!private_matches("", &stored));
    }

    #[test]
    fn validators_enforce_length_and_alphabet() {
        assert!(is_public_key(&"a1".repeat(16)));
        assert!(
            !is_public_key(&"A1".repeat(16)),
            "uppercase public keys are refused"
        );
        assert!(!is_public_key(&"a1".repeat(15)));
        assert!(!is_public_key(&"g1".repeat(16)));
        assert!(is_private_key(&"aF".repeat(32)));
        assert!(!is_private_key(&"aF".repeat(31)));
        assert!(!is_private_key(&"zz".repeat(32)));
        assert!(!is_private_key(&format!("{} ", "a".repeat(63))));
    }

    #[test]
    fn debug_output_hides_the_private_key() {
        let pair = KeyPair::generate();
        let shown = format!("{pair:?}");
        assert!(shown.contains(&pair.public));
        assert!(!shown.contains(&pair.private));
    }
}
