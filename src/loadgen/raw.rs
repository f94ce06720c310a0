//! The raw baseline: the same `system/resource` print sent straight to the same simulated
//! routers over the project's own pipelined RouterOS client, no HTTP in between. This is
//! the ceiling CloudPilot's execute-command throughput is measured against.

use std::sync::Arc;

use futures::stream::{self, StreamExt};

use super::children::SimRouter;
use super::drive::{Sample, Work};
use super::LoadgenError;
use crate::routeros::{Command, ConnectOptions, Connection, Credentials};

/// Logs in to every router (`parallel` at a time).
pub async fn connect_all(
    routers: &[SimRouter],
    parallel: usize,
) -> Result<Vec<Connection>, LoadgenError> {
    let opts = ConnectOptions::default();
    let results: Vec<_> = stream::iter(routers.iter().cloned())
        .map(|r| {
            let opts = opts.clone();
            async move {
                let creds = Credentials {
                    username: r.username.clone(),
                    password: r.password.clone(),
                };
                Connection::connect(&r.host, r.port, &creds, &opts)
                    .await
                    .map_err(|e| LoadgenError::Baseline {
                        detail: format!("{}:{}: {e}", r.host, r.port),
                    })
            }
        })
        .buffered(parallel.max(1))
        .collect()
        .await;
    results.into_iter().collect()
}

/// Work that prints `system/resource` on connection `n % len`: many commands end up in
/// flight on each connection at once when the concurrency exceeds the fleet.
pub fn resource_work(conns: Vec<Connection>) -> Work {
    let conns = Arc::new(conns);
    Arc::new(move |n| {
        let conns = conns.clone();
        Box::pin(async move {
            let conn = &conns[(n as usize) % conns.len()];
            let result = conn.call(Command::new("/system/resource/print")).await;
            Sample {
                kind: "raw-system-resource",
                requests: 1,
                error: result.err().map(|e| e.to_string()),
            }
        })
    })
}
