//! One concurrency slot: a keep-alive HTTP/1.1 connection (reconnected after errors or a
//! server-side close) sending one request at a time, paced by a [`Pace`] (closed or open loop).
//!
//! The hyper connection future is polled in the slot's own task (no `tokio::spawn` per
//! connection), so a response wakes exactly one task.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::args::Target;
use super::stats::{ErrorKind, Stats};

type Body = Full<bytes::Bytes>;

/// Decides when each request is sent.
pub trait Pace: Send + 'static {
    /// Waits until the next request is due. Returns the instant its latency is measured
    /// from, or `None` when no more requests are due before the end of the run.
    fn next(&mut self) -> impl Future<Output = Option<Instant>> + Send;
}

/// Where a slot records what it measured: its own [`Stats`], or statistics shared by all the
/// slots of one thread (one histogram per thread keeps the working set in cache).
pub trait Sink {
    /// Runs `f` on the statistics.
    fn with(&mut self, f: impl FnOnce(&mut Stats));
}

impl Sink for Stats {
    fn with(&mut self, f: impl FnOnce(&mut Stats)) {
        f(self)
    }
}

impl Sink for std::rc::Rc<std::cell::RefCell<Stats>> {
    fn with(&mut self, f: impl FnOnce(&mut Stats)) {
        f(&mut self.borrow_mut())
    }
}

/// Counters shared with the progress line.
#[derive(Debug, Default)]
pub struct Progress {
    /// Responses received (warm-up included).
    pub responses: AtomicU64,
    /// Failed requests (warm-up included).
    pub errors: AtomicU64,
}

/// The time window of a run.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Start of measurement (after the warm-up).
    pub measure_from: Instant,
    /// End of the run: requests not complete by then are abandoned, not recorded.
    pub end: Instant,
}

/// How a request ended when it did not yield a response.
enum Failure {
    /// The run ended first (not recorded).
    Ended,
    /// The connection was closed cleanly before the request was sent: reconnect, no error.
    Closed,
    /// A recorded error.
    Error(ErrorKind),
}

/// Runs one slot until `window.end`, recording into `stats`.
pub async fn run<P: Pace, S: Sink>(target: Arc<Target>, window: Window, mut pace: P, progress: Arc<Progress>, stats: &mut S) {
    let mut backoff = Duration::from_millis(1);
    while Instant::now() < window.end {
        let (sender, conn) = match connect(&target, window.end).await {
            Ok(pair) => pair,
            Err(None) => break,
            Err(Some(kind)) => {
                note_error(stats, &progress, window, kind);
                let _ = tokio::time::timeout_at(window.end, tokio::time::sleep(backoff)).await;
                backoff = (backoff * 2).min(Duration::from_millis(100));
                continue;
            }
        };
        backoff = Duration::from_millis(1);
        // Awaited by value inside the block, so the connection (and its request receiver) is
        // dropped as soon as it ends: the sender then sees the close instead of waiting forever.
        let mut conn = pin!(async move {
            let _ = conn.await;
        });
        let mut requests = pin!(requests(&target, window, &mut pace, &progress, &mut *stats, sender));
        let mut conn_done = false;
        let over = loop {
            tokio::select! {
                biased;
                over = &mut requests => break over,
                _ = &mut conn, if !conn_done => conn_done = true,
            }
        };
        if over {
            break;
        }
    }
}

async fn connect(
    target: &Target,
    end: Instant,
) -> Result<(SendRequest<Body>, http1::Connection<TokioIo<TcpStream>, Body>), Option<ErrorKind>> {
    let limit = (Instant::now() + target.timeout).min(end);
    let stream = match tokio::time::timeout_at(limit, TcpStream::connect(target.addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(_)) => return Err(Some(ErrorKind::Connect)),
        Err(_) if Instant::now() >= end => return Err(None),
        Err(_) => return Err(Some(ErrorKind::Timeout)),
    };
    let _ = stream.set_nodelay(true);
    http1::Builder::new().handshake(TokioIo::new(stream)).await.map_err(|_| Some(ErrorKind::Connect))
}

/// Sends requests on one connection; returns true when the run is over, false to reconnect.
async fn requests<P: Pace, S: Sink>(
    target: &Target,
    window: Window,
    pace: &mut P,
    progress: &Progress,
    stats: &mut S,
    mut sender: SendRequest<Body>,
) -> bool {
    loop {
        let Some(from) = pace.next().await else { return true };
        match exchange(target, window, &mut sender).await {
            Ok((status, bytes)) => {
                let done = Instant::now();
                progress.responses.fetch_add(1, Relaxed);
                if from >= window.measure_from {
                    stats.with(|s| s.record(status, done.saturating_duration_since(from), bytes));
                }
            }
            Err(Failure::Ended) => return true,
            Err(Failure::Closed) => return false,
            Err(Failure::Error(kind)) => {
                note_error(stats, progress, window, kind);
                return false;
            }
        }
    }
}

/// One request/response on `sender`: the status and the body length.
async fn exchange(target: &Target, window: Window, sender: &mut SendRequest<Body>) -> Result<(u16, u64), Failure> {
    if sender.ready().await.is_err() {
        return Err(Failure::Closed);
    }
    let mut req = Request::new(Full::new(target.body.clone()));
    *req.method_mut() = target.method.clone();
    *req.uri_mut() = target.uri.clone();
    *req.headers_mut() = target.headers.clone();
    let limit = (Instant::now() + target.timeout).min(window.end);
    let work = async {
        let resp = sender.send_request(req).await.map_err(|e| Failure::Error(classify(&e)))?;
        let status = resp.status().as_u16();
        let mut body = resp.into_body();
        let mut bytes = 0u64;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Failure::Error(classify(&e)))?;
            if let Some(data) = frame.data_ref() {
                bytes += data.len() as u64;
            }
        }
        Ok((status, bytes))
    };
    match tokio::time::timeout_at(limit, work).await {
        Ok(result) => result,
        Err(_) if Instant::now() >= window.end => Err(Failure::Ended),
        Err(_) => Err(Failure::Error(ErrorKind::Timeout)),
    }
}

fn note_error(stats: &mut impl Sink, progress: &Progress, window: Window, kind: ErrorKind) {
    progress.errors.fetch_add(1, Relaxed);
    let now = Instant::now();
    if now >= window.measure_from && now < window.end {
        stats.with(|s| s.record_error(kind));
    }
}

/// Maps a hyper error to an [`ErrorKind`].
fn classify(e: &hyper::Error) -> ErrorKind {
    if e.is_timeout() {
        return ErrorKind::Timeout;
    }
    if e.is_incomplete_message() || e.is_canceled() || e.is_closed() {
        return ErrorKind::Reset;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            return match io.kind() {
                K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => ErrorKind::Reset,
                K::TimedOut => ErrorKind::Timeout,
                _ => ErrorKind::Other,
            };
        }
        source = s.source();
    }
    ErrorKind::Other
}
