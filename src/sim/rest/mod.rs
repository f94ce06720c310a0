//! The v7 REST API of a simulated router: HTTP/1.1 on a second loopback port, serving
//! `/rest/...` from the same model as the router's API port, so a change made through one
//! is seen through the other.
//!
//! Owns: the HTTP listener and connections, Basic auth against the router's user, and the
//! rule that one user's requests run one at a time (as on RouterOS). [`translate`] maps
//! each request onto the API commands of [`super::commands`] and their replies back to JSON.
//!
//! Faults apply per HTTP request, counted like API commands: a dropped request closes the
//! connection without an answer, a hung one is answered only when the router's 60 s limit
//! runs out, `latency` delays each answer. `set_offline` closes new connections at once and
//! `kill_connections` closes open ones. Routers older than 7.1 have no REST API: the
//! simulator opens no REST port for them (a client gets "connection refused" on any port).

mod translate;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{watch, Mutex};
use tracing::Instrument;

use super::router::{self, Fate, SimRouter};
use super::version::RouterVersion;

/// How long RouterOS lets one REST request run before giving up on it.
pub(crate) const REQUEST_LIMIT: Duration = Duration::from_secs(60);

/// The first version with the REST API.
pub(crate) fn has_rest(version: &str) -> bool {
    RouterVersion::parse(version) >= RouterVersion::parse("7.1")
}

/// Why an HTTP request got no answer at all; hyper closes the connection on it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Unanswered {
    #[error("the drop fault picked this request")]
    Dropped,
}

/// What every connection of one router shares.
struct RestSide {
    router: Arc<SimRouter>,
    /// Held while a request runs, so one user's requests run one at a time.
    turn: Mutex<()>,
}

/// Accepts REST connections for one router until the simulator shuts down.
pub(crate) async fn accept_loop(
    router: Arc<SimRouter>,
    listener: TcpListener,
    tls: Option<Arc<super::tls::SimTlsServer>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let span = tracing::debug_span!("sim_rest", router.index = router.index);
    let side = Arc::new(RestSide {
        router,
        turn: Mutex::new(()),
    });
    async move {
        loop {
            let accepted = tokio::select! {
                _ = router::shutting_down(&mut shutdown) => break,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => {
                    if side.router.is_offline() {
                        tracing::debug!(client.addr = %peer, "offline: REST connection refused");
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    let (side, shutdown, tls) = (side.clone(), shutdown.clone(), tls.clone());
                    let task = async move {
                        match tls {
                            None => serve(side, stream, shutdown).await,
                            Some(tls) => {
                                if let Some(secured) = tls.accept(stream).await {
                                    serve(side, secured, shutdown).await;
                                }
                            }
                        }
                    };
                    tokio::spawn(task.instrument(tracing::debug_span!("sim_rest_conn",
                        client.addr = %peer)));
                }
                Err(err) => {
                    tracing::warn!(cause = %err, "sim router failed to accept REST");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
    .instrument(span)
    .await
}

/// Serves one connection until the client leaves, the router is killed or shut down.
async fn serve<S>(side: Arc<RestSide>, stream: S, mut shutdown: watch::Receiver<bool>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut kill = side.router.subscribe_kill();
    let service = {
        let side = side.clone();
        service_fn(move |req| handle(side.clone(), req))
    };
    let connection = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = kill.changed() => {}
        _ = router::shutting_down(&mut shutdown) => {}
        result = connection => {
            if let Err(err) = result {
                tracing::debug!(cause = %err, "sim REST connection ended");
            }
        }
    }
}

async fn handle(
    side: Arc<RestSide>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Unanswered> {
    let router = &side.router;
    if !authorized(router, &req) {
        tracing::debug!("sim REST request without valid credentials");
        let mut response = reply(
            StatusCode::UNAUTHORIZED,
            br#"{"error":401,"message":"Unauthorized"}"#.to_vec(),
        );
        response.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Basic realm=\"RouterOS\""),
        );
        return Ok(response);
    }
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(str::to_owned);
    let body = match req.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return Err(Unanswered::Dropped),
    };
    let _turn = side.turn.lock().await;
    tracing::debug!(http.method = %method, http.path = %path, "sim REST request");
    let Some(menu) = path.strip_prefix("/rest/").filter(|m| !m.is_empty()) else {
        return Ok(reply(StatusCode::NOT_FOUND, translate::not_found()));
    };
    match router.next_command_fate() {
        Fate::Drop => return Err(Unanswered::Dropped),
        Fate::Hang => {
            tokio::time::sleep(REQUEST_LIMIT).await;
            let body = translate::error_body(500, "Internal Server Error", b"timeout");
            return Ok(reply(StatusCode::INTERNAL_SERVER_ERROR, body));
        }
        Fate::Answer => {}
    }
    let (status, body) = translate::answer(router, &method, menu, query.as_deref(), &body).await;
    tokio::time::sleep(router.latency()).await;
    Ok(reply(status, body))
}

fn reply(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if status != StatusCode::NO_CONTENT {
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
    }
    response
}

/// HTTP Basic credentials equal to the router's user and password.
fn authorized<B>(router: &SimRouter, req: &Request<B>) -> bool {
    let Some(token) = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    else {
        return false;
    };
    let Ok(pair) = base64::engine::general_purpose::STANDARD.decode(token.trim()) else {
        return false;
    };
    let info = &router.info;
    let expected = format!("{}:{}", info.username, info.password);
    pair == expected.as_bytes()
}
