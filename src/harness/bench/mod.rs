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

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;
use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

pub use args::{BenchArgs, RuntimeKind, Target};
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

/// Runs the benchmark described by `args` on `--threads` OS threads (see [`RuntimeKind`]).
/// Prints a progress line to stderr once a second when stderr is a terminal.
pub fn run(args: &BenchArgs) -> Result<Report, BenchError> {
    let control = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(BenchError::Runtime)?;
    let target = Arc::new(Target::from_args(args));
    // Fail fast on a dead target instead of measuring a storm of connect errors.
    control.block_on(preflight(&target))?;

    let start = Instant::now();
    let measure_from = start + Duration::from_secs(args.warmup);
    let window = Window { measure_from, end: measure_from + Duration::from_secs(args.duration) };
    let progress = Arc::new(Progress::default());
    let ticker = std::io::stderr().is_terminal().then(|| Ticker::start(progress.clone(), start, window));
    let plan = Plan { target, window, start, rps: args.rps, concurrency: args.concurrency, progress };

    let mut stats = Stats::new();
    match args.runtime {
        RuntimeKind::PerThread => {
            let threads: Vec<_> = (0..args.threads)
                .map(|t| {
                    let plan = plan.clone();
                    let threads = args.threads;
                    std::thread::Builder::new().name("fe-php-bench".into()).spawn(move || {
                        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                        let local = tokio::task::LocalSet::new();
                        let shared = Rc::new(RefCell::new(Stats::new()));
                        local.block_on(&rt, async {
                            let handles: Vec<_> = (t..plan.concurrency)
                                .step_by(threads as usize)
                                .map(|i| {
                                    let (plan, mut sink) = (plan.clone(), shared.clone());
                                    tokio::task::spawn_local(async move { plan.slot(i, &mut sink).await })
                                })
                                .collect();
                            for h in handles {
                                let _ = h.await;
                            }
                        });
                        Ok::<_, std::io::Error>(shared.take())
                    })
                })
                .collect::<Result<_, _>>()
                .map_err(BenchError::Runtime)?;
            for t in threads {
                if let Ok(result) = t.join() {
                    stats.merge(&result.map_err(BenchError::Runtime)?);
                }
            }
        }
        RuntimeKind::MultiThread => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(args.threads as usize)
                .enable_all()
                .build()
                .map_err(BenchError::Runtime)?;
            let handles: Vec<_> = (0..plan.concurrency)
                .map(|i| {
                    let plan = plan.clone();
                    rt.spawn(async move {
                        let mut own = Stats::new();
                        plan.slot(i, &mut own).await;
                        own
                    })
                })
                .collect();
            rt.block_on(async {
                for h in handles {
                    if let Ok(s) = h.await {
                        stats.merge(&s);
                    }
                }
            });
        }
    }
    drop(ticker);
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

async fn preflight(target: &Target) -> Result<(), BenchError> {
    match tokio::time::timeout(target.timeout, tokio::net::TcpStream::connect(target.addr)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(BenchError::Unreachable(target.addr.to_string(), e)),
        Err(_) => Err(BenchError::Unreachable(target.addr.to_string(), std::io::ErrorKind::TimedOut.into())),
    }
}

/// What every slot needs to run: shared by all threads.
#[derive(Clone)]
struct Plan {
    target: Arc<Target>,
    window: Window,
    start: Instant,
    rps: Option<u64>,
    concurrency: u64,
    progress: Arc<Progress>,
}

impl Plan {
    /// Runs slot `i` (closed or open loop) into `sink`.
    async fn slot<S: slot::Sink>(self, i: u64, sink: &mut S) {
        let Plan { target, window, start, rps, concurrency, progress } = self;
        match rps {
            Some(rps) => slot::run(target, window, open::Open::new(start, window.end, rps, concurrency, i), progress, sink).await,
            None => slot::run(target, window, closed::Closed::new(window.end), progress, sink).await,
        }
    }
}

/// The live progress line: a thread rewriting one line on stderr every second until dropped.
struct Ticker {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ticker {
    fn start(progress: Arc<Progress>, start: Instant, window: Window) -> Ticker {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let total = (window.end - start).as_secs();
            let mut last = 0;
            let mut second = 0u64;
            loop {
                second += 1;
                let due = start + Duration::from_secs(second);
                let wait = due.saturating_duration_since(Instant::now());
                if !matches!(stopped.recv_timeout(wait), Err(std::sync::mpsc::RecvTimeoutError::Timeout)) {
                    break;
                }
                let responses = progress.responses.load(Relaxed);
                let errors = progress.errors.load(Relaxed);
                let phase = if due <= window.measure_from { " warm-up" } else { "" };
                eprint!("\r\x1b[2K[{second:>3}s/{total}s{phase}] {} req/s, {responses} responses, {errors} errors", responses - last);
                let _ = std::io::stderr().flush();
                last = responses;
            }
            eprint!("\r\x1b[2K");
            let _ = std::io::stderr().flush();
        });
        Ticker { stop: Some(stop), thread: Some(thread) }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
