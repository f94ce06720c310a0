//! The `cloudpilot` command: `serve`, `demo`, `sim`, `loadgen` and `admin`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use cloudpilot::config::Settings;

#[derive(Parser)]
#[command(
    name = "cloudpilot",
    version,
    about = "Control plane for fleets of MikroTik routers"
)]
struct Cli {
    /// Settings file (TOML) read over the built-in defaults.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the REST API.
    Serve(ServeArgs),
    /// Serve the API with simulated routers registered to a demo user, for trying it out.
    Demo(DemoArgs),
    /// Run simulated RouterOS routers.
    Sim(SimArgs),
    /// Load-test CloudPilot against simulated routers and report PASS/MISS per target.
    Loadgen(cloudpilot::loadgen::LoadgenArgs),
    /// Administrative tasks on the store (run while the server is stopped).
    #[command(subcommand)]
    Admin(AdminCmd),
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on (overrides server.listen).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Data directory for the embedded store and generated keys (overrides store.data_dir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(Args)]
struct DemoArgs {
    #[command(flatten)]
    serve: ServeArgs,
    /// How many simulated routers to start and register.
    #[arg(long, default_value_t = 3)]
    routers: usize,
}

#[derive(Args)]
struct SimArgs {
    /// Number of routers.
    #[arg(long, default_value_t = 1)]
    routers: usize,
    /// First router's address; router i listens on port+i (port 0: ephemeral ports).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen_base: SocketAddr,
    #[arg(long, default_value = "admin")]
    username: String,
    /// Password of every simulated router (default: the simulator's demo password).
    #[arg(long)]
    password: Option<String>,
    /// RouterOS versions to cycle through, comma-separated (e.g. 7.18.2,6.49.10,6.42.12).
    #[arg(long, value_delimiter = ',')]
    versions: Vec<String>,
    /// Latency added before each reply, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Drop the connection halfway through the reply of every Nth command.
    #[arg(long)]
    drop_every: Option<u32>,
    /// Write every reply one byte at a time.
    #[arg(long)]
    one_byte_writes: bool,
    /// Serve API-SSL instead of the plain API: certificate, self-signed or anonymous.
    #[arg(long)]
    tls: Option<cloudpilot::sim::SimTls>,
    /// Also serve the v7 REST API over HTTP on a second port (7.1 and later).
    #[arg(long)]
    rest: bool,
}

#[derive(Subcommand)]
enum AdminCmd {
    /// Create a user; prints its id and first API key pair.
    CreateUser {
        #[arg(long)]
        username: String,
        /// The password; read from the CLOUDPILOT_PASSWORD environment variable when absent.
        #[arg(long, env = "CLOUDPILOT_PASSWORD", hide_env_values = true)]
        password: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Print the effective settings with secrets masked.
    Config,
}

/// mimalloc instead of glibc malloc: allocation was a sixth of the server's CPU time in a
/// profile of execute-command under load; with mimalloc the server spends about a quarter
/// less CPU per request, the simulator a third less per command (loadgen CPU table).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::from(2);
        }
    };
    init_logging(cli.log_json || settings.server.log_format == "json");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, settings)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

type AnyError = Box<dyn std::error::Error + Send + Sync>;

async fn run(cmd: Cmd, mut settings: Settings) -> Result<(), AnyError> {
    match cmd {
        Cmd::Serve(args) => {
            args.apply(&mut settings);
            let node = cloudpilot::node::Node::bind_and_start(settings).await?;
            wait_for_signal().await;
            node.shutdown().await;
            Ok(())
        }
        Cmd::Demo(args) => {
            let owns_data_dir = args.serve.data_dir.is_none();
            if owns_data_dir {
                settings.store.data_dir = tempdir_path();
            }
            args.serve.apply(&mut settings);
            cloudpilot::demo::run(settings, args.routers, owns_data_dir).await
        }
        Cmd::Sim(args) => {
            let mut cfg = cloudpilot::sim::SimConfig {
                routers: args.routers,
                listen_base: args.listen_base,
                username: args.username,
                ..Default::default()
            };
            if let Some(p) = args.password {
                cfg.password = p;
            }
            if !args.versions.is_empty() {
                cfg.versions = args.versions;
            }
            cfg.faults.latency = Duration::from_millis(args.latency_ms);
            cfg.faults.drop_every = args.drop_every;
            cfg.faults.one_byte_writes = args.one_byte_writes;
            cfg.tls = args.tls;
            cfg.rest = args.rest;
            cloudpilot::sim::run_cli(cfg).await?;
            Ok(())
        }
        Cmd::Loadgen(args) => Ok(cloudpilot::loadgen::run(args).await?),
        Cmd::Admin(AdminCmd::Config) => {
            print!("{}", settings.masked_toml());
            Ok(())
        }
        Cmd::Admin(AdminCmd::CreateUser {
            username,
            password,
            email,
            data_dir,
        }) => {
            if let Some(dir) = data_dir {
                settings.store.data_dir = dir;
            }
            cloudpilot::demo::create_user(&settings, &username, &password, email).await
        }
    }
}

impl ServeArgs {
    fn apply(&self, settings: &mut Settings) {
        if let Some(addr) = self.listen {
            settings.server.listen = addr;
        }
        if let Some(dir) = &self.data_dir {
            settings.store.data_dir = dir.clone();
        }
    }
}

fn tempdir_path() -> PathBuf {
    let nonce: u64 = rand::random();
    std::env::temp_dir().join(format!("cloudpilot-demo-{nonce:016x}"))
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let term = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
}
