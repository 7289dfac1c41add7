//! The client side: one request to the executor pool, from any process holding the socket's
//! name (an nginx worker, the harness). One connection per request (an executor serves one
//! connection at a time; a kept-alive idle connection would hold an executor away from the
//! shared queue, as php-fpm children are held by idle FastCGI keep-alive connections).
//!
//! Everything read back is untrusted ([`wire::decode_frame`] checks every length). An
//! executor that dies before the end of its response (crash, SIGKILL) is an EOF: 502, or 504
//! when the request had run for the terminate timeout (the supervisor killed it).

use std::future::Future;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::time::Sleep;

use super::scoreboard::Scoreboard;
use super::shm::ShmClient;
use super::sys;
use super::wire::{self, Frame};
use crate::cgi::{BodyPart, Params, RequestBody, ResponseHead, Script};
use crate::config::RequestIni;
use crate::error::EngineError;
use crate::pool::{Address, Connector, Stream};

/// How a client reaches the pool.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The pool's socket (`Address::Unix`, an abstract name starting with a NUL byte).
    pub address: Address,
    /// Connect timeout (504).
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of the response (504).
    pub read_timeout: Duration,
    /// The pool's terminate timeout (to tell a killed executor, 504, from a crash, 502).
    pub terminate_timeout: Duration,
    /// Opens the connection instead of tokio (the nginx module's sockets on its event loop).
    pub connector: Option<Arc<dyn Connector>>,
}

/// A client of one executor pool. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    cfg: Arc<ClientConfig>,
    board: Option<Scoreboard>,
    /// The shared-memory transport's client of this process, when the pool uses it.
    shm: Option<Arc<ShmClient>>,
}

/// Counts a request in flight on the scoreboard while it lives.
#[derive(Debug)]
struct Inflight(Option<Scoreboard>);

impl Inflight {
    fn new(board: Option<Scoreboard>) -> Inflight {
        if let Some(b) = &board {
            b.inflight(1);
        }
        Inflight(board)
    }
}

impl Drop for Inflight {
    fn drop(&mut self) {
        if let Some(b) = &self.0 {
            b.inflight(-1);
        }
    }
}

impl Client {
    /// A client for `cfg`; `board` (the pool's scoreboard, when this process shares it) feeds
    /// [`Client::status`] and the queue gauge.
    pub fn new(cfg: ClientConfig, board: Option<Scoreboard>) -> Client {
        Client { cfg: Arc::new(cfg), board, shm: None }
    }

    /// A client over the shared-memory transport ([`super::shm`]): requests go through `shm`'s
    /// slots; `cfg`'s socket fields are unused.
    pub fn with_shm(cfg: ClientConfig, board: Option<Scoreboard>, shm: ShmClient) -> Client {
        Client { cfg: Arc::new(cfg), board, shm: Some(Arc::new(shm)) }
    }

    /// Which transport this client uses: `"shm"` or `"socket"`.
    pub fn transport(&self) -> &'static str {
        if self.shm.is_some() {
            "shm"
        } else {
            "socket"
        }
    }

    /// The pool now, if this process shares its scoreboard.
    pub fn status(&self) -> Option<super::PoolStatus> {
        self.board.as_ref().map(Scoreboard::snapshot)
    }

    async fn connect(&self) -> Result<Stream, EngineError> {
        let address = &self.cfg.address;
        let connecting = async {
            if let Some(c) = &self.cfg.connector {
                return c.connect(address).await.map(Stream::Host);
            }
            match address {
                Address::Unix(path) => UnixStream::connect(path).await.map(Stream::Unix),
                Address::Tcp(_) => Err(io::Error::new(io::ErrorKind::InvalidInput, "executors listen on a unix socket")),
            }
        };
        match tokio::time::timeout(self.cfg.connect_timeout, connecting).await {
            Ok(Ok(s)) => Ok(s),
            // A unix socket's full backlog: the shared queue is full.
            Ok(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                Err(EngineError::Overloaded("every executor is busy and the queue is full".into()))
            }
            Ok(Err(e)) => Err(EngineError::Unreachable(format!("executor pool: {e}"))),
            Err(_) => Err(EngineError::Timeout(format!("connect to the executor pool timed out after {:?}", self.cfg.connect_timeout))),
        }
    }

    /// Sends one request and waits for the response head; the body then streams through
    /// [`ExecBody`]. Errors: 503 queue full or queue timeout, 502 pool unreachable or executor
    /// died, 504 timeouts, 500 the request failed in PHP before a head.
    pub async fn execute(&self, params: &Params, script: &Script, body: RequestBody) -> Result<(ResponseHead, ExecBody), EngineError> {
        self.execute_with(params, script, body, None).await
    }

    /// [`Client::execute`] with ini settings for this request only (`fephp_php_value`,
    /// `fephp_php_admin_value`, `[php.values]`): they travel with the request and the executor
    /// applies them around it, as embedded PHP does.
    pub async fn execute_with(
        &self,
        params: &Params,
        script: &Script,
        body: RequestBody,
        ini: Option<&RequestIni>,
    ) -> Result<(ResponseHead, ExecBody), EngineError> {
        let inflight = Inflight::new(self.board.clone());
        if let Some(shm) = &self.shm {
            let (head, body) = shm.execute(params, script, body, sys::monotonic_ns(), ini).await?;
            return Ok((head, ExecBody { inner: BodyInner::Shm(body), _inflight: inflight }));
        }
        let started = Instant::now();
        let mut stream = self.connect().await?;
        let mut head = BytesMut::with_capacity(2048);
        wire::encode_request(
            &mut head,
            sys::monotonic_ns(),
            body.len(),
            params,
            script,
            ini,
        );
        // A small body goes in the same write as the head.
        let mut parts = body.into_parts();
        if parts.iter().all(|p| matches!(p, BodyPart::Bytes(_))) && parts.iter().map(BodyPart::len).sum::<u64>() <= 16 * 1024 {
            for p in parts.drain(..) {
                if let BodyPart::Bytes(b) = p {
                    head.extend_from_slice(&b);
                }
            }
        }
        let send = async {
            stream.write_all(&head).await?;
            for part in parts {
                match part {
                    BodyPart::Bytes(b) => stream.write_all(&b).await?,
                    BodyPart::File { file, offset, len } => {
                        let mut buf = vec![0u8; 64 * 1024];
                        let mut done = 0u64;
                        while done < len {
                            let want = (len - done).min(buf.len() as u64) as usize;
                            let n = file.read_at(&mut buf[..want], offset + done)?;
                            if n == 0 {
                                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "request body file ended early"));
                            }
                            stream.write_all(&buf[..n]).await?;
                            done += n as u64;
                        }
                    }
                }
            }
            stream.flush().await
        };
        match tokio::time::timeout(self.cfg.read_timeout, send).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(EngineError::Unreachable(format!("sending to an executor: {e}"))),
            Err(_) => return Err(EngineError::Timeout("sending to an executor timed out".into())),
        }
        let mut body = SocketBody {
            stream,
            buf: BytesMut::with_capacity(32 * 1024),
            done: false,
            started,
            cfg: Arc::clone(&self.cfg),
            timer: None,
            waiting: false,
        };
        match std::future::poll_fn(|cx| body.poll_frame(cx)).await? {
            Frame::Head(h) => Ok((h, ExecBody { inner: BodyInner::Socket(body), _inflight: inflight })),
            Frame::Fail(kind, msg) => Err(fail_error(kind, msg)),
            _ => Err(EngineError::Protocol("executor sent body bytes before the head".into())),
        }
    }
}

pub(super) fn fail_error(kind: u8, msg: String) -> EngineError {
    if kind == wire::FAIL_OVERLOADED {
        EngineError::Overloaded(msg)
    } else {
        EngineError::Internal(format!("executor: {msg}"))
    }
}

/// The streaming body of an executor's response (either transport). [`ExecBody::poll_chunk`]
/// keeps the read timeout's timer inside, reset only when bytes arrive, so a caller that polls
/// only when woken (nginx's bridge) builds nothing per poll and still sees the timeout fire.
/// Dropping it early ends the request at the executor (PHP sees an aborted connection).
#[derive(Debug)]
pub struct ExecBody {
    inner: BodyInner,
    _inflight: Inflight,
}

#[derive(Debug)]
enum BodyInner {
    Socket(SocketBody),
    Shm(super::shm::ShmBody),
}

/// The socket transport's body: one connection, frames read with the read timeout.
#[derive(Debug)]
struct SocketBody {
    stream: Stream,
    buf: BytesMut,
    done: bool,
    started: Instant,
    cfg: Arc<ClientConfig>,
    timer: Option<Pin<Box<Sleep>>>,
    waiting: bool,
}

impl SocketBody {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Result<Frame, EngineError>> {
        loop {
            match wire::decode_frame(&mut self.buf) {
                Ok(Some(f)) => return Poll::Ready(Ok(f)),
                Ok(None) => {}
                Err(e) => return Poll::Ready(Err(EngineError::Protocol(format!("executor: {}", e.0)))),
            }
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(32 * 1024);
            }
            // `read_buf` keeps no state between polls: a fresh one per poll is fine.
            let read = std::pin::pin!(self.stream.read_buf(&mut self.buf)).poll(cx);
            match read {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(self.eof_error())),
                Poll::Ready(Ok(_)) => self.waiting = false,
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::ConnectionReset => {
                    return Poll::Ready(Err(self.eof_error()))
                }
                Poll::Ready(Err(e)) => {
                    return Poll::Ready(Err(EngineError::Unreachable(format!("reading from an executor: {e}"))))
                }
                Poll::Pending => {
                    let deadline = tokio::time::Instant::now() + self.cfg.read_timeout;
                    if !self.waiting {
                        self.waiting = true;
                        match self.timer.as_mut() {
                            Some(t) => t.as_mut().reset(deadline),
                            None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
                        }
                    }
                    if self.timer.as_mut().expect("set above").as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Err(EngineError::Timeout(format!(
                            "no response bytes from the executor for {:?}",
                            self.cfg.read_timeout
                        ))));
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    fn eof_error(&self) -> EngineError {
        let t = self.cfg.terminate_timeout;
        if !t.is_zero() && self.started.elapsed() + Duration::from_millis(100) >= t {
            EngineError::Timeout(format!("the executor was killed after the request terminate timeout ({t:?})"))
        } else {
            EngineError::Unreachable("the executor ended before its response did (it crashed or was killed)".into())
        }
    }

    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, EngineError>>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            let frame = match self.poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(f) => f,
            };
            return Poll::Ready(match frame {
                Ok(Frame::Data(b)) if b.is_empty() => continue,
                Ok(Frame::Data(b)) => Some(Ok(b)),
                Ok(Frame::End) => {
                    self.done = true;
                    None
                }
                Ok(Frame::Fail(kind, msg)) => {
                    self.done = true;
                    Some(Err(fail_error(kind, msg)))
                }
                Ok(Frame::Head(_)) => {
                    self.done = true;
                    Some(Err(EngineError::Protocol("executor sent a second head".into())))
                }
                Err(e) => {
                    self.done = true;
                    Some(Err(e))
                }
            });
        }
    }
}

impl ExecBody {
    /// Polls for the next chunk: `Ready(None)` at the end, an error when the response is cut
    /// (the executor died: 502, was killed for the terminate timeout: 504, sent nothing for
    /// the read timeout: 504). Pending registers `cx`'s waker. Poll within a tokio runtime
    /// context (the timer).
    pub fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, EngineError>>> {
        match &mut self.inner {
            BodyInner::Socket(b) => b.poll_chunk(cx),
            BodyInner::Shm(b) => b.poll_chunk(cx),
        }
    }

    /// The next chunk of the body; `None` at the end (see [`ExecBody::poll_chunk`]).
    pub async fn next_chunk(&mut self) -> Option<Result<Bytes, EngineError>> {
        std::future::poll_fn(|cx| self.poll_chunk(cx)).await
    }
}
