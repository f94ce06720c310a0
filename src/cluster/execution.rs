//! Running a command under its execution record (see [`super::records`]): claim, run,
//! record; settle on another copy's record; give up or decline without ever hiding a run.

use std::time::{Duration, Instant};

use dashmap::DashMap;
use serde_json::Value;

use super::records::{self, Begin, Record};
use super::wire::Outcome;
use super::{Held, Inner};
use crate::fleet::ExecError;
use crate::routeros::request::{CommandFailure, RestRequest};
use crate::store::{RouterId, StoreError};

/// Counts a copy of a command as in hand on this node while it lives.
pub(super) struct Attempt<'a> {
    running: &'a DashMap<String, usize>,
    key: &'a str,
}

impl<'a> Attempt<'a> {
    pub(super) fn new(running: &'a DashMap<String, usize>, key: &'a str) -> Attempt<'a> {
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
pub(super) struct Job {
    pub(super) request_id: String,
    pub(super) router_id: RouterId,
    pub(super) shard: u32,
    pub(super) req: RestRequest,
    pub(super) deadline: Instant,
    pub(super) fresh: bool,
}

impl Inner {
    /// Runs a job under its execution record: at most once, fenced by the lease epoch.
    pub(super) async fn run_recorded(&self, job: Job, held: Held) -> Outcome {
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
                if outcome.never_sent() {
                    // Never reached the router: clear the claim so a retry tries again.
                    self.release_claim(&record_key, true).await;
                    return outcome;
                }
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
    pub(super) async fn refuse(
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
    pub(super) async fn release_claim(&self, record_key: &str, delete: bool) {
        if let Ok(mut conn) = self.conn().await {
            let keep = self.record_keep_ms();
            let _ = records::release(&mut conn, record_key, &self.node, delete, keep).await;
        }
    }

    pub(super) async fn finish(
        &self,
        record_key: &str,
        outcome: &Outcome,
    ) -> Result<(), StoreError> {
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
    pub(super) async fn settle(
        &self,
        record_key: &str,
        mut record: Record,
        deadline: Instant,
    ) -> Outcome {
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
    pub(super) async fn give_up(
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
