//! API-key management for a logged-in user: show the current public key, replace the
//! pair with a random one, or install a pair the user chose (e.g. exported from the old
//! service). Logging in with a key is in `sessions`.

use super::accounts::{AccountError, Accounts, ApiKeyInfo};
use super::fields::{self, FieldErrors};
use super::keys::{self, KeyPair};
use crate::store::{ApiKey, StoreError, Timestamp, UserId};

/// How many times a freshly generated key pair is retried when its public key happens to
/// be taken already (a 2^-128 event; the loop only keeps the code honest).
pub(super) const KEY_ATTEMPTS: usize = 3;

impl Accounts {
    /// The user's current public key, if they have one.
    pub async fn api_key(&self, user: UserId) -> Result<Option<ApiKeyInfo>, AccountError> {
        let key = self.inner.store.api_key_for_user(user).await?;
        Ok(key.map(|k| ApiKeyInfo {
            public_key: k.public_key,
            created_at: k.created_at,
        }))
    }

    /// Replaces the user's key pair with a new random one; the old pair stops working.
    pub async fn generate_api_key(&self, user: UserId) -> Result<KeyPair, AccountError> {
        for _ in 0..KEY_ATTEMPTS {
            let pair = KeyPair::generate();
            match self
                .inner
                .store
                .replace_api_key(api_key_record(user, &pair))
                .await
            {
                Ok(()) => {
                    tracing::info!(user.id = user, key.public = %pair.public, "api key replaced");
                    return Ok(pair);
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict("public_key").into())
    }

    /// Makes a pair the user chose their only pair (e.g. keys exported from the old
    /// service). Shapes are checked per [`keys`]; a public key held by another user is a
    /// field error.
    pub async fn set_custom_api_key(
        &self,
        user: UserId,
        public: Option<&str>,
        private: Option<&str>,
    ) -> Result<(), AccountError> {
        let mut errors = FieldErrors::new();
        let public = fields::required(public, "public_key", &mut errors);
        let private = fields::required(private, "private_key", &mut errors);
        if public.is_some_and(|p| !keys::is_public_key(p)) {
            fields::add(&mut errors, "public_key", fields::PUBLIC_KEY_SHAPE);
        }
        if private.is_some_and(|p| !keys::is_private_key(p)) {
            fields::add(&mut errors, "private_key", fields::PRIVATE_KEY_SHAPE);
        }
        let (Some(public), Some(private), true) = (public, private, errors.is_empty()) else {
            return Err(AccountError::Fields(errors));
        };
        let pair = KeyPair {
            public: public.to_owned(),
            private: private.to_owned(),
        };
        match self
            .inner
            .store
            .replace_api_key(api_key_record(user, &pair))
            .await
        {
            Ok(()) => {
                tracing::info!(user.id = user, key.public = %pair.public, "custom api key set");
                Ok(())
            }
            Err(StoreError::Conflict(_)) => {
                fields::add(&mut errors, "public_key", fields::PUBLIC_KEY_TAKEN);
                Err(AccountError::Fields(errors))
            }
            Err(e) => Err(e.into()),
        }
    }
}

pub(super) fn api_key_record(user: UserId, pair: &KeyPair) -> ApiKey {
    ApiKey {
        user_id: user,
        public_key: pair.public.clone(),
        private_key_sha256: pair.private_sha256(),
        created_at: Timestamp::now(),
    }
}
