//! `cloudpilot loadgen`: a load generator that is a plain REST client of CloudPilot. It
//! starts its own simulated fleet and server as child processes (or targets a running
//! server), registers the routers through the API, drives request mixes closed- or
//! open-loop, compares execute-command throughput with the raw pipelined RouterOS client,
//! and writes a report (JSON, Markdown, SVG) with PASS/MISS per target.

mod children;
mod cpu;
mod drive;
mod env;
mod mix;
mod raw;
mod report;
mod scenario;
mod svg;

pub mod rest;

use std::path::PathBuf;
use std::time::Duration;

pub use scenario::Scenario;

/// Command-line options of `cloudpilot loadgen`.
#[derive(Clone, Debug, clap::Args)]
pub struct LoadgenArgs {
    /// What to measure.
    #[arg(long, value_enum, default_value = "all")]
    pub scenario: Scenario,
    /// Simulated routers to start and register (the largest fleet size measured); by
    /// default 10,000 for `all`, `sessions` and `fleet-scaling`, the fleet, and
    /// 1,000 for the others.
    #[arg(long = "routers")]
    pub routers_flag: Option<usize>,
    /// `--routers`, or the scenario's default; set by [`run`].
    #[arg(skip)]
    pub routers: usize,
    /// Total measuring time, shared among the scenario's phases (e.g. 30s, 2m, 500ms).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Requests in flight in closed-loop phases.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Arrival rate (requests/s) of the fleet-scaling probe and of an open-loop mix.
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// Run the mixed scenario open-loop at --rate instead of closed-loop.
    #[arg(long)]
    pub open_loop: bool,
    /// The ceiling execute-command throughput is compared with (`none` skips it).
    #[arg(long, value_enum, default_value = "raw")]
    pub baseline: Baseline,
    /// A running CloudPilot to load instead of starting one (e.g. http://127.0.0.1:8000).
    #[arg(long)]
    pub target: Option<String>,
    /// Access token for --target.
    #[arg(long, env = "CLOUDPILOT_LOADGEN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// User to log in as on --target (a fresh user is registered when absent).
    #[arg(long)]
    pub username: Option<String>,
    #[arg(long, env = "CLOUDPILOT_LOADGEN_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Routers per `cloudpilot sim` child process (file descriptors run out beyond).
    #[arg(long, default_value_t = children::DEFAULT_ROUTERS_PER_SIM)]
    pub routers_per_sim: usize,
    /// Directory the report is written to.
    #[arg(long, default_value = "loadgen-report")]
    pub out: PathBuf,
    /// Share of failed requests above which the run itself fails (exit code 1).
    #[arg(long, default_value_t = 0.01)]
    pub max_error_ratio: f64,
    /// Hide the progress bars.
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Baseline {
    Raw,
    None,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadgenError {
    #[error("cannot start {what}: {source}")]
    Spawn {
        what: String,
        source: std::io::Error,
    },
    #[error("{what}: {detail}")]
    ChildOutput { what: String, detail: String },
    #[error("server at {url} did not become healthy")]
    ServerNotReady { url: String },
    #[error("{what}: {source}")]
    Http {
        what: String,
        source: reqwest::Error,
    },
    #[error("{what}: unexpected status {status}: {body}")]
    Api {
        what: String,
        status: u16,
        body: String,
    },
    #[error("only {open} of {want} sessions open after {waited_s} s")]
    SessionsNotUp { want: u64, open: u64, waited_s: u64 },
    #[error("raw baseline: {detail}")]
    Baseline { detail: String },
    #[error("phase {phase}: {errors} of {units} units failed (first: {first})")]
    TooManyErrors {
        phase: String,
        errors: u64,
        units: u64,
        first: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Usage(String),
}

/// Parses `10s`, `500ms`, `2m` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num.parse().map_err(|_| format!("not a duration: {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("unknown unit in {s:?} (use ms, s or m)")),
    };
    if !(secs > 0.0 && secs.is_finite()) {
        return Err(format!("duration must be positive: {s:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Runs the load test and writes its report. Missed targets are reported, not errors;
/// errors mean the tool itself could not do its job.
pub async fn run(mut args: LoadgenArgs) -> Result<(), LoadgenError> {
    args.routers = args.routers_flag.unwrap_or(match args.scenario {
        Scenario::All | Scenario::Sessions | Scenario::FleetScaling => 10_000,
        _ => 1000,
    });
    if args.routers == 0 {
        return Err(LoadgenError::Usage("--routers must be at least 1".into()));
    }
    let report = scenario::run(&args).await?;
    let paths = report::write(&report, &args.out)?;
    println!("{}", report::markdown(&report));
    eprintln!("report written: {}", paths.join(", "));
    scenario::check_errors(&report, args.max_error_ratio)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_ms_s_and_m_suffixes() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("s").is_err());
    }
}
