//! Where the machine's CPU went during a phase: the load generator itself, the server,
//! the simulators, and everything else on the machine, read from `/proc` (Linux; elsewhere
//! nothing is reported).
//!
//! On a small machine all of them share the same cores, so a throughput figure alone
//! cannot tell a slow server from a busy machine. CPU time per request by process can:
//! it barely moves with the machine's load, and it says which part to make cheaper.

use serde::Serialize;

/// CPU used during one phase, in cores (1.0 = one core busy for the whole phase), and per
/// unit of work in microseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CpuShare {
    /// Busy cores of the whole machine, every process included.
    pub machine_cores: f64,
    pub loadgen_cores: f64,
    pub server_cores: Option<f64>,
    pub sims_cores: f64,
    /// Busy cores not accounted to the run's own processes (other work on the machine).
    pub other_cores: f64,
    pub loadgen_us_per_unit: f64,
    pub server_us_per_unit: Option<f64>,
    pub sims_us_per_unit: f64,
}

/// Readings at the start of a phase.
pub struct CpuMeter {
    at: std::time::Instant,
    loadgen: u64,
    server: Option<u64>,
    sims: u64,
    machine: Option<u64>,
    server_pid: Option<u32>,
    sim_pids: Vec<u32>,
}

/// Clock ticks per second of `/proc` CPU times.
fn ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// utime + stime of process `pid` (all its threads), in ticks.
fn process_ticks(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    parse_process_ticks(&std::fs::read_to_string(path).ok()?)
}

fn parse_process_ticks(stat: &str) -> Option<u64> {
    // The command name may hold spaces; the fields after it are fixed.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3 overall; utime and stime are fields 14 and 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Busy ticks of all CPUs together, from the first line of `/proc/stat`.
fn machine_ticks() -> Option<u64> {
    parse_machine_ticks(&std::fs::read_to_string("/proc/stat").ok()?)
}

fn parse_machine_ticks(stat: &str) -> Option<u64> {
    let line = stat.lines().next()?;
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let v: Vec<u64> = fields.filter_map(|f| f.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user already).
    let busy = v.first()? + v.get(1)? + v.get(2)? + v.get(5)? + v.get(6)? + v.get(7)?;
    Some(busy)
}

impl CpuMeter {
    pub fn start(server_pid: Option<u32>, sim_pids: Vec<u32>) -> CpuMeter {
        CpuMeter {
            at: std::time::Instant::now(),
            loadgen: process_ticks(None).unwrap_or(0),
            server: server_pid.and_then(|p| process_ticks(Some(p))),
            sims: sim_pids
                .iter()
                .filter_map(|&p| process_ticks(Some(p)))
                .sum(),
            machine: machine_ticks(),
            server_pid,
            sim_pids,
        }
    }

    /// The share of each part since [`CpuMeter::start`], over `units` of work done.
    pub fn finish(self, units: u64) -> Option<CpuShare> {
        let machine_end = machine_ticks()?;
        let secs = self.at.elapsed().as_secs_f64().max(0.001);
        let tps = ticks_per_second();
        let cores = |ticks: u64| ticks as f64 / tps / secs;
        let per_unit = |c: f64| c * secs * 1e6 / units.max(1) as f64;
        let loadgen = cores(process_ticks(None)?.saturating_sub(self.loadgen));
        let server = match (self.server, self.server_pid) {
            (Some(before), Some(pid)) => {
                Some(cores(process_ticks(Some(pid))?.saturating_sub(before)))
            }
            _ => None,
        };
        let sims_end: u64 = (self.sim_pids.iter())
            .filter_map(|&p| process_ticks(Some(p)))
            .sum();
        let sims = cores(sims_end.saturating_sub(self.sims));
        let machine = cores(machine_end.saturating_sub(self.machine?));
        let ours = loadgen + server.unwrap_or(0.0) + sims;
        Some(CpuShare {
            machine_cores: machine,
            loadgen_cores: loadgen,
            server_cores: server,
            sims_cores: sims,
            other_cores: (machine - ours).max(0.0),
            loadgen_us_per_unit: per_unit(loadgen),
            server_us_per_unit: server.map(per_unit),
            sims_us_per_unit: per_unit(sims),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_times_are_read_after_a_name_with_spaces_and_parens() {
        let stat = "4242 (tokio (rt) w) S 1 4242 4242 0 -1 4194560 500 0 0 0 \
                    1234 567 0 0 20 0 4 0 100 0 0";
        assert_eq!(parse_process_ticks(stat), Some(1234 + 567));
    }

    #[test]
    fn machine_busy_time_leaves_out_idle_and_iowait() {
        let stat = "cpu  100 20 30 5000 70 8 9 4 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
        assert_eq!(parse_machine_ticks(stat), Some(100 + 20 + 30 + 8 + 9 + 4));
        assert_eq!(parse_machine_ticks("intr 1 2 3\n"), None);
    }

    #[test]
    fn spinning_in_this_process_shows_up_as_loadgen_cpu() {
        let meter = CpuMeter::start(None, Vec::new());
        let until = std::time::Instant::now() + std::time::Duration::from_millis(300);
        let mut x = 0u64;
        while std::time::Instant::now() < until {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let share = meter.finish(1000).expect("linux /proc");
        assert!(share.loadgen_cores > 0.3, "{share:?}");
        assert!(
            share.machine_cores >= share.loadgen_cores * 0.8,
            "{share:?}"
        );
        assert!(share.server_cores.is_none());
    }
}
