//! Uniqueness claims: the username and public-key indexes, which live in slots of their own
//! and so cannot be written in one atomic step with the user they point at.
//!
//! A claim key holds `<user id>:<claimed at, ms since the epoch>`. It is taken with
//! `SET NX`; it counts as held while the user it names exists with that name (or that
//! public key), or while it is younger than [`PENDING_MS`]. A claim that is neither, left by
//! a crashed or refused write, is taken over with a compare-and-set so that two nodes
//! repairing it at once cannot both win. The module doc of [`super`] lists the windows.

use std::sync::LazyLock;

use redis::Script;

use super::connection::Conn;
use super::keys::Keys;
use super::{accounts, RedisStore};
use crate::store::{StoreResult, Timestamp, UserId};

/// How long a claim whose user is not (yet) written keeps others out. Far longer than a
/// registration takes; short enough that a crash blocks a name only briefly.
pub(super) const PENDING_MS: i64 = 30_000;

/// Replaces the claim only if it still holds what the caller saw.
static TAKE_OVER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('GET', KEYS[1]) == ARGV[1] then
            redis.call('SET', KEYS[1], ARGV[2])
            return 1
          end
          return 0",
    )
});

/// Deletes the claim only if it is still the caller's.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('GET', KEYS[1]) == ARGV[1] then
            redis.call('DEL', KEYS[1])
            return 1
          end
          return 0",
    )
});

/// Which index a claim belongs to, which decides how its holder is confirmed.
#[derive(Clone, Copy, Debug)]
pub(super) enum Index<'a> {
    /// A lowercased username.
    Username(&'a str),
    PublicKey(&'a str),
}

impl Index<'_> {
    pub(super) fn key(&self, keys: &Keys) -> String {
        match self {
            Index::Username(lowered) => keys.username_claim(lowered),
            Index::PublicKey(public) => keys.public_key_claim(public),
        }
    }

    /// The field name a conflict on this index reports.
    pub(super) fn field(&self) -> &'static str {
        match self {
            Index::Username(_) => "username",
            Index::PublicKey(_) => "public_key",
        }
    }

    /// Whether `holder`'s stored record carries this name or key, which is what makes a
    /// claim final.
    pub(super) async fn confirmed_by(
        &self,
        conn: &mut Conn,
        keys: &Keys,
        holder: UserId,
    ) -> StoreResult<bool> {
        Ok(match self {
            Index::Username(lowered) => accounts::load_user(conn, keys, holder)
                .await?
                .is_some_and(|u| u.username.to_lowercase() == *lowered),
            Index::PublicKey(public) => accounts::load_api_key(conn, keys, holder)
                .await?
                .is_some_and(|k| k.public_key == *public),
        })
    }
}

/// The result of trying to claim a name or key.
#[derive(Debug)]
pub(super) enum Claimed {
    /// The caller holds it now; the value is what the claim key holds, for release.
    Won(String),
    /// The claim already names the caller's user.
    AlreadyHeld,
    /// Another user holds it, or is registering with it right now.
    Taken,
}

fn claim_value(user: UserId, at_ms: i64) -> String {
    format!("{user}:{at_ms}")
}

/// Reads `<user id>:<ms>`; anything else is treated as a claim left by nobody.
pub(super) fn parse_claim(value: &str) -> Option<(UserId, i64)> {
    let (user, at) = value.split_once(':')?;
    Some((user.parse().ok()?, at.parse().ok()?))
}

/// Claims `index` for `user`, taking over an abandoned claim if there is one.
pub(super) async fn claim(
    store: &RedisStore,
    conn: &mut Conn,
    index: Index<'_>,
    user: UserId,
) -> StoreResult<Claimed> {
    let key = index.key(&store.keys);
    for _ in 0..super::CAS_ATTEMPTS {
        let now_ms = Timestamp::now().0 / 1000;
        let mine = claim_value(user, now_ms);
        let set: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(&mine)
            .arg("NX")
            .query_async(conn)
            .await?;
        if set.is_some() {
            return Ok(Claimed::Won(mine));
        }
        let Some(current) = redis::cmd("GET")
            .arg(&key)
            .query_async::<Option<String>>(conn)
            .await?
        else {
            continue; // released between the two commands; try again
        };
        if let Some((holder, at_ms)) = parse_claim(&current) {
            if holder == user {
                return Ok(Claimed::AlreadyHeld);
            }
            if now_ms - at_ms < PENDING_MS || index.confirmed_by(conn, &store.keys, holder).await? {
                return Ok(Claimed::Taken);
            }
        }
        let took: i64 = TAKE_OVER
            .key(&key)
            .arg(&current)
            .arg(&mine)
            .invoke_async(conn)
            .await?;
        if took == 1 {
            tracing::info!(
                claim.index = index.field(),
                user.id = user,
                "abandoned claim taken over"
            );
            return Ok(Claimed::Won(mine));
        }
    }
    Ok(Claimed::Taken)
}

/// Whether the claim on `index` still holds `value` (nobody took it over).
pub(super) async fn still_held(
    store: &RedisStore,
    conn: &mut Conn,
    index: Index<'_>,
    value: &str,
) -> StoreResult<bool> {
    let current: Option<String> = redis::cmd("GET")
        .arg(index.key(&store.keys))
        .query_async(conn)
        .await?;
    Ok(current.as_deref() == Some(value))
}

/// Drops the claim on `index` if it still holds `value`.
pub(super) async fn release(
    store: &RedisStore,
    conn: &mut Conn,
    index: Index<'_>,
    value: &str,
) -> StoreResult<()> {
    RELEASE
        .key(index.key(&store.keys))
        .arg(value)
        .invoke_async::<i64>(conn)
        .await?;
    Ok(())
}

/// The user a claim on `index` names, if any; the caller confirms against the record.
pub(super) async fn holder(
    store: &RedisStore,
    conn: &mut Conn,
    index: Index<'_>,
) -> StoreResult<Option<(UserId, String)>> {
    let current: Option<String> = redis::cmd("GET")
        .arg(index.key(&store.keys))
        .query_async(conn)
        .await?;
    Ok(current.and_then(|v| parse_claim(&v).map(|(user, _)| (user, v))))
}
