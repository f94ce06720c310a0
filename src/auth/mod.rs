//! Authentication: who a caller is, and the account operations behind the `/users/` paths.
//!
//! - [`password`]: Django-format PBKDF2-SHA256 hashes (imported hashes keep working);
//! - [`keys`]: API key pairs, stored as SHA-256 of the private half;
//! - [`tokens`]: HS256 access and refresh JWTs, verified without touching the store;
//! - [`fields`]: request validation with Django REST Framework's messages;
//! - [`Accounts`]: registration, login (password or API key), refresh-token rotation,
//!   logout, profiles and key management over a [`Store`](crate::store::Store).
//!
//! HTTP is not here: `api` parses requests, calls [`Accounts`] and maps [`AccountError`] to
//! status codes and bodies. Nothing in this module logs or `Debug`-prints a password, a
//! private key, a token or the signing secret.

mod accounts;
mod api_keys;
pub mod fields;
pub mod keys;
pub mod password;
mod sessions;
pub mod tokens;

#[cfg(test)]
mod tests;

pub use accounts::{
    AccountError, AccountPolicy, Accounts, ApiKeyInfo, Principal, Profile, RegisterInput,
    Registered, Session, TokenPair,
};
pub use fields::FieldErrors;
pub use keys::KeyPair;
pub use tokens::{Claims, IssuedRefresh, TokenError, TokenIssuer, TokenType};
