//! The Redis keys of the cluster layer. Each key carries the hash tag that decides its
//! Redis Cluster slot; the keys one script touches together share a tag (a shard's lease,
//! epoch counter and execution records: `{s:<shard>}`).

#[derive(Clone, Debug)]
pub(super) struct Keys {
    ns: String,
}

impl Keys {
    pub(super) fn new(ns: &str) -> Keys {
        Keys { ns: ns.to_owned() }
    }
    /// Sorted set: node id → last heartbeat, Redis server time in ms (0: left).
    pub(super) fn nodes(&self) -> String {
        format!("{}:{{nodes}}:live", self.ns)
    }
    /// String `<node>|<epoch>` with a TTL: who owns the shard.
    pub(super) fn lease(&self, shard: u32) -> String {
        format!("{}:{{s:{shard}}}:lease", self.ns)
    }
    /// Counter bumped each time the shard changes hands: the lease's fencing epoch.
    pub(super) fn epoch(&self, shard: u32) -> String {
        format!("{}:{{s:{shard}}}:epoch", self.ns)
    }
    /// Execution record of one command (see `records`).
    pub(super) fn record(&self, shard: u32, request_id: &str) -> String {
        format!("{}:{{s:{shard}}}:req:{request_id}", self.ns)
    }
    /// Stream of commands for `node` to run (consumer group [`GROUP`]).
    pub(super) fn inbox(&self, node: &str) -> String {
        format!("{}:{{in:{node}}}", self.ns)
    }
    /// Stream of outcomes for commands `node` forwarded.
    pub(super) fn replies(&self, node: &str) -> String {
        format!("{}:{{re:{node}}}", self.ns)
    }
}

/// The consumer group every inbox has; consumers are named by node id.
pub(super) const GROUP: &str = "exec";
