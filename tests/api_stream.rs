//! Streaming commands through `POST /routers/{id}/stream/` as Server-Sent Events: rows as
//! they come, a final event, cancel on the router when the client leaves or time is up,
//! and a session that stays usable afterwards.

mod common;

use std::time::Duration;

use common::{TestEnv, User};
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// One parsed SSE event: its `event:` name (`message` when absent) and JSON data.
#[derive(Debug)]
struct Event {
    kind: String,
    data: Value,
}

/// Reads SSE events from a response until `limit` events or the stream ends.
async fn read_events(resp: reqwest::Response, limit: usize) -> Vec<Event> {
    let mut body = resp.bytes_stream();
    let mut buf = String::new();
    let mut events = Vec::new();
    while events.len() < limit {
        let Some(chunk) = body.next().await else {
            break;
        };
        buf.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut kind = "message".to_string();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    kind = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            if !data.is_empty() {
                events.push(Event {
                    kind,
                    data: serde_json::from_str(&data).unwrap(),
                });
            }
        }
    }
    events
}

async fn open_stream(env: &TestEnv, u: &User, id: u64, body: Value) -> reqwest::Response {
    env.http
        .post(env.url(&format!("/routers/{id}/stream/")))
        .bearer_auth(&u.access)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn wait_cancels(env: &TestEnv, n: u64) {
    for _ in 0..100 {
        if env.sim.router(0).cancels() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "router saw {} cancels, wanted {n}",
        env.sim.router(0).cancels()
    );
}

#[tokio::test]
async fn rows_arrive_as_events_and_leaving_cancels_on_the_router() {
    let env = TestEnv::start(1).await;
    let u = env.user("streamer").await;
    let id = env.add_router(&u, 0).await;
    env.wait_online(&u, id).await;
    let resp = open_stream(
        &env,
        &u,
        id,
        json!({"command": "ping", "data": {"address": "127.0.0.1", "interval": "50ms"}}),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let events = read_events(resp, 3).await;
    assert_eq!(events.len(), 3);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.kind, "message");
        assert_eq!(e.data[".section"], json!(i.to_string()), "{:?}", e.data);
    }
    // The response was dropped: the router is told to cancel, and the session lives on.
    wait_cancels(&env, 1).await;
    let (s, r) = env
        .exec(&u, id, json!({"command": "system/identity"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(env.sim.router(0).logins(), 1);
}

#[tokio::test]
async fn a_finite_command_ends_with_done_and_a_timeout_ends_with_timeout() {
    let env = TestEnv::start(1).await;
    let u = env.user("finite").await;
    let id = env.add_router(&u, 0).await;
    env.wait_online(&u, id).await;
    let resp = open_stream(
        &env,
        &u,
        id,
        json!({"command": "/ping", "data": {"address": "127.0.0.1", "count": "2", "interval": "20ms"}}),
    )
    .await;
    let events = read_events(resp, 10).await;
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["message", "message", "done"]);

    let resp = open_stream(
        &env,
        &u,
        id,
        json!({"command": "interface/monitor-traffic", "data": {"interface": "ether1"}, "timeout_ms": 400}),
    )
    .await;
    let events = read_events(resp, 1000).await;
    assert_eq!(events.last().unwrap().kind, "timeout", "{events:?}");
    wait_cancels(&env, 1).await;
}

#[tokio::test]
async fn a_trap_is_the_final_event_and_bad_requests_are_json_errors() {
    let env = TestEnv::start(1).await;
    let u = env.user("trapper").await;
    let id = env.add_router(&u, 0).await;
    env.wait_online(&u, id).await;
    let resp = open_stream(
        &env,
        &u,
        id,
        json!({"command": "interface/monitor-traffic"}),
    )
    .await;
    let events = read_events(resp, 10).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].kind, "trap");
    assert!(events[0].data["error"].is_string());

    let resp = open_stream(&env, &u, id, json!({"data": {}})).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "Command is required");
    let other = env.user("other").await;
    let resp = open_stream(&env, &other, id, json!({"command": "ping"})).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_stream_holds_a_backlog_place() {
    let env = TestEnv::start_with(
        1,
        &[("CLOUDPILOT__FLEET__MAX_BACKLOG", "1")],
        Default::default(),
    )
    .await;
    let u = env.user("hog").await;
    let id = env.add_router(&u, 0).await;
    env.wait_online(&u, id).await;
    let resp = open_stream(
        &env,
        &u,
        id,
        json!({"command": "interface/monitor-traffic", "data": {"interface": "ether1"}}),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let (s, r) = env
        .exec(&u, id, json!({"command": "system/resource"}))
        .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{r}");
    drop(resp);
    wait_cancels(&env, 1).await;
    let mut ok = false;
    for _ in 0..50 {
        let (s, _) = env
            .exec(&u, id, json!({"command": "system/resource"}))
            .await;
        if s == StatusCode::OK {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ok, "the place is given back when the stream ends");
}
