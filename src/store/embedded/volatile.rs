//! State the embedded store keeps in memory only: router status and login-throttle windows.
//!
//! Both are cheap to lose. Sessions report status again within one check interval after a
//! restart; a restart forgetting throttle counts gives each client one fresh window, which
//! is an accepted weakening for a single node (the Redis backend keeps them shared).

use std::time::{Duration, Instant};

use dashmap::DashMap;

use crate::store::{RouterId, RouterStatus};

/// Above this many throttle keys, windows that have ended are swept before counting, so a
/// stream of distinct keys (e.g. usernames from a credential-stuffing run) cannot grow the
/// map without bound.
const THROTTLE_SWEEP_AT: usize = 10_000;

#[derive(Default)]
pub(super) struct Volatile {
    statuses: DashMap<RouterId, RouterStatus>,
    throttle: DashMap<String, ThrottleWindow>,
}

/// One fixed window: it starts at the first hit and lasts `length`.
struct ThrottleWindow {
    started: Instant,
    length: Duration,
    hits: u64,
}

impl ThrottleWindow {
    fn has_ended(&self, now: Instant) -> bool {
        now.duration_since(self.started) >= self.length
    }
}

impl Volatile {
    pub(super) fn set_status(&self, id: RouterId, status: RouterStatus) {
        self.statuses.insert(id, status);
    }

    /// A router never reported on reads as the default status (offline, never checked).
    pub(super) fn status(&self, id: RouterId) -> RouterStatus {
        self.statuses
            .get(&id)
            .map(|s| s.value().clone())
            .unwrap_or_default()
    }

    pub(super) fn forget_router(&self, id: RouterId) {
        self.statuses.remove(&id);
    }

    pub(super) fn throttle_hit(&self, key: &str, window: Duration) -> u64 {
        let now = Instant::now();
        if self.throttle.len() > THROTTLE_SWEEP_AT {
            self.throttle.retain(|_, w| !w.has_ended(now));
        }
        let mut entry = self
            .throttle
            .entry(key.to_owned())
            .or_insert(ThrottleWindow {
                started: now,
                length: window,
                hits: 0,
            });
        if entry.has_ended(now) {
            entry.started = now;
            entry.hits = 0;
        }
        entry.length = window;
        entry.hits += 1;
        entry.hits
    }

    pub(super) fn throttle_reset(&self, key: &str) {
        self.throttle.remove(key);
    }
}
