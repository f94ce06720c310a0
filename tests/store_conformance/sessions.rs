//! Conformance cases for refresh-token families, login throttling and the audit trail.

use std::time::Duration;

use cloudpilot::store::{AuditEntry, RefreshOutcome, Store, StoreError, Timestamp};

use super::fixtures::in_secs;

/// Each rotation spends the presented token and makes the new one current.
pub async fn refresh_rotation_moves_current_token<S: Store>(store: &S) {
    store
        .create_refresh_family("fam", 7, "jti-1", in_secs(3600))
        .await
        .unwrap();
    let first = store
        .rotate_refresh("fam", "jti-1", "jti-2", in_secs(3600))
        .await
        .unwrap();
    assert_eq!(first, RefreshOutcome::Rotated { user_id: 7 });
    let second = store
        .rotate_refresh("fam", "jti-2", "jti-3", in_secs(3600))
        .await
        .unwrap();
    assert_eq!(second, RefreshOutcome::Rotated { user_id: 7 });
}

/// Replaying a spent token revokes the family: even the current token stops working.
pub async fn refresh_reuse_of_spent_token_revokes_family<S: Store>(store: &S) {
    store
        .create_refresh_family("fam", 7, "jti-1", in_secs(3600))
        .await
        .unwrap();
    store
        .rotate_refresh("fam", "jti-1", "jti-2", in_secs(3600))
        .await
        .unwrap();
    let replay = store
        .rotate_refresh("fam", "jti-1", "jti-x", in_secs(3600))
        .await
        .unwrap();
    assert_eq!(replay, RefreshOutcome::ReuseDetected);
    let current = store
        .rotate_refresh("fam", "jti-2", "jti-3", in_secs(3600))
        .await
        .unwrap();
    assert_eq!(current, RefreshOutcome::Invalid);
    // Other families are untouched.
    store
        .create_refresh_family("other", 8, "o-1", in_secs(3600))
        .await
        .unwrap();
    let other = store
        .rotate_refresh("other", "o-1", "o-2", in_secs(3600))
        .await
        .unwrap();
    assert_eq!(other, RefreshOutcome::Rotated { user_id: 8 });
}

/// Logout revokes the family; revoking again or revoking an unknown family is harmless.
pub async fn refresh_revoked_family_is_invalid<S: Store>(store: &S) {
    store
        .create_refresh_family("fam", 7, "jti-1", in_secs(3600))
        .await
        .unwrap();
    store.revoke_refresh_family("fam").await.unwrap();
    let after = store
        .rotate_refresh("fam", "jti-1", "jti-2", in_secs(3600))
        .await
        .unwrap();
    assert_eq!(after, RefreshOutcome::Invalid);
    store.revoke_refresh_family("fam").await.unwrap();
    store.revoke_refresh_family("never-existed").await.unwrap();
}

/// Unknown families and families past their expiry refuse rotation; a rotation's new
/// expiry is the one that counts.
pub async fn refresh_unknown_or_expired_family_is_invalid<S: Store>(store: &S) {
    let unknown = store
        .rotate_refresh("nope", "jti-1", "jti-2", in_secs(3600))
        .await
        .unwrap();
    assert_eq!(unknown, RefreshOutcome::Invalid);

    store
        .create_refresh_family("old", 7, "jti-1", in_secs(-5))
        .await
        .unwrap();
    let expired = store
        .rotate_refresh("old", "jti-1", "jti-2", in_secs(3600))
        .await
        .unwrap();
    assert_eq!(expired, RefreshOutcome::Invalid);

    store
        .create_refresh_family("short", 7, "s-1", in_secs(3600))
        .await
        .unwrap();
    let rotated = store
        .rotate_refresh("short", "s-1", "s-2", in_secs(-1))
        .await
        .unwrap();
    assert_eq!(rotated, RefreshOutcome::Rotated { user_id: 7 });
    let after_expiry = store
        .rotate_refresh("short", "s-2", "s-3", in_secs(3600))
        .await
        .unwrap();
    assert_eq!(after_expiry, RefreshOutcome::Invalid);
}

/// A live family id cannot be started twice; an expired one's id is free again.
pub async fn refresh_family_ids_are_unique_while_live<S: Store>(store: &S) {
    store
        .create_refresh_family("fam", 7, "jti-1", in_secs(3600))
        .await
        .unwrap();
    let err = store
        .create_refresh_family("fam", 8, "jti-9", in_secs(3600))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "got {err:?}");
    let still = store
        .rotate_refresh("fam", "jti-1", "jti-2", in_secs(3600))
        .await
        .unwrap();
    assert_eq!(still, RefreshOutcome::Rotated { user_id: 7 });

    store
        .create_refresh_family("stale", 7, "s-1", in_secs(-5))
        .await
        .unwrap();
    store
        .create_refresh_family("stale", 9, "s-new", in_secs(3600))
        .await
        .expect("an expired family's id can be reused");
    let fresh = store
        .rotate_refresh("stale", "s-new", "s-2", in_secs(3600))
        .await
        .unwrap();
    assert_eq!(fresh, RefreshOutcome::Rotated { user_id: 9 });
}

pub async fn throttle_counts_hits_within_window<S: Store>(store: &S) {
    let window = Duration::from_secs(30);
    for expected in 1..=4 {
        assert_eq!(
            store.throttle_hit("login:alice", window).await.unwrap(),
            expected
        );
    }
}

/// Once the window has passed, counting starts again from one.
pub async fn throttle_window_restarts_after_it_ends<S: Store>(store: &S) {
    let window = Duration::from_millis(300);
    assert_eq!(store.throttle_hit("login:bob", window).await.unwrap(), 1);
    assert_eq!(store.throttle_hit("login:bob", window).await.unwrap(), 2);
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(store.throttle_hit("login:bob", window).await.unwrap(), 1);
}

/// Reset clears one key only; keys count independently.
pub async fn throttle_reset_and_keys_are_independent<S: Store>(store: &S) {
    let window = Duration::from_secs(30);
    store.throttle_hit("login:a", window).await.unwrap();
    store.throttle_hit("login:a", window).await.unwrap();
    assert_eq!(store.throttle_hit("login:b", window).await.unwrap(), 1);
    store.throttle_reset("login:a").await.unwrap();
    assert_eq!(store.throttle_hit("login:a", window).await.unwrap(), 1);
    assert_eq!(store.throttle_hit("login:b", window).await.unwrap(), 2);
    store.throttle_reset("login:never").await.unwrap();
}

fn entry(at: i64, action: &str) -> AuditEntry {
    AuditEntry {
        at: Timestamp(at),
        user_id: Some(1),
        action: action.to_owned(),
        router_id: None,
        detail: String::new(),
    }
}

/// Newest time first; entries with the same time come newest-appended first.
pub async fn audit_lists_newest_first_with_limit<S: Store>(store: &S) {
    assert!(store.recent_audit(10).await.unwrap().is_empty());
    for (at, action) in [(200, "b"), (100, "a"), (300, "c1"), (300, "c2")] {
        store.append_audit(entry(at, action)).await.unwrap();
    }
    let actions = |entries: Vec<AuditEntry>| -> Vec<String> {
        entries.into_iter().map(|e| e.action).collect()
    };
    assert_eq!(
        actions(store.recent_audit(10).await.unwrap()),
        vec!["c2", "c1", "b", "a"]
    );
    assert_eq!(
        actions(store.recent_audit(2).await.unwrap()),
        vec!["c2", "c1"]
    );
    assert_eq!(store.recent_audit(0).await.unwrap(), vec![]);
    let full = store.recent_audit(1).await.unwrap();
    assert_eq!(full, vec![entry(300, "c2")]);
}
