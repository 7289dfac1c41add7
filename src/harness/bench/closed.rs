//! Closed loop: each connection sends its next request as soon as the previous response is
//! complete. Throughput is whatever the server sustains; latency is measured from the send.

use tokio::time::Instant;

use super::slot::Pace;

/// Pace of a closed-loop slot.
#[derive(Debug, Clone, Copy)]
pub struct Closed {
    end: Instant,
}

impl Closed {
    /// Sends back to back until `end`.
    pub fn new(end: Instant) -> Closed {
        Closed { end }
    }
}

impl Pace for Closed {
    async fn next(&mut self) -> Option<Instant> {
        let now = Instant::now();
        (now < self.end).then_some(now)
    }
}
