//! [`Handoff`]: where one request's response passes from the PHP thread to the async side.
//!
//! One allocation per request holds everything the two sides share: the job's state (queued,
//! running, cancelled), the response head, the body chunks in flight, the end mark, and the
//! waker of whoever awaits them. The PHP side hands over head, chunks and end in as few steps as
//! it can — a small response (head + whole body + end) is ONE lock and ONE wakeup — and blocks
//! while [`BODY_CHANNEL`] chunks wait unread (back-pressure from a slow client). The async side
//! marks itself gone when it drops its [`Receiver`], which PHP sees as an aborted connection.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};

use crate::cgi::ResponseHead;
use crate::error::EngineError;

/// Chunks in flight between the PHP thread and the client: past this, `echo` blocks.
pub(crate) const BODY_CHANNEL: usize = 8;

/// A job waits in the queue.
pub(crate) const QUEUED: u8 = 0;
/// The PHP thread took the job.
pub(crate) const RUNNING: u8 = 1;
/// The waiter gave up (queue timeout, client gone) before the PHP thread took it.
pub(crate) const CANCELLED: u8 = 2;

/// The response head, or why there is none.
pub(crate) type HeadResult = Result<ResponseHead, EngineError>;
/// One body chunk, or why the body ends early.
pub(crate) type Chunk = Result<Bytes, EngineError>;

/// The shared part of one request.
pub(crate) struct Handoff {
    state: AtomicU8,
    slot: Mutex<Slot>,
    /// Signalled when a chunk is taken or the receiver goes (the PHP side waits for room).
    room: Condvar,
}

#[derive(Default)]
struct Slot {
    head: Option<HeadResult>,
    chunks: VecDeque<Chunk>,
    /// The PHP side sent everything.
    ended: bool,
    /// The async side dropped its receiver.
    gone: bool,
    waker: Option<Waker>,
}

impl Handoff {
    /// A queued handoff, shared by the job ([`Sender`]) and the waiter ([`Receiver`]).
    pub(crate) fn pair() -> (Sender, Receiver) {
        let x = Arc::new(Handoff {
            state: AtomicU8::new(QUEUED),
            slot: Mutex::new(Slot::default()),
            room: Condvar::new(),
        });
        (Sender { x: Arc::clone(&x), head_sent: false, ended: false }, Receiver { x })
    }
}

/// The PHP thread's end. Dropping it before [`Sender::end`] ends the response (with an error
/// if no head was sent), so a waiter never hangs.
pub(crate) struct Sender {
    x: Arc<Handoff>,
    head_sent: bool,
    ended: bool,
}

impl Sender {
    /// Claims the job for the PHP thread; false when its waiter already gave up.
    pub(crate) fn claim(&self) -> bool {
        self.x.state.compare_exchange(QUEUED, RUNNING, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// True when the receiver is gone (the client will not read the response).
    pub(crate) fn is_gone(&self) -> bool {
        self.x.slot.lock().gone
    }

    /// True once a head has been handed over.
    pub(crate) fn head_sent(&self) -> bool {
        self.head_sent
    }

    /// Hands over `head` (if any), `chunk` (if any), and the end mark when `end`, in one step,
    /// waiting while the receiver has [`BODY_CHANNEL`] chunks unread. False when the receiver
    /// is gone (nothing more will be read).
    pub(crate) fn send(&mut self, head: Option<HeadResult>, chunk: Option<Chunk>, end: bool) -> bool {
        let waker = {
            let mut slot = self.x.slot.lock();
            if chunk.is_some() {
                while slot.chunks.len() >= BODY_CHANNEL && !slot.gone {
                    self.x.room.wait(&mut slot);
                }
            }
            if slot.gone {
                return false;
            }
            if let Some(h) = head {
                slot.head = Some(h);
                self.head_sent = true;
            }
            if let Some(c) = chunk {
                slot.chunks.push_back(c);
            }
            if end {
                slot.ended = true;
                self.ended = true;
            }
            slot.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        true
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        let head = (!self.head_sent).then(|| Err(EngineError::Internal("the PHP thread dropped the request".into())));
        let chunk = self.head_sent.then(|| Err(EngineError::Internal("the PHP thread dropped the request".into())));
        let waker = {
            let mut slot = self.x.slot.lock();
            if let Some(h) = head {
                slot.head = Some(h);
            }
            if let Some(c) = chunk {
                slot.chunks.push_back(c);
            }
            slot.ended = true;
            slot.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// The async side's end: first the head, then the body chunks. Dropping it tells PHP the client
/// is gone and takes a job that has not started out of the queue.
pub(crate) struct Receiver {
    x: Arc<Handoff>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver").field("state", &self.x.state.load(Ordering::Relaxed)).finish()
    }
}

impl Receiver {
    /// Cancels the job if the PHP thread has not taken it yet; true when it was cancelled.
    pub(crate) fn cancel_if_queued(&self) -> bool {
        self.x.state.compare_exchange(QUEUED, CANCELLED, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// The response head, once PHP has handed it over.
    pub(crate) fn poll_head(&self, cx: &mut Context<'_>) -> Poll<HeadResult> {
        let mut slot = self.x.slot.lock();
        if let Some(head) = slot.head.take() {
            return Poll::Ready(head);
        }
        if slot.ended {
            return Poll::Ready(Err(EngineError::Internal("PHP ended without sending headers".into())));
        }
        store_waker(&mut slot, cx);
        Poll::Pending
    }

    /// The next body chunk; `None` at the end.
    pub(crate) fn poll_chunk(&self, cx: &mut Context<'_>) -> Poll<Option<Chunk>> {
        let mut slot = self.x.slot.lock();
        if let Some(chunk) = slot.chunks.pop_front() {
            if slot.chunks.len() + 1 == BODY_CHANNEL {
                self.x.room.notify_one();
            }
            return Poll::Ready(Some(chunk));
        }
        if slot.ended {
            return Poll::Ready(None);
        }
        store_waker(&mut slot, cx);
        Poll::Pending
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.cancel_if_queued();
        let mut slot = self.x.slot.lock();
        slot.gone = true;
        slot.waker = None;
        slot.chunks.clear();
        drop(slot);
        self.x.room.notify_one();
    }
}

fn store_waker(slot: &mut Slot, cx: &mut Context<'_>) {
    match &slot.waker {
        Some(w) if w.will_wake(cx.waker()) => {}
        _ => slot.waker = Some(cx.waker().clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn head() -> ResponseHead {
        let mut h = ResponseHead::new();
        h.set_status(200);
        h
    }

    #[test]
    fn a_small_response_is_one_handover_and_one_wakeup() {
        let (mut tx, rx) = Handoff::pair();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&count));
        let mut cx = Context::from_waker(&waker);
        assert!(rx.poll_head(&mut cx).is_pending());
        assert!(tx.claim());
        assert!(tx.send(Some(Ok(head())), Some(Ok(Bytes::from_static(b"hi"))), true));
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(matches!(rx.poll_head(&mut cx), Poll::Ready(Ok(h)) if h.status == 200));
        assert!(matches!(rx.poll_chunk(&mut cx), Poll::Ready(Some(Ok(b))) if &b[..] == b"hi"));
        assert!(matches!(rx.poll_chunk(&mut cx), Poll::Ready(None)));
    }

    #[test]
    fn a_dropped_sender_ends_with_an_error() {
        let (tx, rx) = Handoff::pair();
        drop(tx);
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(matches!(rx.poll_head(&mut cx), Poll::Ready(Err(_))));

        let (mut tx, rx) = Handoff::pair();
        assert!(tx.send(Some(Ok(head())), None, false));
        drop(tx);
        assert!(matches!(rx.poll_head(&mut cx), Poll::Ready(Ok(_))));
        assert!(matches!(rx.poll_chunk(&mut cx), Poll::Ready(Some(Err(_)))));
        assert!(matches!(rx.poll_chunk(&mut cx), Poll::Ready(None)));
    }

    #[test]
    fn a_dropped_receiver_cancels_a_queued_job_and_stops_the_sender() {
        let (mut tx, rx) = Handoff::pair();
        drop(rx);
        assert!(!tx.claim());
        assert!(tx.is_gone());
        assert!(!tx.send(None, Some(Ok(Bytes::from_static(b"x"))), false));
    }

    #[test]
    fn the_sender_waits_for_room_and_resumes_when_a_chunk_is_read() {
        let (mut tx, rx) = Handoff::pair();
        assert!(tx.send(Some(Ok(head())), None, false));
        for _ in 0..BODY_CHANNEL {
            assert!(tx.send(None, Some(Ok(Bytes::from_static(b"c"))), false));
        }
        let producer = std::thread::spawn(move || tx.send(None, Some(Ok(Bytes::from_static(b"last"))), true));
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(rx.poll_head(&mut cx).is_ready());
        let mut got = Vec::new();
        loop {
            match rx.poll_chunk(&mut cx) {
                Poll::Ready(Some(Ok(b))) => got.push(b),
                Poll::Ready(None) => break,
                Poll::Ready(Some(Err(e))) => panic!("{e}"),
                Poll::Pending => std::thread::yield_now(),
            }
        }
        assert!(producer.join().unwrap());
        assert_eq!(got.len(), BODY_CHANNEL + 1);
        assert_eq!(&got[BODY_CHANNEL][..], b"last");
    }

    #[test]
    fn a_receiver_gone_while_the_sender_waits_releases_it() {
        let (mut tx, rx) = Handoff::pair();
        for _ in 0..BODY_CHANNEL {
            assert!(tx.send(None, Some(Ok(Bytes::from_static(b"c"))), false));
        }
        let producer = std::thread::spawn(move || tx.send(None, Some(Ok(Bytes::from_static(b"x"))), false));
        drop(rx); // before or while the producer waits: either way it is released

        assert!(!producer.join().unwrap());
    }
}
