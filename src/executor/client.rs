//! The client side: one request to the executor pool, from any process holding the socket's
//! name (an nginx worker, the harness). One connection per request (an executor serves one
//! connection at a time; a kept-alive idle connection would hold an executor away from the
//! shared queue, as php-fpm children are held by idle FastCGI keep-alive connections).
//!
//! Everything read back is untrusted ([`wire::decode_frame`] checks every length). An
//! executor that dies before the end of its response (crash, SIGKILL) is an EOF: 502, or 504
//! when the request had run for the terminate timeout (the supervisor killed it).

use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use super::scoreboard::Scoreboard;
use super::sys;
use super::wire::{self, Frame};
use crate::cgi::{BodyPart, Params, RequestBody, ResponseHead, Script};
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
        Client { cfg: Arc::new(cfg), board }
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
        let inflight = Inflight::new(self.board.clone());
        let started = Instant::now();
        let mut stream = self.connect().await?;
        let mut head = BytesMut::with_capacity(2048);
        wire::encode_request(
            &mut head,
            sys::monotonic_ns(),
            body.len(),
            params,
            script.filename.as_os_str().as_encoded_bytes(),
            &script.script_name,
            &script.path_info,
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
        let mut body = ExecBody {
            stream,
            buf: BytesMut::with_capacity(32 * 1024),
            done: false,
            started,
            cfg: Arc::clone(&self.cfg),
            _inflight: inflight,
        };
        match body.next_frame().await? {
            Frame::Head(h) => Ok((h, body)),
            Frame::Fail(kind, msg) => Err(fail_error(kind, msg)),
            _ => Err(EngineError::Protocol("executor sent body bytes before the head".into())),
        }
    }
}

fn fail_error(kind: u8, msg: String) -> EngineError {
    if kind == wire::FAIL_OVERLOADED {
        EngineError::Overloaded(msg)
    } else {
        EngineError::Internal(format!("executor: {msg}"))
    }
}

/// The streaming body of an executor's response. Dropping it early closes the connection: the
/// executor's next write fails and PHP sees an aborted connection.
#[derive(Debug)]
pub struct ExecBody {
    stream: Stream,
    buf: BytesMut,
    done: bool,
    started: Instant,
    cfg: Arc<ClientConfig>,
    _inflight: Inflight,
}

impl ExecBody {
    async fn next_frame(&mut self) -> Result<Frame, EngineError> {
        loop {
            match wire::decode_frame(&mut self.buf) {
                Ok(Some(f)) => return Ok(f),
                Ok(None) => {}
                Err(e) => return Err(EngineError::Protocol(format!("executor: {}", e.0))),
            }
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(32 * 1024);
            }
            let read = tokio::time::timeout(self.cfg.read_timeout, self.stream.read_buf(&mut self.buf)).await;
            match read {
                Ok(Ok(0)) => return Err(self.eof_error()),
                Ok(Ok(_)) => {}
                Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionReset => return Err(self.eof_error()),
                Ok(Err(e)) => return Err(EngineError::Unreachable(format!("reading from an executor: {e}"))),
                Err(_) => {
                    return Err(EngineError::Timeout(format!(
                        "no response bytes from the executor for {:?}",
                        self.cfg.read_timeout
                    )))
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

    /// The next chunk of the body; `None` at the end. An error means the response is cut.
    pub async fn next_chunk(&mut self) -> Option<Result<Bytes, EngineError>> {
        if self.done {
            return None;
        }
        loop {
            match self.next_frame().await {
                Ok(Frame::Data(b)) if b.is_empty() => continue,
                Ok(Frame::Data(b)) => return Some(Ok(b)),
                Ok(Frame::End) => {
                    self.done = true;
                    return None;
                }
                Ok(Frame::Fail(kind, msg)) => {
                    self.done = true;
                    return Some(Err(fail_error(kind, msg)));
                }
                Ok(Frame::Head(_)) => {
                    self.done = true;
                    return Some(Err(EngineError::Protocol("executor sent a second head".into())));
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// The next chunk of `body`, with the body handed back (so the read can outlive one poll).
type ChunkFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = (ExecBody, Option<Result<Bytes, EngineError>>)> + Send>>;

/// An [`ExecBody`] behind a poll method ([`PolledExecBody::poll_chunk`]): the read in
/// progress (and its read timeout) lives across polls, so a caller that builds nothing per
/// poll — nginx's bridge — neither restarts the timer nor loses bytes. Dropping it drops the
/// body (the executor sees the client gone).
pub struct PolledExecBody {
    body: Option<ExecBody>,
    reading: Option<ChunkFuture>,
}

impl std::fmt::Debug for PolledExecBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolledExecBody").field("reading", &self.reading.is_some()).finish()
    }
}

impl PolledExecBody {
    /// Wraps `body`.
    pub fn new(body: ExecBody) -> Self {
        PolledExecBody { body: Some(body), reading: None }
    }

    /// Polls for the next chunk: `Ready(None)` at the end, an error when the response is cut.
    pub fn poll_chunk(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Bytes, EngineError>>> {
        if self.reading.is_none() {
            let Some(mut body) = self.body.take() else {
                return std::task::Poll::Ready(None);
            };
            self.reading = Some(Box::pin(async move {
                let chunk = body.next_chunk().await;
                (body, chunk)
            }));
        }
        let reading = self.reading.as_mut().expect("set above");
        match reading.as_mut().poll(cx) {
            std::task::Poll::Ready((body, chunk)) => {
                self.reading = None;
                self.body = Some(body);
                std::task::Poll::Ready(chunk)
            }
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }
}
