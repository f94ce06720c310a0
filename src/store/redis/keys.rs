//! Every key the Redis backend writes, in one place, with the hash tag that decides its
//! cluster slot.
//!
//! Keys written together by one script share a tag: a user's record and API key
//! (`{u:<id>}`), every router record with the per-owner router sets and the router id
//! counter (`{routers}`), the audit log with its sequence (`{audit}`). Keys only ever
//! touched alone (uniqueness claims, refresh families, throttle counters, router status)
//! are tagged by their own name so they spread over the cluster.

use crate::store::{RouterId, UserId};

/// Key builder for one namespace (the prefix that keeps deployments sharing a Redis apart).
#[derive(Clone, Debug)]
pub(super) struct Keys {
    ns: String,
}

impl Keys {
    pub(super) fn new(ns: &str) -> Keys {
        Keys { ns: ns.to_owned() }
    }

    pub(super) fn user_counter(&self) -> String {
        format!("{}:{{ids}}:user", self.ns)
    }
    pub(super) fn user(&self, id: UserId) -> String {
        format!("{}:{{u:{id}}}:user", self.ns)
    }
    pub(super) fn api_key(&self, id: UserId) -> String {
        format!("{}:{{u:{id}}}:apikey", self.ns)
    }
    /// The claim on a lowercased username.
    pub(super) fn username_claim(&self, lowered: &str) -> String {
        format!("{}:name:{{{lowered}}}", self.ns)
    }
    /// The claim on a public key.
    pub(super) fn public_key_claim(&self, public_key: &str) -> String {
        format!("{}:pk:{{{public_key}}}", self.ns)
    }

    pub(super) fn router_counter(&self) -> String {
        format!("{}:{{routers}}:seq", self.ns)
    }
    /// Hash: router id → bincode `Router`.
    pub(super) fn router_records(&self) -> String {
        format!("{}:{{routers}}:records", self.ns)
    }
    /// Set of the router ids `owner` has.
    pub(super) fn owner_routers(&self, owner: UserId) -> String {
        format!("{}:{{routers}}:owner:{owner}", self.ns)
    }
    pub(super) fn router_status(&self, id: RouterId) -> String {
        format!("{}:{{r:{id}}}:status", self.ns)
    }

    pub(super) fn refresh_family(&self, family: &str) -> String {
        format!("{}:rf:{{{family}}}", self.ns)
    }
    pub(super) fn throttle(&self, key: &str) -> String {
        format!("{}:th:{{{key}}}", self.ns)
    }

    pub(super) fn audit_log(&self) -> String {
        format!("{}:{{audit}}:log", self.ns)
    }
    pub(super) fn audit_seq(&self) -> String {
        format!("{}:{{audit}}:seq", self.ns)
    }
}
