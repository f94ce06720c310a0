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

mod dispatch;
mod execution;
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
use crate::fleet::{ExecError, Fleet};
use crate::routeros::request::{CommandFailure, RestRequest};
use crate::store::redis::connection::{parse_target, Conn, Pool};
use crate::store::redis::DEFAULT_NAMESPACE;
use crate::store::seal::Sealer;
use crate::store::{RouterId, Store, StoreError};

pub use dispatch::{Dispatch, RemoteStream, RowStream, StreamItem};
use execution::Job;
use keys::Keys;
use wire::{Envelope, Forwarded, Outcome, Reply, ReplyBody, StreamEvent, WireRequest};

/// How a request waits for another node's answer.
enum Waiter {
    Once(oneshot::Sender<Outcome>),
    Rows(mpsc::Sender<StreamEvent>),
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
