//! Logging in and staying logged in: password and API-key login, login throttling,
//! refresh-token rotation, logout, and access-token checks.
//!
//! Timing: a login that names no user verifies the password against a decoy hash with the
//! configured iteration count, and an API-key login that names no key compares against a
//! decoy digest, so neither answer tells an attacker which half was wrong. A stored hash
//! with a different iteration count than configured (imported from the old service) costs
//! its own count; re-hashing on login would need a store method to replace the hash.
//!
//! Throttling counts attempts per lowercased user name in the store's fixed window and
//! resets on success, so what is limited is failures since the last success. The store does
//! not say when its window started, so `retry_after_secs` is the whole window: an upper
//! bound, never too early.

use super::accounts::{AccountError, Accounts, Principal, Profile, Session, TokenPair};
use super::keys::{self, random_hex};
use super::password;
use super::tokens::{TokenError, TokenType};
use crate::store::{RefreshOutcome, User, UserId};

impl Accounts {
    /// Logs in with a user name (case-insensitive) and password.
    pub async fn login(&self, username: &str, password: &str) -> Result<Session, AccountError> {
        let username = username.trim();
        if username.is_empty() || password.is_empty() {
            return Err(AccountError::CredentialsMissing);
        }
        let inner = &self.inner;
        let throttle_key = format!("login:{}", username.to_lowercase());
        let attempts = inner
            .store
            .throttle_hit(&throttle_key, inner.policy.login_window)
            .await?;
        if attempts > inner.policy.login_failures_per_window {
            tracing::info!(user.name = %username, attempts, "login throttled");
            return Err(AccountError::Throttled {
                retry_after_secs: inner.policy.login_window.as_secs().max(1),
            });
        }
        let user = inner.store.user_by_username(username).await?;
        let stored_hash = user.as_ref().map(|u| u.password_hash.clone());
        let decoy = inner.decoy.clone();
        let password = password.to_owned();
        let matched = tokio::task::spawn_blocking(move || match stored_hash {
            Some(hash) => password::verify_password(&password, &hash),
            None => decoy.burn(&password),
        })
        .await
        .map_err(|_| AccountError::HashingAborted)?;
        let Some(user) = user.filter(|_| matched) else {
            tracing::info!(user.name = %username, attempts, "login failed");
            return Err(AccountError::InvalidCredentials);
        };
        inner.store.throttle_reset(&throttle_key).await?;
        tracing::debug!(user.id = user.id, "login succeeded");
        self.start_session(&user).await
    }

    /// Logs in with an API key pair.
    pub async fn api_key_login(
        &self,
        public: &str,
        private: &str,
    ) -> Result<Session, AccountError> {
        let (public, private) = (public.trim(), private.trim());
        if public.is_empty() || private.is_empty() {
            return Err(AccountError::ApiKeysMissing);
        }
        let inner = &self.inner;
        let stored = if keys::is_public_key(public) {
            inner.store.api_key_by_public(public).await?
        } else {
            None
        };
        let digest = stored
            .as_ref()
            .map_or(&inner.decoy_key_sha256, |k| &k.private_key_sha256);
        let matched = keys::private_matches(private, digest);
        let Some(key) = stored.filter(|_| matched) else {
            tracing::info!(key.public = %public, "api key login failed");
            return Err(AccountError::InvalidApiKeys);
        };
        let Some(user) = inner.store.user_by_id(key.user_id).await? else {
            tracing::info!(key.public = %public, user.id = key.user_id, "api key of no user");
            return Err(AccountError::InvalidApiKeys);
        };
        tracing::debug!(user.id = user.id, "api key login succeeded");
        self.start_session(&user).await
    }

    /// Spends `refresh_token` and returns a new access token and the family's next refresh
    /// token. Presenting an already spent token revokes its whole family.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, AccountError> {
        let inner = &self.inner;
        let claims = inner
            .tokens
            .verify(refresh_token, TokenType::Refresh)
            .map_err(|e| rejected_token(&e))?;
        let family = claims.fam.unwrap_or_default();
        let next = inner
            .tokens
            .issue_refresh(claims.user_id, &family)
            .map_err(AccountError::TokenIssue)?;
        let outcome = inner
            .store
            .rotate_refresh(&family, &claims.jti, &next.jti, next.expires_at)
            .await?;
        match outcome {
            RefreshOutcome::Rotated { user_id } if user_id == claims.user_id => {
                let access_token = inner
                    .tokens
                    .issue_access(user_id)
                    .map_err(AccountError::TokenIssue)?;
                tracing::debug!(user.id = user_id, "refresh token rotated");
                Ok(TokenPair {
                    access_token,
                    refresh_token: next.token,
                })
            }
            RefreshOutcome::Rotated { user_id } => {
                // A family recorded for another user than the token names: never issued by
                // us that way, so treat the family as compromised.
                tracing::warn!(
                    user.id = user_id,
                    token.user_id = claims.user_id,
                    "refresh family owner mismatch; revoking"
                );
                inner.store.revoke_refresh_family(&family).await?;
                Err(AccountError::TokenInvalid)
            }
            RefreshOutcome::ReuseDetected => {
                tracing::warn!(
                    user.id = claims.user_id,
                    "spent refresh token presented; family revoked"
                );
                Err(AccountError::TokenInvalid)
            }
            RefreshOutcome::Invalid => Err(AccountError::TokenInvalid),
        }
    }

    /// Revokes the family of `refresh_token`, which must be valid and belong to `user`.
    pub async fn logout(&self, user: UserId, refresh_token: &str) -> Result<(), AccountError> {
        let claims = self
            .inner
            .tokens
            .verify(refresh_token, TokenType::Refresh)
            .map_err(|e| rejected_token(&e))?;
        if claims.user_id != user {
            tracing::info!(
                user.id = user,
                token.user_id = claims.user_id,
                "logout with another user's token"
            );
            return Err(AccountError::TokenInvalid);
        }
        let family = claims.fam.unwrap_or_default();
        self.inner.store.revoke_refresh_family(&family).await?;
        tracing::debug!(user.id = user, "logged out");
        Ok(())
    }

    /// Checks an access token: signature, expiry and type only, no store round trip.
    pub fn verify_access(&self, token: &str) -> Result<Principal, TokenError> {
        let claims = self.inner.tokens.verify(token, TokenType::Access)?;
        Ok(Principal {
            user_id: claims.user_id,
        })
    }

    /// Issues an access token and a refresh token that starts a new family.
    async fn start_session(&self, user: &User) -> Result<Session, AccountError> {
        let inner = &self.inner;
        let family = random_hex(16);
        let refresh = inner
            .tokens
            .issue_refresh(user.id, &family)
            .map_err(AccountError::TokenIssue)?;
        let access_token = inner
            .tokens
            .issue_access(user.id)
            .map_err(AccountError::TokenIssue)?;
        inner
            .store
            .create_refresh_family(&family, user.id, &refresh.jti, refresh.expires_at)
            .await?;
        Ok(Session {
            user: Profile::from(user),
            access_token,
            refresh_token: refresh.token,
        })
    }
}

fn rejected_token(err: &TokenError) -> AccountError {
    tracing::debug!(reason = %err, "refresh token rejected");
    AccountError::TokenInvalid
}
