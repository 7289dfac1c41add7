//! One FastCGI request/response exchange on a pooled connection: write BEGIN_REQUEST, PARAMS
//! and STDIN, then read records until the CGI response head is complete.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::OwnedSemaphorePermit;

use super::conn::Conn;
use super::{FpmBody, Pool, Stream, Timeouts};
use crate::cgi::{BodyPart, HeadParse, Params, RequestBody, ResponseHead};
use crate::error::EngineError;
use crate::fastcgi::{self, Event, ResponseDecoder};

/// FastCGI request id: one request at a time per connection.
pub(super) const REQUEST_ID: u16 = 1;

/// Bodies up to this size are encoded with the params into one buffer, so a stale kept-alive
/// connection can be retried with the same bytes.
const BUFFERED_BODY_MAX: u64 = 256 * 1024;

/// STDIN chunk size when streaming a large body.
const STDIN_CHUNK: usize = 64 * 1024 - 8;

/// Why an attempt failed, and whether a retry on a fresh connection is allowed.
struct Failure {
    error: EngineError,
    /// No response byte was seen and the request bytes can be sent again.
    retryable: bool,
}

pub(super) async fn run(
    pool: &Pool,
    permit: OwnedSemaphorePermit,
    params: &Params,
    body: RequestBody,
    timeouts: &Timeouts,
    head_limit: Option<usize>,
) -> Result<(ResponseHead, FpmBody), EngineError> {
    let mut head = BytesMut::with_capacity(1024 + params.len() * 48);
    fastcgi::encode_begin_request(&mut head, REQUEST_ID, true);
    fastcgi::encode_params(&mut head, REQUEST_ID, params);

    let buffered = body.len() <= BUFFERED_BODY_MAX && body_in_memory(&body);
    let mut streamed = None;
    if buffered {
        for part in body.into_parts() {
            if let BodyPart::Bytes(b) = part {
                fastcgi::encode_stdin(&mut head, REQUEST_ID, &b);
            }
        }
        fastcgi::encode_stdin_end(&mut head, REQUEST_ID);
    } else {
        streamed = Some(body);
    }
    let request = head.freeze();

    let conn = pool.checkout(permit, timeouts.connect).await.map_err(|(e, _)| e)?;
    match attempt(timeouts, head_limit, conn, &request, streamed.take()).await {
        Ok(ok) => Ok(ok),
        Err((failure, Some(conn))) if failure.retryable && conn.reused && buffered => {
            crate::log!(Debug, "fpm", "stale kept-alive connection ({}), retrying on a fresh one", failure.error);
            pool.shared.retried_total.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let conn = pool.connect_fresh(conn.into_permit(), timeouts.connect).await.map_err(|(e, _)| e)?;
            attempt(timeouts, head_limit, conn, &request, None).await.map_err(|(f, _)| f.error)
        }
        Err((failure, _)) => Err(failure.error),
    }
}

/// True when the body has no file parts (so it can be encoded up front and re-sent on retry).
fn body_in_memory(body: &RequestBody) -> bool {
    body.is_empty() || body.parts().iter().all(|p| matches!(p, BodyPart::Bytes(_)))
}

async fn attempt(
    cfg: &Timeouts,
    head_limit: Option<usize>,
    mut conn: Conn,
    request: &Bytes,
    streamed: Option<RequestBody>,
) -> Result<(ResponseHead, FpmBody), (Failure, Option<Conn>)> {
    conn.start_request();
    let send = async {
        write_all(conn.stream(), request, cfg.send).await?;
        if let Some(body) = streamed {
            send_body(conn.stream(), body, cfg.send).await?;
        }
        Ok::<(), EngineError>(())
    };
    if let Err(error) = send.await {
        let retryable = !matches!(error, EngineError::Timeout(_));
        return Err((Failure { error, retryable }, Some(conn)));
    }

    let mut decoder = ResponseDecoder::new(REQUEST_ID);
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut head_buf = BytesMut::new();
    let mut got_bytes = false;
    loop {
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(Event::Stdout(data))) => {
                    head_buf.extend_from_slice(&data);
                    let parsed = ResponseHead::parse(&head_buf);
                    let head_len = match &parsed {
                        Ok(HeadParse::Complete { body_start, .. }) => *body_start,
                        _ => head_buf.len(),
                    };
                    if head_limit.is_some_and(|limit| head_len > limit) {
                        let error = EngineError::Protocol(format!(
                            "PHP-FPM sent too big a response head (more than {} bytes)",
                            head_limit.unwrap_or_default()
                        ));
                        return Err((Failure { error, retryable: false }, None));
                    }
                    match parsed {
                        Ok(HeadParse::Complete { head, body_start }) => {
                            let rest = head_buf.split_off(body_start).freeze();
                            let body = FpmBody::new(conn, decoder, buf, rest, cfg.read);
                            return Ok((head, body));
                        }
                        Ok(HeadParse::Incomplete) => {}
                        Err(error) => return Err((Failure { error, retryable: false }, None)),
                    }
                }
                Ok(Some(Event::Stderr(text))) => log_stderr(&text),
                Ok(Some(Event::EndRequest { app_status, .. })) => {
                    let error = EngineError::Protocol(format!(
                        "PHP-FPM ended the request (app status {app_status}) before a complete response head"
                    ));
                    return Err((Failure { error, retryable: false }, None));
                }
                Ok(Some(Event::GetValuesResult(_))) => {}
                Ok(None) => break,
                Err(e) => {
                    let error = EngineError::Protocol(format!("bad FastCGI record from PHP-FPM: {e}"));
                    return Err((Failure { error, retryable: false }, None));
                }
            }
        }
        match read_some(conn.stream(), &mut buf, cfg.read).await {
            Ok(0) => {
                let error = EngineError::Unreachable("PHP-FPM closed the connection before responding".into());
                return Err((Failure { error, retryable: !got_bytes }, Some(conn)));
            }
            Ok(_) => {
                if !got_bytes {
                    got_bytes = true;
                    conn.got_first_byte();
                }
            }
            Err(error) => {
                let retryable = !got_bytes && !matches!(error, EngineError::Timeout(_));
                return Err((Failure { error, retryable }, Some(conn)));
            }
        }
    }
}

/// Logs what PHP wrote to FastCGI STDERR (PHP warnings, notices), one event per line.
pub(super) fn log_stderr(text: &[u8]) {
    for line in String::from_utf8_lossy(text).lines().filter(|l| !l.trim().is_empty()) {
        crate::log!(Warn, "fpm", "stderr: {line}");
    }
}

async fn write_all(stream: &mut Stream, data: &[u8], timeout: Duration) -> Result<(), EngineError> {
    match tokio::time::timeout(timeout, stream.write_all(data)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(EngineError::from_io("send to PHP-FPM", &e)),
        Err(_) => Err(EngineError::Timeout(format!("send to PHP-FPM timed out after {timeout:?}"))),
    }
}

/// Streams a large body as STDIN records, read with the one body reader
/// ([`crate::cgi::BodyReader`]: memory and file parts, never the whole body in memory). File
/// parts are nginx's client-body temp file on local disk, read synchronously in chunks, as
/// nginx's own output chain reads it for `fastcgi_pass`.
async fn send_body(stream: &mut Stream, body: RequestBody, timeout: Duration) -> Result<(), EngineError> {
    let mut chunk = vec![0u8; (body.len() as usize).clamp(1, STDIN_CHUNK)];
    let mut reader = body.into_reader();
    let mut out = BytesMut::with_capacity(chunk.len() + 16);
    loop {
        let n = reader.fill(&mut chunk).map_err(|e| EngineError::Internal(format!("request body: {e}")))?;
        if n > 0 {
            out.clear();
            fastcgi::encode_stdin(&mut out, REQUEST_ID, &chunk[..n]);
            write_all(stream, &out, timeout).await?;
        }
        if n < chunk.len() {
            break;
        }
    }
    out.clear();
    fastcgi::encode_stdin_end(&mut out, REQUEST_ID);
    write_all(stream, &out, timeout).await
}

/// Reads more bytes into `buf` within `timeout`; Ok(0) at EOF.
pub(super) async fn read_some(stream: &mut Stream, buf: &mut BytesMut, timeout: Duration) -> Result<usize, EngineError> {
    if buf.capacity() - buf.len() < 8 * 1024 {
        buf.reserve(16 * 1024);
    }
    match tokio::time::timeout(timeout, stream.read_buf(buf)).await {
        Ok(Ok(n)) => Ok(n),
        Ok(Err(e)) => Err(EngineError::from_io("read from PHP-FPM", &e)),
        Err(_) => Err(EngineError::Timeout(format!("read from PHP-FPM timed out after {timeout:?}"))),
    }
}

/// Sends GET_VALUES on `stream` and waits (at most `limit` per step) for GET_VALUES_RESULT.
/// PHP-FPM answers and then closes the connection, so `stream` is used up.
pub(super) async fn get_values(mut stream: Stream, limit: Duration) -> Result<(), EngineError> {
    let mut out = BytesMut::new();
    fastcgi::encode_get_values(&mut out, &["FCGI_MPXS_CONNS"]);
    write_all(&mut stream, &out, limit).await?;
    let mut decoder = ResponseDecoder::new(0);
    let mut buf = BytesMut::with_capacity(256);
    loop {
        match decoder.decode(&mut buf) {
            Ok(Some(Event::GetValuesResult(_))) => return Ok(()),
            Ok(Some(_)) => {}
            Ok(None) => {
                if read_some(&mut stream, &mut buf, limit).await? == 0 {
                    return Err(EngineError::Unreachable("PHP-FPM closed the connection during GET_VALUES".into()));
                }
            }
            Err(e) => return Err(EngineError::Protocol(format!("bad GET_VALUES answer: {e}"))),
        }
    }
}
