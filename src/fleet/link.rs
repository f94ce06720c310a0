//! How a session reaches its router: one multiplexed RouterOS API connection (plain or
//! API-SSL), or the v7 REST API over a keep-alive HTTP pool. The session actor treats both
//! alike; only streaming needs the API.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;

use super::session::SessionSpec;
use crate::routeros::client::{ClientError, Command, ConnectOptions, Connection, ReplyStream};
use crate::routeros::request::{self, CommandFailure, RestRequest};
use crate::routeros::RestClient;
use crate::store::Transport;

#[derive(Clone)]
pub enum Link {
    Api(Connection),
    Rest(RestLink),
}

/// A REST client plus a "closed" signal, so that a failed request starts a reconnect the
/// way a dropped API connection does.
#[derive(Clone)]
pub struct RestLink {
    client: Arc<RestClient>,
    closed: Arc<watch::Sender<Option<String>>>,
}

impl RestLink {
    fn close_with(&self, reason: &str) {
        self.closed.send_if_modified(|r| {
            if r.is_none() {
                *r = Some(reason.to_string());
                true
            } else {
                false
            }
        });
    }
}

impl Link {
    /// Connects, logs in (or probes, for REST) and reads the RouterOS version.
    pub async fn connect(spec: &SessionSpec) -> Result<(Link, Option<String>), String> {
        let opts = ConnectOptions {
            connect_timeout: spec.settings.connect_timeout(),
            login_timeout: spec.settings.connect_timeout(),
            tcp_keepalive: Some(spec.settings.keepalive()),
            tls: spec.tls.clone(),
        };
        match spec.transport {
            Transport::Api => {
                let conn = Connection::connect(&spec.host, spec.port, &spec.credentials, &opts)
                    .await
                    .map_err(|e| e.to_string())?;
                let probe = Command::new("/system/resource/print").api_attr(".proplist", "version");
                let version = match conn
                    .call_timeout(probe, spec.settings.connect_timeout())
                    .await
                {
                    Ok(resp) => resp.rows.first().and_then(|r| r.get_str("version")),
                    Err(e) if e.is_connection_failure() => return Err(e.to_string()),
                    Err(_) => None,
                };
                Ok((Link::Api(conn), version))
            }
            Transport::Rest => {
                let creds = (*spec.credentials).clone();
                let client = RestClient::new(&spec.host, spec.port, spec.https, creds, &opts)
                    .map_err(|e| e.to_string())?;
                let version = client.probe().await.map_err(|e| e.to_string())?;
                let (closed, _) = watch::channel(None);
                let link = RestLink {
                    client: Arc::new(client),
                    closed: Arc::new(closed),
                };
                Ok((Link::Rest(link), version))
            }
        }
    }

    pub async fn execute(
        &self,
        req: &RestRequest,
        timeout: Duration,
    ) -> Result<Value, CommandFailure> {
        match self {
            Link::Api(conn) => request::execute(conn, req, timeout).await,
            Link::Rest(rest) => {
                let result = rest.client.execute(req, timeout).await;
                if let Err(CommandFailure::Unreachable { message }) = &result {
                    rest.close_with(message);
                }
                result
            }
        }
    }

    pub fn stream(&self, cmd: Command) -> Result<ReplyStream, CommandFailure> {
        match self {
            Link::Api(conn) => conn.stream(cmd).map_err(|e| CommandFailure::Unreachable {
                message: e.to_string(),
            }),
            Link::Rest(_) => Err(CommandFailure::Trap {
                message: "streaming commands need the RouterOS API transport (transport: api)"
                    .into(),
                category: None,
            }),
        }
    }

    /// A cheap request on a quiet link; a failure closes the link, which starts a reconnect.
    pub async fn probe(&self, timeout: Duration) -> bool {
        match self {
            Link::Api(conn) => {
                match conn
                    .call_timeout(Command::new("/system/identity/print"), timeout)
                    .await
                {
                    Ok(_) => true,
                    Err(e) if e.is_connection_failure() || matches!(e, ClientError::Timeout) => {
                        conn.close();
                        false
                    }
                    Err(_) => true,
                }
            }
            Link::Rest(rest) => match tokio::time::timeout(timeout, rest.client.probe()).await {
                Ok(Ok(_)) => true,
                Ok(Err(e)) => {
                    rest.close_with(&e.to_string());
                    false
                }
                Err(_) => {
                    rest.close_with("no answer to a keepalive probe");
                    false
                }
            },
        }
    }

    pub fn close(&self) {
        match self {
            Link::Api(conn) => conn.close(),
            Link::Rest(rest) => rest.close_with("closed"),
        }
    }

    /// Closes the link and waits until its socket is closed (API; REST connections are
    /// pooled per request and simply closed).
    pub async fn shutdown(&self) {
        match self {
            Link::Api(conn) => conn.shutdown().await,
            Link::Rest(rest) => rest.close_with("closed"),
        }
    }

    /// Resolves when the link is gone, with the reason.
    pub async fn closed(&self) -> String {
        match self {
            Link::Api(conn) => conn.closed().await.to_string(),
            Link::Rest(rest) => {
                let mut rx = rest.closed.subscribe();
                let reason = match rx.wait_for(Option::is_some).await {
                    Ok(reason) => reason.clone().unwrap_or_default(),
                    Err(_) => "closed".into(),
                };
                reason
            }
        }
    }
}
