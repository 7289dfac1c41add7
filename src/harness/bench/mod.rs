//! `fe-php bench`: an HTTP/1.1 keep-alive load generator (tokio + hyper's client connection,
//! one connection per concurrency slot).
//!
//! Closed loop by default (`--concurrency N` connections sending back to back); open loop with
//! `--rps R` (fixed schedule, latency from the scheduled send time, as wrk2 does). Latency
//! goes into an HDR histogram; the [`Report`] has p50/p90/p99/p99.9/max, requests per second,
//! status counts and errors by kind, printed as text or (`--json`) one JSON object.
//!
//! Files: `args` (flags and validation), `slot` (one connection's request loop), `closed` and
//! `open` (the two paces), `stats` (histogram, report).

pub mod args;
pub mod closed;
pub mod open;
pub mod slot;
pub mod stats;

use std::fmt;
use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

pub use args::{BenchArgs, Target};
pub use stats::{ErrorKind, Report, Stats};

use slot::{Progress, Window};

/// Why a run could not take place.
#[derive(Debug)]
pub enum BenchError {
    /// The tokio runtime could not start.
    Runtime(std::io::Error),
    /// The target refused or timed out the first connection (the run would only measure errors).
    Unreachable(String, std::io::Error),
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BenchError::Runtime(e) => write!(f, "cannot start the tokio runtime: {e}"),
            BenchError::Unreachable(addr, e) => write!(f, "--url: cannot connect to {addr}: {e}"),
        }
    }
}

impl std::error::Error for BenchError {}

/// Runs the benchmark described by `args` on a multi-thread runtime of `--threads` workers.
/// Prints a progress line to stderr once a second when stderr is a terminal.
pub fn run(args: &BenchArgs) -> Result<Report, BenchError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads as usize)
        .enable_all()
        .build()
        .map_err(BenchError::Runtime)?;
    runtime.block_on(run_async(args, std::io::stderr().is_terminal()))
}

/// The benchmark on the current runtime; `progress_line` enables the live line on stderr.
pub async fn run_async(args: &BenchArgs, progress_line: bool) -> Result<Report, BenchError> {
    let target = Arc::new(Target::from_args(args));
    // Fail fast on a dead target instead of measuring a storm of connect errors.
    match tokio::time::timeout(target.timeout, tokio::net::TcpStream::connect(target.addr)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(BenchError::Unreachable(target.addr.to_string(), e)),
        Err(_) => return Err(BenchError::Unreachable(target.addr.to_string(), std::io::ErrorKind::TimedOut.into())),
    }

    let start = Instant::now();
    let measure_from = start + Duration::from_secs(args.warmup);
    let window = Window { measure_from, end: measure_from + Duration::from_secs(args.duration) };
    let progress = Arc::new(Progress::default());
    let mut slots = Vec::with_capacity(args.concurrency as usize);
    for i in 0..args.concurrency {
        let (target, progress) = (target.clone(), progress.clone());
        slots.push(match args.rps {
            Some(rps) => tokio::spawn(slot::run(target, window, open::Open::new(start, window.end, rps, args.concurrency, i), progress)),
            None => tokio::spawn(slot::run(target, window, closed::Closed::new(window.end), progress)),
        });
    }
    let ticker = progress_line.then(|| tokio::spawn(progress_loop(progress.clone(), start, window)));

    let mut stats = Stats::new();
    for slot in slots {
        if let Ok(s) = slot.await {
            stats.merge(&s);
        }
    }
    if let Some(t) = ticker {
        t.abort();
        eprint!("\r\x1b[2K");
    }
    Ok(Report {
        url: args.url.text.clone(),
        mode: if args.rps.is_some() { "open" } else { "closed" },
        concurrency: args.concurrency,
        threads: args.threads,
        target_rps: args.rps,
        duration: window.end - window.measure_from,
        stats,
    })
}

/// Rewrites one status line on stderr every second.
async fn progress_loop(progress: Arc<Progress>, start: Instant, window: Window) {
    let total = window.end - start;
    let mut tick = tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    let mut last = 0;
    loop {
        let now = tick.tick().await;
        let responses = progress.responses.load(Relaxed);
        let errors = progress.errors.load(Relaxed);
        let phase = if now < window.measure_from { " warm-up" } else { "" };
        eprint!(
            "\r\x1b[2K[{:>3}s/{}s{phase}] {} req/s, {responses} responses, {errors} errors",
            (now - start).as_secs(),
            total.as_secs(),
            responses - last
        );
        let _ = std::io::stderr().flush();
        last = responses;
    }
}
