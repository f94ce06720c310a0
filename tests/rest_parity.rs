//! The two transports agree: one sequence of `execute-command` requests, run through
//! `routeros::execute` over the API on one fresh simulated router and through
//! `RestClient::execute` over REST on another, gives identical results step by step.
//!
//! Each side gets its own simulator holding one router, so both start from the same state
//! (same identity, same defconf address, same next id) and stay in step.

use std::time::Duration;

use cloudpilot::routeros::{
    execute, CommandFailure, ConnectOptions, Connection, Credentials, RestClient, RestRequest,
};
use cloudpilot::sim::{SimConfig, SimRouterInfo, Simulator};
use serde_json::{json, Value};

const TIMEOUT: Duration = Duration::from_secs(5);

async fn one_router() -> (Simulator, SimRouterInfo) {
    let sim = Simulator::start(SimConfig {
        rest: true,
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts");
    let info = sim.routers()[0].clone();
    (sim, info)
}

fn creds(info: &SimRouterInfo) -> Credentials {
    Credentials {
        username: info.username.clone(),
        password: info.password.clone(),
    }
}

/// `(method, command, params, data)`: the body of an `execute-command` request.
type Step = (&'static str, &'static str, Value, Value);

fn steps() -> Vec<Step> {
    let none = || json!({});
    vec![
        // a one-item menu gives an object
        ("GET", "system/identity", none(), none()),
        (
            "GET",
            "system/resource",
            json!({".proplist": "version,cpu-count"}),
            none(),
        ),
        // a list menu gives a list
        ("GET", "ip/address", none(), none()),
        (
            "GET",
            "/ip address print",
            json!({"interface": "ether1"}),
            none(),
        ),
        (
            "GET",
            "interface",
            json!({".proplist": "name,type"}),
            none(),
        ),
        // an empty result
        ("GET", "ip/address", json!({"interface": "ether5"}), none()),
        // add, then the new record by id
        (
            "PUT",
            "ip/address",
            none(),
            json!({"address": "10.9.0.1/24", "interface": "ether2",
            "comment": "parity"}),
        ),
        ("GET", "ip/address/*2", none(), none()),
        (
            "GET",
            "ip/address/*2",
            json!({".proplist": "address,comment"}),
            none(),
        ),
        // set, answering the updated record (with and without .proplist)
        (
            "PATCH",
            "ip/address/*2",
            none(),
            json!({"comment": "changed", "disabled": "yes"}),
        ),
        (
            "PATCH",
            "ip/address/*2",
            none(),
            json!({"comment": "again",
            ".proplist": "comment,address"}),
        ),
        // a value that is not UTF-8 goes in and comes back the same way on both
        (
            "PUT",
            "ip/address",
            none(),
            json!({"address": "10.9.1.1/24", "interface": "ether3",
            "comment": "caf\u{e9}", ".latin1": "comment"}),
        ),
        ("GET", "ip/address", json!({"interface": "ether3"}), none()),
        // traps: a bad argument, a missing one, an unknown menu
        (
            "PUT",
            "ip/address",
            none(),
            json!({"address": "nonsense", "interface": "ether1"}),
        ),
        (
            "PUT",
            "ip/address",
            none(),
            json!({"address": "10.9.2.1/24"}),
        ),
        ("GET", "ip/route", none(), none()),
        (
            "POST",
            "interface/monitor-traffic",
            none(),
            json!({"interface": "wlan9",
            "once": ""}),
        ),
        // POST commands: rows, !done data, nothing at all
        (
            "POST",
            "interface/monitor-traffic",
            none(),
            json!({"interface": "ether1",
            "once": ""}),
        ),
        (
            "POST",
            "ip/address/add",
            none(),
            json!({"address": "10.9.3.1/24",
            "interface": "ether4"}),
        ),
        (
            "POST",
            "system/identity/set",
            none(),
            json!({"name": "parity-router"}),
        ),
        ("GET", "system/identity", none(), none()),
        (
            "POST",
            "ip/address/print",
            none(),
            json!({".proplist": ["address", "interface"],
            ".query": ["?interface=ether4", "?interface=ether2", "?#|"]}),
        ),
        (
            "POST",
            "ping",
            none(),
            json!({"address": "192.0.2.1", "count": "2",
            "interval": "20ms"}),
        ),
        // GET with .query words
        (
            "GET",
            "ip/address",
            json!({".query": ["?comment=again"],
            ".proplist": "address"}),
            none(),
        ),
        // remove, then everything about the removed record is NotFound
        ("DELETE", "ip/address/*2", none(), none()),
        ("DELETE", "ip/address/*2", none(), none()),
        ("GET", "ip/address/*2", none(), none()),
        ("PATCH", "ip/address/*2", none(), json!({"comment": "gone"})),
        ("GET", "ip/address", none(), none()),
    ]
}

fn request((method, command, params, data): &Step) -> RestRequest {
    RestRequest::parse(Some(method), command, Some(params), Some(data))
        .unwrap_or_else(|e| panic!("{method} {command}: {e}"))
}

/// Every step answers the same over the API and over REST, success or failure.
#[tokio::test]
async fn api_and_rest_give_identical_results_for_the_same_requests() {
    let (_api_sim, api_router) = one_router().await;
    let (_rest_sim, rest_router) = one_router().await;
    let conn = Connection::connect(
        &api_router.host,
        api_router.port,
        &creds(&api_router),
        &ConnectOptions::default(),
    )
    .await
    .expect("API login");
    let rest = RestClient::new(
        &rest_router.host,
        rest_router.rest_port.expect("REST is on"),
        false,
        creds(&rest_router),
        &ConnectOptions::default(),
    )
    .expect("REST client");

    let mut outcomes = Vec::new();
    for step in steps() {
        let req = request(&step);
        let over_api = execute(&conn, &req, TIMEOUT).await;
        let over_rest = rest.execute(&req, TIMEOUT).await;
        assert_eq!(
            over_api, over_rest,
            "{} {} {} {}",
            step.0, step.1, step.2, step.3
        );
        outcomes.push(over_api);
    }

    // The table exercises what it claims to: each kind of answer occurs.
    let kinds =
        |f: fn(&Result<Value, CommandFailure>) -> bool| outcomes.iter().filter(|o| f(o)).count();
    assert!(kinds(|o| matches!(o, Ok(Value::Object(_)))) >= 5);
    assert!(kinds(|o| matches!(o, Ok(Value::Array(a)) if a.is_empty())) >= 2);
    assert!(kinds(|o| matches!(o, Ok(Value::Array(a)) if !a.is_empty())) >= 5);
    assert!(kinds(|o| matches!(o, Ok(Value::Null))) == 1);
    assert!(kinds(|o| matches!(o, Err(CommandFailure::NotFound { .. }))) == 3);
    assert!(
        kinds(|o| matches!(
            o,
            Err(CommandFailure::Trap {
                category: Some(_),
                ..
            })
        )) == 4
    );
    assert_eq!(outcomes[20], Ok(json!({"name": "parity-router"})));
    assert_eq!(
        outcomes[12].as_ref().unwrap()[0]["comment"],
        json!("caf\u{e9}")
    );
    assert_eq!(
        outcomes[12].as_ref().unwrap()[0][".latin1"],
        json!("comment")
    );
    assert_eq!(outcomes[18], Ok(json!({"ret": "*4"})));
}
