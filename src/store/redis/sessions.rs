//! Refresh-token families, login throttling and the audit trail in Redis.
//!
//! A family is one hash (`user`, `jti`, `exp` in µs) whose Redis expiry is set to the
//! family's own, so expired families vanish without a sweep; the scripts still compare
//! `exp` with the caller's clock so the answer does not depend on when Redis evicts. The
//! audit trail is one sorted set scored by time, each member prefixed by a sequence number
//! so equal times keep their append order; like the embedded trail it is never pruned.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;

use super::{decode, encode, RedisStore};
use crate::store::{AuditEntry, RefreshOutcome, StoreError, StoreResult, Timestamp, UserId};

/// Starts a family unless a live one has the id: ARGV user, jti, exp µs, now µs, exp ms.
static CREATE_FAMILY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local exp = redis.call('HGET', KEYS[1], 'exp')
          if exp and tonumber(exp) > tonumber(ARGV[4]) then return 0 end
          redis.call('DEL', KEYS[1])
          redis.call('HSET', KEYS[1], 'user', ARGV[1], 'jti', ARGV[2], 'exp', ARGV[3])
          redis.call('PEXPIREAT', KEYS[1], ARGV[5])
          return 1",
    )
});

/// Spends the presented jti: ARGV presented, new jti, now µs, new exp µs, new exp ms.
/// Answers `invalid`, `reuse`, or `rotated:<user id>`.
static ROTATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local f = redis.call('HMGET', KEYS[1], 'user', 'jti', 'exp')
          if not f[1] then return 'invalid' end
          if tonumber(f[3]) <= tonumber(ARGV[3]) then
            redis.call('DEL', KEYS[1])
            return 'invalid'
          end
          if f[2] ~= ARGV[1] then
            redis.call('DEL', KEYS[1])
            return 'reuse'
          end
          redis.call('HSET', KEYS[1], 'jti', ARGV[2], 'exp', ARGV[4])
          redis.call('PEXPIREAT', KEYS[1], ARGV[5])
          return 'rotated:' .. f[1]",
    )
});

/// Counts a hit; the first hit of a window (or a counter somehow without expiry) starts it.
static THROTTLE_HIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local n = redis.call('INCR', KEYS[1])
          if n == 1 or redis.call('PTTL', KEYS[1]) < 0 then
            redis.call('PEXPIRE', KEYS[1], ARGV[1])
          end
          return n",
    )
});

/// Width of the sequence prefix on audit members.
const AUDIT_SEQ_DIGITS: usize = 20;

/// Appends an entry: ARGV time µs (the score), bincode entry.
static APPEND_AUDIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local seq = redis.call('INCR', KEYS[2])
          redis.call('ZADD', KEYS[1], ARGV[1], string.format('%020d', seq) .. ARGV[2])
          return seq",
    )
});

/// Microseconds to the millisecond Redis should drop the key at, rounded up so a family
/// never vanishes before its expiry.
fn expiry_ms(at: Timestamp) -> i64 {
    (at.0 + 999).div_euclid(1000)
}

pub(super) async fn create_family(
    store: &RedisStore,
    family: &str,
    user: UserId,
    jti: &str,
    expires_at: Timestamp,
) -> StoreResult<()> {
    let mut conn = store.conn().await?;
    let created: i64 = CREATE_FAMILY
        .key(store.keys.refresh_family(family))
        .arg(user)
        .arg(jti)
        .arg(expires_at.0)
        .arg(Timestamp::now().0)
        .arg(expiry_ms(expires_at))
        .invoke_async(&mut conn)
        .await?;
    if created == 1 {
        Ok(())
    } else {
        Err(StoreError::Conflict("refresh_family"))
    }
}

pub(super) async fn rotate(
    store: &RedisStore,
    family: &str,
    presented: &str,
    new_jti: &str,
    expires_at: Timestamp,
) -> StoreResult<RefreshOutcome> {
    let mut conn = store.conn().await?;
    let answer: String = ROTATE
        .key(store.keys.refresh_family(family))
        .arg(presented)
        .arg(new_jti)
        .arg(Timestamp::now().0)
        .arg(expires_at.0)
        .arg(expiry_ms(expires_at))
        .invoke_async(&mut conn)
        .await?;
    match answer.as_str() {
        "invalid" => Ok(RefreshOutcome::Invalid),
        "reuse" => {
            tracing::warn!("spent refresh token presented again; family revoked");
            Ok(RefreshOutcome::ReuseDetected)
        }
        other => other
            .strip_prefix("rotated:")
            .and_then(|user| user.parse().ok())
            .map(|user_id| RefreshOutcome::Rotated { user_id })
            .ok_or_else(|| StoreError::Corrupt(format!("refresh family answered {other:?}"))),
    }
}

pub(super) async fn throttle_hit(
    store: &RedisStore,
    key: &str,
    window: Duration,
) -> StoreResult<u64> {
    let mut conn = store.conn().await?;
    let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
    Ok(THROTTLE_HIT
        .key(store.keys.throttle(key))
        .arg(window_ms)
        .invoke_async(&mut conn)
        .await?)
}

pub(super) async fn append_audit(store: &RedisStore, entry: &AuditEntry) -> StoreResult<()> {
    let mut conn = store.conn().await?;
    APPEND_AUDIT
        .key(store.keys.audit_log())
        .key(store.keys.audit_seq())
        .arg(entry.at.0)
        .arg(encode(entry, "audit entry")?)
        .invoke_async::<i64>(&mut conn)
        .await?;
    Ok(())
}

/// Newest first: by time, then by the order they were appended.
pub(super) async fn recent_audit(store: &RedisStore, limit: usize) -> StoreResult<Vec<AuditEntry>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let mut conn = store.conn().await?;
    let last = isize::try_from(limit - 1).unwrap_or(isize::MAX);
    let members: Vec<Vec<u8>> = redis::cmd("ZREVRANGE")
        .arg(store.keys.audit_log())
        .arg(0)
        .arg(last)
        .query_async(&mut conn)
        .await?;
    members
        .iter()
        .map(|m| decode(m.get(AUDIT_SEQ_DIGITS..).unwrap_or_default(), "audit entry"))
        .collect()
}
