//! A running CloudPilot node: opens the store, loads or creates the keys, starts the
//! fleet with a session for every stored router, and serves the API. `cloudpilot serve`,
//! the demo and the integration tests all start a node through [`Node::start`].

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::{self, AppState, Metrics};
use crate::auth::{AccountPolicy, Accounts, TokenIssuer};
use crate::cluster::{Cluster, Dispatch};
use crate::config::{parse_hex_key, Settings};
use crate::fleet::Fleet;
use crate::store::embedded::EmbeddedStore;
use crate::store::redis::RedisStore;
use crate::store::seal::{load_or_create_key_file, Sealer};
use crate::store::Store;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("key file {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("token signing key: {0}")]
    Signing(#[from] crate::auth::TokenError),
    #[error(transparent)]
    Fleet(#[from] crate::fleet::FleetStartError),
}

/// A node that is serving. Dropping it does not stop it; call [`Node::shutdown`].
pub struct Node {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    stop: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
}

impl Node {
    /// Starts a node on `listener` (bind it to port 0 in tests).
    pub async fn start(settings: Settings, listener: TcpListener) -> Result<Node, NodeError> {
        let settings = Arc::new(settings);
        let data_dir = &settings.store.data_dir;
        std::fs::create_dir_all(data_dir).map_err(|source| NodeError::DataDir {
            path: data_dir.display().to_string(),
            source,
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700));
        }
        let store = open_store(&settings)?;

        let jwt_secret = match settings.auth.jwt_secret.as_str() {
            "" => key_file(&data_dir.join("jwt.key"))?.to_vec(),
            s => s.as_bytes().to_vec(),
        };
        let master = match parse_hex_key(&settings.secrets.master_key) {
            Some(key) => key,
            None => key_file(&data_dir.join("master.key"))?,
        };
        let sealer = Arc::new(Sealer::new(settings.secrets.master_key_id, master));
        let issuer = TokenIssuer::new(
            &jwt_secret,
            Duration::from_secs(settings.auth.access_ttl_secs),
            Duration::from_secs(settings.auth.refresh_ttl_secs),
        );
        let accounts = Accounts::new(
            store.clone(),
            issuer?,
            AccountPolicy::from_settings(&settings.auth),
        );

        let fleet = Fleet::start(settings.fleet.clone()).await?;
        let node = node_name(&settings);
        let dispatch = if settings.store.backend == "redis" {
            // Sessions open for the shards this node comes to hold.
            let cluster = Cluster::start(
                &node,
                &settings,
                store.clone(),
                sealer.clone(),
                fleet.clone(),
            )
            .await?;
            Dispatch::clustered(fleet.clone(), cluster)
        } else {
            let routers = store.all_routers().await?;
            let count = routers.len();
            for router in routers {
                fleet.open_sealed(router, &sealer).await;
            }
            tracing::info!(routers = count, "sessions opening");
            let keep = Duration::from_secs(settings.cluster.request_record_secs);
            Dispatch::single(fleet.clone(), keep)
        };

        let state = Arc::new(AppState {
            settings: settings.clone(),
            store,
            accounts,
            fleet,
            dispatch,
            sealer,
            node,
            metrics: Metrics::default(),
        });
        let addr = listener.local_addr().map_err(|source| NodeError::Listen {
            addr: settings.server.listen,
            source,
        })?;
        let (stop, mut stopped) = watch::channel(false);
        let filter = api::routes(state.clone());
        let server = tokio::spawn(async move {
            warp::serve(filter)
                .incoming(listener)
                .graceful(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .run()
                .await;
        });
        tracing::info!(http.addr = %addr, "listening");
        Ok(Node {
            addr,
            state,
            stop,
            server,
        })
    }

    /// Binds `settings.server.listen` and starts.
    pub async fn bind_and_start(settings: Settings) -> Result<Node, NodeError> {
        let addr = settings.server.listen;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| NodeError::Listen { addr, source })?;
        Node::start(settings, listener).await
    }

    /// Stops accepting requests, closes every router session, and waits for the server.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        self.state.dispatch.shutdown().await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.server).await;
    }
}

/// The name this node reports: `server.node_name`, else the host name.
fn node_name(settings: &Settings) -> String {
    match settings.server.node_name.as_str() {
        "" => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "cloudpilot".into()),
        name => name.to_string(),
    }
}

/// The backend `store.backend` names (validated by [`Settings`]; anything but `redis` is
/// the embedded file).
fn open_store(settings: &Settings) -> Result<Arc<dyn Store>, NodeError> {
    Ok(match settings.store.backend.as_str() {
        "redis" => Arc::new(RedisStore::connect(
            &settings.store.redis_url,
            settings.store.redis_pool_size,
        )?),
        _ => Arc::new(EmbeddedStore::open_in(&settings.store.data_dir)?),
    })
}

fn key_file(path: &Path) -> Result<[u8; 32], NodeError> {
    load_or_create_key_file(path).map_err(|source| NodeError::KeyFile {
        path: path.display().to_string(),
        source,
    })
}
