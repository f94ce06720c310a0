//! The RouterOS v7 REST transport: `execute-command` requests sent as HTTP to `/rest`,
//! giving the same JSON and the same failures as [`crate::routeros::execute`] gives over
//! the API for the same request against the same router.
//!
//! - [`RestClient`]: one router's keep-alive HTTP/1.1 connections ([`pool`]) and Basic auth.
//! - [`json`]: bodies whose strings are bytes, so values that are not UTF-8 survive.
//! - [`answer`]: HTTP answers turned into results and [`CommandFailure`]s.
//!
//! How each method maps: GET prints (`.proplist` and equality filters go in the query
//! string); a GET with `.query` words becomes `POST menu/print`, since a REST GET cannot
//! carry them. PUT adds and PATCH sets, the router answering with the record; DELETE
//! removes (204); POST runs the command with `data` as its JSON body.
//!
//! Values that are not UTF-8: a value listed in `data`'s `".latin1"` is sent as its raw
//! bytes inside the JSON string. RouterOS keeps values as bytes; a body with such bytes is
//! not UTF-8, and [`json::parse`] reads it byte for byte, so results show those values
//! exactly as the API path does (one character per byte, named in `".latin1"`).
//!
//! Known limits: a timed-out request cannot be cancelled on the router the way `/cancel`
//! does over the API; its connection is dropped instead, which RouterOS takes as the end
//! of the request. HTTPS is accepted as an option but not built yet: [`RestClient::new`]
//! refuses it until the crate has a TLS engine (the API-SSL work adds OpenSSL).

mod answer;
pub mod json;
mod pool;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use http::{HeaderValue, Method};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{Map, Value};

use super::client::{ConnectOptions, Credentials};
use super::error::ClientError;
use super::request::{latin1_names, RestMethod, RestRequest};
use super::CommandFailure;
use answer::{failure, project, record_of_print, success};
use pool::Pool;

/// Bytes left as they are in a query string: unreserved ones, plus `,` and `*` so that
/// proplists and ids read naturally.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b',')
    .remove(b'*');

/// A router reached over its REST API; cheap to clone, clones share the connections.
#[derive(Clone)]
pub struct RestClient {
    pool: Arc<Pool>,
    /// Bounds [`RestClient::probe`], like the login timeout bounds an API connect.
    probe_timeout: Duration,
}

impl fmt::Debug for RestClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestClient")
            .field("router", &self.pool.authority)
            .field("idle_connections", &self.pool.idle())
            .finish()
    }
}

impl RestClient {
    /// Prepares a client for `host:port`; no connection is made until the first request.
    /// `opts.connect_timeout` bounds each TCP connect, `opts.login_timeout` a probe.
    pub fn new(
        host: &str,
        port: u16,
        https: bool,
        creds: Credentials,
        opts: &ConnectOptions,
    ) -> Result<RestClient, ClientError> {
        let addr = format!("{host}:{port}");
        let refuse = |why: &str| ClientError::Connect {
            addr: addr.clone(),
            source: std::io::Error::new(std::io::ErrorKind::Unsupported, why.to_owned()),
        };
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c == '/') {
            return Err(refuse("not a host name or address"));
        }
        let pair = format!("{}:{}", creds.username, creds.password);
        let token = base64::engine::general_purpose::STANDARD.encode(pair.as_bytes());
        let mut authorization = HeaderValue::from_str(&format!("Basic {token}"))
            .map_err(|_| refuse("credentials do not fit in a header"))?;
        authorization.set_sensitive(true);
        let pool = Pool::new(
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port,
            authorization,
            opts.connect_timeout,
            opts.tcp_keepalive,
            https.then(|| {
                opts.tls
                    .clone()
                    .unwrap_or(crate::routeros::tls::TlsMode::Verify { ca_file: None })
            }),
        );
        Ok(RestClient {
            pool: Arc::new(pool),
            probe_timeout: opts.login_timeout,
        })
    }

    /// Keep-alive connections waiting for the next request.
    pub fn idle_connections(&self) -> usize {
        self.pool.idle()
    }

    /// Checks that the router answers and takes the credentials; returns its version.
    pub async fn probe(&self) -> Result<Option<String>, ClientError> {
        let asking = self.pool.send(Method::GET, "/rest/system/resource", None);
        let answer = match tokio::time::timeout(self.probe_timeout, asking).await {
            Err(_) => return Err(ClientError::Timeout),
            Ok(answer) => answer?,
        };
        match answer.status.as_u16() {
            200 => {
                let value = json::parse(&answer.body)
                    .map_err(|e| ClientError::Protocol(format!("resource is not JSON: {e}")))?
                    .into_value();
                Ok(value
                    .get("version")
                    .and_then(Value::as_str)
                    .map(str::to_owned))
            }
            401 | 403 => Err(ClientError::LoginRejected {
                message: format!("HTTP {}", answer.status),
            }),
            _ => Err(ClientError::Protocol(format!(
                "GET /rest/system/resource answered HTTP {}",
                answer.status
            ))),
        }
    }

    /// Runs `req` within `timeout`; see the module doc for how each method maps.
    pub async fn execute(
        &self,
        req: &RestRequest,
        timeout: Duration,
    ) -> Result<Value, CommandFailure> {
        tracing::debug!(cmd.method = req.method.as_str(), cmd.path = %req.command,
            router.addr = %self.pool.authority, "execute-command over REST");
        match tokio::time::timeout(timeout, self.run(req)).await {
            Err(_) => Err(CommandFailure::Timeout),
            Ok(result) => result,
        }
    }

    async fn run(&self, req: &RestRequest) -> Result<Value, CommandFailure> {
        let id = req.record_id();
        let path = format!("/rest/{}", req.command);
        match req.method {
            RestMethod::Get if req.params.contains_key(".query") => self.print_by_post(req).await,
            RestMethod::Get => {
                let target = match query_string(&req.params) {
                    query if query.is_empty() => path,
                    query => format!("{path}?{query}"),
                };
                let answer = self.send(Method::GET, &target, None).await?;
                success(answer, id)
            }
            RestMethod::Post => {
                let body = json_body(&req.data, &[".latin1"]);
                success(self.send(Method::POST, &path, Some(body)).await?, id)
            }
            RestMethod::Put | RestMethod::Patch => {
                let method = match req.method {
                    RestMethod::Put => Method::PUT,
                    _ => Method::PATCH,
                };
                let body = json_body(&req.data, &[".latin1", ".proplist"]);
                let record = success(self.send(method, &path, Some(body)).await?, id)?;
                Ok(match req.data.get(".proplist").and_then(Value::as_str) {
                    Some(list) => project(record, list),
                    None => record,
                })
            }
            RestMethod::Delete => {
                success(self.send(Method::DELETE, &path, None).await?, id)?;
                Ok(Value::Null)
            }
        }
    }

    /// A GET with `.query` words, as `POST menu/print`, shaped like a GET answer.
    async fn print_by_post(&self, req: &RestRequest) -> Result<Value, CommandFailure> {
        let mut body = Map::new();
        let mut words: Vec<Value> = Vec::new();
        let latin1 = latin1_names(&req.params);
        let mut latin1_words = Vec::new();
        for (name, value) in &req.params {
            if matches!(name.as_str(), ".proplist" | ".query" | ".latin1") {
                continue;
            }
            let word = format!("?{name}={}", value.as_str().unwrap_or_default());
            if latin1.contains(&name.as_str()) {
                latin1_words.push(words.len());
            }
            words.push(Value::String(word));
        }
        if let Some(query) = req.params.get(".query").and_then(Value::as_array) {
            words.extend(query.iter().cloned());
        }
        if let Some(id) = req.record_id() {
            words.push(Value::String(format!("?.id={id}")));
        }
        let hide_id = match req.params.get(".proplist").and_then(Value::as_str) {
            Some(list) if !list.split(',').any(|n| n.trim() == ".id") => {
                body.insert(".proplist".into(), Value::String(format!("{list},.id")));
                true
            }
            Some(list) => {
                body.insert(".proplist".into(), Value::String(list.to_owned()));
                false
            }
            None => false,
        };
        let mut out = json_body(&body, &[]);
        out.pop();
        if !body.is_empty() {
            out.push(b',');
        }
        out.extend_from_slice(b"\".query\":[");
        for (i, word) in words.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let word = word.as_str().unwrap_or_default();
            json::write_text(&mut out, &wire_bytes(word, latin1_words.contains(&i)));
        }
        out.extend_from_slice(b"]}");
        let path = format!("/rest/{}/print", req.menu());
        let answer = self.send(Method::POST, &path, Some(out)).await?;
        let rows = success(answer, None)?;
        record_of_print(rows, req.record_id(), hide_id)
    }

    async fn send(
        &self,
        method: Method,
        target: &str,
        body: Option<Vec<u8>>,
    ) -> Result<answer::Reply, CommandFailure> {
        match self.pool.send(method, target, body).await {
            Ok(answer) => Ok(answer::Reply(answer)),
            Err(err) => Err(failure(err)),
        }
    }
}

/// `.proplist` and equality filters as a query string, raw bytes percent-encoded.
fn query_string(params: &Map<String, Value>) -> String {
    let latin1 = latin1_names(params);
    let mut parts = Vec::new();
    for (name, value) in params {
        if name == ".latin1" || name == ".query" {
            continue;
        }
        let text = value.as_str().unwrap_or_default();
        let bytes = wire_bytes(text, latin1.contains(&name.as_str()));
        parts.push(format!(
            "{}={}",
            utf8_percent_encode(name, QUERY_VALUE),
            percent_encoding::percent_encode(&bytes, QUERY_VALUE)
        ));
    }
    parts.join("&")
}

/// `data` as a JSON object, values as their wire bytes, leaving out the names in `skip`.
fn json_body(data: &Map<String, Value>, skip: &[&str]) -> Vec<u8> {
    let latin1 = latin1_names(data);
    let mut out = vec![b'{'];
    let mut first = true;
    for (name, value) in data {
        if skip.contains(&name.as_str()) {
            continue;
        }
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        json::write_text(&mut out, name.as_bytes());
        out.push(b':');
        match value {
            Value::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    json::write_text(&mut out, item.as_str().unwrap_or_default().as_bytes());
                }
                out.push(b']');
            }
            other => {
                let text = other.as_str().unwrap_or_default();
                let bytes = wire_bytes(text, latin1.contains(&name.as_str()));
                json::write_text(&mut out, &bytes);
            }
        }
    }
    out.push(b'}');
    out
}

/// UTF-8, or one byte per character for a value listed in `.latin1`.
fn wire_bytes(text: &str, latin1: bool) -> Vec<u8> {
    match latin1 {
        true => text.chars().map(|c| c as u32 as u8).collect(),
        false => text.as_bytes().to_vec(),
    }
}

#[cfg(test)]
mod tests;
