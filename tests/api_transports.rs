//! Every transport through the HTTP API against the simulator: the same execute-command
//! requests over the RouterOS API and over the v7 REST API give identical answers, and
//! API-SSL works with a pinned certificate and refuses a wrong pin before any command.

mod common;

use cloudpilot::sim::{SimConfig, SimTls};
use common::{TestEnv, User};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn add(env: &TestEnv, u: &User, body: Value) -> u64 {
    let (s, r) = env.post("/routers/", Some(&u.access), body).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    r["id"].as_u64().unwrap()
}

/// Drops what legitimately differs between two routers: timing and the echoed router id.
fn comparable(mut body: Value) -> Value {
    if let Some(o) = body.as_object_mut() {
        o.remove("elapsed_ms");
        o.remove("router_id");
    }
    body
}

#[tokio::test]
async fn api_and_rest_transports_answer_alike() {
    let sim = SimConfig {
        rest: true,
        ..Default::default()
    };
    let env = TestEnv::start_with(1, &[], sim).await;
    let u = env.user("parity").await;
    // Two entries for the same simulated router: one over its API port, one over REST.
    let a = &env.sim.routers()[0];
    let over_api = add(
        &env,
        &u,
        json!({"name": "api", "host": a.host, "port": a.port, "username": a.username, "password": a.password}),
    )
    .await;
    let over_rest = add(
        &env,
        &u,
        json!({"name": "rest", "host": a.host, "port": a.rest_port.unwrap(), "username": a.username,
               "password": a.password, "transport": "rest"}),
    )
    .await;
    env.wait_online(&u, over_api).await;
    env.wait_online(&u, over_rest).await;
    let (_, r) = env.get(&format!("/routers/{over_rest}/"), &u.access).await;
    assert_eq!(r["transport"], "rest");
    assert!(r["routeros_version"].as_str().unwrap().starts_with("7."));

    let same = |request: Value| {
        let env = &env;
        let u = &u;
        async move {
            let (s1, r1) = env.exec(u, over_api, request.clone()).await;
            let (s2, r2) = env.exec(u, over_rest, request.clone()).await;
            assert_eq!(s1, s2, "{request}: {r1} vs {r2}");
            assert_eq!(comparable(r1.clone()), comparable(r2), "{request}");
            (s1, r1)
        }
    };
    // Reads, a one-item menu, a filtered list, an empty result, a trap, a no-op command.
    same(json!({"command": "system/identity"})).await;
    same(json!({"command": "system/resource", "params": {".proplist": "version,board-name"}}))
        .await;
    same(json!({"command": "interface", "params": {"name": "ether2", ".proplist": "name,type"}}))
        .await;
    let (_, empty) =
        same(json!({"command": "ip/address", "params": {"address": "203.0.113.9/32"}})).await;
    assert_eq!(empty["result"], json!([]));
    let (s, _) =
        same(json!({"command": "ip/address", "method": "PUT", "data": {"interface": "ether2"}}))
            .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = same(json!({"command": "no/such/menu"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    same(json!({"command": "system/identity/set", "method": "POST", "data": {"name": "edge"}}))
        .await;

    // Writes through one transport, read back identically through both.
    let (s, added) = env
        .exec(&u, over_api, json!({"command": "ip/address", "method": "PUT", "data": {"address": "10.7.7.1/24", "interface": "ether2"}}))
        .await;
    assert_eq!(s, StatusCode::OK, "{added}");
    let id = added["result"][".id"].as_str().unwrap().to_string();
    let (_, one) = same(json!({"command": format!("ip/address/{id}")})).await;
    assert_eq!(one["result"], added["result"]);
    let (s, _) = env
        .exec(&u, over_rest, json!({"command": format!("ip/address/{id}"), "method": "PATCH", "data": {"comment": "parity"}}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, one) = same(json!({"command": format!("ip/address/{id}")})).await;
    assert_eq!(one["result"]["comment"], "parity");
    let (s, del) = env
        .exec(
            &u,
            over_rest,
            json!({"command": format!("ip/address/{id}"), "method": "DELETE"}),
        )
        .await;
    assert_eq!((s, &del["result"]), (StatusCode::OK, &Value::Null));
    let (s, _) = same(json!({"command": format!("ip/address/{id}")})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = same(json!({"command": format!("ip/address/{id}"), "method": "DELETE"})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Streaming needs the API transport; over REST it is refused with a clear message.
    let resp = env
        .http
        .post(env.url(&format!("/routers/{over_rest}/stream/")))
        .bearer_auth(&u.access)
        .json(&json!({"command": "ping", "data": {"address": "127.0.0.1"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn api_ssl_with_a_pinned_certificate_and_a_wrong_pin() {
    let sim = SimConfig {
        tls: Some(SimTls::SelfSigned),
        ..Default::default()
    };
    let env = TestEnv::start_with(2, &[], sim).await;
    let u = env.user("tls").await;
    let r0 = &env.sim.routers()[0];
    let pin = r0
        .cert_sha256
        .clone()
        .expect("self-signed routers advertise their certificate");
    let good = add(
        &env,
        &u,
        json!({"name": "pinned", "host": r0.host, "port": r0.port, "username": r0.username,
               "password": r0.password, "use_https": true, "tls": format!("pin:{pin}")}),
    )
    .await;
    env.wait_online(&u, good).await;
    let (s, r) = env
        .exec(&u, good, json!({"command": "system/resource"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");

    let r1 = &env.sim.routers()[1];
    let bad = add(
        &env,
        &u,
        json!({"name": "wrong-pin", "host": r1.host, "port": r1.port, "username": r1.username,
               "password": r1.password, "use_https": true, "tls": format!("pin:{}", "0".repeat(64))}),
    )
    .await;
    let (s, r) = env
        .exec(&u, bad, json!({"command": "system/resource"}))
        .await;
    assert_eq!(s, StatusCode::BAD_GATEWAY, "{r}");
    assert!(
        r["error"].as_str().unwrap().to_lowercase().contains("pin"),
        "{r}"
    );
    assert_eq!(
        env.sim.router(1).logins(),
        0,
        "no login was attempted past a wrong pin"
    );
    assert_eq!(env.sim.router(1).commands(), 0);

    // Verify mode against a self-signed certificate fails, with the fix in the message.
    let (s, _, _) = env
        .call(
            reqwest::Method::PATCH,
            &format!("/routers/{bad}/"),
            Some(&u.access),
            Some(json!({"tls": "verify"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, r) = env
        .exec(&u, bad, json!({"command": "system/resource"}))
        .await;
    assert_eq!(s, StatusCode::BAD_GATEWAY, "{r}");
}

#[tokio::test]
async fn rest_over_https_with_a_pinned_certificate() {
    let sim = SimConfig {
        rest: true,
        tls: Some(SimTls::SelfSigned),
        ..Default::default()
    };
    let env = TestEnv::start_with(1, &[], sim).await;
    let u = env.user("resthttps").await;
    let r = &env.sim.routers()[0];
    let pin = r.cert_sha256.clone().unwrap();
    let id = add(
        &env,
        &u,
        json!({"name": "rest-tls", "host": r.host, "port": r.rest_port.unwrap(), "username": r.username,
               "password": r.password, "transport": "rest", "use_https": true, "tls": format!("pin:{pin}")}),
    )
    .await;
    env.wait_online(&u, id).await;
    let (s, body) = env
        .exec(&u, id, json!({"command": "system/identity"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["name"], "sim-0");
    let (s, r) = env
        .post(
            "/routers/",
            Some(&u.access),
            json!({"name": "y", "host": "10.0.0.1", "username": "admin", "transport": "rest", "use_https": true}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert_eq!(r["port"], 443, "REST over HTTPS defaults to 443");
}
