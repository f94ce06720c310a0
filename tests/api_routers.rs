//! The routers half of the contract through real HTTP against simulated routers:
//! CRUD and validation, isolation, the execute-command method table over one persistent
//! session, and the failure statuses (trap, unreachable, timeout, backlog).

mod common;

use std::time::Duration;

use cloudpilot::sim::Faults;
use common::TestEnv;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn router_crud_with_validation() {
    let env = TestEnv::start(2).await;
    let u = env.user("ops").await;
    let b = env.add_router(&u, 1).await;
    let a = env.add_router(&u, 0).await;
    let (s, list) = env.get("/routers/", &u.access).await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["r0", "r1"], "ordered by name");
    let r = &list[0];
    assert_eq!(r["id"].as_u64(), Some(a));
    for key in [
        "host",
        "port",
        "username",
        "transport",
        "use_https",
        "tls",
        "tags",
        "is_online",
        "last_checked",
        "last_error",
        "routeros_version",
        "created_at",
        "updated_at",
    ] {
        assert!(r.get(key).is_some(), "router lacks {key}: {r}");
    }
    assert!(r.get("password").is_none(), "password is write-only");
    assert_eq!(r["transport"], "api");
    assert_eq!(r["tls"], "verify");

    // PATCH is partial; tags filter the list.
    let (s, _, body) = env
        .call(
            Method::PATCH,
            &format!("/routers/{b}/"),
            Some(&u.access),
            Some(json!({"tags": ["core", "eu"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["tags"], json!(["core", "eu"]));
    assert_eq!(body["name"], "r1");
    let (_, tagged) = env.get("/routers/?tag=core", &u.access).await;
    assert_eq!(tagged.as_array().unwrap().len(), 1);
    assert_eq!(tagged[0]["id"].as_u64(), Some(b));

    // PUT is a full update: required fields missing are field errors, and nothing changes.
    let (s, _, body) = env
        .call(
            Method::PUT,
            &format!("/routers/{b}/"),
            Some(&u.access),
            Some(json!({"name": "renamed"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        body["host"].is_array() && body["username"].is_array(),
        "{body}"
    );
    let (_, still) = env.get(&format!("/routers/{b}/"), &u.access).await;
    assert_eq!(still["name"], "r1");

    let mut full = still.clone();
    full["name"] = json!("edge");
    let (s, _, body) = env
        .call(
            Method::PUT,
            &format!("/routers/{b}"),
            Some(&u.access),
            Some(full),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::OK,
        "a GET body sent back as a PUT is accepted: {body}"
    );
    assert_eq!(body["name"], "edge");

    let (s, body) = env
        .call(
            Method::DELETE,
            &format!("/routers/{b}/"),
            Some(&u.access),
            None,
        )
        .await
        .into_pair();
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        body,
        json!({"message": "Router \"edge\" has been successfully deleted"})
    );
    let (s, body) = env.get(&format!("/routers/{b}/"), &u.access).await;
    assert_eq!(
        (s, body),
        (
            StatusCode::NOT_FOUND,
            json!({"error": "Router not found or access denied"})
        )
    );
}

trait IntoPair {
    fn into_pair(self) -> (StatusCode, Value);
}
impl IntoPair for (StatusCode, reqwest::header::HeaderMap, Value) {
    fn into_pair(self) -> (StatusCode, Value) {
        (self.0, self.2)
    }
}

#[tokio::test]
async fn invalid_router_fields_are_refused_and_nothing_is_created() {
    let env = TestEnv::start(0).await;
    let u = env.user("val").await;
    let bad = [
        (json!({"host": "10.0.0.1", "username": "admin"}), "name"),
        (
            json!({"name": "x", "host": "not a host!", "username": "admin"}),
            "host",
        ),
        (
            json!({"name": "x", "host": "-bad-.example", "username": "admin"}),
            "host",
        ),
        (
            json!({"name": "x", "host": "10.0.0.1", "username": "admin", "port": 70000}),
            "port",
        ),
        (
            json!({"name": "x", "host": "10.0.0.1", "username": "admin", "port": 0}),
            "port",
        ),
        (
            json!({"name": "x", "host": "10.0.0.1", "username": "admin", "port": "http"}),
            "port",
        ),
        (
            json!({"name": "x", "host": "10.0.0.1", "username": "admin", "transport": "ssh"}),
            "transport",
        ),
        (
            json!({"name": "x", "host": "10.0.0.1", "username": "admin", "tls": "pin:zz"}),
            "tls",
        ),
        (
            json!({"name": "x", "host": "10.0.0.1", "username": "admin", "tags": ["a b"]}),
            "tags",
        ),
        (
            json!({"name": "x", "host": "10.0.0.1", "username": "admin", "colour": "red"}),
            "colour",
        ),
        (
            json!({"name": 5, "host": "10.0.0.1", "username": "admin"}),
            "name",
        ),
    ];
    for (body, field) in bad {
        let (s, resp) = env.post("/routers/", Some(&u.access), body.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        assert!(resp[field].is_array(), "{body} -> {resp}");
    }
    let (_, list) = env.get("/routers/", &u.access).await;
    assert_eq!(list, json!([]));
    // Defaults: API port 8728.
    let (s, r) = env
        .post(
            "/routers/",
            Some(&u.access),
            json!({"name": "d", "host": "router.example.net", "username": "admin"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert_eq!(r["port"], 8728);
}

#[tokio::test]
async fn another_users_router_is_not_found() {
    let env = TestEnv::start(1).await;
    let owner = env.user("owner").await;
    let intruder = env.user("intruder").await;
    let id = env.add_router(&owner, 0).await;
    let path = format!("/routers/{id}/");
    let nf = json!({"error": "Router not found or access denied"});
    for method in [Method::GET, Method::PUT, Method::PATCH, Method::DELETE] {
        let (s, _, body) = env
            .call(
                method.clone(),
                &path,
                Some(&intruder.access),
                Some(json!({"name": "mine"})),
            )
            .await;
        assert_eq!((s, body), (StatusCode::NOT_FOUND, nf.clone()), "{method}");
    }
    for action in ["execute-command", "test-connection"] {
        let (s, body) = env
            .post(
                &format!("/routers/{id}/{action}/"),
                Some(&intruder.access),
                json!({"command": "system/resource"}),
            )
            .await;
        assert_eq!((s, body), (StatusCode::NOT_FOUND, nf.clone()), "{action}");
    }
    let (_, list) = env.get("/routers/", &intruder.access).await;
    assert_eq!(list, json!([]));
    let (s, r) = env.get(&path, &owner.access).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(r["name"], "r0", "the owner's router is untouched");
}

#[tokio::test]
async fn execute_command_method_table_over_one_session() {
    let env = TestEnv::start(1).await;
    let u = env.user("exec").await;
    let id = env.add_router(&u, 0).await;
    env.wait_online(&u, id).await;

    let (s, r) = env
        .exec(&u, id, json!({"command": "system/resource"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["message"], "Command executed successfully");
    assert_eq!(r["method"], "GET");
    assert_eq!(r["router_id"].as_u64(), Some(id));
    assert!(r["elapsed_ms"].is_number());
    let res = &r["result"];
    assert!(res.is_object(), "a one-item menu gives an object: {res}");
    assert!(res["version"]
        .as_str()
        .unwrap()
        .starts_with(&env.sim.routers()[0].version));
    assert!(
        res.as_object().unwrap().values().all(Value::is_string),
        "all values are strings"
    );

    let (s, r) = env
        .exec(&u, id, json!({"command": "/interface print"}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(r["result"].as_array().unwrap().len() >= 2);
    let (_, r) = env
        .exec(
            &u,
            id,
            json!({"command": "interface", "params": {"name": "ether1", ".proplist": "name,type"}}),
        )
        .await;
    assert_eq!(r["result"], json!([{"name": "ether1", "type": "ether"}]));

    let (s, added) = env
        .exec(&u, id, json!({"command": "ip/address", "method": "PUT", "data": {"address": "10.9.8.1/24", "interface": "ether1"}}))
        .await;
    assert_eq!(s, StatusCode::OK, "{added}");
    let rid = added["result"][".id"].as_str().unwrap().to_string();
    assert_eq!(added["result"]["address"], "10.9.8.1/24");

    let (_, one) = env
        .exec(&u, id, json!({"command": format!("ip/address/{rid}")}))
        .await;
    assert_eq!(one["result"]["address"], "10.9.8.1/24");

    let (s, set) = env
        .exec(&u, id, json!({"command": format!("ip/address/{rid}"), "method": "PATCH", "data": {"comment": "uplink=a=b"}}))
        .await;
    assert_eq!(s, StatusCode::OK, "{set}");
    assert_eq!(
        set["result"]["comment"], "uplink=a=b",
        "values with = survive"
    );

    let (s, del) = env
        .exec(
            &u,
            id,
            json!({"command": format!("ip/address/{rid}"), "method": "DELETE"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{del}");
    assert_eq!(del["result"], Value::Null);
    let (s, gone) = env
        .exec(&u, id, json!({"command": format!("ip/address/{rid}")}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{gone}");
    assert_eq!(gone["status_code"], 404);

    let (s, empty) = env
        .exec(
            &u,
            id,
            json!({"command": "ip/address", "params": {"address": "192.0.2.1/32"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(empty["result"], json!([]), "!empty means zero rows");

    let (s, r) = env
        .exec(
            &u,
            id,
            json!({"command": "system/identity/set", "method": "POST", "data": {"name": "core-1"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let (_, r) = env
        .exec(&u, id, json!({"command": "system/identity"}))
        .await;
    assert_eq!(r["result"]["name"], "core-1");

    assert_eq!(
        env.sim.router(0).logins(),
        1,
        "one login served every command"
    );
}

#[tokio::test]
async fn traps_and_bad_commands_answer_400() {
    let env = TestEnv::start(1).await;
    let u = env.user("trap").await;
    let id = env.add_router(&u, 0).await;
    let (s, r) = env
        .exec(
            &u,
            id,
            json!({"command": "ip/address", "method": "PUT", "data": {"interface": "ether1"}}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{r}");
    assert_eq!(r["status_code"], 400);
    assert!(r["error"].as_str().unwrap().contains("address"), "{r}");
    assert!(r["category"].is_number(), "{r}");
    assert_eq!(r["command"], "ip/address");
    assert_eq!(r["method"], "PUT");

    let (s, r) = env.exec(&u, id, json!({"command": "no/such/menu"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{r}");

    let (s, r) = env.exec(&u, id, json!({})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(r["error"], "Command is required");
    let (s, r) = env.exec(&u, id, json!({"command": 123})).await;
    assert_eq!(
        (s, r["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("command must be a string"))
    );
    // The session's own words are not the client's to send: /quit would end the session.
    for verb in ["quit", "/login", "cancel"] {
        let (s, r) = env
            .exec(&u, id, json!({"command": verb, "method": "POST"}))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{verb}: {r}");
    }
    assert_eq!(env.sim.router(0).logins(), 1, "the session survived");
    let (s, r) = env
        .exec(
            &u,
            id,
            json!({"command": "system/resource", "method": "FETCH"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        r["error"],
        "Invalid HTTP method. Must be GET, POST, PUT, PATCH, or DELETE"
    );
    let (s, r) = env
        .exec(&u, id, json!({"command": "system/resource\u{0}\n/quit"}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "control bytes are refused: {r}");
    let (s, _) = env
        .exec(
            &u,
            id,
            json!({"command": "system/resource", "timeout_ms": -5}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = env
        .exec(
            &u,
            id,
            json!({"command": "ip/address", "method": "PUT", "data": {"address": ["x"]}}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_dropped_connection_fails_the_command_with_502_then_recovers() {
    let env = TestEnv::start(1).await;
    let u = env.user("drop").await;
    let id = env.add_router(&u, 0).await;
    env.wait_online(&u, id).await;
    env.sim.router(0).drop_next_command();
    let (s, r) = env
        .exec(&u, id, json!({"command": "system/resource"}))
        .await;
    assert_eq!(s, StatusCode::BAD_GATEWAY, "{r}");
    assert_eq!(r["status_code"], 502);
    assert!(
        r["error"].as_str().unwrap().contains("unknown"),
        "outcome unknown is said: {r}"
    );
    let (s, r) = env
        .exec(&u, id, json!({"command": "system/resource"}))
        .await;
    assert_eq!(s, StatusCode::OK, "the session came back: {r}");
    assert_eq!(env.sim.router(0).logins(), 2);
}

#[tokio::test]
async fn a_command_past_its_timeout_is_cancelled_and_the_session_stays_usable() {
    let env = TestEnv::start(1).await;
    let u = env.user("slow").await;
    let id = env.add_router(&u, 0).await;
    env.wait_online(&u, id).await;
    env.sim.router(0).hang_next_command();
    let (s, r) = env
        .exec(
            &u,
            id,
            json!({"command": "system/resource", "timeout_ms": 300}),
        )
        .await;
    assert_eq!(s, StatusCode::GATEWAY_TIMEOUT, "{r}");
    assert_eq!(r["status_code"], 504);
    for _ in 0..50 {
        if env.sim.router(0).cancels() >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        env.sim.router(0).cancels(),
        1,
        "the router was told to cancel"
    );
    let (s, r) = env
        .exec(&u, id, json!({"command": "system/identity"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert!(
        r["result"]["name"].is_string(),
        "no late reply leaks into the next command: {r}"
    );
    assert_eq!(env.sim.router(0).logins(), 1, "same session");
}

#[tokio::test]
async fn an_unreachable_router_answers_502_and_tests_offline() {
    let env = TestEnv::start(0).await;
    let u = env.user("gone").await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (s, r) = env
        .post("/routers/", Some(&u.access), json!({"name": "dead", "host": "127.0.0.1", "port": port, "username": "admin", "password": "x"}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let id = r["id"].as_u64().unwrap();
    let (s, r) = env
        .exec(&u, id, json!({"command": "system/resource"}))
        .await;
    assert_eq!(s, StatusCode::BAD_GATEWAY, "{r}");
    let (s, r) = env
        .post(
            &format!("/routers/{id}/test-connection/"),
            Some(&u.access),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(r["is_online"], false);
    assert_eq!(r["message"], "Connection test completed");
    let (_, r) = env.get(&format!("/routers/{id}/"), &u.access).await;
    assert_eq!(r["is_online"], false);
    assert!(r["last_error"].is_string());
}

#[tokio::test]
async fn wrong_router_password_answers_502() {
    let env = TestEnv::start(1).await;
    let u = env.user("badpw").await;
    let sim = &env.sim.routers()[0];
    let (_, r) = env
        .post("/routers/", Some(&u.access), json!({"name": "x", "host": sim.host, "port": sim.port, "username": sim.username, "password": "wrong"}))
        .await;
    let id = r["id"].as_u64().unwrap();
    let (s, r) = env
        .exec(&u, id, json!({"command": "system/resource"}))
        .await;
    assert_eq!(s, StatusCode::BAD_GATEWAY, "{r}");
    // Fixing the password through PATCH re-creates the session.
    let (s, _, _) = env
        .call(
            Method::PATCH,
            &format!("/routers/{id}/"),
            Some(&u.access),
            Some(json!({"password": sim.password})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    env.wait_online(&u, id).await;
    let (s, _) = env
        .exec(&u, id, json!({"command": "system/resource"}))
        .await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn a_full_backlog_answers_503_with_retry_after() {
    let env = TestEnv::start_with(
        1,
        &[("CLOUDPILOT__FLEET__MAX_BACKLOG", "2")],
        Default::default(),
    )
    .await;
    let u = env.user("busy").await;
    let id = env.add_router(&u, 0).await;
    env.wait_online(&u, id).await;
    env.sim.router(0).set_faults(Faults {
        latency: Duration::from_millis(800),
        ..Default::default()
    });
    let path = env.url(&format!("/routers/{id}/execute-command/"));
    let sends = (0..6).map(|_| {
        env.http
            .post(&path)
            .bearer_auth(&u.access)
            .json(&json!({"command": "system/resource"}))
            .send()
    });
    let results = futures::future::join_all(sends).await;
    let statuses: Vec<u16> = results
        .iter()
        .map(|r| r.as_ref().unwrap().status().as_u16())
        .collect();
    assert!(statuses.contains(&503), "{statuses:?}");
    assert!(statuses.contains(&200), "{statuses:?}");
    let busy = results
        .into_iter()
        .map(Result::unwrap)
        .find(|r| r.status() == 503)
        .unwrap();
    assert!(busy.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn device_info_and_version_come_from_the_router() {
    let env = TestEnv::start(1).await;
    let u = env.user("info").await;
    let id = env.add_router(&u, 0).await;
    env.wait_online(&u, id).await;
    let (s, r) = env
        .get(&format!("/routers/{id}/device-info/"), &u.access)
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let info = &r["device_info"];
    for key in [
        "identity",
        "cpu_load",
        "free_memory",
        "total_memory",
        "free_hdd_space",
        "total_hdd_space",
        "version",
        "uptime",
        "board_name",
        "architecture",
    ] {
        assert!(info[key].is_string(), "device_info.{key} missing: {r}");
    }
    let version = &env.sim.routers()[0].version;
    assert!(info["version"]
        .as_str()
        .unwrap()
        .starts_with(version.as_str()));
    let (_, router) = env.get(&format!("/routers/{id}/"), &u.access).await;
    assert!(router["routeros_version"]
        .as_str()
        .unwrap()
        .starts_with(version.as_str()));
    let (s, r) = env
        .post(
            &format!("/routers/{id}/test-connection/"),
            Some(&u.access),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(r["is_online"], true);
}

#[tokio::test]
async fn deleting_a_router_closes_its_session() {
    let env = TestEnv::start(1).await;
    let u = env.user("del").await;
    let id = env.add_router(&u, 0).await;
    env.wait_online(&u, id).await;
    assert_eq!(env.sim.router(0).active_sessions(), 1);
    let (s, _, _) = env
        .call(
            Method::DELETE,
            &format!("/routers/{id}/"),
            Some(&u.access),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    for _ in 0..100 {
        if env.sim.router(0).active_sessions() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("session still open after delete");
}

/// An `Idempotency-Key` makes a retried write run once on a single node too; another key
/// runs again, and a malformed key is refused before anything runs.
#[tokio::test]
async fn idempotency_key_runs_a_command_once() {
    let env = TestEnv::start(1).await;
    let user = env.user("keyed").await;
    let id = env.add_router(&user, 0).await;
    let add = |comment: &str| {
        json!({"command": "/ip/address", "method": "PUT",
               "data": {"address": "10.7.7.7/24", "interface": "ether1", "comment": comment}})
    };
    let send = |key: &'static str, body: Value| {
        env.http
            .post(env.url(&format!("/routers/{id}/execute-command/")))
            .bearer_auth(&user.access)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    let (first, second) = tokio::join!(send("once-1", add("c1")), send("once-1", add("c1")));
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(
        (first.status(), second.status()),
        (StatusCode::OK, StatusCode::OK)
    );
    let (first, second): (Value, Value) =
        (first.json().await.unwrap(), second.json().await.unwrap());
    assert_eq!(first["result"], second["result"]);
    assert_eq!(env.sim.router(0).executions("c1"), 1);

    // The same key with a different command runs that command, never replays another's.
    let reused = send("once-1", add("c3")).await.unwrap();
    assert_eq!(reused.status(), StatusCode::OK);
    assert_eq!(env.sim.router(0).executions("c3"), 1);

    let other = send("once-2", add("c1")).await.unwrap();
    assert_eq!(other.status(), StatusCode::OK);
    assert_eq!(env.sim.router(0).executions("c1"), 2);

    let bad = send("no spaces allowed", add("c2")).await.unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let body: Value = bad.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("Idempotency-Key"),
        "{body}"
    );
    assert_eq!(env.sim.router(0).executions("c2"), 0);
}
