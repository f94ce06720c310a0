//! Refresh-token families inside the embedded store.
//!
//! A family remembers only its current token id. Presenting the current id spends it and
//! makes the new one current; presenting any other id of the family means a spent token
//! was replayed (or the family id leaked), so the family is deleted and the caller told.
//! Revoked and expired families are deleted rather than kept as tombstones, so "revoked"
//! and "unknown" answer the same: `Invalid`.
//!
//! Expired families are pruned when touched, and every create or rotation also sweeps a
//! bounded batch of the oldest expired families via the `refresh_expiry` index, so the table
//! does not keep families of clients that never came back.

use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::tables::{encode, load, REFRESH_EXPIRY, REFRESH_FAMILIES};
use crate::store::{RefreshOutcome, StoreError, StoreResult, Timestamp, UserId};

/// How many expired families one write sweeps at most, to keep each write short.
const PRUNE_BATCH: usize = 64;

#[derive(Debug, Serialize, Deserialize)]
struct RefreshFamily {
    user_id: UserId,
    current_jti: String,
    expires_at: Timestamp,
}

/// Starts a family; `Conflict("refresh_family")` if a live family already has that id.
pub(super) fn create(
    tx: &WriteTransaction,
    family: &str,
    user_id: UserId,
    jti: String,
    expires_at: Timestamp,
    now: Timestamp,
) -> StoreResult<()> {
    prune_expired(tx, now)?;
    let mut families = tx.open_table(REFRESH_FAMILIES)?;
    let existing: Option<RefreshFamily> = load(&families, family, "refresh family")?;
    if let Some(existing) = existing {
        if existing.expires_at > now {
            return Err(StoreError::Conflict("refresh_family"));
        }
        // Expired but not yet swept: it is gone as far as callers can tell.
        tx.open_table(REFRESH_EXPIRY)?
            .remove((existing.expires_at.0, family))?;
    }
    let record = RefreshFamily {
        user_id,
        current_jti: jti,
        expires_at,
    };
    families.insert(family, encode(&record, "refresh family")?.as_slice())?;
    tx.open_table(REFRESH_EXPIRY)?
        .insert((expires_at.0, family), ())?;
    Ok(())
}

pub(super) fn rotate(
    tx: &WriteTransaction,
    family: &str,
    presented: &str,
    new_jti: String,
    expires_at: Timestamp,
    now: Timestamp,
) -> StoreResult<RefreshOutcome> {
    prune_expired(tx, now)?;
    let mut families = tx.open_table(REFRESH_FAMILIES)?;
    let mut expiry = tx.open_table(REFRESH_EXPIRY)?;
    let record: Option<RefreshFamily> = load(&families, family, "refresh family")?;
    let Some(mut record) = record else {
        return Ok(RefreshOutcome::Invalid);
    };
    if record.expires_at <= now {
        families.remove(family)?;
        expiry.remove((record.expires_at.0, family))?;
        return Ok(RefreshOutcome::Invalid);
    }
    if record.current_jti != presented {
        families.remove(family)?;
        expiry.remove((record.expires_at.0, family))?;
        tracing::warn!(
            user.id = record.user_id,
            "spent refresh token presented again; family revoked"
        );
        return Ok(RefreshOutcome::ReuseDetected);
    }
    expiry.remove((record.expires_at.0, family))?;
    record.current_jti = new_jti;
    record.expires_at = expires_at;
    families.insert(family, encode(&record, "refresh family")?.as_slice())?;
    expiry.insert((expires_at.0, family), ())?;
    Ok(RefreshOutcome::Rotated {
        user_id: record.user_id,
    })
}

/// Deletes the family; revoking an unknown family is not an error (logout is idempotent).
pub(super) fn revoke(tx: &WriteTransaction, family: &str) -> StoreResult<()> {
    let record: Option<RefreshFamily> =
        load(&tx.open_table(REFRESH_FAMILIES)?, family, "refresh family")?;
    if let Some(record) = record {
        tx.open_table(REFRESH_FAMILIES)?.remove(family)?;
        tx.open_table(REFRESH_EXPIRY)?
            .remove((record.expires_at.0, family))?;
    }
    Ok(())
}

/// Deletes up to [`PRUNE_BATCH`] families whose expiry has passed, oldest first.
fn prune_expired(tx: &WriteTransaction, now: Timestamp) -> StoreResult<()> {
    let mut expiry = tx.open_table(REFRESH_EXPIRY)?;
    let mut due: Vec<(i64, String)> = Vec::new();
    for row in expiry.range((i64::MIN, "")..(now.0, ""))?.take(PRUNE_BATCH) {
        let (key, _) = row?;
        let (at, family) = key.value();
        due.push((at, family.to_owned()));
    }
    if due.is_empty() {
        return Ok(());
    }
    let mut families = tx.open_table(REFRESH_FAMILIES)?;
    for (at, family) in &due {
        expiry.remove((*at, family.as_str()))?;
        families.remove(family.as_str())?;
    }
    tracing::debug!(pruned = due.len(), "expired refresh families pruned");
    Ok(())
}
