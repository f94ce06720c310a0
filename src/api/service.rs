//! `/health/` and `/metrics`: what an operator's probes and scrapers read.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use http::{header, HeaderValue, StatusCode};
use serde_json::json;
use warp::reply::Response;

use super::error::json_response;
use super::request::ApiRequest;
use super::{ApiError, AppState};

/// Request counters and latency sums per route and status, for `/metrics`.
///
/// One mutex around a small map: the critical section is a few additions, far below the
/// cost of the request it counts.
#[derive(Default)]
pub struct Metrics {
    by_route: Mutex<HashMap<(&'static str, u16), RouteStats>>,
}

#[derive(Default, Clone, Copy)]
struct RouteStats {
    count: u64,
    seconds: f64,
}

impl Metrics {
    pub fn observe(&self, route: &'static str, status: u16, elapsed: Duration) {
        let mut map = self.by_route.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map.entry((route, status)).or_default();
        entry.count += 1;
        entry.seconds += elapsed.as_secs_f64();
    }

    fn render(&self, out: &mut String) {
        let map = self.by_route.lock().unwrap_or_else(|e| e.into_inner());
        let mut rows: Vec<_> = map.iter().map(|(k, v)| (*k, *v)).collect();
        drop(map);
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        out.push_str("# HELP cloudpilot_http_requests_total HTTP requests answered.\n");
        out.push_str("# TYPE cloudpilot_http_requests_total counter\n");
        for ((route, status), s) in &rows {
            let _ = writeln!(
                out,
                "cloudpilot_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {}",
                s.count
            );
        }
        out.push_str("# HELP cloudpilot_http_request_seconds_sum Time spent answering.\n");
        out.push_str("# TYPE cloudpilot_http_request_seconds_sum counter\n");
        for ((route, status), s) in &rows {
            let _ = writeln!(
                out,
                "cloudpilot_http_request_seconds_sum{{route=\"{route}\",status=\"{status}\"}} {:.6}",
                s.seconds
            );
        }
    }
}

pub async fn health(state: &AppState, req: &ApiRequest) -> Result<Response, ApiError> {
    req.require_method("GET, HEAD")?;
    let storage = match state.store.ping().await {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("unavailable: {e}"),
    };
    let counts = state.fleet.counts();
    let ok = storage == "ok";
    let body = json!({
        "status": if ok { "ok" } else { "degraded" },
        "version": env!("CARGO_PKG_VERSION"),
        "node": state.node,
        "storage": storage,
        "sessions": {
            "open": counts.open,
            "connecting": counts.connecting,
            "offline": counts.offline,
        },
    });
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = body;
    if let Some(c) = state.dispatch.cluster() {
        let v = c.view();
        body["cluster"] = json!({
            "node_id": v.node,
            "live_nodes": v.live_nodes,
            "shards": v.shards,
            "shards_held": v.shards_held,
        });
    }
    let mut response = json_response(status, &body);
    if !ok {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(1));
    }
    Ok(response)
}

pub async fn metrics(state: &AppState, req: &ApiRequest) -> Result<Response, ApiError> {
    req.require_method("GET")?;
    let mut out = String::new();
    let counts = state.fleet.counts();
    out.push_str("# HELP cloudpilot_sessions Router sessions on this node by state.\n");
    out.push_str("# TYPE cloudpilot_sessions gauge\n");
    for (name, value) in [
        ("open", counts.open),
        ("connecting", counts.connecting),
        ("offline", counts.offline),
    ] {
        let _ = writeln!(out, "cloudpilot_sessions{{state=\"{name}\"}} {value}");
    }
    if let Some(c) = state.dispatch.cluster() {
        let v = c.view();
        for (name, help, kind, value) in [
            (
                "cloudpilot_cluster_live_nodes",
                "Nodes this node sees alive.",
                "gauge",
                v.live_nodes as u64,
            ),
            (
                "cloudpilot_cluster_shards_held",
                "Shards whose lease this node holds.",
                "gauge",
                v.shards_held as u64,
            ),
            (
                "cloudpilot_cluster_forwarded_total",
                "Commands handed to the owning node.",
                "counter",
                v.forwarded,
            ),
            (
                "cloudpilot_cluster_served_total",
                "Commands run here for other nodes.",
                "counter",
                v.served_for_others,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
    }
    state.metrics.render(&mut out);
    let mut response = Response::new(out.into());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}
