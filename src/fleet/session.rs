//! `RouterSession`: the one actor that holds a router's RouterOS connection.
//!
//! The actor never waits on the network. Connecting runs in a task that reports back with
//! a message; each command runs in a task of its own on the shared, multiplexed
//! connection and answers its reply port directly, so many commands are in flight at once
//! and a slow one never blocks the mailbox. Every connection belongs to a `generation`:
//! messages about an older connection are ignored, so a late report of a dead connection
//! can never tear down its replacement. The actor keeps no timer: quiet connections are
//! probed by the fleet's one keepalive sweep (see `supervisor`), which reaches the live
//! connection through the session's `LiveStatus`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::link::Link;
use super::status::{LiveStatus, Phase};
use super::CommandStream;
use crate::config::FleetSettings;
use crate::routeros::client::{Command, Credentials};
use crate::routeros::request::{CommandFailure, RestRequest};
use crate::routeros::tls::TlsMode;
use crate::store::RouterId;

/// Everything needed to (re)start a session; kept by the supervisor for restarts.
#[derive(Clone)]
pub struct SessionSpec {
    pub router_id: RouterId,
    pub host: String,
    pub port: u16,
    pub credentials: Arc<Credentials>,
    /// The RouterOS API (persistent session) or the v7 REST API.
    pub transport: crate::store::Transport,
    /// HTTPS for the REST transport.
    pub https: bool,
    /// API-SSL and how the router's certificate is checked; `None` for the plain API.
    pub tls: Option<TlsMode>,
    pub settings: FleetSettings,
    /// Bounds connection attempts across the whole fleet (start-up, mass reconnects).
    pub connect_permits: Arc<Semaphore>,
    pub status: Arc<LiveStatus>,
}

pub type CommandReply = RpcReplyPort<Result<Value, CommandFailure>>;
pub type StreamReply = RpcReplyPort<Result<CommandStream, CommandFailure>>;

pub enum SessionMsg {
    /// Run a command. `fresh` asks for a new connection attempt now if the router is
    /// offline, instead of answering with the last error (used by test-connection).
    Execute {
        req: RestRequest,
        timeout: Duration,
        fresh: bool,
        reply: CommandReply,
        permit: OwnedSemaphorePermit,
    },
    /// Start a long-running command whose rows the caller reads itself; the caller holds
    /// its backlog permit for the life of the stream.
    Stream {
        cmd: Command,
        deadline: Instant,
        reply: StreamReply,
        permit: OwnedSemaphorePermit,
    },
    Connected {
        generation: u64,
        conn: Link,
        version: Option<String>,
    },
    ConnectFailed {
        generation: u64,
        error: String,
    },
    Lost {
        generation: u64,
        reason: String,
    },
    Reconnect {
        generation: u64,
    },
}

/// Work waiting for the connection to come up.
enum Waiting {
    Exec {
        req: RestRequest,
        deadline: Instant,
        reply: CommandReply,
        permit: OwnedSemaphorePermit,
    },
    Stream {
        cmd: Command,
        deadline: Instant,
        reply: StreamReply,
        permit: OwnedSemaphorePermit,
    },
}

impl Waiting {
    /// Starts the work on a live connection, or answers Timeout when its time is up.
    fn start(self, conn: &Link, status: &Arc<LiveStatus>) {
        match self {
            Waiting::Exec {
                req,
                deadline,
                reply,
                permit,
            } => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    let _ = reply.send(Err(CommandFailure::Timeout));
                } else {
                    run(conn.clone(), status.clone(), req, left, reply, permit);
                }
            }
            Waiting::Stream {
                cmd,
                deadline,
                reply,
                permit,
            } => {
                let result = if Instant::now() >= deadline {
                    Err(CommandFailure::Timeout)
                } else {
                    conn.stream(cmd)
                        .map(|rows| CommandStream::new(rows, permit))
                };
                let _ = reply.send(result);
            }
        }
    }

    fn fail(self, failure: CommandFailure) {
        match self {
            Waiting::Exec { reply, .. } => {
                let _ = reply.send(Err(failure));
            }
            Waiting::Stream { reply, .. } => {
                let _ = reply.send(Err(failure));
            }
        }
    }
}

pub struct SessionState {
    spec: SessionSpec,
    conn: Option<Link>,
    generation: u64,
    waiting: VecDeque<Waiting>,
    /// Failed attempts in a row, for the backoff.
    failures: u32,
    last_failure: Option<(Instant, String)>,
    /// The connection attempt in progress, stopped with the session.
    connecting: Option<tokio::task::JoinHandle<()>>,
}

pub struct RouterSession;

impl Actor for RouterSession {
    type Msg = SessionMsg;
    type State = SessionState;
    type Arguments = SessionSpec;

    async fn pre_start(
        &self,
        myself: ActorRef<SessionMsg>,
        spec: SessionSpec,
    ) -> Result<SessionState, ActorProcessingErr> {
        let mut state = SessionState {
            spec,
            conn: None,
            generation: 0,
            waiting: VecDeque::new(),
            failures: 0,
            last_failure: None,
            connecting: None,
        };
        start_connect(&myself, &mut state);
        Ok(state)
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<SessionMsg>,
        state: &mut SessionState,
    ) -> Result<(), ActorProcessingErr> {
        state.spec.status.clear_link();
        // An attempt still connecting or logging in is dropped (its socket with it); one
        // that already logged in is closed by the attempt itself when it cannot deliver.
        if let Some(attempt) = state.connecting.take() {
            attempt.abort();
            let _ = attempt.await;
        }
        fail_waiting(state, "session closed");
        if let Some(conn) = state.conn.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), conn.shutdown()).await;
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<SessionMsg>,
        msg: SessionMsg,
        state: &mut SessionState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SessionMsg::Execute {
                req,
                timeout,
                fresh,
                reply,
                permit,
            } => {
                let deadline = Instant::now() + timeout;
                submit(
                    &myself,
                    state,
                    Waiting::Exec {
                        req,
                        deadline,
                        reply,
                        permit,
                    },
                    fresh,
                );
            }
            SessionMsg::Stream {
                cmd,
                deadline,
                reply,
                permit,
            } => {
                let job = Waiting::Stream {
                    cmd,
                    deadline,
                    reply,
                    permit,
                };
                submit(&myself, state, job, false);
            }
            SessionMsg::Connected {
                generation,
                conn,
                version,
            } => {
                if generation != state.generation {
                    conn.close();
                    return Ok(());
                }
                tracing::info!(router.id = state.spec.router_id, router.version = ?version, "session up");
                state.failures = 0;
                state.last_failure = None;
                state.spec.status.set_online(version, conn.clone());
                let watcher = myself.clone();
                let watched = conn.clone();
                tokio::spawn(async move {
                    let reason = watched.closed().await;
                    let _ = watcher.send_message(SessionMsg::Lost { generation, reason });
                });
                for job in std::mem::take(&mut state.waiting) {
                    job.start(&conn, &state.spec.status);
                }
                state.conn = Some(conn);
            }
            SessionMsg::ConnectFailed { generation, error } => {
                if generation != state.generation {
                    return Ok(());
                }
                state.failures += 1;
                tracing::debug!(router.id = state.spec.router_id, cause = %error, attempt = state.failures, "connect failed");
                if state.failures == 1 {
                    tracing::warn!(router.id = state.spec.router_id, router.addr = %format!("{}:{}", state.spec.host, state.spec.port), cause = %error, "router unreachable");
                }
                state.spec.status.set_offline(error.clone());
                // Nothing was sent: say so, so no one mistakes this for a lost command.
                let error = format!("cannot connect or log in: {error}");
                fail_waiting(state, &error);
                state.last_failure = Some((Instant::now(), error));
                let delay = backoff(&state.spec.settings, state.failures);
                myself.send_after(delay, move || SessionMsg::Reconnect { generation });
            }
            SessionMsg::Lost { generation, reason } => {
                if generation != state.generation {
                    return Ok(());
                }
                tracing::info!(router.id = state.spec.router_id, cause = %reason, "session lost; reconnecting");
                state.conn = None;
                state.spec.status.set_offline(reason);
                start_connect(&myself, state);
            }
            SessionMsg::Reconnect { generation } => {
                if generation == state.generation && state.spec.status.phase() == Phase::Offline {
                    start_connect(&myself, state);
                }
            }
        }
        Ok(())
    }
}

/// Runs one command on the live connection in its own task.
fn run(
    conn: Link,
    status: Arc<LiveStatus>,
    req: RestRequest,
    timeout: Duration,
    reply: CommandReply,
    permit: OwnedSemaphorePermit,
) {
    tokio::spawn(async move {
        let result = conn.execute(&req, timeout).await;
        if !matches!(result, Err(CommandFailure::Unreachable { .. })) {
            status.touch();
        }
        let _ = reply.send(result);
        drop(permit);
    });
}

fn start_connect(myself: &ActorRef<SessionMsg>, state: &mut SessionState) {
    state.generation += 1;
    let generation = state.generation;
    if let Some(old) = state.conn.take() {
        old.close();
    }
    state.spec.status.set_connecting();
    let spec = state.spec.clone();
    let myself = myself.clone();
    if let Some(previous) = state.connecting.take() {
        previous.abort();
    }
    state.connecting = Some(tokio::spawn(async move {
        let msg = match connect(&spec).await {
            Ok((conn, version)) => SessionMsg::Connected {
                generation,
                conn,
                version,
            },
            Err(error) => SessionMsg::ConnectFailed { generation, error },
        };
        if let Err(ractor::MessagingErr::SendErr(SessionMsg::Connected { conn, .. })) =
            myself.send_message(msg)
        {
            conn.shutdown().await;
        }
    }));
}

async fn connect(spec: &SessionSpec) -> Result<(Link, Option<String>), String> {
    let _permit = spec
        .connect_permits
        .acquire()
        .await
        .map_err(|_| "fleet stopped".to_string())?;
    Link::connect(spec).await
}

fn fail_waiting(state: &mut SessionState, error: &str) {
    for job in state.waiting.drain(..) {
        job.fail(CommandFailure::Unreachable {
            message: error.to_string(),
        });
    }
}

/// Starts `job` now if the session is up, queues it while connecting, and when offline
/// either answers with the last error (a failure moments ago) or tries again at once.
fn submit(myself: &ActorRef<SessionMsg>, state: &mut SessionState, job: Waiting, fresh: bool) {
    match (&state.conn, state.spec.status.phase()) {
        (Some(conn), Phase::Online) => job.start(conn, &state.spec.status),
        (_, Phase::Connecting) => state.waiting.push_back(job),
        _ => {
            let quiet = Duration::from_millis(state.spec.settings.backoff_initial_ms.max(1000));
            match state
                .last_failure
                .as_ref()
                .filter(|(at, _)| at.elapsed() < quiet)
            {
                Some((_, error)) if !fresh => job.fail(CommandFailure::Unreachable {
                    message: error.clone(),
                }),
                _ => {
                    state.waiting.push_back(job);
                    start_connect(myself, state);
                }
            }
        }
    }
}

/// Exponential backoff with full jitter between half and the whole step.
pub(crate) fn backoff(settings: &FleetSettings, failures: u32) -> Duration {
    let base = settings.backoff_initial_ms.max(1);
    let step = base
        .saturating_mul(1u64 << failures.min(16).saturating_sub(1))
        .min(settings.backoff_max_ms.max(base));
    let jitter = rand::random_range(step / 2..=step);
    Duration::from_millis(jitter)
}
