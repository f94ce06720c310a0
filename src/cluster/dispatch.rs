//! [`Dispatch`]: how the API reaches a router, on this node or through the cluster, and
//! the streams of rows that come back ([`RowStream`]).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use serde_json::Value;
use tokio::sync::mpsc;

use super::wire::{Envelope, Outcome, StreamEvent, StreamStart, WireRequest};
use super::{random_id, Cluster, Inner, Place, Waiter};
use crate::fleet::{connection_verdict, probe_request, CommandStream, ExecError, Fleet};
use crate::routeros::request::{command_for_post, record, CommandFailure, RestRequest};
use crate::routeros::ClientError;
use crate::store::{Router, RouterId, RouterStatus};

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
        let outcome = entry
            .outcome
            .get_or_try_init(|| async {
                let outcome = Outcome::from(&self.fleet.execute(router.id, req, timeout).await);
                // Not sent: not remembered, so a retry tries again.
                if outcome.never_sent() {
                    Err(outcome)
                } else {
                    Ok(outcome)
                }
            })
            .await;
        match outcome {
            Ok(recorded) => recorded.clone(),
            Err(not_sent) => not_sent,
        }
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
    pub(super) rows: mpsc::Receiver<StreamEvent>,
    pub(super) request_id: String,
    pub(super) owner: String,
    pub(super) inner: Arc<Inner>,
    pub(super) ended: bool,
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

/// Rows a relayed stream may have waiting for its client before the relay gives up on it.
const RELAY_BUFFER: usize = 1024;

impl Cluster {
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
}
