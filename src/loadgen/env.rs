//! The system under test for one run: the simulated fleet (child processes), the server
//! (a child process, or `--target`), the logged-in REST client, and the routers registered
//! so far. Growing the fleet registers routers through the API and waits on `/health/`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use tokio::time::Instant;

use super::children::{self, ServerChild, SimChild, SimRouter};
use super::rest::{Auth, Rest};
use super::{LoadgenArgs, LoadgenError};

pub struct Env {
    pub rest: Rest,
    server: Option<ServerChild>,
    port: u16,
    sims: Vec<SimChild>,
    pub routers: Vec<SimRouter>,
    /// Ids of the routers registered so far, in fleet order.
    pub registered: Vec<u64>,
    /// Sessions already open on a `--target` server before this run added any.
    open_before: u64,
    work_dir: WorkDir,
}

/// The run's temporary directory (server store, child logs), removed however the run ends.
struct WorkDir(PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            tracing::debug!(error = %e, "removing the work directory");
        }
    }
}

/// How long the fleet gets to come up before the run gives up.
const SESSIONS_UP_LIMIT: Duration = Duration::from_secs(180);

impl Env {
    pub async fn start(args: &LoadgenArgs) -> Result<Env, LoadgenError> {
        let limit = children::raise_nofile_limit();
        tracing::info!(nofile = ?limit, "open-file limit");
        let dir =
            std::env::temp_dir().join(format!("cloudpilot-loadgen-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(dir.join("data")).map_err(|source| LoadgenError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let work_dir = WorkDir(dir);
        let sims = children::spawn_sims(args.routers, args.routers_per_sim, &work_dir.0).await?;
        let routers: Vec<SimRouter> = sims.iter().flat_map(|s| s.routers.clone()).collect();
        let (server, port, base) = match &args.target {
            Some(url) => (None, 0, url.trim_end_matches('/').to_owned()),
            None => {
                let port = children::free_port()?;
                let server =
                    ServerChild::spawn(port, &work_dir.0.join("data"), &work_dir.0).await?;
                let base = server.base.clone();
                (Some(server), port, base)
            }
        };
        // Our own child may take a while to open its store; a --target is up or it is not.
        let patience = if server.is_some() { 60 } else { 5 };
        Rest::wait_healthy(&base, Duration::from_secs(patience)).await?;
        let auth = match (&args.token, &args.username, &args.password) {
            (Some(t), _, _) => Auth::Token(t.clone()),
            (None, Some(u), Some(p)) => Auth::Password {
                username: u.clone(),
                password: p.clone(),
            },
            _ => Auth::Register,
        };
        let rest = Rest::connect(&base, auth).await?;
        let open_before = rest.open_sessions().await?;
        Ok(Env {
            rest,
            server,
            port,
            sims,
            routers,
            registered: Vec::new(),
            open_before,
            work_dir,
        })
    }

    pub fn owns_server(&self) -> bool {
        self.server.is_some()
    }

    /// Starts measuring where the CPU goes (loadgen, server, simulators, the rest).
    pub fn cpu_meter(&self) -> super::cpu::CpuMeter {
        let server = self.server.as_ref().and_then(ServerChild::pid);
        let sims = self.sims.iter().filter_map(SimChild::pid).collect();
        super::cpu::CpuMeter::start(server, sims)
    }

    pub fn server_rss_kib(&self) -> Option<u64> {
        self.server.as_ref().and_then(ServerChild::rss_kib)
    }

    pub fn registered_ids(&self) -> Arc<Vec<u64>> {
        Arc::new(self.registered.clone())
    }

    /// Registers routers until `n` are, then waits until all their sessions are open.
    /// Returns (seconds registering, seconds from the first registration to all open).
    pub async fn grow_to(&mut self, n: usize) -> Result<(f64, f64), LoadgenError> {
        let start = Instant::now();
        let from = self.registered.len();
        let rest = &self.rest;
        let added: Vec<Result<u64, LoadgenError>> = stream::iter(from..n.min(self.routers.len()))
            .map(|i| rest.add_router(i, &self.routers[i]))
            .buffered(32)
            .collect()
            .await;
        for id in added {
            self.registered.push(id?);
        }
        let registering = start.elapsed().as_secs_f64();
        self.wait_open(self.registered.len() as u64).await?;
        Ok((registering, start.elapsed().as_secs_f64()))
    }

    async fn wait_open(&self, want: u64) -> Result<(), LoadgenError> {
        let want = want + self.open_before;
        let start = Instant::now();
        loop {
            let open = self.rest.open_sessions().await?;
            if open >= want {
                return Ok(());
            }
            if start.elapsed() > SESSIONS_UP_LIMIT {
                return Err(LoadgenError::SessionsNotUp {
                    want,
                    open,
                    waited_s: SESSIONS_UP_LIMIT.as_secs(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Restarts our own server on the same port and store; returns the seconds from
    /// spawning it to every registered session open (None with `--target`).
    pub async fn restart_server(&mut self) -> Result<Option<f64>, LoadgenError> {
        let Some(old) = self.server.take() else {
            return Ok(None);
        };
        old.stop().await;
        let start = Instant::now();
        let data = self.work_dir.0.join("data");
        self.server = Some(ServerChild::spawn(self.port, &data, &self.work_dir.0).await?);
        Rest::wait_healthy(&self.rest.base, Duration::from_secs(60)).await?;
        self.wait_open(self.registered.len() as u64).await?;
        Ok(Some(start.elapsed().as_secs_f64()))
    }
}
