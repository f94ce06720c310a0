//! The users half of the contract through real HTTP: registration, both logins, token
//! refresh with rotation and reuse detection, logout, profile and API keys.

mod common;

use common::TestEnv;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn registration_returns_a_working_key_pair_once() {
    let env = TestEnv::start(0).await;
    let (s, reg) = env
        .post(
            "/users/register/",
            None,
            json!({"username": "alice", "password": "s3cret-pass!", "email": "a@example.com"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(reg["username"], "alice");
    let public = reg["api_key"]["public_key"].as_str().unwrap();
    let private = reg["api_key"]["private_key"].as_str().unwrap();
    assert_eq!(public.len(), 32);
    assert_eq!(private.len(), 64);
    assert!(public
        .chars()
        .chain(private.chars())
        .all(|c| c.is_ascii_hexdigit()));

    let (s, login) = env
        .post(
            "/users/api-key-login/",
            None,
            json!({"public_key": public, "private_key": private}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{login}");
    assert_eq!(login["message"], "API key authentication successful");
    assert_eq!(login["username"], "alice");
    let token = login["access_token"].as_str().unwrap();

    // The private key is never shown again.
    let (s, keys) = env.get("/users/api-keys/", token).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(keys["public_key"], public);
    assert!(keys.get("private_key").is_none());
    assert!(!keys.to_string().contains(private));
}

#[tokio::test]
async fn duplicate_username_is_a_field_error_case_insensitively() {
    let env = TestEnv::start(0).await;
    env.user("bob").await;
    let (s, body) = env
        .post(
            "/users/register/",
            None,
            json!({"username": "BOB", "password": "another-pass1"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        body["username"][0]
            .as_str()
            .unwrap()
            .contains("already exists"),
        "{body}"
    );
}

#[tokio::test]
async fn registration_validates_each_field() {
    let env = TestEnv::start(0).await;
    let (s, body) = env.post("/users/register/", None, json!({})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        body["username"].is_array() && body["password"].is_array(),
        "{body}"
    );
    let (s, body) = env
        .post(
            "/users/register/",
            None,
            json!({"username": "x y", "password": "12345678", "email": "nope"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        body["username"].is_array() && body["password"].is_array() && body["email"].is_array(),
        "{body}"
    );
    let (s, body) = env
        .post(
            "/users/register/",
            None,
            json!({"username": "carol", "password": "s3cret-pass!", "admin": true}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        body["admin"].is_array(),
        "unknown fields are refused: {body}"
    );
    // Nothing was half-created: the name is still free.
    let (s, _) = env
        .post(
            "/users/register/",
            None,
            json!({"username": "carol", "password": "s3cret-pass!"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
}

#[tokio::test]
async fn login_errors_follow_the_contract() {
    let env = TestEnv::start(0).await;
    env.user("dave").await;
    let (s, body) = env
        .post("/users/login/", None, json!({"username": "dave"}))
        .await;
    assert_eq!(
        (s, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "Username and password are required"})
        )
    );
    let (s, body) = env
        .post(
            "/users/login/",
            None,
            json!({"username": "dave", "password": "wrong-pass"}),
        )
        .await;
    assert_eq!(
        (s, body),
        (
            StatusCode::UNAUTHORIZED,
            json!({"error": "Invalid credentials"})
        )
    );
    let (s, body) = env
        .post(
            "/users/login/",
            None,
            json!({"username": "nobody", "password": "wrong-pass"}),
        )
        .await;
    assert_eq!(
        (s, body),
        (
            StatusCode::UNAUTHORIZED,
            json!({"error": "Invalid credentials"})
        )
    );
    let (s, body) = env
        .post("/users/api-key-login/", None, json!({"public_key": "ab"}))
        .await;
    assert_eq!(
        (s, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "Public key and private key are required"})
        )
    );
    let (s, body) = env
        .post(
            "/users/api-key-login/",
            None,
            json!({"public_key": "0".repeat(32), "private_key": "0".repeat(64)}),
        )
        .await;
    assert_eq!(
        (s, body),
        (
            StatusCode::UNAUTHORIZED,
            json!({"error": "Invalid API keys"})
        )
    );
}

#[tokio::test]
async fn login_ignores_a_stale_authorization_header() {
    let env = TestEnv::start(0).await;
    env.user("erin").await;
    let (s, _, body) = env
        .call(
            Method::POST,
            "/users/login/",
            Some("stale.token.value"),
            Some(json!({"username": "erin", "password": "s3cret-pass!"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn repeated_failed_logins_are_throttled() {
    let env = TestEnv::start_with(
        0,
        &[("CLOUDPILOT__AUTH__LOGIN_FAILURES_PER_WINDOW", "3")],
        Default::default(),
    )
    .await;
    env.user("frank").await;
    for _ in 0..3 {
        let (s, _) = env
            .post(
                "/users/login/",
                None,
                json!({"username": "frank", "password": "bad-pass"}),
            )
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let (s, headers, body) = env
        .call(
            Method::POST,
            "/users/login/",
            None,
            Some(json!({"username": "frank", "password": "s3cret-pass!"})),
        )
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(headers.contains_key("retry-after"));
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .starts_with("Request was throttled."));
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let env = TestEnv::start(0).await;
    let u = env.user("gina").await;
    let (s, first) = env
        .post(
            "/users/token/refresh/",
            None,
            json!({"refresh_token": u.refresh}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{first}");
    let second_refresh = first["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(second_refresh, u.refresh);
    let (s, _) = env
        .get("/users/profile/", first["access_token"].as_str().unwrap())
        .await;
    assert_eq!(s, StatusCode::OK);

    // The spent token is refused, and using it revokes the newer one too.
    let (s, body) = env
        .post("/users/token/refresh/", None, json!({"refresh": u.refresh}))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "token_not_valid");
    let (s, _) = env
        .post(
            "/users/token/refresh/",
            None,
            json!({"refresh_token": second_refresh}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // An access token is not a refresh token.
    let (s, _) = env
        .post(
            "/users/token/refresh/",
            None,
            json!({"refresh_token": u.access}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn logout_revokes_the_refresh_family() {
    let env = TestEnv::start(0).await;
    let u = env.user("hank").await;
    let (s, body) = env
        .post(
            "/users/logout/",
            Some(&u.access),
            json!({"refresh_token": u.refresh}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, _) = env
        .post(
            "/users/token/refresh/",
            None,
            json!({"refresh_token": u.refresh}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn profile_reads_and_updates() {
    let env = TestEnv::start(0).await;
    let u = env.user("ivy").await;
    let (s, p) = env.get("/users/profile/", &u.access).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(p["username"], "ivy");
    for key in ["email", "bio", "website", "created_at", "updated_at"] {
        assert!(p.get(key).is_some(), "profile lacks {key}: {p}");
    }
    let (s, _, p) = env
        .call(
            Method::PATCH,
            "/users/profile/",
            Some(&u.access),
            Some(json!({"bio": "net ops"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(p["message"], "Profile updated successfully");
    assert_eq!(p["bio"], "net ops");
    let (s, _, p) = env
        .call(
            Method::PUT,
            "/users/profile",
            Some(&u.access),
            Some(json!({"website": "https://example.com", "email": "ivy@example.com"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["bio"], "net ops");
    assert_eq!(p["email"], "ivy@example.com");
    let (s, _, p) = env
        .call(
            Method::PATCH,
            "/users/profile/",
            Some(&u.access),
            Some(json!({"email": "not-an-email"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(p["email"].is_array());
    let (_, p) = env.get("/users/profile/", &u.access).await;
    assert_eq!(
        p["email"], "ivy@example.com",
        "a failed update changes nothing"
    );
}

#[tokio::test]
async fn generated_and_rotated_keys_replace_the_previous_pair() {
    let env = TestEnv::start(0).await;
    let u = env.user("jack").await;
    let old_pub = u.registration["api_key"]["public_key"]
        .as_str()
        .unwrap()
        .to_string();
    let old_priv = u.registration["api_key"]["private_key"]
        .as_str()
        .unwrap()
        .to_string();

    let (s, g) = env
        .post("/users/generate-api-key/", Some(&u.access), json!({}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (p1, k1) = (
        g["api_key"]["public_key"].clone(),
        g["api_key"]["private_key"].clone(),
    );
    let (s, _) = env
        .post(
            "/users/api-key-login/",
            None,
            json!({"public_key": old_pub, "private_key": old_priv}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "the old pair stops working");

    let (s, r) = env
        .post("/users/rotate-api-keys/", Some(&u.access), json!({}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = env
        .post(
            "/users/api-key-login/",
            None,
            json!({"public_key": p1, "private_key": k1}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = env
        .post(
            "/users/api-key-login/",
            None,
            json!({"public_key": r["public_key"], "private_key": r["private_key"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn custom_keys_are_validated_and_unique() {
    let env = TestEnv::start(0).await;
    let u = env.user("kate").await;
    let other = env.user("liam").await;
    let public = "0123456789abcdef0123456789abcdef";
    let private = "f".repeat(64);
    let (s, body) = env
        .post(
            "/users/set-custom-api-keys/",
            Some(&u.access),
            json!({"public_key": "xyz", "private_key": "123"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        body["public_key"].is_array() && body["private_key"].is_array(),
        "{body}"
    );
    let (s, body) = env
        .post(
            "/users/set-custom-api-keys/",
            Some(&u.access),
            json!({"public_key": public, "private_key": private}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(body["public_key"], public);
    let (s, _) = env
        .post(
            "/users/api-key-login/",
            None,
            json!({"public_key": public, "private_key": private}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, body) = env
        .post(
            "/users/set-custom-api-keys/",
            Some(&other.access),
            json!({"public_key": public, "private_key": "e".repeat(64)}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body["public_key"].is_array(), "{body}");
    // The failed attempt left the first user's key working.
    let (s, _) = env
        .post(
            "/users/api-key-login/",
            None,
            json!({"public_key": public, "private_key": private}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
}
