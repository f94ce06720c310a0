//! One REST request as the API commands RouterOS would run for it, and their replies as
//! the JSON RouterOS answers with.
//!
//! GET prints (a one-item menu gives an object, `menu/*1` one record or 404), PUT adds and
//! answers 201 with the new record, PATCH sets and answers the record, DELETE removes
//! (204, or 404 when the record is absent), POST runs the command with the body as its
//! arguments (`.proplist`, `.query`) and answers its rows, its `!done` data, or `[]`.
//! A trap becomes `{"error":400,"message":"Bad Request","detail":"<message>"}`. Values are
//! written as their bytes (see [`crate::routeros::rest::json`]).

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, StatusCode};
use percent_encoding::percent_decode_str;
use tokio::sync::{mpsc, oneshot};

use super::REQUEST_LIMIT;
use crate::routeros::codec::Sentence;
use crate::routeros::rest::json::{self, RawJson};
use crate::sim::commands::{self, Outcome};
use crate::sim::connection::Replier;
use crate::sim::request::{self as api, Request};
use crate::sim::router::SimRouter;
use crate::sim::streams;

type Fields = Vec<(Bytes, Bytes)>;

/// What the API commands answered.
#[derive(Default)]
struct Replies {
    rows: Vec<Fields>,
    done: Fields,
    /// The trap's message, when the command failed.
    trap: Option<Bytes>,
}

pub(super) fn not_found() -> Vec<u8> {
    br#"{"error":404,"message":"Not Found"}"#.to_vec()
}

/// RouterOS's error object.
pub(super) fn error_body(code: u16, message: &str, detail: &[u8]) -> Vec<u8> {
    let mut out = format!("{{\"error\":{code},\"message\":\"{message}\",\"detail\":").into_bytes();
    json::write_text(&mut out, detail);
    out.push(b'}');
    out
}

fn bad_request(detail: &[u8]) -> (StatusCode, Vec<u8>) {
    (
        StatusCode::BAD_REQUEST,
        error_body(400, "Bad Request", detail),
    )
}

/// Answers one request for `menu` (the path after `/rest/`).
pub(super) async fn answer(
    router: &Arc<SimRouter>,
    method: &Method,
    menu: &str,
    query: Option<&str>,
    body: &[u8],
) -> (StatusCode, Vec<u8>) {
    let path = percent_decode_str(menu).decode_utf8_lossy().into_owned();
    let mut segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let id = match segments.last() {
        Some(last) if last.starts_with('*') && segments.len() > 1 => segments.pop(),
        _ => None,
    };
    let menu = segments.join("/");
    let args = match body.iter().all(u8::is_ascii_whitespace) {
        true => Ok(Arguments::default()),
        false => Arguments::parse(body),
    };
    let args = match args {
        Ok(args) => args,
        Err(detail) => return bad_request(detail.as_bytes()),
    };
    match (method, id) {
        (&Method::GET, id) => get(router, &menu, id, query.unwrap_or_default()).await,
        (&Method::PUT, None) => put(router, &menu, args).await,
        (&Method::PATCH, Some(id)) => patch(router, &menu, id, args).await,
        (&Method::DELETE, Some(id)) => delete(router, &menu, id).await,
        (&Method::POST, None) => post(router, &menu, args).await,
        (&Method::PUT | &Method::POST, Some(_)) | (&Method::PATCH | &Method::DELETE, None) => {
            bad_request(b"no such command or directory")
        }
        _ => (
            StatusCode::METHOD_NOT_ALLOWED,
            error_body(405, "Method Not Allowed", method.as_str().as_bytes()),
        ),
    }
}

/// A body's arguments, `.proplist` and `.query` words (without their `?`).
#[derive(Default)]
struct Arguments {
    attrs: Fields,
    proplist: Option<Bytes>,
    queries: Vec<Bytes>,
}

impl Arguments {
    fn parse(body: &[u8]) -> Result<Arguments, String> {
        let RawJson::Object(fields) = json::parse(body).map_err(|e| format!("JSON: {e}"))? else {
            return Err("the body must be a JSON object".into());
        };
        let mut args = Arguments::default();
        for (name, value) in fields {
            match (name.as_slice(), value) {
                (b".query", RawJson::List(words)) => {
                    for word in words {
                        let word = word.as_argument().ok_or("query words are strings")?;
                        let word = word.strip_prefix(b"?").unwrap_or(&word).to_vec();
                        args.queries.push(word.into());
                    }
                }
                (b".proplist", RawJson::List(names)) => {
                    let names: Option<Vec<Vec<u8>>> =
                        names.iter().map(RawJson::as_argument).collect();
                    let names = names.ok_or(".proplist lists strings")?;
                    args.proplist = Some(names.join(&b","[..]).into());
                }
                (b".proplist", value) => {
                    args.proplist = value.as_argument().map(Bytes::from);
                }
                (_, value) => {
                    let value = value.as_argument().ok_or_else(|| {
                        format!("{} must be a string", String::from_utf8_lossy(&name))
                    })?;
                    args.attrs.push((name.into(), value.into()));
                }
            }
        }
        Ok(args)
    }
}

/// Runs one API command to its end (streams are collected until `!done`, or cancelled
/// at the router's REST time limit).
async fn run(router: &Arc<SimRouter>, req: Request) -> Replies {
    let sentences = match commands::execute(router, &req) {
        Outcome::Reply(sentences) => sentences,
        Outcome::Stream(stream) => collect(router, stream).await,
    };
    let mut replies = Replies::default();
    for sentence in sentences {
        let mut words = sentence.words.into_iter();
        let kind = words.next().unwrap_or_default();
        let fields: Fields = words
            .filter_map(|w| {
                w.strip_prefix(b"=")
                    .map(|_| api::split_attribute(w.slice(1..)))
            })
            .collect();
        match kind.as_ref() {
            b"!re" => replies.rows.push(fields),
            b"!done" => replies.done = fields,
            b"!trap" => {
                let message = fields.into_iter().find(|(n, _)| n.as_ref() == b"message");
                replies.trap = Some(message.map(|(_, m)| m).unwrap_or_default());
            }
            _ => {}
        }
    }
    replies
}

async fn collect(router: &Arc<SimRouter>, stream: streams::Stream) -> Vec<Sentence> {
    let (tx, mut rx) = mpsc::channel(16);
    let (cancel, cancelled) = oneshot::channel();
    let out = Replier::new(tx, router.clone(), None, false);
    tokio::spawn(streams::run(stream, out, cancelled));
    let limit = tokio::time::sleep(REQUEST_LIMIT);
    tokio::pin!(limit);
    let mut cancel = Some(cancel);
    let mut sentences = Vec::new();
    loop {
        let batch = tokio::select! {
            batch = rx.recv() => batch,
            _ = &mut limit, if cancel.is_some() => {
                if let Some(cancel) = cancel.take() {
                    let _ = cancel.send(());
                }
                continue;
            }
        };
        let Some(batch) = batch else { break };
        let finished = batch
            .sentences
            .iter()
            .any(|s| s.words.first().is_some_and(|w| w.as_ref() == b"!done"));
        sentences.extend(batch.sentences);
        if finished {
            break;
        }
    }
    sentences
}

fn command(path: String) -> Request {
    Request {
        command: Bytes::from(path),
        ..Request::default()
    }
}

/// Prints `menu` (or its record `id`), asking for `.id` when a proplist leaves it out,
/// since a one-item menu is told apart by having none; the flag says to hide it again.
fn print(
    menu: &str,
    id: Option<&str>,
    proplist: Option<Bytes>,
    filters: Fields,
) -> (Request, bool) {
    let mut req = command(format!("/{menu}/print"));
    let mut hide_id = false;
    if let Some(list) = proplist {
        let mut list = list.to_vec();
        if !list.split(|&b| b == b',').any(|n| n == b".id") {
            list.extend_from_slice(b",.id");
            hide_id = true;
        }
        req.attrs
            .push((Bytes::from_static(b".proplist"), list.into()));
    }
    for (name, value) in filters {
        req.queries
            .push([&name[..], b"=", &value[..]].concat().into());
    }
    if let Some(id) = id {
        req.queries.push(format!(".id={id}").into());
    }
    (req, hide_id)
}

fn record(fields: &Fields, hide_id: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let shown = fields
        .iter()
        .filter(|(n, _)| !(hide_id && n.as_ref() == b".id"))
        .map(|(n, v)| (n.as_ref(), v.as_ref()));
    json::write_object(&mut out, shown);
    out
}

fn list(rows: &[Fields], hide_id: bool) -> Vec<u8> {
    let mut out = vec![b'['];
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&record(row, hide_id));
    }
    out.push(b']');
    out
}

async fn get(
    router: &Arc<SimRouter>,
    menu: &str,
    id: Option<&str>,
    query: &str,
) -> (StatusCode, Vec<u8>) {
    let mut proplist = None;
    let mut filters = Fields::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name: Vec<u8> = percent_encoding::percent_decode_str(name).collect();
        let value: Bytes = percent_encoding::percent_decode_str(value)
            .collect::<Vec<u8>>()
            .into();
        match name.as_slice() {
            b".proplist" => proplist = Some(value),
            _ => filters.push((name.into(), value)),
        }
    }
    let (req, hide_id) = print(menu, id, proplist, filters);
    let replies = run(router, req).await;
    if let Some(message) = replies.trap {
        return bad_request(&message);
    }
    match (id, replies.rows.as_slice()) {
        (Some(_), [first, ..]) => (StatusCode::OK, record(first, hide_id)),
        (Some(_), []) => (StatusCode::NOT_FOUND, not_found()),
        (None, [only]) if !only.iter().any(|(n, _)| n.as_ref() == b".id") => {
            (StatusCode::OK, record(only, hide_id))
        }
        (None, rows) => (StatusCode::OK, list(rows, hide_id)),
    }
}

/// The record `id` after it was added or set, with status `ok`.
async fn print_record(
    router: &Arc<SimRouter>,
    menu: &str,
    id: &str,
    ok: StatusCode,
) -> (StatusCode, Vec<u8>) {
    let (req, _) = print(menu, Some(id), None, Fields::new());
    let replies = run(router, req).await;
    match (replies.trap, replies.rows.first()) {
        (Some(message), _) => bad_request(&message),
        (None, Some(row)) => (ok, record(row, false)),
        (None, None) => (StatusCode::NOT_FOUND, not_found()),
    }
}

/// A trap on a record's own command: `no such item` is a 404, anything else a 400.
fn refused(message: &[u8]) -> (StatusCode, Vec<u8>) {
    match message.starts_with(b"no such item") {
        true => (StatusCode::NOT_FOUND, not_found()),
        false => bad_request(message),
    }
}

async fn put(router: &Arc<SimRouter>, menu: &str, args: Arguments) -> (StatusCode, Vec<u8>) {
    let mut req = command(format!("/{menu}/add"));
    req.attrs = args.attrs;
    let replies = run(router, req).await;
    if let Some(message) = replies.trap {
        return bad_request(&message);
    }
    match replies.done.iter().find(|(n, _)| n.as_ref() == b"ret") {
        Some((_, id)) => {
            let id = String::from_utf8_lossy(id).into_owned();
            print_record(router, menu, &id, StatusCode::CREATED).await
        }
        None => (StatusCode::CREATED, record(&replies.done, false)),
    }
}

async fn patch(
    router: &Arc<SimRouter>,
    menu: &str,
    id: &str,
    args: Arguments,
) -> (StatusCode, Vec<u8>) {
    let mut req = command(format!("/{menu}/set"));
    req.attrs
        .push((Bytes::from_static(b".id"), Bytes::from(id.to_owned())));
    req.attrs.extend(args.attrs);
    if let Some(message) = run(router, req).await.trap {
        return refused(&message);
    }
    print_record(router, menu, id, StatusCode::OK).await
}

async fn delete(router: &Arc<SimRouter>, menu: &str, id: &str) -> (StatusCode, Vec<u8>) {
    let mut req = command(format!("/{menu}/remove"));
    req.attrs
        .push((Bytes::from_static(b".id"), Bytes::from(id.to_owned())));
    match run(router, req).await.trap {
        Some(message) => refused(&message),
        None => (StatusCode::NO_CONTENT, Vec::new()),
    }
}

async fn post(router: &Arc<SimRouter>, path: &str, args: Arguments) -> (StatusCode, Vec<u8>) {
    let mut req = command(format!("/{path}"));
    req.attrs = args.attrs;
    if let Some(list) = args.proplist {
        req.attrs.push((Bytes::from_static(b".proplist"), list));
    }
    req.queries = args.queries;
    let replies = run(router, req).await;
    if let Some(message) = replies.trap {
        return bad_request(&message);
    }
    if !replies.rows.is_empty() {
        (StatusCode::OK, list(&replies.rows, false))
    } else if !replies.done.is_empty() {
        (StatusCode::OK, record(&replies.done, false))
    } else {
        (StatusCode::OK, b"[]".to_vec())
    }
}
