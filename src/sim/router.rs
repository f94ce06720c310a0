//! One simulated router: its listener, the controls tests use to inject faults at run
//! time, and its counters.
//!
//! Everything here is shared by all of the router's connections and safe to call from
//! any thread; the per-router footprint is a few hundred bytes plus its model's rows.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::Instrument;

use super::model::Model;
use super::tls::SimTlsServer;
use super::version::RouterVersion;
use super::{connection, Faults, SimRouterInfo};

/// What happens to a command, decided when it arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fate {
    Answer,
    /// Half of the first reply sentence, then the connection closes.
    Drop,
    /// No answer until cancelled.
    Hang,
}

/// Runtime controls and counters of one simulated router.
///
/// A "command" here is anything a logged-in client sends except `/login`, `/cancel` and
/// `/quit`: those are what the faults and [`SimRouter::commands`] count.
pub struct SimRouter {
    pub(crate) index: usize,
    pub(crate) info: SimRouterInfo,
    pub(crate) version: RouterVersion,
    pub(crate) started: Instant,
    pub(crate) model: Mutex<Model>,
    faults: Mutex<Faults>,
    drop_next: AtomicBool,
    hang_next: AtomicBool,
    offline: AtomicBool,
    /// Bumped to close every open connection at once; each connection watches it.
    kill: watch::Sender<u64>,
    active: AtomicUsize,
    /// The most sessions ever logged in at once.
    peak: AtomicUsize,
    /// How many times a command carrying each `comment` value was executed.
    executions: Mutex<HashMap<Vec<u8>, u64>>,
    logins: AtomicU64,
    commands: AtomicU64,
    cancels: AtomicU64,
}

impl SimRouter {
    pub(crate) fn new(index: usize, info: SimRouterInfo, faults: Faults) -> SimRouter {
        SimRouter {
            index,
            version: RouterVersion::parse(&info.version),
            info,
            started: Instant::now(),
            model: Mutex::new(Model::new(index)),
            faults: Mutex::new(faults),
            drop_next: AtomicBool::new(false),
            hang_next: AtomicBool::new(false),
            offline: AtomicBool::new(false),
            kill: watch::channel(0).0,
            active: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            executions: Mutex::new(HashMap::new()),
            logins: AtomicU64::new(0),
            commands: AtomicU64::new(0),
            cancels: AtomicU64::new(0),
        }
    }

    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.faults) = faults;
    }

    /// The next command gets half a reply sentence, then its connection is closed.
    pub fn drop_next_command(&self) {
        self.drop_next.store(true, Ordering::SeqCst);
    }

    /// The next command is never answered (and has no effect) until it is cancelled.
    pub fn hang_next_command(&self) {
        self.hang_next.store(true, Ordering::SeqCst);
    }

    /// Closes every open connection without a reply, like a reboot.
    pub fn kill_connections(&self) {
        self.kill.send_modify(|epoch| *epoch += 1);
    }

    /// While offline, new connections are accepted and closed at once; open ones stay.
    pub fn set_offline(&self, offline: bool) {
        self.offline.store(offline, Ordering::SeqCst);
    }

    pub(crate) fn is_offline(&self) -> bool {
        self.offline.load(Ordering::SeqCst)
    }

    /// Connections logged in now.
    pub fn active_sessions(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    /// The most sessions that were ever logged in at the same time.
    pub fn peak_sessions(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// How many times a command whose `comment` argument is `comment` was executed (a test
    /// puts a request id there to count executions of each request).
    pub fn executions(&self, comment: &str) -> u64 {
        lock(&self.executions)
            .get(comment.as_bytes())
            .copied()
            .unwrap_or(0)
    }

    pub(crate) fn count_execution(&self, comment: &[u8]) {
        *lock(&self.executions).entry(comment.to_vec()).or_default() += 1;
    }

    /// Successful logins since start.
    pub fn logins(&self) -> u64 {
        self.logins.load(Ordering::SeqCst)
    }

    /// Commands received since start (see the type's doc for what counts).
    pub fn commands(&self) -> u64 {
        self.commands.load(Ordering::SeqCst)
    }

    /// `/cancel` commands received since start.
    pub fn cancels(&self) -> u64 {
        self.cancels.load(Ordering::SeqCst)
    }

    pub(crate) fn faults(&self) -> Faults {
        lock(&self.faults).clone()
    }

    pub(crate) fn model(&self) -> MutexGuard<'_, Model> {
        lock(&self.model)
    }

    pub(crate) fn subscribe_kill(&self) -> watch::Receiver<u64> {
        self.kill.subscribe()
    }

    /// Whether a print that matched nothing answers `!empty`.
    pub(crate) fn sends_empty(&self) -> bool {
        lock(&self.faults)
            .empty_replies
            .unwrap_or_else(|| self.version.sends_empty())
    }

    pub(crate) fn latency(&self) -> Duration {
        lock(&self.faults).latency
    }

    /// Counts a command and decides its fate from the armed faults.
    pub(crate) fn next_command_fate(&self) -> Fate {
        let count = self.commands.fetch_add(1, Ordering::SeqCst) + 1;
        let every = lock(&self.faults).drop_every.filter(|n| *n > 0);
        if self.drop_next.swap(false, Ordering::SeqCst)
            || every.is_some_and(|n| count % u64::from(n) == 0)
        {
            return Fate::Drop;
        }
        if self.hang_next.swap(false, Ordering::SeqCst) {
            return Fate::Hang;
        }
        Fate::Answer
    }

    pub(crate) fn count_cancel(&self) {
        self.cancels.fetch_add(1, Ordering::SeqCst);
    }

    /// Records a successful login; the session counts as active until [`Self::logged_out`].
    pub(crate) fn logged_in(&self, first_on_connection: bool) {
        self.logins.fetch_add(1, Ordering::SeqCst);
        if first_on_connection {
            let now = self.active.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
        }
    }

    pub(crate) fn logged_out(&self) {
        self.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A poisoned lock only means a panic elsewhere; the data (plain values) is still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Resolves once the simulator shuts down (or is gone), holding no borrow of the flag.
pub(crate) async fn shutting_down(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|down| *down).await;
}

/// Accepts connections for one router until the simulator shuts down; with `tls`, each
/// connection does the TLS handshake first and speaks the API inside it.
pub(crate) async fn accept_loop(
    router: Arc<SimRouter>,
    listener: TcpListener,
    tls: Option<Arc<SimTlsServer>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let span = tracing::debug_span!("sim_router", router.index = router.index);
    async move {
        loop {
            let accepted = tokio::select! {
                _ = shutting_down(&mut shutdown) => break,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => {
                    if router.is_offline() {
                        tracing::debug!(client.addr = %peer, "offline: connection refused");
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    let task = serve_stream(router.clone(), stream, tls.clone(), shutdown.clone());
                    tokio::spawn(
                        task.instrument(tracing::debug_span!("sim_conn", client.addr = %peer)),
                    );
                }
                Err(err) => {
                    // Typically out of file descriptors: back off instead of spinning.
                    tracing::warn!(cause = %err, "sim router failed to accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        tracing::debug!("sim router stopped listening");
    }
    .instrument(span)
    .await
}

/// One accepted connection: plain, or TLS first (a failed handshake ends it before any
/// sentence is read, so it counts no login and no command).
async fn serve_stream(
    router: Arc<SimRouter>,
    stream: TcpStream,
    tls: Option<Arc<SimTlsServer>>,
    shutdown: watch::Receiver<bool>,
) {
    match tls {
        None => {
            let (read, write) = stream.into_split();
            connection::serve(router, read, write, shutdown).await;
        }
        Some(tls) => {
            if let Some(stream) = tls.accept(stream).await {
                let (read, write) = tokio::io::split(stream);
                connection::serve(router, read, write, shutdown).await;
            }
        }
    }
}
