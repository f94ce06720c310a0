//! `FleetSupervisor`: spawns one linked `RouterSession` per router, knows each by router
//! id, and restarts a session that fails with exponential backoff plus jitter. It also
//! runs the fleet's one keepalive sweep, which probes the sessions that have been quiet.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tokio::sync::Semaphore;

use super::session::{backoff, RouterSession, SessionMsg, SessionSpec};
use super::status::LiveStatus;
use crate::config::FleetSettings;
use crate::store::RouterId;

/// What the API needs to reach a session without asking the supervisor.
#[derive(Clone)]
pub struct SessionHandle {
    pub actor: ActorRef<SessionMsg>,
    /// Commands waiting or in flight; a full backlog answers 503.
    pub backlog: Arc<Semaphore>,
    pub status: Arc<LiveStatus>,
}

pub enum SupervisorMsg {
    Open {
        spec: SessionSpec,
        backlog: Arc<Semaphore>,
        reply: RpcReplyPort<()>,
    },
    Close {
        router_id: RouterId,
        reply: RpcReplyPort<()>,
    },
    Respawn {
        router_id: RouterId,
    },
    /// Close every session for good: the node is stopping.
    Shutdown {
        reply: RpcReplyPort<()>,
    },
}

struct Entry {
    spec: SessionSpec,
    backlog: Arc<Semaphore>,
    actor: Option<ActorId>,
    restarts: u32,
}

pub struct SupervisorState {
    sessions: Arc<DashMap<RouterId, SessionHandle>>,
    entries: HashMap<RouterId, Entry>,
    by_actor: HashMap<ActorId, RouterId>,
    keepalive: tokio::task::JoinHandle<()>,
}

pub struct SupervisorArgs {
    pub sessions: Arc<DashMap<RouterId, SessionHandle>>,
    pub settings: FleetSettings,
}

pub struct FleetSupervisor;

impl Actor for FleetSupervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        args: SupervisorArgs,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        let keepalive = tokio::spawn(keepalive_sweep(args.sessions.clone(), args.settings));
        Ok(SupervisorState {
            sessions: args.sessions,
            entries: HashMap::new(),
            by_actor: HashMap::new(),
            keepalive,
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        state.keepalive.abort();
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        msg: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::Open {
                spec,
                backlog,
                reply,
            } => {
                let router_id = spec.router_id;
                // The old session's connection closes before the new one opens.
                if let Some(old) = stop_session(state, router_id) {
                    let _ = old.wait(Some(std::time::Duration::from_secs(5))).await;
                }
                state.entries.insert(
                    router_id,
                    Entry {
                        spec,
                        backlog,
                        actor: None,
                        restarts: 0,
                    },
                );
                spawn_session(&myself, state, router_id).await;
                let _ = reply.send(());
            }
            SupervisorMsg::Close { router_id, reply } => {
                let stopping: Vec<_> = stop_session(state, router_id).into_iter().collect();
                answer_when_stopped(stopping, reply);
            }
            SupervisorMsg::Shutdown { reply } => {
                let ids: Vec<RouterId> = state.entries.keys().copied().collect();
                let stopping = ids
                    .into_iter()
                    .filter_map(|id| stop_session(state, id))
                    .collect();
                answer_when_stopped(stopping, reply);
            }
            SupervisorMsg::Respawn { router_id } => {
                if state
                    .entries
                    .get(&router_id)
                    .is_some_and(|e| e.actor.is_none())
                {
                    spawn_session(&myself, state, router_id).await;
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, why) = match event {
            SupervisionEvent::ActorFailed(cell, err) => (cell, err.to_string()),
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell, reason.unwrap_or_else(|| "stopped".into()))
            }
            _ => return Ok(()),
        };
        let Some(router_id) = state.by_actor.remove(&cell.get_id()) else {
            return Ok(());
        };
        let Some(entry) = state.entries.get_mut(&router_id) else {
            return Ok(());
        };
        if entry.actor != Some(cell.get_id()) {
            return Ok(());
        }
        entry.actor = None;
        // The next actor connects anew; the failed one's connection must not be probed.
        entry.spec.status.clear_link();
        entry.restarts += 1;
        let delay = backoff(&entry.spec.settings, entry.restarts);
        tracing::warn!(router.id = router_id, cause = %why, restart.in_ms = delay.as_millis() as u64, "session stopped unexpectedly; restarting");
        myself.send_after(delay, move || SupervisorMsg::Respawn { router_id });
        Ok(())
    }
}

async fn spawn_session(
    myself: &ActorRef<SupervisorMsg>,
    state: &mut SupervisorState,
    router_id: RouterId,
) {
    let Some(entry) = state.entries.get_mut(&router_id) else {
        return;
    };
    let spec = entry.spec.clone();
    match Actor::spawn_linked(None, RouterSession, spec.clone(), myself.get_cell()).await {
        Ok((actor, _join)) => {
            entry.actor = Some(actor.get_id());
            state.by_actor.insert(actor.get_id(), router_id);
            let handle = SessionHandle {
                actor,
                backlog: entry.backlog.clone(),
                status: spec.status.clone(),
            };
            handle.status.register();
            if let Some(old) = state.sessions.insert(router_id, handle) {
                if !Arc::ptr_eq(&old.status, &spec.status) {
                    old.status.unregister();
                }
            }
        }
        Err(e) => {
            entry.restarts += 1;
            let delay = backoff(&spec.settings, entry.restarts);
            tracing::error!(router.id = router_id, cause = %e, "cannot spawn session");
            myself.send_after(delay, move || SupervisorMsg::Respawn { router_id });
        }
    }
}

/// Stops the router's session (no restart); returns the actor to wait for, if any.
fn stop_session(state: &mut SupervisorState, router_id: RouterId) -> Option<ActorRef<SessionMsg>> {
    if let Some(entry) = state.entries.remove(&router_id) {
        if let Some(actor_id) = entry.actor {
            state.by_actor.remove(&actor_id);
        }
    }
    let (_, handle) = state.sessions.remove(&router_id)?;
    handle.status.unregister();
    handle.actor.stop(Some("router closed".into()));
    Some(handle.actor)
}

/// Replies once every actor in `stopping` has finished stopping (its connection closed),
/// without holding up the supervisor meanwhile.
fn answer_when_stopped(stopping: Vec<ActorRef<SessionMsg>>, reply: RpcReplyPort<()>) {
    tokio::spawn(async move {
        let waits = stopping
            .iter()
            .map(|a| a.wait(Some(std::time::Duration::from_secs(5))));
        futures::future::join_all(waits).await;
        let _ = reply.send(());
    });
}

/// The fleet's keepalive: one task instead of a timer per session. A few times per half
/// keepalive it walks the sessions and probes each live connection that has been quiet for
/// the keepalive; a failed probe closes the connection, and its session reconnects. The
/// walk touches only atomics and one uncontended lock per online session, and frequent
/// walks keep probes spread out as sessions go quiet at different times.
async fn keepalive_sweep(sessions: Arc<DashMap<RouterId, SessionHandle>>, settings: FleetSettings) {
    let keepalive = settings.keepalive();
    let probe_timeout = settings.connect_timeout();
    let every = (keepalive / 2).max(Duration::from_millis(500)) / 4;
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let due: Vec<_> = sessions
            .iter()
            .filter_map(|entry| {
                let link = entry.status.due_for_probe(keepalive)?;
                Some((link, entry.status.clone()))
            })
            .collect();
        for (link, status) in due {
            tokio::spawn(async move {
                if link.probe(probe_timeout).await {
                    status.mark_checked();
                }
            });
        }
    }
}
