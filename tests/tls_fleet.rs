//! API-SSL through the fleet: a router's `use_https` and `tls` fields, and the fleet's
//! `tls_ca_file` setting, reach the session's connection.

use std::time::Duration;

use cloudpilot::config::Settings;
use cloudpilot::fleet::{ExecError, Fleet};
use cloudpilot::routeros::{CommandFailure, RestRequest};
use cloudpilot::sim::{SimConfig, SimTls, Simulator};
use cloudpilot::store::{Router, SealedSecret, Timestamp, Transport};

async fn sim(tls: Option<SimTls>) -> Simulator {
    Simulator::start(SimConfig {
        tls,
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts")
}

async fn fleet(ca_file: &str) -> Fleet {
    let env = [
        ("CLOUDPILOT__FLEET__CONNECT_TIMEOUT_MS", "3000"),
        ("CLOUDPILOT__FLEET__BACKOFF_INITIAL_MS", "50"),
        ("CLOUDPILOT__FLEET__TLS_CA_FILE", ca_file),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    let settings = Settings::load_with_env(None, env).expect("settings");
    Fleet::start(settings.fleet).await.expect("fleet starts")
}

fn router(id: u64, sim: &Simulator, use_https: bool, tls: &str) -> Router {
    let info = &sim.routers()[0];
    Router {
        id,
        owner: 1,
        name: format!("r{id}"),
        host: info.host.clone(),
        port: info.port,
        username: info.username.clone(),
        password: SealedSecret {
            key_id: 1,
            nonce: [0; 12],
            ciphertext: Vec::new(),
        },
        transport: Transport::Api,
        use_https,
        tls: tls.to_owned(),
        tags: Vec::new(),
        created_at: Timestamp::now(),
        updated_at: Timestamp::now(),
    }
}

async fn identity(fleet: &Fleet, id: u64) -> Result<serde_json::Value, ExecError> {
    let req = RestRequest::parse(Some("GET"), "system/identity", None, None).unwrap();
    fleet.execute(id, req, Duration::from_secs(5)).await
}

/// use_https with tls=verify and the fleet's CA file: the session comes up over TLS and
/// runs commands.
#[tokio::test]
async fn verified_api_ssl_router_runs_commands_through_the_fleet() {
    let sim = sim(Some(SimTls::Certificate)).await;
    let ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca.path(), sim.ca_pem().unwrap()).unwrap();
    let fleet = fleet(&ca.path().display().to_string()).await;
    let password = sim.routers()[0].password.clone();
    fleet.open(router(1, &sim, true, "verify"), password).await;
    let value = identity(&fleet, 1).await.expect("identity over API-SSL");
    assert!(value.to_string().contains("name"), "{value}");
    assert_eq!(sim.router(0).logins(), 1);
    fleet.shutdown().await;
}

/// A wrong pin keeps the router unreachable with the pin message, and the router never
/// sees a login.
#[tokio::test]
async fn pin_mismatch_reaches_the_caller_as_unreachable() {
    let sim = sim(Some(SimTls::SelfSigned)).await;
    let fleet = fleet("").await;
    let password = sim.routers()[0].password.clone();
    let pin = format!("pin:{}", "00".repeat(32));
    fleet.open(router(2, &sim, true, &pin), password).await;
    let err = identity(&fleet, 2).await.unwrap_err();
    let ExecError::Failed(CommandFailure::Unreachable { message }) = &err else {
        panic!("expected unreachable, got {err:?}");
    };
    assert!(message.contains("does not match the pin"), "{message}");
    assert_eq!(sim.router(0).logins(), 0);
    fleet.shutdown().await;
}

/// Without use_https the tls field is ignored and the plain API is spoken.
#[tokio::test]
async fn tls_field_is_ignored_without_use_https() {
    let sim = sim(None).await;
    let fleet = fleet("").await;
    let password = sim.routers()[0].password.clone();
    fleet
        .open(router(3, &sim, false, "insecure"), password)
        .await;
    identity(&fleet, 3).await.expect("plain API");
    assert_eq!(sim.router(0).logins(), 1);
    fleet.shutdown().await;
}
