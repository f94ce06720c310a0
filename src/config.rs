//! Settings: the defaults in `config/default.toml` (compiled in), an optional file given
//! with `--config`, then `CLOUDPILOT__SECTION__KEY` environment variables, later ones
//! winning. Nothing else in the crate reads files or the environment for settings.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

const DEFAULTS: &str = include_str!("../config/default.toml");

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration: {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub store: StoreSettings,
    pub auth: AuthSettings,
    pub secrets: SecretSettings,
    pub fleet: FleetSettings,
    pub cluster: ClusterSettings,
}

/// How nodes sharing one Redis split the fleet (used only with `store.backend = "redis"`).
/// Every node of one deployment must use the same `shards`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClusterSettings {
    /// Routers fall into this many shards; each shard has one owning node at a time.
    pub shards: u32,
    /// How often a node heartbeats and renews its shard leases.
    pub heartbeat_ms: u64,
    /// A lease not renewed for this long expires; a node silent this long is dead.
    pub lease_ttl_ms: u64,
    /// How long the result of a forwarded or keyed command is kept, so that a redelivery
    /// or a client's retry with the same `Idempotency-Key` gets it instead of a second run.
    pub request_record_secs: u64,
}

impl ClusterSettings {
    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms)
    }
    pub fn lease_ttl(&self) -> Duration {
        Duration::from_millis(self.lease_ttl_ms)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    pub body_limit_bytes: usize,
    pub node_name: String,
    pub log_format: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoreSettings {
    /// `embedded` (a redb file in `data_dir`) or `redis` (`redis_url`).
    pub backend: String,
    pub data_dir: PathBuf,
    /// Where the `redis` backend connects; may carry a password, so it is masked on output.
    #[serde(default)]
    pub redis_url: String,
    /// Connections the `redis` backend keeps open at most.
    #[serde(default = "default_redis_pool_size")]
    pub redis_pool_size: usize,
}

fn default_redis_pool_size() -> usize {
    16
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AuthSettings {
    pub jwt_secret: String,
    pub access_ttl_secs: u64,
    pub refresh_ttl_secs: u64,
    pub pbkdf2_iterations: u32,
    pub login_failures_per_window: u64,
    pub login_window_secs: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SecretSettings {
    pub master_key: String,
    pub master_key_id: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FleetSettings {
    pub connect_timeout_ms: u64,
    pub command_timeout_ms: u64,
    pub max_command_timeout_ms: u64,
    pub max_stream_secs: u64,
    pub max_backlog: usize,
    pub keepalive_secs: u64,
    pub connect_concurrency: usize,
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    /// PEM file of extra CAs trusted for API-SSL in `tls=verify` mode; empty for none.
    #[serde(default)]
    pub tls_ca_file: String,
}

impl FleetSettings {
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
    pub fn command_timeout(&self) -> Duration {
        Duration::from_millis(self.command_timeout_ms)
    }
    pub fn keepalive(&self) -> Duration {
        Duration::from_secs(self.keepalive_secs.max(1))
    }
    pub fn tls_ca_file(&self) -> Option<PathBuf> {
        Some(self.tls_ca_file.trim())
            .filter(|path| !path.is_empty())
            .map(PathBuf::from)
    }
}

impl Settings {
    /// Defaults, then `file` if given, then the environment.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        Self::load_with_env(file, std::env::vars())
    }

    /// As [`Settings::load`], with the environment given explicitly (for tests).
    pub fn load_with_env(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        if let Some(path) = file {
            builder = builder.add_source(config::File::from(path).required(true));
        }
        let env: config::Map<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("CLOUDPILOT__"))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("CLOUDPILOT")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(env)),
        );
        let settings: Settings = builder.build()?.try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        match self.store.backend.as_str() {
            "embedded" => {}
            "redis" => self.validate_redis()?,
            other => {
                return Err(ConfigError::Invalid {
                    field: "store.backend",
                    reason: format!("unknown backend {other:?} (use \"embedded\" or \"redis\")"),
                })
            }
        }
        if !matches!(self.server.log_format.as_str(), "human" | "json") {
            return Err(ConfigError::Invalid {
                field: "server.log_format",
                reason: "must be \"human\" or \"json\"".into(),
            });
        }
        if !self.auth.jwt_secret.is_empty() && self.auth.jwt_secret.len() < 32 {
            return Err(ConfigError::Invalid {
                field: "auth.jwt_secret",
                reason: "must be at least 32 bytes".into(),
            });
        }
        if !self.secrets.master_key.is_empty() && parse_hex_key(&self.secrets.master_key).is_none()
        {
            return Err(ConfigError::Invalid {
                field: "secrets.master_key",
                reason: "must be 64 hex characters".into(),
            });
        }
        let c = &self.cluster;
        if c.shards == 0
            || c.shards > 4096
            || c.heartbeat_ms == 0
            || c.lease_ttl_ms < 3 * c.heartbeat_ms
        {
            return Err(ConfigError::Invalid {
                field: "cluster",
                reason: "shards must be 1..=4096, heartbeat_ms positive and lease_ttl_ms at \
                         least three heartbeats"
                    .into(),
            });
        }
        if self.auth.pbkdf2_iterations == 0 || self.fleet.max_backlog == 0 {
            return Err(ConfigError::Invalid {
                field: "auth.pbkdf2_iterations / fleet.max_backlog",
                reason: "must be positive".into(),
            });
        }
        Ok(())
    }

    /// Several nodes share a Redis, so they must agree on the URL and on the keys: keys
    /// generated into each node's own data directory would not open each other's tokens and
    /// sealed passwords.
    fn validate_redis(&self) -> Result<(), ConfigError> {
        let url = self.store.redis_url.trim();
        let schemes = [
            "redis://",
            "rediss://",
            "redis+cluster://",
            "rediss+cluster://",
        ];
        let well_formed = !url.is_empty()
            && url.split(',').map(str::trim).all(|u| {
                schemes
                    .iter()
                    .any(|s| u.starts_with(s) && u.len() > s.len())
            });
        if !well_formed {
            return Err(ConfigError::Invalid {
                field: "store.redis_url",
                reason: "must be redis://, rediss://, redis+cluster:// or rediss+cluster:// \
                         URLs, comma-separated for a cluster"
                    .into(),
            });
        }
        if self.store.redis_pool_size == 0 {
            return Err(ConfigError::Invalid {
                field: "store.redis_pool_size",
                reason: "must be positive".into(),
            });
        }
        if self.auth.jwt_secret.is_empty() || self.secrets.master_key.is_empty() {
            return Err(ConfigError::Invalid {
                field: "auth.jwt_secret / secrets.master_key",
                reason: "must be set when store.backend is \"redis\", so every node shares them"
                    .into(),
            });
        }
        Ok(())
    }

    /// The settings as TOML with every secret replaced by `"<set>"` or `"<generated>"`.
    pub fn masked_toml(&self) -> String {
        let mut copy = self.clone();
        copy.auth.jwt_secret = mask(&copy.auth.jwt_secret);
        copy.secrets.master_key = mask(&copy.secrets.master_key);
        copy.store.redis_url = mask_url_passwords(&copy.store.redis_url);
        toml::to_string_pretty(&copy).unwrap_or_default()
    }
}

fn mask(secret: &str) -> String {
    if secret.is_empty() {
        "<generated in data_dir>".into()
    } else {
        "<set>".into()
    }
}

/// Replaces the password part (`user:password@`) of each comma-separated URL with `<set>`.
fn mask_url_passwords(urls: &str) -> String {
    urls.split(',')
        .map(|url| {
            let Some((scheme, rest)) = url.split_once("://") else {
                return url.to_owned();
            };
            let Some((userinfo, host)) = rest.rsplit_once('@') else {
                return url.to_owned();
            };
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:<set>@{host}"),
                None => url.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses a 32-byte key written as 64 hex characters.
pub fn parse_hex_key(text: &str) -> Option<[u8; 32]> {
    let bytes = hex::decode(text.trim()).ok()?;
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_defaults() {
        let env = [(
            "CLOUDPILOT__FLEET__MAX_BACKLOG".to_string(),
            "7".to_string(),
        )];
        let s = Settings::load_with_env(None, env).unwrap();
        assert_eq!(s.fleet.max_backlog, 7);
        assert_eq!(s.server.listen.port(), 8000);
    }

    #[test]
    fn masked_output_hides_secrets() {
        let env = [("CLOUDPILOT__AUTH__JWT_SECRET".to_string(), "s".repeat(40))];
        let s = Settings::load_with_env(None, env).unwrap();
        let text = s.masked_toml();
        assert!(!text.contains(&"s".repeat(40)));
        assert!(text.contains("<set>"));
    }

    #[test]
    fn short_jwt_secret_is_refused() {
        let env = [(
            "CLOUDPILOT__AUTH__JWT_SECRET".to_string(),
            "short".to_string(),
        )];
        assert!(Settings::load_with_env(None, env).is_err());
    }

    fn redis_env(url: &str) -> Vec<(String, String)> {
        vec![
            ("CLOUDPILOT__STORE__BACKEND".into(), "redis".into()),
            ("CLOUDPILOT__STORE__REDIS_URL".into(), url.into()),
            ("CLOUDPILOT__AUTH__JWT_SECRET".into(), "j".repeat(40)),
            ("CLOUDPILOT__SECRETS__MASTER_KEY".into(), "ab".repeat(32)),
        ]
    }

    /// The redis backend is accepted with a URL, single or cluster, and shared keys.
    #[test]
    fn redis_backend_accepted_with_url_and_keys() {
        let s = Settings::load_with_env(None, redis_env("redis://127.0.0.1:6379")).unwrap();
        assert_eq!(s.store.backend, "redis");
        assert_eq!(s.store.redis_pool_size, 16);
        let cluster = "redis://127.0.0.1:7000,redis://127.0.0.1:7001";
        assert!(Settings::load_with_env(None, redis_env(cluster)).is_ok());
    }

    /// A missing or malformed URL, or keys left to be generated per node, are refused.
    #[test]
    fn redis_backend_refused_without_url_or_shared_keys() {
        assert!(Settings::load_with_env(None, redis_env("")).is_err());
        assert!(Settings::load_with_env(None, redis_env("http://127.0.0.1:6379")).is_err());
        assert!(Settings::load_with_env(None, redis_env("redis://a:1,")).is_err());
        let mut no_keys = redis_env("redis://127.0.0.1:6379");
        no_keys.retain(|(k, _)| !k.ends_with("MASTER_KEY"));
        assert!(Settings::load_with_env(None, no_keys).is_err());
        let unknown = [("CLOUDPILOT__STORE__BACKEND".to_string(), "etcd".to_string())];
        assert!(Settings::load_with_env(None, unknown).is_err());
    }

    /// A password in the Redis URL never reaches `admin config` output.
    #[test]
    fn masked_output_hides_redis_password() {
        let url = "rediss://app:hunter2hunter2@127.0.0.1:6380,redis://127.0.0.1:7000";
        let s = Settings::load_with_env(None, redis_env(url)).unwrap();
        let text = s.masked_toml();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("rediss://app:<set>@127.0.0.1:6380"), "{text}");
        assert!(text.contains("redis://127.0.0.1:7000"), "{text}");
    }
}
