//! Conformance cases for routers, the per-owner listing and router status.

use cloudpilot::store::{RouterStatus, Store, StoreError, Timestamp, Transport, UserId};

use super::fixtures::{api_key, new_router, new_user, sealed};

async fn make_user<S: Store>(store: &S, name: &str, public_key: &str) -> UserId {
    store
        .create_user(new_user(name), api_key(public_key))
        .await
        .unwrap()
        .id
}

/// Create, read, update and delete return and persist what they say.
pub async fn router_crud_round_trip<S: Store>(store: &S) {
    let owner = make_user(store, "alice", "aa11").await;
    let created = store
        .create_router(new_router(owner, "core-1"))
        .await
        .unwrap();
    assert_eq!(created.owner, owner);
    assert_eq!(created.password, sealed(1));
    assert_eq!(
        store.router(created.id).await.unwrap(),
        Some(created.clone())
    );

    let mut changed = created.clone();
    changed.name = "core-1b".to_owned();
    changed.transport = Transport::Rest;
    changed.use_https = true;
    changed.tls = "insecure".to_owned();
    changed.tags = vec!["prod".to_owned(), "edge".to_owned()];
    changed.password = sealed(2);
    let updated = store.update_router(changed.clone()).await.unwrap();
    assert_eq!(updated.created_at, created.created_at);
    assert!(updated.updated_at >= created.updated_at);
    let stored = store.router(created.id).await.unwrap().unwrap();
    assert_eq!(stored, updated);
    assert_eq!(stored.name, "core-1b");
    assert_eq!(stored.tags, changed.tags);
    assert_eq!(stored.password, sealed(2));

    let removed = store.delete_router(created.id).await.unwrap();
    assert_eq!(removed, Some(stored));
    assert_eq!(store.router(created.id).await.unwrap(), None);
    assert!(store.routers_for_user(owner).await.unwrap().is_empty());
    assert!(store.all_routers().await.unwrap().is_empty());
    assert_eq!(store.delete_router(created.id).await.unwrap(), None);
}

pub async fn router_for_absent_owner_is_not_found<S: Store>(store: &S) {
    let err = store
        .create_router(new_router(4242, "ghost"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound("user")), "got {err:?}");
    assert!(store.all_routers().await.unwrap().is_empty());
}

/// Listing sorts by name, and equal names by id.
pub async fn routers_for_user_ordered_by_name_then_id<S: Store>(store: &S) {
    let owner = make_user(store, "alice", "aa11").await;
    let mut ids = Vec::new();
    for name in ["zeta", "alpha", "mid", "alpha"] {
        ids.push(
            store
                .create_router(new_router(owner, name))
                .await
                .unwrap()
                .id,
        );
    }
    let listed: Vec<(String, u64)> = store
        .routers_for_user(owner)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.name, r.id))
        .collect();
    let expected = vec![
        ("alpha".to_owned(), ids[1]),
        ("alpha".to_owned(), ids[3]),
        ("mid".to_owned(), ids[2]),
        ("zeta".to_owned(), ids[0]),
    ];
    assert_eq!(listed, expected);
}

/// One user's listing never shows another's routers; `all_routers` shows everyone's.
pub async fn routers_are_isolated_between_users<S: Store>(store: &S) {
    let alice = make_user(store, "alice", "aa11").await;
    let bob = make_user(store, "bob", "bb22").await;
    let carol = make_user(store, "carol", "cc33").await;
    let a = store.create_router(new_router(alice, "r")).await.unwrap();
    let b = store.create_router(new_router(bob, "r")).await.unwrap();
    let alice_ids: Vec<u64> = store
        .routers_for_user(alice)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    let bob_ids: Vec<u64> = store
        .routers_for_user(bob)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(alice_ids, vec![a.id]);
    assert_eq!(bob_ids, vec![b.id]);
    assert!(store.routers_for_user(carol).await.unwrap().is_empty());
    let mut all: Vec<u64> = store
        .all_routers()
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    all.sort_unstable();
    assert_eq!(all, vec![a.id, b.id]);
}

/// Updating a router with a new owner moves it from one listing to the other.
pub async fn router_owner_change_moves_it_between_lists<S: Store>(store: &S) {
    let alice = make_user(store, "alice", "aa11").await;
    let bob = make_user(store, "bob", "bb22").await;
    let mut router = store.create_router(new_router(alice, "r")).await.unwrap();
    router.owner = bob;
    store.update_router(router.clone()).await.unwrap();
    assert!(store.routers_for_user(alice).await.unwrap().is_empty());
    let bobs = store.routers_for_user(bob).await.unwrap();
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0].id, router.id);
}

/// A deleted router's id is never handed out again.
pub async fn router_ids_never_reused_after_delete<S: Store>(store: &S) {
    let owner = make_user(store, "alice", "aa11").await;
    let first = store.create_router(new_router(owner, "a")).await.unwrap();
    let second = store.create_router(new_router(owner, "b")).await.unwrap();
    store.delete_router(second.id).await.unwrap();
    store.delete_router(first.id).await.unwrap();
    let third = store.create_router(new_router(owner, "c")).await.unwrap();
    assert!(
        third.id > second.id,
        "{} reused after {}",
        third.id,
        second.id
    );
}

pub async fn update_of_absent_router_is_not_found<S: Store>(store: &S) {
    let owner = make_user(store, "alice", "aa11").await;
    let mut router = store.create_router(new_router(owner, "a")).await.unwrap();
    store.delete_router(router.id).await.unwrap();
    router.name = "resurrected".to_owned();
    let err = store.update_router(router.clone()).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound("router")), "got {err:?}");
    assert_eq!(store.router(router.id).await.unwrap(), None);
}

/// Never-reported routers read as the default status; a set status reads back whole.
pub async fn router_status_defaults_then_round_trips<S: Store>(store: &S) {
    let owner = make_user(store, "alice", "aa11").await;
    let router = store.create_router(new_router(owner, "a")).await.unwrap();
    assert_eq!(
        store.router_status(router.id).await.unwrap(),
        RouterStatus::default()
    );
    let online = RouterStatus {
        is_online: true,
        last_checked: Some(Timestamp::now()),
        last_error: None,
        routeros_version: Some("7.15.3".to_owned()),
    };
    store
        .set_router_status(router.id, online.clone())
        .await
        .unwrap();
    assert_eq!(store.router_status(router.id).await.unwrap(), online);
    let failed = RouterStatus {
        is_online: false,
        last_error: Some("connection refused".to_owned()),
        ..online
    };
    store
        .set_router_status(router.id, failed.clone())
        .await
        .unwrap();
    assert_eq!(store.router_status(router.id).await.unwrap(), failed);
}
