//! `FleetSupervisor`: spawns one linked `RouterSession` per router, knows each by router
//! id, and restarts a session that fails with exponential backoff plus jitter.

use std::collections::HashMap;
use std::sync::Arc;

use dashmap::DashMap;
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tokio::sync::Semaphore;

use super::session::{backoff, RouterSession, SessionMsg, SessionSpec};
use super::status::LiveStatus;
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
}

pub struct FleetSupervisor;

impl Actor for FleetSupervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = Arc<DashMap<RouterId, SessionHandle>>;

    async fn pre_start(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        sessions: Self::Arguments,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        Ok(SupervisorState {
            sessions,
            entries: HashMap::new(),
            by_actor: HashMap::new(),
        })
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
            state.sessions.insert(router_id, handle);
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
