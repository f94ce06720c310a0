//! The streams between nodes: this node's inbox (commands to run for others), its reply
//! stream (outcomes of commands it forwarded), and the rescue of dead nodes' inboxes.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};

use super::keys::GROUP;
use super::wire::{self, Envelope, Forwarded, Outcome, Reply, ReplyBody, StreamEvent, StreamStart};
use super::{ownership, Inner, Job, Place};
use crate::store::StoreError;

/// How long a stream read waits for entries: below the Redis client's 500 ms response
/// timeout, so that a quiet stream is not mistaken for a dead connection.
const BLOCK_MS: u64 = 300;

/// Creates this node's inbox and its consumer group (idempotent).
pub(super) async fn create_group(inner: &Inner) -> Result<(), StoreError> {
    ensure_group(inner, &inner.keys.inbox(&inner.node)).await
}

async fn ensure_group(inner: &Inner, stream: &str) -> Result<(), StoreError> {
    let mut conn = inner.conn().await?;
    let made: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg(GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(&mut conn)
        .await;
    match made {
        Err(e) if e.code() != Some("BUSYGROUP") => Err(e.into()),
        _ => Ok(()),
    }
}

/// Reads this node's inbox until the node stops. After a Redis outage it first re-reads
/// its own pending entries (delivered but not acknowledged), then new ones.
pub(super) async fn consume(inner: Arc<Inner>) {
    let stream = inner.keys.inbox(&inner.node);
    let mut stop = inner.stop.subscribe();
    let mut from_start = true;
    loop {
        if *stop.borrow() {
            return;
        }
        let read = async {
            let mut conn = inner.conn().await?;
            let id = if from_start { "0" } else { ">" };
            let reply: Option<StreamReadReply> = redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg(GROUP)
                .arg(&inner.node)
                .arg("COUNT")
                .arg(256)
                .arg("BLOCK")
                .arg(if from_start { 1 } else { BLOCK_MS })
                .arg("STREAMS")
                .arg(&stream)
                .arg(id)
                .query_async(&mut conn)
                .await?;
            Ok::<_, StoreError>(entries(reply))
        };
        let entries = tokio::select! {
            r = read => r,
            _ = stop.wait_for(|s| *s) => return,
        };
        match entries {
            Ok(entries) => {
                // Own pending entries are read once; then only new ones.
                if from_start && entries.is_empty() {
                    from_start = false;
                }
                for entry in entries {
                    spawn_handler(&inner, stream.clone(), entry);
                }
                if from_start {
                    // Let the handlers acknowledge before the pending list is read again.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            Err(e) => {
                tracing::debug!(cause = %e, "inbox read failed; retrying");
                from_start = true;
                tokio::time::sleep(Duration::from_millis(500)).await;
                let _ = ensure_group(&inner, &stream).await;
            }
        }
    }
}

fn entries(reply: Option<StreamReadReply>) -> Vec<StreamId> {
    reply
        .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
        .unwrap_or_default()
}

/// Handles one entry on its own task, counted so that leaving can wait for it.
fn spawn_handler(inner: &Arc<Inner>, stream: String, entry: StreamId) {
    inner.in_flight.fetch_add(1, Ordering::SeqCst);
    let inner = inner.clone();
    tokio::spawn(async move {
        handle(&inner, &stream, entry).await;
        if inner.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            inner.idle.notify_waiters();
        }
    });
}

async fn handle(inner: &Inner, stream: &str, entry: StreamId) {
    let bytes: Option<Vec<u8>> = entry
        .map
        .get("d")
        .and_then(|v| redis::from_redis_value(v.clone()).ok());
    let env = match bytes.as_deref().map(wire::decode::<Envelope>) {
        Some(Ok(env)) => env,
        _ => {
            tracing::warn!(entry = %entry.id, "dropping an inbox entry that does not decode");
            ack(inner, stream, &entry.id, None).await;
            return;
        }
    };
    match env {
        Envelope::Reload {
            router_id,
            reconnect,
        } => {
            reload(inner, router_id, reconnect).await;
            ack(inner, stream, &entry.id, None).await;
        }
        Envelope::Execute(f) => execute(inner, stream, &entry.id, f).await,
        Envelope::Stream(start) => relay(inner, stream, &entry.id, start).await,
        Envelope::Cancel { request_id } => {
            if let Some((_, cancel)) = inner.relays.remove(&request_id) {
                let _ = cancel.send(());
            }
            ack(inner, stream, &entry.id, None).await;
        }
    }
}

/// Runs a long-running command for another node and relays its rows to that node's reply
/// stream until it ends, the asker cancels or leaves, or its time is up. The entry is
/// acknowledged as soon as the command is started or refused: a stream is not re-run
/// after a failure, its asker sees an `Error` event or a timeout instead.
async fn relay(inner: &Inner, stream: &str, entry_id: &str, start: StreamStart) {
    let shard = inner.shard(start.router_id);
    if inner.holds(shard).is_none() {
        if let Some(owner) = inner.owner(shard) {
            let env = Envelope::Stream(start);
            if inner.send_to_inbox(&owner, &env).await.is_ok() {
                ack(inner, stream, entry_id, None).await;
            }
            return;
        }
    }
    let StreamStart {
        request_id,
        router_id,
        request,
        start_within_ms,
        lasts_ms,
        reply_to,
    } = start;
    let send = |event: StreamEvent| {
        let reply = Reply {
            request_id: request_id.clone(),
            body: ReplyBody::Stream(event),
        };
        let to = reply_to.clone();
        async move { inner.send_reply(&to, &reply).await }
    };
    if inner.holds(shard).is_none() {
        let _ = send(StreamEvent::Refused(Outcome::Unavailable(
            "no node holds this router's shard right now; the stream was not started".into(),
        )))
        .await;
        ack(inner, stream, entry_id, None).await;
        return;
    }
    ack(inner, stream, entry_id, None).await;
    inner.ensure_session(router_id).await;
    let req = match request.into_request() {
        Ok(req) => req,
        Err(e) => {
            let _ = send(StreamEvent::Refused(Outcome::Unavailable(e))).await;
            return;
        }
    };
    let started = inner
        .fleet
        .stream(
            router_id,
            crate::routeros::request::command_for_post(&req),
            Duration::from_millis(start_within_ms),
        )
        .await;
    let mut rows = match started {
        Ok(rows) => rows,
        Err(e) => {
            let _ = send(StreamEvent::Refused(Outcome::from(&Err(e)))).await;
            return;
        }
    };
    inner.served.fetch_add(1, Ordering::Relaxed);
    let (cancel_tx, mut cancelled) = tokio::sync::oneshot::channel();
    inner.relays.insert(request_id.clone(), cancel_tx);
    let deadline = tokio::time::Instant::now() + Duration::from_millis(lasts_ms);
    let mut watch_asker = tokio::time::interval(inner.settings.heartbeat());
    if send(StreamEvent::Started).await.is_ok() {
        loop {
            let event = tokio::select! {
                row = rows.next() => match row {
                    Some(Ok(attrs)) => StreamEvent::Row(
                        crate::routeros::request::record(&attrs, false).to_string(),
                    ),
                    None => StreamEvent::Done,
                    Some(Err(crate::routeros::ClientError::Trap { message, category })) => {
                        StreamEvent::Trap { message, category }
                    }
                    Some(Err(e)) => StreamEvent::Error(e.to_string()),
                },
                _ = &mut cancelled => break,
                _ = tokio::time::sleep_until(deadline) => break,
                _ = watch_asker.tick() => {
                    if inner.is_live(&reply_to) {
                        continue;
                    }
                    break;
                }
            };
            let last = !matches!(event, StreamEvent::Row(_));
            if send(event).await.is_err() || last {
                break;
            }
        }
    }
    inner.relays.remove(&request_id);
    // Dropping `rows` cancels the command on the router.
}

async fn reload(inner: &Inner, router_id: u64, reconnect: bool) {
    if inner.holds(inner.shard(router_id)).is_none() {
        return;
    }
    match inner.store.router(router_id).await {
        Ok(None) => inner.fleet.close(router_id).await,
        Ok(Some(router)) => {
            let has = inner.fleet.has_session(router_id);
            if has && reconnect {
                inner.fleet.close(router_id).await;
            }
            if !has || reconnect {
                inner.fleet.open_sealed(router, &inner.sealer).await;
            }
        }
        // The periodic reconciliation catches up.
        Err(e) => tracing::warn!(router.id = router_id, cause = %e, "reload failed"),
    }
}

/// Runs a forwarded command if this node holds its shard, else passes it on to the node
/// that does (or answers that nobody does once its deadline is near).
async fn execute(inner: &Inner, stream: &str, entry_id: &str, f: Forwarded) {
    let shard = inner.shard(f.router_id);
    let now_wall = super::wall_ms();
    let left = Duration::from_millis(f.deadline_ms.saturating_sub(now_wall).max(0) as u64);
    let deadline = Instant::now() + left;
    let outcome = match inner.locate(shard, deadline).await {
        Some(Place::Here(held)) => {
            inner.ensure_session(f.router_id).await;
            match f.request.into_request() {
                Ok(req) => {
                    let job = Job {
                        request_id: f.request_id.clone(),
                        router_id: f.router_id,
                        shard,
                        req,
                        deadline,
                        fresh: f.fresh,
                    };
                    inner.served.fetch_add(1, Ordering::Relaxed);
                    inner.run_recorded(job, held).await
                }
                Err(e) => Outcome::Unavailable(e),
            }
        }
        Some(Place::There(owner)) => {
            // Pass it on before acknowledging: should this node die in between, the copy
            // left here is rescued, and the execution record keeps the two from both
            // running.
            let env = Envelope::Execute(f);
            if inner.send_to_inbox(&owner, &env).await.is_ok() {
                ack(inner, stream, entry_id, None).await;
            }
            return;
        }
        None => {
            inner
                .refuse(
                    f.router_id,
                    &f.request_id,
                    deadline,
                    "no node holds this router's shard right now; the command was not run",
                )
                .await
        }
    };
    let reply = Reply {
        request_id: f.request_id,
        body: ReplyBody::Outcome(outcome),
    };
    ack(inner, stream, entry_id, Some((&f.reply_to, &reply))).await;
}

/// Sends the reply (if any) and acknowledges and deletes the entry (one round trip on a
/// single server).
/// Should that fail, the entry stays pending and is handled again; its execution record
/// then yields the recorded outcome.
async fn ack(inner: &Inner, stream: &str, entry_id: &str, reply: Option<(&str, &Reply)>) {
    let result = async {
        let mut conn = inner.conn().await?;
        let mut cmds = Vec::with_capacity(3);
        if let Some((to, reply)) = reply {
            cmds.push(reply_cmd(inner, to, reply));
        }
        let mut xack = redis::cmd("XACK");
        xack.arg(stream).arg(GROUP).arg(entry_id);
        cmds.push(xack);
        let mut xdel = redis::cmd("XDEL");
        xdel.arg(stream).arg(entry_id);
        cmds.push(xdel);
        conn.run_each(&cmds).await?;
        Ok::<(), StoreError>(())
    };
    if let Err(e) = result.await {
        tracing::warn!(entry = entry_id, cause = %e, "cannot acknowledge an inbox entry");
    }
}

fn reply_cmd(inner: &Inner, to: &str, reply: &Reply) -> redis::Cmd {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(inner.keys.replies(to))
        .arg("MAXLEN")
        .arg("~")
        .arg(100_000)
        .arg("*")
        .arg("d")
        .arg(wire::encode(reply));
    cmd
}

impl Inner {
    pub(super) async fn send_reply(&self, to: &str, reply: &Reply) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        reply_cmd(self, to, reply)
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }
}

/// Reads this node's reply stream and hands each outcome to the request waiting for it.
pub(super) async fn read_replies(inner: Arc<Inner>) {
    let stream = inner.keys.replies(&inner.node);
    let mut stop = inner.stop.subscribe();
    let mut last = "0-0".to_string();
    loop {
        let read = async {
            let mut conn = inner.conn().await?;
            let reply: Option<StreamReadReply> = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(512)
                .arg("BLOCK")
                .arg(BLOCK_MS)
                .arg("STREAMS")
                .arg(&stream)
                .arg(&last)
                .query_async(&mut conn)
                .await?;
            let got = entries(reply);
            if !got.is_empty() {
                let mut del = redis::cmd("XDEL");
                del.arg(&stream);
                for e in &got {
                    del.arg(&e.id);
                }
                del.query_async::<()>(&mut conn).await?;
            }
            Ok::<_, StoreError>(got)
        };
        let got = tokio::select! {
            r = read => r,
            _ = stop.wait_for(|s| *s) => return,
        };
        match got {
            Ok(got) => {
                for entry in got {
                    last = entry.id.clone();
                    let bytes: Option<Vec<u8>> = entry
                        .map
                        .get("d")
                        .and_then(|v| redis::from_redis_value(v.clone()).ok());
                    if let Some(Ok(reply)) = bytes.as_deref().map(wire::decode::<Reply>) {
                        inner.deliver(reply);
                    }
                }
            }
            Err(e) => {
                tracing::debug!(cause = %e, "reply read failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// Takes over the inbox entries of dead nodes: those delivered to the dead consumer but
/// never acknowledged, and those never delivered. Each is handled as if it had arrived
/// here: run if this node holds the router, else passed on to the owner.
pub(super) async fn rescue_dead(inner: &Arc<Inner>, now_ms: i64, dead: &[String]) {
    for pair in dead.chunks(2) {
        let [node, score] = pair else { continue };
        if *node == inner.node {
            continue;
        }
        let last_seen: i64 = score.parse::<f64>().map(|s| s as i64).unwrap_or(0);
        let stream = inner.keys.inbox(node);
        let claimed = async {
            let mut conn = inner.conn().await?;
            let mut found: Vec<StreamId> = Vec::new();
            let pending: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
                .arg(&stream)
                .arg(GROUP)
                .arg(&inner.node)
                .arg(inner.settings.lease_ttl_ms)
                .arg("0-0")
                .arg("COUNT")
                .arg(256)
                .query_async(&mut conn)
                .await
                .unwrap_or_default();
            found.extend(pending.claimed);
            let fresh: Option<StreamReadReply> = redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg(GROUP)
                .arg(&inner.node)
                .arg("COUNT")
                .arg(256)
                .arg("STREAMS")
                .arg(&stream)
                .arg(">")
                .query_async(&mut conn)
                .await
                .unwrap_or(None);
            found.extend(entries(fresh));
            Ok::<_, StoreError>(found)
        };
        match claimed.await {
            Ok(found) if !found.is_empty() => {
                tracing::info!(
                    dead.node = %node,
                    entries = found.len(),
                    "taking over a dead node's inbox entries"
                );
                for entry in found {
                    spawn_handler(inner, stream.clone(), entry);
                }
            }
            Ok(_) => ownership::forget(inner, now_ms, node, last_seen).await,
            Err(_) => {}
        }
    }
}
