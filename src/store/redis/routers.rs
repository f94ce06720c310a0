//! Routers, the per-owner router sets and router status in Redis.
//!
//! Every router record sits in one hash (`{routers}:records`) next to the owner sets and
//! the id counter, all in one slot, so creating, moving and deleting a router are single
//! scripts and listing every router is one `HVALS`. The cost is that on a cluster all router
//! records live on one shard: at a few hundred bytes a router, a fleet of 100 000 routers is
//! tens of megabytes there. The hot write path, router status, is one small hash per router
//! under its own tag and spreads over the cluster.
//!
//! Users are never deleted, so checking that an owner exists (in the owner's slot) and then
//! writing the router (in the routers slot) cannot race a deletion.

use std::collections::HashMap;
use std::sync::LazyLock;

use redis::Script;

use super::connection::Conn;
use super::{decode, encode, RedisError, RedisStore, CAS_ATTEMPTS};
use crate::store::{
    NewRouter, Router, RouterId, RouterStatus, StoreError, StoreResult, Timestamp, UserId,
};

static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
          redis.call('SADD', KEYS[2], ARGV[1])
          return 1",
    )
});

/// The owner's router records, skipping ids whose record is gone.
static LIST_OWNER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local out = {}
          for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
            local record = redis.call('HGET', KEYS[1], id)
            if record then out[#out + 1] = record end
          end
          return out",
    )
});

/// Replaces the record if unchanged since read, moving the id between owner sets.
static UPDATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
          redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
          redis.call('SREM', KEYS[2], ARGV[1])
          redis.call('SADD', KEYS[3], ARGV[1])
          return 1",
    )
});

/// Removes the record if unchanged since read, and its id from the owner's set.
static DELETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
          redis.call('HDEL', KEYS[1], ARGV[1])
          redis.call('SREM', KEYS[2], ARGV[1])
          return 1",
    )
});

/// Replaces the whole status hash, so fields that became empty disappear.
static SET_STATUS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"redis.call('DEL', KEYS[1])
          redis.call('HSET', KEYS[1], unpack(ARGV))
          return 1",
    )
});

async fn require_user(store: &RedisStore, conn: &mut Conn, user: UserId) -> StoreResult<()> {
    let exists: bool = redis::cmd("EXISTS")
        .arg(store.keys.user(user))
        .query_async(conn)
        .await?;
    if exists {
        Ok(())
    } else {
        Err(StoreError::NotFound("user"))
    }
}

pub(super) async fn create(store: &RedisStore, new: NewRouter) -> StoreResult<Router> {
    let mut conn = store.conn().await?;
    require_user(store, &mut conn, new.owner).await?;
    let id: RouterId = redis::cmd("INCR")
        .arg(store.keys.router_counter())
        .query_async(&mut conn)
        .await?;
    let now = Timestamp::now();
    let router = new.into_router(id, now);
    CREATE
        .key(store.keys.router_records())
        .key(store.keys.owner_routers(router.owner))
        .arg(id)
        .arg(encode(&router, "router")?)
        .invoke_async::<i64>(&mut conn)
        .await?;
    tracing::debug!(router.id = id, user.id = router.owner, "router created");
    Ok(router)
}

async fn load_raw(
    store: &RedisStore,
    conn: &mut Conn,
    id: RouterId,
) -> StoreResult<Option<Vec<u8>>> {
    Ok(redis::cmd("HGET")
        .arg(store.keys.router_records())
        .arg(id)
        .query_async(conn)
        .await?)
}

pub(super) async fn by_id(store: &RedisStore, id: RouterId) -> StoreResult<Option<Router>> {
    let mut conn = store.conn().await?;
    let raw = load_raw(store, &mut conn, id).await?;
    raw.map(|b| decode(&b, "router")).transpose()
}

/// The owner's routers ordered by name, then id.
pub(super) async fn for_user(store: &RedisStore, user: UserId) -> StoreResult<Vec<Router>> {
    let mut conn = store.conn().await?;
    let raw: Vec<Vec<u8>> = LIST_OWNER
        .key(store.keys.router_records())
        .key(store.keys.owner_routers(user))
        .invoke_async(&mut conn)
        .await?;
    let mut found = raw
        .iter()
        .map(|b| decode::<Router>(b, "router"))
        .collect::<StoreResult<Vec<_>>>()?;
    found.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    Ok(found)
}

/// Every router, ordered by id.
pub(super) async fn all(store: &RedisStore) -> StoreResult<Vec<Router>> {
    let mut conn = store.conn().await?;
    let raw: Vec<Vec<u8>> = redis::cmd("HVALS")
        .arg(store.keys.router_records())
        .query_async(&mut conn)
        .await?;
    let mut found = raw
        .iter()
        .map(|b| decode::<Router>(b, "router"))
        .collect::<StoreResult<Vec<_>>>()?;
    found.sort_by_key(|r| r.id);
    Ok(found)
}

/// Replaces the stored router keeping its `created_at`; a new owner must exist.
pub(super) async fn update(store: &RedisStore, router: Router) -> StoreResult<Router> {
    let mut conn = store.conn().await?;
    for _ in 0..CAS_ATTEMPTS {
        let old = load_raw(store, &mut conn, router.id)
            .await?
            .ok_or(StoreError::NotFound("router"))?;
        let stored: Router = decode(&old, "router")?;
        if stored.owner != router.owner {
            require_user(store, &mut conn, router.owner).await?;
        }
        let updated = Router {
            created_at: stored.created_at,
            updated_at: Timestamp::now(),
            ..router.clone()
        };
        let swapped: i64 = UPDATE
            .key(store.keys.router_records())
            .key(store.keys.owner_routers(stored.owner))
            .key(store.keys.owner_routers(updated.owner))
            .arg(updated.id)
            .arg(old)
            .arg(encode(&updated, "router")?)
            .invoke_async(&mut conn)
            .await?;
        if swapped == 1 {
            return Ok(updated);
        }
    }
    Err(RedisError::ContentionExhausted { what: "router" }.into())
}

/// Removes the router and then its status; returns what was removed.
pub(super) async fn delete(store: &RedisStore, id: RouterId) -> StoreResult<Option<Router>> {
    let mut conn = store.conn().await?;
    for _ in 0..CAS_ATTEMPTS {
        let Some(old) = load_raw(store, &mut conn, id).await? else {
            return Ok(None);
        };
        let stored: Router = decode(&old, "router")?;
        let removed: i64 = DELETE
            .key(store.keys.router_records())
            .key(store.keys.owner_routers(stored.owner))
            .arg(id)
            .arg(old)
            .invoke_async(&mut conn)
            .await?;
        if removed == 1 {
            // Another slot: a failure here leaves a status nobody reads, never a router.
            let dropped = redis::cmd("DEL")
                .arg(store.keys.router_status(id))
                .query_async::<()>(&mut conn)
                .await;
            if let Err(err) = dropped {
                tracing::warn!(router.id = id, cause = %err, "router status not removed");
            }
            tracing::debug!(router.id = id, user.id = stored.owner, "router deleted");
            return Ok(Some(stored));
        }
    }
    Err(RedisError::ContentionExhausted { what: "router" }.into())
}

pub(super) async fn set_status(
    store: &RedisStore,
    id: RouterId,
    status: RouterStatus,
) -> StoreResult<()> {
    let mut conn = store.conn().await?;
    let mut fields: Vec<String> = vec!["online".into(), u8::from(status.is_online).to_string()];
    if let Some(checked) = status.last_checked {
        fields.extend(["checked".into(), checked.0.to_string()]);
    }
    if let Some(error) = status.last_error {
        fields.extend(["error".into(), error]);
    }
    if let Some(version) = status.routeros_version {
        fields.extend(["version".into(), version]);
    }
    SET_STATUS
        .key(store.keys.router_status(id))
        .arg(fields)
        .invoke_async::<i64>(&mut conn)
        .await?;
    Ok(())
}

/// A router never reported on reads as the default status (offline, never checked).
pub(super) async fn status(store: &RedisStore, id: RouterId) -> StoreResult<RouterStatus> {
    let mut conn = store.conn().await?;
    let mut fields: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(store.keys.router_status(id))
        .query_async(&mut conn)
        .await?;
    let last_checked = match fields.remove("checked") {
        Some(text) => Some(Timestamp(text.parse().map_err(|_| {
            StoreError::Corrupt(format!("router {id} status has a bad check time"))
        })?)),
        None => None,
    };
    Ok(RouterStatus {
        is_online: fields.get("online").is_some_and(|v| v == "1"),
        last_checked,
        last_error: fields.remove("error"),
        routeros_version: fields.remove("version"),
    })
}
