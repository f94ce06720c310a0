//! A small in-memory [`Store`] for the auth tests: users, keys, refresh families and
//! throttle counters behave as the trait documents; router and audit methods, which auth
//! never calls, answer `Unavailable`. `set_down(true)` makes every call fail, to test how
//! accounts behave when storage is unreachable.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::store::*;

#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    down: AtomicBool,
}

#[derive(Default)]
struct State {
    users: Vec<User>,
    keys: Vec<ApiKey>,
    families: HashMap<String, Family>,
    throttle: HashMap<String, (Instant, u64)>,
}

struct Family {
    user: UserId,
    current: String,
    expires_at: Timestamp,
    revoked: bool,
}

impl MemoryStore {
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn state(&self) -> StoreResult<std::sync::MutexGuard<'_, State>> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("test store is down".into()));
        }
        Ok(self.state.lock().unwrap())
    }
}

fn not_here<T>() -> StoreResult<T> {
    Err(StoreError::Unavailable(
        "not kept by the auth test store".into(),
    ))
}

#[async_trait]
impl Store for MemoryStore {
    async fn ping(&self) -> StoreResult<()> {
        self.state().map(|_| ())
    }

    async fn create_user(&self, user: NewUser, key: ApiKey) -> StoreResult<User> {
        let mut s = self.state()?;
        if s.users
            .iter()
            .any(|u| u.username.eq_ignore_ascii_case(&user.username))
        {
            return Err(StoreError::Conflict("username"));
        }
        if s.keys.iter().any(|k| k.public_key == key.public_key) {
            return Err(StoreError::Conflict("public_key"));
        }
        let now = Timestamp::now();
        let id = s.users.len() as UserId + 1;
        let created = User {
            id,
            username: user.username,
            email: user.email,
            password_hash: user.password_hash,
            bio: String::new(),
            website: String::new(),
            created_at: now,
            updated_at: now,
        };
        s.users.push(created.clone());
        s.keys.push(ApiKey { user_id: id, ..key });
        Ok(created)
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        Ok(self.state()?.users.iter().find(|u| u.id == id).cloned())
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        let s = self.state()?;
        Ok(s.users
            .iter()
            .find(|u| u.username.eq_ignore_ascii_case(username))
            .cloned())
    }

    async fn update_profile(&self, id: UserId, update: ProfileUpdate) -> StoreResult<User> {
        let mut s = self.state()?;
        let u = s
            .users
            .iter_mut()
            .find(|u| u.id == id)
            .ok_or(StoreError::NotFound("user"))?;
        if let Some(e) = update.email {
            u.email = e;
        }
        if let Some(b) = update.bio {
            u.bio = b;
        }
        if let Some(w) = update.website {
            u.website = w;
        }
        u.updated_at = Timestamp::now();
        Ok(u.clone())
    }

    async fn api_key_for_user(&self, user: UserId) -> StoreResult<Option<ApiKey>> {
        Ok(self
            .state()?
            .keys
            .iter()
            .find(|k| k.user_id == user)
            .cloned())
    }

    async fn api_key_by_public(&self, public_key: &str) -> StoreResult<Option<ApiKey>> {
        Ok(self
            .state()?
            .keys
            .iter()
            .find(|k| k.public_key == public_key)
            .cloned())
    }

    async fn replace_api_key(&self, key: ApiKey) -> StoreResult<()> {
        let mut s = self.state()?;
        if s.keys
            .iter()
            .any(|k| k.public_key == key.public_key && k.user_id != key.user_id)
        {
            return Err(StoreError::Conflict("public_key"));
        }
        s.keys.retain(|k| k.user_id != key.user_id);
        s.keys.push(key);
        Ok(())
    }

    async fn create_router(&self, _: NewRouter) -> StoreResult<Router> {
        not_here()
    }
    async fn router(&self, _: RouterId) -> StoreResult<Option<Router>> {
        not_here()
    }
    async fn routers_for_user(&self, _: UserId) -> StoreResult<Vec<Router>> {
        not_here()
    }
    async fn all_routers(&self) -> StoreResult<Vec<Router>> {
        not_here()
    }
    async fn update_router(&self, _: Router) -> StoreResult<Router> {
        not_here()
    }
    async fn delete_router(&self, _: RouterId) -> StoreResult<Option<Router>> {
        not_here()
    }
    async fn set_router_status(&self, _: RouterId, _: RouterStatus) -> StoreResult<()> {
        not_here()
    }
    async fn router_status(&self, _: RouterId) -> StoreResult<RouterStatus> {
        not_here()
    }

    async fn create_refresh_family(
        &self,
        family: &str,
        user: UserId,
        jti: &str,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        let fam = Family {
            user,
            current: jti.to_owned(),
            expires_at,
            revoked: false,
        };
        self.state()?.families.insert(family.to_owned(), fam);
        Ok(())
    }

    async fn rotate_refresh(
        &self,
        family: &str,
        presented_jti: &str,
        new_jti: &str,
        expires_at: Timestamp,
    ) -> StoreResult<RefreshOutcome> {
        let mut s = self.state()?;
        let Some(f) = s.families.get_mut(family) else {
            return Ok(RefreshOutcome::Invalid);
        };
        if f.revoked || f.expires_at < Timestamp::now() {
            return Ok(RefreshOutcome::Invalid);
        }
        if f.current != presented_jti {
            f.revoked = true;
            return Ok(RefreshOutcome::ReuseDetected);
        }
        f.current = new_jti.to_owned();
        f.expires_at = expires_at;
        Ok(RefreshOutcome::Rotated { user_id: f.user })
    }

    async fn revoke_refresh_family(&self, family: &str) -> StoreResult<()> {
        if let Some(f) = self.state()?.families.get_mut(family) {
            f.revoked = true;
        }
        Ok(())
    }

    async fn throttle_hit(&self, key: &str, window: Duration) -> StoreResult<u64> {
        let mut s = self.state()?;
        let now = Instant::now();
        let entry = s.throttle.entry(key.to_owned()).or_insert((now, 0));
        if now.duration_since(entry.0) >= window {
            *entry = (now, 0);
        }
        entry.1 += 1;
        Ok(entry.1)
    }

    async fn throttle_reset(&self, key: &str) -> StoreResult<()> {
        self.state()?.throttle.remove(key);
        Ok(())
    }

    async fn append_audit(&self, _: AuditEntry) -> StoreResult<()> {
        not_here()
    }
    async fn recent_audit(&self, _: usize) -> StoreResult<Vec<AuditEntry>> {
        not_here()
    }
}
