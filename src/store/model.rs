//! Records the store keeps. Plain data: no I/O, no HTTP.

use serde::{Deserialize, Serialize};

pub type UserId = u64;
pub type RouterId = u64;

/// Microseconds since the Unix epoch, UTC. Stored as an integer so that every backend
/// keeps it the same way; rendered as RFC 3339 only at the HTTP edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(d.as_micros() as i64)
    }

    /// RFC 3339 with microseconds and `Z`, the way the old service rendered times.
    pub fn to_rfc3339(self) -> String {
        let nanos = (self.0 as i128) * 1000;
        let t = time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let fmt = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
        );
        t.format(&fmt).unwrap_or_default()
    }

    pub fn as_secs(self) -> i64 {
        self.0 / 1_000_000
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub email: String,
    /// Django format: `pbkdf2_sha256$<iterations>$<salt>$<base64 hash>`.
    pub password_hash: String,
    pub bio: String,
    pub website: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What registration supplies; the store assigns the id.
#[derive(Clone, Debug)]
pub struct NewUser {
    pub username: String,
    pub email: String,
    pub password_hash: String,
}

/// A partial profile change; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct ProfileUpdate {
    pub email: Option<String>,
    pub bio: Option<String>,
    pub website: Option<String>,
}

/// A user's API key pair. Only the SHA-256 of the private key is kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub user_id: UserId,
    /// 32 lowercase hex characters; unique across users.
    pub public_key: String,
    pub private_key_sha256: [u8; 32],
    pub created_at: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// The RouterOS API (8728, or API-SSL on 8729): one persistent session.
    Api,
    /// The RouterOS v7 REST API over HTTP keep-alive.
    Rest,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Api => "api",
            Transport::Rest => "rest",
        }
    }
}

/// A router password sealed with AES-256-GCM under a master key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSecret {
    /// Which master key sealed it, so keys can be rotated.
    pub key_id: u32,
    pub nonce: [u8; 12],
    /// Ciphertext followed by the 16-byte tag.
    pub ciphertext: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Router {
    pub id: RouterId,
    pub owner: UserId,
    pub name: String,
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: SealedSecret,
    pub transport: Transport,
    pub use_https: bool,
    /// `verify`, `insecure` or `pin:<sha256 hex>`.
    pub tls: String,
    pub tags: Vec<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A router before the store has given it an id.
#[derive(Clone, Debug)]
pub struct NewRouter {
    pub owner: UserId,
    pub name: String,
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: SealedSecret,
    pub transport: Transport,
    pub use_https: bool,
    pub tls: String,
    pub tags: Vec<String>,
}

impl NewRouter {
    /// The stored router, once the backend has given it an id.
    pub fn into_router(self, id: RouterId, now: Timestamp) -> Router {
        Router {
            id,
            owner: self.owner,
            name: self.name,
            host: self.host,
            port: self.port,
            username: self.username,
            password: self.password,
            transport: self.transport,
            use_https: self.use_https,
            tls: self.tls,
            tags: self.tags,
            created_at: now,
            updated_at: now,
        }
    }
}

/// What the session for a router last learnt. Rebuilt by the sessions after a restart,
/// so a backend may keep it in memory.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterStatus {
    pub is_online: bool,
    pub last_checked: Option<Timestamp>,
    pub last_error: Option<String>,
    pub routeros_version: Option<String>,
}

/// The outcome of presenting a refresh token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The presented token was the family's current one; `new_jti` is current now.
    Rotated { user_id: UserId },
    /// The presented token had already been spent: the whole family is now revoked.
    ReuseDetected,
    /// Unknown family, revoked family, or expired.
    Invalid,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: Timestamp,
    pub user_id: Option<UserId>,
    /// What happened, e.g. `router.create`, `login.failed`.
    pub action: String,
    pub router_id: Option<RouterId>,
    pub detail: String,
}
