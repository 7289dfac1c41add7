//! FPM sockets on nginx's event loop: the [`Connector`] the module gives its FPM pools, so the
//! nginx thread itself connects, writes and reads the PHP-FPM sockets and nginx's own event
//! module (epoll) reports their readiness, as for `fastcgi_pass`. No runtime thread in between.
//!
//! # Design
//! - [`NgxConnector::connect`] makes a non-blocking `socket()` + `connect()` (socket2), takes the
//!   descriptor into an nginx connection (`ngx_get_connection`) and, when the connect is in
//!   progress, waits for the write event, then reads `SO_ERROR` (as `ngx_event_connect_peer` and
//!   `ngx_http_upstream_test_connect` do).
//! - [`NgxSocket`]'s `poll_read` / `poll_write` call `recv` / `send` directly. On `EAGAIN` they
//!   store the task's waker and (re)arm the nginx event (`ngx_handle_read_event` /
//!   `ngx_handle_write_event`, which with epoll registers the descriptor once, edge-triggered);
//!   the event handler wakes the stored waker. A waker is dropped as soon as the operation
//!   succeeds, so an idle kept-alive socket's events wake nothing; the pool checks an idle
//!   socket with [`HostSocket::is_stale`] (`recv(MSG_PEEK|MSG_DONTWAIT)`) before reusing it.
//! - Thread rule: these sockets are used on the nginx thread only (the bridge polls FPM requests
//!   there). They are `Send` only to satisfy the pool's bounds: every operation checks the thread
//!   and fails with an `io::Error` elsewhere; a drop on another thread closes only the descriptor
//!   and leaks the nginx connection slot and the waker cell rather than touching nginx.

use std::ffi::c_void;
use std::fmt;
use std::io;
use std::mem;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::IntoRawFd;
use std::pin::Pin;
use std::ptr;
use std::task::{Context, Poll, Waker};

use fephp::pool::{Address, ConnectFuture, Connector, HostSocket};
use ngx::ffi::{
    ngx_close_connection, ngx_connection_t, ngx_cycle, ngx_event_t, ngx_get_connection, ngx_handle_read_event,
    ngx_handle_write_event, ngx_int_t, NGX_OK,
};
use socket2::{Domain, SockAddr, Socket, Type};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::bridge;

/// Connects a pool's FPM sockets through nginx's event loop (see the module docs).
#[derive(Debug)]
pub struct NgxConnector {
    address: Address,
    /// `host:port` resolved once at worker start (the configuration check already refused a
    /// name that does not resolve, as nginx does for `fastcgi_pass`); `None` for unix sockets or
    /// when that resolution failed, in which case connects fail (502) instead of resolving —
    /// a lookup would block the event loop.
    resolved: Option<Vec<SocketAddr>>,
}

impl NgxConnector {
    /// A connector for `address`. Resolves a `host:port` now (blocking: call it at worker
    /// start, not while serving).
    pub fn new(address: &Address) -> NgxConnector {
        let resolved = match address {
            Address::Tcp(hp) => hp.to_socket_addrs().ok().map(|a| a.collect()),
            Address::Unix(_) => None,
        };
        NgxConnector { address: address.clone(), resolved }
    }
}

impl Connector for NgxConnector {
    fn connect<'a>(&'a self, address: &'a Address) -> ConnectFuture<'a> {
        Box::pin(async move {
            let socket = match address {
                Address::Unix(path) => connect_to(&SockAddr::unix(path)?).await?,
                Address::Tcp(hp) => {
                    let addrs = match &self.resolved {
                        Some(addrs) if *address == self.address => addrs,
                        _ => {
                            return Err(io::Error::new(
                                io::ErrorKind::NotFound,
                                format!("{hp} did not resolve when this worker started (reload nginx to resolve it again)"),
                            ))
                        }
                    };
                    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{hp}: no address"));
                    let mut connected = None;
                    for &addr in addrs {
                        match connect_to(&SockAddr::from(addr)).await {
                            Ok(s) => {
                                connected = Some(s);
                                break;
                            }
                            Err(e) => last = e,
                        }
                    }
                    connected.ok_or(last)?
                }
            };
            let socket: Box<dyn HostSocket> = Box::new(socket);
            Ok(socket)
        })
    }
}

/// A non-blocking `socket()` + `connect()` to `addr` (`TCP_NODELAY` for TCP), taken into an
/// nginx connection; waits for the write event and `SO_ERROR` when the connect is in progress.
async fn connect_to(addr: &SockAddr) -> io::Result<NgxSocket> {
    // Close-on-exec and non-blocking from the start (SOCK_NONBLOCK: no fcntl pair per connect).
    let socket = Socket::new(addr.domain(), Type::STREAM.nonblocking(), None)?;
    if addr.domain() != Domain::UNIX {
        socket.set_tcp_nodelay(true)?;
    }
    let in_progress = match socket.connect(addr) {
        Ok(()) => false,
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => true,
        // EAGAIN from a unix socket means its backlog is full: an error, as for nginx.
        Err(e) => return Err(e),
    };
    let socket = NgxSocket::adopt(socket.into_raw_fd())?;
    if in_progress {
        Connecting(Some(socket)).await
    } else {
        Ok(socket)
    }
}

/// A socket whose `connect()` is in progress; resolves to it once connected.
struct Connecting(Option<NgxSocket>);

impl std::future::Future for Connecting {
    type Output = io::Result<NgxSocket>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(socket) = self.0.as_ref() else {
            return Poll::Ready(Err(io::Error::other("connect polled after completion")));
        };
        match socket.poll_connected(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => {
                self.0 = None;
                Poll::Ready(Err(e))
            }
            Poll::Ready(Ok(())) => Poll::Ready(self.0.take().ok_or_else(|| io::Error::other("no socket"))),
        }
    }
}

/// The wakers waiting on one socket's read and write events; `c->data` points to it.
#[derive(Default)]
struct Wakers {
    read: Option<Waker>,
    write: Option<Waker>,
}

/// A connected, non-blocking socket registered with nginx's event loop (see the module docs).
pub struct NgxSocket {
    c: *mut ngx_connection_t,
    wakers: *mut Wakers,
    fd: libc::c_int,
}

// SAFETY: see the module docs: every operation checks that it runs on the nginx thread, and a
// drop elsewhere touches only the descriptor.
unsafe impl Send for NgxSocket {}

impl fmt::Debug for NgxSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NgxSocket").field("fd", &self.fd).finish()
    }
}

fn wrong_thread() -> io::Error {
    io::Error::other("an nginx socket was used off the nginx thread")
}

fn event_error(what: &str) -> io::Error {
    io::Error::other(format!("cannot {what} the FPM socket's nginx event"))
}

impl NgxSocket {
    /// Takes `fd` into an nginx connection whose events wake this socket's wakers. Closes `fd`
    /// on error.
    fn adopt(fd: libc::c_int) -> io::Result<NgxSocket> {
        if !bridge::on_nginx_thread() {
            // SAFETY: our descriptor.
            unsafe { libc::close(fd) };
            return Err(wrong_thread());
        }
        // SAFETY: on the nginx thread; `ngx_cycle` is the running cycle; the connection slot is
        // ours until `ngx_close_connection` in `drop`.
        unsafe {
            let log = (*ngx_cycle).log;
            let c = ngx_get_connection(fd, log);
            if c.is_null() {
                libc::close(fd);
                return Err(io::Error::other("no free nginx connection for PHP-FPM (worker_connections are not enough)"));
            }
            let wakers = Box::into_raw(Box::<Wakers>::default());
            (*c).data = wakers as *mut c_void;
            (*c).log = log;
            for ev in [(*c).read, (*c).write] {
                (*ev).handler = Some(on_event);
                (*ev).log = log;
            }
            // A connected socket can take bytes: the first write tries at once.
            (*(*c).write).set_ready(1);
            Ok(NgxSocket { c, wakers, fd })
        }
    }

    /// Waits for an in-progress `connect()`: the write event, then `SO_ERROR`.
    fn poll_connected(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !bridge::on_nginx_thread() {
            return Poll::Ready(Err(wrong_thread()));
        }
        // SAFETY: nginx thread; the connection and the waker cell live as long as `self`.
        unsafe {
            let wev = (*self.c).write;
            if (*wev).ready() == 0 {
                (*self.wakers).write = Some(cx.waker().clone());
                return Poll::Pending;
            }
            (*self.wakers).write = None;
            let mut err: libc::c_int = 0;
            let mut len = mem::size_of_val(&err) as libc::socklen_t;
            if libc::getsockopt(self.fd, libc::SOL_SOCKET, libc::SO_ERROR, &mut err as *mut _ as *mut c_void, &mut len) < 0 {
                return Poll::Ready(Err(io::Error::last_os_error()));
            }
            if err != 0 {
                return Poll::Ready(Err(io::Error::from_raw_os_error(err)));
            }
            Poll::Ready(Ok(()))
        }
    }

    /// Runs `op` (a `recv`/`send`-like call returning -1 + errno on error) for the read or the
    /// write side; on `EAGAIN` stores the waker and arms the nginx event.
    fn poll_io(&self, cx: &mut Context<'_>, write: bool, mut op: impl FnMut() -> isize) -> Poll<io::Result<usize>> {
        if !bridge::on_nginx_thread() {
            return Poll::Ready(Err(wrong_thread()));
        }
        // SAFETY: nginx thread; the connection and the waker cell live as long as `self`.
        unsafe {
            let ev = if write { (*self.c).write } else { (*self.c).read };
            let slot = if write { &mut (*self.wakers).write } else { &mut (*self.wakers).read };
            loop {
                let n = op();
                if n >= 0 {
                    *slot = None;
                    (*ev).set_ready(1);
                    // With level-triggered event modules (poll, select) this removes an armed
                    // event; with epoll (edge-triggered) it does nothing.
                    if (*ev).active() != 0 && !handle_event(ev, write) {
                        return Poll::Ready(Err(event_error("update")));
                    }
                    return Poll::Ready(Ok(n as usize));
                }
                let err = io::Error::last_os_error();
                match err.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock => {
                        (*ev).set_ready(0);
                        match slot {
                            Some(w) if w.will_wake(cx.waker()) => {}
                            _ => *slot = Some(cx.waker().clone()),
                        }
                        if !handle_event(ev, write) {
                            *slot = None;
                            return Poll::Ready(Err(event_error("arm")));
                        }
                        return Poll::Pending;
                    }
                    _ => {
                        *slot = None;
                        return Poll::Ready(Err(err));
                    }
                }
            }
        }
    }
}

/// `ngx_handle_read_event` / `ngx_handle_write_event` with no flags; false on error.
///
/// # Safety
/// `ev` is an event of a live connection, on the nginx thread.
unsafe fn handle_event(ev: *mut ngx_event_t, write: bool) -> bool {
    // SAFETY: caller contract.
    let rc = unsafe { if write { ngx_handle_write_event(ev, 0) } else { ngx_handle_read_event(ev, 0) } };
    rc == NGX_OK as ngx_int_t
}

/// The read and write handler of every FPM socket: wake whoever waits on that side.
unsafe extern "C" fn on_event(ev: *mut ngx_event_t) {
    ffi_guard!((), {
        // SAFETY: nginx calls this on its thread for a live connection of ours, whose `data` is
        // the waker cell (freed only after `ngx_close_connection`, which unposts its events).
        let waker = unsafe {
            let c = (*ev).data as *mut ngx_connection_t;
            let wakers = (*c).data as *mut Wakers;
            if (*ev).write() != 0 {
                (*wakers).write.take()
            } else {
                (*wakers).read.take()
            }
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    })
}

impl HostSocket for NgxSocket {
    fn is_stale(&self) -> bool {
        let mut probe = [0u8; 1];
        // SAFETY: a non-blocking peek of one byte into a local buffer.
        let n = unsafe { libc::recv(self.fd, probe.as_mut_ptr() as *mut c_void, 1, libc::MSG_PEEK | libc::MSG_DONTWAIT) };
        !(n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock)
    }
}

impl AsyncRead for NgxSocket {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let fd = self.fd;
        // SAFETY: `recv` writes at most `len` bytes into the unfilled part; only the bytes it
        // reports are marked initialized.
        let unfilled = unsafe { buf.unfilled_mut() };
        let (dst, len) = (unfilled.as_mut_ptr() as *mut c_void, unfilled.len());
        match self.poll_io(cx, false, || unsafe { libc::recv(fd, dst, len, 0) }) {
            Poll::Ready(Ok(n)) => {
                // SAFETY: `recv` initialized `n` bytes.
                unsafe { buf.assume_init(n) };
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for NgxSocket {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let fd = self.fd;
        // SAFETY: `send` reads `data` (borrowed for the call). SIGPIPE is ignored by nginx and
        // suppressed here anyway.
        self.poll_io(cx, true, || unsafe { libc::send(fd, data.as_ptr() as *const c_void, data.len(), libc::MSG_NOSIGNAL) })
    }

    fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let fd = self.fd;
        self.poll_io(cx, true, || {
            // SAFETY: an all-zero msghdr is valid; it points at `bufs` (IoSlice is iovec-compatible)
            // for the duration of the call.
            unsafe {
                let mut msg: libc::msghdr = mem::zeroed();
                msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
                msg.msg_iovlen = bufs.len().min(libc::UIO_MAXIOV as usize) as _;
                libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL)
            }
        })
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // SAFETY: plain syscall on our descriptor.
        if unsafe { libc::shutdown(self.fd, libc::SHUT_WR) } < 0 {
            return Poll::Ready(Err(io::Error::last_os_error()));
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for NgxSocket {
    fn drop(&mut self) {
        if bridge::on_nginx_thread() {
            // SAFETY: our connection, on the nginx thread: nginx deletes its events (posted ones
            // included) and closes the descriptor; then nothing refers to the waker cell.
            unsafe {
                ngx_close_connection(self.c);
                drop(Box::from_raw(self.wakers));
            }
        } else {
            // Never touch nginx off its thread: close the descriptor (which also removes it from
            // epoll) and leak the connection slot and the waker cell a stale event could read.
            // SAFETY: our descriptor.
            unsafe { libc::close(self.fd) };
            self.wakers = ptr::null_mut();
        }
    }
}
