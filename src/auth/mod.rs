//! Authentication building blocks: Django-format password hashes ([`password`]), API key
//! pairs ([`keys`]), HS256 JWTs ([`tokens`]) and request validation with Django REST
//! Framework's messages ([`fields`]). HTTP is not here.

pub mod fields;
pub mod keys;
pub mod password;
pub mod tokens;

pub use fields::FieldErrors;
pub use keys::KeyPair;
pub use tokens::{Claims, IssuedRefresh, TokenError, TokenIssuer, TokenType};
