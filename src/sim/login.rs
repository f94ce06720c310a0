//! The MD5 challenge of RouterOS logins before 6.43.
//!
//! The router sends 16 random bytes as 32 hex digits; the client answers
//! `00` + hex(md5(0x00, password, challenge bytes)).

use md5::{Digest, Md5};

/// A fresh challenge, as raw bytes.
pub(crate) fn new_challenge() -> [u8; 16] {
    rand::random()
}

/// The response a client must send for `challenge`, lowercase hex with the `00` prefix.
pub(crate) fn challenge_response(password: &[u8], challenge: &[u8]) -> String {
    let mut md5 = Md5::new();
    md5.update([0u8]);
    md5.update(password);
    md5.update(challenge);
    format!("00{}", hex::encode(md5.finalize()))
}

/// Whether `response` answers `challenge` for `password`; hex case does not matter.
pub(crate) fn response_matches(password: &[u8], challenge: &[u8], response: &[u8]) -> bool {
    challenge_response(password, challenge)
        .as_bytes()
        .eq_ignore_ascii_case(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response_for_hex(password: &[u8], challenge_hex: &str) -> String {
        challenge_response(password, &hex::decode(challenge_hex).unwrap())
    }

    #[test]
    fn responses_match_the_documented_vectors_for_an_empty_password() {
        assert_eq!(
            response_for_hex(b"", "93b438ec9b80057c06dd9fe67d56aa9a"),
            "00e134102a9d330dd7b1849fedfea3cb57"
        );
        assert_eq!(
            response_for_hex(b"", "856780b7411eefd3abadee2058c149a3"),
            "005062f7a5ef124d34675bf3e81f56c556"
        );
    }

    #[test]
    fn a_response_for_another_password_or_challenge_is_refused() {
        let challenge = hex::decode("93b438ec9b80057c06dd9fe67d56aa9a").unwrap();
        assert!(response_matches(
            b"",
            &challenge,
            b"00E134102A9D330DD7B1849FEDFEA3CB57"
        ));
        assert!(!response_matches(
            b"x",
            &challenge,
            b"00e134102a9d330dd7b1849fedfea3cb57"
        ));
        let other = hex::decode("856780b7411eefd3abadee2058c149a3").unwrap();
        assert!(!response_matches(
            b"",
            &other,
            b"00e134102a9d330dd7b1849fedfea3cb57"
        ));
    }
}
