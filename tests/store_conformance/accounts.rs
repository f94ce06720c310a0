//! Conformance cases for users and API keys.

use cloudpilot::store::{ApiKey, ProfileUpdate, Store, StoreError};

use super::fixtures::{api_key, new_user};

/// A reachable backend answers the health check.
pub async fn ping_answers<S: Store>(store: &S) {
    store.ping().await.expect("ping");
}

/// Ids are assigned by the store, distinct per user, and the key is filed under the new id.
pub async fn create_user_assigns_ids_and_stores_key<S: Store>(store: &S) {
    let alice = store
        .create_user(new_user("Alice"), api_key("aa11"))
        .await
        .unwrap();
    let bob = store
        .create_user(new_user("bob"), api_key("bb22"))
        .await
        .unwrap();
    assert_ne!(alice.id, bob.id);
    assert_eq!(
        alice.username, "Alice",
        "the name keeps the case it was given"
    );
    assert_eq!(alice.bio, "");
    let key = store.api_key_for_user(alice.id).await.unwrap().unwrap();
    assert_eq!(key.user_id, alice.id);
    assert_eq!(key.public_key, "aa11");
    let by_public = store.api_key_by_public("bb22").await.unwrap().unwrap();
    assert_eq!(by_public.user_id, bob.id);
}

/// "ALICE" collides with "Alice"; the refused registration leaves its key nowhere.
pub async fn duplicate_username_ignores_case_and_leaves_no_key<S: Store>(store: &S) {
    store
        .create_user(new_user("Alice"), api_key("aa11"))
        .await
        .unwrap();
    let err = store
        .create_user(new_user("ALICE"), api_key("cc33"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict("username")),
        "got {err:?}"
    );
    assert_eq!(store.api_key_by_public("cc33").await.unwrap(), None);
}

/// A taken public key refuses the registration and leaves no user behind.
pub async fn duplicate_public_key_conflicts_and_leaves_no_user<S: Store>(store: &S) {
    store
        .create_user(new_user("alice"), api_key("aa11"))
        .await
        .unwrap();
    let err = store
        .create_user(new_user("bob"), api_key("aa11"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict("public_key")),
        "got {err:?}"
    );
    assert_eq!(store.user_by_username("bob").await.unwrap(), None);
    // The name is still free: nothing of the failed attempt reserved it.
    store
        .create_user(new_user("bob"), api_key("bb22"))
        .await
        .expect("bob can register with a fresh key");
}

/// Racing registrations of one name (in differing case) admit exactly one user.
pub async fn concurrent_registrations_of_one_name_admit_exactly_one<S: Store>(store: &S) {
    let names = [
        "carol", "Carol", "CAROL", "cArOl", "carol", "CaRoL", "caroL", "CAROl",
    ];
    let attempts = names.iter().enumerate().map(|(i, name)| {
        let key = format!("{i:032x}");
        async move { store.create_user(new_user(name), api_key(&key)).await }
    });
    let outcomes = futures::future::join_all(attempts).await;
    let winners = outcomes.iter().filter(|o| o.is_ok()).count();
    assert_eq!(winners, 1, "{outcomes:?}");
    for outcome in &outcomes {
        if let Err(err) = outcome {
            assert!(
                matches!(err, StoreError::Conflict("username")),
                "got {err:?}"
            );
        }
    }
    let winner = store.user_by_username("carol").await.unwrap().unwrap();
    let key = store.api_key_for_user(winner.id).await.unwrap().unwrap();
    let mut resolvable = 0;
    for i in 0..names.len() {
        if store
            .api_key_by_public(&format!("{i:032x}"))
            .await
            .unwrap()
            .is_some()
        {
            resolvable += 1;
        }
    }
    assert_eq!(
        resolvable, 1,
        "only the winner's key {} may resolve",
        key.public_key
    );
}

pub async fn lookups_find_users_by_id_and_any_case_of_name<S: Store>(store: &S) {
    let alice = store
        .create_user(new_user("Alice"), api_key("aa11"))
        .await
        .unwrap();
    assert_eq!(
        store.user_by_id(alice.id).await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(
        store.user_by_username("aLiCe").await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(store.user_by_username("bob").await.unwrap(), None);
    assert_eq!(store.user_by_id(alice.id + 1000).await.unwrap(), None);
    assert_eq!(store.api_key_for_user(alice.id + 1000).await.unwrap(), None);
    assert_eq!(store.api_key_by_public("ffff").await.unwrap(), None);
}

/// `None` fields stay as they were; given ones change and persist.
pub async fn update_profile_changes_only_given_fields<S: Store>(store: &S) {
    let alice = store
        .create_user(new_user("alice"), api_key("aa11"))
        .await
        .unwrap();
    let update = ProfileUpdate {
        bio: Some("network tinkerer".to_owned()),
        website: Some("https://alice.example.test".to_owned()),
        ..ProfileUpdate::default()
    };
    let updated = store.update_profile(alice.id, update).await.unwrap();
    assert_eq!(updated.email, alice.email);
    assert_eq!(updated.bio, "network tinkerer");
    assert_eq!(updated.website, "https://alice.example.test");
    assert!(updated.updated_at >= alice.updated_at);
    let email_only = ProfileUpdate {
        email: Some("new@example.test".to_owned()),
        ..ProfileUpdate::default()
    };
    store.update_profile(alice.id, email_only).await.unwrap();
    let stored = store.user_by_id(alice.id).await.unwrap().unwrap();
    assert_eq!(stored.email, "new@example.test");
    assert_eq!(stored.bio, "network tinkerer");
    assert_eq!(stored.password_hash, alice.password_hash);
}

pub async fn update_profile_of_absent_user_is_not_found<S: Store>(store: &S) {
    let err = store
        .update_profile(4242, ProfileUpdate::default())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound("user")), "got {err:?}");
}

/// After a replacement the old public key no longer resolves and the new one does.
pub async fn replace_api_key_retires_old_public_key<S: Store>(store: &S) {
    let alice = store
        .create_user(new_user("alice"), api_key("aa11"))
        .await
        .unwrap();
    let fresh = ApiKey {
        user_id: alice.id,
        private_key_sha256: [9; 32],
        ..api_key("dd44")
    };
    store.replace_api_key(fresh.clone()).await.unwrap();
    assert_eq!(store.api_key_by_public("aa11").await.unwrap(), None);
    assert_eq!(
        store.api_key_by_public("dd44").await.unwrap(),
        Some(fresh.clone())
    );
    assert_eq!(
        store.api_key_for_user(alice.id).await.unwrap(),
        Some(fresh.clone())
    );
    // Storing the same pair again is allowed: the key is already this user's.
    store.replace_api_key(fresh.clone()).await.unwrap();
    assert_eq!(store.api_key_by_public("dd44").await.unwrap(), Some(fresh));
}

/// Taking another user's public key is refused and both users keep their keys.
pub async fn replace_api_key_taken_by_other_user_changes_nothing<S: Store>(store: &S) {
    let alice = store
        .create_user(new_user("alice"), api_key("aa11"))
        .await
        .unwrap();
    let bob = store
        .create_user(new_user("bob"), api_key("bb22"))
        .await
        .unwrap();
    let stolen = ApiKey {
        user_id: alice.id,
        ..api_key("bb22")
    };
    let err = store.replace_api_key(stolen).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict("public_key")),
        "got {err:?}"
    );
    let alice_key = store.api_key_by_public("aa11").await.unwrap().unwrap();
    assert_eq!(alice_key.user_id, alice.id);
    let bob_key = store.api_key_by_public("bb22").await.unwrap().unwrap();
    assert_eq!(bob_key.user_id, bob.id);
    let alice_current = store.api_key_for_user(alice.id).await.unwrap().unwrap();
    assert_eq!(alice_current.public_key, "aa11");
}

pub async fn replace_api_key_of_absent_user_is_not_found<S: Store>(store: &S) {
    let orphan = ApiKey {
        user_id: 4242,
        ..api_key("ee55")
    };
    let err = store.replace_api_key(orphan).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound("user")), "got {err:?}");
    assert_eq!(store.api_key_by_public("ee55").await.unwrap(), None);
}
