//! Runs the store conformance suite against the embedded (redb) backend, plus what only
//! the embedded backend promises (data survives closing and reopening the file) and the
//! sealing of router secrets that every backend relies on.

#[macro_use]
#[path = "store_conformance/suite.rs"]
mod suite;

#[path = "store_conformance/sealing.rs"]
mod sealing;

use cloudpilot::store::embedded::EmbeddedStore;
use cloudpilot::store::{AuditEntry, ProfileUpdate, RefreshOutcome, Store, Timestamp};
use suite::fixtures::{api_key, in_secs, new_router, new_user};
use tempfile::TempDir;

/// A fresh embedded store in its own temp dir; the dir is the guard.
fn embedded_store() -> (TempDir, EmbeddedStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = EmbeddedStore::open_in(dir.path()).expect("open embedded store");
    (dir, store)
}

conformance_suite!(suite, embedded_store());

/// Users, keys, routers, refresh families, audit entries and id counters are on disk:
/// a store reopened from the same file sees them all and keeps counting ids upward.
#[tokio::test]
async fn embedded_data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, router) = {
        let store = EmbeddedStore::open_in(dir.path()).unwrap();
        let alice = store
            .create_user(new_user("Alice"), api_key("aa11"))
            .await
            .unwrap();
        let bio = ProfileUpdate {
            bio: Some("persisted".to_owned()),
            ..ProfileUpdate::default()
        };
        let alice = store.update_profile(alice.id, bio).await.unwrap();
        let router = store
            .create_router(new_router(alice.id, "core"))
            .await
            .unwrap();
        store
            .create_refresh_family("fam", alice.id, "jti-1", in_secs(3600))
            .await
            .unwrap();
        store
            .append_audit(AuditEntry {
                at: Timestamp::now(),
                user_id: Some(alice.id),
                action: "router.create".to_owned(),
                router_id: Some(router.id),
                detail: "core".to_owned(),
            })
            .await
            .unwrap();
        (alice, router)
    };

    let store = EmbeddedStore::open_in(dir.path()).expect("reopen after close");
    assert_eq!(
        store.user_by_username("alice").await.unwrap(),
        Some(alice.clone())
    );
    let key = store.api_key_by_public("aa11").await.unwrap().unwrap();
    assert_eq!(key.user_id, alice.id);
    assert_eq!(store.router(router.id).await.unwrap(), Some(router.clone()));
    assert_eq!(
        store.routers_for_user(alice.id).await.unwrap(),
        vec![router.clone()]
    );
    let rotated = store
        .rotate_refresh("fam", "jti-1", "jti-2", in_secs(3600))
        .await
        .unwrap();
    assert_eq!(rotated, RefreshOutcome::Rotated { user_id: alice.id });
    let audit = store.recent_audit(10).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action, "router.create");
    let bob = store
        .create_user(new_user("bob"), api_key("bb22"))
        .await
        .unwrap();
    assert!(bob.id > alice.id, "user ids restart after reopen");
    let next = store
        .create_router(new_router(alice.id, "edge"))
        .await
        .unwrap();
    assert!(next.id > router.id, "router ids restart after reopen");
}

/// The file is locked while a store has it open, so two processes cannot both write it.
#[tokio::test]
async fn embedded_file_cannot_be_opened_twice() {
    let (dir, _store) = embedded_store();
    let second = EmbeddedStore::open_in(dir.path());
    assert!(second.is_err(), "a second open of a locked file must fail");
}
