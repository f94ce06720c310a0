//! Drives a workload closed-loop (a fixed number of requests always in flight) or open-loop
//! (a fixed arrival rate, each latency measured from the time the request was *meant* to
//! go out, so a stalled server shows up as latency instead of a politely slower client),
//! recording latencies in HDR histograms: overall, per request kind and per second.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tokio::time::Instant;

/// What one unit of work did.
pub struct Sample {
    pub kind: &'static str,
    /// HTTP requests (or RouterOS commands) it took; an add/set/remove cycle is three.
    pub requests: u32,
    pub error: Option<String>,
}

pub type WorkFuture = Pin<Box<dyn Future<Output = Sample> + Send>>;
/// Makes the `n`th unit of work.
pub type Work = Arc<dyn Fn(u64) -> WorkFuture + Send + Sync>;

#[derive(Clone, Copy, Debug, Serialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum Mode {
    Closed { concurrency: usize },
    Open { rate: f64 },
}

/// Percentiles of one histogram, in milliseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Latency {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

/// One second of a phase.
#[derive(Clone, Debug, Serialize)]
pub struct Window {
    pub second: u64,
    pub latency: Latency,
}

#[derive(Clone, Debug, Serialize)]
pub struct PhaseResult {
    pub name: String,
    #[serde(flatten)]
    pub mode: Mode,
    pub seconds: f64,
    pub units: u64,
    pub requests: u64,
    pub errors: u64,
    /// Units of work completed without error per second.
    pub rate: f64,
    pub latency: Latency,
    pub by_kind: BTreeMap<String, Latency>,
    pub timeline: Vec<Window>,
    pub first_errors: Vec<String>,
    /// Where the machine's CPU went during the phase (filled in by the scenario).
    pub cpu: Option<super::cpu::CpuShare>,
}

fn histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant figures is a valid precision")
}

pub fn summarize(h: &Histogram<u64>) -> Latency {
    let ms = |us: u64| us as f64 / 1000.0;
    Latency {
        count: h.len(),
        mean_ms: h.mean() / 1000.0,
        p50_ms: ms(h.value_at_quantile(0.50)),
        p90_ms: ms(h.value_at_quantile(0.90)),
        p99_ms: ms(h.value_at_quantile(0.99)),
        p999_ms: ms(h.value_at_quantile(0.999)),
        max_ms: ms(h.max()),
    }
}

#[derive(Default)]
struct Tallies {
    overall: Option<Histogram<u64>>,
    kinds: BTreeMap<&'static str, Histogram<u64>>,
    windows: Vec<Histogram<u64>>,
    requests: u64,
    errors: u64,
    first_errors: Vec<String>,
}

struct Recorder {
    start: Instant,
    tallies: Mutex<Tallies>,
    done: AtomicU64,
}

impl Recorder {
    fn record(&self, sent: Instant, sample: Sample) {
        let us = sent.elapsed().as_micros().max(1) as u64;
        let second = sent.saturating_duration_since(self.start).as_secs() as usize;
        self.done.fetch_add(1, Ordering::Relaxed);
        let mut t = self.tallies.lock().unwrap_or_else(|e| e.into_inner());
        t.requests += u64::from(sample.requests);
        if let Some(e) = sample.error {
            t.errors += 1;
            if t.first_errors.len() < 5 {
                t.first_errors.push(format!("{}: {e}", sample.kind));
            }
            return;
        }
        let _ = t.overall.get_or_insert_with(histogram).record(us);
        let _ = t
            .kinds
            .entry(sample.kind)
            .or_insert_with(histogram)
            .record(us);
        while t.windows.len() <= second {
            t.windows.push(histogram());
        }
        let _ = t.windows[second].record(us);
    }
}

fn progress(name: &str, duration: Duration, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(duration.as_millis() as u64);
    let style = ProgressStyle::with_template("{prefix:>24} [{bar:30}] {elapsed:>4} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(name.to_owned());
    bar
}

/// Runs `work` for `duration` in `mode` and summarizes what happened.
pub async fn run(
    name: &str,
    mode: Mode,
    duration: Duration,
    work: Work,
    show_progress: bool,
) -> PhaseResult {
    let rec = Arc::new(Recorder {
        start: Instant::now(),
        tallies: Mutex::new(Tallies::default()),
        done: AtomicU64::new(0),
    });
    let deadline = rec.start + duration;
    let bar = progress(name, duration, show_progress);
    let ticker = {
        let (bar, rec) = (bar.clone(), rec.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let secs = rec.start.elapsed().as_secs_f64().max(0.001);
                bar.set_position(rec.start.elapsed().as_millis() as u64);
                let done = rec.done.load(Ordering::Relaxed) as f64;
                bar.set_message(format!("{:.0}/s", done / secs));
            }
        })
    };
    match mode {
        Mode::Closed { concurrency } => closed(&rec, deadline, concurrency, work).await,
        Mode::Open { rate } => open(&rec, deadline, rate, work).await,
    }
    let seconds = rec.start.elapsed().as_secs_f64();
    ticker.abort();
    bar.finish_and_clear();
    let t = std::mem::take(&mut *rec.tallies.lock().unwrap_or_else(|e| e.into_inner()));
    let overall = t.overall.unwrap_or_else(histogram);
    let ok = overall.len();
    let result = PhaseResult {
        name: name.to_owned(),
        mode,
        seconds,
        units: ok + t.errors,
        requests: t.requests,
        errors: t.errors,
        rate: ok as f64 / duration.as_secs_f64().max(0.001),
        latency: summarize(&overall),
        by_kind: t
            .kinds
            .iter()
            .map(|(k, h)| (k.to_string(), summarize(h)))
            .collect(),
        timeline: (t.windows.iter().enumerate())
            .filter(|(_, h)| !h.is_empty())
            .map(|(i, h)| Window {
                second: i as u64,
                latency: summarize(h),
            })
            .collect(),
        first_errors: t.first_errors,
        cpu: None,
    };
    tracing::info!(
        phase = name,
        rate = result.rate,
        p50_ms = result.latency.p50_ms,
        p99_ms = result.latency.p99_ms,
        errors = result.errors,
        "phase done"
    );
    result
}

async fn closed(rec: &Arc<Recorder>, deadline: Instant, concurrency: usize, work: Work) {
    let seq = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (rec, work, seq) = (rec.clone(), work.clone(), seq.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let sent = Instant::now();
                let sample = work(seq.fetch_add(1, Ordering::Relaxed)).await;
                rec.record(sent, sample);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// Requests in flight beyond which the open loop waits (the wait still counts as latency).
const OPEN_LOOP_MAX_IN_FLIGHT: usize = 8192;

async fn open(rec: &Arc<Recorder>, deadline: Instant, rate: f64, work: Work) {
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let slots = Arc::new(tokio::sync::Semaphore::new(OPEN_LOOP_MAX_IN_FLIGHT));
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0u64.. {
        let intended = rec.start + interval.mul_f64(n as f64);
        if intended >= deadline {
            break;
        }
        tokio::time::sleep_until(intended).await;
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let (rec, work) = (rec.clone(), work.clone());
        tasks.spawn(async move {
            let sample = work(n).await;
            rec.record(intended, sample);
            drop(slot);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sleeper(ms: u64, fail_every: u64) -> Work {
        Arc::new(move |n| {
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Sample {
                    kind: if n % 2 == 0 { "even" } else { "odd" },
                    requests: 1,
                    error: (fail_every > 0 && n % fail_every == 0).then(|| "boom".to_owned()),
                }
            })
        })
    }

    #[tokio::test]
    async fn closed_loop_throughput_is_bounded_by_concurrency_over_latency() {
        let mode = Mode::Closed { concurrency: 4 };
        let r = run("t", mode, Duration::from_millis(500), sleeper(10, 0), false).await;
        // 4 in flight, 10 ms each: at most ~400/s, and well above zero.
        assert!(r.rate > 150.0 && r.rate <= 420.0, "rate {}", r.rate);
        assert!(r.latency.p50_ms >= 10.0, "{:?}", r.latency);
        assert_eq!(r.errors, 0);
        assert_eq!(r.by_kind.len(), 2);
    }

    #[tokio::test]
    async fn open_loop_sends_at_the_rate_and_counts_errors() {
        let mode = Mode::Open { rate: 200.0 };
        let r = run(
            "t",
            mode,
            Duration::from_millis(1000),
            sleeper(1, 10),
            false,
        )
        .await;
        assert!((180..=201).contains(&r.units), "units {}", r.units);
        assert_eq!(r.errors, r.units.div_ceil(10));
        assert_eq!(r.first_errors.len(), 5);
    }

    #[tokio::test]
    async fn open_loop_latency_includes_time_spent_behind_schedule() {
        // Each unit blocks the whole (single-threaded) runtime for 20 ms while 100/s are
        // due: later requests start late, and that delay must appear in their latency.
        let work: Work = Arc::new(|_| {
            Box::pin(async {
                std::thread::sleep(Duration::from_millis(20));
                Sample {
                    kind: "stall",
                    requests: 1,
                    error: None,
                }
            })
        });
        let mode = Mode::Open { rate: 100.0 };
        let r = run("t", mode, Duration::from_millis(500), work, false).await;
        assert!(r.latency.max_ms >= 100.0, "{:?}", r.latency);
    }
}
