//! The audit trail inside the embedded store, keyed by (time, sequence).
//!
//! Entries are never pruned here; the trail grows with activity. Retention (dropping
//! entries older than some age) would be a range delete on the same key and is not built.

use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use super::tables::{decode, encode, next_id, AUDIT, AUDIT_COUNTER};
use crate::store::{AuditEntry, StoreResult};

pub(super) fn append(tx: &WriteTransaction, entry: &AuditEntry) -> StoreResult<()> {
    let seq = next_id(tx, AUDIT_COUNTER)?;
    tx.open_table(AUDIT)?
        .insert((entry.at.0, seq), encode(entry, "audit entry")?.as_slice())?;
    Ok(())
}

/// Newest first: by time, then by the order they were appended.
pub(super) fn recent(tx: &ReadTransaction, limit: usize) -> StoreResult<Vec<AuditEntry>> {
    let mut found = Vec::with_capacity(limit.min(1024));
    for row in tx.open_table(AUDIT)?.iter()?.rev().take(limit) {
        let (_, bytes) = row?;
        found.push(decode(bytes.value(), "audit entry")?);
    }
    Ok(found)
}
