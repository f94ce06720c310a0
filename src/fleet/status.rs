//! What a session knows of its router, readable by the API without a message round trip.

use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::link::Link;
use super::SessionCounts;
use crate::store::{RouterStatus, Timestamp};

/// The phase a session is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Connecting = 0,
    Online = 1,
    Offline = 2,
}

impl Phase {
    fn from_bits(bits: u8) -> Phase {
        match bits & PHASE_BITS {
            1 => Phase::Online,
            2 => Phase::Offline,
            _ => Phase::Connecting,
        }
    }
}

/// The low bits of `LiveStatus::phase` hold the phase; this bit says whether the status is
/// one of the fleet's sessions and so counted in its [`PhaseCounts`].
const PHASE_BITS: u8 = 0b11;
const COUNTED: u8 = 0b100;

/// How many of the fleet's sessions are in each phase, kept up to date as phases change
/// and sessions join or leave the fleet, so reading them costs nothing per session.
#[derive(Default)]
pub(crate) struct PhaseCounts {
    by_phase: [AtomicIsize; 3],
}

impl PhaseCounts {
    fn add(&self, phase: Phase, delta: isize) {
        self.by_phase[phase as usize].fetch_add(delta, Ordering::Relaxed);
    }

    /// The counts now. Concurrent changes may show for a moment as one session missing or
    /// counted twice, never as a negative count.
    pub(crate) fn snapshot(&self) -> SessionCounts {
        let read = |phase: Phase| self.by_phase[phase as usize].load(Ordering::Relaxed).max(0);
        SessionCounts {
            open: read(Phase::Online) as usize,
            connecting: read(Phase::Connecting) as usize,
            offline: read(Phase::Offline) as usize,
        }
    }
}

/// Shared between a session actor (the only writer of the phase) and readers in the API.
/// It outlives a restart of the actor, so clients never see a gap.
pub struct LiveStatus {
    /// The phase, and the `COUNTED` bit (see `register`).
    phase: AtomicU8,
    counts: Arc<PhaseCounts>,
    /// The live connection while online, for the fleet's keepalive sweep.
    link: Mutex<Option<Link>>,
    status: Mutex<RouterStatus>,
    /// Milliseconds since `epoch` of the last command answered: the keepalive probes only
    /// sessions that have been quiet.
    last_activity_ms: AtomicU64,
    epoch: Instant,
    /// Set when the status changed and other nodes have not been told yet.
    unpublished: AtomicBool,
}

impl LiveStatus {
    pub(crate) fn new(counts: Arc<PhaseCounts>) -> Self {
        Self {
            phase: AtomicU8::new(Phase::Connecting as u8),
            counts,
            link: Mutex::new(None),
            status: Mutex::new(RouterStatus::default()),
            last_activity_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            unpublished: AtomicBool::new(false),
        }
    }
}

impl LiveStatus {
    pub fn phase(&self) -> Phase {
        Phase::from_bits(self.phase.load(Ordering::Relaxed))
    }

    /// Moves to `phase`, moving the session between the fleet's counts if it is counted.
    fn set_phase(&self, phase: Phase) {
        let old = self
            .phase
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |bits| {
                Some((bits & COUNTED) | phase as u8)
            })
            .unwrap_or_else(|bits| bits);
        let was = Phase::from_bits(old);
        if old & COUNTED != 0 && was != phase {
            self.counts.add(phase, 1);
            self.counts.add(was, -1);
        }
    }

    /// The session is now one of the fleet's (in its sessions map): count it.
    pub(crate) fn register(&self) {
        let old = self.phase.fetch_or(COUNTED, Ordering::AcqRel);
        if old & COUNTED == 0 {
            self.counts.add(Phase::from_bits(old), 1);
        }
    }

    /// The session left the fleet: stop counting it.
    pub(crate) fn unregister(&self) {
        let old = self.phase.fetch_and(!COUNTED, Ordering::AcqRel);
        if old & COUNTED != 0 {
            self.counts.add(Phase::from_bits(old), -1);
        }
    }

    fn set_link(&self, link: Option<Link>) {
        *self.link.lock().unwrap_or_else(|e| e.into_inner()) = link;
    }

    /// Forgets the live connection (the session stopped).
    pub(crate) fn clear_link(&self) {
        self.set_link(None);
    }

    /// The live connection if the router has been quiet for `keepalive`, marking it active
    /// so that it is probed once, not again at every sweep.
    pub(crate) fn due_for_probe(&self, keepalive: Duration) -> Option<Link> {
        if self.idle_ms() < keepalive.as_millis() as u64 {
            return None;
        }
        let link = self
            .link
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()?;
        self.touch();
        Some(link)
    }

    pub fn snapshot(&self) -> RouterStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn set_connecting(&self) {
        self.set_link(None);
        self.set_phase(Phase::Connecting);
    }

    /// Up on `link`.
    pub(crate) fn set_online(&self, version: Option<String>, link: Link) {
        self.set_link(Some(link));
        self.set_phase(Phase::Online);
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
        self.set_link(None);
        self.set_phase(Phase::Offline);
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
