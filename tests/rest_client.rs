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

/// HTTPS: a pinned self-signed certificate works; a wrong pin fails before any request
/// reaches the router, and verify mode refuses the self-signed certificate.
#[tokio::test]
async fn https_with_pin_and_refusals() {
    use cloudpilot::routeros::TlsMode;
    use cloudpilot::sim::SimTls;
    let sim = Simulator::start(SimConfig {
        rest: true,
        tls: Some(SimTls::SelfSigned),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let info = sim.routers()[0].clone();
    let pin: [u8; 32] = hex::decode(info.cert_sha256.as_ref().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let https = |mode: TlsMode| {
        let creds = Credentials {
            username: info.username.clone(),
            password: info.password.clone(),
        };
        let opts = ConnectOptions {
            connect_timeout: Duration::from_secs(2),
            login_timeout: Duration::from_secs(2),
            tcp_keepalive: None,
            tls: Some(mode),
        };
        RestClient::new(&info.host, info.rest_port.unwrap(), true, creds, &opts).unwrap()
    };
    let good = https(TlsMode::Pin(pin));
    let answer = good.execute(&identity(), Duration::from_secs(2)).await;
    assert_eq!(answer, Ok(json!({"name": "sim-0"})));
    let before = sim.router(0).commands();

    let wrong = https(TlsMode::Pin([0u8; 32]));
    let answer = wrong.execute(&identity(), Duration::from_secs(2)).await;
    assert!(
        matches!(answer, Err(CommandFailure::Unreachable { ref message }) if message.to_lowercase().contains("pin")),
        "{answer:?}"
    );
    let verify = https(TlsMode::Verify { ca_file: None });
    assert!(matches!(
        verify.execute(&identity(), Duration::from_secs(2)).await,
        Err(CommandFailure::Unreachable { .. })
    ));
    assert_eq!(
        sim.router(0).commands(),
        before,
        "no request got through a failed check"
    );
}
