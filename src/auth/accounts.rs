//! [`Accounts`]: the account operations the `/users/` handlers call, and the types they
//! exchange. Registration and profiles live here; logging in, token refresh and logout live
//! in `sessions`, key management in `api_keys`.

use std::sync::Arc;
use std::time::Duration;

use super::api_keys::{api_key_record, KEY_ATTEMPTS};
use super::fields::{self, FieldErrors};
use super::keys::KeyPair;
use super::password::{self, TimingDecoy};
use super::tokens::{TokenError, TokenIssuer};
use crate::config::AuthSettings;
use crate::store::{NewUser, ProfileUpdate, Store, StoreError, Timestamp, User, UserId};

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// One list of messages per bad field; a 400 with that map as its body.
    #[error("invalid fields: {}", .0.keys().cloned().collect::<Vec<_>>().join(", "))]
    Fields(FieldErrors),
    #[error("Username and password are required")]
    CredentialsMissing,
    #[error("Public key and private key are required")]
    ApiKeysMissing,
    /// Unknown user or wrong password; deliberately indistinguishable.
    #[error("Invalid credentials")]
    InvalidCredentials,
    /// Unknown public key or wrong private key; deliberately indistinguishable.
    #[error("Invalid API keys")]
    InvalidApiKeys,
    #[error("too many failed logins; retry in {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
    /// A refresh token that is bad, expired, spent, revoked or someone else's.
    #[error("Given token not valid for any token type")]
    TokenInvalid,
    /// The authenticated user no longer exists.
    #[error("user {0} not found")]
    UserNotFound(UserId),
    #[error("token could not be issued: {0}")]
    TokenIssue(#[source] TokenError),
    /// The blocking task that hashes passwords panicked or was cancelled.
    #[error("password hashing task failed")]
    HashingAborted,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Account rules taken from settings.
#[derive(Clone, Debug)]
pub struct AccountPolicy {
    /// PBKDF2 iterations for new hashes, and for the decoy that unknown users cost.
    pub pbkdf2_iterations: u32,
    /// Failed logins per user name allowed in one window; the next attempt is throttled.
    pub login_failures_per_window: u64,
    pub login_window: Duration,
}

impl AccountPolicy {
    pub fn from_settings(settings: &AuthSettings) -> Self {
        AccountPolicy {
            pbkdf2_iterations: settings.pbkdf2_iterations,
            login_failures_per_window: settings.login_failures_per_window,
            login_window: Duration::from_secs(settings.login_window_secs.max(1)),
        }
    }
}

/// What `register` needs. `None` means the field was absent from the request, which gets
/// "This field is required." rather than the blank message.
#[derive(Clone, Default)]
pub struct RegisterInput {
    pub username: Option<String>,
    pub password: Option<String>,
    pub email: Option<String>,
}

impl std::fmt::Debug for RegisterInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterInput")
            .field("username", &self.username)
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

/// A user as shown to clients: everything but the password hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    pub id: UserId,
    pub username: String,
    pub email: String,
    pub bio: String,
    pub website: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<&User> for Profile {
    fn from(u: &User) -> Self {
        Profile {
            id: u.id,
            username: u.username.clone(),
            email: u.email.clone(),
            bio: u.bio.clone(),
            website: u.website.clone(),
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

/// A new account and its first key pair; the private key is shown this once.
#[derive(Clone)]
pub struct Registered {
    pub user: Profile,
    pub api_public: String,
    pub api_private: String,
}

impl std::fmt::Debug for Registered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registered")
            .field("user", &self.user)
            .field("api_public", &self.api_public)
            .finish_non_exhaustive()
    }
}

/// A logged-in user with fresh tokens; the refresh token starts a new family.
#[derive(Clone)]
pub struct Session {
    pub user: Profile,
    pub access_token: String,
    pub refresh_token: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// The answer to a refresh: a new access token and the family's next refresh token.
#[derive(Clone)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
}

impl std::fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenPair").finish_non_exhaustive()
    }
}

/// Who an access token speaks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user_id: UserId,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyInfo {
    pub public_key: String,
    pub created_at: Timestamp,
}

/// The account service. Cloning shares one state; hand a clone to each handler.
#[derive(Clone)]
pub struct Accounts {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) store: Arc<dyn Store>,
    pub(super) tokens: TokenIssuer,
    pub(super) policy: AccountPolicy,
    /// Verified against when a login names no existing user.
    pub(super) decoy: TimingDecoy,
    /// Compared against when an API-key login names no existing public key.
    pub(super) decoy_key_sha256: [u8; 32],
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accounts")
            .field("tokens", &self.inner.tokens)
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}

impl Accounts {
    pub fn new(store: Arc<dyn Store>, tokens: TokenIssuer, policy: AccountPolicy) -> Self {
        let decoy = TimingDecoy::new(policy.pbkdf2_iterations);
        let decoy_key_sha256 = KeyPair::generate().private_sha256();
        Accounts {
            inner: Arc::new(Inner {
                store,
                tokens,
                policy,
                decoy,
                decoy_key_sha256,
            }),
        }
    }

    /// Builds the service from `[auth]` settings; `jwt_secret` is the resolved secret (the
    /// configured one, or the one generated into the data directory).
    pub fn from_settings(
        store: Arc<dyn Store>,
        settings: &AuthSettings,
        jwt_secret: &[u8],
    ) -> Result<Self, TokenError> {
        let tokens = TokenIssuer::new(
            jwt_secret,
            Duration::from_secs(settings.access_ttl_secs),
            Duration::from_secs(settings.refresh_ttl_secs),
        )?;
        Ok(Accounts::new(
            store,
            tokens,
            AccountPolicy::from_settings(settings),
        ))
    }

    pub fn tokens(&self) -> &TokenIssuer {
        &self.inner.tokens
    }

    /// Creates a user and their first API key pair together.
    pub async fn register(&self, input: RegisterInput) -> Result<Registered, AccountError> {
        let mut errors = FieldErrors::new();
        fields::check_username(input.username.as_deref(), &mut errors);
        fields::check_password(input.password.as_deref(), &mut errors);
        let email = normalize_email(input.email.as_deref().unwrap_or(""));
        fields::check_email(&email, &mut errors);
        let username = input.username.as_deref().unwrap_or("").trim().to_owned();
        if !errors.contains_key("username")
            && self
                .inner
                .store
                .user_by_username(&username)
                .await?
                .is_some()
        {
            fields::add(&mut errors, "username", fields::USERNAME_TAKEN);
        }
        if !errors.is_empty() {
            return Err(AccountError::Fields(errors));
        }
        let password = input.password.unwrap_or_default();
        let iterations = self.inner.policy.pbkdf2_iterations;
        let password_hash =
            tokio::task::spawn_blocking(move || password::hash_password(&password, iterations))
                .await
                .map_err(|_| AccountError::HashingAborted)?;
        for _ in 0..KEY_ATTEMPTS {
            let pair = KeyPair::generate();
            let new_user = NewUser {
                username: username.clone(),
                email: email.clone(),
                password_hash: password_hash.clone(),
            };
            // The store sets the key's owner to the id it assigns.
            let key = api_key_record(0, &pair);
            match self.inner.store.create_user(new_user, key).await {
                Ok(user) => {
                    tracing::info!(user.id = user.id, user.name = %user.username, "user registered");
                    return Ok(Registered {
                        user: Profile::from(&user),
                        api_public: pair.public,
                        api_private: pair.private,
                    });
                }
                Err(StoreError::Conflict("username")) => {
                    let mut errors = FieldErrors::new();
                    fields::add(&mut errors, "username", fields::USERNAME_TAKEN);
                    return Err(AccountError::Fields(errors));
                }
                Err(StoreError::Conflict("public_key")) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict("public_key").into())
    }

    pub async fn profile(&self, user: UserId) -> Result<Profile, AccountError> {
        match self.inner.store.user_by_id(user).await? {
            Some(u) => Ok(Profile::from(&u)),
            None => Err(AccountError::UserNotFound(user)),
        }
    }

    /// Validates and applies a partial profile change; `None` fields stay as they are.
    /// Values are trimmed, and an email's domain is lowercased, as Django did.
    pub async fn update_profile(
        &self,
        user: UserId,
        update: ProfileUpdate,
    ) -> Result<Profile, AccountError> {
        let update = ProfileUpdate {
            email: update.email.as_deref().map(normalize_email),
            bio: update.bio.as_deref().map(|b| b.trim().to_owned()),
            website: update.website.as_deref().map(|w| w.trim().to_owned()),
        };
        let mut errors = FieldErrors::new();
        if let Some(email) = &update.email {
            fields::check_email(email, &mut errors);
        }
        if let Some(website) = &update.website {
            fields::check_website(website, &mut errors);
        }
        if let Some(bio) = &update.bio {
            fields::check_bio(bio, &mut errors);
        }
        if !errors.is_empty() {
            return Err(AccountError::Fields(errors));
        }
        match self.inner.store.update_profile(user, update).await {
            Ok(u) => Ok(Profile::from(&u)),
            Err(StoreError::NotFound(_)) => Err(AccountError::UserNotFound(user)),
            Err(e) => Err(e.into()),
        }
    }
}

/// Trims, and lowercases the domain part, as Django's `normalize_email` does.
fn normalize_email(email: &str) -> String {
    let email = email.trim();
    match email.rsplit_once('@') {
        Some((local, domain)) => format!("{local}@{}", domain.to_lowercase()),
        None => email.to_owned(),
    }
}
