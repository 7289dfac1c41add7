//! Request metrics shared by every surface: requests by status class, a latency histogram and
//! backend errors by kind, as lock-free counters rendered in Prometheus text format.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

const ERROR_KINDS: [&str; 9] =
    ["forbidden", "not_found", "bad_request", "unreachable", "protocol", "timeout", "overloaded", "client_gone", "internal"];

/// Counters for one engine. All updates are relaxed atomics: cheap on the request path.
#[derive(Debug, Default)]
pub struct Metrics {
    by_class: [AtomicU64; 5],
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
    errors: [AtomicU64; ERROR_KINDS.len()],
}

impl Metrics {
    /// Records one finished request (its status and time to response head).
    pub fn record(&self, status: u16, elapsed: Duration) {
        let class = (status / 100).clamp(1, 5) as usize - 1;
        self.by_class[class].fetch_add(1, Relaxed);
        let secs = elapsed.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|&b| secs <= b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.latency_count.fetch_add(1, Relaxed);
        self.latency_sum_us.fetch_add(elapsed.as_micros() as u64, Relaxed);
    }

    /// Records a backend/engine error by its [`EngineError::kind`](crate::EngineError::kind).
    pub fn record_error(&self, kind: &str) {
        if let Some(i) = ERROR_KINDS.iter().position(|k| *k == kind) {
            self.errors[i].fetch_add(1, Relaxed);
        }
    }

    /// Requests answered with status class `class` (1..=5).
    pub fn requests(&self, class: usize) -> u64 {
        self.by_class[class - 1].load(Relaxed)
    }

    /// Errors of `kind` so far.
    pub fn errors(&self, kind: &str) -> u64 {
        ERROR_KINDS.iter().position(|k| *k == kind).map(|i| self.errors[i].load(Relaxed)).unwrap_or(0)
    }

    /// Prometheus text exposition (version 0.0.4) of these counters.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(2048);
        out.push_str("# HELP fephp_requests_total Requests served, by status class.\n# TYPE fephp_requests_total counter\n");
        for (i, c) in self.by_class.iter().enumerate() {
            let _ = writeln!(out, "fephp_requests_total{{class=\"{}xx\"}} {}", i + 1, c.load(Relaxed));
        }
        out.push_str("# HELP fephp_request_duration_seconds Time to response head.\n# TYPE fephp_request_duration_seconds histogram\n");
        let mut cumulative = 0;
        for (bound, b) in LATENCY_BUCKETS.iter().zip(&self.buckets) {
            cumulative += b.load(Relaxed);
            let _ = writeln!(out, "fephp_request_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = self.latency_count.load(Relaxed);
        let _ = writeln!(out, "fephp_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "fephp_request_duration_seconds_sum {}", self.latency_sum_us.load(Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "fephp_request_duration_seconds_count {count}");
        out.push_str("# HELP fephp_backend_errors_total Errors by kind.\n# TYPE fephp_backend_errors_total counter\n");
        for (kind, c) in ERROR_KINDS.iter().zip(&self.errors) {
            let _ = writeln!(out, "fephp_backend_errors_total{{kind=\"{kind}\"}} {}", c.load(Relaxed));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_classes_histogram_and_errors() {
        let m = Metrics::default();
        m.record(200, Duration::from_micros(300));
        m.record(404, Duration::from_millis(30));
        m.record_error("timeout");
        let text = m.render();
        assert!(text.contains("fephp_requests_total{class=\"2xx\"} 1"), "{text}");
        assert!(text.contains("fephp_requests_total{class=\"4xx\"} 1"));
        assert!(text.contains("fephp_request_duration_seconds_bucket{le=\"0.0005\"} 1"));
        assert!(text.contains("fephp_request_duration_seconds_bucket{le=\"0.05\"} 2"));
        assert!(text.contains("fephp_request_duration_seconds_count 2"));
        assert!(text.contains("fephp_backend_errors_total{kind=\"timeout\"} 1"));
        assert_eq!(m.errors("timeout"), 1);
    }
}
