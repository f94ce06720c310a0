//! Runs the store conformance suite against the Redis backend on a real three-node Redis
//! Cluster (`redis-cli --cluster create`, no replicas), through a cluster connection seeded
//! with all three nodes. Proves every multi-key write stays within one slot: a cross-slot
//! script or transaction fails on a cluster with `CROSSSLOT`.
//!
//! The cluster is shared by the tests running at once (each test in its own key namespace)
//! and is killed when the last of them drops its handle.

#[macro_use]
#[path = "store_conformance/suite.rs"]
mod suite;

mod redis_server;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use cloudpilot::store::redis::RedisStore;
use cloudpilot::store::Store;
use redis_server::RedisCluster;
use suite::fixtures::{api_key, new_router, new_user};

static CLUSTER: Mutex<Weak<RedisCluster>> = Mutex::new(Weak::new());
static NEXT_NAMESPACE: AtomicUsize = AtomicUsize::new(0);

/// The running cluster, started if no test holds it.
fn shared_cluster() -> Arc<RedisCluster> {
    let mut slot = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(cluster) = slot.upgrade() {
        return cluster;
    }
    let cluster = Arc::new(RedisCluster::start());
    *slot = Arc::downgrade(&cluster);
    cluster
}

/// A store on the shared cluster in a namespace no other test uses.
fn cluster_store() -> (Arc<RedisCluster>, RedisStore) {
    let cluster = shared_cluster();
    let ns = format!("t{}", NEXT_NAMESPACE.fetch_add(1, Ordering::Relaxed));
    let store = RedisStore::connect_namespaced(&cluster.url(), 4, &ns).expect("connect");
    (cluster, store)
}

conformance_suite!(suite, cluster_store());

/// Users and routers land on more than one node, so the suite above really crossed slots
/// and nodes; and a `redis+cluster://` URL naming one seed node finds the rest.
#[tokio::test]
async fn data_spreads_over_nodes_and_one_seed_suffices() {
    let (cluster, store) = cluster_store();
    for i in 0..12 {
        let user = store
            .create_user(new_user(&format!("user{i}")), api_key(&format!("{i:032x}")))
            .await
            .unwrap();
        store
            .create_router(new_router(user.id, "edge"))
            .await
            .unwrap();
    }
    let holding: usize = cluster
        .nodes
        .iter()
        .filter(|n| !n.command("DBSIZE").starts_with(":0"))
        .count();
    assert!(holding >= 2, "keys landed on {holding} node(s) only");

    let seed = format!("redis+cluster://127.0.0.1:{}", cluster.nodes[2].port);
    let via_seed = RedisStore::connect(&seed, 2).unwrap();
    via_seed.ping().await.unwrap();
    let alice = via_seed
        .create_user(new_user("alice"), api_key("aa11"))
        .await
        .unwrap();
    assert_eq!(
        via_seed.user_by_username("Alice").await.unwrap(),
        Some(alice)
    );
}
