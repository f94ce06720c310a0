//! The run's report: every figure as JSON, a Markdown summary with PASS/MISS per target
//! and CloudPilot's throughput as a ratio of the raw baseline, and an SVG chart.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::drive::{Latency, PhaseResult};
use super::{svg, LoadgenArgs, LoadgenError, Scenario};

/// The fleet at one size.
#[derive(Clone, Debug, Serialize)]
pub struct FleetStep {
    pub routers: usize,
    pub registering_s: f64,
    /// From the first registration of this step to every session open.
    pub up_s: f64,
    /// Server resident memory (None with `--target`).
    pub rss_kib: Option<u64>,
    /// Open-loop execute-command latency at this size (fleet-scaling).
    pub probe: Option<Latency>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Target {
    pub name: String,
    pub measured: String,
    pub threshold: String,
    pub verdict: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub scenario: Scenario,
    pub routers: usize,
    pub cores: usize,
    /// `debug` or `release`: which build of the binary (and so of the server child) ran.
    pub build: &'static str,
    pub own_server: bool,
    pub fleet: Vec<FleetStep>,
    /// After a restart with every router stored: spawn to all sessions open.
    pub restart_up_s: Option<f64>,
    pub rss_after_restart_kib: Option<u64>,
    /// Raw pipelined RouterOS client, `system/resource` prints per second.
    pub baseline_rate: Option<f64>,
    pub phases: Vec<PhaseResult>,
    pub targets: Vec<Target>,
}

impl Report {
    pub fn new(args: &LoadgenArgs, own_server: bool) -> Report {
        Report {
            scenario: args.scenario,
            routers: args.routers,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            build: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
            own_server,
            fleet: Vec::new(),
            restart_up_s: None,
            rss_after_restart_kib: None,
            baseline_rate: None,
            phases: Vec::new(),
            targets: Vec::new(),
        }
    }
}

/// Writes report.json, report.md and report.svg into `dir`; returns their paths.
pub fn write(report: &Report, dir: &Path) -> Result<Vec<String>, LoadgenError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| LoadgenError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let json = serde_json::to_string_pretty(report).map_err(std::io::Error::other);
    let files = [
        ("report.json", json.map_err(io(dir))?),
        ("report.md", markdown(report)),
        ("report.svg", svg::chart(report)),
    ];
    let mut paths = Vec::new();
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(io(&path))?;
        paths.push(path.display().to_string());
    }
    Ok(paths)
}

pub fn markdown(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# CloudPilot load report\n\nScenario `{:?}`, {} routers, {} cores, {} build{}.\n",
        r.scenario,
        r.routers,
        r.cores,
        r.build,
        if r.own_server {
            ""
        } else {
            ", external server"
        }
    );
    if !r.targets.is_empty() {
        s.push_str("| target | measured | threshold | verdict |\n|---|---|---|---|\n");
        for t in &r.targets {
            let _ = writeln!(
                s,
                "| {} | {} | {} | **{}** |",
                t.name, t.measured, t.threshold, t.verdict
            );
        }
        s.push('\n');
    }
    if let Some(raw) = r.baseline_rate {
        let _ = writeln!(
            s,
            "Raw pipelined baseline: {raw:.0} `system/resource` prints/s.\n"
        );
    }
    if !r.phases.is_empty() {
        s.push_str(
            "| phase | mode | rate/s | vs raw | p50 ms | p90 ms | p99 ms | max ms | errors |\n",
        );
        s.push_str("|---|---|---|---|---|---|---|---|---|\n");
        for p in &r.phases {
            let mode = match p.mode {
                super::drive::Mode::Closed { concurrency } => format!("closed, {concurrency}"),
                super::drive::Mode::Open { rate } => format!("open, {rate:.0}/s"),
            };
            let vs = match r.baseline_rate {
                Some(raw) if raw > 0.0 => format!("{:.2}", p.rate / raw),
                _ => "-".into(),
            };
            let l = &p.latency;
            let _ = writeln!(
                s,
                "| {} | {mode} | {:.0} | {vs} | {:.2} | {:.2} | {:.2} | {:.2} | {}/{} |",
                p.name, p.rate, l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms, p.errors, p.units
            );
        }
    }
    if r.phases.iter().any(|p| p.cpu.is_some()) {
        s.push_str(&cpu_table(r));
    }
    if !r.fleet.is_empty() {
        s.push_str("\n| routers | registering s | up s | server RSS MiB | probe p50 ms |\n");
        s.push_str("|---|---|---|---|---|\n");
        for f in &r.fleet {
            let rss = f
                .rss_kib
                .map_or("-".into(), |k| format!("{:.1}", k as f64 / 1024.0));
            let p50 = f
                .probe
                .as_ref()
                .map_or("-".into(), |l| format!("{:.2}", l.p50_ms));
            let _ = writeln!(
                s,
                "| {} | {:.1} | {:.1} | {rss} | {p50} |",
                f.routers, f.registering_s, f.up_s
            );
        }
    }
    if let Some(up) = r.restart_up_s {
        let rss = r.rss_after_restart_kib.unwrap_or(0) as f64 / 1024.0;
        let _ = writeln!(
            s,
            "\nRestart with {} stored routers: all sessions open after {up:.1} s, RSS {rss:.1} MiB.",
            r.routers
        );
    }
    s
}

/// Where the CPU went in each phase: busy cores by process and CPU time per unit of work.
/// All processes share the machine's cores, so this (not the rate alone) says whether the
/// server or the machine is the limit.
fn cpu_table(r: &Report) -> String {
    let mut s = format!(
        "\nCPU by process (cores busy of {}; µs of CPU per unit of work):\n\n",
        r.cores
    );
    s.push_str("| phase | machine | loadgen | server | sims | other | loadgen µs | server µs | sims µs |\n");
    s.push_str("|---|---|---|---|---|---|---|---|---|\n");
    let opt = |v: Option<f64>, digits: usize| v.map_or("-".into(), |v| format!("{v:.digits$}"));
    for p in &r.phases {
        let Some(c) = &p.cpu else { continue };
        let _ = writeln!(
            s,
            "| {} | {:.2} | {:.2} | {} | {:.2} | {:.2} | {:.0} | {} | {:.0} |",
            p.name,
            c.machine_cores,
            c.loadgen_cores,
            opt(c.server_cores, 2),
            c.sims_cores,
            c.other_cores,
            c.loadgen_us_per_unit,
            opt(c.server_us_per_unit, 0),
            c.sims_us_per_unit
        );
    }
    let total = |name: &str| {
        let c = r.phases.iter().find(|p| p.name == name)?.cpu.as_ref()?;
        Some(c.loadgen_us_per_unit + c.server_us_per_unit.unwrap_or(0.0) + c.sims_us_per_unit)
    };
    if let (Some(raw), Some(exec)) = (total("raw-baseline"), total("exec-closed")) {
        let _ = writeln!(
            s,
            "\nCPU per unit of work, all processes: execute-command {exec:.0} µs, raw {raw:.0} µs. \
             With every core to itself, this run could reach at most {:.0}% of the raw rate \
             through HTTP, however the cores were shared.",
            100.0 * raw / exec.max(f64::MIN_POSITIVE)
        );
    }
    s
}
