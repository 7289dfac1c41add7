//! [`Conn`]: a checked-out connection. Its `Drop` decides whether the socket goes back to the
//! idle list (only after a clean END_REQUEST) or is closed.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use tokio::sync::OwnedSemaphorePermit;

use super::{Shared, Stream};

/// A kept-alive connection waiting in the pool.
pub(super) struct Idle {
    pub(super) stream: Stream,
    served: u64,
}

/// A connection serving one request; holds the pool permit.
pub(super) struct Conn {
    shared: Arc<Shared>,
    stream: Option<Stream>,
    permit: Option<OwnedSemaphorePermit>,
    served: u64,
    /// Came from the idle list (so a failure before any response byte may be retried).
    pub(super) reused: bool,
    /// Set only after a clean END_REQUEST with nothing left over.
    reusable: bool,
    /// Counted in `fresh_pending` until the first response byte.
    pending_first_byte: bool,
}

impl Conn {
    pub(super) fn fresh(shared: Arc<Shared>, stream: Stream, permit: OwnedSemaphorePermit) -> Conn {
        shared.open.fetch_add(1, Relaxed);
        shared.in_use.fetch_add(1, Relaxed);
        Conn { shared, stream: Some(stream), permit: Some(permit), served: 0, reused: false, reusable: false, pending_first_byte: false }
    }

    pub(super) fn reused(shared: Arc<Shared>, idle: Idle, permit: OwnedSemaphorePermit) -> Conn {
        shared.in_use.fetch_add(1, Relaxed);
        Conn { shared, stream: Some(idle.stream), permit: Some(permit), served: idle.served, reused: true, reusable: false, pending_first_byte: false }
    }

    /// Closes an idle connection found stale.
    pub(super) fn discard_idle(shared: &Shared, idle: Idle) {
        drop(Conn::take_idle(shared, idle));
    }

    /// Takes an idle connection out of the pool's accounting, for a one-off use (health probe).
    pub(super) fn take_idle(shared: &Shared, idle: Idle) -> Stream {
        shared.open.fetch_sub(1, Relaxed);
        idle.stream
    }

    pub(super) fn stream(&mut self) -> &mut Stream {
        self.stream.as_mut().expect("stream present until drop")
    }

    /// Counts one request on this connection.
    pub(super) fn start_request(&mut self) {
        self.served += 1;
        if !self.reused {
            self.pending_first_byte = true;
            self.shared.fresh_pending.fetch_add(1, Relaxed);
        }
    }

    /// The first response byte arrived.
    pub(super) fn got_first_byte(&mut self) {
        if std::mem::take(&mut self.pending_first_byte) {
            self.shared.fresh_pending.fetch_sub(1, Relaxed);
        }
    }

    /// The request ended cleanly: the connection may be kept alive.
    pub(super) fn mark_reusable(&mut self) {
        self.reusable = true;
    }

    /// Closes the connection and hands back the permit (for a retry on a fresh connection).
    pub(super) fn into_permit(mut self) -> OwnedSemaphorePermit {
        self.permit.take().expect("permit present until drop")
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.got_first_byte();
        let s = &self.shared;
        s.in_use.fetch_sub(1, Relaxed);
        let max = s.cfg.max_requests;
        let keep = self.reusable
            && (max == 0 || self.served < max)
            && s.fresh_pending.load(Relaxed) == 0;
        match self.stream.take() {
            Some(stream) if keep => s.idle.lock().push(Idle { stream, served: self.served }),
            _ => {
                s.open.fetch_sub(1, Relaxed);
            }
        }
        // The permit drops after the connection is back in the idle list.
        drop(self.permit.take());
    }
}
