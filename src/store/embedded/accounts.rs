//! Users and their API key pair inside the embedded store.
//!
//! A user row, its lowercased-name index entry, its key row and the public-key index entry
//! are always written in the same transaction, so a user never exists without a key and an
//! index never points at nothing.

use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use super::tables::{encode, load, next_id, API_KEYS, PUBLIC_KEYS, USERNAMES, USERS, USER_COUNTER};
use crate::store::{
    ApiKey, NewUser, ProfileUpdate, StoreError, StoreResult, Timestamp, User, UserId,
};

/// Creates the user and stores `key` as theirs. The key's `user_id` is overwritten with the
/// id assigned here, since the caller cannot know it beforehand.
pub(super) fn create_user(
    tx: &WriteTransaction,
    new: NewUser,
    mut key: ApiKey,
    now: Timestamp,
) -> StoreResult<User> {
    let lowered = new.username.to_lowercase();
    let mut usernames = tx.open_table(USERNAMES)?;
    if usernames.get(lowered.as_str())?.is_some() {
        return Err(StoreError::Conflict("username"));
    }
    let mut public_keys = tx.open_table(PUBLIC_KEYS)?;
    if public_keys.get(key.public_key.as_str())?.is_some() {
        return Err(StoreError::Conflict("public_key"));
    }
    let id = next_id(tx, USER_COUNTER)?;
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
    tx.open_table(USERS)?
        .insert(id, encode(&user, "user")?.as_slice())?;
    usernames.insert(lowered.as_str(), id)?;
    public_keys.insert(key.public_key.as_str(), id)?;
    tx.open_table(API_KEYS)?
        .insert(id, encode(&key, "api key")?.as_slice())?;
    tracing::debug!(user.id = id, "user created");
    Ok(user)
}

pub(super) fn user_by_id(tx: &ReadTransaction, id: UserId) -> StoreResult<Option<User>> {
    load(&tx.open_table(USERS)?, id, "user")
}

/// `lowered` must already be lowercased; the index holds lowercased names only.
pub(super) fn user_by_username(tx: &ReadTransaction, lowered: &str) -> StoreResult<Option<User>> {
    let id = tx.open_table(USERNAMES)?.get(lowered)?.map(|v| v.value());
    match id {
        Some(id) => user_by_id(tx, id),
        None => Ok(None),
    }
}

pub(super) fn update_profile(
    tx: &WriteTransaction,
    id: UserId,
    update: ProfileUpdate,
    now: Timestamp,
) -> StoreResult<User> {
    let mut users = tx.open_table(USERS)?;
    let mut user: User = load(&users, id, "user")?.ok_or(StoreError::NotFound("user"))?;
    if let Some(email) = update.email {
        user.email = email;
    }
    if let Some(bio) = update.bio {
        user.bio = bio;
    }
    if let Some(website) = update.website {
        user.website = website;
    }
    user.updated_at = now;
    users.insert(id, encode(&user, "user")?.as_slice())?;
    Ok(user)
}

pub(super) fn api_key_for_user(tx: &ReadTransaction, user: UserId) -> StoreResult<Option<ApiKey>> {
    load(&tx.open_table(API_KEYS)?, user, "api key")
}

pub(super) fn api_key_by_public(
    tx: &ReadTransaction,
    public_key: &str,
) -> StoreResult<Option<ApiKey>> {
    let owner = tx
        .open_table(PUBLIC_KEYS)?
        .get(public_key)?
        .map(|v| v.value());
    let Some(owner) = owner else {
        return Ok(None);
    };
    let key: Option<ApiKey> = api_key_for_user(tx, owner)?;
    // The index and the key row move together; a mismatch means a half-applied write.
    match key {
        Some(key) if key.public_key == public_key => Ok(Some(key)),
        _ => Err(StoreError::Corrupt(format!(
            "public key index points at user {owner} whose key differs"
        ))),
    }
}

/// Swaps the user's key pair; the old public key is dropped from the index in the same
/// transaction, so it stops resolving the moment the new one starts.
pub(super) fn replace_api_key(tx: &WriteTransaction, key: ApiKey) -> StoreResult<()> {
    let user = key.user_id;
    if tx.open_table(USERS)?.get(user)?.is_none() {
        return Err(StoreError::NotFound("user"));
    }
    let mut public_keys = tx.open_table(PUBLIC_KEYS)?;
    let holder = public_keys.get(key.public_key.as_str())?.map(|v| v.value());
    if holder.is_some_and(|holder| holder != user) {
        return Err(StoreError::Conflict("public_key"));
    }
    let mut keys = tx.open_table(API_KEYS)?;
    let old: Option<ApiKey> = load(&keys, user, "api key")?;
    if let Some(old) = old {
        public_keys.remove(old.public_key.as_str())?;
    }
    public_keys.insert(key.public_key.as_str(), user)?;
    keys.insert(user, encode(&key, "api key")?.as_slice())?;
    tracing::debug!(user.id = user, "api key replaced");
    Ok(())
}
