//! Registration, profiles and API-key management.

use super::*;
use crate::auth::fields::*;
use crate::auth::*;
use crate::store::ProfileUpdate;

#[tokio::test]
async fn registration_creates_a_user_whose_password_and_keys_work() {
    let (accounts, _) = service();
    let reg = accounts
        .register(input("alice", "s3cret-pass"))
        .await
        .unwrap();
    assert_eq!(reg.user.username, "alice");
    assert!(keys::is_public_key(&reg.api_public) && keys::is_private_key(&reg.api_private));
    let info = accounts.api_key(reg.user.id).await.unwrap().unwrap();
    assert_eq!(info.public_key, reg.api_public);
    let s = accounts.login("ALICE", "s3cret-pass").await.unwrap();
    assert_eq!(s.user.id, reg.user.id);
    assert_eq!(
        accounts.verify_access(&s.access_token).unwrap().user_id,
        reg.user.id
    );
    let s = accounts
        .api_key_login(&reg.api_public, &reg.api_private)
        .await
        .unwrap();
    assert_eq!(s.user.id, reg.user.id);
}

#[tokio::test]
async fn registration_reports_drf_field_errors() {
    let (accounts, _) = service();
    let err = accounts
        .register(RegisterInput::default())
        .await
        .unwrap_err();
    let f = field_errors(err);
    assert_eq!(f["username"], [REQUIRED]);
    assert_eq!(f["password"], [REQUIRED]);

    let mut bad = input("bad name!", "12345678");
    bad.email = Some("not-an-email".into());
    let f = field_errors(accounts.register(bad).await.unwrap_err());
    assert_eq!(f["username"], [USERNAME_CHARSET]);
    assert_eq!(f["password"], [PASSWORD_NUMERIC]);
    assert_eq!(f["email"], [EMAIL_INVALID]);

    accounts
        .register(input("bob", "s3cret-pass"))
        .await
        .unwrap();
    let f = field_errors(
        accounts
            .register(input("BOB", "other-pass"))
            .await
            .unwrap_err(),
    );
    assert_eq!(f["username"], [USERNAME_TAKEN]);
    assert_eq!(f.len(), 1);
}

#[tokio::test]
async fn registration_normalizes_the_email_domain() {
    let (accounts, _) = service();
    let mut i = input("carol", "s3cret-pass");
    i.email = Some("  Carol@Example.COM ".into());
    let reg = accounts.register(i).await.unwrap();
    assert_eq!(reg.user.email, "Carol@example.com");
}

#[tokio::test]
async fn profile_updates_are_validated_then_applied() {
    let (accounts, _) = service();
    let id = accounts
        .register(input("nina", "s3cret-pass"))
        .await
        .unwrap()
        .user
        .id;
    let bad = ProfileUpdate {
        email: Some("nope".into()),
        bio: Some("x".repeat(501)),
        website: Some("not a url".into()),
    };
    let f = field_errors(accounts.update_profile(id, bad).await.unwrap_err());
    assert_eq!(f["email"], [EMAIL_INVALID]);
    assert_eq!(f["website"], [URL_INVALID]);
    assert_eq!(
        f["bio"],
        ["Ensure this field has no more than 500 characters."]
    );
    assert_eq!(
        accounts.profile(id).await.unwrap().bio,
        "",
        "nothing applied"
    );

    let good = ProfileUpdate {
        email: None,
        bio: Some("Router wrangler".into()),
        website: Some("https://nina.example.net/".into()),
    };
    let p = accounts.update_profile(id, good).await.unwrap();
    assert_eq!(p.bio, "Router wrangler");
    assert_eq!(p.website, "https://nina.example.net/");
    let cleared = ProfileUpdate {
        website: Some(String::new()),
        ..Default::default()
    };
    let p = accounts.update_profile(id, cleared).await.unwrap();
    assert_eq!(
        (p.website.as_str(), p.bio.as_str()),
        ("", "Router wrangler")
    );
    assert!(matches!(
        accounts.profile(999).await,
        Err(AccountError::UserNotFound(999))
    ));
}

#[tokio::test]
async fn generating_a_key_retires_the_previous_pair() {
    let (accounts, _) = service();
    let reg = accounts
        .register(input("olga", "s3cret-pass"))
        .await
        .unwrap();
    let pair = accounts.generate_api_key(reg.user.id).await.unwrap();
    assert_ne!(pair.public, reg.api_public);
    let e = accounts
        .api_key_login(&reg.api_public, &reg.api_private)
        .await
        .unwrap_err();
    assert!(matches!(e, AccountError::InvalidApiKeys));
    accounts
        .api_key_login(&pair.public, &pair.private)
        .await
        .unwrap();
    let info = accounts.api_key(reg.user.id).await.unwrap().unwrap();
    assert_eq!(info.public_key, pair.public);
}

#[tokio::test]
async fn custom_keys_are_checked_for_shape_and_uniqueness() {
    let (accounts, _) = service();
    let a = accounts
        .register(input("pete", "s3cret-pass"))
        .await
        .unwrap();
    let b = accounts
        .register(input("quin", "s3cret-pass"))
        .await
        .unwrap();
    let f = field_errors(
        accounts
            .set_custom_api_key(a.user.id, None, Some(""))
            .await
            .unwrap_err(),
    );
    assert_eq!(f["public_key"], [REQUIRED]);
    assert_eq!(f["private_key"], [BLANK]);
    let upper = "AB".repeat(16);
    let f = field_errors(
        accounts
            .set_custom_api_key(a.user.id, Some(&upper), Some("12"))
            .await
            .unwrap_err(),
    );
    assert_eq!(f["public_key"], [PUBLIC_KEY_SHAPE]);
    assert_eq!(f["private_key"], [PRIVATE_KEY_SHAPE]);
    let private = "0123456789abcdef".repeat(4);
    let taken = accounts.set_custom_api_key(a.user.id, Some(&b.api_public), Some(&private));
    assert_eq!(
        field_errors(taken.await.unwrap_err())["public_key"],
        [PUBLIC_KEY_TAKEN]
    );

    let public = "fedcba9876543210".repeat(2);
    accounts
        .set_custom_api_key(a.user.id, Some(&public), Some(&private))
        .await
        .unwrap();
    let s = accounts.api_key_login(&public, &private).await.unwrap();
    assert_eq!(s.user.id, a.user.id);
}
