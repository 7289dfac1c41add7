//! The client side of the shared-memory transport (an nginx worker, `fe-php serve`): a request
//! is written into one of this client's slots, published in the queue, and its response read
//! back from the slot's response ring, woken by the client's [`Bell`].
//!
//! Everything read from the region is UNTRUSTED (an executor runs PHP and may write anything
//! anywhere in it): ring positions are checked against the ring's capacity, frames go through
//! [`wire::decode_frame`], states outside the known set are ignored, and every wait has the
//! read timeout. The client never blocks its thread: it only loads, stores and polls. A slot
//! is reused only once its executor released it or the supervisor marked it dead; a slot whose
//! executor never does stays out of use (it costs this client one slot, nothing else).

use std::future::Future;
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::time::Sleep;

use super::bell::{watch_with_tokio, Bell, BellHost};
use super::region::{state, Region, REQ_CAP, RESP_CAP};
use super::wake;
use crate::cgi::{BodyPart, Params, RequestBody, Script};
use crate::error::EngineError;
use crate::executor::wire::{self, Frame};

/// The client of one process (its index, its slots, its doorbell). Cheap to share.
#[derive(Debug)]
pub struct ShmClient {
    region: Arc<Region>,
    bell: Arc<Bell>,
    index: usize,
    slots: Mutex<SlotPool>,
    host: Option<Arc<dyn BellHost>>,
    watching: OnceLock<Result<(), String>>,
    /// Longest wait for the next response bytes (504; 503 while still queued).
    pub read_timeout: Duration,
}

#[derive(Debug, Default)]
struct SlotPool {
    free: Vec<usize>,
    /// Abandoned or finished slots whose executor has not released them yet.
    zombies: Vec<usize>,
}

impl ShmClient {
    /// The client with index `index` of `region` (its doorbell `bell_fd`), watched by `host`
    /// (or a tokio task when `None`). Takes back this index's slots: free ones at once, ones a
    /// previous process of this index left in flight once their executor releases them.
    pub fn new(
        region: Arc<Region>,
        index: usize,
        bell_fd: std::os::fd::OwnedFd,
        host: Option<Arc<dyn BellHost>>,
        read_timeout: Duration,
    ) -> Result<ShmClient, String> {
        let layout = region.layout();
        if index >= layout.clients {
            return Err(format!("client index {index} is out of range (the pool has {} client slots)", layout.clients));
        }
        let first = index * layout.per_client;
        let bell = Arc::new(Bell::new(bell_fd, Arc::clone(&region), first, layout.per_client));
        let mut pool = SlotPool::default();
        for slot in (first..first + layout.per_client).rev() {
            let ctl = region.ctl(slot);
            let s = ctl.state.load(Ordering::SeqCst);
            if s == state::QUEUED && ctl.state.compare_exchange(s, state::FREE, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                pool.free.push(slot);
            } else if s >= state::TAKEN {
                ctl.cancel.store(1, Ordering::SeqCst);
                pool.zombies.push(slot);
            } else {
                // FREE, RELEASED, a dead mark or garbage: no executor holds it.
                ctl.state.store(state::FREE, Ordering::SeqCst);
                pool.free.push(slot);
            }
        }
        Ok(ShmClient { region, bell, index, slots: Mutex::new(pool), host, watching: OnceLock::new(), read_timeout })
    }

    fn watch(&self) -> Result<(), EngineError> {
        let r = self.watching.get_or_init(|| {
            let bell = Arc::clone(&self.bell);
            match &self.host {
                Some(h) => h.watch(bell),
                None => watch_with_tokio(bell),
            }
            .map_err(|e| format!("executor doorbell: {e}"))
        });
        r.clone().map_err(EngineError::Internal)
    }

    fn alloc(&self) -> Option<usize> {
        let mut pool = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let region = &self.region;
        let mut i = 0;
        while i < pool.zombies.len() {
            let slot = pool.zombies[i];
            if matches!(region.ctl(slot).state.load(Ordering::SeqCst), state::RELEASED | state::DEAD_CRASH | state::DEAD_TIMEOUT) {
                pool.zombies.swap_remove(i);
                region.ctl(slot).state.store(state::FREE, Ordering::SeqCst);
                pool.free.push(slot);
            } else {
                i += 1;
            }
        }
        pool.free.pop()
    }

    fn give_back(&self, slot: usize, reusable: bool) {
        self.bell.unregister(slot);
        let mut pool = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if reusable {
            self.region.ctl(slot).state.store(state::FREE, Ordering::SeqCst);
            pool.free.push(slot);
        } else {
            pool.zombies.push(slot);
        }
    }

    /// Publishes one request and returns its exchange once the response head arrived.
    pub async fn execute(
        self: &Arc<Self>,
        params: &Params,
        script: &Script,
        body: RequestBody,
        submitted_ns: u64,
        ini: Option<&crate::config::RequestIni>,
    ) -> Result<(crate::cgi::ResponseHead, ShmBody), EngineError> {
        self.watch()?;
        let Some(slot) = self.alloc() else {
            return Err(EngineError::Overloaded("every executor is busy and this worker's queue is full".into()));
        };
        let ctl = self.region.ctl(slot);
        for w in [&ctl.notify, &ctl.client_waiting, &ctl.cancel, &ctl.exec_waiting, &ctl.req_w, &ctl.req_r, &ctl.resp_w, &ctl.resp_r] {
            w.store(0, Ordering::Relaxed);
        }
        ctl.client.store(self.index as u32, Ordering::Relaxed);
        let mut head = BytesMut::with_capacity(2048);
        wire::encode_request(
            &mut head,
            submitted_ns,
            body.len(),
            params,
            script,
            ini,
        );
        let mut ex = Exchange {
            client: Arc::clone(self),
            slot,
            sending: Some(Sending { pending: head.freeze(), parts: body.into_parts().into_iter().collect(), file_off: 0 }),
            req_w: 0,
            resp_r: 0,
            buf: BytesMut::with_capacity(16 * 1024),
            timer: None,
            waiting: false,
            ended: false,
            failed: false,
        };
        ex.push_request()?;
        // Publish: the state, then the queue bit, then the queue's futex (Dekker with the
        // executors' `sleepers`: one of the two sides sees the other).
        ctl.state.store(state::QUEUED, Ordering::SeqCst);
        self.region.set_queued_bit(slot);
        self.region.queue_futex().fetch_add(1, Ordering::SeqCst);
        if self.region.sleepers().load(Ordering::SeqCst) != 0 {
            wake::futex_wake(self.region.queue_futex(), 1);
        }
        match std::future::poll_fn(|cx| ex.poll_frame(cx)).await? {
            Frame::Head(h) => Ok((h, ShmBody { ex })),
            Frame::Fail(kind, msg) => {
                ex.ended = true;
                Err(crate::executor::client::fail_error(kind, msg))
            }
            _ => {
                ex.failed = true;
                Err(EngineError::Protocol("executor sent body bytes before the head".into()))
            }
        }
    }

    /// The slots of this client (its share of the queue).
    pub fn region_slots(&self) -> usize {
        self.region.layout().per_client
    }
}

struct Sending {
    pending: Bytes,
    parts: std::collections::VecDeque<BodyPart>,
    file_off: u64,
}

/// One request in flight on one slot.
struct Exchange {
    client: Arc<ShmClient>,
    slot: usize,
    sending: Option<Sending>,
    req_w: u32,
    resp_r: u32,
    buf: BytesMut,
    timer: Option<Pin<Box<Sleep>>>,
    waiting: bool,
    /// The END (or a FAIL) frame was read: the response is complete.
    ended: bool,
    /// The exchange failed (protocol error, death, timeout): never reuse the slot blindly.
    failed: bool,
}

impl Exchange {
    /// Writes as much of the request as the ring has room for; true when something moved.
    fn push_request(&mut self) -> Result<bool, EngineError> {
        let Some(s) = self.sending.as_mut() else { return Ok(false) };
        let region = &self.client.region;
        let ctl = region.ctl(self.slot);
        let ring = region.req_ring(self.slot);
        let used = self.req_w.wrapping_sub(ctl.req_r.load(Ordering::Acquire)) as usize;
        if used > REQ_CAP {
            return Err(EngineError::Protocol("executor moved the request ring past its end".into()));
        }
        let mut space = REQ_CAP - used;
        let start = self.req_w;
        while space > 0 {
            if s.pending.is_empty() {
                match s.parts.pop_front() {
                    None => {
                        self.sending = None;
                        break;
                    }
                    Some(BodyPart::Bytes(b)) => s.pending = b,
                    Some(BodyPart::File { file, offset, len }) => {
                        let want = (len - s.file_off).min(space as u64) as usize;
                        let mut chunk = vec![0u8; want];
                        let n = file
                            .read_at(&mut chunk, offset + s.file_off)
                            .map_err(|e| EngineError::Internal(format!("reading the request body file: {e}")))?;
                        if n == 0 && want > 0 {
                            return Err(EngineError::Internal("request body file ended early".into()));
                        }
                        chunk.truncate(n);
                        s.file_off += n as u64;
                        if s.file_off < len {
                            s.parts.push_front(BodyPart::File { file, offset, len });
                        } else {
                            s.file_off = 0;
                        }
                        s.pending = Bytes::from(chunk);
                    }
                }
                continue;
            }
            let n = s.pending.len().min(space);
            ring.write(self.req_w, &s.pending[..n]);
            self.req_w = self.req_w.wrapping_add(n as u32);
            let _ = s.pending.split_to(n);
            space -= n;
        }
        if self.req_w == start {
            return Ok(false);
        }
        ctl.req_w.store(self.req_w, Ordering::Release);
        ctl.exec_futex.fetch_add(1, Ordering::SeqCst);
        if ctl.exec_waiting.load(Ordering::SeqCst) != 0 {
            wake::futex_wake(&ctl.exec_futex, 1);
        }
        Ok(true)
    }

    /// Copies what the executor wrote into `buf`; true when something moved.
    fn pull_response(&mut self) -> Result<bool, EngineError> {
        let region = &self.client.region;
        let ctl = region.ctl(self.slot);
        let w = ctl.resp_w.load(Ordering::Acquire);
        let avail = w.wrapping_sub(self.resp_r) as usize;
        if avail == 0 {
            return Ok(false);
        }
        if avail > RESP_CAP {
            return Err(EngineError::Protocol("executor moved the response ring past its end".into()));
        }
        let at = self.buf.len();
        self.buf.resize(at + avail, 0);
        region.resp_ring(self.slot).read(self.resp_r, &mut self.buf[at..]);
        self.resp_r = w;
        ctl.resp_r.store(w, Ordering::Release);
        ctl.exec_futex.fetch_add(1, Ordering::SeqCst);
        if ctl.exec_waiting.load(Ordering::SeqCst) != 0 {
            wake::futex_wake(&ctl.exec_futex, 1);
        }
        Ok(true)
    }

    fn dead_error(&self, s: u32) -> Option<EngineError> {
        match s {
            state::DEAD_CRASH => {
                Some(EngineError::Unreachable("the executor ended before its response did (it crashed or was killed)".into()))
            }
            state::DEAD_TIMEOUT => {
                Some(EngineError::Timeout("the executor was killed after the request terminate timeout".into()))
            }
            _ => None,
        }
    }

    /// Polls for the next response frame (the request is pushed on as the ring drains).
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Result<Frame, EngineError>> {
        let r = self.poll_frame_inner(cx);
        if let Poll::Ready(Err(_)) = &r {
            self.failed = true;
        }
        r
    }

    fn poll_frame_inner(&mut self, cx: &mut Context<'_>) -> Poll<Result<Frame, EngineError>> {
        loop {
            match wire::decode_frame(&mut self.buf) {
                Ok(Some(f)) => {
                    if matches!(f, Frame::End | Frame::Fail(..)) {
                        self.ended = true;
                    }
                    return Poll::Ready(Ok(f));
                }
                Ok(None) => {}
                Err(e) => return Poll::Ready(Err(EngineError::Protocol(format!("executor: {}", e.0)))),
            }
            let moved = self.push_request()? | self.pull_response()?;
            if moved {
                self.waiting = false;
                continue;
            }
            let client = Arc::clone(&self.client);
            let ctl = client.region.ctl(self.slot);
            if let Some(e) = self.dead_error(ctl.state.load(Ordering::SeqCst)) {
                return Poll::Ready(Err(e));
            }
            // Announce the wait, then look once more (the executor bumps `notify`, then reads
            // `client_waiting`: one of the two sides sees the other).
            let seen = ctl.notify.load(Ordering::SeqCst);
            self.client.bell.register(self.slot, seen, cx.waker());
            ctl.client_waiting.store(1, Ordering::SeqCst);
            // The executor stores `req_r`, then reads `client_waiting` (both SeqCst): a ring it
            // drained before seeing us wait is seen here, never a lost wakeup with the rest of
            // the request body still to send.
            let ring_has_room = self.sending.is_some()
                && (self.req_w.wrapping_sub(ctl.req_r.load(Ordering::SeqCst)) as usize) < REQ_CAP;
            if ring_has_room || ctl.resp_w.load(Ordering::SeqCst) != self.resp_r || ctl.notify.load(Ordering::SeqCst) != seen {
                continue;
            }
            if self.poll_timer(cx).is_ready() {
                let t = self.client.read_timeout;
                if ctl.state.compare_exchange(state::QUEUED, state::FREE, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                    // Withdrawn before any executor took it: the slot is ours again.
                    self.ended = true;
                    self.failed = false;
                    return Poll::Ready(Err(EngineError::Overloaded(format!("no executor took the request within {t:?}"))));
                }
                return Poll::Ready(Err(EngineError::Timeout(format!("no response bytes from the executor for {t:?}"))));
            }
            return Poll::Pending;
        }
    }

    fn poll_timer(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = tokio::time::Instant::now() + self.client.read_timeout;
        if !self.waiting {
            self.waiting = true;
            match self.timer.as_mut() {
                Some(t) => t.as_mut().reset(deadline),
                None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
        }
        self.timer.as_mut().expect("set above").as_mut().poll(cx)
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        let ctl = self.client.region.ctl(self.slot);
        let s = ctl.state.load(Ordering::SeqCst);
        if s == state::FREE {
            // Withdrawn (queue timeout): never published any more.
            self.client.give_back(self.slot, true);
            return;
        }
        if s == state::QUEUED && ctl.state.compare_exchange(s, state::FREE, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
            self.client.give_back(self.slot, true);
            return;
        }
        if s == state::RELEASED && self.ended && !self.failed {
            self.client.give_back(self.slot, true);
            return;
        }
        if !self.ended || self.failed {
            // The executor stops writing at its next look (PHP sees an aborted connection).
            ctl.cancel.store(1, Ordering::SeqCst);
            ctl.exec_futex.fetch_add(1, Ordering::SeqCst);
            wake::futex_wake(&ctl.exec_futex, 1);
        }
        self.client.give_back(self.slot, false);
    }
}

/// The streaming body of a response over shared memory: [`ShmBody::poll_chunk`] keeps the read
/// timeout's timer inside (reset only when bytes arrive), so polling it only when woken builds
/// nothing per poll. Dropping it early cancels the request at the executor.
pub struct ShmBody {
    ex: Exchange,
}

impl std::fmt::Debug for ShmBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShmBody").field("slot", &self.ex.slot).field("ended", &self.ex.ended).finish()
    }
}

impl ShmBody {
    /// Polls for the next chunk: `Ready(None)` at the end, an error when the response is cut.
    pub fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, EngineError>>> {
        loop {
            if self.ex.ended {
                return Poll::Ready(None);
            }
            return match self.ex.poll_frame(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Ok(Frame::Data(b))) if b.is_empty() => continue,
                Poll::Ready(Ok(Frame::Data(b))) => Poll::Ready(Some(Ok(b))),
                Poll::Ready(Ok(Frame::End)) => Poll::Ready(None),
                Poll::Ready(Ok(Frame::Fail(kind, msg))) => {
                    self.ex.failed = true;
                    Poll::Ready(Some(Err(crate::executor::client::fail_error(kind, msg))))
                }
                Poll::Ready(Ok(Frame::Head(_))) => {
                    self.ex.failed = true;
                    self.ex.ended = true;
                    Poll::Ready(Some(Err(EngineError::Protocol("executor sent a second head".into()))))
                }
                Poll::Ready(Err(e)) => {
                    self.ex.ended = true;
                    Poll::Ready(Some(Err(e)))
                }
            };
        }
    }
}
