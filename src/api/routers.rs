//! `/routers/...`: a user's routers, and the commands run on them through the fleet.
//! Another user's router is indistinguishable from a missing one (404).

use std::net::IpAddr;

use http::{Method, StatusCode};
use serde_json::{json, Map, Value};
use warp::reply::Response;

use super::commands;
use super::error::json_response;
use super::request::{ApiRequest, Fields};
use super::{ApiError, AppState};
use crate::auth::Principal;
use crate::store::{NewRouter, Router, RouterId, Transport};

/// Fields a client sees in a router but cannot set; sent back in a PUT they are ignored.
const READ_ONLY: &[&str] = &[
    "id",
    "is_online",
    "last_checked",
    "last_error",
    "routeros_version",
    "created_at",
    "updated_at",
];

pub async fn collection(state: &AppState, req: &ApiRequest) -> Result<Response, ApiError> {
    let principal = req.principal(state)?;
    req.require_method("GET, POST")?;
    if req.method == Method::GET {
        let tag = req.query_param("tag");
        let routers = state.store.routers_for_user(principal.user_id).await?;
        let list: Vec<Value> = futures::future::join_all(
            routers
                .iter()
                .filter(|r| tag.as_ref().is_none_or(|t| r.tags.contains(t)))
                .map(|r| router_json(state, r)),
        )
        .await;
        return Ok(json_response(StatusCode::OK, &Value::Array(list)));
    }
    let input = RouterInput::read(req.json_object()?, None)?;
    let password = input.password.clone().unwrap_or_default();
    let sealed = state.sealer.seal(password.as_bytes()).map_err(|e| {
        tracing::error!(cause = %e, "sealing a router password failed");
        ApiError::Unavailable("Secret sealing is unavailable; nothing was changed.".into())
    })?;
    let router = state
        .store
        .create_router(NewRouter {
            owner: principal.user_id,
            name: input.name,
            host: input.host,
            port: input.port,
            username: input.username,
            password: sealed,
            transport: input.transport,
            use_https: input.use_https,
            tls: input.tls,
            tags: input.tags,
        })
        .await?;
    tracing::info!(
        router.id = router.id,
        user.id = principal.user_id,
        "router added"
    );
    state.dispatch.router_added(&router, password).await;
    Ok(json_response(
        StatusCode::CREATED,
        &router_json(state, &router).await,
    ))
}

pub async fn item(state: &AppState, id: &str, req: &ApiRequest) -> Result<Response, ApiError> {
    let principal = req.principal(state)?;
    req.require_method("GET, PUT, PATCH, DELETE")?;
    let router = owned_router(state, &principal, id).await?;
    match req.method {
        Method::GET => Ok(json_response(
            StatusCode::OK,
            &router_json(state, &router).await,
        )),
        Method::DELETE => {
            state.store.delete_router(router.id).await?;
            state.dispatch.router_removed(router.id).await;
            tracing::info!(router.id = router.id, "router deleted");
            Ok(json_response(
                StatusCode::OK,
                &json!({
                    "message": format!("Router \"{}\" has been successfully deleted", router.name)
                }),
            ))
        }
        _ => update(state, router, req).await,
    }
}

async fn update(state: &AppState, old: Router, req: &ApiRequest) -> Result<Response, ApiError> {
    let partial = req.method == Method::PATCH;
    let input = RouterInput::read(req.json_object()?, partial.then_some(&old))?;
    let password = match &input.password {
        Some(p) => Some((
            p.clone(),
            state.sealer.seal(p.as_bytes()).map_err(|_| {
                ApiError::Unavailable("Secret sealing is unavailable; nothing was changed.".into())
            })?,
        )),
        None => None,
    };
    let mut router = old.clone();
    router.name = input.name;
    router.host = input.host;
    router.port = input.port;
    router.username = input.username;
    router.transport = input.transport;
    router.use_https = input.use_https;
    router.tls = input.tls;
    router.tags = input.tags;
    if let Some((_, sealed)) = &password {
        router.password = sealed.clone();
    }
    router.updated_at = crate::store::Timestamp::now();
    let router = state.store.update_router(router).await?;
    let reconnect = router.host != old.host
        || router.port != old.port
        || router.username != old.username
        || router.transport != old.transport
        || router.use_https != old.use_https
        || router.tls != old.tls
        || password.is_some();
    if reconnect {
        let plain = match password {
            Some((p, _)) => p,
            None => open_password(state, &router)?,
        };
        state.dispatch.router_changed(&router, plain, true).await;
    }
    Ok(json_response(
        StatusCode::OK,
        &router_json(state, &router).await,
    ))
}

pub async fn action(
    state: &AppState,
    id: &str,
    action: &str,
    req: &ApiRequest,
) -> Result<Response, ApiError> {
    let allowed = match action {
        "test-connection" => "POST, GET",
        "device-info" => "GET",
        "execute-command" | "stream" => "POST",
        _ => return Err(ApiError::NotFound),
    };
    let principal = req.principal(state)?;
    req.require_method(allowed)?;
    let router = owned_router(state, &principal, id).await?;
    match action {
        "test-connection" => commands::test_connection(state, &router).await,
        "device-info" => commands::device_info(state, &router).await,
        "stream" => commands::stream(state, &router, req).await,
        _ => commands::execute_command(state, &router, req).await,
    }
}

async fn owned_router(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> Result<Router, ApiError> {
    let id: RouterId = id.parse().map_err(|_| ApiError::router_not_found())?;
    match state.store.router(id).await? {
        Some(r) if r.owner == principal.user_id => Ok(r),
        _ => Err(ApiError::router_not_found()),
    }
}

fn open_password(state: &AppState, router: &Router) -> Result<String, ApiError> {
    let bytes = state.sealer.open(&router.password).map_err(|e| {
        tracing::error!(router.id = router.id, cause = %e, "cannot unseal router password");
        ApiError::Unavailable("Router secret cannot be unsealed with the configured key.".into())
    })?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

async fn router_json(state: &AppState, r: &Router) -> Value {
    let status = state.dispatch.status(r.id).await;
    json!({
        "id": r.id,
        "name": r.name,
        "host": r.host,
        "port": r.port,
        "username": r.username,
        "transport": r.transport.as_str(),
        "use_https": r.use_https,
        "tls": r.tls,
        "tags": r.tags,
        "is_online": status.is_online,
        "last_checked": status.last_checked.map(|t| t.to_rfc3339()),
        "last_error": status.last_error,
        "routeros_version": status.routeros_version,
        "created_at": r.created_at.to_rfc3339(),
        "updated_at": r.updated_at.to_rfc3339(),
    })
}

/// A router's settable fields after validation.
struct RouterInput {
    name: String,
    host: String,
    port: u16,
    username: String,
    password: Option<String>,
    transport: Transport,
    use_https: bool,
    tls: String,
    tags: Vec<String>,
}

impl RouterInput {
    /// Reads a create or full update (`base: None`) or a partial update over `base`.
    fn read(body: Map<String, Value>, base: Option<&Router>) -> Result<RouterInput, ApiError> {
        let mut f = Fields::new(body);
        let required = base.is_none();
        let name = f.string("name", required);
        let host = f.string("host", required);
        let username = f.string("username", required);
        let password = f.string("password", false);
        let transport = f.string("transport", false);
        let use_https = f.boolean("use_https");
        let tls = f.string("tls", false);
        let tags = f.string_list("tags");
        let port = f.integer("port", 1, 65535);
        f.read_only(READ_ONLY);

        let name = name
            .or_else(|| base.map(|b| b.name.clone()))
            .unwrap_or_default();
        if name.chars().count() > 100 {
            f.invalid("name", "Ensure this field has no more than 100 characters.");
        }
        let host = host
            .or_else(|| base.map(|b| b.host.clone()))
            .unwrap_or_default();
        if !host.is_empty() && !is_host(&host) {
            f.invalid("host", "Enter a valid IPv4 or IPv6 address or DNS name.");
        }
        let username = username
            .or_else(|| base.map(|b| b.username.clone()))
            .unwrap_or_default();
        if username.chars().count() > 100 || username.chars().any(char::is_control) {
            f.invalid(
                "username",
                "Enter a valid RouterOS user name (at most 100 characters).",
            );
        }
        if password.as_ref().is_some_and(|p| p.len() > 256) {
            f.invalid(
                "password",
                "Ensure this field has no more than 256 characters.",
            );
        }
        let transport = match transport.as_deref() {
            None => base.map_or(Transport::Api, |b| b.transport),
            Some("api") => Transport::Api,
            Some("rest") => Transport::Rest,
            Some(_) => {
                f.invalid("transport", "\"transport\" must be \"api\" or \"rest\".");
                Transport::Api
            }
        };
        let use_https = use_https.or(base.map(|b| b.use_https)).unwrap_or(false);
        let tls = tls
            .or_else(|| base.map(|b| b.tls.clone()))
            .unwrap_or_else(|| "verify".into());
        if !is_tls_mode(&tls) {
            f.invalid(
                "tls",
                "Must be \"verify\", \"insecure\" or \"pin:<64 hex sha256>\".",
            );
        }
        let tags = tags
            .or_else(|| base.map(|b| b.tags.clone()))
            .unwrap_or_default();
        if tags.len() > 32 || tags.iter().any(|t| !is_tag(t)) {
            f.invalid(
                "tags",
                "Tags are 1-64 characters of letters, digits, '_', '-', '.', ':' (at most 32).",
            );
        }
        let default_port = match (transport, use_https) {
            (Transport::Api, false) => 8728,
            (Transport::Api, true) => 8729,
            (Transport::Rest, false) => 80,
            (Transport::Rest, true) => 443,
        };
        let port = port
            .map(|p| p as u16)
            .or_else(|| base.map(|b| b.port))
            .unwrap_or(default_port);
        f.finish()?;
        Ok(RouterInput {
            name,
            host,
            port,
            username,
            password,
            transport,
            use_https,
            tls,
            tags,
        })
    }
}

fn is_host(host: &str) -> bool {
    if host.parse::<IpAddr>().is_ok() {
        return true;
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    !name.is_empty()
        && name.len() <= 253
        && !name
            .split('.')
            .all(|l| l.chars().all(|c| c.is_ascii_digit()))
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

fn is_tls_mode(tls: &str) -> bool {
    match tls.strip_prefix("pin:") {
        Some(pin) => pin.len() == 64 && pin.chars().all(|c| c.is_ascii_hexdigit()),
        None => matches!(tls, "verify" | "insecure"),
    }
}

fn is_tag(tag: &str) -> bool {
    (1..=64).contains(&tag.len())
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
}
