//! Measurements: the per-connection [`Stats`] (HDR latency histogram, status counts, errors),
//! merged into one [`Report`] printed as text or JSON.

use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{json, Value};

/// Highest latency the histogram tracks, in microseconds (an hour); larger values saturate.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Why a request failed (no HTTP status was received).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// TCP connect or HTTP handshake failed.
    Connect,
    /// No complete response within `--timeout`.
    Timeout,
    /// The connection was reset or closed mid-request.
    Reset,
    /// Anything else (protocol errors, …).
    Other,
}

impl ErrorKind {
    /// All kinds, in report order.
    pub const ALL: [ErrorKind; 4] = [ErrorKind::Connect, ErrorKind::Timeout, ErrorKind::Reset, ErrorKind::Other];

    /// The kind's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Reset => "reset",
            ErrorKind::Other => "other",
        }
    }
}

/// What one connection measured. Recording never allocates.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Latency of completed requests, in microseconds.
    pub latency: Histogram<u64>,
    /// Responses by status code (index = status, 0..600).
    pub statuses: Box<[u64; 600]>,
    /// Failed requests by [`ErrorKind`] (index = position in [`ErrorKind::ALL`]).
    pub errors: [u64; 4],
    /// Response body bytes received.
    pub body_bytes: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

impl Stats {
    /// Empty statistics.
    pub fn new() -> Stats {
        Stats {
            latency: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds"),
            statuses: Box::new([0; 600]),
            errors: [0; 4],
            body_bytes: 0,
        }
    }

    /// Records a response with `status`, `latency` and `body_bytes` of body.
    pub fn record(&mut self, status: u16, latency: Duration, body_bytes: u64) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).max(1);
        self.latency.saturating_record(us);
        if let Some(slot) = self.statuses.get_mut(status as usize) {
            *slot += 1;
        }
        self.body_bytes += body_bytes;
    }

    /// Records a failed request.
    pub fn record_error(&mut self, kind: ErrorKind) {
        let i = ErrorKind::ALL.iter().position(|k| *k == kind).unwrap_or(3);
        self.errors[i] += 1;
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Stats) {
        self.latency.add(&other.latency).expect("histograms share bounds");
        for (a, b) in self.statuses.iter_mut().zip(other.statuses.iter()) {
            *a += b;
        }
        for (a, b) in self.errors.iter_mut().zip(other.errors) {
            *a += b;
        }
        self.body_bytes += other.body_bytes;
    }

    /// Responses received (any status).
    pub fn responses(&self) -> u64 {
        self.latency.len()
    }
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest.
    pub max: u64,
    /// Arithmetic mean.
    pub mean: f64,
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct Report {
    /// The URL.
    pub url: String,
    /// `"closed"` or `"open"`.
    pub mode: &'static str,
    /// Connections.
    pub concurrency: u64,
    /// Load generator threads.
    pub threads: u64,
    /// Open loop target rate.
    pub target_rps: Option<u64>,
    /// Measured time.
    pub duration: Duration,
    /// Merged statistics.
    pub stats: Stats,
}

impl Report {
    /// Responses per second over the measured time.
    pub fn rps(&self) -> f64 {
        self.stats.responses() as f64 / self.duration.as_secs_f64().max(1e-9)
    }

    /// Latency percentiles (zeros when nothing completed).
    pub fn percentiles(&self) -> Percentiles {
        let h = &self.stats.latency;
        if h.is_empty() {
            return Percentiles { p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0.0 };
        }
        Percentiles {
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            mean: h.mean(),
        }
    }

    /// Total failed requests.
    pub fn error_count(&self) -> u64 {
        self.stats.errors.iter().sum()
    }

    /// `(status, count)` for every status seen, ascending.
    pub fn status_counts(&self) -> Vec<(u16, u64)> {
        self.stats.statuses.iter().enumerate().filter(|(_, n)| **n > 0).map(|(s, n)| (s as u16, *n)).collect()
    }

    /// The machine-readable result (what `--json` prints).
    pub fn to_json(&self) -> Value {
        let p = self.percentiles();
        let statuses: serde_json::Map<String, Value> =
            self.status_counts().into_iter().map(|(s, n)| (s.to_string(), json!(n))).collect();
        let errors: serde_json::Map<String, Value> =
            ErrorKind::ALL.iter().zip(self.stats.errors).map(|(k, n)| (k.name().to_string(), json!(n))).collect();
        json!({
            "url": self.url,
            "mode": self.mode,
            "concurrency": self.concurrency,
            "threads": self.threads,
            "target_rps": self.target_rps,
            "duration_s": self.duration.as_secs_f64(),
            "requests": self.stats.responses(),
            "rps": self.rps(),
            "body_bytes": self.stats.body_bytes,
            "latency_us": {
                "p50": p.p50, "p90": p.p90, "p99": p.p99, "p99_9": p.p999, "max": p.max, "mean": p.mean,
            },
            "status": statuses,
            "errors": errors,
            "error_total": self.error_count(),
        })
    }
}

/// Formats microseconds as `123us`, `4.56ms` or `1.23s`.
pub fn fmt_us(us: u64) -> String {
    if us < 1_000 {
        format!("{us}us")
    } else if us < 1_000_000 {
        format!("{:.2}ms", us as f64 / 1e3)
    } else {
        format!("{:.2}s", us as f64 / 1e6)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.percentiles();
        match self.target_rps {
            Some(r) => writeln!(f, "{} — open loop at {r} req/s over {} connections, {} threads", self.url, self.concurrency, self.threads)?,
            None => writeln!(f, "{} — closed loop, {} connections, {} threads", self.url, self.concurrency, self.threads)?,
        }
        writeln!(f, "  {} responses in {:.2}s: {:.1} req/s, {:.2} MB/s body", self.stats.responses(), self.duration.as_secs_f64(), self.rps(),
            self.stats.body_bytes as f64 / self.duration.as_secs_f64().max(1e-9) / 1e6)?;
        writeln!(f, "  latency  p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (mean {})",
            fmt_us(p.p50), fmt_us(p.p90), fmt_us(p.p99), fmt_us(p.p999), fmt_us(p.max), fmt_us(p.mean as u64))?;
        let statuses: Vec<String> = self.status_counts().iter().map(|(s, n)| format!("{s}: {n}")).collect();
        writeln!(f, "  status   {}", if statuses.is_empty() { "none".into() } else { statuses.join(", ") })?;
        let errors: Vec<String> = ErrorKind::ALL.iter().zip(self.stats.errors).map(|(k, n)| format!("{}: {n}", k.name())).collect();
        write!(f, "  errors   {} ({})", self.error_count(), errors.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_and_percentiles() {
        let mut a = Stats::new();
        let mut b = Stats::new();
        for i in 1..=100u64 {
            a.record(200, Duration::from_micros(i * 10), 5);
        }
        b.record(404, Duration::from_millis(50), 0);
        b.record_error(ErrorKind::Reset);
        a.merge(&b);
        let r = Report { url: "u".into(), mode: "closed", concurrency: 1, threads: 1, target_rps: None, duration: Duration::from_secs(1), stats: a };
        assert_eq!(r.stats.responses(), 101);
        assert_eq!(r.status_counts(), vec![(200, 100), (404, 1)]);
        assert_eq!(r.error_count(), 1);
        let p = r.percentiles();
        assert!(p.p50 <= p.p90 && p.p90 <= p.p99 && p.p99 <= p.p999 && p.p999 <= p.max);
        assert!((49_000..=51_000).contains(&p.max));
        let j = r.to_json();
        assert_eq!(j["status"]["200"], 100);
        assert_eq!(j["errors"]["reset"], 1);
        assert_eq!(j["body_bytes"], 500);
    }
}
