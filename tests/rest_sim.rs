//! The simulator's REST API at the HTTP level, seen by a plain HTTP client: status codes,
//! RouterOS's error shape, Basic auth, one model shared with the API port, and which
//! versions have REST at all.

use std::time::Duration;

use cloudpilot::routeros::{execute, ConnectOptions, Connection, Credentials, RestRequest};
use cloudpilot::sim::{SimConfig, SimRouterInfo, Simulator};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

async fn sim_with_rest(versions: &[&str]) -> Simulator {
    Simulator::start(SimConfig {
        routers: versions.len(),
        versions: versions.iter().map(|v| v.to_string()).collect(),
        rest: true,
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts")
}

fn url(info: &SimRouterInfo, path: &str) -> String {
    format!(
        "http://{}:{}/rest/{path}",
        info.host,
        info.rest_port.expect("REST port")
    )
}

fn http() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// PUT adds (201 with the record), DELETE removes (204), and a second DELETE is a 404.
#[tokio::test]
async fn put_answers_201_with_the_record_and_delete_204_then_404() {
    let sim = sim_with_rest(&["7.18.2"]).await;
    let info = &sim.routers()[0];
    let http = http();
    let added = http
        .put(url(info, "ip/address"))
        .basic_auth(&info.username, Some(&info.password))
        .json(&json!({"address": "10.1.1.1/24", "interface": "ether2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), StatusCode::CREATED);
    let record: Value = added.json().await.unwrap();
    assert_eq!(record["address"], "10.1.1.1/24");
    assert_eq!(record["network"], "10.1.1.0");
    let id = record[".id"].as_str().unwrap().to_owned();
    assert!(id.starts_with('*'));

    let delete = || {
        http.delete(url(info, &format!("ip/address/{id}")))
            .basic_auth(&info.username, Some(&info.password))
            .send()
    };
    let first = delete().await.unwrap();
    assert_eq!(first.status(), StatusCode::NO_CONTENT);
    assert!(first.bytes().await.unwrap().is_empty());
    let again = delete().await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["error"], 404);
}

/// A refused command answers 400 in RouterOS's shape, the trap message as `detail`.
#[tokio::test]
async fn a_trap_is_a_400_with_error_message_and_detail() {
    let sim = sim_with_rest(&["7.18.2"]).await;
    let info = &sim.routers()[0];
    let answer = http()
        .post(url(info, "ip/address/remove"))
        .basic_auth(&info.username, Some(&info.password))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": 400, "message": "Bad Request",
               "detail": "missing value(s) of argument(s) .id"})
    );
}

/// Without credentials, or with the wrong password, the answer is 401 with a challenge.
#[tokio::test]
async fn requests_without_the_routers_credentials_get_401() {
    let sim = sim_with_rest(&["7.18.2"]).await;
    let info = &sim.routers()[0];
    let http = http();
    let anonymous = http.get(url(info, "system/identity")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert!(anonymous
        .headers()
        .get("www-authenticate")
        .is_some_and(|v| v.to_str().unwrap().starts_with("Basic")));
    let wrong = http
        .get(url(info, "system/identity"))
        .basic_auth(&info.username, Some("not-the-password"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let right = http
        .get(url(info, "system/identity"))
        .basic_auth(&info.username, Some(&info.password))
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), StatusCode::OK);
    assert_eq!(
        right.json::<Value>().await.unwrap(),
        json!({"name": "sim-0"})
    );
}

/// An address added over REST is seen over the API, and one added over the API over REST.
#[tokio::test]
async fn rest_and_api_ports_share_one_model() {
    let sim = sim_with_rest(&["7.18.2"]).await;
    let info = &sim.routers()[0];
    let http = http();
    let creds = Credentials {
        username: info.username.clone(),
        password: info.password.clone(),
    };
    let conn = Connection::connect(&info.host, info.port, &creds, &ConnectOptions::default())
        .await
        .unwrap();
    let status = http
        .put(url(info, "ip/address"))
        .basic_auth(&info.username, Some(&info.password))
        .json(&json!({"address": "10.7.0.1/24", "interface": "ether3"}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::CREATED);
    let params = json!({"interface": "ether3"});
    let get = RestRequest::parse(Some("GET"), "ip/address", Some(&params), None).unwrap();
    let seen = execute(&conn, &get, Duration::from_secs(5)).await.unwrap();
    assert_eq!(seen[0]["address"], "10.7.0.1/24");

    let data = json!({"address": "10.8.0.1/24", "interface": "ether4"});
    let add = RestRequest::parse(Some("PUT"), "ip/address", None, Some(&data)).unwrap();
    execute(&conn, &add, Duration::from_secs(5)).await.unwrap();
    let listed: Value = http
        .get(url(info, "ip/address?interface=ether4"))
        .basic_auth(&info.username, Some(&info.password))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["address"], "10.8.0.1/24");
    assert_eq!(listed.as_array().unwrap().len(), 1);
}

/// Only 7.1 and later serve REST; REST is off unless asked for.
#[tokio::test]
async fn only_v7_routers_get_a_rest_port_and_only_when_asked() {
    let sim = sim_with_rest(&["7.1", "6.49.10", "7.18.2"]).await;
    let ports: Vec<Option<u16>> = sim.routers().iter().map(|r| r.rest_port).collect();
    assert!(ports[0].is_some() && ports[2].is_some());
    assert_eq!(ports[1], None);
    assert_ne!(ports[0], Some(sim.routers()[0].port));

    let plain = Simulator::start(SimConfig::default()).await.unwrap();
    assert_eq!(plain.routers()[0].rest_port, None);
}

/// The drop fault closes the HTTP connection without an answer.
#[tokio::test]
async fn a_dropped_request_gets_no_answer() {
    let sim = sim_with_rest(&["7.18.2"]).await;
    let info = &sim.routers()[0];
    sim.router(0).drop_next_command();
    let result = http()
        .get(url(info, "system/identity"))
        .basic_auth(&info.username, Some(&info.password))
        .send()
        .await;
    assert!(result.is_err(), "expected no answer, got {result:?}");
}
