//! Commands on one router: `execute-command`, `device-info`, `test-connection`, and
//! `stream`, which relays a long-running command's rows as Server-Sent Events.

use std::time::{Duration, Instant};

use futures::StreamExt;
use http::StatusCode;
use serde_json::{json, Value};
use warp::reply::Response;
use warp::Reply;

use super::error::json_response;
use super::request::ApiRequest;
use super::{ApiError, AppState};
use crate::cluster::StreamItem;
use crate::fleet::ExecError;
use crate::routeros::request::{CommandFailure, RestRequest};
use crate::store::{Router, RouterId};

pub async fn test_connection(state: &AppState, router: &Router) -> Result<Response, ApiError> {
    let outcome = state.dispatch.test_connection(router).await;
    let mut body = json!({
        "router_id": router.id,
        "is_online": outcome.is_ok(),
        "message": "Connection test completed",
    });
    if let Err(e) = outcome {
        body["error"] = Value::String(e);
    }
    Ok(json_response(StatusCode::OK, &body))
}

pub async fn device_info(state: &AppState, router: &Router) -> Result<Response, ApiError> {
    let timeout = state.settings.fleet.command_timeout();
    let read = |menu: &str| {
        RestRequest::parse(Some("GET"), menu, None, None).expect("static menu paths are valid")
    };
    let resource = state
        .dispatch
        .execute(router, read("system/resource"), timeout, None)
        .await;
    let resource = resource.map_err(|e| exec_error(router.id, "system/resource", "GET", e))?;
    let identity = state
        .dispatch
        .execute(router, read("system/identity"), timeout, None)
        .await;
    let identity = identity.map_err(|e| exec_error(router.id, "system/identity", "GET", e))?;
    let field = |v: &Value, k: &str| v.get(k).cloned().unwrap_or(Value::Null);
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "router_id": router.id,
            "device_info": {
                "identity": field(&identity, "name"),
                "cpu_load": field(&resource, "cpu-load"),
                "free_memory": field(&resource, "free-memory"),
                "total_memory": field(&resource, "total-memory"),
                "free_hdd_space": field(&resource, "free-hdd-space"),
                "total_hdd_space": field(&resource, "total-hdd-space"),
                "version": field(&resource, "version"),
                "uptime": field(&resource, "uptime"),
                "board_name": field(&resource, "board-name"),
                "architecture": field(&resource, "architecture-name"),
            },
            "message": "Device information retrieved successfully",
        }),
    ))
}

pub async fn execute_command(
    state: &AppState,
    router: &Router,
    req: &ApiRequest,
) -> Result<Response, ApiError> {
    let max = state.settings.fleet.max_command_timeout_ms;
    let default = state.settings.fleet.command_timeout();
    let body = CommandBody::read(router.id, req, &["method", "params"], default, max)?;
    let (command, method, timeout) = (body.command.clone(), body.method.clone(), body.timeout);
    let rest = body.parse(body.fields.get("params"))?;
    let key = idempotency_key(req, router, &rest).map_err(|e| body.fail(e))?;
    let started = Instant::now();
    let outcome = state.dispatch.execute(router, rest, timeout, key).await;
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    match outcome {
        Ok(result) => Ok(json_response(
            StatusCode::OK,
            &json!({
                "router_id": router.id,
                "command": command,
                "method": method,
                "result": result,
                "message": "Command executed successfully",
                "elapsed_ms": (elapsed_ms * 1000.0).round() / 1000.0,
            }),
        )),
        Err(e) => Err(exec_error(router.id, &command, &method, e)),
    }
}

/// The request's `Idempotency-Key`, scoped to the router's owner and the router: with the
/// Redis store, a retry carrying the same key gets the first outcome instead of a second
/// run, on whichever node it lands. At most 64 of `A-Z a-z 0-9 . _ : -`.
fn idempotency_key(
    req: &ApiRequest,
    router: &Router,
    rest: &RestRequest,
) -> Result<Option<String>, String> {
    let mut values = req.headers.get_all("idempotency-key").iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err("send one Idempotency-Key header, not several".into());
    }
    let key = value.to_str().unwrap_or("");
    let valid = (1..=64).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if !valid {
        return Err(
            "Idempotency-Key must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_', \
                    ':' or '-'"
                .into(),
        );
    }
    // The request itself is part of the key: reusing a key for a different command runs
    // that command instead of replaying another command's outcome.
    let fingerprint = ring::digest::digest(
        &ring::digest::SHA256,
        json!([rest.method.as_str(), rest.command, rest.params, rest.data])
            .to_string()
            .as_bytes(),
    );
    let fingerprint = hex::encode(&fingerprint.as_ref()[..8]);
    Ok(Some(format!(
        "k{}-{}-{key}-{fingerprint}",
        router.owner, router.id
    )))
}

/// The body shared by `execute-command` and `stream`, read with the contract's failure
/// shape for every way it can be wrong.
struct CommandBody {
    router_id: RouterId,
    command: String,
    method: String,
    timeout: Duration,
    fields: serde_json::Map<String, Value>,
}

impl CommandBody {
    /// Reads `command`, `data`, `timeout_ms` (default `default`, at most `max_ms`) and the
    /// `extra` fields allowed; anything else is refused.
    fn read(
        router_id: RouterId,
        req: &ApiRequest,
        extra: &[&str],
        default: Duration,
        max_ms: u64,
    ) -> Result<CommandBody, ApiError> {
        let fields = req.json_object()?;
        let text = |k: &str| fields.get(k).and_then(Value::as_str).map(str::to_string);
        let method = match fields.get("method") {
            None | Some(Value::Null) => "GET".to_string(),
            Some(Value::String(m)) => m.to_uppercase(),
            Some(_) => "INVALID".to_string(),
        };
        let mut body = CommandBody {
            router_id,
            command: text("command").unwrap_or_default(),
            method: if extra.contains(&"method") {
                method
            } else {
                "POST".into()
            },
            timeout: default,
            fields: serde_json::Map::new(),
        };
        if fields
            .get("command")
            .is_some_and(|c| !c.is_string() && !c.is_null())
        {
            return Err(body.fail("command must be a string".into()));
        }
        if body.command.trim().is_empty() {
            return Err(body.fail("Command is required".into()));
        }
        // The session itself logs in, cancels and quits; a client may not.
        let verb = body.command.trim().trim_start_matches('/');
        if matches!(verb, "login" | "quit" | "cancel") {
            return Err(body.fail(format!(
                "\"{verb}\" is managed by CloudPilot's session and cannot be sent"
            )));
        }
        let known = |k: &str| matches!(k, "command" | "data" | "timeout_ms") || extra.contains(&k);
        if let Some(unknown) = fields.keys().find(|k| !known(k)) {
            return Err(body.fail(format!("Unknown field \"{unknown}\"")));
        }
        match fields.get("timeout_ms") {
            None | Some(Value::Null) => {}
            Some(v) => match v.as_u64() {
                Some(ms) if (1..=max_ms).contains(&ms) => body.timeout = Duration::from_millis(ms),
                _ => {
                    return Err(
                        body.fail(format!("timeout_ms must be an integer from 1 to {max_ms}"))
                    )
                }
            },
        }
        body.fields = fields;
        Ok(body)
    }

    fn parse(&self, params: Option<&Value>) -> Result<RestRequest, ApiError> {
        RestRequest::parse(
            Some(&self.method),
            &self.command,
            params,
            self.fields.get("data"),
        )
        .map_err(|e| self.fail(e.to_string()))
    }

    fn fail(&self, error: String) -> ApiError {
        failure(
            self.router_id,
            &self.command,
            &self.method,
            StatusCode::BAD_REQUEST,
            error,
            None,
            None,
        )
    }
}

/// The contract's failure body: the old service's fields plus `category` for traps.
fn failure(
    router_id: RouterId,
    command: &str,
    method: &str,
    status: StatusCode,
    error: String,
    category: Option<u32>,
    retry_after: Option<u64>,
) -> ApiError {
    let mut body = json!({
        "router_id": router_id,
        "command": command,
        "method": method,
        "error": error,
        "status_code": status.as_u16(),
    });
    if let Some(c) = category {
        body["category"] = json!(c);
    }
    ApiError::Body(status, body, retry_after)
}

/// The contract's failure body for a command that did not succeed.
fn exec_error(router_id: RouterId, command: &str, method: &str, err: ExecError) -> ApiError {
    let (status, error, category, retry_after) = match err {
        ExecError::Backlog => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many commands are already waiting for this router; retry later".to_string(),
            None,
            Some(1),
        ),
        ExecError::Unavailable(message) => {
            (StatusCode::SERVICE_UNAVAILABLE, message, None, Some(1))
        }
        ExecError::NoSession => (
            StatusCode::BAD_GATEWAY,
            format!("Router unreachable: {}", crate::fleet::NO_SESSION),
            None,
            None,
        ),
        // The cluster's own words for a command whose fate is unknown (its node died).
        ExecError::Failed(CommandFailure::Unreachable { message })
            if message.contains("is unknown") =>
        {
            let message = message.trim_start_matches("connection lost: ");
            let mut message = message.to_string();
            if let Some(first) = message.get_mut(0..1) {
                first.make_ascii_uppercase();
            }
            (StatusCode::BAD_GATEWAY, message, None, None)
        }
        ExecError::Failed(CommandFailure::Trap { message, category }) => {
            (StatusCode::BAD_REQUEST, message, category, None)
        }
        ExecError::Failed(CommandFailure::NotFound { message }) => {
            (StatusCode::NOT_FOUND, message, None, None)
        }
        ExecError::Failed(CommandFailure::Timeout) => (
            StatusCode::GATEWAY_TIMEOUT,
            "The router did not answer in time; the command was cancelled".to_string(),
            None,
            None,
        ),
        // A connection lost after the command was written may or may not have applied it;
        // say so, so that a client does not blindly retry a write.
        ExecError::Failed(CommandFailure::Unreachable { message })
            if message.contains("connection lost") && !message.starts_with("cannot connect") =>
        {
            (
                StatusCode::BAD_GATEWAY,
                format!(
                    "Connection to the router was lost mid-command ({message}); \
                     whether the router applied it is unknown"
                ),
                None,
                None,
            )
        }
        ExecError::Failed(CommandFailure::Unreachable { message }) => (
            StatusCode::BAD_GATEWAY,
            format!("Router unreachable: {message}"),
            None,
            None,
        ),
    };
    failure(
        router_id,
        command,
        method,
        status,
        error,
        category,
        retry_after,
    )
}

/// `POST /routers/{id}/stream/`: runs a command that does not finish on its own and relays
/// each `!re` row as one Server-Sent Event (`data:` a JSON object of strings, `.section`
/// kept). The last event says why it ended: `done`, `trap` (`{error, category}`), `timeout`
/// or `error` (the connection failed). When the client goes away or the time is up, the
/// command is cancelled on the router and the session stays up for other commands.
pub async fn stream(
    state: &AppState,
    router: &Router,
    req: &ApiRequest,
) -> Result<Response, ApiError> {
    let max = state.settings.fleet.max_stream_secs.saturating_mul(1000);
    let body = CommandBody::read(router.id, req, &[], Duration::from_millis(max), max)?;
    let (command, lasts) = (body.command.clone(), body.timeout);
    let rest = body.parse(None)?;
    let start_within = state.settings.fleet.command_timeout().min(lasts);
    let mut rows = state
        .dispatch
        .stream(router, &rest, start_within, lasts)
        .await
        .map_err(|e| exec_error(router.id, &command, "POST", e))?;
    tracing::debug!(
        router.id = router.id,
        cmd.menu = rest.menu(),
        "stream started"
    );

    let deadline = tokio::time::Instant::now() + lasts;
    let event = |kind: &str, body: Value| {
        warp::sse::Event::default()
            .event(kind)
            .data(body.to_string())
    };
    let events = async_stream_events(move |tx| async move {
        loop {
            let next = tokio::time::timeout_at(deadline, rows.next()).await;
            let (last, ev) = match next {
                Ok(Some(StreamItem::Row(row))) => {
                    (false, warp::sse::Event::default().data(row.to_string()))
                }
                Ok(None) => (true, event("done", json!({}))),
                Ok(Some(StreamItem::Trap { message, category })) => (
                    true,
                    event("trap", json!({ "error": message, "category": category })),
                ),
                Ok(Some(StreamItem::Error(e))) => (true, event("error", json!({ "error": e }))),
                Err(_) => (
                    true,
                    event(
                        "timeout",
                        json!({ "error": "stream time is up; the command was cancelled" }),
                    ),
                ),
            };
            if tx.send(ev).await.is_err() || last {
                // Dropping `rows` here cancels the command on the router.
                return;
            }
        }
    });
    let sse = warp::sse::keep_alive()
        .interval(Duration::from_secs(15))
        .stream(events);
    Ok(warp::sse::reply(sse).into_response())
}

/// A stream of SSE events fed by a task; the task ends (and drops what it owns) as soon as
/// the client is gone, because sending then fails.
fn async_stream_events<F, Fut>(
    produce: F,
) -> impl futures::Stream<Item = Result<warp::sse::Event, std::convert::Infallible>> + Send + 'static
where
    F: FnOnce(tokio::sync::mpsc::Sender<warp::sse::Event>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(produce(tx));
    tokio_stream_from(rx).map(Ok)
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
