//! The engine side of a request: its future (until the response head) and then its body,
//! polled on the nginx thread with the request's waker, as a sequence of [`Event`]s.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use fephp::cgi::ResponseHead;
use fephp::engine::ResponseBody;
use fephp::error::catch_panic;
use fephp::{EngineError, Response};

use super::wakeup::ReqWaker;

/// What a request's future produces.
pub enum Output {
    /// An engine response with a streaming body.
    Stream(Response),
    /// A complete response built by the module itself (`fephp_status`).
    Full(ResponseHead, Bytes),
}

/// A future a local request polls on the nginx thread.
pub type LocalFuture = Pin<Box<dyn Future<Output = Result<Output, EngineError>>>>;

/// What polling a request yields, in this order: `Head`, `Chunk`*, then `End` or `Error`
/// (or only `Error`).
pub(super) enum Event {
    Head(ResponseHead),
    Chunk(Bytes),
    End,
    Error(EngineError),
}

/// Where a local request is.
pub(super) enum LocalState {
    /// Waiting for the response head.
    Starting(LocalFuture),
    /// Streaming the body.
    Body(ResponseBody),
    /// A complete body still to hand over.
    Full(Bytes),
    /// End or error delivered.
    Done,
}

/// A request's engine side and what polls it.
pub(super) struct Local {
    pub(super) state: LocalState,
    pub(super) waker: Arc<ReqWaker>,
    pub(super) runtime: tokio::runtime::Handle,
}

impl Local {
    /// Polls for the next event; `None` while nothing is ready. A panic in the engine's code
    /// is caught here and becomes an [`EngineError::Internal`] error event (the future is
    /// dropped), so it ends the request through the bridge's normal path, exactly once.
    pub(super) fn poll_event(&mut self) -> Option<Event> {
        self.waker.queued.store(false, Ordering::Release);
        let waker = Waker::from(Arc::clone(&self.waker));
        let mut cx = Context::from_waker(&waker);
        let _rt = self.runtime.enter();
        match catch_panic(|| self.poll_state(&mut cx)) {
            Ok(ev) => ev,
            Err(msg) => {
                let state = std::mem::replace(&mut self.state, LocalState::Done);
                // Its drop may panic too; nothing of it is used any more.
                let _ = catch_panic(move || drop(state));
                Some(Event::Error(EngineError::Internal(format!("panic in the engine: {msg}"))))
            }
        }
    }

    fn poll_state(&mut self, cx: &mut Context<'_>) -> Option<Event> {
        loop {
            match &mut self.state {
                LocalState::Starting(fut) => match fut.as_mut().poll(cx) {
                    Poll::Pending => return None,
                    Poll::Ready(Err(e)) => {
                        self.state = LocalState::Done;
                        return Some(Event::Error(e));
                    }
                    Poll::Ready(Ok(Output::Stream(Response { head, body }))) => {
                        self.state = LocalState::Body(body);
                        return Some(Event::Head(head));
                    }
                    Poll::Ready(Ok(Output::Full(head, body))) => {
                        self.state = LocalState::Full(body);
                        return Some(Event::Head(head));
                    }
                },
                LocalState::Body(body) => {
                    return match body.poll_chunk(cx) {
                        Poll::Pending => None,
                        Poll::Ready(Some(Ok(chunk))) if chunk.is_empty() => continue,
                        Poll::Ready(Some(Ok(chunk))) => Some(Event::Chunk(chunk)),
                        Poll::Ready(Some(Err(e))) => {
                            self.state = LocalState::Done;
                            Some(Event::Error(e))
                        }
                        Poll::Ready(None) => {
                            self.state = LocalState::Done;
                            Some(Event::End)
                        }
                    };
                }
                LocalState::Full(body) => {
                    let body = std::mem::take(body);
                    self.state = LocalState::Done;
                    if body.is_empty() {
                        return Some(Event::End);
                    }
                    // Deliver the chunk now and the end on the next call.
                    self.state = LocalState::Full(Bytes::new());
                    return Some(Event::Chunk(body));
                }
                LocalState::Done => return Some(Event::End),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::sync::Mutex;

    use super::*;
    use crate::bridge::wakeup::Wakeup;

    #[test]
    fn a_panicking_engine_future_is_one_error_event() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let wakeup = Arc::new(Wakeup { state: Mutex::new((Vec::new(), false)), efd: -1 });
        let waker = Arc::new(ReqWaker { id: 1, wakeup, queued: AtomicBool::new(false) });
        let fut: LocalFuture = Box::pin(async { panic!("engine bug") });
        let mut local = Local { state: LocalState::Starting(fut), waker, runtime: runtime.handle().clone() };
        let ev = catch_panic(|| local.poll_event())
            .expect("a panic while polling must not unwind out of the bridge (the handler would finalize again)");
        match ev {
            Some(Event::Error(EngineError::Internal(msg))) => assert!(msg.contains("engine bug"), "{msg}"),
            _ => panic!("expected an internal error event"),
        }
        assert!(matches!(local.state, LocalState::Done));
    }
}
