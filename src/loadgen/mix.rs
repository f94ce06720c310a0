//! The requests a run sends, each as [`Work`] for the driver: execute-command reads of
//! `system/resource`, add/set/remove cycles on `ip/address`, profile reads, logins and
//! `/health/`, alone or mixed by weight.

use std::sync::Arc;

use reqwest::Method;
use serde_json::{json, Value};

use super::drive::{Sample, Work, WorkFuture};
use super::rest::{exec_path, resource_read, Rest};

/// One kind of request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    ExecResource,
    IpCycle,
    Profile,
    Login,
    Health,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::ExecResource => "exec-system-resource",
            Kind::IpCycle => "ip-address-add-set-remove",
            Kind::Profile => "users-profile",
            Kind::Login => "users-login",
            Kind::Health => "health",
        }
    }
}

/// The default mixed workload, in percent.
pub const MIX: [(Kind, u32); 5] = [
    (Kind::ExecResource, 70),
    (Kind::IpCycle, 10),
    (Kind::Profile, 10),
    (Kind::Login, 5),
    (Kind::Health, 5),
];

/// Picks the kind for unit `n` so that every 100 consecutive units follow the weights.
pub fn pick(weights: &[(Kind, u32)], n: u64) -> Kind {
    let total: u32 = weights.iter().map(|(_, w)| w).sum::<u32>().max(1);
    // Spread kinds within the cycle instead of running them in blocks.
    let mut slot = ((n.wrapping_mul(37)) % u64::from(total)) as u32;
    for &(kind, w) in weights {
        if slot < w {
            return kind;
        }
        slot -= w;
    }
    weights[0].0
}

/// Work sending `weights` of kinds to `routers` (router ids, used round-robin).
pub fn work(rest: Rest, routers: Arc<Vec<u64>>, weights: Vec<(Kind, u32)>) -> Work {
    Arc::new(move |n| {
        let kind = pick(&weights, n);
        let router = match routers.is_empty() {
            true => 0,
            false => routers[(n as usize) % routers.len()],
        };
        one(rest.clone(), kind, router)
    })
}

fn one(rest: Rest, kind: Kind, router: u64) -> WorkFuture {
    Box::pin(async move {
        let (requests, error) = match kind {
            Kind::ExecResource => {
                let body = Some(resource_read());
                (
                    1,
                    quick(&rest, Method::POST, &exec_path(router), body).await,
                )
            }
            Kind::IpCycle => ip_cycle(&rest, router).await,
            Kind::Profile => (1, quick(&rest, Method::GET, "/users/profile/", None).await),
            Kind::Health => (1, quick(&rest, Method::GET, "/health/", None).await),
            Kind::Login => match rest.login_credentials() {
                Some((u, p)) => {
                    let body = json!({"username": u, "password": p});
                    (
                        1,
                        simple(&rest, Method::POST, "/users/login/", Some(body)).await,
                    )
                }
                None => (0, Some("login needs --username/--password".to_owned())),
            },
        };
        Sample {
            kind: kind.label(),
            requests,
            error,
        }
    })
}

async fn checked(
    rest: &Rest,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Result<Value, String> {
    match rest.send(method, path, body).await {
        Ok((s, v)) if s.is_success() => Ok(v),
        Ok((s, v)) => Err(format!("{path}: {} {v}", s.as_u16())),
        Err(e) => Err(format!("{path}: {e}")),
    }
}

async fn simple(rest: &Rest, method: Method, path: &str, body: Option<Value>) -> Option<String> {
    checked(rest, method, path, body).await.err()
}

/// A request whose answer only matters by its status: the body is read but parsed only to
/// show an error.
async fn quick(
    rest: &Rest,
    method: Method,
    path: &str,
    body: Option<bytes::Bytes>,
) -> Option<String> {
    match rest.send_raw(method, path, body).await {
        Ok((s, _)) if s.is_success() => None,
        Ok((s, b)) => Some(format!(
            "{path}: {} {}",
            s.as_u16(),
            String::from_utf8_lossy(&b)
        )),
        Err(e) => Some(format!("{path}: {e}")),
    }
}

/// Adds an address, sets its comment and removes it: three requests, one unit.
async fn ip_cycle(rest: &Rest, router: u64) -> (u32, Option<String>) {
    let path = exec_path(router);
    let octet = rand::random::<u8>();
    let add = json!({
        "command": "ip/address", "method": "PUT",
        "data": {"address": format!("10.{octet}.0.1/24"), "interface": "ether1"},
    });
    let added = match checked(rest, Method::POST, &path, Some(add)).await {
        Ok(v) => v,
        Err(e) => return (1, Some(e)),
    };
    let Some(id) = added["result"][".id"].as_str().map(str::to_owned) else {
        return (1, Some(format!("add returned no .id: {added}")));
    };
    let set = json!({
        "command": format!("ip/address/{id}"), "method": "PATCH",
        "data": {"comment": "loadgen"},
    });
    if let Err(e) = checked(rest, Method::POST, &path, Some(set)).await {
        return (2, Some(e));
    }
    let remove = json!({"command": format!("ip/address/{id}"), "method": "DELETE"});
    (
        3,
        checked(rest, Method::POST, &path, Some(remove)).await.err(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hundred_units_follow_the_mix_weights() {
        let mut counts = std::collections::HashMap::new();
        for n in 0..100 {
            *counts.entry(pick(&MIX, n).label()).or_insert(0u32) += 1;
        }
        for (kind, w) in MIX {
            assert_eq!(counts[kind.label()], w, "{kind:?}");
        }
    }

    #[test]
    fn a_single_kind_mix_always_picks_it() {
        let only = [(Kind::Health, 1)];
        assert!((0..50).all(|n| pick(&only, n) == Kind::Health));
    }
}
