//! [`ResponseBody`]: the body of a response, read chunk by chunk from whichever backend
//! produced it. Reading is what pulls data from the backend, so a slow client slows the
//! backend down (back-pressure) instead of growing buffers.

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

    /// The next chunk of the body; `None` at the end. An error mid-body means the response is
    /// truncated (the surface should close the client connection).
    pub async fn next_chunk(&mut self) -> Option<Result<Bytes, EngineError>> {
        match &mut self.0 {
            Inner::Empty => None,
            Inner::Fpm(body) => body.next_chunk().await,
            #[cfg(feature = "embed")]
            Inner::Php(body) => body.next_chunk().await,
            #[cfg(feature = "embed")]
            Inner::Exec(body) => body.next_chunk().await,
        }
    }
}
