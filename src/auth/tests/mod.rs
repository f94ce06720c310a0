//! Tests of [`Accounts`](super::Accounts) against a small in-memory store, and the fixtures
//! they share.

mod accounts;
mod memory_store;
mod sessions;

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::store::Store;
use memory_store::MemoryStore;

pub(super) const SECRET: &[u8] = b"test-secret-test-secret-test-secret!";

pub(super) fn service_with(iterations: u32, failures: u64) -> (Accounts, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::default());
    let tokens =
        TokenIssuer::new(SECRET, Duration::from_secs(600), Duration::from_secs(3600)).unwrap();
    let policy = AccountPolicy {
        pbkdf2_iterations: iterations,
        login_failures_per_window: failures,
        login_window: Duration::from_secs(60),
    };
    (
        Accounts::new(store.clone() as Arc<dyn Store>, tokens, policy),
        store,
    )
}

pub(super) fn service() -> (Accounts, Arc<MemoryStore>) {
    service_with(1000, 10)
}

pub(super) fn input(username: &str, password: &str) -> RegisterInput {
    RegisterInput {
        username: Some(username.into()),
        password: Some(password.into()),
        email: None,
    }
}

pub(super) fn field_errors(err: AccountError) -> FieldErrors {
    match err {
        AccountError::Fields(f) => f,
        other => panic!("expected field errors, got {other:?}"),
    }
}
