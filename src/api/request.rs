//! Reading a request: method, path, query, headers and a size-limited body, and turning
//! the body into a JSON object with the contract's errors for each way it can be wrong.

use bytes::{Buf, Bytes, BytesMut};
use futures::{Stream, StreamExt};
use http::{header, HeaderMap, Method, StatusCode};
use serde_json::{Map, Value};
use warp::Filter;

use super::ApiError;
use crate::auth::Principal;

/// One HTTP request as the handlers see it.
pub struct ApiRequest {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A filter that never rejects: it yields the request, or the error to answer with when
/// the body is too large.
pub fn extract(
    limit: usize,
) -> impl Filter<Extract = (Result<ApiRequest, ApiError>,), Error = std::convert::Infallible>
       + Clone
       + Send
       + Sync
       + 'static {
    let query = warp::query::raw().or(warp::any().map(String::new)).unify();
    warp::method()
        .and(warp::path::full())
        .and(query)
        .and(warp::header::headers_cloned())
        .and(warp::body::stream())
        .then(
            move |method, path: warp::path::FullPath, query, headers: HeaderMap, body| {
                let path = path.as_str().to_string();
                async move {
                    let body = read_body(&headers, body, limit).await?;
                    Ok(ApiRequest {
                        method,
                        path,
                        query,
                        headers,
                        body,
                    })
                }
            },
        )
        .recover(|_| async {
            Ok::<_, std::convert::Infallible>(Err(ApiError::Detail(
                StatusCode::BAD_REQUEST,
                "Malformed request.".into(),
            )))
        })
        .unify()
}

async fn read_body<S, B>(headers: &HeaderMap, body: S, limit: usize) -> Result<Bytes, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let too_large = || {
        ApiError::Detail(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Request body exceeds the limit of {limit} bytes."),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    let mut buf = BytesMut::new();
    futures::pin_mut!(body);
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk.map_err(|_| {
            ApiError::Detail(
                StatusCode::BAD_REQUEST,
                "Request body could not be read.".into(),
            )
        })?;
        if buf.len() + chunk.remaining() > limit {
            return Err(too_large());
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            buf.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(buf.freeze())
}

impl ApiRequest {
    /// Path segments without empty ones, so `/routers/1/` and `/routers/1` match alike.
    pub fn segments(&self) -> Vec<&str> {
        self.path.split('/').filter(|s| !s.is_empty()).collect()
    }

    /// The bearer token, if an `Authorization` header is present at all.
    fn authorization(&self) -> Option<&str> {
        self.headers
            .get(header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap_or(""))
    }

    /// Authenticates the request from its bearer token (JWT verify only).
    pub fn principal(&self, state: &super::AppState) -> Result<Principal, ApiError> {
        let value = self.authorization().ok_or(ApiError::NotAuthenticated)?;
        let mut parts = value.split_whitespace();
        let (Some(scheme), Some(token), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(ApiError::TokenInvalid);
        };
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ApiError::TokenInvalid);
        }
        state
            .accounts
            .verify_access(token)
            .map_err(|_| ApiError::TokenInvalid)
    }

    /// Answers 405 unless the method is one of `allowed` (which is also the `Allow` header).
    pub fn require_method(&self, allowed: &'static str) -> Result<(), ApiError> {
        let method = self.method.as_str();
        if allowed.split(", ").any(|m| m == method) {
            Ok(())
        } else {
            Err(ApiError::MethodNotAllowed {
                method: method.to_string(),
                allow: allowed,
            })
        }
    }

    /// The body as a JSON object. An empty body counts as `{}`.
    pub fn json_object(&self) -> Result<Map<String, Value>, ApiError> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Map::new());
        }
        if let Some(ct) = self.headers.get(header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or("");
            let essence = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if essence != "application/json" && !essence.ends_with("+json") {
                return Err(ApiError::Detail(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!("Unsupported media type \"{ct}\" in request."),
                ));
            }
        }
        let value: Value = serde_json::from_slice(&self.body).map_err(|e| {
            ApiError::Detail(StatusCode::BAD_REQUEST, format!("JSON parse error - {e}"))
        })?;
        match value {
            Value::Object(map) => Ok(map),
            other => Err(ApiError::Detail(
                StatusCode::BAD_REQUEST,
                format!(
                    "Invalid data. Expected a dictionary, but got {}.",
                    json_kind(&other)
                ),
            )),
        }
    }

    /// The value of one query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k) == name).then(|| percent_decode(v))
        })
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                match (
                    bytes.get(i + 1).and_then(|&b| hex(b)),
                    bytes.get(i + 2).and_then(|&b| hex(b)),
                ) {
                    (Some(hi), Some(lo)) => {
                        out.push(hi << 4 | lo);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads the fields of a JSON object with the contract's field errors, and rejects
/// fields nobody asked for.
pub struct Fields {
    map: Map<String, Value>,
    errors: std::collections::BTreeMap<String, Vec<String>>,
    known: Vec<&'static str>,
}

impl Fields {
    pub fn new(map: Map<String, Value>) -> Self {
        Self {
            map,
            errors: Default::default(),
            known: Vec::new(),
        }
    }

    fn error(&mut self, field: &str, msg: &str) {
        self.errors
            .entry(field.to_string())
            .or_default()
            .push(msg.to_string());
    }

    /// A string field; `required` ones report a missing or blank value.
    pub fn string(&mut self, name: &'static str, required: bool) -> Option<String> {
        self.known.push(name);
        match self.map.get(name) {
            None | Some(Value::Null) if required => {
                self.error(name, "This field is required.");
                None
            }
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if required && s.trim().is_empty() => {
                self.error(name, "This field may not be blank.");
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.error(name, "Not a valid string.");
                None
            }
        }
    }

    pub fn boolean(&mut self, name: &'static str) -> Option<bool> {
        self.known.push(name);
        match self.map.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::String(s)) if matches!(s.as_str(), "true" | "True" | "1") => Some(true),
            Some(Value::String(s)) if matches!(s.as_str(), "false" | "False" | "0") => Some(false),
            Some(_) => {
                self.error(name, "Must be a valid boolean.");
                None
            }
        }
    }

    /// An integer field within `range`.
    pub fn integer(&mut self, name: &'static str, min: i64, max: i64) -> Option<i64> {
        self.known.push(name);
        let n = match self.map.get(name) {
            None | Some(Value::Null) => return None,
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
            Some(_) => None,
        };
        match n {
            None => {
                self.error(name, "A valid integer is required.");
                None
            }
            Some(n) if n < min => {
                self.error(
                    name,
                    &format!("Ensure this value is greater than or equal to {min}."),
                );
                None
            }
            Some(n) if n > max => {
                self.error(
                    name,
                    &format!("Ensure this value is less than or equal to {max}."),
                );
                None
            }
            Some(n) => Some(n),
        }
    }

    pub fn string_list(&mut self, name: &'static str) -> Option<Vec<String>> {
        self.known.push(name);
        match self.map.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => {
                let strings: Option<Vec<String>> = items
                    .iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect();
                if strings.is_none() {
                    self.error(name, "Expected a list of strings.");
                }
                strings
            }
            Some(_) => {
                self.error(name, "Expected a list of items but got a different type.");
                None
            }
        }
    }

    /// Fields the representation shows but a client may not set; sent back, they are ignored.
    pub fn read_only(&mut self, names: &[&'static str]) {
        self.known.extend_from_slice(names);
    }

    /// Adds an error found by the caller's own validation.
    pub fn invalid(&mut self, name: &str, msg: &str) {
        self.error(name, msg);
    }

    /// Ends reading: unknown fields are errors too.
    pub fn finish(mut self) -> Result<(), ApiError> {
        let unknown: Vec<String> = self
            .map
            .keys()
            .filter(|k| !self.known.contains(&k.as_str()))
            .cloned()
            .collect();
        for name in unknown {
            self.error(&name, "Unknown field.");
        }
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Fields(self.errors))
        }
    }
}
