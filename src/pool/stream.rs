//! [`Stream`]: a connection to PHP-FPM over TCP or a unix socket (tokio's, or a host's through a
//! [`Connector`]), with connect timeout and error mapping (refused/reset → 502, timeout → 504).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

use super::{Address, Connector, HostSocket};
use crate::error::EngineError;

/// A connected socket to PHP-FPM.
#[derive(Debug)]
pub enum Stream {
    /// TCP (`host:port`), with `TCP_NODELAY`.
    Tcp(TcpStream),
    /// Unix domain socket.
    Unix(UnixStream),
    /// A socket opened and driven by the host program ([`Connector`]).
    Host(Box<dyn HostSocket>),
}

impl Stream {
    /// Connects to `address` within `timeout`, through `connector` when given (else with
    /// tokio's sockets). Errors: [`EngineError::Timeout`] when `timeout` passes (504),
    /// [`EngineError::Unreachable`] for refused, missing or reset sockets (502).
    pub async fn connect(address: &Address, timeout: Duration, connector: Option<&dyn Connector>) -> Result<Stream, EngineError> {
        let connecting = async {
            if let Some(connector) = connector {
                return Ok(Stream::Host(connector.connect(address).await?));
            }
            match address {
                Address::Tcp(hp) => {
                    let s = TcpStream::connect(hp.as_str()).await?;
                    s.set_nodelay(true)?;
                    Ok(Stream::Tcp(s))
                }
                Address::Unix(path) => Ok(Stream::Unix(UnixStream::connect(path).await?)),
            }
        };
        match tokio::time::timeout(timeout, connecting).await {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(e)) => Err(EngineError::from_io(&format!("connect to {address}"), &e)),
            Err(_) => Err(EngineError::Timeout(format!("connect to {address} timed out after {timeout:?}"))),
        }
    }

    /// True when the peer has closed or reset the connection (or sent unexpected bytes) while
    /// it sat idle in the pool: a non-blocking read returns EOF, an error, or data.
    pub fn is_stale(&self) -> bool {
        let mut probe = [0u8; 1];
        let r = match self {
            Stream::Tcp(s) => s.try_read(&mut probe),
            Stream::Unix(s) => s.try_read(&mut probe),
            Stream::Host(s) => return s.is_stale(),
        };
        !matches!(r, Err(ref e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Host(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Host(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
            Stream::Host(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Host(s) => Pin::new(&mut **s).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Host(s) => Pin::new(&mut **s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Tcp(_) | Stream::Unix(_) => true,
            Stream::Host(s) => s.is_write_vectored(),
        }
    }
}
