//! The single-node [`Store`] backend: one redb file under the data directory.
//!
//! Owns the on-disk layout (see [`tables`]) and the rule that every trait method runs in
//! exactly one redb transaction, on a blocking thread (`spawn_blocking`) so the async
//! workers never wait on disk. Router status and login-throttle counters are kept in memory
//! instead (see [`volatile`]): sessions rebuild status after a restart, and a restart
//! forgetting throttle counts only gives a client a fresh window. Sealing router passwords
//! is left to [`crate::store::seal`]; this backend only ever sees ciphertext.
//!
//! One process holds the file at a time (redb takes a lock), so this backend serves one
//! node; a fleet served by several nodes needs the Redis backend.

mod accounts;
mod audit;
mod refresh;
mod router_cache;
mod routers;
mod tables;
mod volatile;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redb::{Database, ReadTransaction, ReadableDatabase, WriteTransaction};

use super::{
    ApiKey, AuditEntry, NewRouter, NewUser, ProfileUpdate, RefreshOutcome, Router, RouterId,
    RouterStatus, Store, StoreError, StoreResult, Timestamp, User, UserId,
};
use router_cache::RouterCache;
use volatile::Volatile;

/// The file name [`EmbeddedStore::open_in`] uses inside the data directory.
pub const DATABASE_FILE: &str = "cloudpilot.redb";

/// What went wrong inside the embedded backend. Callers see it as a [`StoreError`]:
/// `Decode` becomes `Corrupt`, everything else `Unavailable`.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error("cannot open database {path}: {source}")]
    OpenFailed {
        path: PathBuf,
        source: redb::DatabaseError,
    },
    #[error("cannot begin transaction: {0}")]
    TransactionFailed(#[from] redb::TransactionError),
    #[error("cannot open table: {0}")]
    TableFailed(#[from] redb::TableError),
    #[error("storage I/O failed: {0}")]
    StorageFailed(#[from] redb::StorageError),
    #[error("commit failed: {0}")]
    CommitFailed(#[from] redb::CommitError),
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
    #[error("blocking storage task did not finish: {0}")]
    TaskLost(#[from] tokio::task::JoinError),
}

impl From<EmbeddedError> for StoreError {
    fn from(err: EmbeddedError) -> Self {
        match err {
            EmbeddedError::DecodeFailed { .. } => StoreError::Corrupt(err.to_string()),
            other => StoreError::Unavailable(other.to_string()),
        }
    }
}

/// Lets `?` turn a redb failure straight into a [`StoreError`] inside transaction code.
macro_rules! redb_failure_is_store_error {
    ($($ty:ty),+) => {
        $(impl From<$ty> for StoreError {
            fn from(err: $ty) -> Self {
                EmbeddedError::from(err).into()
            }
        })+
    };
}
redb_failure_is_store_error!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// A [`Store`] on a redb file. Cheap to clone; clones share the database and the in-memory
/// status and throttle maps.
#[derive(Clone)]
pub struct EmbeddedStore {
    /// Shared with the blocking tasks that run each transaction.
    db: Arc<Database>,
    /// Router status and throttle windows; lost on restart by design.
    volatile: Arc<Volatile>,
    /// Routers read recently, so that the per-request ownership check of every
    /// `/routers/{id}/...` call needs no blocking task (see [`router_cache`]).
    routers: Arc<RouterCache>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore").finish_non_exhaustive()
    }
}

impl EmbeddedStore {
    /// Opens the database at `path`, creating the file and every table when missing.
    ///
    /// Blocks on file I/O (and, after a crash, on redb's repair of the file); call it at
    /// startup before serving, or from `spawn_blocking`. Fails while another process, or
    /// another `EmbeddedStore` in this one, holds the file.
    pub fn open(path: &Path) -> Result<EmbeddedStore, StoreError> {
        let db = Database::create(path).map_err(|source| EmbeddedError::OpenFailed {
            path: path.to_path_buf(),
            source,
        })?;
        // The file holds password and key hashes and sealed secrets: owner only.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        let tx = db.begin_write()?;
        tables::create_all(&tx)?;
        tx.commit()?;
        tracing::info!(store.path = %path.display(), "embedded store open");
        Ok(EmbeddedStore {
            db: Arc::new(db),
            volatile: Arc::new(Volatile::default()),
            routers: Arc::new(RouterCache::default()),
        })
    }

    /// Opens `<dir>/cloudpilot.redb`, the layout the server uses for its data directory.
    pub fn open_in(dir: &Path) -> Result<EmbeddedStore, StoreError> {
        Self::open(&dir.join(DATABASE_FILE))
    }

    /// Runs `work` in one read transaction on a blocking thread.
    async fn read<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&ReadTransaction) -> StoreResult<T> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || {
            let tx = db.begin_read()?;
            work(&tx)
        })
        .await
        .map_err(EmbeddedError::from)?
    }

    /// Runs `work` in one write transaction on a blocking thread; commits only when `work`
    /// succeeds, so a refused write (a conflict, a missing record) leaves nothing behind.
    async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction) -> StoreResult<T> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || {
            let tx = db.begin_write()?;
            match work(&tx) {
                Ok(value) => {
                    tx.commit()?;
                    Ok(value)
                }
                Err(err) => {
                    if let Err(abort) = tx.abort() {
                        tracing::warn!(cause = %abort, "aborting store transaction failed");
                    }
                    Err(err)
                }
            }
        })
        .await
        .map_err(EmbeddedError::from)?
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn ping(&self) -> StoreResult<()> {
        self.read(tables::touch).await
    }

    async fn create_user(&self, user: NewUser, key: ApiKey) -> StoreResult<User> {
        let now = Timestamp::now();
        self.write(move |tx| accounts::create_user(tx, user, key, now))
            .await
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        self.read(move |tx| accounts::user_by_id(tx, id)).await
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        let lowered = username.to_lowercase();
        self.read(move |tx| accounts::user_by_username(tx, &lowered))
            .await
    }

    async fn update_profile(&self, id: UserId, update: ProfileUpdate) -> StoreResult<User> {
        let now = Timestamp::now();
        self.write(move |tx| accounts::update_profile(tx, id, update, now))
            .await
    }

    async fn api_key_for_user(&self, user: UserId) -> StoreResult<Option<ApiKey>> {
        self.read(move |tx| accounts::api_key_for_user(tx, user))
            .await
    }

    async fn api_key_by_public(&self, public_key: &str) -> StoreResult<Option<ApiKey>> {
        let public_key = public_key.to_owned();
        self.read(move |tx| accounts::api_key_by_public(tx, &public_key))
            .await
    }

    async fn replace_api_key(&self, key: ApiKey) -> StoreResult<()> {
        self.write(move |tx| accounts::replace_api_key(tx, key))
            .await
    }

    async fn create_router(&self, router: NewRouter) -> StoreResult<Router> {
        let now = Timestamp::now();
        self.write(move |tx| routers::create(tx, router, now)).await
    }

    async fn router(&self, id: RouterId) -> StoreResult<Option<Router>> {
        if let Some(router) = self.routers.get(id) {
            return Ok(Some(router));
        }
        let epoch = self.routers.epoch();
        let found = self.read(move |tx| routers::by_id(tx, id)).await?;
        if let Some(router) = &found {
            self.routers.fill(epoch, router);
        }
        Ok(found)
    }

    async fn routers_for_user(&self, user: UserId) -> StoreResult<Vec<Router>> {
        self.read(move |tx| routers::for_user(tx, user)).await
    }

    async fn all_routers(&self) -> StoreResult<Vec<Router>> {
        self.read(routers::all).await
    }

    async fn update_router(&self, router: Router) -> StoreResult<Router> {
        let now = Timestamp::now();
        let id = router.id;
        let result = self.write(move |tx| routers::update(tx, router, now)).await;
        self.routers.invalidate(id);
        result
    }

    async fn delete_router(&self, id: RouterId) -> StoreResult<Option<Router>> {
        let removed = self.write(move |tx| routers::delete(tx, id)).await;
        self.routers.invalidate(id);
        let removed = removed?;
        if removed.is_some() {
            self.volatile.forget_router(id);
        }
        Ok(removed)
    }

    async fn set_router_status(&self, id: RouterId, status: RouterStatus) -> StoreResult<()> {
        self.volatile.set_status(id, status);
        Ok(())
    }

    async fn router_status(&self, id: RouterId) -> StoreResult<RouterStatus> {
        Ok(self.volatile.status(id))
    }

    async fn create_refresh_family(
        &self,
        family: &str,
        user: UserId,
        jti: &str,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        let (family, jti) = (family.to_owned(), jti.to_owned());
        let now = Timestamp::now();
        self.write(move |tx| refresh::create(tx, &family, user, jti, expires_at, now))
            .await
    }

    async fn rotate_refresh(
        &self,
        family: &str,
        presented_jti: &str,
        new_jti: &str,
        expires_at: Timestamp,
    ) -> StoreResult<RefreshOutcome> {
        let family = family.to_owned();
        let presented = presented_jti.to_owned();
        let fresh = new_jti.to_owned();
        let now = Timestamp::now();
        self.write(move |tx| refresh::rotate(tx, &family, &presented, fresh, expires_at, now))
            .await
    }

    async fn revoke_refresh_family(&self, family: &str) -> StoreResult<()> {
        let family = family.to_owned();
        self.write(move |tx| refresh::revoke(tx, &family)).await
    }

    async fn throttle_hit(&self, key: &str, window: Duration) -> StoreResult<u64> {
        Ok(self.volatile.throttle_hit(key, window))
    }

    async fn throttle_reset(&self, key: &str) -> StoreResult<()> {
        self.volatile.throttle_reset(key);
        Ok(())
    }

    async fn append_audit(&self, entry: AuditEntry) -> StoreResult<()> {
        self.write(move |tx| audit::append(tx, &entry)).await
    }

    async fn recent_audit(&self, limit: usize) -> StoreResult<Vec<AuditEntry>> {
        self.read(move |tx| audit::recent(tx, limit)).await
    }
}
