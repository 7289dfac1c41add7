//! [`FpmBody`]: the rest of a FastCGI response, read from the socket only as the caller asks
//! for chunks, so a slow client slows PHP-FPM down instead of filling memory.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncReadExt;
use tokio::time::{Instant, Sleep};

use super::conn::Conn;
use super::exchange::log_stderr;
use crate::error::EngineError;
use crate::fastcgi::{Event, ProtocolStatus, ResponseDecoder};

/// A streaming FastCGI response body. Holds its pooled connection until the END_REQUEST
/// record; dropping it earlier closes the connection (it is never reused mid-response).
///
/// The read timeout lives in the body ([`FpmBody::poll_chunk`]): it runs from the moment a read
/// has to wait until bytes arrive, across any number of polls, so a caller that polls only when
/// woken (the nginx bridge) sees it fire.
pub struct FpmBody {
    conn: Option<Conn>,
    decoder: ResponseDecoder,
    buf: BytesMut,
    pending: Bytes,
    read_timeout: Duration,
    /// The read timeout's timer, created on the first wait and reset for each later one.
    timer: Option<Pin<Box<Sleep>>>,
    /// The timer runs for the current wait (cleared when bytes arrive).
    waiting: bool,
}

impl std::fmt::Debug for FpmBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FpmBody").field("done", &self.conn.is_none()).finish()
    }
}

impl FpmBody {
    pub(super) fn new(conn: Conn, decoder: ResponseDecoder, buf: BytesMut, pending: Bytes, read_timeout: Duration) -> Self {
        FpmBody { conn: Some(conn), decoder, buf, pending, read_timeout, timer: None, waiting: false }
    }

    /// Polls for the next chunk of STDOUT: `Ready(None)` after a clean END_REQUEST, an error
    /// when the response is truncated (the connection is then closed): PHP-FPM closed it, sent
    /// a bad record, or sent nothing for the read timeout ([`EngineError::Timeout`]). Pending
    /// registers `cx`'s waker with the socket and the timer. Must be polled within a tokio
    /// runtime context (the timer).
    pub fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, EngineError>>> {
        if !self.pending.is_empty() {
            return Poll::Ready(Some(Ok(std::mem::take(&mut self.pending))));
        }
        loop {
            let Some(conn) = self.conn.as_mut() else { return Poll::Ready(None) };
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(Event::Stdout(data))) => return Poll::Ready(Some(Ok(data))),
                Ok(Some(Event::Stderr(text))) => log_stderr(&text),
                Ok(Some(Event::EndRequest { protocol_status, app_status })) => {
                    let Some(mut conn) = self.conn.take() else { return Poll::Ready(None) };
                    if protocol_status == ProtocolStatus::RequestComplete {
                        // Bytes after a clean END_REQUEST: php-fpm keeps writing on a kept-alive
                        // connection after fastcgi_finish_request() (the script's later output,
                        // another END_REQUEST). The response is complete; the connection is
                        // closed instead of reused.
                        if self.buf.is_empty() {
                            conn.mark_reusable();
                        }
                        return Poll::Ready(None);
                    }
                    return Poll::Ready(Some(Err(EngineError::Protocol(format!(
                        "END_REQUEST with protocol status {protocol_status:?} (app status {app_status})"
                    )))));
                }
                Ok(Some(Event::GetValuesResult(_))) => {}
                Ok(None) => {
                    if self.buf.capacity() - self.buf.len() < 8 * 1024 {
                        self.buf.reserve(16 * 1024);
                    }
                    // `read_buf` keeps no state between polls: a fresh one per poll is fine.
                    let read = std::pin::pin!(conn.stream().read_buf(&mut self.buf)).poll(cx);
                    match read {
                        Poll::Ready(Ok(0)) => {
                            self.conn = None;
                            return Poll::Ready(Some(Err(EngineError::Unreachable(
                                "PHP-FPM closed the connection mid-response".into(),
                            ))));
                        }
                        Poll::Ready(Ok(_)) => self.waiting = false,
                        Poll::Ready(Err(e)) => {
                            self.conn = None;
                            return Poll::Ready(Some(Err(EngineError::from_io("read from PHP-FPM", &e))));
                        }
                        Poll::Pending => {
                            if self.poll_timer(cx).is_ready() {
                                self.conn = None;
                                return Poll::Ready(Some(Err(EngineError::Timeout(format!(
                                    "read from PHP-FPM timed out after {:?}",
                                    self.read_timeout
                                )))));
                            }
                            return Poll::Pending;
                        }
                    }
                }
                Err(e) => {
                    self.conn = None;
                    return Poll::Ready(Some(Err(EngineError::Protocol(format!("bad FastCGI record from PHP-FPM: {e}")))));
                }
            }
        }
    }

    /// Starts the read timeout when a wait begins (one timer per body, reset per wait) and
    /// polls it.
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.waiting {
            self.waiting = true;
            let deadline = Instant::now() + self.read_timeout;
            match &mut self.timer {
                Some(timer) => timer.as_mut().reset(deadline),
                None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
        }
        match &mut self.timer {
            Some(timer) => timer.as_mut().poll(cx),
            None => Poll::Pending,
        }
    }

    /// The next chunk of STDOUT (see [`FpmBody::poll_chunk`]).
    pub async fn next_chunk(&mut self) -> Option<Result<Bytes, EngineError>> {
        std::future::poll_fn(|cx| self.poll_chunk(cx)).await
    }
}
