//! `/users/...`: registration, logins, tokens, profile and API keys. The rules live in
//! [`crate::auth::Accounts`]; this file maps HTTP onto them and back.

use http::StatusCode;
use serde_json::{json, Value};
use warp::reply::Response;

use super::error::json_response;
use super::request::{ApiRequest, Fields};
use super::{ApiError, AppState};
use crate::auth::Profile;
use crate::auth::{AccountError, RegisterInput};
use crate::store::ProfileUpdate;

impl From<AccountError> for ApiError {
    fn from(err: AccountError) -> Self {
        match err {
            AccountError::Fields(map) => ApiError::Fields(map),
            AccountError::InvalidCredentials => {
                ApiError::Message(StatusCode::UNAUTHORIZED, "Invalid credentials".into())
            }
            AccountError::InvalidApiKeys => {
                ApiError::Message(StatusCode::UNAUTHORIZED, "Invalid API keys".into())
            }
            AccountError::TokenInvalid => ApiError::TokenInvalid,
            AccountError::Throttled { retry_after_secs } => {
                ApiError::Throttled { retry_after_secs }
            }
            AccountError::CredentialsMissing | AccountError::ApiKeysMissing => {
                ApiError::bad_request(err.to_string())
            }
            AccountError::UserNotFound(_) => ApiError::TokenInvalid,
            AccountError::TokenIssue(_) | AccountError::HashingAborted => {
                tracing::error!(cause = %err, "account operation failed");
                ApiError::Unavailable("Authentication is temporarily unavailable.".into())
            }
            AccountError::Store(e) => e.into(),
        }
    }
}

pub async fn dispatch(
    state: &AppState,
    action: &str,
    req: &ApiRequest,
) -> Result<Response, ApiError> {
    match action {
        "register" => register(state, req).await,
        "login" => login(state, req).await,
        "api-key-login" => api_key_login(state, req).await,
        "logout" => logout(state, req).await,
        "profile" => profile(state, req).await,
        "api-keys" => api_keys(state, req).await,
        "generate-api-key" => generate_api_key(state, req).await,
        "rotate-api-keys" => rotate_api_keys(state, req).await,
        "set-custom-api-keys" => set_custom_api_keys(state, req).await,
        _ => Err(ApiError::NotFound),
    }
}

/// `/users/token/refresh/` has three segments; the main router sends it here.
pub async fn token_refresh(state: &AppState, req: &ApiRequest) -> Result<Response, ApiError> {
    req.require_method("POST")?;
    let body = req.json_object()?;
    let token = ["refresh_token", "refresh"]
        .iter()
        .find_map(|k| body.get(*k).and_then(Value::as_str))
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::field("refresh_token", "This field is required."))?;
    let pair = state.accounts.refresh(token).await?;
    let (access, refresh) = (pair.access_token, pair.refresh_token);
    Ok(json_response(
        StatusCode::OK,
        &json!({ "access_token": access, "refresh_token": refresh, "access": access, "refresh": refresh }),
    ))
}

async fn register(state: &AppState, req: &ApiRequest) -> Result<Response, ApiError> {
    req.require_method("POST")?;
    let mut fields = Fields::new(req.json_object()?);
    let username = fields.string("username", false);
    let password = fields.string("password", false);
    let email = fields.string("email", false);
    fields.finish()?;
    let reg = state
        .accounts
        .register(RegisterInput {
            username,
            password,
            email,
        })
        .await?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({
            "message": "User registered successfully",
            "user_id": reg.user.id,
            "username": reg.user.username,
            "api_key": {
                "public_key": reg.api_public,
                "private_key": reg.api_private,
                "message": "Store the private key safely: it will not be shown again.",
            },
        }),
    ))
}

fn credential(body: &serde_json::Map<String, Value>, name: &str) -> Option<String> {
    body.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

async fn login(state: &AppState, req: &ApiRequest) -> Result<Response, ApiError> {
    req.require_method("POST")?;
    let body = req.json_object()?;
    let (Some(username), Some(password)) =
        (credential(&body, "username"), credential(&body, "password"))
    else {
        return Err(ApiError::bad_request("Username and password are required"));
    };
    let session = state.accounts.login(&username, &password).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "access_token": session.access_token,
            "refresh_token": session.refresh_token,
            "user_id": session.user.id,
            "username": session.user.username,
        }),
    ))
}

async fn api_key_login(state: &AppState, req: &ApiRequest) -> Result<Response, ApiError> {
    req.require_method("POST")?;
    let body = req.json_object()?;
    let (Some(public), Some(private)) = (
        credential(&body, "public_key"),
        credential(&body, "private_key"),
    ) else {
        return Err(ApiError::bad_request(
            "Public key and private key are required",
        ));
    };
    let session = state.accounts.api_key_login(&public, &private).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "access_token": session.access_token,
            "refresh_token": session.refresh_token,
            "user_id": session.user.id,
            "username": session.user.username,
            "message": "API key authentication successful",
        }),
    ))
}

async fn logout(state: &AppState, req: &ApiRequest) -> Result<Response, ApiError> {
    let principal = req.principal(state)?;
    req.require_method("POST")?;
    let body = req.json_object()?;
    let token = ["refresh_token", "refresh"]
        .iter()
        .find_map(|k| credential(&body, k))
        .ok_or_else(|| ApiError::bad_request("Refresh token is required"))?;
    state.accounts.logout(principal.user_id, &token).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "message": "Successfully logged out" }),
    ))
}

fn profile_json(user: &Profile) -> serde_json::Map<String, Value> {
    let Value::Object(map) = json!({
        "username": user.username,
        "email": user.email,
        "bio": user.bio,
        "website": user.website,
        "created_at": user.created_at.to_rfc3339(),
        "updated_at": user.updated_at.to_rfc3339(),
    }) else {
        unreachable!("json! of an object literal is an object")
    };
    map
}

async fn profile(state: &AppState, req: &ApiRequest) -> Result<Response, ApiError> {
    let principal = req.principal(state)?;
    req.require_method("GET, PUT, PATCH")?;
    if req.method == http::Method::GET {
        let user = state.accounts.profile(principal.user_id).await?;
        return Ok(json_response(
            StatusCode::OK,
            &Value::Object(profile_json(&user)),
        ));
    }
    let mut fields = Fields::new(req.json_object()?);
    let update = ProfileUpdate {
        email: fields.string("email", false),
        bio: fields.string("bio", false),
        website: fields.string("website", false),
    };
    fields.read_only(&["username", "created_at", "updated_at"]);
    fields.finish()?;
    let user = state
        .accounts
        .update_profile(principal.user_id, update)
        .await?;
    let mut body = profile_json(&user);
    body.insert("message".into(), "Profile updated successfully".into());
    Ok(json_response(StatusCode::OK, &Value::Object(body)))
}

async fn api_keys(state: &AppState, req: &ApiRequest) -> Result<Response, ApiError> {
    let principal = req.principal(state)?;
    req.require_method("GET")?;
    match state.accounts.api_key(principal.user_id).await? {
        Some(key) => Ok(json_response(
            StatusCode::OK,
            &json!({ "public_key": key.public_key, "created_at": key.created_at.to_rfc3339() }),
        )),
        None => Err(ApiError::Message(
            StatusCode::NOT_FOUND,
            "No API keys found for this user".into(),
        )),
    }
}

async fn generate_api_key(state: &AppState, req: &ApiRequest) -> Result<Response, ApiError> {
    let principal = req.principal(state)?;
    req.require_method("POST")?;
    let pair = state.accounts.generate_api_key(principal.user_id).await?;
    let (public, private) = (pair.public.clone(), pair.private.clone());
    Ok(json_response(
        StatusCode::CREATED,
        &json!({
            "message": "API key generated successfully",
            "api_key": {
                "public_key": public,
                "private_key": private,
                "message": "Store the private key safely: it will not be shown again.",
            },
        }),
    ))
}

async fn rotate_api_keys(state: &AppState, req: &ApiRequest) -> Result<Response, ApiError> {
    let principal = req.principal(state)?;
    req.require_method("POST")?;
    let pair = state.accounts.generate_api_key(principal.user_id).await?;
    let (public, private) = (pair.public.clone(), pair.private.clone());
    Ok(json_response(
        StatusCode::CREATED,
        &json!({
            "message": "API keys rotated successfully; the previous pair no longer works",
            "public_key": public,
            "private_key": private,
        }),
    ))
}

async fn set_custom_api_keys(state: &AppState, req: &ApiRequest) -> Result<Response, ApiError> {
    let principal = req.principal(state)?;
    req.require_method("POST")?;
    let mut fields = Fields::new(req.json_object()?);
    let public = fields.string("public_key", false);
    let private = fields.string("private_key", false);
    fields.finish()?;
    state
        .accounts
        .set_custom_api_key(principal.user_id, public.as_deref(), private.as_deref())
        .await?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({
            "message": "Custom API keys set successfully",
            "public_key": public,
            "note": "Only a hash of the private key is stored; keep it safe.",
        }),
    ))
}
