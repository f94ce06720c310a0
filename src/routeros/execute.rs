//! Runs a [`RestRequest`] over a [`Connection`] and shapes the answer the way the RouterOS
//! REST API would: lists of records, one object for a one-item menu or a record id, `null`
//! after DELETE. Every value stays a string; see [`super::request`] for how bytes that are
//! not UTF-8 are shown (`".latin1"`).
//!
//! A missing record is recognised by a print that returns nothing, or by the router's
//! `no such item` trap for set and remove.

use std::time::Duration;

use bytes::Bytes;
use serde_json::{Map, Value};
use tokio::time::Instant;

use super::client::{Connection, Response};
use super::command::Command;
use super::error::ClientError;
use super::request::{latin1_names, RestMethod, RestRequest};
use super::sentence::Attrs;

/// Why an `execute-command` request did not produce a result.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommandFailure {
    #[error("router refused the command: {message}")]
    Trap {
        message: String,
        category: Option<u32>,
    },
    /// GET, PATCH or DELETE of a record id the router does not have.
    #[error("{message}")]
    NotFound { message: String },
    #[error("no complete answer in time; the command was cancelled")]
    Timeout,
    /// The connection failed or could not be made; nothing is known about the command.
    #[error("router unreachable: {message}")]
    Unreachable { message: String },
}

/// Runs `req`, all its API commands within one `timeout`.
pub async fn execute(
    conn: &Connection,
    req: &RestRequest,
    timeout: Duration,
) -> Result<Value, CommandFailure> {
    let run = Runner {
        conn,
        deadline: Instant::now() + timeout,
        id: req.record_id(),
    };
    let menu = req.menu();
    tracing::debug!(cmd.method = req.method.as_str(), cmd.menu = %menu, "execute-command");
    match req.method {
        RestMethod::Get => {
            let (print, hide_id) = print_command(menu, req.record_id(), &req.params);
            let resp = run.call(print).await?;
            match req.record_id() {
                Some(_) => run.single(resp, hide_id),
                None if resp.rows.len() == 1 && resp.rows[0].get(".id").is_none() => {
                    Ok(record(&resp.rows[0], false))
                }
                None => Ok(Value::Array(
                    resp.rows.iter().map(|r| record(r, hide_id)).collect(),
                )),
            }
        }
        RestMethod::Post => {
            let cmd = command_for_post(req);
            let resp = run.call(cmd).await?;
            Ok(if !resp.rows.is_empty() {
                Value::Array(resp.rows.iter().map(|r| record(r, false)).collect())
            } else if !resp.done.is_empty() {
                record(&resp.done, false)
            } else {
                Value::Array(Vec::new())
            })
        }
        RestMethod::Put => {
            let add = with_arguments(Command::new(format!("/{menu}/add")), &req.data, false);
            let resp = run.call(add).await?;
            let Some(new_id) = resp.done.get_str("ret") else {
                return Ok(record(&resp.done, false));
            };
            run.print_one(menu, &new_id, &req.data).await
        }
        RestMethod::Patch => {
            let id = req.record_id().unwrap_or_default();
            let set = Command::new(format!("/{menu}/set")).attr(".id", id);
            run.call(with_arguments(set, &req.data, false)).await?;
            run.print_one(menu, id, &req.data).await
        }
        RestMethod::Delete => {
            let id = req.record_id().unwrap_or_default();
            run.call(Command::new(format!("/{menu}/remove")).attr(".id", id))
                .await?;
            Ok(Value::Null)
        }
    }
}

/// Carries what every step of one request shares: the connection, one deadline, the id.
struct Runner<'a> {
    conn: &'a Connection,
    deadline: Instant,
    id: Option<&'a str>,
}

impl Runner<'_> {
    async fn call(&self, cmd: Command) -> Result<Response, CommandFailure> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(CommandFailure::Timeout);
        }
        self.conn
            .call_timeout(cmd, left)
            .await
            .map_err(|e| self.failure(e))
    }

    fn failure(&self, err: ClientError) -> CommandFailure {
        match err {
            ClientError::Trap { message, .. }
                if self.id.is_some() && message.starts_with("no such item") =>
            {
                CommandFailure::NotFound {
                    message: self.not_found(self.id.unwrap_or_default()),
                }
            }
            ClientError::Trap { message, category } => CommandFailure::Trap { message, category },
            ClientError::Timeout => CommandFailure::Timeout,
            other => CommandFailure::Unreachable {
                message: other.to_string(),
            },
        }
    }

    fn not_found(&self, id: &str) -> String {
        format!("no such item ({id})")
    }

    /// Prints the record `id` after add or set, honouring `.proplist` from `data`.
    async fn print_one(
        &self,
        menu: &str,
        id: &str,
        data: &Map<String, Value>,
    ) -> Result<Value, CommandFailure> {
        let mut filter = Map::new();
        if let Some(p) = data.get(".proplist") {
            filter.insert(".proplist".into(), p.clone());
        }
        let (print, hide_id) = print_command(menu, Some(id), &filter);
        let resp = self.call(print).await?;
        match resp.rows.first() {
            Some(row) => Ok(record(row, hide_id)),
            None => Err(CommandFailure::NotFound {
                message: self.not_found(id),
            }),
        }
    }

    fn single(&self, resp: Response, hide_id: bool) -> Result<Value, CommandFailure> {
        match resp.rows.first() {
            Some(row) => Ok(record(row, hide_id)),
            None => Err(CommandFailure::NotFound {
                message: self.not_found(self.id.unwrap_or_default()),
            }),
        }
    }
}

/// `/menu/print` with params as equality queries. When `.proplist` leaves out `.id`, it is
/// asked for anyway (a one-item menu is told apart by having no `.id`) and hidden again:
/// the returned flag says so.
fn print_command(menu: &str, id: Option<&str>, params: &Map<String, Value>) -> (Command, bool) {
    let mut cmd = Command::new(format!("/{menu}/print"));
    let mut hide_id = false;
    if let Some(list) = params.get(".proplist").and_then(Value::as_str) {
        let mut names: Vec<&str> = list
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .collect();
        if !names.contains(&".id") {
            names.push(".id");
            hide_id = true;
        }
        cmd = cmd.api_attr(".proplist", names.join(","));
    }
    let latin1 = latin1_names(params);
    for (name, value) in params {
        if name == ".proplist" || name == ".query" || name == ".latin1" {
            continue;
        }
        let value = wire_value(value, latin1.contains(&name.as_str()));
        cmd = cmd.word([format!("?{name}=").as_bytes(), &value[..]].concat());
    }
    if let Some(id) = id {
        cmd = cmd.query(format!("?.id={id}"));
    }
    (query_words(cmd, params), hide_id)
}

/// Adds `data` as `=name=value` words, plus `.proplist` (and `.query` when `with_query`).
fn with_arguments(mut cmd: Command, data: &Map<String, Value>, with_query: bool) -> Command {
    let latin1 = latin1_names(data);
    for (name, value) in data {
        match name.as_str() {
            ".latin1" | ".query" => {}
            ".proplist" if with_query => {
                cmd = cmd.api_attr(".proplist", value.as_str().unwrap_or_default())
            }
            ".proplist" => {}
            _ => cmd = cmd.attr_bytes(name, wire_value(value, latin1.contains(&name.as_str()))),
        }
    }
    if with_query {
        cmd = query_words(cmd, data);
    }
    cmd
}

fn query_words(mut cmd: Command, map: &Map<String, Value>) -> Command {
    for word in map
        .get(".query")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        cmd = cmd.query(word.as_str().unwrap_or_default());
    }
    cmd
}

/// The bytes to send for a JSON string: UTF-8, or one byte per char when listed in .latin1.
fn wire_value(value: &Value, latin1: bool) -> Bytes {
    let text = value.as_str().unwrap_or_default();
    if latin1 {
        text.chars()
            .map(|c| c as u32 as u8)
            .collect::<Vec<u8>>()
            .into()
    } else {
        Bytes::copy_from_slice(text.as_bytes())
    }
}

/// The command a POST request runs: `/menu/command` with `data` as its arguments, with
/// `.proplist` and `.query` honoured. Used for streaming commands, whose rows are read
/// one by one instead of collected.
pub fn command_for_post(req: &RestRequest) -> Command {
    with_arguments(Command::new(format!("/{}", req.menu())), &req.data, true)
}

/// One record as a JSON object of strings, with `".latin1"` when a value was not UTF-8.
pub fn record(attrs: &Attrs, hide_id: bool) -> Value {
    let mut object = Map::new();
    let mut latin1 = Vec::new();
    for (name, value) in attrs.iter() {
        let name = String::from_utf8_lossy(name).into_owned();
        if hide_id && name == ".id" {
            continue;
        }
        let shown = match std::str::from_utf8(value) {
            Ok(text) => text.to_owned(),
            Err(_) => {
                latin1.push(name.clone());
                value.iter().map(|&b| b as char).collect()
            }
        };
        object.insert(name, Value::String(shown));
    }
    if !latin1.is_empty() {
        object.insert(".latin1".into(), Value::String(latin1.join(",")));
    }
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn record_keeps_strings_and_marks_latin1_values() {
        let mut attrs = Attrs::new();
        attrs.push(".id", "*1");
        attrs.push("mtu", "0000");
        attrs.push("disabled", "yes");
        attrs.push("comment", &b"caf\xe9"[..]);
        attrs.push("name", &b"\xff\x00"[..]);
        assert_eq!(
            record(&attrs, false),
            json!({".id": "*1", "mtu": "0000", "disabled": "yes", "comment": "caf\u{e9}",
                   "name": "\u{ff}\u{0}", ".latin1": "comment,name"})
        );
        assert_eq!(record(&attrs, true).get(".id"), None);
    }

    #[test]
    fn latin1_values_encode_back_to_the_same_bytes() {
        let shown = record(
            &{
                let mut a = Attrs::new();
                a.push("comment", &b"\xe9t\xe9 \x80\xff"[..]);
                a
            },
            false,
        );
        let back = wire_value(&shown["comment"], true);
        assert_eq!(&back[..], b"\xe9t\xe9 \x80\xff");
        assert_eq!(&wire_value(&json!("été"), false)[..], "été".as_bytes());
    }

    #[test]
    fn print_adds_id_to_a_proplist_without_it_and_turns_params_into_queries() {
        let params = json!({".proplist": "address", "interface": "ether1"});
        let (cmd, hide) = print_command("ip/address", None, params.as_object().unwrap());
        assert!(hide);
        let words: Vec<&[u8]> = cmd.words().iter().map(|w| w.as_ref()).collect();
        assert_eq!(
            words,
            [
                &b"/ip/address/print"[..],
                b".proplist=address,.id",
                b"?interface=ether1"
            ]
        );
        let (cmd, hide) = print_command("ip/address", Some("*1"), &Map::new());
        assert!(!hide);
        assert_eq!(cmd.words()[1].as_ref(), b"?.id=*1");
    }
}
