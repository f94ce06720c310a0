//! Three `cloudpilot serve` processes sharing one real `redis-server`, with simulated
//! routers: every node answers for every router, sessions are held by exactly one node,
//! a node killed with SIGKILL under load loses and duplicates nothing, and a Redis restart
//! gives 503s and then recovers without restarting the nodes. Prints the failover figures.

mod redis_server;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cloudpilot::sim::{SimConfig, Simulator};
use redis_server::RedisServer;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

const JWT: &str = "cluster-test-secret-cluster-test-secret!";
const MASTER: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const ROUTERS: usize = 12;

/// A `cloudpilot serve` process; killed by PID on drop.
struct NodeProc {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl NodeProc {
    fn start(name: &str, redis_url: &str) -> NodeProc {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_cloudpilot"))
            .arg("serve")
            .env("RUST_LOG", "info")
            .env("CLOUDPILOT__SERVER__LISTEN", "127.0.0.1:0")
            .env("CLOUDPILOT__SERVER__NODE_NAME", name)
            .env("CLOUDPILOT__SERVER__LOG_FORMAT", "json")
            .env("CLOUDPILOT__STORE__BACKEND", "redis")
            .env("CLOUDPILOT__STORE__REDIS_URL", redis_url)
            .env("CLOUDPILOT__STORE__DATA_DIR", dir.path())
            .env("CLOUDPILOT__AUTH__JWT_SECRET", JWT)
            .env("CLOUDPILOT__AUTH__PBKDF2_ITERATIONS", "1000")
            .env("CLOUDPILOT__SECRETS__MASTER_KEY", MASTER)
            .env("CLOUDPILOT__FLEET__CONNECT_TIMEOUT_MS", "2000")
            .env("CLOUDPILOT__FLEET__BACKOFF_MAX_MS", "1000")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cloudpilot binary");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let label = name.to_string();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line
                    .contains("\"listening\"")
                    .then(|| serde_json::from_str::<Value>(&line).ok())
                    .flatten()
                    .and_then(|v| v["fields"]["http.addr"].as_str().map(str::to_owned))
                {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr);
                    }
                }
                if std::env::var_os("CLUSTER_TEST_LOGS").is_some() {
                    eprintln!("[{label}] {line}");
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("node reports its address");
        NodeProc {
            child,
            addr: addr.parse().unwrap(),
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        self.kill9();
    }
}

async fn call(
    client: &Client,
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Option<Value>,
    key: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = client.request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    match req.send().await {
        Ok(resp) => {
            let status = resp.status();
            let body = resp.json().await.unwrap_or(Value::Null);
            (status, body)
        }
        Err(e) => panic!("no HTTP answer: {e}"),
    }
}

async fn health(client: &Client, node: &NodeProc) -> Value {
    call(
        client,
        reqwest::Method::GET,
        node.url("/health/"),
        None,
        None,
        None,
    )
    .await
    .1
}

/// Waits until every node sees `n` live nodes and the shards are all held.
async fn wait_balanced(client: &Client, nodes: &[&NodeProc], n: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut held = 0;
        let mut ok = true;
        for node in nodes {
            let h = health(client, node).await;
            ok &= h["cluster"]["live_nodes"] == json!(n);
            held += h["cluster"]["shards_held"].as_u64().unwrap_or(0);
        }
        if ok && held == 64 {
            return;
        }
        assert!(Instant::now() < deadline, "cluster never balanced");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn exec(
    client: &Client,
    node: &NodeProc,
    token: &str,
    router: u64,
    body: Value,
    key: Option<&str>,
) -> (StatusCode, Value) {
    call(
        client,
        reqwest::Method::POST,
        node.url(&format!("/routers/{router}/execute-command/")),
        Some(token),
        Some(body),
        key,
    )
    .await
}

/// Whether `node` lists all the user's routers as online (statuses published by owners).
async fn all_online(client: &Client, node: &NodeProc, token: &str) -> bool {
    let (s, list) = call(
        client,
        reqwest::Method::GET,
        node.url("/routers/"),
        Some(token),
        None,
        None,
    )
    .await;
    s == StatusCode::OK
        && list
            .as_array()
            .is_some_and(|l| l.len() == ROUTERS && l.iter().all(|r| r["is_online"] == json!(true)))
}

/// No router has ever had two CloudPilot sessions at once.
fn assert_single_sessions(sim: &Simulator, phase: &str) {
    for i in 0..ROUTERS {
        assert_eq!(
            sim.router(i).peak_sessions(),
            1,
            "router {i} had two CloudPilot sessions at once ({phase})"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_a_fleet_and_survive_failures() {
    let mut redis = RedisServer::start_persistent();
    let url = redis.url();
    // A password of this run's own, so that no other client on the machine can log in to
    // these routers and be counted as a session.
    let sim = Simulator::start(SimConfig {
        routers: ROUTERS,
        password: format!("pw-{:016x}", rand::random::<u64>()),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let client = Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();

    // Nodes join one after another: each join moves shards (and sessions) to the newcomer.
    let n1 = NodeProc::start("n1", &url);
    let mut n2 = NodeProc::start("n2", &url);
    let n3 = NodeProc::start("n3", &url);
    wait_balanced(&client, &[&n1, &n2, &n3], 3).await;

    // A user registered through one node logs in through another and adds routers
    // through the third.
    let (s, reg) = call(
        &client,
        reqwest::Method::POST,
        n1.url("/users/register/"),
        None,
        Some(json!({"username": "ops", "password": "s3cret-pass!"})),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{reg}");
    let (s, login) = call(
        &client,
        reqwest::Method::POST,
        n2.url("/users/login/"),
        None,
        Some(json!({"username": "ops", "password": "s3cret-pass!"})),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{login}");
    let token = login["access_token"].as_str().unwrap().to_string();
    let mut ids = Vec::new();
    for (i, r) in sim.routers().iter().enumerate() {
        let (s, body) = call(
            &client,
            reqwest::Method::POST,
            n3.url("/routers/"),
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
    let deadline = Instant::now() + Duration::from_secs(20);
    while !all_online(&client, &n1, &token).await {
        assert!(Instant::now() < deadline, "routers never all online");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for i in 0..ROUTERS {
        assert_eq!(
            sim.router(i).active_sessions(),
            1,
            "router {i}: one session"
        );
    }

    assert_single_sessions(&sim, "nodes joining");

    // Every node answers for every router, with the same body and status.
    for &id in &ids {
        let mut bodies = Vec::new();
        for node in [&n1, &n2, &n3] {
            let (s, body) = exec(
                &client,
                node,
                &token,
                id,
                json!({"command": "/system/identity"}),
                None,
            )
            .await;
            assert_eq!(s, StatusCode::OK, "{body}");
            bodies.push(body["result"].clone());
        }
        assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
        let (s, body) = exec(
            &client,
            &n2,
            &token,
            id,
            json!({"command": "/ip/address/*ffff"}),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
    }

    // Deadlines hold end to end: a hanging command through any node ends in 504 in time.
    for (i, node) in [&n1, &n2, &n3].into_iter().enumerate() {
        sim.router(i).hang_next_command();
        let started = Instant::now();
        let (s, body) = exec(
            &client,
            node,
            &token,
            ids[i],
            json!({"command": "/system/resource", "timeout_ms": 300}),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::GATEWAY_TIMEOUT, "{body}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }

    // A keyed retry gets the recorded outcome instead of a second run.
    let body = json!({"command": "/ip/address", "method": "PUT",
                      "data": {"address": "10.9.9.9/32", "interface": "ether1", "comment": "retry-1"}});
    let (s1, first) = exec(&client, &n1, &token, ids[0], body.clone(), Some("retry-1")).await;
    let (s2, second) = exec(&client, &n3, &token, ids[0], body, Some("retry-1")).await;
    assert_eq!(
        (s1, s2),
        (StatusCode::OK, StatusCode::OK),
        "{first} {second}"
    );
    assert_eq!(first["result"], second["result"]);
    assert_eq!(sim.router(0).executions("retry-1"), 1);

    // Failover: load through n1 and n3 while n2 is killed with SIGKILL.
    let token = Arc::new(token);
    let ids = Arc::new(ids);
    let client = Arc::new(client);
    let targets = Arc::new([n1.url(""), n3.url("")]);
    let stop_at = Instant::now() + Duration::from_secs(8);
    let mut workers = Vec::new();
    for w in 0..8usize {
        let (client, token, ids, targets) =
            (client.clone(), token.clone(), ids.clone(), targets.clone());
        workers.push(tokio::spawn(async move {
            let mut results = Vec::new();
            let mut n = 0usize;
            while Instant::now() < stop_at {
                let router_index = (w + n * 8) % ROUTERS;
                let rid = format!("w{w}-{n}");
                let base = &targets[n % 2];
                let req = client
                    .post(format!(
                        "{base}/routers/{}/execute-command/",
                        ids[router_index]
                    ))
                    .bearer_auth(token.as_str())
                    .header("Idempotency-Key", &rid)
                    .json(&json!({"command": "/ip/address", "method": "PUT",
                        "timeout_ms": 3000,
                        "data": {"address": format!("10.{w}.{}.{}/32", n / 250, n % 250),
                                 "interface": "ether1", "comment": rid}}));
                let (status, error) = match req.send().await {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let body: Value = r.json().await.unwrap_or(Value::Null);
                        (status, body["error"].as_str().unwrap_or("").to_string())
                    }
                    Err(e) => (0, e.to_string()),
                };
                results.push((router_index, rid, status, Instant::now(), error));
                n += 1;
            }
            results
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let killed_at = Instant::now();
    n2.kill9();
    // Time to recover: until every router answers through a survivor again.
    let monitor = {
        let (client, token, ids, base) = (
            client.clone(),
            token.clone(),
            ids.clone(),
            targets[0].clone(),
        );
        tokio::spawn(async move {
            loop {
                let probes = ids.iter().map(|id| {
                    client
                        .post(format!("{base}/routers/{id}/execute-command/"))
                        .bearer_auth(token.as_str())
                        .json(&json!({"command": "/system/identity", "timeout_ms": 500}))
                        .send()
                });
                let all = futures::future::join_all(probes)
                    .await
                    .into_iter()
                    .all(|r| r.is_ok_and(|r| r.status() == StatusCode::OK));
                if all {
                    return killed_at.elapsed();
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let mut results = Vec::new();
    for w in workers {
        results.extend(w.await.unwrap());
    }
    let recovery = monitor.await.unwrap();
    let client = Arc::try_unwrap(client).unwrap();
    let token = Arc::try_unwrap(token).unwrap();
    let ids = Arc::try_unwrap(ids).unwrap();

    // Every command got an HTTP answer; each either ran exactly once (2xx) or failed with
    // a clear status; none ran twice; a 503 (not run) never ran.
    let mut by_status: HashMap<u16, usize> = HashMap::new();
    let (mut lost, mut duplicated, mut ran_though_refused) = (0, 0, 0);
    let mut last_failure = killed_at;
    for (router_index, rid, status, at, error) in &results {
        *by_status.entry(*status).or_default() += 1;
        let runs = sim.router(*router_index).executions(rid);
        if runs > 1 {
            duplicated += 1;
        }
        match status {
            200 | 201 => {
                if runs == 0 {
                    lost += 1;
                }
            }
            503 => {
                if runs != 0 {
                    eprintln!("{rid} on router {router_index}: 503 ({error}) but ran {runs}");
                    ran_though_refused += 1;
                }
                last_failure = last_failure.max(*at);
            }
            _ => last_failure = last_failure.max(*at),
        }
    }
    let last_failed = last_failure.saturating_duration_since(killed_at);
    println!(
        "failover figures: {} commands under load while n2 was killed (SIGKILL); statuses \
         {by_status:?}; every router answering again {:.2} s after the kill; last failed \
         command {:.2} s after it; lost: {lost}; duplicated: {duplicated}",
        results.len(),
        recovery.as_secs_f64(),
        last_failed.as_secs_f64()
    );
    assert!(!by_status.contains_key(&0), "a request got no HTTP answer");
    assert!(!by_status.contains_key(&500), "{by_status:?}");
    assert_eq!(lost, 0, "accepted commands that never ran");
    assert_eq!(duplicated, 0, "commands run twice");
    assert_eq!(ran_though_refused, 0, "503 said not run, but it ran");
    assert!(
        by_status.get(&200).copied().unwrap_or(0) > 50,
        "{by_status:?}"
    );

    // The survivors hold all shards and every router answers again.
    wait_balanced(&client, &[&n1, &n3], 2).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !all_online(&client, &n3, &token).await {
        assert!(
            Instant::now() < deadline,
            "routers never back online after failover"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    assert_single_sessions(&sim, "failover");

    // A node joining takes its share back.
    let n4 = NodeProc::start("n4", &url);
    wait_balanced(&client, &[&n1, &n3, &n4], 3).await;
    for &id in &ids {
        let (s, body) = exec(
            &client,
            &n4,
            &token,
            id,
            json!({"command": "/system/identity"}),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }

    assert_single_sessions(&sim, "a node joining");

    // Redis restarted: 503 while it is down, then recovery without restarting nodes, and
    // nothing acknowledged is lost.
    redis.kill();
    let (s, body) = call(
        &client,
        reqwest::Method::GET,
        n1.url("/routers/"),
        Some(&token),
        None,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let (s, _) = exec(
        &client,
        &n3,
        &token,
        ids[1],
        json!({"command": "/system/identity"}),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let down_for = Instant::now();
    redis.restart_persistent();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut ok = true;
        for node in [&n1, &n3, &n4] {
            let (s, _) = exec(
                &client,
                node,
                &token,
                ids[2],
                json!({"command": "/system/identity"}),
                None,
            )
            .await;
            ok &= s == StatusCode::OK;
        }
        if ok && all_online(&client, &n4, &token).await {
            break;
        }
        assert!(Instant::now() < deadline, "no recovery after Redis restart");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "redis restart: all nodes answering {:.2} s after Redis came back",
        down_for.elapsed().as_secs_f64()
    );
    let (s, list) = call(
        &client,
        reqwest::Method::GET,
        n4.url("/routers/"),
        Some(&token),
        None,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), ROUTERS, "routers survived");
    let (s, _) = call(
        &client,
        reqwest::Method::POST,
        n1.url("/users/login/"),
        None,
        Some(json!({"username": "ops", "password": "s3cret-pass!"})),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "the user survived");

    // Every session is re-established, and through joins, a kill and a Redis restart no
    // router ever had two sessions.
    let deadline = Instant::now() + Duration::from_secs(20);
    while (0..ROUTERS).any(|i| sim.router(i).active_sessions() != 1) {
        assert!(
            Instant::now() < deadline,
            "sessions after the Redis restart: {:?}",
            (0..ROUTERS)
                .map(|i| sim.router(i).active_sessions())
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_single_sessions(&sim, "redis restart");
    sim.shutdown();
}
