//! A restart keeps what must survive: tokens (the signing key persists in the data
//! directory), sealed router passwords (the master key persists), and sessions for every
//! stored router opened at start-up, before anyone asks.

mod common;

use std::time::Duration;

use cloudpilot::node::Node;
use common::{test_settings, TestEnv};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn restart_keeps_tokens_and_reopens_sessions() {
    let mut env = TestEnv::start(2).await;
    let u = env.user("persist").await;
    let a = env.add_router(&u, 0).await;
    let b = env.add_router(&u, 1).await;
    env.wait_online(&u, a).await;
    env.wait_online(&u, b).await;

    env.node.take().unwrap().shutdown().await;
    for _ in 0..100 {
        if env.sim.router(0).active_sessions() == 0 && env.sim.router(1).active_sessions() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        env.sim.router(0).active_sessions(),
        0,
        "shutdown closes sessions"
    );

    let key_mode = std::fs::metadata(env.dir.path().join("master.key")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(key_mode.permissions().mode() & 0o777, 0o600);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let node = Node::start(test_settings(env.dir.path(), &[]), listener)
        .await
        .unwrap();
    env.base = format!("http://{}", node.addr);
    env.node = Some(node);

    // Sessions come up without any request for them.
    for _ in 0..200 {
        if env.sim.router(0).active_sessions() == 1 && env.sim.router(1).active_sessions() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(env.sim.router(0).active_sessions(), 1);
    assert_eq!(env.sim.router(1).active_sessions(), 1);

    // The old access token still verifies, and the unsealed password still logs in.
    let (s, r) = env.exec(&u, a, json!({"command": "system/resource"})).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let (s, _) = env
        .post(
            "/users/token/refresh/",
            None,
            json!({"refresh_token": u.refresh}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
}
