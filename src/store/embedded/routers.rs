//! Routers and the owner → routers index inside the embedded store.

use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use super::tables::{decode, encode, load, next_id, ROUTERS, ROUTER_COUNTER, USERS, USER_ROUTERS};
use crate::store::{NewRouter, Router, RouterId, StoreError, StoreResult, Timestamp, UserId};

/// Stores a new router for an existing owner; `NotFound("user")` when the owner is absent,
/// so no router can outlive the account it belongs to.
pub(super) fn create(tx: &WriteTransaction, new: NewRouter, now: Timestamp) -> StoreResult<Router> {
    require_user(tx, new.owner)?;
    let id = next_id(tx, ROUTER_COUNTER)?;
    let router = new.into_router(id, now);
    tx.open_table(ROUTERS)?
        .insert(id, encode(&router, "router")?.as_slice())?;
    tx.open_multimap_table(USER_ROUTERS)?
        .insert(router.owner, id)?;
    tracing::debug!(router.id = id, user.id = router.owner, "router created");
    Ok(router)
}

pub(super) fn by_id(tx: &ReadTransaction, id: RouterId) -> StoreResult<Option<Router>> {
    load(&tx.open_table(ROUTERS)?, id, "router")
}

/// The owner's routers ordered by name, then id.
pub(super) fn for_user(tx: &ReadTransaction, user: UserId) -> StoreResult<Vec<Router>> {
    let routers = tx.open_table(ROUTERS)?;
    let mut found = Vec::new();
    for id in tx.open_multimap_table(USER_ROUTERS)?.get(user)? {
        let id = id?.value();
        let router: Router = load(&routers, id, "router")?.ok_or_else(|| {
            StoreError::Corrupt(format!("user {user} lists router {id}, which is missing"))
        })?;
        found.push(router);
    }
    found.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    Ok(found)
}

/// Every router, ordered by id.
pub(super) fn all(tx: &ReadTransaction) -> StoreResult<Vec<Router>> {
    let mut found = Vec::new();
    for row in tx.open_table(ROUTERS)?.iter()? {
        let (_, bytes) = row?;
        found.push(decode(bytes.value(), "router")?);
    }
    Ok(found)
}

/// Replaces the stored router. `created_at` stays what the store recorded and `updated_at`
/// becomes now; a change of owner moves the router between owners' lists.
pub(super) fn update(tx: &WriteTransaction, router: Router, now: Timestamp) -> StoreResult<Router> {
    let mut routers = tx.open_table(ROUTERS)?;
    let stored: Router =
        load(&routers, router.id, "router")?.ok_or(StoreError::NotFound("router"))?;
    if stored.owner != router.owner {
        require_user(tx, router.owner)?;
        let mut index = tx.open_multimap_table(USER_ROUTERS)?;
        index.remove(stored.owner, router.id)?;
        index.insert(router.owner, router.id)?;
    }
    let updated = Router {
        created_at: stored.created_at,
        updated_at: now,
        ..router
    };
    routers.insert(updated.id, encode(&updated, "router")?.as_slice())?;
    Ok(updated)
}

pub(super) fn delete(tx: &WriteTransaction, id: RouterId) -> StoreResult<Option<Router>> {
    let mut routers = tx.open_table(ROUTERS)?;
    let router: Option<Router> = match routers.remove(id)? {
        Some(bytes) => Some(decode(bytes.value(), "router")?),
        None => None,
    };
    let Some(router) = router else {
        return Ok(None);
    };
    tx.open_multimap_table(USER_ROUTERS)?
        .remove(router.owner, id)?;
    tracing::debug!(router.id = id, user.id = router.owner, "router deleted");
    Ok(Some(router))
}

fn require_user(tx: &WriteTransaction, user: UserId) -> StoreResult<()> {
    match tx.open_table(USERS)?.get(user)? {
        Some(_) => Ok(()),
        None => Err(StoreError::NotFound("user")),
    }
}
