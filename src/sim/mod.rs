//! Simulated MikroTik routers speaking the RouterOS API over plain TCP or API-SSL, byte
//! for byte.
//!
//! Owns: one loopback listener per router, the per-connection protocol (login in both
//! forms, tags, many commands in flight, `/cancel`, `!fatal`), a small stateful model per
//! router and injectable faults. Framing comes from [`crate::routeros::codec`]; nothing
//! else of the crate is used.
//!
//! Map: [`router`] holds one router's controls, counters and listener; [`connection`] one
//! client connection and its writer; [`session`] login, cancel and dispatch on a connection;
//! [`request`] command words and reply sentences; [`commands`] the menu tree; [`model`] the
//! mutable state; [`system`] the read-only menus; [`query`] print filters; [`streams`]
//! long-running commands; [`login`] the MD5 challenge; [`version`] feature gates by version;
//! [`rest`] the v7 REST API over HTTP on a second port (with [`SimConfig::rest`]), served from
//! the same model. Besides framing, only [`crate::routeros::rest::json`] is shared with the
//! client side, for JSON whose strings are bytes.
//!
//! [`tls`] API-SSL with generated certificates.
//!
//! Not simulated yet: HTTPS for REST, `print =interval=`, and query stack
//! operators that push by index (`?#0`..`?#9`).

mod commands;
mod connection;
mod login;
mod model;
mod query;
mod request;
mod rest;
mod router;
mod session;
mod streams;
mod system;
mod tls;
mod version;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

pub use router::SimRouter;
use tls::SimTlsServer;
pub use tls::{SimTls, SimTlsError};

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The simulator only ever listens on loopback: it is a test and demo tool.
    #[error("simulated routers listen on loopback only, not on {addr}")]
    NotLoopback { addr: IpAddr },
    #[error("router {index}: port {base} + {index} is past 65535")]
    PortOutOfRange { base: u16, index: usize },
    #[error("router {index}: cannot listen on {addr}: {source}")]
    Bind {
        index: usize,
        addr: SocketAddr,
        source: std::io::Error,
    },
}

impl From<SimError> for std::io::Error {
    fn from(err: SimError) -> Self {
        let kind = match &err {
            SimError::Bind { source, .. } => source.kind(),
            _ => std::io::ErrorKind::InvalidInput,
        };
        std::io::Error::new(kind, err)
    }
}

/// Faults injected into a router's replies; changeable at run time with
/// [`SimRouter::set_faults`].
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Added before each batch of reply sentences; batches keep their order.
    pub latency: Duration,
    /// Every Nth command (counted per router) gets half of its first reply sentence, then
    /// the connection is closed.
    pub drop_every: Option<u32>,
    /// Every reply byte goes out in its own write, to exercise a client's reassembly.
    pub one_byte_writes: bool,
    /// Forces `!empty` for prints that match nothing on (`Some(true)`) or off, whatever
    /// the version says (RouterOS sends it from 7.18 on).
    pub empty_replies: Option<bool>,
}

/// What to simulate.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub routers: usize,
    /// Loopback address; port 0 gives every router an ephemeral port, otherwise router
    /// `i` listens on `port + i`.
    pub listen_base: SocketAddr,
    pub username: String,
    pub password: String,
    /// Cycled over the routers; versions before 6.43 use the MD5 challenge login.
    pub versions: Vec<String>,
    pub faults: Faults,
    /// Also serve the v7 REST API on a second port per router (for versions 7.1 and
    /// later): port + routers + i with a fixed base port, ephemeral with port 0. Off by
    /// default: it doubles the sockets of a large simulation.
    pub rest: bool,
    /// Serve API-SSL instead of the plain API on every router; `None` is plain TCP.
    pub tls: Option<SimTls>,
}

/// The demo password of a default simulator; the simulator holds nothing worth protecting.
const DEMO_PASSWORD: &str = "sim-demo-password";
const DEFAULT_VERSION: &str = "7.18.2";

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            routers: 1,
            listen_base: SocketAddr::from(([127, 0, 0, 1], 0)),
            username: "admin".to_owned(),
            password: DEMO_PASSWORD.to_owned(),
            versions: vec![DEFAULT_VERSION.to_owned()],
            faults: Faults::default(),
            rest: false,
            tls: None,
        }
    }
}

/// Where and how to reach one simulated router; printed as JSON by `cloudpilot sim`.
#[derive(Clone, Debug, Serialize)]
pub struct SimRouterInfo {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: String,
    pub version: String,
    /// The HTTP port of the REST API, when [`SimConfig::rest`] is on and the version has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rest_port: Option<u16>,
    /// How API-SSL is served ("certificate", "self-signed", "anonymous"); absent for the
    /// plain API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<String>,
    /// SHA-256 (hex) of the certificate's DER, the value for `tls=pin:`; absent when there
    /// is no certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_sha256: Option<String>,
}

/// A running fleet of simulated routers. Dropping it shuts it down.
pub struct Simulator {
    routers: Vec<Arc<SimRouter>>,
    infos: Vec<SimRouterInfo>,
    /// One signal for every listener and connection, so shutdown needs no per-task handle.
    shutdown: watch::Sender<bool>,
    tls: Option<Arc<SimTlsServer>>,
}

impl Simulator {
    /// Binds every router's listener, then serves each from its own task.
    pub async fn start(cfg: SimConfig) -> std::io::Result<Simulator> {
        let ip = cfg.listen_base.ip();
        if !ip.is_loopback() {
            return Err(SimError::NotLoopback { addr: ip }.into());
        }
        let tls = match cfg.tls {
            Some(mode) => Some(Arc::new(
                SimTlsServer::generate(mode).map_err(std::io::Error::other)?,
            )),
            None => None,
        };
        let (shutdown, _) = watch::channel(false);
        let mut sim = Simulator {
            routers: Vec::new(),
            infos: Vec::new(),
            shutdown,
            tls,
        };
        for index in 0..cfg.routers {
            let addr = router_addr(cfg.listen_base, index)?;
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| SimError::Bind {
                    index,
                    addr,
                    source,
                })?;
            let local = listener.local_addr()?;
            let version = match cfg.versions.is_empty() {
                true => DEFAULT_VERSION.to_owned(),
                false => cfg.versions[index % cfg.versions.len()].clone(),
            };
            let rest_listener = match cfg.rest && rest::has_rest(&version) {
                true => {
                    // REST ports follow the API ports: base + routers + index (or ephemeral).
                    let addr = router_addr(cfg.listen_base, cfg.routers + index)?;
                    let bound = tokio::net::TcpListener::bind(addr).await;
                    Some(bound.map_err(|source| SimError::Bind {
                        index,
                        addr,
                        source,
                    })?)
                }
                false => None,
            };
            let rest_port = match &rest_listener {
                Some(listener) => Some(listener.local_addr()?.port()),
                None => None,
            };
            let info = SimRouterInfo {
                host: local.ip().to_string(),
                port: local.port(),
                username: cfg.username.clone(),
                password: cfg.password.clone(),
                version,
                rest_port,
                tls: sim.tls.as_ref().map(|t| t.mode().name().to_owned()),
                cert_sha256: sim
                    .tls
                    .as_ref()
                    .and_then(|t| t.cert_sha256().map(str::to_owned)),
            };
            let router = Arc::new(SimRouter::new(index, info.clone(), cfg.faults.clone()));
            tokio::spawn(router::accept_loop(
                router.clone(),
                listener,
                sim.tls.clone(),
                sim.shutdown.subscribe(),
            ));
            if let Some(listener) = rest_listener {
                let shutdown = sim.shutdown.subscribe();
                let tls = sim.tls.clone();
                tokio::spawn(rest::accept_loop(router.clone(), listener, tls, shutdown));
            }
            sim.routers.push(router);
            sim.infos.push(info);
        }
        tracing::info!(sim.routers = cfg.routers, sim.addr = %cfg.listen_base, "simulator up");
        Ok(sim)
    }

    /// PEM of the CA that issued the routers' certificate, for clients that verify it;
    /// only with [`SimTls::Certificate`].
    pub fn ca_pem(&self) -> Option<&str> {
        self.tls.as_ref().and_then(|t| t.ca_pem())
    }

    pub fn routers(&self) -> &[SimRouterInfo] {
        &self.infos
    }

    /// Runtime controls and counters of router `index`; panics when out of range, like
    /// slice indexing.
    pub fn router(&self, index: usize) -> &SimRouter {
        &self.routers[index]
    }

    /// Stops every listener and closes every connection. Takes effect as soon as their
    /// tasks next run, not before this returns.
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn router_addr(base: SocketAddr, index: usize) -> Result<SocketAddr, SimError> {
    if base.port() == 0 {
        return Ok(base);
    }
    let port = u16::try_from(index)
        .ok()
        .and_then(|i| base.port().checked_add(i))
        .ok_or(SimError::PortOutOfRange {
            base: base.port(),
            index,
        })?;
    Ok(SocketAddr::new(base.ip(), port))
}

/// `cloudpilot sim`: starts the routers, prints them as one JSON line on stdout, then
/// serves until ctrl-c.
pub async fn run_cli(cfg: SimConfig) -> Result<(), std::io::Error> {
    let sim = Simulator::start(cfg).await?;
    let line = serde_json::to_string(sim.routers()).map_err(std::io::Error::other)?;
    println!("{line}");
    tokio::signal::ctrl_c().await?;
    tracing::info!("simulator stopping on ctrl-c");
    sim.shutdown();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn router_ports_count_up_from_the_base_and_never_wrap() {
        let base = SocketAddr::from(([127, 0, 0, 1], 65534));
        assert_eq!(router_addr(base, 1).unwrap().port(), 65535);
        assert!(matches!(
            router_addr(base, 2),
            Err(SimError::PortOutOfRange { .. })
        ));
        let ephemeral = SocketAddr::from(([127, 0, 0, 1], 0));
        assert_eq!(router_addr(ephemeral, 7).unwrap().port(), 0);
    }

    #[test]
    fn router_info_serializes_to_the_json_keys_the_cli_prints() {
        let info = SimRouterInfo {
            host: "127.0.0.1".into(),
            port: 8728,
            username: "admin".into(),
            password: "pw".into(),
            version: "7.18.2".into(),
            rest_port: None,
            tls: None,
            cert_sha256: None,
        };
        let json = serde_json::to_string(&[info]).unwrap();
        assert_eq!(
            json,
            r#"[{"host":"127.0.0.1","port":8728,"username":"admin","password":"pw","version":"7.18.2"}]"#
        );
    }

    #[tokio::test]
    async fn a_non_loopback_listen_address_is_refused() {
        let cfg = SimConfig {
            listen_base: SocketAddr::from(([0, 0, 0, 0], 0)),
            ..SimConfig::default()
        };
        let err = Simulator::start(cfg).await.err().expect("refused");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    }
}
