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
                stop_session(state, router_id);
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
                stop_session(state, router_id);
                let _ = reply.send(());
            }
            SupervisorMsg::Shutdown { reply } => {
                let ids: Vec<RouterId> = state.entries.keys().copied().collect();
                for router_id in ids {
                    stop_session(state, router_id);
                }
                let _ = reply.send(());
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

fn stop_session(state: &mut SupervisorState, router_id: RouterId) {
    if let Some(entry) = state.entries.remove(&router_id) {
        if let Some(actor_id) = entry.actor {
            state.by_actor.remove(&actor_id);
        }
    }
    if let Some((_, handle)) = state.sessions.remove(&router_id) {
        handle.actor.stop(Some("router closed".into()));
    }
}
