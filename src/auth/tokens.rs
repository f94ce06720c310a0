//! HS256 JSON Web Tokens: issuing access and refresh tokens and verifying them.
//!
//! Verification is on every request's path, so the decoding key and the validation rules
//! are built once in [`TokenIssuer::new`] and only read afterwards; checking a token never
//! touches the store. Whether a refresh token is still current is the store's business
//! (refresh families), decided in `accounts`, not here.

use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::keys::random_hex;
use crate::store::{Timestamp, UserId};

/// Shortest accepted signing secret, in bytes (the HS256 key size).
pub const MIN_SECRET_LEN: usize = 32;
/// Clock skew tolerated between the node that issued a token and the one checking it.
const LEEWAY_SECS: u64 = 2;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum TokenError {
    #[error("signing secret is {0} bytes; at least 32 are required")]
    SecretTooShort(usize),
    #[error("token has expired")]
    Expired,
    #[error("token signature does not match")]
    BadSignature,
    #[error("token is a {found:?} token where a {expected:?} token was required")]
    WrongType {
        expected: TokenType,
        found: TokenType,
    },
    /// Not a JWT, an unexpected algorithm, or claims of the wrong shape.
    #[error("token is malformed")]
    Malformed,
    #[error("token could not be signed: {0}")]
    Signing(String),
    #[error("signing secret refused: {0}")]
    KeyRefused(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    Access,
    Refresh,
}

/// The claims every token carries; `fam` only in refresh tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub token_type: TokenType,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Issue time, seconds since the Unix epoch.
    pub iat: u64,
    /// Unique id of this token; for refresh tokens, what the store's family tracks.
    pub jti: String,
    pub user_id: UserId,
    /// Refresh-token family: every token obtained by rotating from one login shares it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fam: Option<String>,
}

/// A signed refresh token with what the store must record about it.
#[derive(Clone)]
pub struct IssuedRefresh {
    pub token: String,
    pub jti: String,
    pub expires_at: Timestamp,
}

impl std::fmt::Debug for IssuedRefresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedRefresh")
            .field("token", &"<redacted>")
            .field("jti", &self.jti)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Signs and checks tokens with one secret. Cheap to clone (keys are small buffers).
#[derive(Clone)]
pub struct TokenIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    access_ttl: Duration,
    refresh_ttl: Duration,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("access_ttl", &self.access_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    pub fn new(
        secret: &[u8],
        access_ttl: Duration,
        refresh_ttl: Duration,
    ) -> Result<Self, TokenError> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(TokenError::SecretTooShort(secret.len()));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.set_required_spec_claims(&["exp"]);
        Ok(TokenIssuer {
            encoding: EncodingKey::from_secret(secret).map_err(key_refused)?,
            decoding: DecodingKey::from_secret(secret).map_err(key_refused)?,
            validation,
            access_ttl,
            refresh_ttl,
        })
    }

    pub fn access_ttl(&self) -> Duration {
        self.access_ttl
    }

    pub fn refresh_ttl(&self) -> Duration {
        self.refresh_ttl
    }

    pub fn issue_access(&self, user: UserId) -> Result<String, TokenError> {
        let claims = self.claims(TokenType::Access, user, self.access_ttl, None);
        self.sign(&claims)
    }

    /// A refresh token in `family`; the caller records `jti` and `expires_at` in the store.
    pub fn issue_refresh(&self, user: UserId, family: &str) -> Result<IssuedRefresh, TokenError> {
        let claims = self.claims(TokenType::Refresh, user, self.refresh_ttl, Some(family));
        let token = self.sign(&claims)?;
        Ok(IssuedRefresh {
            token,
            expires_at: Timestamp(
                i64::try_from(claims.exp).unwrap_or(i64::MAX / 1_000_000) * 1_000_000,
            ),
            jti: claims.jti,
        })
    }

    /// Checks signature, expiry and type. A refresh token without a family is malformed.
    pub fn verify(&self, token: &str, expected: TokenType) -> Result<Claims, TokenError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::InvalidSignature => TokenError::BadSignature,
                _ => TokenError::Malformed,
            })?;
        let claims = data.claims;
        if claims.token_type != expected {
            return Err(TokenError::WrongType {
                expected,
                found: claims.token_type,
            });
        }
        if expected == TokenType::Refresh && claims.fam.as_deref().is_none_or(str::is_empty) {
            return Err(TokenError::Malformed);
        }
        Ok(claims)
    }

    /// Signs arbitrary claims; lets tests forge expired or odd tokens with the real key.
    pub(crate) fn sign(&self, claims: &Claims) -> Result<String, TokenError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| TokenError::Signing(e.to_string()))
    }

    fn claims(&self, kind: TokenType, user: UserId, ttl: Duration, fam: Option<&str>) -> Claims {
        let iat = jsonwebtoken::get_current_timestamp();
        Claims {
            token_type: kind,
            exp: iat.saturating_add(ttl.as_secs()),
            iat,
            jti: random_hex(16),
            user_id: user,
            fam: fam.map(str::to_owned),
        }
    }
}

/// The library refuses only empty secrets, which the length check already excludes.
fn key_refused(e: jsonwebtoken::errors::Error) -> TokenError {
    TokenError::KeyRefused(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn issuer() -> TokenIssuer {
        TokenIssuer::new(SECRET, Duration::from_secs(600), Duration::from_secs(3600)).unwrap()
    }

    #[test]
    fn short_secrets_are_refused() {
        let err = TokenIssuer::new(b"short", Duration::from_secs(1), Duration::from_secs(1));
        assert_eq!(err.unwrap_err(), TokenError::SecretTooShort(5));
    }

    #[test]
    fn access_token_round_trips_with_its_claims() {
        let t = issuer();
        let token = t.issue_access(42).unwrap();
        let claims = t.verify(&token, TokenType::Access).unwrap();
        assert_eq!(claims.user_id, 42);
        assert_eq!(claims.token_type, TokenType::Access);
        assert_eq!(claims.exp - claims.iat, 600);
        assert_eq!(claims.jti.len(), 32);
        assert_eq!(claims.fam, None);
    }

    #[test]
    fn refresh_token_carries_family_and_reports_its_jti_and_expiry() {
        let t = issuer();
        let issued = t.issue_refresh(7, "fam-1").unwrap();
        let claims = t.verify(&issued.token, TokenType::Refresh).unwrap();
        assert_eq!(claims.fam.as_deref(), Some("fam-1"));
        assert_eq!(claims.jti, issued.jti);
        assert_eq!(issued.expires_at.as_secs() as u64, claims.exp);
        assert_eq!(claims.exp - claims.iat, 3600);
    }

    #[test]
    fn wire_format_uses_the_old_claim_names() {
        let t = issuer();
        let token = t.issue_refresh(3, "f").unwrap().token;
        let payload = token.split('.').nth(1).unwrap();
        use base64::Engine as _;
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["token_type"], "refresh");
        assert_eq!(v["user_id"], 3);
        assert_eq!(v["fam"], "f");
        assert!(v["exp"].is_u64() && v["iat"].is_u64() && v["jti"].is_string());
    }

    #[test]
    fn a_token_of_the_other_type_is_refused() {
        let t = issuer();
        let access = t.issue_access(1).unwrap();
        let refresh = t.issue_refresh(1, "f").unwrap().token;
        assert!(matches!(
            t.verify(&access, TokenType::Refresh),
            Err(TokenError::WrongType { .. })
        ));
        assert!(matches!(
            t.verify(&refresh, TokenType::Access),
            Err(TokenError::WrongType { .. })
        ));
    }

    #[test]
    fn expired_tokens_are_refused_beyond_the_leeway() {
        let t = issuer();
        let now = jsonwebtoken::get_current_timestamp();
        let mut claims = t.claims(TokenType::Access, 1, Duration::ZERO, None);
        claims.exp = now - LEEWAY_SECS - 5;
        let token = t.sign(&claims).unwrap();
        assert_eq!(
            t.verify(&token, TokenType::Access),
            Err(TokenError::Expired)
        );
        claims.exp = now;
        let token = t.sign(&claims).unwrap();
        assert!(t.verify(&token, TokenType::Access).is_ok(), "within leeway");
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let other = TokenIssuer::new(
            &[b'x'; 40],
            Duration::from_secs(60),
            Duration::from_secs(60),
        )
        .unwrap();
        let token = other.issue_access(1).unwrap();
        assert_eq!(
            issuer().verify(&token, TokenType::Access),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn tampered_payload_breaks_the_signature() {
        let t = issuer();
        let token = t.issue_access(1).unwrap();
        let other = t.issue_access(2).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let other_parts: Vec<&str> = other.split('.').collect();
        let forged = format!("{}.{}.{}", parts[0], other_parts[1], parts[2]);
        assert_eq!(
            t.verify(&forged, TokenType::Access),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn garbage_and_unsigned_tokens_are_malformed() {
        let t = issuer();
        assert_eq!(t.verify("", TokenType::Access), Err(TokenError::Malformed));
        assert_eq!(
            t.verify("a.b.c", TokenType::Access),
            Err(TokenError::Malformed)
        );
        // alg "none" with valid-looking claims: refused, not trusted.
        let token = t.issue_access(1).unwrap();
        let payload = token.split('.').nth(1).unwrap();
        let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        assert!(t.verify(&none, TokenType::Access).is_err());
    }

    #[test]
    fn a_refresh_token_without_family_is_malformed() {
        let t = issuer();
        let claims = t.claims(TokenType::Refresh, 1, Duration::from_secs(60), None);
        let token = t.sign(&claims).unwrap();
        assert_eq!(
            t.verify(&token, TokenType::Refresh),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn debug_output_hides_the_secret_and_tokens() {
        let t = issuer();
        assert!(!format!("{t:?}").contains("0123456789abcdef"));
        let issued = t.issue_refresh(1, "f").unwrap();
        assert!(!format!("{issued:?}").contains(&issued.token));
    }
}
