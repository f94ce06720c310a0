//! Records the conformance cases build their inputs from.

use cloudpilot::store::{ApiKey, NewRouter, NewUser, SealedSecret, Timestamp, Transport, UserId};

pub fn new_user(username: &str) -> NewUser {
    NewUser {
        username: username.to_owned(),
        email: format!("{}@example.test", username.to_lowercase()),
        password_hash: "pbkdf2_sha256$600000$salt$aGFzaA==".to_owned(),
    }
}

/// A key pair whose public half is `public_key`; `user_id` 0 since the store assigns it on
/// creation.
pub fn api_key(public_key: &str) -> ApiKey {
    ApiKey {
        user_id: 0,
        public_key: public_key.to_owned(),
        private_key_sha256: [7; 32],
        created_at: Timestamp::now(),
    }
}

/// An opaque stand-in for a sealed password: the store never looks inside.
pub fn sealed(marker: u8) -> SealedSecret {
    SealedSecret {
        key_id: 1,
        nonce: [marker; 12],
        ciphertext: vec![marker; 24],
    }
}

pub fn new_router(owner: UserId, name: &str) -> NewRouter {
    NewRouter {
        owner,
        name: name.to_owned(),
        host: "127.0.0.1".to_owned(),
        port: 8728,
        username: "admin".to_owned(),
        password: sealed(1),
        transport: Transport::Api,
        use_https: false,
        tls: "verify".to_owned(),
        tags: vec!["lab".to_owned()],
    }
}

/// A timestamp `secs` seconds from now (negative for the past).
pub fn in_secs(secs: i64) -> Timestamp {
    Timestamp(Timestamp::now().0 + secs * 1_000_000)
}
