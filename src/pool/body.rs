//! [`FpmBody`]: the rest of a FastCGI response, read from the socket only as the caller asks
//! for chunks, so a slow client slows PHP-FPM down instead of filling memory.

use std::time::Duration;

use bytes::{Bytes, BytesMut};

use super::conn::Conn;
use super::exchange::{log_stderr, read_some};
use crate::error::EngineError;
use crate::fastcgi::{Event, ProtocolStatus, ResponseDecoder};

/// A streaming FastCGI response body. Holds its pooled connection until the END_REQUEST
/// record; dropping it earlier closes the connection (it is never reused mid-response).
pub struct FpmBody {
    conn: Option<Conn>,
    decoder: ResponseDecoder,
    buf: BytesMut,
    pending: Bytes,
    read_timeout: Duration,
}

impl std::fmt::Debug for FpmBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FpmBody").field("done", &self.conn.is_none()).finish()
    }
}

impl FpmBody {
    pub(super) fn new(conn: Conn, decoder: ResponseDecoder, buf: BytesMut, pending: Bytes, read_timeout: Duration) -> Self {
        FpmBody { conn: Some(conn), decoder, buf, pending, read_timeout }
    }

    /// The next chunk of STDOUT; `None` after a clean END_REQUEST. An error means the
    /// response is truncated (the connection is closed).
    pub async fn next_chunk(&mut self) -> Option<Result<Bytes, EngineError>> {
        if !self.pending.is_empty() {
            return Some(Ok(std::mem::take(&mut self.pending)));
        }
        loop {
            let conn = self.conn.as_mut()?;
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(Event::Stdout(data))) => return Some(Ok(data)),
                Ok(Some(Event::Stderr(text))) => log_stderr(&text),
                Ok(Some(Event::EndRequest { protocol_status, app_status })) => {
                    let mut conn = self.conn.take()?;
                    if protocol_status == ProtocolStatus::RequestComplete && self.buf.is_empty() {
                        conn.mark_reusable();
                        return None;
                    }
                    return Some(Err(EngineError::Protocol(format!(
                        "END_REQUEST with protocol status {protocol_status:?} (app status {app_status})"
                    ))));
                }
                Ok(Some(Event::GetValuesResult(_))) => {}
                Ok(None) => match read_some(conn.stream(), &mut self.buf, self.read_timeout).await {
                    Ok(0) => {
                        self.conn = None;
                        return Some(Err(EngineError::Unreachable(
                            "PHP-FPM closed the connection mid-response".into(),
                        )));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        self.conn = None;
                        return Some(Err(e));
                    }
                },
                Err(e) => {
                    self.conn = None;
                    return Some(Err(EngineError::Protocol(format!("bad FastCGI record from PHP-FPM: {e}"))));
                }
            }
        }
    }
}
