//! The contract's error rows and bad input: every one answers in the contract's shape,
//! never HTML, never a 500, and changes nothing.

mod common;

use common::TestEnv;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn missing_header_and_bad_tokens_answer_401_shapes() {
    let env = TestEnv::start(0).await;
    let (s, headers, body) = env.call(Method::GET, "/users/profile/", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({"detail": "Authentication credentials were not provided."})
    );
    assert_eq!(headers["www-authenticate"], "Bearer realm=\"api\"");

    let expected =
        json!({"detail": "Given token not valid for any token type", "code": "token_not_valid"});
    let (s, _, body) = env
        .call(Method::GET, "/routers/", Some("garbage"), None)
        .await;
    assert_eq!((s, body), (StatusCode::UNAUTHORIZED, expected.clone()));

    let u = env.user("nina").await;
    // A refresh token is the wrong type for an API call.
    let (s, _, body) = env
        .call(Method::GET, "/routers/", Some(&u.refresh), None)
        .await;
    assert_eq!((s, body), (StatusCode::UNAUTHORIZED, expected.clone()));
    // A tampered signature.
    let mut forged = u.access.clone();
    forged.pop();
    forged.push(if u.access.ends_with('A') { 'B' } else { 'A' });
    let (s, _, body) = env
        .call(Method::GET, "/routers/", Some(&forged), None)
        .await;
    assert_eq!((s, body), (StatusCode::UNAUTHORIZED, expected));
}

#[tokio::test]
async fn authentication_is_checked_before_the_method() {
    let env = TestEnv::start(0).await;
    let (s, _, _) = env
        .call(Method::DELETE, "/users/profile/", None, None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let u = env.user("omar").await;
    let (s, headers, body) = env
        .call(Method::DELETE, "/users/profile/", Some(&u.access), None)
        .await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body, json!({"detail": "Method \"DELETE\" not allowed."}));
    assert!(headers["allow"].to_str().unwrap().contains("GET"));
    let (s, headers, _) = env.call(Method::GET, "/users/login/", None, None).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers["allow"], "POST");
}

#[tokio::test]
async fn unknown_paths_answer_json_404_with_and_without_slash() {
    let env = TestEnv::start(0).await;
    for path in ["/nope", "/nope/", "/users/whatever/", "/routers/1/explode/"] {
        let (s, _, body) = env.call(Method::GET, path, None, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body, json!({"detail": "Not found."}), "{path}");
    }
    // Known paths work without their trailing slash.
    let (s, _, body) = env
        .call(
            Method::POST,
            "/users/register",
            None,
            Some(json!({"username": "pat", "password": "s3cret-pass!"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn malformed_bodies_get_400_415_413() {
    let env = TestEnv::start(0).await;
    let send = |body: Vec<u8>, ct: &'static str| {
        env.http
            .post(env.url("/users/register/"))
            .header("content-type", ct)
            .body(body)
            .send()
    };
    let r = send(b"{not json".to_vec(), "application/json")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .starts_with("JSON parse error"));

    let r = send(b"[1,2]".to_vec(), "application/json").await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    let r = send(b"username=x".to_vec(), "application/x-www-form-urlencoded")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["detail"].is_string());

    let huge = format!("{{\"username\":\"{}\"}}", "a".repeat(200_000));
    let r = send(huge.into_bytes(), "application/json").await.unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["detail"].is_string());

    let (s, _) = env
        .post(
            "/users/register/",
            None,
            json!({"username": 42, "password": ["x"]}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn health_reports_storage_and_sessions() {
    let env = TestEnv::start(1).await;
    let (s, _, body) = env.call(Method::GET, "/health/", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["storage"], "ok");
    assert_eq!(body["status"], "ok");
    assert!(body["version"].is_string() && body["node"].is_string());
    assert!(body["sessions"]["open"].is_u64());
    let text = env
        .http
        .get(env.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("cloudpilot_http_requests_total"), "{text}");
    assert!(
        text.contains("cloudpilot_sessions{state=\"open\"}"),
        "{text}"
    );
}
