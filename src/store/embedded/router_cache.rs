//! Routers read recently, kept in memory so that the ownership check every
//! `/routers/{id}/...` request makes is a map lookup instead of a read transaction on a
//! blocking thread (a thread hand-off per request, the largest single cost of
//! `execute-command` in a profile of the HTTP path).
//!
//! Only this process writes the file, so the cache can stay exact: every router write
//! drops its entry *after* committing, and a read that missed fills the cache only when no
//! router write finished since that read began (the `epoch` it saw). A fill can therefore
//! never put back a value older than one already committed.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::store::{Router, RouterId};

#[derive(Default)]
pub(super) struct RouterCache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    routers: HashMap<RouterId, Router>,
    /// Router writes finished so far.
    epoch: u64,
}

impl RouterCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn get(&self, id: RouterId) -> Option<Router> {
        self.lock().routers.get(&id).cloned()
    }

    /// The epoch to hand to [`RouterCache::fill`]; read it before the store read.
    pub(super) fn epoch(&self) -> u64 {
        self.lock().epoch
    }

    /// Remembers `router` as read from the file, unless a router write finished since
    /// `epoch` (the value read may then be stale).
    pub(super) fn fill(&self, epoch: u64, router: &Router) {
        let mut inner = self.lock();
        if inner.epoch == epoch {
            inner.routers.insert(router.id, router.clone());
        }
    }

    /// Forgets `id`; call after every write of it, whether or not the write succeeded.
    pub(super) fn invalidate(&self, id: RouterId) {
        let mut inner = self.lock();
        inner.epoch += 1;
        inner.routers.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{NewRouter, Transport};

    fn router(id: RouterId, name: &str) -> Router {
        NewRouter {
            owner: 1,
            name: name.into(),
            host: "127.0.0.1".into(),
            port: 8728,
            username: "admin".into(),
            password: crate::store::SealedSecret {
                key_id: 1,
                nonce: [0; 12],
                ciphertext: Vec::new(),
            },
            transport: Transport::Api,
            use_https: false,
            tls: "verify".into(),
            tags: Vec::new(),
        }
        .into_router(id, crate::store::Timestamp::now())
    }

    #[test]
    fn a_filled_router_is_returned_until_invalidated() {
        let cache = RouterCache::default();
        assert!(cache.get(7).is_none());
        cache.fill(cache.epoch(), &router(7, "a"));
        assert_eq!(cache.get(7).map(|r| r.name), Some("a".to_string()));
        cache.invalidate(7);
        assert!(cache.get(7).is_none());
    }

    #[test]
    fn a_read_that_began_before_a_write_does_not_fill() {
        let cache = RouterCache::default();
        let before = cache.epoch();
        // A write of any router finishes while the read is under way...
        cache.invalidate(7);
        // ...so what the read found may predate it and is not kept.
        cache.fill(before, &router(7, "old"));
        assert!(cache.get(7).is_none());
        cache.fill(cache.epoch(), &router(7, "new"));
        assert_eq!(cache.get(7).map(|r| r.name), Some("new".to_string()));
    }
}
