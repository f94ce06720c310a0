//! `RestClient` against the simulator: probe, failures by kind (login refused, router
//! down, timeout), and keep-alive reuse of one connection.

use std::time::Duration;

use cloudpilot::routeros::{
    ClientError, CommandFailure, ConnectOptions, Credentials, RestClient, RestRequest,
};
use cloudpilot::sim::{SimConfig, SimRouterInfo, Simulator};
use serde_json::json;

async fn sim() -> Simulator {
    Simulator::start(SimConfig {
        rest: true,
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts")
}

fn client(info: &SimRouterInfo, password: &str) -> RestClient {
    let creds = Credentials {
        username: info.username.clone(),
        password: password.to_owned(),
    };
    let opts = ConnectOptions {
        connect_timeout: Duration::from_secs(2),
        login_timeout: Duration::from_secs(2),
        tcp_keepalive: None,
        tls: None,
    };
    RestClient::new(&info.host, info.rest_port.unwrap(), false, creds, &opts).unwrap()
}

fn identity() -> RestRequest {
    RestRequest::parse(Some("GET"), "system/identity", None, None).unwrap()
}

/// probe reads the version from /system/resource, and reports refused credentials.
#[tokio::test]
async fn probe_gives_the_version_and_a_wrong_password_is_login_rejected() {
    let sim = sim().await;
    let info = &sim.routers()[0];
    let version = client(info, &info.password).probe().await.unwrap();
    assert_eq!(version.as_deref(), Some("7.18.2 (stable)"));
    let refused = client(info, "wrong").probe().await;
    assert!(
        matches!(refused, Err(ClientError::LoginRejected { .. })),
        "{refused:?}"
    );
}

/// A refused login is Unreachable for a command, as when an API session cannot log in.
#[tokio::test]
async fn execute_with_a_wrong_password_is_unreachable() {
    let sim = sim().await;
    let info = &sim.routers()[0];
    let result = client(info, "wrong")
        .execute(&identity(), Duration::from_secs(2))
        .await;
    match result {
        Err(CommandFailure::Unreachable { message }) => assert!(message.contains("login")),
        other => panic!("expected Unreachable, got {other:?}"),
    }
}

/// Nothing listening: Unreachable, quickly.
#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let creds = Credentials {
        username: "admin".into(),
        password: "x".into(),
    };
    let rest =
        RestClient::new("127.0.0.1", port, false, creds, &ConnectOptions::default()).unwrap();
    let result = rest.execute(&identity(), Duration::from_secs(2)).await;
    assert!(
        matches!(result, Err(CommandFailure::Unreachable { .. })),
        "{result:?}"
    );
}

/// A request the router never answers ends as Timeout at the caller's deadline, and the
/// client keeps working afterwards.
#[tokio::test]
async fn an_unanswered_request_times_out_and_the_client_recovers() {
    let sim = sim().await;
    let info = &sim.routers()[0];
    let rest = client(info, &info.password);
    sim.router(0).hang_next_command();
    let started = std::time::Instant::now();
    let result = rest.execute(&identity(), Duration::from_millis(300)).await;
    assert_eq!(result, Err(CommandFailure::Timeout));
    assert!(started.elapsed() < Duration::from_secs(2));
    // The hung request holds the router's per-user turn until its 60 s limit, as RouterOS
    // does; a new simulator router shows the client itself is fine.
    let sim2 = self::sim().await;
    let info2 = &sim2.routers()[0];
    let ok = client(info2, &info2.password)
        .execute(&identity(), Duration::from_secs(2))
        .await;
    assert_eq!(ok, Ok(json!({"name": "sim-0"})));
}

/// Sequential requests reuse one keep-alive connection instead of opening new ones.
#[tokio::test]
async fn sequential_requests_reuse_one_connection() {
    let sim = sim().await;
    let info = &sim.routers()[0];
    let rest = client(info, &info.password);
    for _ in 0..5 {
        rest.execute(&identity(), Duration::from_secs(2))
            .await
            .unwrap();
        assert_eq!(rest.idle_connections(), 1);
    }
    // After the router drops every connection, the next request opens a new one.
    sim.router(0).kill_connections();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let again = rest.execute(&identity(), Duration::from_secs(2)).await;
    assert_eq!(again, Ok(json!({"name": "sim-0"})));
}

/// HTTPS is refused up front until the crate has a TLS engine, rather than sending
/// credentials in clear text to a port that expects TLS.
#[test]
fn https_is_refused_until_tls_exists() {
    let creds = Credentials {
        username: "admin".into(),
        password: "x".into(),
    };
    let made = RestClient::new("127.0.0.1", 443, true, creds, &ConnectOptions::default());
    assert!(matches!(made, Err(ClientError::Connect { .. })));
}
