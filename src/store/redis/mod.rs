//! The many-node [`Store`] backend: Redis (one server or a Redis Cluster) through a
//! deadpool-redis pool. See [`connection`] for the URL forms, including TLS (`rediss://`,
//! rustls) and passwords in the URL.
//!
//! Records are bincode 2 (standard config), as in the embedded backend. Every write that
//! must be atomic touches keys of one cluster slot (see [`keys`]) and runs as one Lua
//! script, so the same code runs on a single server and on a cluster.
//!
//! ## Uniqueness across slots
//!
//! Usernames and public keys are unique across users, but a user's record lives in the
//! user's slot while the name and key indexes live in slots of their own, and no Redis
//! Cluster write spans slots. So the indexes are *claims* ([`claims`]): a claim key holds
//! `<user id>:<claimed at, ms>` and is taken with `SET NX` before the user is written. A
//! claim counts as held when the user it names exists and carries that name or key, or
//! while it is younger than [`claims::PENDING_MS`] (a registration in flight). Reads
//! resolve through the claim and then check the record, so a claim whose user never got
//! written resolves to nothing.
//!
//! Crash windows and their repair: a node dying after claiming but before writing the user
//! leaves a claim naming a missing user; it blocks the name for [`claims::PENDING_MS`],
//! after which the next registration takes it over (compare-and-set on the claim). A node
//! dying after `replace_api_key` swapped the key but before dropping the old key's claim
//! leaves a claim whose user no longer has that key: reads ignore it and it is taken over
//! the same way. After writing a user, registration re-reads its claims and undoes the user
//! if one was taken over meanwhile. What remains: a registration stalled for longer than
//! [`claims::PENDING_MS`] between claiming and writing, racing a second registration of the
//! same name in a window of one round trip, could leave two users with one name. Ids are
//! taken from counters before the claims, so a refused registration spends an id; ids stay
//! unique and growing but may have gaps.
//!
//! Router status is kept in Redis (one hash per router) because every node reads it.

mod accounts;
mod claims;
pub(crate) mod connection;
mod keys;
mod routers;
mod sessions;

use std::time::Duration;

use async_trait::async_trait;
use serde::{de::DeserializeOwned, Serialize};

use super::{
    ApiKey, AuditEntry, NewRouter, NewUser, ProfileUpdate, RefreshOutcome, Router, RouterId,
    RouterStatus, Store, StoreError, StoreResult, Timestamp, User, UserId,
};
use connection::{Conn, Pool};
use keys::Keys;

/// The key prefix [`RedisStore::connect`] uses.
pub const DEFAULT_NAMESPACE: &str = "cp";

/// What went wrong inside the Redis backend. Callers see it as a [`StoreError`]:
/// `DecodeFailed` becomes `Corrupt`, everything else `Unavailable`.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error("bad Redis URL: {0}")]
    BadUrl(String),
    #[error("bad namespace {0:?}: use letters, digits, '-', '_', '.' or ':'")]
    BadNamespace(String),
    #[error("no Redis connection available: {0}")]
    PoolExhausted(String),
    #[error("Redis command failed: {0}")]
    CommandFailed(#[from] redis::RedisError),
    #[error("cannot encode {what}: {source}")]
    EncodeFailed {
        what: &'static str,
        source: bincode::error::EncodeError,
    },
    #[error("cannot decode {what}: {source}")]
    DecodeFailed {
        what: &'static str,
        source: bincode::error::DecodeError,
    },
    #[error("{what} kept changing underneath a compare-and-set; gave up")]
    ContentionExhausted { what: &'static str },
}

impl From<RedisError> for StoreError {
    fn from(err: RedisError) -> Self {
        match err {
            RedisError::DecodeFailed { .. } => StoreError::Corrupt(err.to_string()),
            other => StoreError::Unavailable(other.to_string()),
        }
    }
}

impl From<redis::RedisError> for StoreError {
    fn from(err: redis::RedisError) -> Self {
        RedisError::from(err).into()
    }
}

/// A [`Store`] on Redis. Cheap to clone; clones share the pool.
#[derive(Clone)]
pub struct RedisStore {
    pool: Pool,
    keys: Keys,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password, so it is not kept or shown.
        f.debug_struct("RedisStore")
            .field("namespace", &self.keys)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Makes a pool of up to `pool_size` connections for `url` (see [`connection`] for the
    /// forms) under the [`DEFAULT_NAMESPACE`]. Connections open lazily; this fails only on
    /// a malformed URL. Use [`Store::ping`] to check Redis answers.
    pub fn connect(url: &str, pool_size: usize) -> Result<RedisStore, StoreError> {
        Self::connect_namespaced(url, pool_size, DEFAULT_NAMESPACE)
    }

    /// As [`RedisStore::connect`], with every key under `namespace`, so that several
    /// deployments (or test cases) can share one Redis without seeing each other.
    pub fn connect_namespaced(
        url: &str,
        pool_size: usize,
        namespace: &str,
    ) -> Result<RedisStore, StoreError> {
        let valid = !namespace.is_empty()
            && namespace
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
        if !valid {
            return Err(RedisError::BadNamespace(namespace.to_owned()).into());
        }
        let target = connection::parse_target(url)?;
        let cluster = target.cluster;
        let pool = Pool::create(target, pool_size)?;
        tracing::info!(
            store.cluster = cluster,
            store.namespace = namespace,
            "redis store ready"
        );
        Ok(RedisStore {
            pool,
            keys: Keys::new(namespace),
        })
    }

    async fn conn(&self) -> StoreResult<Conn> {
        Ok(self.pool.get().await?)
    }
}

fn encode<T: Serialize>(value: &T, what: &'static str) -> StoreResult<Vec<u8>> {
    bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map_err(|source| RedisError::EncodeFailed { what, source }.into())
}

fn decode<T: DeserializeOwned>(bytes: &[u8], what: &'static str) -> StoreResult<T> {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map(|(value, _)| value)
        .map_err(|source| RedisError::DecodeFailed { what, source }.into())
}

/// How many times a compare-and-set write retries when another writer got in between.
const CAS_ATTEMPTS: usize = 16;

#[async_trait]
impl Store for RedisStore {
    async fn ping(&self) -> StoreResult<()> {
        let mut conn = self.conn().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await?;
        Ok(())
    }

    async fn create_user(&self, user: NewUser, key: ApiKey) -> StoreResult<User> {
        accounts::create_user(self, user, key).await
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        let mut conn = self.conn().await?;
        accounts::load_user(&mut conn, &self.keys, id).await
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        accounts::user_by_username(self, &username.to_lowercase()).await
    }

    async fn update_profile(&self, id: UserId, update: ProfileUpdate) -> StoreResult<User> {
        accounts::update_profile(self, id, update).await
    }

    async fn api_key_for_user(&self, user: UserId) -> StoreResult<Option<ApiKey>> {
        let mut conn = self.conn().await?;
        accounts::load_api_key(&mut conn, &self.keys, user).await
    }

    async fn api_key_by_public(&self, public_key: &str) -> StoreResult<Option<ApiKey>> {
        accounts::api_key_by_public(self, public_key).await
    }

    async fn replace_api_key(&self, key: ApiKey) -> StoreResult<()> {
        accounts::replace_api_key(self, key).await
    }

    async fn create_router(&self, router: NewRouter) -> StoreResult<Router> {
        routers::create(self, router).await
    }

    async fn router(&self, id: RouterId) -> StoreResult<Option<Router>> {
        routers::by_id(self, id).await
    }

    async fn routers_for_user(&self, user: UserId) -> StoreResult<Vec<Router>> {
        routers::for_user(self, user).await
    }

    async fn all_routers(&self) -> StoreResult<Vec<Router>> {
        routers::all(self).await
    }

    async fn update_router(&self, router: Router) -> StoreResult<Router> {
        routers::update(self, router).await
    }

    async fn delete_router(&self, id: RouterId) -> StoreResult<Option<Router>> {
        routers::delete(self, id).await
    }

    async fn set_router_status(&self, id: RouterId, status: RouterStatus) -> StoreResult<()> {
        routers::set_status(self, id, status).await
    }

    async fn router_status(&self, id: RouterId) -> StoreResult<RouterStatus> {
        routers::status(self, id).await
    }

    async fn create_refresh_family(
        &self,
        family: &str,
        user: UserId,
        jti: &str,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        sessions::create_family(self, family, user, jti, expires_at).await
    }

    async fn rotate_refresh(
        &self,
        family: &str,
        presented_jti: &str,
        new_jti: &str,
        expires_at: Timestamp,
    ) -> StoreResult<RefreshOutcome> {
        sessions::rotate(self, family, presented_jti, new_jti, expires_at).await
    }

    async fn revoke_refresh_family(&self, family: &str) -> StoreResult<()> {
        let mut conn = self.conn().await?;
        redis::cmd("DEL")
            .arg(self.keys.refresh_family(family))
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    async fn throttle_hit(&self, key: &str, window: Duration) -> StoreResult<u64> {
        sessions::throttle_hit(self, key, window).await
    }

    async fn throttle_reset(&self, key: &str) -> StoreResult<()> {
        let mut conn = self.conn().await?;
        redis::cmd("DEL")
            .arg(self.keys.throttle(key))
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    async fn append_audit(&self, entry: AuditEntry) -> StoreResult<()> {
        sessions::append_audit(self, &entry).await
    }

    async fn recent_audit(&self, limit: usize) -> StoreResult<Vec<AuditEntry>> {
        sessions::recent_audit(self, limit).await
    }
}
