//! The REST front end: one warp filter that reads the request, then a small router that
//! sends it to the handler of its path. Authentication is checked before the method, as
//! the old service did, and every failure takes the shape of `CONTRACT.md` (see [`error`]).
//!
//! Routing is by hand rather than by a tree of warp filters: every path must answer with
//! and without its trailing slash, unknown paths and methods need JSON bodies with an
//! `Allow` header, and one match on the path segments is both clearer and cheaper.

mod commands;
pub mod error;
mod request;
mod routers;
mod service;
mod users;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use warp::reply::Response;
use warp::Filter;

use crate::auth::Accounts;
use crate::cluster::Dispatch;
use crate::config::Settings;
use crate::fleet::Fleet;
use crate::store::seal::Sealer;
use crate::store::Store;

pub use error::ApiError;
pub use request::ApiRequest;
pub use service::Metrics;

/// Everything a handler may use. Built once at start-up and shared by every request.
pub struct AppState {
    pub settings: Arc<Settings>,
    pub store: Arc<dyn Store>,
    pub accounts: Accounts,
    pub fleet: Fleet,
    /// Reaches routers wherever their session is (this node or, with Redis, another).
    pub dispatch: Dispatch,
    pub sealer: Arc<Sealer>,
    pub node: String,
    pub metrics: Metrics,
}

/// The whole API as one warp filter.
pub fn routes(
    state: Arc<AppState>,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone + Send + Sync + 'static {
    request::extract(state.settings.server.body_limit_bytes).then(move |req| {
        let state = state.clone();
        async move { handle(state, req).await }
    })
}

async fn handle(state: Arc<AppState>, req: Result<ApiRequest, ApiError>) -> Response {
    use tracing::Instrument;
    let started = Instant::now();
    let (route, response) = match req {
        Ok(req) => {
            let route = route_name(&req);
            let span =
                tracing::debug_span!("request", http.method = %req.method, http.route = route);
            let response = dispatch(&state, req)
                .instrument(span)
                .await
                .unwrap_or_else(ApiError::into_response);
            (route, response)
        }
        Err(err) => ("invalid", err.into_response()),
    };
    state
        .metrics
        .observe(route, response.status().as_u16(), started.elapsed());
    response
}

/// A low-cardinality name for the route, for metrics and logs.
fn route_name(req: &ApiRequest) -> &'static str {
    match req.segments().as_slice() {
        ["health"] => "health",
        ["metrics"] => "metrics",
        ["users", "token", "refresh"] => "users",
        ["users", _] => "users",
        ["routers"] => "routers",
        ["routers", _] => "router",
        ["routers", _, "execute-command"] => "execute-command",
        ["routers", _, _] => "router-action",
        _ => "unknown",
    }
}

async fn dispatch(state: &AppState, req: ApiRequest) -> Result<Response, ApiError> {
    let segments = req.segments();
    match segments.as_slice() {
        ["health"] => service::health(state, &req).await,
        ["metrics"] => service::metrics(state, &req).await,
        ["users", "token", "refresh"] => users::token_refresh(state, &req).await,
        ["users", action] => users::dispatch(state, action, &req).await,
        ["routers"] => routers::collection(state, &req).await,
        ["routers", id] => routers::item(state, id, &req).await,
        ["routers", id, action] => routers::action(state, id, action, &req).await,
        _ => Err(ApiError::NotFound),
    }
}
