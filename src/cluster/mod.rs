//! Many nodes, one fleet: which node holds which router's session, and how a command
//! reaches it from whichever node the client called.
//!
//! With the Redis store every node runs a [`Cluster`]:
//! - **Membership** (`ownership`): each node heartbeats into a sorted set scored by Redis
//!   server time (so node clocks do not matter); a node silent for `lease_ttl_ms` is dead.
//! - **Ownership**: routers fall into `cluster.shards` shards ([`placement`]). A shard is
//!   held through a Redis lease `<node>|<epoch>` with a TTL; the epoch (a fencing token)
//!   grows each time the shard changes hands. Live nodes agree on the owner of each shard by
//!   rendezvous hashing. A node releases a shard only after closing its sessions, and opens
//!   sessions only for shards it holds, so a router never has sessions from two nodes. A
//!   node that cannot renew (Redis down, partition) closes the shard's sessions on its own
//!   before the lease can lapse in Redis ("self-fencing").
//! - **Commands** (`inbox`): a command for a router held elsewhere goes to the owner's
//!   inbox stream (consumer group, bincode [`wire::Envelope`]); the owner runs it and
//!   appends the outcome to the asker's reply stream, read by one task that hands it to the
//!   waiting request.
//! - **At most once** ([`records`]): before running a forwarded command the owner claims its
//!   execution record, fenced by its lease epoch; a redelivered entry finds the record and
//!   gets the recorded outcome instead of a second run. A node taking over from a dead one
//!   claims the dead node's pending inbox entries.
//!
//! Without Redis there is one node and [`Dispatch`] goes straight to the local fleet.

mod inbox;
mod keys;
mod ownership;
pub mod placement;
mod records;
pub mod wire;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::task::JoinHandle;

use crate::config::{ClusterSettings, FleetSettings, Settings};
use crate::fleet::{connection_verdict, probe_request, CommandStream, ExecError, Fleet};
use crate::routeros::request::{command_for_post, record, CommandFailure, RestRequest};
use crate::routeros::ClientError;
use crate::store::redis::connection::{parse_target, Conn, Pool};
use crate::store::redis::DEFAULT_NAMESPACE;
use crate::store::seal::Sealer;
use crate::store::{Router, RouterId, RouterStatus, Store, StoreError};

use keys::Keys;
use records::{Begin, Record};
use wire::{Envelope, Forwarded, Outcome, Reply, ReplyBody, StreamEvent, StreamStart, WireRequest};

/// How the API reaches routers: the local fleet alone, or the cluster.
pub struct Dispatch {
    fleet: Fleet,
    cluster: Option<Cluster>,
    /// Outcomes of keyed commands on a single node (in memory: a restart forgets them).
    keyed: DashMap<String, Arc<KeyedOutcome>>,
    keep: Duration,
}

/// The outcome of a keyed command on a single node, shared with its retries.
struct KeyedOutcome {
    at: Instant,
    outcome: tokio::sync::OnceCell<Outcome>,
}

impl Dispatch {
    /// One node: the local fleet; keyed outcomes are kept `keep` in memory.
    pub fn single(fleet: Fleet, keep: Duration) -> Dispatch {
        Dispatch {
            fleet,
            cluster: None,
            keyed: DashMap::new(),
            keep,
        }
    }

    pub fn clustered(fleet: Fleet, cluster: Cluster) -> Dispatch {
        Dispatch {
            fleet,
            cluster: Some(cluster),
            keyed: DashMap::new(),
            keep: Duration::ZERO,
        }
    }

    /// Runs a keyed command once on this node; a retry (even concurrent) with the same key
    /// gets the first outcome.
    async fn execute_keyed(
        &self,
        router: &Router,
        req: RestRequest,
        timeout: Duration,
        key: String,
    ) -> Result<Value, ExecError> {
        if self.keyed.len() >= 1024 && rand::random::<u8>() == 0 {
            self.keyed.retain(|_, k| k.at.elapsed() < self.keep);
        }
        let entry = self
            .keyed
            .entry(key)
            .or_insert_with(|| {
                Arc::new(KeyedOutcome {
                    at: Instant::now(),
                    outcome: tokio::sync::OnceCell::new(),
                })
            })
            .clone();
        entry
            .outcome
            .get_or_init(|| async {
                Outcome::from(&self.fleet.execute(router.id, req, timeout).await)
            })
            .await
            .clone()
            .into_result()
    }

    pub fn fleet(&self) -> &Fleet {
        &self.fleet
    }

    pub fn cluster(&self) -> Option<&Cluster> {
        self.cluster.as_ref()
    }

    /// Runs `req` on the router wherever its session is. `key` is the client's
    /// `Idempotency-Key` (already scoped to the user and router): a second request with the
    /// same key gets the first one's outcome instead of running again, kept in Redis with a
    /// cluster and in this node's memory without one.
    pub async fn execute(
        &self,
        router: &Router,
        req: RestRequest,
        timeout: Duration,
        key: Option<String>,
    ) -> Result<Value, ExecError> {
        match (&self.cluster, key) {
            (None, None) => self.fleet.execute(router.id, req, timeout).await,
            (None, Some(key)) => self.execute_keyed(router, req, timeout, key).await,
            (Some(c), key) => c.execute(router.id, req, timeout, key, false).await,
        }
    }

    pub async fn test_connection(&self, router: &Router) -> Result<(), String> {
        match &self.cluster {
            None => self.fleet.test_connection(router.id).await,
            Some(c) => {
                let timeout = c.inner.fleet_settings.connect_timeout();
                connection_verdict(
                    c.execute(router.id, probe_request(), timeout, None, true)
                        .await,
                )
            }
        }
    }

    /// Starts a long-running command on the router wherever its session is; rows come
    /// back through the returned stream, relayed by the owning node when it is another.
    /// Dropping the stream cancels the command.
    pub async fn stream(
        &self,
        router: &Router,
        req: &RestRequest,
        start_within: Duration,
        lasts: Duration,
    ) -> Result<RowStream, ExecError> {
        let local = |fleet: &Fleet| {
            let fleet = fleet.clone();
            let cmd = command_for_post(req);
            let id = router.id;
            async move {
                fleet
                    .stream(id, cmd, start_within)
                    .await
                    .map(RowStream::Local)
            }
        };
        let Some(c) = &self.cluster else {
            return local(&self.fleet).await;
        };
        let shard = c.inner.shard(router.id);
        match c.inner.locate(shard, Instant::now() + start_within).await {
            Some(Place::Here(_)) => {
                c.inner.ensure_session(router.id).await;
                local(&self.fleet).await
            }
            Some(Place::There(owner)) => {
                c.relay_from(&owner, router.id, req, start_within, lasts)
                    .await
            }
            None => Err(ExecError::Unavailable(
                "no node holds this router's shard right now; the stream was not started".into(),
            )),
        }
    }

    /// A router was stored: open its session where it belongs.
    pub async fn router_added(&self, router: &Router, password: String) {
        match &self.cluster {
            Some(c) if !c.holds(router.id) => c.notify_owner(router.id, false).await,
            _ => self.fleet.open(router.clone(), password).await,
        }
    }

    /// A router was edited; `reconnect` when its connection settings changed.
    pub async fn router_changed(&self, router: &Router, password: String, reconnect: bool) {
        if !reconnect {
            return;
        }
        match &self.cluster {
            Some(c) if !c.holds(router.id) => c.notify_owner(router.id, true).await,
            _ => {
                self.fleet.close(router.id).await;
                self.fleet.open(router.clone(), password).await;
            }
        }
    }

    pub async fn router_removed(&self, id: RouterId) {
        self.fleet.close(id).await;
        if let Some(c) = &self.cluster {
            if !c.holds(id) {
                c.notify_owner(id, false).await;
            }
        }
    }

    /// The router's live status: from the local session, or as its owner last published it.
    pub async fn status(&self, id: RouterId) -> RouterStatus {
        match &self.cluster {
            Some(c) if !self.fleet.has_session(id) => {
                c.inner.store.router_status(id).await.unwrap_or_default()
            }
            _ => self.fleet.status(id),
        }
    }

    /// Stops the cluster work (leases released, inbox drained) and closes every session.
    pub async fn shutdown(&self) {
        match &self.cluster {
            Some(c) => c.shutdown().await,
            None => self.fleet.shutdown().await,
        }
    }
}

/// How a request waits for another node's answer.
enum Waiter {
    Once(oneshot::Sender<Outcome>),
    Rows(mpsc::Sender<StreamEvent>),
}

/// One step of a streaming command, wherever it runs.
#[derive(Debug)]
pub enum StreamItem {
    /// A `!re` row as a JSON object.
    Row(Value),
    Trap {
        message: String,
        category: Option<u32>,
    },
    Error(String),
}

/// The rows of a streaming command: from a local session, or relayed by the owner.
pub enum RowStream {
    Local(CommandStream),
    Remote(RemoteStream),
}

impl RowStream {
    /// The next row; `None` once the command is done.
    pub async fn next(&mut self) -> Option<StreamItem> {
        match self {
            RowStream::Local(rows) => match rows.next().await? {
                Ok(attrs) => Some(StreamItem::Row(record(&attrs, false))),
                Err(ClientError::Trap { message, category }) => {
                    Some(StreamItem::Trap { message, category })
                }
                Err(e) => Some(StreamItem::Error(e.to_string())),
            },
            RowStream::Remote(remote) => remote.next().await,
        }
    }
}

/// A stream relayed by the node that holds the router. Dropping it tells that node to
/// cancel the command.
pub struct RemoteStream {
    rows: mpsc::Receiver<StreamEvent>,
    request_id: String,
    owner: String,
    inner: Arc<Inner>,
    ended: bool,
}

impl RemoteStream {
    async fn next(&mut self) -> Option<StreamItem> {
        if self.ended {
            return None;
        }
        let item = match self.rows.recv().await {
            Some(StreamEvent::Row(text)) => {
                return Some(StreamItem::Row(
                    serde_json::from_str(&text).unwrap_or(Value::String(text)),
                ))
            }
            Some(StreamEvent::Done) => None,
            Some(StreamEvent::Trap { message, category }) => {
                Some(StreamItem::Trap { message, category })
            }
            Some(StreamEvent::Error(e)) => Some(StreamItem::Error(e)),
            Some(StreamEvent::Started) | Some(StreamEvent::Refused(_)) => Some(StreamItem::Error(
                "the relaying node sent an unexpected event".into(),
            )),
            None => Some(StreamItem::Error(format!(
                "the relay from node {} broke (this node fell behind or the owner left)",
                self.owner
            ))),
        };
        self.ended = true;
        item
    }
}

impl Drop for RemoteStream {
    fn drop(&mut self) {
        self.inner.waiters.remove(&self.request_id);
        if self.ended {
            return;
        }
        let (inner, owner) = (self.inner.clone(), self.owner.clone());
        let env = Envelope::Cancel {
            request_id: self.request_id.clone(),
        };
        tokio::spawn(async move {
            let _ = inner.send_to_inbox(&owner, &env).await;
        });
    }
}

/// Cluster figures for `/health/` and `/metrics`.
#[derive(Clone, Debug, Default)]
pub struct ClusterView {
    pub node: String,
    pub live_nodes: usize,
    pub shards_held: usize,
    pub shards: u32,
    pub forwarded: u64,
    pub served_for_others: u64,
}

#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    node: String,
    settings: ClusterSettings,
    fleet_settings: FleetSettings,
    pool: Pool,
    keys: Keys,
    fleet: Fleet,
    store: Arc<dyn Store>,
    sealer: Arc<Sealer>,
    view: RwLock<View>,
    /// Requests waiting for a reply from another node, by request id.
    waiters: DashMap<String, Waiter>,
    /// Streams this node relays for other nodes, by request id: send to cancel.
    relays: DashMap<String, oneshot::Sender<()>>,
    /// Execution records this node has claimed and is running now.
    /// (Counted, since two copies of one command may be handled here at once; a copy
    /// counts from before it tries to claim until it is done.)
    running: DashMap<String, usize>,
    stop: watch::Sender<bool>,
    /// Stops taking inbox entries (leaving), while leases are still renewed.
    intake_stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Inbox entries being handled, so a graceful stop can let them finish.
    in_flight: AtomicUsize,
    idle: Notify,
    forwarded: std::sync::atomic::AtomicU64,
    served: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
struct View {
    live: Vec<String>,
    /// The node each shard's lease names, as last read.
    owners: Vec<Option<String>>,
    held: HashMap<u32, Held>,
}

#[derive(Clone, Copy, Debug)]
struct Held {
    epoch: u64,
    /// Past this instant the lease may have lapsed in Redis: stop using it.
    valid_until: Instant,
}

impl Cluster {
    /// Joins the cluster: connects, creates this node's inbox, takes the shards this node
    /// should hold (opening their sessions), and starts the background tasks.
    pub async fn start(
        node_name: &str,
        settings: &Settings,
        store: Arc<dyn Store>,
        sealer: Arc<Sealer>,
        fleet: Fleet,
    ) -> Result<Cluster, StoreError> {
        let node = node_id(node_name);
        let target = parse_target(&settings.store.redis_url)?;
        // Two connections are held for good by the inbox and reply readers.
        let pool = Pool::create(target, settings.store.redis_pool_size.max(4) + 2)?;
        let (stop, _) = watch::channel(false);
        let (intake_stop, _) = watch::channel(false);
        let cluster = Cluster {
            inner: Arc::new(Inner {
                node,
                settings: settings.cluster.clone(),
                fleet_settings: settings.fleet.clone(),
                pool,
                keys: Keys::new(DEFAULT_NAMESPACE),
                fleet,
                store,
                sealer,
                view: RwLock::new(View::default()),
                waiters: DashMap::new(),
                relays: DashMap::new(),
                running: DashMap::new(),
                stop,
                intake_stop,
                tasks: Mutex::new(Vec::new()),
                in_flight: AtomicUsize::new(0),
                idle: Notify::new(),
                forwarded: Default::default(),
                served: Default::default(),
            }),
        };
        inbox::create_group(&cluster.inner).await?;
        ownership::tick(&cluster.inner)
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        tracing::info!(
            cluster.node = %cluster.inner.node,
            shards.held = cluster.view().shards_held,
            nodes.live = cluster.view().live_nodes,
            "joined the cluster"
        );
        let tasks = vec![
            tokio::spawn(ownership::run(cluster.inner.clone())),
            tokio::spawn(ownership::fence(cluster.inner.clone())),
            tokio::spawn(inbox::consume(cluster.inner.clone())),
            tokio::spawn(inbox::read_replies(cluster.inner.clone())),
        ];
        *cluster
            .inner
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = tasks;
        Ok(cluster)
    }

    /// This node's id in the cluster: its name plus a suffix unique to this process.
    pub fn node(&self) -> &str {
        &self.inner.node
    }

    pub fn view(&self) -> ClusterView {
        let view = self.inner.view.read().unwrap_or_else(|e| e.into_inner());
        ClusterView {
            node: self.inner.node.clone(),
            live_nodes: view.live.len(),
            shards_held: view.held.len(),
            shards: self.inner.settings.shards,
            forwarded: self.inner.forwarded.load(Ordering::Relaxed),
            served_for_others: self.inner.served.load(Ordering::Relaxed),
        }
    }

    fn holds(&self, router: RouterId) -> bool {
        self.inner.holds(self.inner.shard(router)).is_some()
    }

    fn owner_of(&self, router: RouterId) -> Option<String> {
        self.inner.owner(self.inner.shard(router))
    }

    async fn notify_owner(&self, router_id: RouterId, reconnect: bool) {
        if let Some(owner) = self.owner_of(router_id) {
            let env = Envelope::Reload {
                router_id,
                reconnect,
            };
            if let Err(e) = self.inner.send_to_inbox(&owner, &env).await {
                // The owner's periodic reconciliation picks the change up.
                tracing::warn!(router.id = router_id, cause = %e, "cannot notify the owner");
            }
        }
    }

    async fn execute(
        &self,
        router_id: RouterId,
        req: RestRequest,
        timeout: Duration,
        key: Option<String>,
        fresh: bool,
    ) -> Result<Value, ExecError> {
        let inner = &self.inner;
        let shard = inner.shard(router_id);
        let deadline = Instant::now() + timeout;
        match inner.locate(shard, deadline).await {
            Some(Place::Here(held)) => {
                inner.ensure_session(router_id).await;
                match key {
                    None => match inner
                        .fleet
                        .run(router_id, req.clone(), timeout, fresh)
                        .await
                    {
                        // Handed over as it arrived: not run here; try where it went.
                        Err(ExecError::NoSession) if Instant::now() < deadline => {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            let left = deadline.saturating_duration_since(Instant::now());
                            Box::pin(self.execute(router_id, req, left, None, fresh)).await
                        }
                        other => other,
                    },
                    Some(key) => {
                        let job = Job {
                            request_id: key,
                            router_id,
                            shard,
                            req,
                            deadline,
                            fresh,
                        };
                        inner.run_recorded(job, held).await.into_result()
                    }
                }
            }
            Some(Place::There(owner)) => {
                self.forward(&owner, router_id, req, timeout, key, fresh)
                    .await
            }
            None => Err(ExecError::Unavailable(
                "no node holds this router's shard right now (a node joined or left); \
                 the command was not run"
                    .into(),
            )),
        }
    }

    async fn forward(
        &self,
        owner: &str,
        router_id: RouterId,
        req: RestRequest,
        timeout: Duration,
        key: Option<String>,
        fresh: bool,
    ) -> Result<Value, ExecError> {
        let inner = &self.inner;
        let request_id = key.unwrap_or_else(random_id);
        let reply_id = random_id();
        let (tx, rx) = oneshot::channel();
        inner.waiters.insert(reply_id.clone(), Waiter::Once(tx));
        let _waiter = WaiterGuard {
            inner,
            id: &reply_id,
        };
        let env = Envelope::Execute(Forwarded {
            request_id: request_id.clone(),
            reply_id: reply_id.clone(),
            router_id,
            request: WireRequest::from(&req),
            timeout_ms: timeout.as_millis() as u64,
            deadline_ms: wall_ms() + timeout.as_millis() as i64,
            reply_to: inner.node.clone(),
            fresh,
        });
        if let Err(e) = inner.send_to_inbox(owner, &env).await {
            // The append may have landed although its answer was lost: make sure the
            // command can never start before saying it did not run.
            let not_run = ExecError::Unavailable(format!(
                "cannot hand the command to node {owner}: {e}; it was not run"
            ));
            return inner.give_up(router_id, &request_id, not_run).await;
        }
        inner.forwarded.fetch_add(1, Ordering::Relaxed);
        // Long enough for the owner to run it, or for a survivor to take a dead owner's
        // inbox over and answer for it.
        let patience = timeout
            + inner.fleet_settings.connect_timeout()
            + inner.settings.lease_ttl() * 2
            + Duration::from_secs(1);
        match tokio::time::timeout(patience, rx).await {
            Ok(Ok(outcome)) => outcome.into_result(),
            _ => {
                let not_run = ExecError::Failed(CommandFailure::Timeout);
                inner.give_up(router_id, &request_id, not_run).await
            }
        }
    }

    /// Asks `owner` to run a streaming command and relay its rows here.
    async fn relay_from(
        &self,
        owner: &str,
        router_id: RouterId,
        req: &RestRequest,
        start_within: Duration,
        lasts: Duration,
    ) -> Result<RowStream, ExecError> {
        let inner = &self.inner;
        let request_id = random_id();
        let (tx, mut rx) = mpsc::channel(RELAY_BUFFER);
        inner.waiters.insert(request_id.clone(), Waiter::Rows(tx));
        let mut remote = RemoteStream {
            rows: mpsc::channel(1).1,
            request_id: request_id.clone(),
            owner: owner.to_string(),
            inner: inner.clone(),
            ended: true,
        };
        let env = Envelope::Stream(StreamStart {
            request_id,
            router_id,
            request: WireRequest::from(req),
            start_within_ms: start_within.as_millis() as u64,
            lasts_ms: lasts.as_millis() as u64,
            reply_to: inner.node.clone(),
        });
        if let Err(e) = inner.send_to_inbox(owner, &env).await {
            // Should the append have landed after all, dropping `remote` cancels it.
            remote.ended = false;
            return Err(ExecError::Unavailable(format!(
                "cannot hand the stream to node {owner}: {e}; it was not started"
            )));
        }
        inner.forwarded.fetch_add(1, Ordering::Relaxed);
        let patience =
            start_within + inner.fleet_settings.connect_timeout() + inner.settings.lease_ttl();
        match tokio::time::timeout(patience, rx.recv()).await {
            Ok(Some(StreamEvent::Started)) => {
                remote.rows = rx;
                remote.ended = false;
                Ok(RowStream::Remote(remote))
            }
            Ok(Some(StreamEvent::Refused(outcome))) => Err(outcome
                .into_result()
                .err()
                .unwrap_or_else(|| ExecError::Unavailable("the stream was refused".into()))),
            _ => {
                // It may still start: make sure it is cancelled.
                remote.ended = false;
                Err(ExecError::Failed(CommandFailure::Timeout))
            }
        }
    }

    /// Leaves the cluster: stops taking commands, lets the ones in hand finish, closes
    /// every session, releases the leases and tells the others this node is gone so they
    /// take its shards over at once.
    pub async fn shutdown(&self) {
        let mut tasks =
            std::mem::take(&mut *self.inner.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        // The first task is the heartbeat (see `start`).
        let ticking = (!tasks.is_empty()).then(|| tasks.remove(0));
        ownership::leave(&self.inner, ticking).await;
        for t in tasks {
            t.abort();
        }
    }
}

/// Drops a waiter however the wait ends.
struct WaiterGuard<'a> {
    inner: &'a Inner,
    id: &'a str,
}

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        self.inner.waiters.remove(self.id);
    }
}

/// Where a shard is held, as [`Inner::locate`] found it.
enum Place {
    Here(Held),
    There(String),
}

/// Counts a copy of a command as in hand on this node while it lives.
struct Attempt<'a> {
    running: &'a DashMap<String, usize>,
    key: &'a str,
}

impl<'a> Attempt<'a> {
    fn new(running: &'a DashMap<String, usize>, key: &'a str) -> Attempt<'a> {
        *running.entry(key.to_string()).or_default() += 1;
        Attempt { running, key }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        self.running.remove_if_mut(self.key, |_, n| {
            *n -= 1;
            *n == 0
        });
    }
}

/// One command to run under an execution record.
struct Job {
    request_id: String,
    router_id: RouterId,
    shard: u32,
    req: RestRequest,
    deadline: Instant,
    fresh: bool,
}

/// Rows a relayed stream may have waiting for its client before the relay gives up on it.
const RELAY_BUFFER: usize = 1024;

impl Inner {
    /// Hands a reply from the reply stream to whoever waits for it.
    fn deliver(&self, reply: Reply) {
        match reply.body {
            ReplyBody::Outcome(outcome) => {
                if let Some((_, Waiter::Once(tx))) = self.waiters.remove(&reply.request_id) {
                    let _ = tx.send(outcome);
                }
            }
            ReplyBody::Stream(event) => {
                let full = match self.waiters.get(&reply.request_id).as_deref() {
                    Some(Waiter::Rows(tx)) => tx.try_send(event).is_err(),
                    _ => false,
                };
                if full {
                    // A client that does not keep up loses its relay (its stream ends with
                    // an error) rather than holding up every other reply.
                    self.waiters.remove(&reply.request_id);
                }
            }
        }
    }

    /// Where `shard` is held: here, or by which other live node. While it changes hands
    /// (no holder yet), waits and looks again until `deadline`; `None` if still nobody.
    async fn locate(&self, shard: u32, deadline: Instant) -> Option<Place> {
        loop {
            if let Some(held) = self.holds(shard) {
                return Some(Place::Here(held));
            }
            if let Some(owner) = self.owner(shard) {
                return Some(Place::There(owner));
            }
            if Instant::now() + Duration::from_millis(100) >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Opens the session of a router in a held shard if it is not open yet: a router added
    /// through another node moments ago, whose notice has not arrived.
    async fn ensure_session(&self, router_id: RouterId) {
        if self.fleet.has_session(router_id) {
            return;
        }
        if let Ok(Some(router)) = self.store.router(router_id).await {
            if self.holds(self.shard(router_id)).is_some() && !self.fleet.has_session(router_id) {
                self.fleet.open_sealed(router, &self.sealer).await;
            }
        }
    }

    fn is_live(&self, node: &str) -> bool {
        let view = self.view.read().unwrap_or_else(|e| e.into_inner());
        view.live.iter().any(|n| n == node)
    }

    fn shard(&self, router: RouterId) -> u32 {
        placement::shard_of(router, self.settings.shards)
    }

    /// The lease this node holds on `shard`, if still valid.
    fn holds(&self, shard: u32) -> Option<Held> {
        let view = self.view.read().unwrap_or_else(|e| e.into_inner());
        view.held
            .get(&shard)
            .copied()
            .filter(|h| h.valid_until > Instant::now())
    }

    /// The live node other than this one whose lease names `shard`.
    fn owner(&self, shard: u32) -> Option<String> {
        let view = self.view.read().unwrap_or_else(|e| e.into_inner());
        view.owners
            .get(shard as usize)
            .cloned()
            .flatten()
            .filter(|n| *n != self.node && view.live.contains(n))
    }

    fn record_keep_ms(&self) -> u64 {
        self.settings.request_record_secs.max(1) * 1000
    }

    async fn conn(&self) -> Result<Conn, StoreError> {
        Ok(self.pool.get().await?)
    }

    async fn send_to_inbox(&self, node: &str, env: &Envelope) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        redis::cmd("XADD")
            .arg(self.keys.inbox(node))
            .arg("*")
            .arg("d")
            .arg(wire::encode(env))
            .query_async::<String>(&mut conn)
            .await?;
        Ok(())
    }

    /// Runs a job under its execution record: at most once, fenced by the lease epoch.
    async fn run_recorded(&self, job: Job, held: Held) -> Outcome {
        let lease_value = format!("{}|{}", self.node, held.epoch);
        let record_key = self.keys.record(job.shard, &job.request_id);
        let _attempt = Attempt::new(&self.running, &record_key);
        let begun = match self.conn().await {
            Ok(mut conn) => records::begin(
                &mut conn,
                &self.keys.lease(job.shard),
                &lease_value,
                &record_key,
                &self.node,
                self.record_keep_ms(),
            )
            .await
            .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match begun {
            Err(e) => {
                // The claim may have landed although its answer was lost: take it back.
                drop(_attempt);
                self.release_claim(&record_key, true).await;
                Outcome::Unavailable(format!(
                    "cannot record the command before running it ({e}); it was not run"
                ))
            }
            Ok(Begin::Fenced) => {
                self.refuse(
                    job.router_id,
                    &job.request_id,
                    job.deadline,
                    "this node's hold on the router ended as the command arrived; it was not run",
                )
                .await
            }
            Ok(Begin::Exists(record)) => {
                drop(_attempt);
                self.settle(&record_key, record, job.deadline).await
            }
            Ok(Begin::Claimed) => {
                let left = job.deadline.saturating_duration_since(Instant::now());
                let result = if left.is_zero() {
                    Err(ExecError::Failed(CommandFailure::Timeout))
                } else {
                    self.fleet
                        .run(job.router_id, job.req, left, job.fresh)
                        .await
                };
                if matches!(result, Err(ExecError::NoSession)) {
                    // Handed over as it arrived: not run; clear the claim so a retry runs.
                    self.release_claim(&record_key, true).await;
                    return Outcome::Unavailable(
                        "the router's session moved to another node as the command arrived; \
                         it was not run"
                            .into(),
                    );
                }
                let outcome = Outcome::from(&result);
                if let Err(e) = self.finish(&record_key, &outcome).await {
                    tracing::warn!(cause = %e, "cannot record a command's outcome");
                    // It ran: its claim must never read as "not run" here, so this copy
                    // stays counted (retries then report the outcome as unknown).
                    std::mem::forget(_attempt);
                }
                outcome
            }
        }
    }

    /// Declines a command: marks its record abandoned so that no copy of it can start
    /// later, and answers `message` (503, not run); if some node already started it, its
    /// outcome is the answer instead.
    async fn refuse(
        &self,
        router_id: RouterId,
        request_id: &str,
        deadline: Instant,
        message: &str,
    ) -> Outcome {
        let key = self.keys.record(self.shard(router_id), request_id);
        let found = match self.conn().await {
            Ok(mut conn) => records::abandon(&mut conn, &key, self.record_keep_ms()).await,
            Err(e) => return Outcome::Unavailable(format!("{message} (store: {e})")),
        };
        match found {
            Ok(None) | Ok(Some(Record::Abandoned)) => Outcome::Unavailable(message.into()),
            Ok(Some(record)) => self.settle(&key, record, deadline).await,
            Err(e) => Outcome::Unreachable(format!(
                "connection lost: the store failed while declining the command ({e}); \
                 whether it ran is unknown"
            )),
        }
    }

    /// Best effort: undo this node's claim on a command it did not run.
    async fn release_claim(&self, record_key: &str, delete: bool) {
        if let Ok(mut conn) = self.conn().await {
            let keep = self.record_keep_ms();
            let _ = records::release(&mut conn, record_key, &self.node, delete, keep).await;
        }
    }

    async fn finish(&self, record_key: &str, outcome: &Outcome) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        redis::cmd("SET")
            .arg(record_key)
            .arg(Record::done(outcome))
            .arg("PX")
            .arg(self.record_keep_ms())
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    /// Turns an existing record into an outcome: the recorded one, or, while another live
    /// node runs it, that node's outcome once recorded (waiting up to the deadline).
    async fn settle(&self, record_key: &str, mut record: Record, deadline: Instant) -> Outcome {
        let patience = deadline + self.settings.lease_ttl();
        loop {
            match record {
                Record::Done(outcome) => return outcome,
                Record::Abandoned => return Outcome::Timeout,
                Record::Running { ref node } => {
                    if *node == self.node && !self.running.contains_key(record_key) {
                        // A claim of this node's that it never acted on (its answer was
                        // lost): the command did not run and never will.
                        // (Unless it finished in between: then its outcome stands.)
                        self.release_claim(record_key, false).await;
                        if let Ok(mut conn) = self.conn().await {
                            if let Ok(Some(Record::Done(outcome))) =
                                records::read(&mut conn, record_key).await
                            {
                                return outcome;
                            }
                        }
                        return Outcome::Unavailable(
                            "an earlier attempt with this key was not run; it will not run".into(),
                        );
                    }
                    let alive = self.is_live(node);
                    if !alive || Instant::now() >= patience {
                        return Outcome::Unreachable(format!(
                            "connection lost: node {node} started this command and stopped \
                             answering; whether the router applied it is unknown"
                        ));
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            record = match self.conn().await {
                Ok(mut conn) => match records::read(&mut conn, record_key).await {
                    Ok(Some(r)) => r,
                    Ok(None) => return Outcome::Unavailable("the command's record expired".into()),
                    Err(_) => continue_running(&record),
                },
                Err(_) => continue_running(&record),
            };
        }
    }

    /// The asker's last word on a forwarded command that got no reply in time: mark it
    /// abandoned so it can never start, or learn what became of it.
    ///
    /// `not_run` is the answer when the abandon succeeds: the command will never run.
    async fn give_up(
        &self,
        router_id: RouterId,
        request_id: &str,
        not_run: ExecError,
    ) -> Result<Value, ExecError> {
        let key = self.keys.record(self.shard(router_id), request_id);
        let found = match self.conn().await {
            Ok(mut conn) => records::abandon(&mut conn, &key, self.record_keep_ms()).await,
            Err(e) => {
                return Err(ExecError::Failed(CommandFailure::Unreachable {
                    message: format!(
                        "connection lost: no answer from the owning node and the store is \
                         unreachable ({e}); whether the router applied it is unknown"
                    ),
                }))
            }
        };
        match found {
            Ok(None) => Err(not_run),
            Ok(Some(Record::Done(outcome))) => outcome.into_result(),
            Ok(Some(Record::Abandoned)) => Err(ExecError::Failed(CommandFailure::Timeout)),
            Ok(Some(Record::Running { node })) => {
                Err(ExecError::Failed(CommandFailure::Unreachable {
                    message: format!(
                        "connection lost: node {node} started the command and did not \
                         answer in time; whether the router applied it is unknown"
                    ),
                }))
            }
            Err(e) => Err(ExecError::Failed(CommandFailure::Unreachable {
                message: format!(
                    "connection lost: no answer from the owning node and the store failed \
                     ({e}); whether the router applied it is unknown"
                ),
            })),
        }
    }
}

fn continue_running(record: &Record) -> Record {
    match record {
        Record::Running { node } => Record::Running { node: node.clone() },
        _ => Record::Abandoned,
    }
}

/// `<name>-<8 hex>`: the name made safe for keys, and a suffix unique to this process, so
/// a restarted node is a new member and never mistaken for its dead predecessor.
fn node_id(name: &str) -> String {
    let safe: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(48)
        .collect();
    let safe = if safe.is_empty() { "node".into() } else { safe };
    let suffix: u32 = rand::random();
    format!("{safe}-{suffix:08x}")
}

fn random_id() -> String {
    let n: u128 = rand::random();
    format!("{n:032x}")
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
