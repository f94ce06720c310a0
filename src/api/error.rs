//! The one place where failures become HTTP responses, in the shapes of `CONTRACT.md`.

use std::collections::BTreeMap;

use http::{header, HeaderValue, StatusCode};
use serde_json::{json, Value};
use warp::reply::Response;

use crate::store::StoreError;

/// Every failure a handler can answer with.
#[derive(Debug)]
pub enum ApiError {
    /// `{"error": "<sentence>"}` with the given status.
    Message(StatusCode, String),
    /// Field validation: `{"<field>": ["<message>", ...]}`, 400.
    Fields(BTreeMap<String, Vec<String>>),
    /// `{"detail": "<sentence>"}` with the given status.
    Detail(StatusCode, String),
    /// No `Authorization` header on a protected path.
    NotAuthenticated,
    /// Bad, expired, revoked or wrong-type token.
    TokenInvalid,
    MethodNotAllowed {
        method: String,
        allow: &'static str,
    },
    NotFound,
    Throttled {
        retry_after_secs: u64,
    },
    /// Storage or router backend unavailable: 503 with `Retry-After`.
    Unavailable(String),
    /// A fully formed body with its status (execute-command failures keep their own fields).
    Body(StatusCode, Value, Option<u64>),
}

impl ApiError {
    pub fn bad_request(msg: impl Into<String>) -> Self {
        ApiError::Message(StatusCode::BAD_REQUEST, msg.into())
    }

    pub fn field(field: &str, msg: impl Into<String>) -> Self {
        let mut map = BTreeMap::new();
        map.insert(field.to_string(), vec![msg.into()]);
        ApiError::Fields(map)
    }

    pub fn router_not_found() -> Self {
        ApiError::Message(
            StatusCode::NOT_FOUND,
            "Router not found or access denied".into(),
        )
    }

    pub fn into_response(self) -> Response {
        let (status, body, retry_after, extra) = match self {
            ApiError::Message(status, msg) => (status, json!({ "error": msg }), None, None),
            ApiError::Fields(map) => (StatusCode::BAD_REQUEST, json!(map), None, None),
            ApiError::Detail(status, msg) => (status, json!({ "detail": msg }), None, None),
            ApiError::NotAuthenticated => (
                StatusCode::UNAUTHORIZED,
                json!({ "detail": "Authentication credentials were not provided." }),
                None,
                Some((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"api\""),
                )),
            ),
            ApiError::TokenInvalid => (
                StatusCode::UNAUTHORIZED,
                json!({
                    "detail": "Given token not valid for any token type",
                    "code": "token_not_valid",
                }),
                None,
                Some((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"api\""),
                )),
            ),
            ApiError::MethodNotAllowed { method, allow } => (
                StatusCode::METHOD_NOT_ALLOWED,
                json!({ "detail": format!("Method \"{method}\" not allowed.") }),
                None,
                Some((header::ALLOW, HeaderValue::from_static(allow))),
            ),
            ApiError::NotFound => (
                StatusCode::NOT_FOUND,
                json!({ "detail": "Not found." }),
                None,
                None,
            ),
            ApiError::Throttled { retry_after_secs } => (
                StatusCode::TOO_MANY_REQUESTS,
                json!({
                    "detail": format!(
                        "Request was throttled. Expected available in {retry_after_secs} seconds."
                    )
                }),
                Some(retry_after_secs),
                None,
            ),
            ApiError::Unavailable(what) => (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "detail": what }),
                Some(1),
                None,
            ),
            ApiError::Body(status, body, retry) => (status, body, retry, None),
        };
        let mut response = json_response(status, &body);
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some((name, value)) = extra {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(what) => {
                ApiError::Message(StatusCode::NOT_FOUND, format!("{what} not found"))
            }
            StoreError::Conflict(field) => {
                ApiError::field(field, format!("A record with that {field} already exists."))
            }
            StoreError::Unavailable(_) | StoreError::Corrupt(_) => {
                tracing::error!(cause = %err, "storage failure");
                ApiError::Unavailable("Storage is unavailable; nothing was changed.".into())
            }
        }
    }
}

/// A JSON response with `Content-Type: application/json`.
pub fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(bytes.into());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
