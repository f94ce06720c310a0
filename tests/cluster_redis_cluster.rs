//! The many-node layer on a real three-node Redis Cluster: two nodes (in this process)
//! split the shards, forward commands to each other, honour an `Idempotency-Key` across
//! nodes, and name the owner when a stream is asked of the wrong node. Every lease, record
//! and stream key is hash-tagged, so a cross-slot script would fail here with CROSSSLOT.

mod common;
mod redis_server;

use std::time::{Duration, Instant};

use cloudpilot::node::Node;
use cloudpilot::sim::{SimConfig, Simulator};
use redis_server::RedisCluster;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

const ROUTERS: usize = 6;

async fn start_node(url: &str, name: &str, dir: &std::path::Path) -> Node {
    let settings = common::test_settings(
        dir,
        &[
            ("CLOUDPILOT__STORE__BACKEND", "redis"),
            ("CLOUDPILOT__STORE__REDIS_URL", url),
            (
                "CLOUDPILOT__AUTH__JWT_SECRET",
                "redis-cluster-test-secret-0123456789",
            ),
            (
                "CLOUDPILOT__SECRETS__MASTER_KEY",
                "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100",
            ),
            ("CLOUDPILOT__SERVER__NODE_NAME", name),
        ],
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    Node::start(settings, listener).await.expect("node starts")
}

async fn send(
    http: &Client,
    node: &Node,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    key: Option<&str>,
) -> (StatusCode, Value) {
    let url = format!("http://{}{}", node.addr, path);
    let mut req = match body {
        Some(b) => http.post(url).json(&b),
        None => http.get(url),
    };
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    let resp = req.send().await.expect("HTTP answer");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_a_redis_cluster_forward_and_deduplicate() {
    if let Ok(filter) = std::env::var("CLUSTER_TEST_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
    }
    let redis = RedisCluster::start();
    let url = redis.url();
    let sim = Simulator::start(SimConfig {
        routers: ROUTERS,
        password: format!("pw-{:016x}", rand::random::<u64>()),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = start_node(&url, "a", d1.path()).await;
    let b = start_node(&url, "b", d2.path()).await;
    let http = Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();

    // Both nodes see each other and split the 64 shards.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, ha) = send(&http, &a, "/health/", None, None, None).await;
        let (_, hb) = send(&http, &b, "/health/", None, None, None).await;
        let held = ha["cluster"]["shards_held"].as_u64().unwrap_or(0)
            + hb["cluster"]["shards_held"].as_u64().unwrap_or(0);
        let both =
            ha["cluster"]["live_nodes"] == json!(2) && hb["cluster"]["live_nodes"] == json!(2);
        if both && held == 64 && ha["cluster"]["shards_held"] != json!(0) {
            break;
        }
        assert!(Instant::now() < deadline, "{ha} {hb}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let (s, reg) = send(
        &http,
        &a,
        "/users/register/",
        None,
        Some(json!({"username": "ops", "password": "s3cret-pass!"})),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{reg}");
    let (_, login) = send(
        &http,
        &b,
        "/users/login/",
        None,
        Some(json!({"username": "ops", "password": "s3cret-pass!"})),
        None,
    )
    .await;
    let token = login["access_token"].as_str().unwrap().to_string();
    let mut ids = Vec::new();
    for (i, r) in sim.routers().iter().enumerate() {
        let (s, body) = send(
            &http,
            if i % 2 == 0 { &a } else { &b },
            "/routers/",
            Some(&token),
            Some(
                json!({"name": format!("r{i}"), "host": r.host, "port": r.port,
                        "username": r.username, "password": r.password}),
            ),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
        ids.push(body["id"].as_u64().unwrap());
    }

    // Every router answers through both nodes: one of the two forwards.
    let identity = json!({"command": "/system/identity", "timeout_ms": 5000});
    for &id in &ids {
        for node in [&a, &b] {
            let path = format!("/routers/{id}/execute-command/");
            let (s, body) = send(
                &http,
                node,
                &path,
                Some(&token),
                Some(identity.clone()),
                None,
            )
            .await;
            assert_eq!(s, StatusCode::OK, "{body}");
        }
    }
    let forwarded = |n: &Node| n.state.dispatch.cluster().unwrap().view().forwarded;
    // (Which node forwards depends on where rendezvous put the six routers.)
    assert!(
        forwarded(&a) + forwarded(&b) >= ROUTERS as u64,
        "forwarding happened"
    );
    for i in 0..ROUTERS {
        assert_eq!(sim.router(i).active_sessions(), 1, "router {i}");
        assert_eq!(sim.router(i).peak_sessions(), 1, "router {i}");
    }

    // The same Idempotency-Key through either node runs the command once.
    for (i, &id) in ids.iter().enumerate() {
        let add = json!({"command": "/ip/address", "method": "PUT", "data":
            {"address": format!("10.1.{i}.1/24"), "interface": "ether1", "comment": format!("k{i}")}});
        let path = format!("/routers/{id}/execute-command/");
        let key = format!("k{i}");
        // Two copies at once through the node that forwards, one through the owner.
        let (owner, other) = if a.state.fleet.has_session(id) {
            (&a, &b)
        } else {
            (&b, &a)
        };
        let ((s1, first), (s2, second), (s3, third)) = tokio::join!(
            send(
                &http,
                other,
                &path,
                Some(&token),
                Some(add.clone()),
                Some(&key)
            ),
            send(
                &http,
                other,
                &path,
                Some(&token),
                Some(add.clone()),
                Some(&key)
            ),
            send(&http, owner, &path, Some(&token), Some(add), Some(&key)),
        );
        assert_eq!(
            (s1, s2, s3),
            (StatusCode::OK, StatusCode::OK, StatusCode::OK),
            "{first} {second} {third}"
        );
        assert_eq!(first["result"], second["result"]);
        assert_eq!(first["result"], third["result"]);
        assert_eq!(sim.router(i).executions(&key), 1, "router {i}");
    }
    let bad_key = format!("/routers/{}/execute-command/", ids[0]);
    let (s, body) = send(
        &http,
        &a,
        &bad_key,
        Some(&token),
        Some(identity),
        Some("has space"),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");

    // A stream asked of a node that does not hold the router is relayed by the owner,
    // event for event, and cancelled on the router when its time is up.
    let (holder, other) = if a.state.fleet.has_session(ids[0]) {
        (&a, &b)
    } else {
        (&b, &a)
    };
    let forwarded_before = forwarded(other);
    let cancels_before = sim.router(0).cancels();
    let resp = http
        .post(format!("http://{}/routers/{}/stream/", other.addr, ids[0]))
        .bearer_auth(&token)
        .json(&json!({"command": "/ping", "timeout_ms": 800,
                      "data": {"address": "127.0.0.1", "interval": "50ms"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    let rows = text.lines().filter(|l| l.contains("\"seq\"")).count();
    assert!(rows >= 3, "{text}");
    assert!(text.contains("timeout"), "{text}");
    assert_eq!(forwarded(other), forwarded_before + 1);
    assert!(!other.state.fleet.has_session(ids[0]) && holder.state.fleet.has_session(ids[0]));
    let deadline = Instant::now() + Duration::from_secs(5);
    while sim.router(0).cancels() == cancels_before {
        assert!(
            Instant::now() < deadline,
            "the relayed ping was never cancelled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A stream that cannot start says why, as it would locally.
    let (s, body) = send(
        &http,
        other,
        &format!("/routers/{}/stream/", ids[0]),
        Some(&token),
        Some(json!({"command": "/no/such/thing", "timeout_ms": 800})),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");

    // Edits and deletions made through a node that does not hold the router reach the
    // node that does: router 1 is pointed at simulated router 5's port (its session moves
    // there), then deleted (its session closes).
    let (_, other) = if a.state.fleet.has_session(ids[1]) {
        (&a, &b)
    } else {
        (&b, &a)
    };
    let moved = http
        .patch(format!("http://{}/routers/{}/", other.addr, ids[1]))
        .bearer_auth(&token)
        .json(&json!({"port": sim.routers()[5].port}))
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), StatusCode::OK);
    let deadline = Instant::now() + Duration::from_secs(10);
    while sim.router(1).active_sessions() != 0 || sim.router(5).active_sessions() != 2 {
        assert!(
            Instant::now() < deadline,
            "the edit never reached the owner"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let gone = http
        .delete(format!("http://{}/routers/{}/", other.addr, ids[1]))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::OK);
    let deadline = Instant::now() + Duration::from_secs(10);
    while sim.router(5).active_sessions() != 1 {
        assert!(
            Instant::now() < deadline,
            "the deletion never reached the owner"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!a.state.fleet.has_session(ids[1]) && !b.state.fleet.has_session(ids[1]));

    a.shutdown().await;
    // After a graceful leave the other node holds every shard at once (no lease to wait out).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, hb) = send(&http, &b, "/health/", None, None, None).await;
        if hb["cluster"]["shards_held"] == json!(64) {
            break;
        }
        assert!(Instant::now() < deadline, "{hb}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let path = format!("/routers/{}/execute-command/", ids[0]);
    let (s, body) = send(
        &http,
        &b,
        &path,
        Some(&token),
        Some(json!({"command": "/system/identity"})),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    for i in 0..ROUTERS - 1 {
        assert_eq!(sim.router(i).peak_sessions(), 1, "router {i}");
    }
    b.shutdown().await;
    sim.shutdown();
}
