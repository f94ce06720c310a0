//! The fleet: one supervised `RouterSession` actor per router, each holding one
//! persistent, multiplexed RouterOS session, and the dispatch of commands to them.
//!
//! [`Fleet`] is the handle the API uses. Lookups go through a shared map of session
//! handles, so dispatching a command costs one map read, one semaphore permit (the
//! per-router backlog) and one actor message.

mod link;
mod session;
mod status;
mod supervisor;

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use ractor::{Actor, ActorRef};
use serde_json::Value;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use crate::config::FleetSettings;
use crate::routeros::client::{ClientError, Command, Credentials, ReplyStream};
use crate::routeros::request::{CommandFailure, RestRequest};
use crate::routeros::sentence::Attrs;
use crate::routeros::tls::TlsMode;
use crate::store::seal::Sealer;
use crate::store::{Router, RouterId, RouterStatus};

use session::{SessionMsg, SessionSpec};
use status::PhaseCounts;
pub use status::{LiveStatus, Phase};
use supervisor::{FleetSupervisor, SessionHandle, SupervisorArgs, SupervisorMsg};

/// Why a command did not produce a result.
#[derive(Debug)]
pub enum ExecError {
    /// The router's backlog is full; try again later (503).
    Backlog,
    /// The command could not be handed to the router's session (no node holds it right
    /// now, or the shared store is down); it was not run (503).
    Unavailable(String),
    /// This node has no session for the router (it is held elsewhere, or was just
    /// handed over); the command was not run.
    NoSession,
    Failed(CommandFailure),
}

/// The rows of a running long-running command; see [`Fleet::stream`].
pub struct CommandStream {
    inner: ReplyStream,
    /// The backlog place, given back when the stream is dropped.
    _permit: OwnedSemaphorePermit,
}

impl CommandStream {
    pub(crate) fn new(inner: ReplyStream, permit: OwnedSemaphorePermit) -> Self {
        CommandStream {
            inner,
            _permit: permit,
        }
    }

    /// The next `!re` row; `None` after `!done`, an error for a trap or a lost connection.
    pub async fn next(&mut self) -> Option<Result<Attrs, ClientError>> {
        self.inner.next().await
    }
}

/// What a client is told when this node has no session for the router.
pub const NO_SESSION: &str = "no session for this router on this node";

/// The request `test-connection` sends: cheap, read-only, answered by every router.
pub fn probe_request() -> RestRequest {
    RestRequest::parse(Some("GET"), "system/identity", None, None).expect("static request is valid")
}

/// What `test-connection` reports for the outcome of [`probe_request`]: a trap still
/// proves the router answers.
pub fn connection_verdict(outcome: Result<Value, ExecError>) -> Result<(), String> {
    match outcome {
        Ok(_) | Err(ExecError::Failed(CommandFailure::Trap { .. })) => Ok(()),
        Err(ExecError::Backlog) => Err("too many commands waiting".into()),
        Err(ExecError::Unavailable(m)) => Err(m),
        Err(ExecError::NoSession) => Err(NO_SESSION.into()),
        Err(ExecError::Failed(CommandFailure::Timeout)) => Err("no answer in time".into()),
        Err(ExecError::Failed(f)) => Err(f.to_string()),
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionCounts {
    pub open: usize,
    pub connecting: usize,
    pub offline: usize,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot start the fleet supervisor: {0}")]
pub struct FleetStartError(String);

#[derive(Clone)]
pub struct Fleet {
    inner: Arc<FleetInner>,
}

struct FleetInner {
    supervisor: ActorRef<SupervisorMsg>,
    sessions: Arc<DashMap<RouterId, SessionHandle>>,
    settings: FleetSettings,
    connect_permits: Arc<Semaphore>,
    /// Sessions by phase, kept by the sessions themselves.
    counts: Arc<PhaseCounts>,
}

impl Fleet {
    pub async fn start(settings: FleetSettings) -> Result<Fleet, FleetStartError> {
        let sessions = Arc::new(DashMap::new());
        let args = SupervisorArgs {
            sessions: sessions.clone(),
            settings: settings.clone(),
        };
        let (supervisor, _join) = Actor::spawn(None, FleetSupervisor, args)
            .await
            .map_err(|e| FleetStartError(e.to_string()))?;
        let connect_permits = Arc::new(Semaphore::new(settings.connect_concurrency.max(1)));
        Ok(Fleet {
            inner: Arc::new(FleetInner {
                supervisor,
                sessions,
                settings,
                connect_permits,
                counts: Arc::default(),
            }),
        })
    }

    /// Starts (or restarts) the session for `router`; returns once the actor runs, not
    /// once the router is reached.
    pub async fn open(&self, router: Router, password: String) {
        let status = self
            .inner
            .sessions
            .get(&router.id)
            .map(|h| h.status.clone())
            .unwrap_or_else(|| Arc::new(LiveStatus::new(self.inner.counts.clone())));
        let tls = self.tls_mode(&router);
        let spec = SessionSpec {
            router_id: router.id,
            host: router.host,
            port: router.port,
            credentials: Arc::new(Credentials {
                username: router.username,
                password,
            }),
            tls,
            transport: router.transport,
            https: router.use_https,
            settings: self.inner.settings.clone(),
            connect_permits: self.inner.connect_permits.clone(),
            status,
        };
        let backlog = Arc::new(Semaphore::new(self.inner.settings.max_backlog));
        let (tx, rx) = oneshot::channel();
        let msg = SupervisorMsg::Open {
            spec,
            backlog,
            reply: tx.into(),
        };
        if self.inner.supervisor.send_message(msg).is_ok() {
            let _ = rx.await;
        }
    }

    /// API-SSL settings for `router`: `None` unless `use_https`. A `tls` value that does not
    /// parse (the API validates it) falls back to `verify`, the strictest mode.
    fn tls_mode(&self, router: &Router) -> Option<TlsMode> {
        if !router.use_https {
            return None;
        }
        let ca_file = self.inner.settings.tls_ca_file();
        match TlsMode::parse(&router.tls, ca_file.clone()) {
            Ok(mode) => Some(mode),
            Err(reason) => {
                tracing::warn!(router.id = %router.id, %reason, "bad tls setting, verifying");
                Some(TlsMode::Verify { ca_file })
            }
        }
    }

    /// Stops the router's session and closes its connection.
    pub async fn close(&self, router_id: RouterId) {
        let (tx, rx) = oneshot::channel();
        let msg = SupervisorMsg::Close {
            router_id,
            reply: tx.into(),
        };
        if self.inner.supervisor.send_message(msg).is_ok() {
            let _ = rx.await;
        }
    }

    pub async fn execute(
        &self,
        router_id: RouterId,
        req: RestRequest,
        timeout: Duration,
    ) -> Result<Value, ExecError> {
        self.run(router_id, req, timeout, false).await
    }

    /// Checks that the router answers, with a fresh connection attempt if it is offline.
    pub async fn test_connection(&self, router_id: RouterId) -> Result<(), String> {
        let timeout = self.inner.settings.connect_timeout();
        connection_verdict(self.run(router_id, probe_request(), timeout, true).await)
    }

    /// Runs `req` on the router's session; with `fresh`, an offline session first makes a
    /// new connection attempt instead of failing at once.
    pub async fn run(
        &self,
        router_id: RouterId,
        req: RestRequest,
        timeout: Duration,
        fresh: bool,
    ) -> Result<Value, ExecError> {
        let guard = timeout + self.inner.settings.connect_timeout() + Duration::from_secs(1);
        self.ask(router_id, guard, |reply, permit| SessionMsg::Execute {
            req,
            timeout,
            fresh,
            reply,
            permit,
        })
        .await
    }

    /// Starts a long-running command (`ping`, `listen`, `monitor-traffic`, `print follow`)
    /// whose rows the caller reads one by one. The stream holds one place in the router's
    /// backlog while it lives; dropping it cancels the command on the router.
    pub async fn stream(
        &self,
        router_id: RouterId,
        cmd: Command,
        start_within: Duration,
    ) -> Result<CommandStream, ExecError> {
        let deadline = std::time::Instant::now() + start_within;
        let guard = start_within + self.inner.settings.connect_timeout();
        self.ask(router_id, guard, |reply, permit| SessionMsg::Stream {
            cmd,
            deadline,
            reply,
            permit,
        })
        .await
    }

    /// Takes a place in the router's backlog, hands the session the message `make` builds,
    /// and waits for its answer. The session enforces the command's own deadline; `guard`
    /// only bounds the wait should the session stop with the message still queued.
    async fn ask<T: Send + 'static>(
        &self,
        router_id: RouterId,
        guard: Duration,
        make: impl FnOnce(
            ractor::RpcReplyPort<Result<T, CommandFailure>>,
            OwnedSemaphorePermit,
        ) -> SessionMsg,
    ) -> Result<T, ExecError> {
        let unreachable = |message: &str| {
            ExecError::Failed(CommandFailure::Unreachable {
                message: message.to_string(),
            })
        };
        let handle = match self.inner.sessions.get(&router_id) {
            Some(h) => h.clone(),
            None => return Err(ExecError::NoSession),
        };
        let permit = handle
            .backlog
            .clone()
            .try_acquire_owned()
            .map_err(|_| ExecError::Backlog)?;
        let (tx, rx) = oneshot::channel();
        handle
            .actor
            .send_message(make(tx.into(), permit))
            .map_err(|_| unreachable("session is restarting"))?;
        match tokio::time::timeout(guard, rx).await {
            Ok(Ok(result)) => result.map_err(ExecError::Failed),
            Ok(Err(_)) => Err(unreachable("session closed before answering")),
            Err(_) => Err(ExecError::Failed(CommandFailure::Timeout)),
        }
    }

    /// The statuses that changed since last taken, for publishing to other nodes.
    pub fn take_changed_statuses(&self) -> Vec<(RouterId, RouterStatus)> {
        self.inner
            .sessions
            .iter()
            .filter_map(|e| e.status.take_unpublished().map(|s| (*e.key(), s)))
            .collect()
    }

    /// Publishing `router_id`'s status failed: offer it again next time.
    pub fn mark_status_unpublished(&self, router_id: RouterId) {
        if let Some(h) = self.inner.sessions.get(&router_id) {
            h.status.mark_unpublished();
        }
    }

    /// Whether this node has a session for the router.
    pub fn has_session(&self, router_id: RouterId) -> bool {
        self.inner.sessions.contains_key(&router_id)
    }

    /// The routers this node has sessions for.
    pub fn router_ids(&self) -> Vec<RouterId> {
        self.inner.sessions.iter().map(|e| *e.key()).collect()
    }

    /// Opens the session for a stored router, unsealing its password with `sealer`; a
    /// password that does not unseal is logged and the session is not opened.
    pub async fn open_sealed(&self, router: Router, sealer: &Sealer) {
        match sealer.open(&router.password) {
            Ok(password) => {
                let password = String::from_utf8_lossy(&password).into_owned();
                self.open(router, password).await;
            }
            Err(e) => tracing::error!(
                router.id = router.id,
                cause = %e,
                "cannot unseal router password; session not opened"
            ),
        }
    }

    pub fn status(&self, router_id: RouterId) -> RouterStatus {
        self.inner
            .sessions
            .get(&router_id)
            .map(|h| h.status.snapshot())
            .unwrap_or_default()
    }

    /// Sessions by phase; constant time, whatever the size of the fleet.
    pub fn counts(&self) -> SessionCounts {
        self.inner.counts.snapshot()
    }

    /// Closes every session (no restarts), then stops the supervisor.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self
            .inner
            .supervisor
            .send_message(SupervisorMsg::Shutdown { reply: tx.into() })
            .is_ok()
        {
            let _ = rx.await;
        }
        self.inner.supervisor.stop(None);
    }
}
