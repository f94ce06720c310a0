//! How the Redis backend reaches Redis: one pool over a single server, or one pool over a
//! Redis Cluster, chosen from the URL, behind one connection type the rest of the backend
//! uses without caring which.
//!
//! URL forms (`store.redis_url`):
//! - `redis://[user:password@]host:port[/db]` or `rediss://…` (TLS, rustls): one server.
//! - `redis+cluster://host:port` or `rediss+cluster://…`: a cluster, seeded from that node.
//! - several URLs separated by commas (`redis://a:7000,redis://b:7001`): a cluster seeded
//!   from all of them.

use redis::aio::ConnectionLike;
use redis::{Cmd, Pipeline, RedisFuture, Value};

use super::RedisError;

/// A pool of connections to one server or to a cluster.
#[derive(Clone)]
pub(crate) enum Pool {
    Single(deadpool_redis::Pool),
    Cluster(deadpool_redis::cluster::Pool),
}

/// A connection taken from a [`Pool`]; goes back to the pool when dropped.
pub(crate) enum Conn {
    Single(deadpool_redis::Connection),
    Cluster(deadpool_redis::cluster::Connection),
}

/// Where the URL says to connect: the seed URLs and whether they form a cluster.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) urls: Vec<String>,
    pub(crate) cluster: bool,
}

/// Reads `store.redis_url` into a [`Target`]; the URLs themselves are checked by the redis
/// crate when the pool is made.
pub(crate) fn parse_target(url: &str) -> Result<Target, RedisError> {
    let urls: Vec<String> = url
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .collect();
    if urls.is_empty() {
        return Err(RedisError::BadUrl("no Redis URL given".into()));
    }
    let mut cluster = urls.len() > 1;
    let mut plain = Vec::with_capacity(urls.len());
    for u in urls {
        let stripped = if let Some(rest) = u.strip_prefix("redis+cluster://") {
            cluster = true;
            format!("redis://{rest}")
        } else if let Some(rest) = u.strip_prefix("rediss+cluster://") {
            cluster = true;
            format!("rediss://{rest}")
        } else {
            u
        };
        if !(stripped.starts_with("redis://") || stripped.starts_with("rediss://")) {
            return Err(RedisError::BadUrl(
                "each URL must start with redis://, rediss://, redis+cluster:// or \
                 rediss+cluster://"
                    .into(),
            ));
        }
        plain.push(stripped);
    }
    Ok(Target {
        urls: plain,
        cluster,
    })
}

impl Pool {
    pub(crate) fn create(target: Target, pool_size: usize) -> Result<Pool, RedisError> {
        // Bounded waits: with Redis down, a request fails at once (503) instead of hanging
        // on a connection that cannot be made.
        let mut pool_config = deadpool_redis::PoolConfig::new(pool_size.max(1));
        pool_config.timeouts = deadpool_redis::Timeouts {
            wait: Some(std::time::Duration::from_secs(2)),
            create: Some(std::time::Duration::from_secs(2)),
            recycle: Some(std::time::Duration::from_secs(1)),
        };
        let runtime = Some(deadpool_redis::Runtime::Tokio1);
        if target.cluster {
            let mut config = deadpool_redis::cluster::Config::from_urls(target.urls);
            config.pool = Some(pool_config);
            let pool = config
                .create_pool(runtime)
                .map_err(|e| RedisError::BadUrl(e.to_string()))?;
            Ok(Pool::Cluster(pool))
        } else {
            let url = target.urls.into_iter().next().unwrap_or_default();
            let mut config = deadpool_redis::Config::from_url(url);
            config.pool = Some(pool_config);
            let pool = config
                .create_pool(runtime)
                .map_err(|e| RedisError::BadUrl(e.to_string()))?;
            Ok(Pool::Single(pool))
        }
    }

    pub(crate) async fn get(&self) -> Result<Conn, RedisError> {
        match self {
            Pool::Single(pool) => pool
                .get()
                .await
                .map(Conn::Single)
                .map_err(|e| RedisError::PoolExhausted(e.to_string())),
            Pool::Cluster(pool) => pool
                .get()
                .await
                .map(Conn::Cluster)
                .map_err(|e| RedisError::PoolExhausted(e.to_string())),
        }
    }
}

impl Conn {
    /// Runs independent commands and returns their replies in order: one pipeline on a
    /// single server; on a cluster, one command after another, since a pipeline there must
    /// stay within one slot and these may touch many. Not atomic either way.
    pub(crate) async fn run_each(&mut self, cmds: &[Cmd]) -> redis::RedisResult<Vec<Value>> {
        match self {
            Conn::Single(c) => {
                let mut pipe = Pipeline::new();
                for cmd in cmds {
                    pipe.add_command(cmd.clone());
                }
                pipe.query_async(c).await
            }
            Conn::Cluster(c) => {
                let mut out = Vec::with_capacity(cmds.len());
                for cmd in cmds {
                    out.push(cmd.query_async(c).await?);
                }
                Ok(out)
            }
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One plain URL is one server; a `+cluster` scheme or a comma list is a cluster.
    #[test]
    fn url_forms_choose_single_or_cluster() {
        let single = parse_target("redis://127.0.0.1:6379/0").unwrap();
        assert!(!single.cluster);
        assert_eq!(single.urls, vec!["redis://127.0.0.1:6379/0"]);
        let seeded = parse_target("rediss+cluster://:pw@127.0.0.1:7000").unwrap();
        assert!(seeded.cluster);
        assert_eq!(seeded.urls, vec!["rediss://:pw@127.0.0.1:7000"]);
        let listed = parse_target("redis://127.0.0.1:7000, redis://127.0.0.1:7001").unwrap();
        assert!(listed.cluster);
        assert_eq!(listed.urls.len(), 2);
        assert!(parse_target("http://127.0.0.1:6379").is_err());
        assert!(parse_target(" , ").is_err());
    }
}
