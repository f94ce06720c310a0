//! Users and their API key pair in Redis.
//!
//! A user's record and key live under the user's tag (`{u:<id>}`) and are written by one
//! script; the username and public-key indexes are [`claims`](super::claims) taken before
//! that write and checked after it.

use std::sync::LazyLock;

use redis::Script;

use super::claims::{self, Claimed, Index};
use super::connection::Conn;
use super::keys::Keys;
use super::{decode, encode, RedisError, RedisStore, CAS_ATTEMPTS};
use crate::store::{
    ApiKey, NewUser, ProfileUpdate, StoreError, StoreResult, Timestamp, User, UserId,
};

/// Writes a user record and its key together.
static WRITE_USER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"redis.call('SET', KEYS[1], ARGV[1])
          redis.call('SET', KEYS[2], ARGV[2])
          return 1",
    )
});

/// Sets the key only if it still holds what the caller read.
static COMPARE_AND_SET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('GET', KEYS[1]) == ARGV[1] then
            redis.call('SET', KEYS[1], ARGV[2])
            return 1
          end
          return 0",
    )
});

/// Sets the key and returns what it held before, in one step.
static SWAP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local old = redis.call('GET', KEYS[1])
          redis.call('SET', KEYS[1], ARGV[1])
          return old",
    )
});

pub(super) async fn load_user(
    conn: &mut Conn,
    keys: &Keys,
    id: UserId,
) -> StoreResult<Option<User>> {
    let bytes: Option<Vec<u8>> = redis::cmd("GET")
        .arg(keys.user(id))
        .query_async(conn)
        .await?;
    bytes.map(|b| decode(&b, "user")).transpose()
}

pub(super) async fn load_api_key(
    conn: &mut Conn,
    keys: &Keys,
    user: UserId,
) -> StoreResult<Option<ApiKey>> {
    let bytes: Option<Vec<u8>> = redis::cmd("GET")
        .arg(keys.api_key(user))
        .query_async(conn)
        .await?;
    bytes.map(|b| decode(&b, "api key")).transpose()
}

/// Creates the user, claiming the name and then the public key first; see the module doc
/// of [`super`] for what happens when a step fails or the node dies between steps.
pub(super) async fn create_user(
    store: &RedisStore,
    new: NewUser,
    mut key: ApiKey,
) -> StoreResult<User> {
    let mut conn = store.conn().await?;
    let id: UserId = redis::cmd("INCR")
        .arg(store.keys.user_counter())
        .query_async(&mut conn)
        .await?;
    let lowered = new.username.to_lowercase();
    let name = Index::Username(&lowered);
    let name_claim = match claims::claim(store, &mut conn, name, id).await? {
        Claimed::Won(value) => value,
        Claimed::AlreadyHeld | Claimed::Taken => return Err(StoreError::Conflict("username")),
    };
    let public = key.public_key.clone();
    let public = Index::PublicKey(&public);
    let key_claim = match claims::claim(store, &mut conn, public, id).await {
        Ok(Claimed::Won(value)) => value,
        outcome => {
            release_all(store, &mut conn, &[(name, &name_claim)]).await;
            outcome?;
            return Err(StoreError::Conflict("public_key"));
        }
    };
    let held = [(name, name_claim.as_str()), (public, key_claim.as_str())];

    let now = Timestamp::now();
    let user = User {
        id,
        username: new.username,
        email: new.email,
        password_hash: new.password_hash,
        bio: String::new(),
        website: String::new(),
        created_at: now,
        updated_at: now,
    };
    key.user_id = id;
    let written = write_user(store, &mut conn, &user, &key).await;
    if let Err(err) = written {
        release_all(store, &mut conn, &held).await;
        return Err(err);
    }
    // A claim taken over while we wrote (only possible after a long stall) means another
    // registration owns the name or key now: undo ours rather than leave two owners.
    for (index, value) in held {
        if !claims::still_held(store, &mut conn, index, value).await? {
            redis::cmd("DEL")
                .arg(store.keys.user(id))
                .arg(store.keys.api_key(id))
                .query_async::<()>(&mut conn)
                .await?;
            release_all(store, &mut conn, &held).await;
            tracing::warn!(
                user.id = id,
                claim.index = index.field(),
                "claim lost; user undone"
            );
            return Err(StoreError::Conflict(index.field()));
        }
    }
    tracing::debug!(user.id = id, "user created");
    Ok(user)
}

async fn write_user(
    store: &RedisStore,
    conn: &mut Conn,
    user: &User,
    key: &ApiKey,
) -> StoreResult<()> {
    WRITE_USER
        .key(store.keys.user(user.id))
        .key(store.keys.api_key(user.id))
        .arg(encode(user, "user")?)
        .arg(encode(key, "api key")?)
        .invoke_async::<i64>(conn)
        .await?;
    Ok(())
}

/// Best effort: a claim that cannot be released now is left to expire into "abandoned".
async fn release_all(store: &RedisStore, conn: &mut Conn, held: &[(Index<'_>, &str)]) {
    for (index, value) in held {
        if let Err(err) = claims::release(store, conn, *index, value).await {
            tracing::warn!(claim.index = index.field(), cause = %err, "cannot release claim");
        }
    }
}

/// `lowered` must already be lowercased.
pub(super) async fn user_by_username(
    store: &RedisStore,
    lowered: &str,
) -> StoreResult<Option<User>> {
    let mut conn = store.conn().await?;
    let Some((holder, _)) = claims::holder(store, &mut conn, Index::Username(lowered)).await?
    else {
        return Ok(None);
    };
    let user = load_user(&mut conn, &store.keys, holder).await?;
    Ok(user.filter(|u| u.username.to_lowercase() == lowered))
}

pub(super) async fn api_key_by_public(
    store: &RedisStore,
    public_key: &str,
) -> StoreResult<Option<ApiKey>> {
    let mut conn = store.conn().await?;
    let index = Index::PublicKey(public_key);
    let Some((holder, _)) = claims::holder(store, &mut conn, index).await? else {
        return Ok(None);
    };
    let key = load_api_key(&mut conn, &store.keys, holder).await?;
    Ok(key.filter(|k| k.public_key == public_key))
}

/// Read, change, compare-and-set; retried when another writer changed the record between.
pub(super) async fn update_profile(
    store: &RedisStore,
    id: UserId,
    update: ProfileUpdate,
) -> StoreResult<User> {
    let mut conn = store.conn().await?;
    let key = store.keys.user(id);
    for _ in 0..CAS_ATTEMPTS {
        let Some(old) = redis::cmd("GET")
            .arg(&key)
            .query_async::<Option<Vec<u8>>>(&mut conn)
            .await?
        else {
            return Err(StoreError::NotFound("user"));
        };
        let mut user: User = decode(&old, "user")?;
        if let Some(email) = &update.email {
            user.email = email.clone();
        }
        if let Some(bio) = &update.bio {
            user.bio = bio.clone();
        }
        if let Some(website) = &update.website {
            user.website = website.clone();
        }
        user.updated_at = Timestamp::now();
        let swapped: i64 = COMPARE_AND_SET
            .key(&key)
            .arg(old)
            .arg(encode(&user, "user")?)
            .invoke_async(&mut conn)
            .await?;
        if swapped == 1 {
            return Ok(user);
        }
    }
    Err(RedisError::ContentionExhausted { what: "user" }.into())
}

/// Claims the new public key, swaps the key record, then drops the old key's claim.
pub(super) async fn replace_api_key(store: &RedisStore, key: ApiKey) -> StoreResult<()> {
    let mut conn = store.conn().await?;
    let user = key.user_id;
    if load_user(&mut conn, &store.keys, user).await?.is_none() {
        return Err(StoreError::NotFound("user"));
    }
    let public = Index::PublicKey(&key.public_key);
    let won = match claims::claim(store, &mut conn, public, user).await? {
        Claimed::Won(value) => Some(value),
        Claimed::AlreadyHeld => None,
        Claimed::Taken => return Err(StoreError::Conflict("public_key")),
    };
    let swapped: StoreResult<Option<Vec<u8>>> = async {
        Ok(SWAP
            .key(store.keys.api_key(user))
            .arg(encode(&key, "api key")?)
            .invoke_async(&mut conn)
            .await?)
    }
    .await;
    let old = match swapped {
        Ok(old) => old,
        Err(err) => {
            if let Some(value) = &won {
                release_all(store, &mut conn, &[(public, value)]).await;
            }
            return Err(err);
        }
    };
    let old: Option<ApiKey> = old.map(|b| decode(&b, "api key")).transpose()?;
    if let Some(old) = old.filter(|old| old.public_key != key.public_key) {
        let retired = Index::PublicKey(&old.public_key);
        if let Some((holder, value)) = claims::holder(store, &mut conn, retired).await? {
            if holder == user {
                claims::release(store, &mut conn, retired, &value).await?;
            }
        }
    }
    tracing::debug!(user.id = user, "api key replaced");
    Ok(())
}
