//! The child processes a self-contained run starts: `cloudpilot sim` fleets (split so that
//! no process runs out of file descriptors) and one `cloudpilot serve` node. Every child is
//! killed when its handle is dropped, and listens on loopback only.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::LoadgenError;

/// One simulated router as `cloudpilot sim` prints it.
#[derive(Clone, Debug, Deserialize)]
pub struct SimRouter {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: String,
}

/// A running `cloudpilot sim` process and the routers it serves.
pub struct SimChild {
    child: Child,
    pub routers: Vec<SimRouter>,
}

impl SimChild {
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

/// A running `cloudpilot serve` process.
pub struct ServerChild {
    child: Child,
    pub base: String,
}

/// Each simulated router holds a listener and one accepted connection per client, and the
/// raw baseline opens a second one: about three descriptors per router, under 20,000.
pub const DEFAULT_ROUTERS_PER_SIM: usize = 6000;

fn exe() -> Result<PathBuf, LoadgenError> {
    std::env::current_exe().map_err(|source| LoadgenError::Spawn {
        what: "current executable".into(),
        source,
    })
}

/// Starts `total` routers over as many `cloudpilot sim` processes as `per_process` needs.
///
/// Routers listen on consecutive fixed ports below the kernel's ephemeral range (see
/// [`fixed_ports`]), each simulator on its own slice; a simulator that cannot bind its slice
/// (someone else holds a port in it) is started again on another, and after a few tries
/// on ephemeral ports.
pub async fn spawn_sims(
    total: usize,
    per_process: usize,
    log_dir: &Path,
) -> Result<Vec<SimChild>, LoadgenError> {
    let mut sims = Vec::new();
    let mut left = total;
    let mut next = fixed_ports(total);
    while left > 0 {
        let n = left.min(per_process.max(1));
        let mut tries = 0;
        let sim = loop {
            let base = next.unwrap_or(0);
            match spawn_sim(n, sims.len(), log_dir, base).await {
                Ok(sim) => break sim,
                Err(e) if base != 0 => {
                    tries += 1;
                    tracing::info!(error = %e, base, "simulator ports taken; trying others");
                    next = if tries < 3 { fixed_ports(left) } else { None };
                }
                Err(e) => return Err(e),
            }
        };
        sims.push(sim);
        next = next.map(|b| b + n as u16);
        left -= n;
    }
    Ok(sims)
}

/// A random first port for `count` routers on consecutive ports, all between 10,000 and
/// the start of the kernel's ephemeral range, or `None` when they do not fit.
///
/// Binding fixed ports is a plain bind, where port 0 makes the kernel search its ephemeral
/// range for every one of thousands of listeners; and no outgoing connection (the server's
/// sessions, the raw baseline) can ever hold a port a router wants.
fn fixed_ports(count: usize) -> Option<u16> {
    const LOWEST: usize = 10_000;
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<usize>().ok())
        .unwrap_or(32_768);
    let highest_base = ephemeral_start.checked_sub(count)?;
    if highest_base <= LOWEST {
        return None;
    }
    u16::try_from(rand::random_range(LOWEST..highest_base)).ok()
}

async fn spawn_sim(
    n: usize,
    index: usize,
    log_dir: &Path,
    base_port: u16,
) -> Result<SimChild, LoadgenError> {
    let what = format!("cloudpilot sim #{index}");
    let log = log_file(log_dir, &format!("sim-{index}.log"))?;
    let mut child = Command::new(exe()?)
        .args(["sim", "--routers", &n.to_string()])
        .args(["--listen-base", &format!("127.0.0.1:{base_port}")])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| LoadgenError::Spawn {
            what: what.clone(),
            source,
        })?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| LoadgenError::ChildOutput {
            what: what.clone(),
            detail: "no stdout pipe".into(),
        })?;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(120), lines.next_line()).await;
    let line = match line {
        Ok(Ok(Some(line))) => line,
        Ok(Ok(None)) => return Err(child_output(&what, "exited before printing its routers")),
        Ok(Err(e)) => return Err(child_output(&what, &e.to_string())),
        Err(_) => return Err(child_output(&what, "printed nothing within 120 s")),
    };
    let routers: Vec<SimRouter> =
        serde_json::from_str(&line).map_err(|e| child_output(&what, &e.to_string()))?;
    if routers.len() != n {
        return Err(child_output(
            &what,
            &format!("{} routers, wanted {n}", routers.len()),
        ));
    }
    tracing::info!(
        sim.index = index,
        sim.routers = n,
        sim.base_port = base_port,
        sim.pid = child.id(),
        "simulator up"
    );
    Ok(SimChild { child, routers })
}

fn child_output(what: &str, detail: &str) -> LoadgenError {
    LoadgenError::ChildOutput {
        what: what.to_owned(),
        detail: detail.to_owned(),
    }
}

fn log_file(dir: &Path, name: &str) -> Result<std::fs::File, LoadgenError> {
    let path = dir.join(name);
    std::fs::File::create(&path).map_err(|source| LoadgenError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// A loopback port nobody listens on right now (the kernel's pick for port 0).
pub fn free_port() -> Result<u16, LoadgenError> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(|source| LoadgenError::Spawn {
            what: "probe for a free port".into(),
            source,
        })?;
    let port = listener.local_addr().map(|a| a.port());
    port.map_err(|source| LoadgenError::Spawn {
        what: "probe for a free port".into(),
        source,
    })
}

impl ServerChild {
    /// Starts `cloudpilot serve` on `127.0.0.1:port` with its store in `data_dir`.
    ///
    /// Password hashing is lowered to 1,000 PBKDF2 iterations so that the login share of
    /// the mix measures the service rather than one deliberately slow hash.
    pub async fn spawn(port: u16, data_dir: &Path, log_dir: &Path) -> Result<Self, LoadgenError> {
        let log = log_file(log_dir, &format!("serve-{port}.log"))?;
        let child = Command::new(exe()?)
            .arg("serve")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data_dir)
            .env("CLOUDPILOT__AUTH__PBKDF2_ITERATIONS", "1000")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| LoadgenError::Spawn {
                what: "cloudpilot serve".into(),
                source,
            })?;
        tracing::info!(
            server.pid = child.id(),
            server.port = port,
            "server started"
        );
        Ok(ServerChild {
            child,
            base: format!("http://127.0.0.1:{port}"),
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Resident memory of the server process, from `/proc/<pid>/status`.
    pub fn rss_kib(&self) -> Option<u64> {
        self.pid().and_then(rss_kib)
    }

    /// Stops the process and waits for it, so its port and store are free again.
    pub async fn stop(mut self) {
        if let Err(e) = self.child.kill().await {
            tracing::warn!(error = %e, "stopping the server child");
        }
    }
}

/// `VmRSS` of process `pid` in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_rss(&status)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Raises this process's soft open-file limit to the hard limit; children inherit it.
pub fn raise_nofile_limit() -> Option<libc::rlim_t> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        lim.rlim_cur = lim.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
            return None;
        }
    }
    Some(lim.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_ports_stay_between_10000_and_the_ephemeral_range() {
        for count in [1, 200, 10_000] {
            let base = fixed_ports(count).expect("fits below the default ephemeral range");
            assert!(base >= 10_000, "{base}");
            assert!(usize::from(base) + count <= 32_768, "{base} + {count}");
        }
        assert_eq!(fixed_ports(60_000), None);
    }

    #[test]
    fn vm_rss_is_read_from_the_proc_status_format() {
        let status = "Name:\tcloudpilot\nVmPeak:\t  9000 kB\nVmRSS:\t   12345 kB\nThreads: 3\n";
        assert_eq!(parse_vm_rss(status), Some(12345));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
    }

    #[test]
    fn our_own_rss_is_readable_and_nonzero() {
        let rss = rss_kib(std::process::id()).expect("own /proc status");
        assert!(rss > 0);
    }

    #[test]
    fn the_soft_file_limit_is_raised_to_the_hard_limit() {
        let raised = raise_nofile_limit().expect("setrlimit");
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: as above.
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
        assert_eq!(lim.rlim_cur, raised);
        assert_eq!(lim.rlim_cur, lim.rlim_max);
    }
}
