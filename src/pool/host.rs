//! Host-supplied sockets: a [`Connector`] lets the program embedding the pool open and drive
//! the connections to PHP-FPM itself (the nginx module uses nginx's own event loop), instead of
//! tokio's sockets. The pool keeps everything else: connect timeout, error mapping, keep-alive,
//! retries and the FastCGI exchange.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite};

use super::Address;

/// A connected socket to PHP-FPM supplied by a [`Connector`].
///
/// Reads and writes follow tokio's contract: `Poll::Pending` only after arranging for the
/// task's waker to be woken when the socket may be ready.
pub trait HostSocket: AsyncRead + AsyncWrite + Send + Unpin + fmt::Debug {
    /// True when the peer has closed or reset the connection (or sent unexpected bytes) while
    /// it sat idle in the pool. Must not block: a non-blocking peek (`MSG_PEEK|MSG_DONTWAIT`)
    /// that would block means "not stale".
    fn is_stale(&self) -> bool;
}

/// The future a [`Connector`] returns: the connected socket or the OS error of the attempt.
pub type ConnectFuture<'a> = Pin<Box<dyn Future<Output = io::Result<Box<dyn HostSocket>>> + Send + 'a>>;

/// Opens connections to PHP-FPM for a [`Pool`](super::Pool), in place of tokio's sockets
/// ([`PoolConfig::connector`](super::PoolConfig::connector)).
///
/// The pool wraps the returned future in its connect timeout (→ 504) and maps its error like
/// its own connects (refused, missing socket, reset → 502; `TimedOut` → 504), so a connector
/// only reports the OS error.
pub trait Connector: Send + Sync + fmt::Debug {
    /// Starts connecting to `address`.
    fn connect<'a>(&'a self, address: &'a Address) -> ConnectFuture<'a>;
}
