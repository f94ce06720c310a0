//! What a session knows of its router, readable by the API without a message round trip.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use crate::store::{RouterStatus, Timestamp};

/// The phase a session is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Connecting = 0,
    Online = 1,
    Offline = 2,
}

/// Shared between a session actor (the only writer) and readers in the API.
/// It outlives a restart of the actor, so clients never see a gap.
pub struct LiveStatus {
    phase: AtomicU8,
    status: Mutex<RouterStatus>,
    /// Milliseconds since `epoch` of the last command answered: the keepalive probes only
    /// sessions that have been quiet.
    last_activity_ms: AtomicU64,
    epoch: Instant,
    /// Set when the status changed and other nodes have not been told yet.
    unpublished: AtomicBool,
}

impl Default for LiveStatus {
    fn default() -> Self {
        Self {
            phase: AtomicU8::new(Phase::Connecting as u8),
            status: Mutex::new(RouterStatus::default()),
            last_activity_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            unpublished: AtomicBool::new(false),
        }
    }
}

impl LiveStatus {
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Relaxed) {
            1 => Phase::Online,
            2 => Phase::Offline,
            _ => Phase::Connecting,
        }
    }

    pub fn snapshot(&self) -> RouterStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn set_connecting(&self) {
        self.phase.store(Phase::Connecting as u8, Ordering::Relaxed);
    }

    pub(crate) fn set_online(&self, version: Option<String>) {
        self.phase.store(Phase::Online as u8, Ordering::Relaxed);
        let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
        s.is_online = true;
        s.last_error = None;
        s.last_checked = Some(Timestamp::now());
        if version.is_some() {
            s.routeros_version = version;
        }
        drop(s);
        self.unpublished.store(true, Ordering::Release);
        self.touch();
    }

    pub(crate) fn set_offline(&self, error: String) {
        self.phase.store(Phase::Offline as u8, Ordering::Relaxed);
        let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
        s.is_online = false;
        s.last_error = Some(error);
        s.last_checked = Some(Timestamp::now());
        drop(s);
        self.unpublished.store(true, Ordering::Release);
    }

    /// The status if it changed since last taken (clearing the mark).
    pub(crate) fn take_unpublished(&self) -> Option<RouterStatus> {
        self.unpublished
            .swap(false, Ordering::AcqRel)
            .then(|| self.snapshot())
    }

    pub(crate) fn mark_unpublished(&self) {
        self.unpublished.store(true, Ordering::Release);
    }

    /// Records that the router answered just now.
    pub(crate) fn touch(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.last_activity_ms.store(ms, Ordering::Relaxed);
    }

    pub(crate) fn mark_checked(&self) {
        let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
        s.last_checked = Some(Timestamp::now());
    }

    pub(crate) fn idle_ms(&self) -> u64 {
        let now = self.epoch.elapsed().as_millis() as u64;
        now.saturating_sub(self.last_activity_ms.load(Ordering::Relaxed))
    }
}
