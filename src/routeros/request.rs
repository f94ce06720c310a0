//! `execute-command` requests: a REST-style method plus a menu path, checked and normalised
//! here, then run over a [`super::Connection`] by [`execute`].
//!
//! Normalisation: `system/resource`, `/system/resource`, `/ip address print` and
//! `/system/resource/print` all name the same menu; for GET a trailing `print` is dropped
//! and `getall` means `print`. A record id (`*1`) may only end the path.
//!
//! Values are strings on both sides. `params` and `data` values that are numbers or
//! booleans are sent as their JSON text; anything else that is not a string is refused.
//!
//! Bytes that are not UTF-8: RouterOS stores whatever a client sent, often a Windows code
//! page. In a result, a value that is valid UTF-8 is shown as it is; any other value is
//! shown byte for byte as the characters U+0000..U+00FF (Latin-1), and the record gets an
//! extra attribute `".latin1"` listing, comma-separated and in order, the names of the
//! attributes decoded that way. The mapping is lossless and unambiguous. The same works in
//! the other direction: a `data` (or `params`) object with `".latin1": "comment,name"` sends
//! those values as one byte per character, and a character above U+00FF there is refused.

use serde_json::{Map, Value};

pub use super::execute::{command_for_post, execute, record, CommandFailure};

/// What to do with the menu, named the way the RouterOS REST API names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RestMethod {
    /// print
    Get,
    /// run the command as given
    Post,
    /// add
    Put,
    /// set
    Patch,
    /// remove
    Delete,
}

impl RestMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            RestMethod::Get => "GET",
            RestMethod::Post => "POST",
            RestMethod::Put => "PUT",
            RestMethod::Patch => "PATCH",
            RestMethod::Delete => "DELETE",
        }
    }
}

/// A request that is well-formed and ready to map onto API sentences.
#[derive(Clone, Debug, PartialEq)]
pub struct RestRequest {
    pub method: RestMethod,
    /// Normalised path without leading slash: `ip/address`, `ip/address/*1`, or for POST
    /// the command itself (`interface/monitor-traffic`).
    pub command: String,
    /// GET filters; every value is a JSON string, `.query` a list of strings.
    pub params: Map<String, Value>,
    /// Command arguments; every value is a JSON string, `.query` a list of strings.
    pub data: Map<String, Value>,
}

/// Why a request was refused before reaching a router; the message is for the client.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidRequest {
    pub message: String,
}

fn invalid(message: impl Into<String>) -> InvalidRequest {
    InvalidRequest {
        message: message.into(),
    }
}

impl RestRequest {
    /// Checks and normalises the parts of an `execute-command` body.
    pub fn parse(
        method: Option<&str>,
        command: &str,
        params: Option<&Value>,
        data: Option<&Value>,
    ) -> Result<RestRequest, InvalidRequest> {
        let method = parse_method(method)?;
        let command = normalise_command(method, command)?;
        let params = value_map("params", params)?;
        let data = value_map("data", data)?;
        if method != RestMethod::Get && !params.is_empty() {
            return Err(invalid(format!(
                "params are filters for GET only; send the arguments of {} in data",
                method.as_str()
            )));
        }
        if matches!(method, RestMethod::Get | RestMethod::Delete) && !data.is_empty() {
            return Err(invalid(format!(
                "data is not used with {}; GET filters go in params",
                method.as_str()
            )));
        }
        if method != RestMethod::Post && data.contains_key(".query") {
            return Err(invalid("data.\".query\" is only honoured with POST"));
        }
        Ok(RestRequest {
            method,
            command,
            params,
            data,
        })
    }

    /// The menu path without a trailing record id.
    pub fn menu(&self) -> &str {
        match self.record_id() {
            Some(id) => self.command[..self.command.len() - id.len()].trim_end_matches('/'),
            None => &self.command,
        }
    }

    /// The record id (`*1`) the path ends with, if any.
    pub fn record_id(&self) -> Option<&str> {
        self.command
            .rsplit('/')
            .next()
            .filter(|s| s.starts_with('*'))
    }
}

fn parse_method(method: Option<&str>) -> Result<RestMethod, InvalidRequest> {
    let Some(method) = method else {
        return Ok(RestMethod::Get);
    };
    match method.trim().to_ascii_uppercase().as_str() {
        "GET" => Ok(RestMethod::Get),
        "POST" => Ok(RestMethod::Post),
        "PUT" => Ok(RestMethod::Put),
        "PATCH" => Ok(RestMethod::Patch),
        "DELETE" => Ok(RestMethod::Delete),
        _ => Err(invalid(
            "Invalid HTTP method. Must be GET, POST, PUT, PATCH, or DELETE",
        )),
    }
}

fn is_record_id(segment: &str) -> bool {
    segment.len() > 1
        && segment.starts_with('*')
        && segment[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_menu_word(segment: &str) -> bool {
    segment
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn normalise_command(method: RestMethod, command: &str) -> Result<String, InvalidRequest> {
    if command.chars().any(char::is_control) {
        return Err(invalid("Command must not contain control characters"));
    }
    let mut segments: Vec<&str> = command
        .split(|c: char| c == '/' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .collect();
    if segments.is_empty() {
        return Err(invalid("Command is required"));
    }
    for (i, segment) in segments.iter().enumerate() {
        if is_record_id(segment) {
            if i + 1 != segments.len() {
                return Err(invalid(format!(
                    "The record id {segment} must be the last part of the command"
                )));
            }
        } else if !is_menu_word(segment) {
            return Err(invalid(format!(
                "Command part {segment:?} is not a RouterOS menu or command name (letters, \
                 digits, '-', '_', '.', and record ids like *1)"
            )));
        }
    }
    if let Some(last) = segments.last_mut() {
        if *last == "getall" {
            *last = "print";
        }
    }
    if method == RestMethod::Get && segments.last() == Some(&"print") {
        segments.pop();
        if segments.is_empty() {
            return Err(invalid("Command is required"));
        }
    }
    let has_id = segments.last().is_some_and(|s| is_record_id(s));
    if has_id && segments.len() == 1 {
        return Err(invalid(
            "A record id needs a menu in front of it, like ip/address/*1",
        ));
    }
    match method {
        RestMethod::Patch | RestMethod::Delete if !has_id => Err(invalid(format!(
            "{} needs a record id at the end of the command, like ip/address/*1",
            method.as_str()
        ))),
        RestMethod::Put | RestMethod::Post if has_id => Err(invalid(format!(
            "{} does not take a record id in the command; pass .id in data",
            method.as_str()
        ))),
        _ => Ok(segments.join("/")),
    }
}

/// Turns `params`/`data` into a map of string values (and `.query` as a list of strings).
fn value_map(field: &str, value: Option<&Value>) -> Result<Map<String, Value>, InvalidRequest> {
    let object = match value {
        None | Some(Value::Null) => return Ok(Map::new()),
        Some(Value::Object(object)) => object,
        Some(_) => return Err(invalid(format!("{field} must be a JSON object"))),
    };
    let mut out = Map::new();
    for (key, value) in object {
        if key.is_empty() || key.contains('=') || key.chars().any(|c| c.is_control() || c == ' ') {
            return Err(invalid(format!(
                "{field} has the key {key:?}; names may not be empty or contain '=', spaces \
                 or control characters"
            )));
        }
        let converted = match (key.as_str(), value) {
            (".query", Value::Array(words)) => Value::Array(query_words(field, words)?),
            (".query", _) => {
                return Err(invalid(format!(
                    "{field}.\".query\" must be a list of strings"
                )))
            }
            (".proplist", Value::Array(names)) => Value::String(
                names
                    .iter()
                    .map(|n| n.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| invalid(format!("{field}.\".proplist\" must list strings")))?
                    .join(","),
            ),
            (_, Value::String(s)) => Value::String(s.clone()),
            (_, Value::Number(n)) => Value::String(n.to_string()),
            (_, Value::Bool(b)) => Value::String(b.to_string()),
            _ => {
                return Err(invalid(format!(
                    "{field}.{key} must be a string, number or boolean"
                )))
            }
        };
        out.insert(key.clone(), converted);
    }
    check_latin1(field, &out)?;
    Ok(out)
}

fn query_words(field: &str, words: &[Value]) -> Result<Vec<Value>, InvalidRequest> {
    words
        .iter()
        .map(|w| match w.as_str() {
            Some(s) if s.starts_with('?') && !s.chars().any(char::is_control) => {
                Ok(Value::String(s.to_owned()))
            }
            _ => Err(invalid(format!(
                "{field}.\".query\" words must be strings starting with '?', like \"?type=ether\""
            ))),
        })
        .collect()
}

/// The names `".latin1"` lists in `map`, in order.
pub(crate) fn latin1_names(map: &Map<String, Value>) -> Vec<&str> {
    match map.get(".latin1").and_then(Value::as_str) {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .collect(),
        None => Vec::new(),
    }
}

fn check_latin1(field: &str, map: &Map<String, Value>) -> Result<(), InvalidRequest> {
    if map.get(".latin1").is_some_and(|v| !v.is_string()) {
        return Err(invalid(format!(
            "{field}.\".latin1\" must be a comma-separated string"
        )));
    }
    for name in latin1_names(map) {
        let Some(Value::String(value)) = map.get(name).filter(|_| name != ".latin1") else {
            return Err(invalid(format!(
                "{field}.\".latin1\" names {name:?}, which is not a value in {field}"
            )));
        };
        if value.chars().any(|c| c as u32 > 0xFF) {
            return Err(invalid(format!(
                "{field}.{name} is listed in .latin1 but has a character above U+00FF"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
