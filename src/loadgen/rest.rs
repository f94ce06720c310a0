//! The load generator's view of CloudPilot: a plain REST client (reqwest) that logs in,
//! registers routers and sends the requests of the mix. Nothing here reaches into the
//! server's internals.

use std::time::Duration;

use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

use super::children::SimRouter;
use super::LoadgenError;

/// One logged-in client of a CloudPilot node.
#[derive(Clone)]
pub struct Rest {
    client: Client,
    pub base: String,
    token: String,
    /// Credentials for the login share of the mix; absent when only a token was given.
    login: Option<(String, String)>,
}

/// How the client gets its token.
pub enum Auth {
    Token(String),
    Password {
        username: String,
        password: String,
    },
    /// Register a fresh user with a random name, then log in.
    Register,
}

fn http_client() -> Result<Client, LoadgenError> {
    Client::builder()
        .timeout(Duration::from_secs(15))
        .pool_max_idle_per_host(4096)
        .tcp_nodelay(true)
        .build()
        .map_err(|source| LoadgenError::Http {
            what: "building the HTTP client".into(),
            source,
        })
}

impl Rest {
    /// Waits until `GET base/health/` answers 200, at most `limit`.
    pub async fn wait_healthy(base: &str, limit: Duration) -> Result<(), LoadgenError> {
        let client = http_client()?;
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let resp = client.get(format!("{base}/health/")).send().await;
            if matches!(&resp, Ok(r) if r.status() == StatusCode::OK) {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(LoadgenError::ServerNotReady { url: base.into() });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn connect(base: &str, auth: Auth) -> Result<Rest, LoadgenError> {
        let mut rest = Rest {
            client: http_client()?,
            base: base.trim_end_matches('/').to_owned(),
            token: String::new(),
            login: None,
        };
        let (username, password) = match auth {
            Auth::Token(t) => {
                rest.token = t;
                return Ok(rest);
            }
            Auth::Password { username, password } => (username, password),
            Auth::Register => {
                let username = format!("loadgen-{:08x}", rand::random::<u32>());
                let password = format!("lg-{:016x}-pw", rand::random::<u64>());
                let body = json!({"username": username, "password": password});
                rest.expect(
                    "register",
                    Method::POST,
                    "/users/register/",
                    Some(body),
                    201,
                )
                .await?;
                (username, password)
            }
        };
        let body = json!({"username": username, "password": password});
        let login = rest
            .expect("login", Method::POST, "/users/login/", Some(body), 200)
            .await?;
        rest.token = login["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        rest.login = Some((username, password));
        Ok(rest)
    }

    /// Sends one request; returns the status and the body (Null when empty or not JSON).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(StatusCode, Value), reqwest::Error> {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if !self.token.is_empty() {
            req = req.bearer_auth(&self.token);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let bytes = resp.bytes().await?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    /// Sends one request whose body is already JSON text and reads the reply as bytes: the
    /// hot requests of a run skip building and parsing `Value`s, so that the load
    /// generator spends its share of the machine on sending, not on JSON.
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        body: Option<bytes::Bytes>,
    ) -> Result<(StatusCode, bytes::Bytes), reqwest::Error> {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if !self.token.is_empty() {
            req = req.bearer_auth(&self.token);
        }
        if let Some(b) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b);
        }
        let resp = req.send().await?;
        let status = resp.status();
        Ok((status, resp.bytes().await?))
    }

    /// Like [`Rest::send`], but anything other than `want` is an error naming `what`.
    pub async fn expect(
        &self,
        what: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
        want: u16,
    ) -> Result<Value, LoadgenError> {
        let (status, body) =
            self.send(method, path, body)
                .await
                .map_err(|source| LoadgenError::Http {
                    what: what.into(),
                    source,
                })?;
        if status.as_u16() != want {
            return Err(LoadgenError::Api {
                what: what.into(),
                status: status.as_u16(),
                body: body.to_string(),
            });
        }
        Ok(body)
    }

    /// Adds simulated router `index` and returns its id.
    pub async fn add_router(&self, index: usize, r: &SimRouter) -> Result<u64, LoadgenError> {
        let body = json!({
            "name": format!("lg-{index}"),
            "host": r.host,
            "port": r.port,
            "username": r.username,
            "password": r.password,
        });
        let created = self.expect("add router", Method::POST, "/routers/", Some(body), 201);
        let created = created.await?;
        created["id"].as_u64().ok_or_else(|| LoadgenError::Api {
            what: "add router".into(),
            status: 201,
            body: created.to_string(),
        })
    }

    /// `sessions.open` from `/health/`.
    pub async fn open_sessions(&self) -> Result<u64, LoadgenError> {
        let health = self
            .expect("health", Method::GET, "/health/", None, 200)
            .await?;
        Ok(health["sessions"]["open"].as_u64().unwrap_or(0))
    }

    pub fn login_credentials(&self) -> Option<&(String, String)> {
        self.login.as_ref()
    }
}

/// Execute-command body reading `system/resource`, as JSON text.
pub fn resource_read() -> bytes::Bytes {
    bytes::Bytes::from_static(br#"{"command":"system/resource"}"#)
}

pub fn exec_path(router: u64) -> String {
    format!("/routers/{router}/execute-command/")
}
