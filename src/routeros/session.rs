//! The machinery behind one logged-in connection: the table of tags awaiting replies, the
//! reader task that routes replies by `.tag`, and the writer task that serialises sentences.
//!
//! A tag is entered in the table before its sentence is queued for writing, so a reply that
//! arrives microseconds later always finds its waiter. Writes go through one channel to one
//! task, so whole sentences never interleave. A command given up on (timeout, dropped
//! future or stream) stays in the table as `Draining` until its `!done`, so its late rows
//! and trap are swallowed instead of reaching another command.
//!
//! Known limit: a draining tag whose `!done` never comes (a router that ignores `/cancel`)
//! stays in the table until the connection closes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::client::Response;
use super::codec::{FrameError, Sentence, SentenceCodec};
use super::command::Command;
use super::error::ClientError;
use super::sentence::{Attrs, Reply, ReplyKind};

/// Who is waiting for the replies of one tag.
pub(crate) enum Waiter {
    /// A command that ends with `!done`; rows are collected and handed over at once.
    Call {
        rows: Vec<Attrs>,
        empty: bool,
        /// The first trap; the result is this error once `!done` arrives.
        trap: Option<ClientError>,
        reply: oneshot::Sender<Result<Response, ClientError>>,
    },
    /// A command that may never end; each row is handed over as it comes.
    Stream {
        rows: mpsc::UnboundedSender<Result<Attrs, ClientError>>,
        trapped: bool,
    },
    /// Nobody waits any more (cancelled, or a `/cancel` itself): swallow until `!done`.
    Draining,
}

impl Waiter {
    pub(crate) fn call(reply: oneshot::Sender<Result<Response, ClientError>>) -> Self {
        Waiter::Call {
            rows: Vec::new(),
            empty: false,
            trap: None,
            reply,
        }
    }

    pub(crate) fn stream(rows: mpsc::UnboundedSender<Result<Attrs, ClientError>>) -> Self {
        Waiter::Stream {
            rows,
            trapped: false,
        }
    }
}

/// Waiters and the closed flag live under one lock so that a command is either registered
/// before the connection closes (and then failed by it) or refused.
struct Table {
    waiters: HashMap<String, Waiter>,
    closed: Option<ClientError>,
}

pub(crate) struct Session {
    table: Mutex<Table>,
    /// Sentences for the writer task, in the order they must reach the router.
    outbox: mpsc::UnboundedSender<Sentence>,
    next_tag: AtomicU64,
    /// Lets any number of `closed()` callers learn why the connection ended.
    closed_tx: watch::Sender<Option<ClientError>>,
    /// The reader and writer tasks; the socket is closed once both have ended.
    io_tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Stops the reader and writer tasks, which drops the socket.
    shutdown: CancellationToken,
}

impl Session {
    /// Spawns the reader and writer tasks over a stream that is already logged in.
    pub(crate) fn start<S>(framed: Framed<S, SentenceCodec>) -> Arc<Session>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (outbox, outbox_rx) = mpsc::unbounded_channel();
        let session = Arc::new(Session {
            table: Mutex::new(Table {
                waiters: HashMap::new(),
                closed: None,
            }),
            outbox,
            next_tag: AtomicU64::new(1),
            closed_tx: watch::Sender::new(None),
            shutdown: CancellationToken::new(),
            io_tasks: std::sync::Mutex::new(Vec::new()),
        });
        let (sink, stream) = framed.split();
        let span = tracing::Span::current();
        let reader = tokio::spawn(read_loop(session.clone(), stream).instrument(span.clone()));
        let writer = tokio::spawn(write_loop(session.clone(), sink, outbox_rx).instrument(span));
        session
            .io_tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend([reader, writer]);
        session
    }

    /// Waits until both I/O tasks have ended, so the socket itself is closed (after
    /// [`Session::shut_down`]).
    pub(crate) async fn io_finished(&self) {
        let tasks = std::mem::take(&mut *self.io_tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for t in tasks {
            let _ = t.await;
        }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.table
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn fresh_tag(&self) -> String {
        self.next_tag.fetch_add(1, Ordering::Relaxed).to_string()
    }

    /// Registers `waiter` under a fresh tag, then queues the command; returns the tag.
    pub(crate) fn submit(&self, cmd: &Command, waiter: Waiter) -> Result<String, ClientError> {
        let mut table = self.table();
        if let Some(reason) = &table.closed {
            return Err(reason.clone());
        }
        let tag = self.fresh_tag();
        table.waiters.insert(tag.clone(), waiter);
        if self.outbox.send(cmd.to_sentence(&tag)).is_err() {
            table.waiters.remove(&tag);
            return Err(ClientError::Closed);
        }
        tracing::debug!(cmd.tag = %tag, cmd.path = %cmd.path(), "command sent");
        Ok(tag)
    }

    /// Gives up on `tag`: marks it draining and sends `/cancel` for it under a tag of its
    /// own. Returns false when the command had already finished (or was already given up).
    pub(crate) fn abandon(&self, tag: &str) -> bool {
        let mut table = self.table();
        match table.waiters.get_mut(tag) {
            Some(w @ (Waiter::Call { .. } | Waiter::Stream { .. })) => *w = Waiter::Draining,
            _ => return false,
        }
        let cancel_tag = self.fresh_tag();
        table.waiters.insert(cancel_tag.clone(), Waiter::Draining);
        let cancel = Command::new("/cancel").attr("tag", tag);
        if self.outbox.send(cancel.to_sentence(&cancel_tag)).is_err() {
            table.waiters.remove(&cancel_tag);
        }
        tracing::debug!(cmd.tag = %tag, cancel.tag = %cancel_tag, "command cancelled");
        true
    }

    /// Commands whose caller still waits (draining tags are not counted).
    pub(crate) fn in_flight(&self) -> usize {
        self.table()
            .waiters
            .values()
            .filter(|w| !matches!(w, Waiter::Draining))
            .count()
    }

    pub(crate) fn closed_reason(&self) -> Option<ClientError> {
        self.table().closed.clone()
    }

    pub(crate) fn subscribe_closed(&self) -> watch::Receiver<Option<ClientError>> {
        self.closed_tx.subscribe()
    }

    /// Ends the connection once: fails every waiter with `reason` and stops both tasks.
    pub(crate) fn shut_down(&self, reason: ClientError) {
        let waiters = {
            let mut table = self.table();
            if table.closed.is_some() {
                return;
            }
            table.closed = Some(reason.clone());
            std::mem::take(&mut table.waiters)
        };
        let failed = waiters.len();
        for waiter in waiters.into_values() {
            match waiter {
                Waiter::Call { reply, .. } => drop(reply.send(Err(reason.clone()))),
                Waiter::Stream { rows, .. } => drop(rows.send(Err(reason.clone()))),
                Waiter::Draining => {}
            }
        }
        if matches!(reason, ClientError::Closed) {
            tracing::debug!(commands.failed = failed, "session closed");
        } else {
            tracing::info!(reason = %reason, commands.failed = failed, "session lost");
        }
        self.closed_tx.send_replace(Some(reason));
        self.shutdown.cancel();
    }

    /// Hands one reply to whoever waits for its tag. An error means the connection can no
    /// longer be trusted and must close.
    fn route(&self, reply: Reply) -> Result<(), ClientError> {
        if reply.kind == ReplyKind::Fatal {
            let raw = reply.message.unwrap_or_default();
            return Err(ClientError::Fatal {
                message: String::from_utf8_lossy(&raw).into(),
            });
        }
        let mut table = self.table();
        let tag = match reply.tag.clone() {
            Some(tag) => tag,
            // Only one command can own an untagged reply without guessing.
            None => match table.waiters.len() {
                0 => {
                    tracing::debug!(reply = ?reply.kind, "untagged reply with nothing in flight");
                    return Ok(());
                }
                1 => table.waiters.keys().next().cloned().unwrap_or_default(),
                // `!empty` carries nothing the following `!done` does not also imply.
                n if reply.kind == ReplyKind::Empty => {
                    tracing::debug!(commands = n, "untagged !empty ignored");
                    return Ok(());
                }
                n => {
                    return Err(ClientError::Protocol(format!(
                        "untagged {:?} reply with {n} commands in flight",
                        reply.kind
                    )))
                }
            },
        };
        let Some(waiter) = table.waiters.get_mut(&tag) else {
            tracing::debug!(cmd.tag = %tag, reply = ?reply.kind, "reply for an unknown tag");
            return Ok(());
        };
        match waiter {
            Waiter::Call {
                rows, empty, trap, ..
            } => match reply.kind {
                ReplyKind::Re => rows.push(reply.attrs),
                ReplyKind::Empty => *empty = true,
                ReplyKind::Trap => {
                    trap.get_or_insert_with(|| trap_error(&reply));
                }
                ReplyKind::Done => {
                    if let Some(Waiter::Call {
                        rows,
                        empty,
                        trap,
                        reply: tx,
                    }) = table.waiters.remove(&tag)
                    {
                        let result = match trap {
                            Some(err) => Err(err),
                            None => Ok(Response {
                                rows,
                                done: reply.attrs,
                                empty,
                            }),
                        };
                        // Sent under the lock: a timed-out caller that finds the tag gone
                        // can rely on the result already being in its channel.
                        drop(tx.send(result));
                    }
                }
                ReplyKind::Fatal => {}
            },
            Waiter::Stream { rows, trapped } => match reply.kind {
                ReplyKind::Re => drop(rows.send(Ok(reply.attrs))),
                ReplyKind::Trap if !*trapped => {
                    *trapped = true;
                    drop(rows.send(Err(trap_error(&reply))));
                }
                ReplyKind::Done => drop(table.waiters.remove(&tag)),
                _ => {}
            },
            Waiter::Draining => {
                if reply.kind == ReplyKind::Done {
                    table.waiters.remove(&tag);
                    tracing::debug!(cmd.tag = %tag, "cancelled command drained");
                }
            }
        }
        Ok(())
    }
}

fn trap_error(reply: &Reply) -> ClientError {
    ClientError::Trap {
        message: reply.trap_message(),
        category: reply.trap_category(),
    }
}

/// Reads sentences until the connection ends; never times out while waiting for rows.
async fn read_loop<S>(session: Arc<Session>, mut stream: SplitStream<Framed<S, SentenceCodec>>)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let reason = loop {
        let next = tokio::select! {
            _ = session.shutdown.cancelled() => return,
            next = stream.next() => next,
        };
        let sentence = match next {
            Some(Ok(sentence)) => sentence,
            Some(Err(e)) => break ClientError::from_frame(e),
            None => {
                break ClientError::ConnectionLost {
                    reason: "router closed the connection".into(),
                }
            }
        };
        let routed = Reply::parse(sentence)
            .map_err(ClientError::from)
            .and_then(|r| session.route(r));
        if let Err(reason) = routed {
            break reason;
        }
    };
    session.shut_down(reason);
}

/// Writes queued sentences in order, flushing when the queue runs dry.
async fn write_loop<S>(
    session: Arc<Session>,
    mut sink: SplitSink<Framed<S, SentenceCodec>, Sentence>,
    mut outbox: mpsc::UnboundedReceiver<Sentence>,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    loop {
        let written = tokio::select! {
            _ = session.shutdown.cancelled() => return,
            written = write_batch(&mut sink, &mut outbox) => written,
        };
        match written {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                let reason = format!("writing to the router: {e}");
                session.shut_down(ClientError::ConnectionLost { reason });
                return;
            }
        }
    }
}

/// Waits for one sentence, writes it and whatever else is queued, then flushes.
/// Returns false when the queue is closed.
async fn write_batch<S>(
    sink: &mut SplitSink<Framed<S, SentenceCodec>, Sentence>,
    outbox: &mut mpsc::UnboundedReceiver<Sentence>,
) -> Result<bool, FrameError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let Some(first) = outbox.recv().await else {
        return Ok(false);
    };
    sink.feed(first).await?;
    while let Ok(more) = outbox.try_recv() {
        sink.feed(more).await?;
    }
    sink.flush().await?;
    Ok(true)
}
