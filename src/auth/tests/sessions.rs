//! Logging in (throttling, equal timing), API-key login, refresh rotation, logout.

use std::time::{Duration, Instant};

use super::*;
use crate::auth::*;

#[tokio::test]
async fn unknown_user_and_wrong_password_get_the_same_answer() {
    let (accounts, _) = service();
    accounts
        .register(input("dave", "s3cret-pass"))
        .await
        .unwrap();
    let wrong = accounts.login("dave", "wrong-pass").await.unwrap_err();
    let unknown = accounts.login("nobody", "wrong-pass").await.unwrap_err();
    assert!(matches!(wrong, AccountError::InvalidCredentials));
    assert!(matches!(unknown, AccountError::InvalidCredentials));
    assert!(matches!(
        accounts.login("", "x").await,
        Err(AccountError::CredentialsMissing)
    ));
    assert!(matches!(
        accounts.login("dave", "").await,
        Err(AccountError::CredentialsMissing)
    ));
}

/// Without the decoy an unknown user answers in microseconds while a wrong password costs
/// a full PBKDF2 run; the 1/3 bound leaves room for a busy machine.
#[tokio::test]
async fn unknown_user_costs_as_much_time_as_a_wrong_password() {
    let (accounts, _) = service_with(20_000, 100);
    accounts
        .register(input("erin", "s3cret-pass"))
        .await
        .unwrap();
    let mut wrong = Duration::MAX;
    let mut unknown = Duration::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let _ = accounts.login("erin", "wrong-pass").await;
        wrong = wrong.min(t.elapsed());
        let t = Instant::now();
        let _ = accounts.login("nobody", "wrong-pass").await;
        unknown = unknown.min(t.elapsed());
    }
    assert!(
        unknown * 3 > wrong,
        "unknown {unknown:?} vs wrong password {wrong:?}"
    );
}

#[tokio::test]
async fn failed_logins_beyond_the_limit_are_throttled_per_username() {
    let (accounts, _) = service_with(1000, 3);
    accounts
        .register(input("frank", "s3cret-pass"))
        .await
        .unwrap();
    accounts
        .register(input("grace", "s3cret-pass"))
        .await
        .unwrap();
    for _ in 0..3 {
        let e = accounts.login("frank", "wrong-pass").await.unwrap_err();
        assert!(matches!(e, AccountError::InvalidCredentials));
    }
    // Over the limit: refused before the password is even checked, right or not, and
    // regardless of the name's case.
    let e = accounts.login("FRANK", "s3cret-pass").await.unwrap_err();
    assert!(
        matches!(
            e,
            AccountError::Throttled {
                retry_after_secs: 60
            }
        ),
        "{e:?}"
    );
    accounts.login("grace", "s3cret-pass").await.unwrap();
}

#[tokio::test]
async fn a_successful_login_resets_the_failure_count() {
    let (accounts, _) = service_with(1000, 3);
    accounts
        .register(input("heidi", "s3cret-pass"))
        .await
        .unwrap();
    for _ in 0..2 {
        let _ = accounts.login("heidi", "wrong-pass").await;
    }
    accounts.login("heidi", "s3cret-pass").await.unwrap();
    for _ in 0..3 {
        let e = accounts.login("heidi", "wrong-pass").await.unwrap_err();
        assert!(matches!(e, AccountError::InvalidCredentials), "{e:?}");
    }
}

#[tokio::test]
async fn api_key_login_refuses_wrong_unknown_and_malformed_keys_alike() {
    let (accounts, _) = service();
    let reg = accounts
        .register(input("ivan", "s3cret-pass"))
        .await
        .unwrap();
    let other_private = KeyPair::generate().private;
    for (public, private) in [
        (reg.api_public.as_str(), other_private.as_str()),
        ("0123456789abcdef0123456789abcdef", reg.api_private.as_str()),
        ("NOT-A-KEY", reg.api_private.as_str()),
    ] {
        let e = accounts.api_key_login(public, private).await.unwrap_err();
        assert!(matches!(e, AccountError::InvalidApiKeys), "{e:?}");
    }
    let e = accounts
        .api_key_login("", &reg.api_private)
        .await
        .unwrap_err();
    assert!(matches!(e, AccountError::ApiKeysMissing));
}

#[tokio::test]
async fn refresh_rotates_and_a_spent_token_revokes_the_family() {
    let (accounts, _) = service();
    accounts
        .register(input("judy", "s3cret-pass"))
        .await
        .unwrap();
    let s = accounts.login("judy", "s3cret-pass").await.unwrap();
    let first = accounts.refresh(&s.refresh_token).await.unwrap();
    assert_eq!(
        accounts.verify_access(&first.access_token).unwrap().user_id,
        s.user.id
    );
    assert_ne!(first.refresh_token, s.refresh_token);
    // Presenting the spent token again: refused, and the whole family goes with it.
    assert!(matches!(
        accounts.refresh(&s.refresh_token).await,
        Err(AccountError::TokenInvalid)
    ));
    assert!(matches!(
        accounts.refresh(&first.refresh_token).await,
        Err(AccountError::TokenInvalid)
    ));
    // Another login starts a fresh family that works.
    let s2 = accounts.login("judy", "s3cret-pass").await.unwrap();
    accounts.refresh(&s2.refresh_token).await.unwrap();
}

#[tokio::test]
async fn refresh_refuses_access_tokens_and_garbage() {
    let (accounts, _) = service();
    accounts
        .register(input("ken", "s3cret-pass"))
        .await
        .unwrap();
    let s = accounts.login("ken", "s3cret-pass").await.unwrap();
    assert!(matches!(
        accounts.refresh(&s.access_token).await,
        Err(AccountError::TokenInvalid)
    ));
    assert!(matches!(
        accounts.refresh("garbage").await,
        Err(AccountError::TokenInvalid)
    ));
    assert!(matches!(
        accounts.verify_access(&s.refresh_token),
        Err(TokenError::WrongType { .. })
    ));
}

#[tokio::test]
async fn logout_revokes_only_the_owners_family() {
    let (accounts, _) = service();
    accounts
        .register(input("lena", "s3cret-pass"))
        .await
        .unwrap();
    accounts
        .register(input("mike", "s3cret-pass"))
        .await
        .unwrap();
    let lena = accounts.login("lena", "s3cret-pass").await.unwrap();
    let mike = accounts.login("mike", "s3cret-pass").await.unwrap();
    let e = accounts
        .logout(lena.user.id, &mike.refresh_token)
        .await
        .unwrap_err();
    assert!(matches!(e, AccountError::TokenInvalid));
    let mike_next = accounts.refresh(&mike.refresh_token).await.unwrap();
    accounts
        .logout(lena.user.id, &lena.refresh_token)
        .await
        .unwrap();
    assert!(matches!(
        accounts.refresh(&lena.refresh_token).await,
        Err(AccountError::TokenInvalid)
    ));
    accounts.refresh(&mike_next.refresh_token).await.unwrap();
}

#[tokio::test]
async fn storage_outage_surfaces_as_a_store_error() {
    let (accounts, store) = service();
    accounts
        .register(input("rita", "s3cret-pass"))
        .await
        .unwrap();
    store.set_down(true);
    let e = accounts.login("rita", "s3cret-pass").await.unwrap_err();
    assert!(matches!(e, AccountError::Store(_)), "{e:?}");
    let e = accounts
        .register(input("sam", "s3cret-pass"))
        .await
        .unwrap_err();
    assert!(matches!(e, AccountError::Store(_)), "{e:?}");
}

#[tokio::test]
async fn debug_output_never_shows_secrets() {
    let (accounts, _) = service();
    let mut i = input("tess", "s3cret-pass");
    assert!(!format!("{i:?}").contains("s3cret-pass"));
    i.email = Some("t@example.com".into());
    let reg = accounts.register(i).await.unwrap();
    assert!(!format!("{reg:?}").contains(&reg.api_private));
    let s = accounts.login("tess", "s3cret-pass").await.unwrap();
    let shown = format!("{s:?}");
    assert!(!shown.contains(&s.access_token) && !shown.contains(&s.refresh_token));
    let pair = accounts.refresh(&s.refresh_token).await.unwrap();
    assert!(!format!("{pair:?}").contains(&pair.refresh_token));
    assert!(!format!("{accounts:?}").contains("test-secret"));
}
