//! HTTP answers from a router's REST API turned into the results and failures that
//! [`crate::routeros::execute`] gives over the API.
//!
//! RouterOS reports a refused command as
//! `{"error": 400, "message": "Bad Request", "detail": "<the trap message>"}`, without the
//! trap's category. So that both transports agree, the category is restored from the
//! message for the messages RouterOS uses with a fixed category (see [`category_of`]);
//! any other message gets `None`.

use serde_json::{Map, Value};

use super::json;
use super::pool::Answer;
use crate::routeros::error::ClientError;
use crate::routeros::CommandFailure;

/// A complete HTTP answer, not yet judged.
#[derive(Debug)]
pub(super) struct Reply(pub(super) Answer);

/// Trap messages (by how they start) and the category RouterOS gives them over the API.
const CATEGORIES: &[(&str, u32)] = &[
    ("no such command", 0),
    ("no such item", 0),
    ("missing value(s) of argument(s)", 1),
    ("invalid value for argument", 1),
    ("input does not match any value of", 1),
    ("unknown parameter", 1),
    ("expected end of command", 1),
    ("ambiguous value of", 1),
    ("value of", 1),
    ("interrupted", 2),
];

/// The API trap category of a REST error `detail`, where RouterOS fixes it.
pub(super) fn category_of(message: &str) -> Option<u32> {
    CATEGORIES
        .iter()
        .find(|(start, _)| message.starts_with(start))
        .map(|(_, category)| *category)
}

/// A transport failure: the router was not reached, or the connection broke.
pub(super) fn failure(err: ClientError) -> CommandFailure {
    CommandFailure::Unreachable {
        message: err.to_string(),
    }
}

fn not_found(id: &str) -> CommandFailure {
    CommandFailure::NotFound {
        message: format!("no such item ({id})"),
    }
}

/// The JSON of a 2xx answer (`null` for an empty body); the failure otherwise. `id` is
/// the record the request named, if any: a 404 or `no such item` is then
/// [`CommandFailure::NotFound`], as over the API.
pub(super) fn success(reply: Reply, id: Option<&str>) -> Result<Value, CommandFailure> {
    let Answer { status, body } = reply.0;
    if status.is_success() {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        return json::parse(&body)
            .map(json::RawJson::into_value)
            .map_err(|e| CommandFailure::Unreachable {
                message: format!("router answered HTTP {status} with a body that is not JSON: {e}"),
            });
    }
    if status.as_u16() == 401 || status.as_u16() == 403 {
        let refused = ClientError::LoginRejected {
            message: format!("HTTP {status}"),
        };
        return Err(failure(refused));
    }
    let detail = json::parse(&body)
        .ok()
        .map(json::RawJson::into_value)
        .and_then(|v| {
            let text = |key| v.get(key).and_then(Value::as_str).map(str::to_owned);
            text("detail").or_else(|| text("message"))
        });
    match (status.as_u16(), id, detail) {
        (404, Some(id), _) => Err(not_found(id)),
        (_, Some(id), Some(detail)) if detail.starts_with("no such item") => Err(not_found(id)),
        (400..=499, _, Some(message)) => Err(CommandFailure::Trap {
            category: category_of(&message),
            message,
        }),
        (_, _, Some(message)) => Err(CommandFailure::Trap {
            message: format!("HTTP {status}: {message}"),
            category: None,
        }),
        (_, _, None) => Err(CommandFailure::Unreachable {
            message: format!("router answered HTTP {status} without an error body"),
        }),
    }
}

/// Keeps only the attributes in the comma-separated `list` (what the API path's print
/// with `.proplist` returns), and `".latin1"` for those of them it named.
pub(super) fn project(record: Value, list: &str) -> Value {
    let Value::Object(fields) = record else {
        return record;
    };
    let wanted: Vec<&str> = list.split(',').map(str::trim).collect();
    let latin1: Vec<String> = fields
        .get(".latin1")
        .and_then(Value::as_str)
        .map(|l| {
            l.split(',')
                .filter(|n| wanted.contains(n))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let mut out: Map<String, Value> = fields
        .into_iter()
        .filter(|(name, _)| wanted.contains(&name.as_str()))
        .collect();
    if !latin1.is_empty() {
        out.insert(".latin1".into(), Value::String(latin1.join(",")));
    }
    Value::Object(out)
}

/// The rows of a `print` run by POST, shaped the way a GET is: the record `id` (or
/// NotFound), one object for a one-item menu (a single row with no `.id`), else the list.
/// `hide_id` drops the `.id` that was only asked for to tell these apart.
pub(super) fn record_of_print(
    rows: Value,
    id: Option<&str>,
    hide_id: bool,
) -> Result<Value, CommandFailure> {
    let mut rows = match rows {
        Value::Array(rows) => rows,
        Value::Null => Vec::new(),
        other => vec![other],
    };
    let one_item = rows.len() == 1 && rows[0].get(".id").is_none();
    if hide_id {
        for row in &mut rows {
            if let Value::Object(fields) = row {
                fields.remove(".id");
            }
        }
    }
    match id {
        Some(id) => rows.into_iter().next().ok_or_else(|| not_found(id)),
        None if one_item => Ok(rows.remove(0)),
        None => Ok(Value::Array(rows)),
    }
}
