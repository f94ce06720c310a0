//! Membership and shard leases: the heartbeat tick, the self-fencing watch, and leaving.
//!
//! Every `heartbeat_ms` a node (1) heartbeats and reads who is alive, (2) renews the
//! leases it holds and takes the free ones rendezvous hashing gives it, (3) hands over the
//! shards it should no longer hold (sessions closed first, then the lease released), (4)
//! opens sessions for shards it gained, (5) publishes the status of its routers and (6)
//! rescues the inboxes of dead nodes. A separate watch closes the sessions of any shard
//! whose lease could not be renewed in time.

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use redis::Script;

use super::{inbox, placement, Held, Inner};
use crate::store::redis::RedisError;
use crate::store::{RouterId, StoreError};

/// Heartbeat (or, with `leaving`, mark this node gone) and read the membership:
/// `{now_ms, live ids, dead ids}` by Redis server time.
static HEARTBEAT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local t = redis.call('TIME')
          local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
          if ARGV[3] == 'leaving' then
            redis.call('ZADD', KEYS[1], 0, ARGV[1])
          else
            redis.call('ZADD', KEYS[1], now, ARGV[1])
          end
          local cutoff = now - tonumber(ARGV[2])
          return {now, redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. cutoff, '+inf'),
                  redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cutoff, 'WITHSCORES')}",
    )
});

/// Hold (renew or take) or release one shard's lease. Hold answers the epoch held, or -1
/// when another node holds it; release answers 0.
const LEASE: &str = r"local cur = redis.call('GET', KEYS[1])
local prefix = ARGV[1] .. '|'
local mine = cur and string.sub(cur, 1, string.len(prefix)) == prefix
if ARGV[3] == 'release' then
  if mine then redis.call('DEL', KEYS[1]) end
  return 0
end
if mine then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return tonumber(string.sub(cur, string.len(prefix) + 1))
end
if cur then return -1 end
local e = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], prefix .. e, 'PX', ARGV[2])
return e";

/// How long a dead node's entry (and its streams) is kept for rescue before removal.
const FORGET_DEAD_MS: i64 = 10 * 60 * 1000;

/// Runs ticks until the node stops. A failed tick (Redis down) is logged once per outage;
/// the fence task keeps the sessions honest meanwhile.
pub(super) async fn run(inner: Arc<Inner>) {
    let mut stop = inner.stop.subscribe();
    let mut interval = tokio::time::interval(inner.settings.heartbeat());
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    let mut round: u64 = 0;
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        round += 1;
        let limit = inner.settings.lease_ttl();
        match tokio::time::timeout(limit, tick(&inner)).await {
            Ok(Ok(())) => {
                if failing {
                    tracing::info!("cluster store reachable again");
                    failing = false;
                }
            }
            Ok(Err(e)) => {
                if !failing {
                    tracing::warn!(cause = %e, "cluster heartbeat failed; retrying");
                    failing = true;
                }
            }
            Err(_) => {
                if !failing {
                    tracing::warn!("cluster heartbeat timed out; retrying");
                    failing = true;
                }
            }
        }
        // Every ~10 s: make the sessions match the stored routers of the held shards,
        // catching changes whose notification was lost.
        let every = (10_000 / inner.settings.heartbeat_ms.max(1)).max(1);
        if !failing && round % every == 0 {
            if let Err(e) = reconcile(&inner, None).await {
                tracing::debug!(cause = %e, "reconcile failed");
            }
        }
    }
}

/// Closes the sessions of shards whose lease may have lapsed, without waiting for Redis.
pub(super) async fn fence(inner: Arc<Inner>) {
    let mut stop = inner.stop.subscribe();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let now = Instant::now();
        let lapsed: Vec<u32> = {
            let mut view = inner.view.write().unwrap_or_else(|e| e.into_inner());
            let lapsed: Vec<u32> = view
                .held
                .iter()
                .filter(|(_, h)| h.valid_until <= now)
                .map(|(s, _)| *s)
                .collect();
            for s in &lapsed {
                view.held.remove(s);
            }
            lapsed
        };
        if !lapsed.is_empty() {
            tracing::warn!(
                shards = lapsed.len(),
                "shard leases could not be renewed in time; closing their sessions"
            );
            close_shards(&inner, &lapsed.into_iter().collect()).await;
        }
    }
}

/// One heartbeat round; see the module doc.
pub(super) async fn tick(inner: &Arc<Inner>) -> Result<(), RedisError> {
    let sent = Instant::now();
    let mut conn = inner.pool.get().await?;
    let ttl = inner.settings.lease_ttl_ms;
    let (now_ms, mut live, dead): (i64, Vec<String>, Vec<String>) = HEARTBEAT
        .key(inner.keys.nodes())
        .arg(&inner.node)
        .arg(ttl)
        .arg("alive")
        .invoke_async(&mut conn)
        .await?;
    if !live.contains(&inner.node) {
        live.push(inner.node.clone());
    }
    live.sort();
    let shards = inner.settings.shards;
    let desired: BTreeSet<u32> = placement::desired(&inner.node, &live, shards)
        .into_iter()
        .collect();
    let held_before: BTreeSet<u32> = {
        let view = inner.view.read().unwrap_or_else(|e| e.into_inner());
        view.held.keys().copied().collect()
    };
    let to_hold: Vec<u32> = desired.union(&held_before).copied().collect();

    let mut cmds: Vec<redis::Cmd> = to_hold
        .iter()
        .map(|&s| lease_cmd(inner, s, "hold"))
        .collect();
    for s in 0..shards {
        let mut get = redis::cmd("GET");
        get.arg(inner.keys.lease(s));
        cmds.push(get);
    }
    let replies = conn.run_each(&cmds).await?;
    drop(conn);
    let (holds, leases) = replies.split_at(to_hold.len().min(replies.len()));
    let valid_until = sent + inner.settings.lease_ttl() - inner.settings.heartbeat() * 2;

    let mut gained = HashSet::new();
    let mut lost = HashSet::new();
    {
        let mut view = inner.view.write().unwrap_or_else(|e| e.into_inner());
        for (&s, reply) in to_hold.iter().zip(holds) {
            match int(reply) {
                Some(epoch) if epoch > 0 => {
                    let epoch = epoch as u64;
                    let same = view.held.get(&s).is_some_and(|h| h.epoch == epoch);
                    if !same {
                        if view.held.contains_key(&s) {
                            // Held before under another epoch: the lease lapsed in between
                            // and sessions must restart under the new one.
                            lost.insert(s);
                        }
                        gained.insert(s);
                    }
                    view.held.insert(s, Held { epoch, valid_until });
                }
                _ => {
                    if view.held.remove(&s).is_some() {
                        lost.insert(s);
                    }
                }
            }
        }
        view.owners = leases
            .iter()
            .map(|v| match v {
                redis::Value::BulkString(b) => String::from_utf8_lossy(b)
                    .split('|')
                    .next()
                    .map(str::to_owned),
                _ => None,
            })
            .collect();
        view.live = live;
    }
    if !lost.is_empty() {
        close_shards(inner, &lost).await;
    }

    // Hand over what another live node should hold: close, then release.
    let surplus: Vec<u32> = held_before
        .iter()
        .chain(gained.iter())
        .copied()
        .filter(|s| !desired.contains(s))
        .collect::<BTreeSet<u32>>()
        .into_iter()
        .collect();
    if !surplus.is_empty() {
        {
            let mut view = inner.view.write().unwrap_or_else(|e| e.into_inner());
            for s in &surplus {
                view.held.remove(s);
            }
        }
        close_shards(inner, &surplus.iter().copied().collect()).await;
        let mut conn = inner.pool.get().await?;
        let cmds: Vec<redis::Cmd> = surplus
            .iter()
            .map(|&s| lease_cmd(inner, s, "release"))
            .collect();
        conn.run_each(&cmds).await?;
        tracing::info!(shards = surplus.len(), "handed shards over");
    }
    let gained: HashSet<u32> = gained.into_iter().filter(|s| desired.contains(s)).collect();
    if !gained.is_empty() {
        tracing::info!(shards = gained.len(), "took shards");
        reconcile(inner, Some(&gained))
            .await
            .map_err(|e| RedisError::PoolExhausted(e.to_string()))?;
    }
    publish_status(inner).await;
    inbox::rescue_dead(inner, now_ms, &dead).await;
    Ok(())
}

fn lease_cmd(inner: &Inner, shard: u32, mode: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(LEASE)
        .arg(2)
        .arg(inner.keys.lease(shard))
        .arg(inner.keys.epoch(shard))
        .arg(&inner.node)
        .arg(inner.settings.lease_ttl_ms)
        .arg(mode);
    cmd
}

fn int(v: &redis::Value) -> Option<i64> {
    match v {
        redis::Value::Int(i) => Some(*i),
        _ => None,
    }
}

/// Makes the local sessions match the stored routers: open the missing ones of `only`
/// (or of every held shard), close those of shards not held or routers deleted.
async fn reconcile(inner: &Inner, only: Option<&HashSet<u32>>) -> Result<(), StoreError> {
    let routers = inner.store.all_routers().await?;
    let stored: HashSet<RouterId> = routers.iter().map(|r| r.id).collect();
    let mut to_open = Vec::new();
    for r in routers {
        let shard = inner.shard(r.id);
        let wanted = only.is_none_or(|o| o.contains(&shard));
        if wanted && inner.holds(shard).is_some() && !inner.fleet.has_session(r.id) {
            to_open.push(r);
        }
    }
    let opened = to_open.len();
    futures::stream::iter(to_open)
        .for_each_concurrent(64, |r| inner.fleet.open_sealed(r, &inner.sealer))
        .await;
    if only.is_none() {
        let stray: Vec<RouterId> = inner
            .fleet
            .router_ids()
            .into_iter()
            .filter(|id| !stored.contains(id) || inner.holds(inner.shard(*id)).is_none())
            .collect();
        for id in stray {
            inner.fleet.close(id).await;
        }
    }
    if opened > 0 {
        tracing::info!(sessions = opened, "opened sessions for held shards");
    }
    Ok(())
}

/// Closes the local sessions of routers in `shards`.
async fn close_shards(inner: &Inner, shards: &HashSet<u32>) {
    let ids: Vec<RouterId> = inner
        .fleet
        .router_ids()
        .into_iter()
        .filter(|id| shards.contains(&inner.shard(*id)))
        .collect();
    futures::stream::iter(ids)
        .for_each_concurrent(64, |id| inner.fleet.close(id))
        .await;
}

/// Writes the status of local sessions whose status changed since last published, so that
/// other nodes show it in router listings.
async fn publish_status(inner: &Inner) {
    let changed = inner.fleet.take_changed_statuses();
    if changed.is_empty() {
        return;
    }
    futures::stream::iter(changed)
        .for_each_concurrent(32, |(id, status)| async move {
            if inner.store.set_router_status(id, status).await.is_err() {
                inner.fleet.mark_status_unpublished(id);
            }
        })
        .await;
}

/// Stops taking work and leaves: inbox handlers finish (bounded), sessions close, leases
/// are released and the node is marked gone, so the others take over on their next tick.
pub(super) async fn leave(inner: &Inner) {
    let _ = inner.stop.send(true);
    let drained = async {
        while inner.in_flight.load(Ordering::SeqCst) > 0 {
            inner.idle.notified().await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), drained).await;
    let held: Vec<u32> = {
        let mut view = inner.view.write().unwrap_or_else(|e| e.into_inner());
        view.held.drain().map(|(s, _)| s).collect()
    };
    inner.fleet.shutdown().await;
    let released = async {
        let mut conn = inner.pool.get().await?;
        let cmds: Vec<redis::Cmd> = held
            .iter()
            .map(|&s| lease_cmd(inner, s, "release"))
            .collect();
        conn.run_each(&cmds).await?;
        HEARTBEAT
            .key(inner.keys.nodes())
            .arg(&inner.node)
            .arg(inner.settings.lease_ttl_ms)
            .arg("leaving")
            .invoke_async::<redis::Value>(&mut conn)
            .await?;
        Ok::<(), RedisError>(())
    };
    match tokio::time::timeout(Duration::from_secs(3), released).await {
        Ok(Ok(())) => tracing::info!(shards = held.len(), "left the cluster"),
        _ => tracing::warn!("could not release leases on leaving; they lapse on their own"),
    }
}

/// Removes the traces of nodes dead for long: their membership entry and empty streams.
pub(super) async fn forget(inner: &Inner, now_ms: i64, node: &str, last_seen_ms: i64) {
    if now_ms - last_seen_ms < FORGET_DEAD_MS {
        return;
    }
    let Ok(mut conn) = inner.pool.get().await else {
        return;
    };
    let pending: i64 = redis::cmd("XLEN")
        .arg(inner.keys.inbox(node))
        .query_async(&mut conn)
        .await
        .unwrap_or(1);
    if pending == 0 {
        let _ = redis::cmd("DEL")
            .arg(inner.keys.inbox(node))
            .query_async::<()>(&mut conn)
            .await;
        let _ = redis::cmd("DEL")
            .arg(inner.keys.replies(node))
            .query_async::<()>(&mut conn)
            .await;
        let _ = redis::cmd("ZREM")
            .arg(inner.keys.nodes())
            .arg(node)
            .query_async::<()>(&mut conn)
            .await;
    }
}
