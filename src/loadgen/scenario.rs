//! The scenarios: which fleet sizes to grow through, which phases to drive, and the
//! PASS/MISS verdict of each target from the figures measured.

use std::time::Duration;

use super::drive::{self, Mode, PhaseResult};
use super::env::Env;
use super::mix::{self, Kind};
use super::raw;
use super::report::{FleetStep, Report, Target};
use super::{Baseline, LoadgenArgs, LoadgenError};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// Sessions held by one node: time to come up, resident memory per session.
    Sessions,
    /// execute-command throughput against the raw pipelined baseline, p99 at half rate.
    Throughput,
    /// Authenticated GET /users/profile/ against unauthenticated GET /health/.
    ProfileVsHealth,
    /// execute-command latency as the fleet grows from 100 routers.
    FleetScaling,
    /// The mixed workload (reads, add/set/remove, profile, login, health).
    Mixed,
    /// Everything above on one fleet.
    All,
}

impl Scenario {
    fn has(self, part: Scenario) -> bool {
        self == part || self == Scenario::All
    }
}

/// Fleet sizes at which memory is read (sessions) and latency probed (scaling).
fn plan(scenario: Scenario, n: usize) -> (Vec<usize>, Vec<usize>) {
    let upto = |sizes: &[usize]| -> Vec<usize> {
        let mut v: Vec<usize> = sizes.iter().copied().filter(|&s| s < n).collect();
        v.push(n);
        v
    };
    let memory = match scenario.has(Scenario::Sessions) {
        true => upto(&[0, 1000]),
        false => Vec::new(),
    };
    let probes = match scenario.has(Scenario::FleetScaling) {
        true => upto(&[100, 1000, 10_000]),
        false => Vec::new(),
    };
    (memory, probes)
}

pub async fn run(args: &LoadgenArgs) -> Result<Report, LoadgenError> {
    let sc = args.scenario;
    let (memory, probes) = plan(sc, args.routers);
    let raw_on = args.baseline == Baseline::Raw;
    let raw_wanted = raw_on && (sc.has(Scenario::Throughput) || sc == Scenario::Mixed);
    let phases = probes.len()
        + usize::from(raw_wanted)
        + usize::from(sc.has(Scenario::Throughput)) * 2
        + usize::from(sc.has(Scenario::ProfileVsHealth)) * 2
        + usize::from(sc.has(Scenario::Mixed));
    let per = (args.duration / phases.max(1) as u32).max(Duration::from_secs(1));
    let show = !args.no_progress;
    let mut env = Env::start(args).await?;
    let mut report = Report::new(args, env.owns_server());

    let mut steps: Vec<usize> = memory.iter().chain(&probes).copied().collect();
    steps.push(args.routers);
    steps.sort_unstable();
    steps.dedup();
    for &size in &steps {
        let (registering_s, up_s) = env.grow_to(size).await?;
        let mut step = FleetStep {
            routers: size,
            registering_s,
            up_s,
            rss_kib: env.server_rss_kib(),
            probe: None,
        };
        if probes.contains(&size) {
            let work = mix::work(
                env.rest.clone(),
                env.registered_ids(),
                vec![(Kind::ExecResource, 1)],
            );
            let mode = Mode::Open { rate: args.rate };
            let name = format!("scaling-{size}");
            let result = measured(&env, &name, mode, per, work, show).await;
            step.probe = Some(result.latency.clone());
            report.phases.push(result);
        }
        tracing::info!(routers = size, up_s, rss_kib = ?step.rss_kib, "fleet step");
        report.fleet.push(step);
    }
    if sc.has(Scenario::Sessions) {
        report.restart_up_s = env.restart_server().await?;
        report.rss_after_restart_kib = env.server_rss_kib();
    }
    let everyone = env.registered_ids();
    let exec_only = vec![(Kind::ExecResource, 1)];
    if raw_wanted {
        // Four times the HTTP concurrency: the baseline is a ceiling, so keep it saturated.
        let conns = raw::connect_all(&env.routers[..env.registered.len()], 128).await?;
        let mode = Mode::Closed {
            concurrency: args.concurrency * 4,
        };
        let work = raw::resource_work(conns);
        let result = measured(&env, "raw-baseline", mode, per, work, show).await;
        report.baseline_rate = Some(result.rate);
        report.phases.push(result);
    }
    if sc.has(Scenario::Throughput) {
        let work = mix::work(env.rest.clone(), everyone.clone(), exec_only.clone());
        let mode = Mode::Closed {
            concurrency: args.concurrency,
        };
        let closed = measured(&env, "exec-closed", mode, per, work.clone(), show).await;
        let half = report.baseline_rate.unwrap_or(closed.rate) / 2.0;
        report.phases.push(closed);
        let open = Mode::Open { rate: half };
        let open = measured(&env, "exec-open-half", open, per, work, show).await;
        report.phases.push(open);
    }
    if sc.has(Scenario::ProfileVsHealth) {
        let mode = Mode::Closed {
            concurrency: args.concurrency,
        };
        for (name, kind) in [("health", Kind::Health), ("profile", Kind::Profile)] {
            let work = mix::work(env.rest.clone(), everyone.clone(), vec![(kind, 1)]);
            report
                .phases
                .push(measured(&env, name, mode, per, work, show).await);
        }
    }
    if sc.has(Scenario::Mixed) {
        let work = mix::work(env.rest.clone(), everyone.clone(), mix::MIX.to_vec());
        let mode = match args.open_loop {
            true => Mode::Open { rate: args.rate },
            false => Mode::Closed {
                concurrency: args.concurrency,
            },
        };
        report
            .phases
            .push(measured(&env, "mixed", mode, per, work, show).await);
    }
    report.targets = targets(&report);
    Ok(report)
}

/// Runs one phase and records where the machine's CPU went meanwhile.
async fn measured(
    env: &Env,
    name: &str,
    mode: Mode,
    per: Duration,
    work: drive::Work,
    show: bool,
) -> PhaseResult {
    let meter = env.cpu_meter();
    let mut result = drive::run(name, mode, per, work, show).await;
    result.cpu = meter.finish(result.units);
    result
}

fn phase<'a>(r: &'a Report, name: &str) -> Option<&'a PhaseResult> {
    r.phases.iter().find(|p| p.name == name)
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "MISS"
    }
}

fn target(name: &str, measured: String, threshold: &str, ok: bool) -> Target {
    Target {
        name: name.to_owned(),
        measured,
        threshold: threshold.to_owned(),
        verdict: verdict(ok).to_owned(),
    }
}

/// The issue's targets, judged on what this run measured; absent figures are not judged.
pub fn targets(r: &Report) -> Vec<Target> {
    let mut out = Vec::new();
    let n = r.routers;
    if let Some(up) = r.restart_up_s {
        let name = format!("{n} sessions up within 20 s of server start");
        out.push(target(&name, format!("{up:.1} s"), "<= 20 s", up <= 20.0));
    }
    let base = r
        .fleet
        .iter()
        .find(|s| s.routers == 0)
        .and_then(|s| s.rss_kib);
    if let Some(base) = base {
        for step in r
            .fleet
            .iter()
            .filter(|s| s.routers >= 1000 || s.routers == n)
        {
            let (Some(rss), true) = (step.rss_kib, step.routers > 0) else {
                continue;
            };
            let per = rss.saturating_sub(base) as f64 / step.routers as f64;
            let name = format!("RSS growth per session at {} routers", step.routers);
            out.push(target(
                &name,
                format!("{per:.1} KiB"),
                "<= 32 KiB",
                per <= 32.0,
            ));
        }
    }
    if let (Some(base), Some(rss), true) = (base, r.rss_after_restart_kib, n > 0) {
        let per = rss.saturating_sub(base) as f64 / n as f64;
        let name = format!("RSS per session after a restart with {n} routers");
        out.push(target(
            &name,
            format!("{per:.1} KiB"),
            "<= 32 KiB",
            per <= 32.0,
        ));
    }
    if let (Some(raw), Some(cp)) = (r.baseline_rate, phase(r, "exec-closed")) {
        let ratio = cp.rate / raw.max(f64::MIN_POSITIVE);
        let measured = format!("{:.0}/s vs raw {raw:.0}/s = {:.0}%", cp.rate, ratio * 100.0);
        let name = "execute-command throughput vs raw pipelined client";
        out.push(target(name, measured, ">= 50%", ratio >= 0.5));
    }
    if let Some(open) = phase(r, "exec-open-half") {
        let p99 = open.latency.p99_ms;
        let rate = match open.mode {
            Mode::Open { rate } => rate,
            Mode::Closed { .. } => 0.0,
        };
        let clean = open.errors == 0;
        let measured = format!("p99 {p99:.2} ms at {rate:.0}/s, {} errors", open.errors);
        let name = "execute-command p99 at half the raw rate (open loop)";
        out.push(target(name, measured, "< 5 ms", p99 < 5.0 && clean));
    }
    if let (Some(h), Some(p)) = (phase(r, "health"), phase(r, "profile")) {
        let ratio = p.rate / h.rate.max(f64::MIN_POSITIVE);
        let measured = format!("{:.0}/s vs {:.0}/s = {:.0}%", p.rate, h.rate, ratio * 100.0);
        let name = "GET /users/profile/ rate vs GET /health/";
        out.push(target(name, measured, ">= 70%", ratio >= 0.7));
    }
    let probes: Vec<(usize, f64)> = (r.fleet.iter())
        .filter_map(|s| s.probe.as_ref().map(|l| (s.routers, l.p50_ms)))
        .collect();
    if probes.len() >= 2 {
        let (first_n, first) = probes[0];
        let worst = (probes.iter())
            .map(|&(_, p50)| (p50 - first).abs() / first.max(f64::MIN_POSITIVE))
            .fold(0.0, f64::max);
        let (last_n, last) = probes[probes.len() - 1];
        let measured = format!(
            "p50 {first:.2} ms at {first_n}, {last:.2} ms at {last_n}; worst {:.0}%",
            worst * 100.0
        );
        let name = "execute-command p50 flat as the fleet grows";
        out.push(target(name, measured, "within 20%", worst <= 0.2));
    }
    out
}

/// Fails the run when the tool itself could not load the server: too many failed units in
/// a phase that was not deliberately overloaded.
pub fn check_errors(r: &Report, max_ratio: f64) -> Result<(), LoadgenError> {
    for p in r.phases.iter().filter(|p| p.name != "exec-open-half") {
        if p.units == 0 || p.errors as f64 > max_ratio * p.units as f64 {
            return Err(LoadgenError::TooManyErrors {
                phase: p.name.clone(),
                errors: p.errors,
                units: p.units,
                first: p.first_errors.first().cloned().unwrap_or_default(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ci_run_probes_at_100_and_200_and_reads_memory_at_0_and_200() {
        let (memory, probes) = plan(Scenario::All, 200);
        assert_eq!(memory, vec![0, 200]);
        assert_eq!(probes, vec![100, 200]);
    }

    #[test]
    fn the_full_run_follows_the_issue_sizes() {
        let (memory, probes) = plan(Scenario::All, 10_000);
        assert_eq!(memory, vec![0, 1000, 10_000]);
        assert_eq!(probes, vec![100, 1000, 10_000]);
        assert_eq!(plan(Scenario::Throughput, 500), (vec![], vec![]));
    }
}
