//! The on-disk layout of the embedded store: every redb table, how records are encoded
//! (bincode 2, standard config) and the id counters.
//!
//! Records are stored whole as bincode bytes; the secondary tables (`usernames`,
//! `public_keys`, `user_routers`, `refresh_expiry`) exist so that each lookup the trait
//! offers is one key read rather than a scan.

use redb::{
    MultimapTableDefinition, ReadTransaction, ReadableTable, TableDefinition, WriteTransaction,
};
use serde::{de::DeserializeOwned, Serialize};

use super::EmbeddedError;
use crate::store::StoreResult;

/// user id → `User`.
pub(super) const USERS: TableDefinition<u64, &[u8]> = TableDefinition::new("users");
/// lowercased username → user id; makes uniqueness case-insensitive.
pub(super) const USERNAMES: TableDefinition<&str, u64> = TableDefinition::new("usernames");
/// user id → that user's one `ApiKey`.
pub(super) const API_KEYS: TableDefinition<u64, &[u8]> = TableDefinition::new("api_keys");
/// public key → user id; makes public keys unique across users.
pub(super) const PUBLIC_KEYS: TableDefinition<&str, u64> = TableDefinition::new("public_keys");
/// router id → `Router`.
pub(super) const ROUTERS: TableDefinition<u64, &[u8]> = TableDefinition::new("routers");
/// owner id → router ids.
pub(super) const USER_ROUTERS: MultimapTableDefinition<u64, u64> =
    MultimapTableDefinition::new("user_routers");
/// counter name → last id handed out. Ids only grow, so a deleted id is never reused.
pub(super) const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");
/// family id → `RefreshFamily`.
pub(super) const REFRESH_FAMILIES: TableDefinition<&str, &[u8]> =
    TableDefinition::new("refresh_families");
/// (expiry µs, family id) → (); lets expired families be pruned oldest first.
pub(super) const REFRESH_EXPIRY: TableDefinition<(i64, &str), ()> =
    TableDefinition::new("refresh_expiry");
/// (time µs, sequence) → `AuditEntry`; the sequence orders entries with equal times.
pub(super) const AUDIT: TableDefinition<(i64, u64), &[u8]> = TableDefinition::new("audit");

pub(super) const USER_COUNTER: &str = "user";
pub(super) const ROUTER_COUNTER: &str = "router";
pub(super) const AUDIT_COUNTER: &str = "audit";

/// Creates every table so that read transactions never meet a missing one.
pub(super) fn create_all(tx: &WriteTransaction) -> StoreResult<()> {
    tx.open_table(USERS)?;
    tx.open_table(USERNAMES)?;
    tx.open_table(API_KEYS)?;
    tx.open_table(PUBLIC_KEYS)?;
    tx.open_table(ROUTERS)?;
    tx.open_multimap_table(USER_ROUTERS)?;
    tx.open_table(COUNTERS)?;
    tx.open_table(REFRESH_FAMILIES)?;
    tx.open_table(REFRESH_EXPIRY)?;
    tx.open_table(AUDIT)?;
    Ok(())
}

/// Reads one table, proving the file is readable; backs `ping`.
pub(super) fn touch(tx: &ReadTransaction) -> StoreResult<()> {
    tx.open_table(COUNTERS)?.get(USER_COUNTER)?;
    Ok(())
}

pub(super) fn encode<T: Serialize>(value: &T, what: &'static str) -> StoreResult<Vec<u8>> {
    bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map_err(|source| EmbeddedError::EncodeFailed { what, source }.into())
}

pub(super) fn decode<T: DeserializeOwned>(bytes: &[u8], what: &'static str) -> StoreResult<T> {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map(|(value, _)| value)
        .map_err(|source| EmbeddedError::DecodeFailed { what, source }.into())
}

/// Reads and decodes the record under `key`, if any.
pub(super) fn load<K, T>(
    table: &impl ReadableTable<K, &'static [u8]>,
    key: K::SelfType<'_>,
    what: &'static str,
) -> StoreResult<Option<T>>
where
    K: redb::Key + 'static,
    T: DeserializeOwned,
{
    match table.get(key)? {
        Some(bytes) => decode(bytes.value(), what).map(Some),
        None => Ok(None),
    }
}

/// Hands out the next id of `counter`, starting at 1.
pub(super) fn next_id(tx: &WriteTransaction, counter: &str) -> StoreResult<u64> {
    let mut counters = tx.open_table(COUNTERS)?;
    let last = counters.get(counter)?.map(|v| v.value()).unwrap_or(0);
    let next = last + 1;
    counters.insert(counter, next)?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::ReadableDatabase;

    use crate::store::embedded::EmbeddedStore;
    use crate::store::{Store, StoreError};

    /// A stored record that no longer decodes surfaces as `Corrupt`, not as a panic or as
    /// "absent", so the operator learns the file is damaged.
    #[tokio::test]
    async fn undecodable_record_reads_as_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open_in(dir.path()).unwrap();
        let tx = store.db.begin_write().unwrap();
        tx.open_table(USERS)
            .unwrap()
            .insert(5, [0xffu8; 3].as_slice())
            .unwrap();
        tx.commit().unwrap();
        let err = store.user_by_id(5).await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "got {err:?}");
        assert!(store.user_by_id(6).await.unwrap().is_none());
    }

    /// A write whose work fails commits nothing, even what it wrote before failing.
    #[tokio::test]
    async fn failed_write_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open_in(dir.path()).unwrap();
        let outcome: StoreResult<()> = store
            .write(|tx| {
                tx.open_table(USERNAMES)?.insert("half", 9)?;
                next_id(tx, USER_COUNTER)?;
                Err(StoreError::Conflict("username"))
            })
            .await;
        assert!(matches!(outcome, Err(StoreError::Conflict("username"))));
        let tx = store.db.begin_read().unwrap();
        assert!(tx
            .open_table(USERNAMES)
            .unwrap()
            .get("half")
            .unwrap()
            .is_none());
        assert!(tx
            .open_table(COUNTERS)
            .unwrap()
            .get(USER_COUNTER)
            .unwrap()
            .is_none());
    }

    /// Counters start at 1 and only grow within and across transactions.
    #[test]
    fn next_id_counts_up_from_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open_in(dir.path()).unwrap();
        let tx = store.db.begin_write().unwrap();
        assert_eq!(next_id(&tx, ROUTER_COUNTER).unwrap(), 1);
        assert_eq!(next_id(&tx, ROUTER_COUNTER).unwrap(), 2);
        assert_eq!(next_id(&tx, USER_COUNTER).unwrap(), 1);
        tx.commit().unwrap();
        let tx = store.db.begin_write().unwrap();
        assert_eq!(next_id(&tx, ROUTER_COUNTER).unwrap(), 3);
    }
}
