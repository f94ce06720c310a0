//! Runs the store conformance suite against the Redis backend on a real `redis-server`
//! (one fresh server per test, on a free loopback port), plus what only the Redis backend
//! promises: state shared between nodes, repair of abandoned uniqueness claims, namespaces,
//! and `Unavailable` when Redis cannot be reached.

#[macro_use]
#[path = "store_conformance/suite.rs"]
mod suite;

mod redis_server;

use std::time::Duration;

use cloudpilot::store::redis::RedisStore;
use cloudpilot::store::{ApiKey, RouterStatus, Store, StoreError, Timestamp};
use redis_server::RedisServer;
use suite::fixtures::{api_key, new_router, new_user};

/// A fresh server and a store on it; the server is the guard.
fn redis_store() -> (RedisServer, RedisStore) {
    let server = RedisServer::start();
    let store = RedisStore::connect(&server.url(), 8).expect("connect");
    (server, store)
}

conformance_suite!(suite, redis_store());

/// Two stores on one Redis behave as two nodes of one deployment: a user, a router status
/// and a throttle count written through one are seen through the other.
#[tokio::test]
async fn two_nodes_share_users_status_and_throttle() {
    let (_server, first) = redis_store();
    let second = RedisStore::connect(&_server.url(), 2).unwrap();
    let alice = first
        .create_user(new_user("alice"), api_key("aa11"))
        .await
        .unwrap();
    assert_eq!(
        second.user_by_username("ALICE").await.unwrap(),
        Some(alice.clone())
    );
    let router = second
        .create_router(new_router(alice.id, "core"))
        .await
        .unwrap();
    let online = RouterStatus {
        is_online: true,
        last_checked: Some(Timestamp::now()),
        last_error: None,
        routeros_version: Some("7.18.2".to_owned()),
    };
    first
        .set_router_status(router.id, online.clone())
        .await
        .unwrap();
    assert_eq!(second.router_status(router.id).await.unwrap(), online);
    let window = Duration::from_secs(30);
    first.throttle_hit("login:alice", window).await.unwrap();
    assert_eq!(second.throttle_hit("login:alice", window).await.unwrap(), 2);
    // Deleting the router drops its status too.
    first.delete_router(router.id).await.unwrap();
    assert_eq!(
        second.router_status(router.id).await.unwrap(),
        RouterStatus::default()
    );
}

/// A username claim left by a registration that died before writing its user blocks the
/// name while it may still be in flight, and is taken over once it is abandoned.
#[tokio::test]
async fn abandoned_username_claim_is_taken_over() {
    let (server, store) = redis_store();
    let now_ms = Timestamp::now().0 / 1000;
    server.command(&format!("SET cp:name:{{dave}} 999:{now_ms}"));
    let err = store
        .create_user(new_user("Dave"), api_key("dd44"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict("username")),
        "got {err:?}"
    );
    assert_eq!(store.user_by_username("dave").await.unwrap(), None);

    let long_ago = now_ms - 60_000;
    server.command(&format!("SET cp:name:{{dave}} 999:{long_ago}"));
    let dave = store
        .create_user(new_user("Dave"), api_key("dd44"))
        .await
        .expect("an abandoned claim does not block the name forever");
    assert_eq!(store.user_by_username("dave").await.unwrap(), Some(dave));
}

/// A claim on a public key whose holder no longer has that key (a crash after the key was
/// replaced) resolves to nothing and is free for another user once old.
#[tokio::test]
async fn stale_public_key_claim_resolves_to_nothing() {
    let (server, store) = redis_store();
    let alice = store
        .create_user(new_user("alice"), api_key("aa11"))
        .await
        .unwrap();
    let long_ago = Timestamp::now().0 / 1000 - 60_000;
    server.command(&format!("SET cp:pk:{{ee55}} {}:{long_ago}", alice.id));
    assert_eq!(store.api_key_by_public("ee55").await.unwrap(), None);
    let bob = store
        .create_user(new_user("bob"), api_key("ee55"))
        .await
        .expect("a stale key claim is taken over");
    let key = store.api_key_by_public("ee55").await.unwrap().unwrap();
    assert_eq!(key.user_id, bob.id);
    let alice_key = store.api_key_for_user(alice.id).await.unwrap().unwrap();
    assert_eq!(alice_key.public_key, "aa11");
}

/// Stores in different namespaces on one Redis see nothing of each other.
#[tokio::test]
async fn namespaces_isolate_deployments() {
    let (server, store) = redis_store();
    let other = RedisStore::connect_namespaced(&server.url(), 2, "staging").unwrap();
    store
        .create_user(new_user("alice"), api_key("aa11"))
        .await
        .unwrap();
    assert_eq!(other.user_by_username("alice").await.unwrap(), None);
    other
        .create_user(new_user("alice"), api_key("aa11"))
        .await
        .expect("the same name and key are free in another namespace");
    assert!(RedisStore::connect_namespaced(&server.url(), 2, "bad{tag}").is_err());
}

/// A record that does not decode reads as `Corrupt`, not as absent.
#[tokio::test]
async fn undecodable_record_reads_as_corrupt() {
    let (server, store) = redis_store();
    server.command("SET cp:{u:5}:user garbage");
    let err = store.user_by_id(5).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "got {err:?}");
}

/// With Redis gone every call fails as `Unavailable`, and a replaced key write reports it.
#[tokio::test]
async fn unreachable_redis_is_unavailable() {
    let (server, store) = redis_store();
    store.ping().await.unwrap();
    drop(server);
    let err = store.ping().await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "got {err:?}");
    let key = ApiKey {
        user_id: 1,
        ..api_key("aa11")
    };
    let err = store.replace_api_key(key).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "got {err:?}");
    assert!(RedisStore::connect("http://127.0.0.1:1", 1).is_err());
}

/// A node configured with `store.backend = "redis"` keeps its users in that Redis: a user
/// created through the node's store is visible to a second store on the same server.
#[tokio::test]
async fn node_opens_the_redis_backend_from_config() {
    let (server, direct) = redis_store();
    let data_dir = tempfile::tempdir().unwrap();
    let env = [
        ("CLOUDPILOT__STORE__BACKEND", "redis".to_owned()),
        ("CLOUDPILOT__STORE__REDIS_URL", server.url()),
        (
            "CLOUDPILOT__STORE__DATA_DIR",
            data_dir.path().display().to_string(),
        ),
        ("CLOUDPILOT__AUTH__JWT_SECRET", "j".repeat(40)),
        ("CLOUDPILOT__SECRETS__MASTER_KEY", "ab".repeat(32)),
        ("CLOUDPILOT__AUTH__PBKDF2_ITERATIONS", "1000".to_owned()),
    ]
    .map(|(k, v)| (k.to_owned(), v));
    let settings = cloudpilot::config::Settings::load_with_env(None, env).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let node = cloudpilot::node::Node::start(settings, listener)
        .await
        .expect("node starts on redis");
    let alice = node
        .state
        .store
        .create_user(new_user("alice"), api_key("aa11"))
        .await
        .unwrap();
    assert_eq!(direct.user_by_id(alice.id).await.unwrap(), Some(alice));
    assert!(!data_dir.path().join("cloudpilot.redb").exists());
    node.shutdown().await;
}
