//! A real node on port 0 with an embedded store in a temporary directory, real simulated
//! routers, and a real HTTP client: what every API test starts from.
#![allow(dead_code)]

use std::time::Duration;

use cloudpilot::config::Settings;
use cloudpilot::node::Node;
use cloudpilot::sim::{SimConfig, Simulator};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

pub struct TestEnv {
    pub node: Option<Node>,
    pub sim: Simulator,
    pub http: Client,
    pub base: String,
    pub dir: tempfile::TempDir,
}

/// Settings for tests: cheap password hashing, short timeouts, fast reconnects.
pub fn test_settings(dir: &std::path::Path, extra: &[(&str, &str)]) -> Settings {
    let mut env: Vec<(String, String)> = vec![
        ("CLOUDPILOT__AUTH__PBKDF2_ITERATIONS".into(), "1000".into()),
        (
            "CLOUDPILOT__FLEET__CONNECT_TIMEOUT_MS".into(),
            "2000".into(),
        ),
        ("CLOUDPILOT__FLEET__BACKOFF_INITIAL_MS".into(), "50".into()),
        ("CLOUDPILOT__FLEET__BACKOFF_MAX_MS".into(), "500".into()),
        (
            "CLOUDPILOT__STORE__DATA_DIR".into(),
            dir.display().to_string(),
        ),
    ];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Settings::load_with_env(None, env).expect("test settings load")
}

impl TestEnv {
    pub async fn start(routers: usize) -> TestEnv {
        Self::start_with(routers, &[], SimConfig::default()).await
    }

    pub async fn start_with(routers: usize, extra: &[(&str, &str)], sim: SimConfig) -> TestEnv {
        let sim = Simulator::start(SimConfig { routers, ..sim })
            .await
            .expect("simulator starts");
        let dir = tempfile::tempdir().unwrap();
        let settings = test_settings(dir.path(), extra);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let node = Node::start(settings, listener).await.expect("node starts");
        let base = format!("http://{}", node.addr);
        let http = Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        TestEnv {
            node: Some(node),
            sim,
            http,
            base,
            dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends a request and returns status, headers and the JSON body (Null when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("non-JSON body: {text}"))
        };
        (status, headers, value)
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let (s, _, v) = self.call(Method::GET, path, Some(token), None).await;
        (s, v)
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        let (s, _, v) = self.call(Method::POST, path, token, Some(body)).await;
        (s, v)
    }

    /// Registers a user and logs in; returns (user id, access, refresh, registration body).
    pub async fn user(&self, name: &str) -> User {
        let (s, reg) = self
            .post(
                "/users/register/",
                None,
                json!({"username": name, "password": "s3cret-pass!"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{reg}");
        let (s, login) = self
            .post(
                "/users/login/",
                None,
                json!({"username": name, "password": "s3cret-pass!"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{login}");
        User {
            id: reg["user_id"].as_u64().unwrap(),
            access: login["access_token"].as_str().unwrap().to_string(),
            refresh: login["refresh_token"].as_str().unwrap().to_string(),
            registration: reg,
        }
    }

    /// Adds simulated router `index` for `user`; returns its id.
    pub async fn add_router(&self, user: &User, index: usize) -> u64 {
        let r = &self.sim.routers()[index];
        let (s, body) = self
            .post(
                "/routers/",
                Some(&user.access),
                json!({
                    "name": format!("r{index}"),
                    "host": r.host,
                    "port": r.port,
                    "username": r.username,
                    "password": r.password,
                }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
        body["id"].as_u64().unwrap()
    }

    /// Waits until the router's session is up (is_online), or panics after 10 s.
    pub async fn wait_online(&self, user: &User, id: u64) {
        for _ in 0..200 {
            let (_, body) = self.get(&format!("/routers/{id}/"), &user.access).await;
            if body["is_online"] == json!(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("router {id} never came online");
    }

    pub async fn exec(&self, user: &User, id: u64, body: Value) -> (StatusCode, Value) {
        self.post(
            &format!("/routers/{id}/execute-command/"),
            Some(&user.access),
            body,
        )
        .await
    }
}

pub struct User {
    pub id: u64,
    pub access: String,
    pub refresh: String,
    pub registration: Value,
}
