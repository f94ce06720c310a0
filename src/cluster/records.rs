//! Execution records: how a command runs at most once although its inbox entry may be
//! delivered more than once (a node died holding it, a retry carried the same
//! `Idempotency-Key`).
//!
//! A record lives under the router's shard tag and holds one of:
//! - `R<node>`: `node` started the command; its outcome is not known yet;
//! - `D<bincode Outcome>`: the command ran and this is what it gave;
//! - `A`: the asker gave up waiting before anyone started it; it will never run.
//!
//! The owner writes `R` with `SET NX` in the same script that checks it still holds the
//! shard's lease at the epoch it believes (the fencing check), so a node that lost its
//! lease cannot start commands any more, and two deliveries cannot both start one.

use std::sync::LazyLock;

use redis::Script;

use super::wire::{self, Outcome};

/// Claims the record if there is none and the lease is still ours at that epoch:
/// `{1}` claimed, `{2, value}` the record already exists (whoever holds the lease),
/// `{0}` fenced (no record, and the lease is not ours).
static BEGIN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local cur = redis.call('GET', KEYS[2])
          if cur then return {2, cur} end
          if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {0} end
          redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
          return {1}",
    )
});

/// Marks a record abandoned unless someone started it: `{1}` abandoned, `{2, value}`.
static ABANDON: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local cur = redis.call('GET', KEYS[1])
          if cur then return {2, cur} end
          redis.call('SET', KEYS[1], 'A', 'PX', ARGV[1])
          return {1}",
    )
});

/// What a record says.
#[derive(Debug, PartialEq)]
pub(super) enum Record {
    Running { node: String },
    Done(Outcome),
    Abandoned,
}

impl Record {
    pub(super) fn parse(bytes: &[u8]) -> Record {
        match bytes.split_first() {
            Some((b'R', node)) => Record::Running {
                node: String::from_utf8_lossy(node).into_owned(),
            },
            Some((b'D', rest)) => match wire::decode::<Outcome>(rest) {
                Ok(outcome) => Record::Done(outcome),
                Err(e) => Record::Done(Outcome::Unavailable(format!("bad record: {e}"))),
            },
            _ => Record::Abandoned,
        }
    }

    pub(super) fn running(node: &str) -> Vec<u8> {
        let mut v = b"R".to_vec();
        v.extend_from_slice(node.as_bytes());
        v
    }

    pub(super) fn done(outcome: &Outcome) -> Vec<u8> {
        let mut v = b"D".to_vec();
        v.extend_from_slice(&wire::encode(outcome));
        v
    }
}

/// The answer of [`begin`].
#[derive(Debug)]
pub(super) enum Begin {
    /// The caller now holds the record and must run the command.
    Claimed,
    /// The caller no longer holds the shard's lease at its epoch.
    Fenced,
    Exists(Record),
}

pub(super) async fn begin(
    conn: &mut impl redis::aio::ConnectionLike,
    lease_key: &str,
    lease_value: &str,
    record_key: &str,
    node: &str,
    keep_ms: u64,
) -> redis::RedisResult<Begin> {
    let reply: Vec<redis::Value> = BEGIN
        .key(lease_key)
        .key(record_key)
        .arg(lease_value)
        .arg(Record::running(node))
        .arg(keep_ms)
        .invoke_async(conn)
        .await?;
    Ok(match tagged(reply) {
        (1, _) => Begin::Claimed,
        (2, Some(bytes)) => Begin::Exists(Record::parse(&bytes)),
        _ => Begin::Fenced,
    })
}

/// Gives up on a command nobody started; returns the record when somebody did.
pub(super) async fn abandon(
    conn: &mut impl redis::aio::ConnectionLike,
    record_key: &str,
    keep_ms: u64,
) -> redis::RedisResult<Option<Record>> {
    let reply: Vec<redis::Value> = ABANDON
        .key(record_key)
        .arg(keep_ms)
        .invoke_async(conn)
        .await?;
    Ok(match tagged(reply) {
        (2, Some(bytes)) => Some(Record::parse(&bytes)),
        _ => None,
    })
}

pub(super) async fn read(
    conn: &mut impl redis::aio::ConnectionLike,
    record_key: &str,
) -> redis::RedisResult<Option<Record>> {
    let bytes: Option<Vec<u8>> = redis::cmd("GET").arg(record_key).query_async(conn).await?;
    Ok(bytes.map(|b| Record::parse(&b)))
}

/// Splits a `{code, value?}` script reply.
fn tagged(reply: Vec<redis::Value>) -> (i64, Option<Vec<u8>>) {
    let mut it = reply.into_iter();
    let code = match it.next() {
        Some(redis::Value::Int(c)) => c,
        _ => -1,
    };
    let value = match it.next() {
        Some(redis::Value::BulkString(b)) => Some(b),
        Some(redis::Value::SimpleString(s)) => Some(s.into_bytes()),
        _ => None,
    };
    (code, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_parse_back() {
        assert_eq!(
            Record::parse(&Record::running("n1")),
            Record::Running { node: "n1".into() }
        );
        let done = Outcome::Trap {
            message: "no such item".into(),
            category: Some(2),
        };
        assert_eq!(Record::parse(&Record::done(&done)), Record::Done(done));
        assert_eq!(Record::parse(b"A"), Record::Abandoned);
    }
}
