//! Commands that keep answering until they finish or are cancelled: `ping`,
//! `monitor-traffic`, `listen` and `print =follow=`, and hung commands (the hang fault).
//!
//! Each runs as its own task holding a [`Replier`]. A cancel makes it answer
//! `!trap =category=2 =message=interrupted` and `!done` and send nothing after; the
//! connection closing ends it without a word.

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::time::MissedTickBehavior;

use super::connection::Replier;
use super::model::Record;
use super::query::{self, Filter};
use super::request::{self, Trap};
use super::system;
use crate::routeros::codec::Sentence;

pub(crate) enum Stream {
    /// Never answers on its own.
    Hang,
    /// One reply per interval; `!done` after `count` replies, if given.
    Ping {
        host: Bytes,
        count: Option<u64>,
        interval: Duration,
    },
    Traffic {
        interface: Bytes,
        interval: Duration,
    },
    /// Rows already due (`print =follow=`), then every change that passes the filter;
    /// removals (`.dead`) always pass.
    Changes {
        initial: Vec<Sentence>,
        changes: mpsc::UnboundedReceiver<Record>,
        filter: Filter,
        proplist: Option<Bytes>,
    },
}

/// Runs `stream` until it completes, is cancelled, or the connection goes away.
pub(crate) async fn run(stream: Stream, mut out: Replier, mut cancelled: oneshot::Receiver<()>) {
    match stream {
        Stream::Hang => {
            let signal = (&mut cancelled).await;
            interrupt(&mut out, signal).await;
        }
        Stream::Ping {
            host,
            count,
            interval,
        } => {
            let mut ticker = ticker(interval);
            for seq in 0.. {
                tokio::select! {
                    biased;
                    signal = &mut cancelled => return interrupt(&mut out, signal).await,
                    _ = ticker.tick() => {}
                }
                let tag = out.tag.clone();
                let mut batch = vec![progress_row(
                    tag.as_ref(),
                    seq,
                    &system::ping_reply(&host, seq),
                )];
                let last = count.is_some_and(|c| seq + 1 >= c);
                if last {
                    batch.push(request::done(tag.as_ref(), None));
                }
                if !out.send(batch).await || last {
                    return;
                }
            }
        }
        Stream::Traffic {
            interface,
            interval,
        } => {
            let mut ticker = ticker(interval);
            for section in 0.. {
                tokio::select! {
                    biased;
                    signal = &mut cancelled => return interrupt(&mut out, signal).await,
                    _ = ticker.tick() => {}
                }
                let tag = out.tag.clone();
                let row = system::traffic(&interface, section);
                if !out
                    .send(vec![progress_row(tag.as_ref(), section, &row)])
                    .await
                {
                    return;
                }
            }
        }
        Stream::Changes {
            initial,
            mut changes,
            filter,
            proplist,
        } => {
            if !initial.is_empty() && !out.send(initial).await {
                return;
            }
            loop {
                let change = tokio::select! {
                    biased;
                    signal = &mut cancelled => return interrupt(&mut out, signal).await,
                    change = changes.recv() => change,
                };
                let Some(record) = change else {
                    let signal = (&mut cancelled).await;
                    return interrupt(&mut out, signal).await;
                };
                if record.get(b".dead").is_none() && !filter.matches(&record) {
                    continue;
                }
                let tag = out.tag.clone();
                let row = request::row(tag.as_ref(), query::project(&record, proplist.as_ref()));
                if !out.send(vec![row]).await {
                    return;
                }
            }
        }
    }
}

fn ticker(interval: Duration) -> tokio::time::Interval {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticker
}

/// A progress row: `=.section=N` first, then the record.
fn progress_row(tag: Option<&Bytes>, section: u64, record: &Record) -> Sentence {
    let section = section.to_string();
    let fields = std::iter::once((&b".section"[..], section.as_bytes())).chain(record.fields());
    request::row(tag, fields)
}

/// Answers a cancel; a dropped sender means the connection closed, and nothing is sent.
async fn interrupt(out: &mut Replier, signal: Result<(), oneshot::error::RecvError>) {
    if signal.is_ok() {
        out.trap(Trap::interrupted()).await;
    }
}
