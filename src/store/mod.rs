//! Durable state behind one trait: users, API keys, routers, refresh-token families,
//! login throttling counters and the audit trail.
//!
//! Two backends implement [`Store`]: `embedded` (a redb file, one node) and
//! `redis` (many nodes). Both pass the same conformance suite
//! (`tests/store_conformance.rs`). Router passwords are sealed by [`seal`] before they
//! reach a backend; a backend never sees a secret in the clear.

pub mod embedded;
pub mod model;
pub mod redis;
pub mod seal;

use std::time::Duration;

use async_trait::async_trait;

pub use model::*;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A unique field is already taken; carries the field's name (`username`, `public_key`).
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// The backend cannot be reached or cannot write; nothing was changed.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A stored record could not be decoded.
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The one interface to durable state. Every method is atomic: it either applies whole or
/// changes nothing.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Cheap liveness check for `/health/`.
    async fn ping(&self) -> StoreResult<()>;

    /// Creates a user together with their first API key, atomically.
    /// `Conflict("username")` when the name is taken (case-insensitively),
    /// `Conflict("public_key")` when the key is.
    async fn create_user(&self, user: NewUser, key: ApiKey) -> StoreResult<User>;
    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>>;
    /// Case-insensitive lookup.
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>>;
    async fn update_profile(&self, id: UserId, update: ProfileUpdate) -> StoreResult<User>;

    async fn api_key_for_user(&self, user: UserId) -> StoreResult<Option<ApiKey>>;
    async fn api_key_by_public(&self, public_key: &str) -> StoreResult<Option<ApiKey>>;
    /// Makes `key` the user's only key pair; the previous pair stops working.
    /// `Conflict("public_key")` when another user holds that public key.
    async fn replace_api_key(&self, key: ApiKey) -> StoreResult<()>;

    async fn create_router(&self, router: NewRouter) -> StoreResult<Router>;
    async fn router(&self, id: RouterId) -> StoreResult<Option<Router>>;
    /// A user's routers ordered by name (then id).
    async fn routers_for_user(&self, user: UserId) -> StoreResult<Vec<Router>>;
    async fn all_routers(&self) -> StoreResult<Vec<Router>>;
    /// Replaces the stored router with the same id; `NotFound("router")` when absent.
    async fn update_router(&self, router: Router) -> StoreResult<Router>;
    /// Removes a router; returns what was removed.
    async fn delete_router(&self, id: RouterId) -> StoreResult<Option<Router>>;

    async fn set_router_status(&self, id: RouterId, status: RouterStatus) -> StoreResult<()>;
    async fn router_status(&self, id: RouterId) -> StoreResult<RouterStatus>;

    /// Starts a refresh-token family whose current token is `jti`.
    async fn create_refresh_family(
        &self,
        family: &str,
        user: UserId,
        jti: &str,
        expires_at: Timestamp,
    ) -> StoreResult<()>;
    /// Spends `presented_jti` and makes `new_jti` current, atomically. Presenting any
    /// token of the family other than the current one revokes the family.
    async fn rotate_refresh(
        &self,
        family: &str,
        presented_jti: &str,
        new_jti: &str,
        expires_at: Timestamp,
    ) -> StoreResult<RefreshOutcome>;
    async fn revoke_refresh_family(&self, family: &str) -> StoreResult<()>;

    /// Counts one hit against `key` in a fixed window and returns the count in the current
    /// window, this hit included.
    async fn throttle_hit(&self, key: &str, window: Duration) -> StoreResult<u64>;
    async fn throttle_reset(&self, key: &str) -> StoreResult<()>;

    async fn append_audit(&self, entry: AuditEntry) -> StoreResult<()>;
    /// The newest entries first.
    async fn recent_audit(&self, limit: usize) -> StoreResult<Vec<AuditEntry>>;
}
