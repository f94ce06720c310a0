//! The menu tree: which command paths exist and what each one does to the model.
//!
//! Quick commands produce their whole reply here; long-running ones are handed to
//! [`super::streams`] as a [`Stream`].

use bytes::Bytes;

use super::model::Record;
use super::query::{self, Filter};
use super::request::{self, Request, Trap};
use super::router::SimRouter;
use super::streams::Stream;
use super::system;
use crate::routeros::codec::Sentence;

/// What a command leads to.
pub(crate) enum Outcome {
    Reply(Vec<Sentence>),
    Stream(Stream),
}

/// Every command the simulator knows, used to name the first unknown word of a path.
const KNOWN: &[&str] = &[
    "system/resource/print",
    "system/resource/getall",
    "system/identity/print",
    "system/identity/getall",
    "system/identity/set",
    "system/routerboard/print",
    "system/routerboard/getall",
    "interface/print",
    "interface/getall",
    "interface/monitor-traffic",
    "ip/address/print",
    "ip/address/getall",
    "ip/address/add",
    "ip/address/set",
    "ip/address/remove",
    "ip/address/listen",
    "ping",
];

/// Default pace of `ping` and `monitor-traffic`, as on RouterOS.
const DEFAULT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

pub(crate) fn execute(router: &SimRouter, req: &Request) -> Outcome {
    let tag = req.tag.as_ref();
    let Some(path) = req.path() else {
        let word = String::from_utf8_lossy(&req.command).into_owned();
        return Outcome::Reply(no_such_command(&word, tag));
    };
    let print = |verb: &str| verb == "print" || verb == "getall";
    let reply = match path.as_slice() {
        ["system", "resource", v] if print(v) => rows(router, req, vec![system::resource(router)]),
        ["system", "identity", v] if print(v) => {
            let name = router.model().identity().clone();
            rows(router, req, vec![system::identity(name)])
        }
        ["system", "identity", "set"] => match req.attr(b"name") {
            Some(name) => {
                router.model().set_identity(name.clone());
                vec![request::done(tag, None)]
            }
            None => Trap::bad_argument("missing value(s) of argument(s) name").into_reply(tag),
        },
        ["system", "routerboard", v] if print(v) => {
            rows(router, req, vec![system::routerboard(router)])
        }
        ["interface", v] if print(v) => rows(router, req, system::interfaces(router)),
        ["interface", "monitor-traffic"] => return monitor_traffic(req),
        ["ip", "address", v] if print(v) => return print_addresses(router, req),
        ["ip", "address", "add"] => match router.model().add_address(&req.attrs) {
            Ok(id) => vec![request::done(tag, Some(&id))],
            Err(trap) => trap.into_reply(tag),
        },
        ["ip", "address", "set"] => {
            let mut model = router.model();
            let result = selected_ids(req).and_then(|ids| {
                ids.iter()
                    .try_for_each(|id| model.set_address(id, &req.attrs))
            });
            finish(result, tag)
        }
        ["ip", "address", "remove"] => {
            let result = selected_ids(req).and_then(|ids| router.model().remove_addresses(&ids));
            finish(result, tag)
        }
        ["ip", "address", "listen"] => {
            let changes = router.model().subscribe();
            let filter = Filter::default();
            let initial = Vec::new();
            return Outcome::Stream(Stream::Changes {
                initial,
                changes,
                filter,
                proplist: None,
            });
        }
        ["ping"] => return ping(req),
        _ => no_such_command(unknown_word(&path), tag),
    };
    Outcome::Reply(reply)
}

/// `!re` per matching row (with `.proplist` honoured), `!empty` when none match on
/// versions that send it, then `!done`; `=count-only=` returns the count instead.
fn rows(router: &SimRouter, req: &Request, records: Vec<Record>) -> Vec<Sentence> {
    let tag = req.tag.as_ref();
    let filter = Filter::parse(&req.queries);
    let proplist = req.attr(b".proplist");
    let matched: Vec<&Record> = records.iter().filter(|r| filter.matches(r)).collect();
    if req.flag(b"count-only") {
        return vec![request::done(
            tag,
            Some(matched.len().to_string().as_bytes()),
        )];
    }
    let mut reply: Vec<Sentence> = matched
        .iter()
        .map(|r| request::row(tag, query::project(r, proplist)))
        .collect();
    if reply.is_empty() && router.sends_empty() {
        reply.push(request::reply_word(b"!empty", tag));
    }
    reply.push(request::done(tag, None));
    reply
}

/// A plain print, or with `=follow=` the current rows and then every change, or with
/// `=follow-only=` just the changes.
fn print_addresses(router: &SimRouter, req: &Request) -> Outcome {
    let follow = req.flag(b"follow");
    let follow_only = req.flag(b"follow-only");
    let mut model = router.model();
    let snapshot = model.addresses().to_vec();
    if !follow && !follow_only {
        drop(model);
        return Outcome::Reply(rows(router, req, snapshot));
    }
    let changes = model.subscribe();
    drop(model);
    let filter = Filter::parse(&req.queries);
    let proplist = req.attr(b".proplist").cloned();
    let initial = match follow_only {
        true => Vec::new(),
        false => snapshot
            .iter()
            .filter(|r| filter.matches(r))
            .map(|r| request::row(req.tag.as_ref(), query::project(r, proplist.as_ref())))
            .collect(),
    };
    Outcome::Stream(Stream::Changes {
        initial,
        changes,
        filter,
        proplist,
    })
}

fn monitor_traffic(req: &Request) -> Outcome {
    let tag = req.tag.as_ref();
    let interface = match req.attr(b"interface") {
        Some(name) if system::has_interface(name) => name.clone(),
        Some(_) => {
            let trap = Trap::bad_argument("input does not match any value of interface");
            return Outcome::Reply(trap.into_reply(tag));
        }
        None => {
            let trap = Trap::bad_argument("missing value(s) of argument(s) interface");
            return Outcome::Reply(trap.into_reply(tag));
        }
    };
    if req.flag(b"once") {
        let row = system::traffic(&interface, 0);
        return Outcome::Reply(vec![
            request::row(tag, row.fields()),
            request::done(tag, None),
        ]);
    }
    match interval(req) {
        Ok(interval) => Outcome::Stream(Stream::Traffic {
            interface,
            interval,
        }),
        Err(trap) => Outcome::Reply(trap.into_reply(tag)),
    }
}

fn ping(req: &Request) -> Outcome {
    let tag = req.tag.as_ref();
    let Some(host) = req.attr(b"address").cloned() else {
        let trap = Trap::bad_argument("missing value(s) of argument(s) address");
        return Outcome::Reply(trap.into_reply(tag));
    };
    let count = match req
        .attr(b"count")
        .map(|c| std::str::from_utf8(c).ok()?.parse::<u64>().ok())
    {
        None => None,
        Some(Some(0)) => None,
        Some(Some(count)) => Some(count),
        Some(None) => {
            let trap = Trap::bad_argument("invalid value for argument count");
            return Outcome::Reply(trap.into_reply(tag));
        }
    };
    match interval(req) {
        Ok(interval) => Outcome::Stream(Stream::Ping {
            host,
            count,
            interval,
        }),
        Err(trap) => Outcome::Reply(trap.into_reply(tag)),
    }
}

fn interval(req: &Request) -> Result<std::time::Duration, Trap> {
    match req.attr(b"interval") {
        None => Ok(DEFAULT_INTERVAL),
        Some(value) => system::parse_interval(value)
            .ok_or_else(|| Trap::bad_argument("invalid value for argument interval")),
    }
}

/// The ids a set or remove names, from `=.id=` or `=numbers=` (comma-separated).
fn selected_ids(req: &Request) -> Result<Vec<&[u8]>, Trap> {
    let list = req
        .attr(b".id")
        .or_else(|| req.attr(b"numbers"))
        .ok_or_else(|| Trap::bad_argument("missing value(s) of argument(s) .id"))?;
    Ok(list.split(|&b| b == b',').collect())
}

fn finish(result: Result<(), Trap>, tag: Option<&Bytes>) -> Vec<Sentence> {
    match result {
        Ok(()) => vec![request::done(tag, None)],
        Err(trap) => trap.into_reply(tag),
    }
}

fn no_such_command(word: &str, tag: Option<&Bytes>) -> Vec<Sentence> {
    Trap::missing(format!("no such command or directory ({word})")).into_reply(tag)
}

/// The first word of `path` that leads to no known command (the last word when the path
/// names a directory rather than a command).
fn unknown_word<'a>(path: &[&'a str]) -> &'a str {
    for depth in 0..path.len() {
        let prefix = &path[..=depth];
        let known = KNOWN
            .iter()
            .any(|k| k.split('/').take(depth + 1).eq(prefix.iter().copied()));
        if !known {
            return path[depth];
        }
    }
    path.last().copied().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_unknown_word_is_named() {
        assert_eq!(unknown_word(&["ip", "route", "print"]), "route");
        assert_eq!(unknown_word(&["ip", "address", "frob"]), "frob");
        assert_eq!(unknown_word(&["nonsense"]), "nonsense");
        assert_eq!(unknown_word(&["ip", "address"]), "address");
    }
}
