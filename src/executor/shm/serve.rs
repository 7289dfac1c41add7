//! The executor side of the shared-memory transport: take the next queued slot (any idle
//! executor takes from the one queue), read its request from the slot's request ring, write
//! the response frames into its response ring with back-pressure (wait while the ring is full),
//! ring the client's doorbell, release the slot.
//!
//! The executor trusts nothing the client wrote either (positions are checked; a bad request
//! is answered with a `FAIL` frame). Every wait is bounded: a client that stops reading for
//! [`CLIENT_TIMEOUT`] (or cancels) ends the request as an aborted connection.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::region::{state, Region, REQ_CAP, RESP_CAP};
use super::wake;
use crate::executor::wire;

/// Longest wait for a client's request bytes or for room in the response ring.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
/// An idle executor looks at its stop flag at least this often.
const IDLE_WAIT: Duration = Duration::from_millis(500);

/// What the supervisor and the executors share of the transport: the region and every
/// client's doorbell.
#[derive(Debug, Clone)]
pub struct Shared {
    /// The mapped region.
    pub region: Arc<Region>,
    /// The doorbells, by client index.
    pub bells: Arc<Vec<OwnedFd>>,
}

impl Shared {
    /// Rings client `client`'s doorbell if the index is valid (it was read from the region).
    pub fn ring(&self, client: u32) {
        if let Some(fd) = self.bells.get(client as usize) {
            wake::ring(fd.as_raw_fd());
        }
    }

    /// Tells the client of `slot` that something changed (bump `notify`; ring if it waits).
    fn notify(&self, slot: usize) {
        let ctl = self.region.ctl(slot);
        ctl.notify.fetch_add(1, Ordering::SeqCst);
        if ctl.client_waiting.swap(0, Ordering::SeqCst) != 0 {
            self.ring(ctl.client.load(Ordering::SeqCst));
        }
    }

    /// The supervisor, after executor `exec` ended: its claimed slots are marked dead (502, or
    /// 504 when it was killed for the terminate timeout) and their clients woken; a slot it
    /// was claiming when it died goes back to the queue. Returns the slots marked dead.
    pub fn executor_gone(&self, exec: usize, timed_out: bool) -> usize {
        let layout = self.region.layout();
        if exec >= layout.executors {
            return 0;
        }
        let taken = state::TAKEN + exec as u32;
        let dead = if timed_out { state::DEAD_TIMEOUT } else { state::DEAD_CRASH };
        let mut n = 0;
        for slot in 0..layout.slots() {
            let ctl = self.region.ctl(slot);
            if ctl.state.compare_exchange(taken, dead, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                n += 1;
                self.notify(slot);
                // The wake in `notify` only rings a waiting client; a dead slot always does.
                self.ring(ctl.client.load(Ordering::SeqCst));
            }
        }
        let claiming = self.region.claim_word(exec).swap(0, Ordering::SeqCst) as usize;
        if claiming > 0 && claiming <= layout.slots() {
            let slot = claiming - 1;
            if self.region.ctl(slot).state.load(Ordering::SeqCst) == state::QUEUED && !self.region.queued_bit(slot) {
                self.region.set_queued_bit(slot);
                self.region.queue_futex().fetch_add(1, Ordering::SeqCst);
                wake::futex_wake(self.region.queue_futex(), 1);
            }
        }
        n
    }
}

/// An executor's end of the queue.
#[derive(Debug)]
pub struct Source {
    shared: Shared,
    me: usize,
}

impl Source {
    /// The queue for executor number `me` (its scoreboard slot).
    pub fn new(shared: Shared, me: usize) -> Source {
        Source { shared, me }
    }

    /// Blocks until a request is claimed; `None` once `stop()` says so (checked at least every
    /// half second while idle).
    pub fn next(&mut self, stop: impl Fn() -> bool) -> Option<ShmRequest> {
        let region = Arc::clone(&self.shared.region);
        loop {
            if stop() {
                return None;
            }
            let seen = region.queue_futex().load(Ordering::SeqCst);
            if let Some(slot) = self.claim() {
                return Some(ShmRequest::new(self.shared.clone(), slot));
            }
            region.sleepers().fetch_add(1, Ordering::SeqCst);
            if region.queue_futex().load(Ordering::SeqCst) == seen {
                wake::futex_wait(region.queue_futex(), seen, IDLE_WAIT);
            }
            region.sleepers().fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// A request already queued, without waiting (`None`: the queue is empty).
    pub fn try_next(&mut self) -> Option<ShmRequest> {
        self.claim().map(|slot| ShmRequest::new(self.shared.clone(), slot))
    }

    /// One pass over the queued bitmap, starting at the shared cursor (one past the last
    /// claimed slot, by any executor) and wrapping around: round robin over the slots, so a
    /// request is passed over at most once by each claim before it is taken (close to FIFO;
    /// a lowest-bit-first scan would starve high slots under load).
    fn claim(&mut self) -> Option<usize> {
        let region = &self.shared.region;
        let words = region.bitmap_words();
        let slots = region.layout().slots();
        let start = region.cursor().load(Ordering::Relaxed) as usize % slots;
        for k in 0..=words {
            let wi = (start / 64 + k) % words;
            let mut bits = region.bitmap_word(wi).load(Ordering::SeqCst);
            // The start word twice: first its bits from the cursor on, at the end the rest.
            let from = start % 64;
            if k == 0 {
                bits &= !0u64 << from;
            } else if k == words {
                bits &= (1u64 << from).wrapping_sub(1);
            }
            while bits != 0 {
                let b = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let slot = wi * 64 + b;
                if slot >= slots {
                    region.take_queued_bit(slot);
                    continue;
                }
                // Intent first: if this process dies between taking the bit and the state's
                // CAS, the supervisor puts the slot back in the queue.
                region.claim_word(self.me).store(slot as u32 + 1, Ordering::SeqCst);
                let mine = region.take_queued_bit(slot)
                    && region
                        .ctl(slot)
                        .state
                        .compare_exchange(state::QUEUED, state::TAKEN + self.me as u32, Ordering::SeqCst, Ordering::SeqCst)
                        .is_ok();
                region.claim_word(self.me).store(0, Ordering::SeqCst);
                if mine {
                    region.cursor().store((slot + 1) as u32, Ordering::Relaxed);
                    return Some(slot);
                }
            }
        }
        None
    }
}

/// One claimed request: read its bytes ([`ShmRequest::read_some`]), write the response
/// ([`ShmRequest::write_all`]), and release it (on drop).
#[derive(Debug)]
pub struct ShmRequest {
    shared: Shared,
    slot: usize,
    req_r: u32,
    resp_w: u32,
    gone: bool,
}

impl ShmRequest {
    fn new(shared: Shared, slot: usize) -> ShmRequest {
        ShmRequest { shared, slot, req_r: 0, resp_w: 0, gone: false }
    }

    /// Waits (bounded) until `ready()` or the client cancels; false on cancel or timeout.
    fn wait(&self, deadline: Instant, ready: impl Fn() -> bool) -> bool {
        let ctl = self.shared.region.ctl(self.slot);
        loop {
            let seen = ctl.exec_futex.load(Ordering::SeqCst);
            if ready() {
                return true;
            }
            if ctl.cancel.load(Ordering::SeqCst) != 0 {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            ctl.exec_waiting.store(1, Ordering::SeqCst);
            if !ready() {
                wake::futex_wait(&ctl.exec_futex, seen, (deadline - now).min(IDLE_WAIT));
            }
            ctl.exec_waiting.store(0, Ordering::SeqCst);
        }
    }

    /// Reads at least one of the next request bytes into `buf` (blocking, bounded by
    /// [`CLIENT_TIMEOUT`]).
    pub fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let ctl = self.shared.region.ctl(self.slot);
        let r = self.req_r;
        if !self.wait(Instant::now() + CLIENT_TIMEOUT, || ctl.req_w.load(Ordering::Acquire) != r) {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "the client sent no more request bytes"));
        }
        let avail = ctl.req_w.load(Ordering::Acquire).wrapping_sub(self.req_r) as usize;
        if avail > REQ_CAP {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "request ring position out of range"));
        }
        let n = avail.min(buf.len());
        self.shared.region.req_ring(self.slot).read(self.req_r, &mut buf[..n]);
        self.req_r = self.req_r.wrapping_add(n as u32);
        // SeqCst: ordered before the `client_waiting` load below (the client stores that, then
        // loads `req_r`: one of the two sides sees the other).
        ctl.req_r.store(self.req_r, Ordering::SeqCst);
        // Only a client with more to send waits for this.
        if ctl.client_waiting.load(Ordering::SeqCst) != 0 {
            self.shared.notify(self.slot);
        }
        Ok(n)
    }

    /// Writes `data` into the response ring (waiting for room); false when the client is gone
    /// (cancelled, or read nothing for [`CLIENT_TIMEOUT`]).
    pub fn write_all(&mut self, mut data: &[u8]) -> bool {
        if self.gone {
            return false;
        }
        let ctl = self.shared.region.ctl(self.slot);
        let ring = self.shared.region.resp_ring(self.slot);
        let deadline = Instant::now() + CLIENT_TIMEOUT;
        while !data.is_empty() {
            let used = self.resp_w.wrapping_sub(ctl.resp_r.load(Ordering::Acquire)) as usize;
            if used > RESP_CAP {
                self.gone = true;
                return false;
            }
            let n = (RESP_CAP - used).min(data.len());
            if n == 0 {
                let w = self.resp_w;
                if !self.wait(deadline, || (w.wrapping_sub(ctl.resp_r.load(Ordering::Acquire)) as usize) < RESP_CAP) {
                    self.gone = true;
                    return false;
                }
                continue;
            }
            ring.write(self.resp_w, &data[..n]);
            self.resp_w = self.resp_w.wrapping_add(n as u32);
            ctl.resp_w.store(self.resp_w, Ordering::Release);
            self.shared.notify(self.slot);
            data = &data[n..];
        }
        if ctl.cancel.load(Ordering::SeqCst) != 0 {
            self.gone = true;
        }
        !self.gone
    }

    /// Sends a `FAIL` frame (the request failed before or during its response).
    pub fn fail(&mut self, kind: u8, message: &str) {
        let mut buf = BytesMut::new();
        wire::encode_fail(&mut buf, kind, message);
        self.write_all(&buf);
    }
}

impl Drop for ShmRequest {
    fn drop(&mut self) {
        let ctl = self.shared.region.ctl(self.slot);
        let me = ctl.state.load(Ordering::SeqCst);
        if me >= state::TAKEN {
            let _ = ctl.state.compare_exchange(me, state::RELEASED, Ordering::SeqCst, Ordering::SeqCst);
        }
        self.shared.notify(self.slot);
    }
}
