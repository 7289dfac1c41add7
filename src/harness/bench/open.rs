//! Open loop: requests are due at fixed intervals whatever the server does (like wrk2).
//!
//! With `R` requests/s over `N` connections, connection `i` sends request `k` at
//! `start + i/R + k·N/R`. A connection still waiting for a reply sends late, and the latency
//! is measured from the SCHEDULED time, so a stall is charged to every request it delays
//! (coordinated omission corrected) instead of silently lowering the offered load.

use std::time::Duration;

use tokio::time::Instant;

use super::slot::Pace;

/// Pace of an open-loop slot.
#[derive(Debug, Clone, Copy)]
pub struct Open {
    next: Instant,
    interval: Duration,
    end: Instant,
}

impl Open {
    /// Schedule of connection `index` of `connections` sharing `rps` requests/s from `start`.
    pub fn new(start: Instant, end: Instant, rps: u64, connections: u64, index: u64) -> Open {
        let rps = rps.max(1) as f64;
        let offset = Duration::from_secs_f64(index as f64 / rps);
        let interval = Duration::from_secs_f64(connections.max(1) as f64 / rps);
        Open { next: start + offset, interval, end }
    }

    /// The scheduled time of the next request (advancing the schedule), or `None` past the end.
    pub fn advance(&mut self) -> Option<Instant> {
        let due = self.next;
        if due >= self.end {
            return None;
        }
        self.next += self.interval;
        Some(due)
    }
}

impl Pace for Open {
    async fn next(&mut self) -> Option<Instant> {
        let due = self.advance()?;
        if due > Instant::now() {
            tokio::time::sleep_until(due).await;
        }
        Some(due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_is_fixed_and_interleaved() {
        let start = Instant::now();
        let end = start + Duration::from_secs(1);
        // 100 req/s over 4 connections: each sends every 40 ms, offset by 10 ms per index.
        let mut p = Open::new(start, end, 100, 4, 1);
        assert_eq!(p.advance(), Some(start + Duration::from_millis(10)));
        assert_eq!(p.advance(), Some(start + Duration::from_millis(50)));
        let mut n = 2;
        while p.advance().is_some() {
            n += 1;
        }
        assert_eq!(n, 25);
        // All 4 connections together: 100 requests in the second.
        let total: usize = (0..4).map(|i| {
            let mut p = Open::new(start, end, 100, 4, i);
            std::iter::from_fn(|| p.advance()).count()
        }).sum();
        assert_eq!(total, 100);
    }
}
