//! `cloudpilot demo` and `cloudpilot admin create-user`: a node with simulated routers
//! registered to a demo user, so a newcomer can `curl` it at once, and user creation
//! straight into the store.

use std::sync::Arc;

use crate::auth::{AccountPolicy, Accounts, RegisterInput, TokenIssuer};
use crate::config::Settings;
use crate::node::Node;
use crate::sim::{SimConfig, Simulator};
use crate::store::embedded::EmbeddedStore;
use crate::store::{NewRouter, Store, Transport};

type AnyError = Box<dyn std::error::Error + Send + Sync>;

/// The demo user's credentials; the demo listens on loopback unless told otherwise.
pub const DEMO_USER: &str = "demo";
pub const DEMO_PASSWORD: &str = "cloudpilot-demo";

/// Runs the demo until Ctrl-C. `owns_data_dir` says the data directory was made for this
/// run and is removed at the end; a directory the user named is never removed.
pub async fn run(settings: Settings, routers: usize, owns_data_dir: bool) -> Result<(), AnyError> {
    let data_dir = settings.store.data_dir.clone();
    let sim = Simulator::start(SimConfig {
        routers,
        versions: vec!["7.18.2".into(), "6.49.10".into(), "6.42.12".into()],
        ..SimConfig::default()
    })
    .await?;
    let node = Node::bind_and_start(settings).await?;
    let state = node.state.clone();
    let reg = match state
        .accounts
        .register(RegisterInput {
            username: Some(DEMO_USER.into()),
            password: Some(DEMO_PASSWORD.into()),
            email: Some("demo@example.com".into()),
        })
        .await
    {
        Ok(reg) => Some(reg),
        Err(e) => {
            eprintln!("demo user not created ({e:?}); it probably exists in this data directory");
            None
        }
    };
    if let Some(reg) = &reg {
        for (i, r) in sim.routers().iter().enumerate() {
            let sealed = state.sealer.seal(r.password.as_bytes())?;
            let router = state
                .store
                .create_router(NewRouter {
                    owner: reg.user.id,
                    name: format!("sim-{:02}", i + 1),
                    host: r.host.clone(),
                    port: r.port,
                    username: r.username.clone(),
                    password: sealed,
                    transport: Transport::Api,
                    use_https: false,
                    tls: "verify".into(),
                    tags: vec![
                        "demo".into(),
                        format!("v{}", r.version.split('.').next().unwrap_or("7")),
                    ],
                })
                .await?;
            state.fleet.open(router, r.password.clone()).await;
        }
    }
    let base = format!("http://{}", node.addr);
    println!("CloudPilot demo is serving on {base}");
    println!("  data directory: {}", data_dir.display());
    println!("  user: {DEMO_USER}  password: {DEMO_PASSWORD}");
    if let Some(reg) = &reg {
        println!(
            "  API key: public {}  private {}",
            reg.api_public, reg.api_private
        );
    }
    println!(
        "  {} simulated routers, ids 1..={}",
        sim.routers().len(),
        sim.routers().len()
    );
    println!();
    println!("Try:");
    println!(
        "  TOKEN=$(curl -s {base}/users/login/ -H 'Content-Type: application/json' \\\n    -d '{{\"username\":\"{DEMO_USER}\",\"password\":\"{DEMO_PASSWORD}\"}}' | sed 's/.*\"access_token\":\"\\([^\"]*\\)\".*/\\1/')"
    );
    println!("  curl -s {base}/routers/ -H \"Authorization: Bearer $TOKEN\"");
    println!(
        "  curl -s {base}/routers/1/execute-command/ -H \"Authorization: Bearer $TOKEN\" \\\n    -H 'Content-Type: application/json' -d '{{\"command\":\"system/resource\"}}'"
    );
    println!("Stop with Ctrl-C.");
    wait().await;
    node.shutdown().await;
    sim.shutdown();
    if owns_data_dir {
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    Ok(())
}

async fn wait() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
    }
}

pub async fn create_user(
    settings: &Settings,
    username: &str,
    password: &str,
    email: Option<String>,
) -> Result<(), AnyError> {
    std::fs::create_dir_all(&settings.store.data_dir)?;
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open_in(&settings.store.data_dir)?);
    // Only registration runs here: no token is issued, so an ephemeral secret suffices.
    let secret: [u8; 32] = rand::random();
    let issuer = TokenIssuer::new(
        &secret,
        std::time::Duration::from_secs(60),
        std::time::Duration::from_secs(60),
    );
    let accounts = Accounts::new(store, issuer?, AccountPolicy::from_settings(&settings.auth));
    let reg = accounts
        .register(RegisterInput {
            username: Some(username.into()),
            password: Some(password.into()),
            email,
        })
        .await
        .map_err(|e| format!("{e:?}"))?;
    println!(
        "{}",
        serde_json::json!({
            "user_id": reg.user.id,
            "username": reg.user.username,
            "api_key": { "public_key": reg.api_public, "private_key": reg.api_private },
        })
    );
    Ok(())
}
