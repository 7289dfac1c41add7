//! [`ResponseBody`]: the body of a response, read chunk by chunk from whichever backend
//! produced it. Reading is what pulls data from the backend, so a slow client slows the
//! backend down (back-pressure) instead of growing buffers.

use std::task::{Context, Poll};

use bytes::Bytes;

use crate::error::EngineError;
use crate::pool::FpmBody;

/// A streaming response body. Dropping it before the end aborts the request at the backend
/// (the FastCGI connection is closed, never reused; embedded PHP sees `connection_aborted()`).
#[derive(Debug)]
pub struct ResponseBody(Inner);

#[derive(Debug)]
enum Inner {
    Empty,
    Fpm(FpmBody),
    #[cfg(feature = "embed")]
    Php(crate::php::PhpBody),
    #[cfg(feature = "embed")]
    Exec(crate::executor::ExecBody),
}

impl ResponseBody {
    /// A body with no bytes.
    pub fn empty() -> Self {
        ResponseBody(Inner::Empty)
    }

    pub(crate) fn fpm(body: FpmBody) -> Self {
        ResponseBody(Inner::Fpm(body))
    }

    #[cfg(feature = "embed")]
    pub(crate) fn php(body: crate::php::PhpBody) -> Self {
        ResponseBody(Inner::Php(body))
    }

    #[cfg(feature = "embed")]
    pub(crate) fn exec(body: crate::executor::ExecBody) -> Self {
        ResponseBody(Inner::Exec(body))
    }

    /// Polls for the next chunk of the body (in the style of `http_body::Body::poll_frame`):
    /// `Ready(None)` at the end; an error mid-body means the response is truncated (the
    /// surface should close the client connection). The body keeps its own state between polls,
    /// the backend's read timeout included, so a caller may poll it only when woken and build
    /// nothing per poll. Pending registers `cx`'s waker. Poll within a tokio runtime context
    /// (the FPM read timeout is a tokio timer).
    pub fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, EngineError>>> {
        match &mut self.0 {
            Inner::Empty => Poll::Ready(None),
            Inner::Fpm(body) => body.poll_chunk(cx),
            #[cfg(feature = "embed")]
            Inner::Php(body) => body.poll_chunk(cx),
            #[cfg(feature = "embed")]
            Inner::Exec(body) => body.poll_chunk(cx),
        }
    }

    /// The next chunk of the body; `None` at the end (see [`ResponseBody::poll_chunk`]).
    pub async fn next_chunk(&mut self) -> Option<Result<Bytes, EngineError>> {
        std::future::poll_fn(|cx| self.poll_chunk(cx)).await
    }
}
