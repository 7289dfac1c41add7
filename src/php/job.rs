//! One request on its way through the PHP thread: built on the async side ([`Job::new`]), run
//! on the PHP thread ([`Job::run`]) where the SAPI callbacks stream the head and the body back
//! through channels. Nothing here blocks a tokio worker: the PHP side uses `blocking_send`.

use std::collections::VecDeque;
use std::io::{Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, oneshot};

use super::ffi::{self, c_bytes, Outcome, Sapi};
use crate::cgi::{BodyPart, Params, RequestBody, ResponseHead, Script};
use crate::error::EngineError;

/// Output is sent to the client in chunks of about this size (or earlier, on `flush()`).
const CHUNK: usize = 16 * 1024;
/// Chunks in flight between the PHP thread and the client: past this, `echo` blocks.
pub(crate) const BODY_CHANNEL: usize = 8;

/// A job waits in the queue.
pub(crate) const QUEUED: u8 = 0;
/// The PHP thread took the job.
pub(crate) const RUNNING: u8 = 1;
/// The waiter gave up (queue timeout) before the PHP thread took it.
pub(crate) const CANCELLED: u8 = 2;

/// The response head, or why there is none.
pub(crate) type HeadResult = Result<ResponseHead, EngineError>;
/// One body chunk, or why the body ends early.
pub(crate) type Chunk = Result<Bytes, EngineError>;

/// A request for the PHP thread.
pub(crate) struct Job {
    request: ffi::Request,
    body: RequestBody,
    head_tx: oneshot::Sender<HeadResult>,
    body_tx: mpsc::Sender<Chunk>,
    state: Arc<AtomicU8>,
}

/// The async side's ends of a [`Job`].
pub(crate) struct JobHandle {
    /// Resolves when PHP sends its headers.
    pub head: oneshot::Receiver<HeadResult>,
    /// The body chunks.
    pub body: mpsc::Receiver<Chunk>,
    /// [`QUEUED`] / [`RUNNING`] / [`CANCELLED`].
    pub state: Arc<AtomicU8>,
}

impl Job {
    /// A job running `script` with `params` (built by [`crate::cgi::build_params`]).
    pub(crate) fn new(params: Params, script: &Script, body: RequestBody) -> (Job, JobHandle) {
        let (head_tx, head) = oneshot::channel();
        let (body_tx, body_rx) = mpsc::channel(BODY_CHANNEL);
        let state = Arc::new(AtomicU8::new(QUEUED));
        let request = c_request(&params, script);
        let job = Job { request, body, head_tx, body_tx, state: Arc::clone(&state) };
        (job, JobHandle { head, body: body_rx, state })
    }

    /// Claims the job for the PHP thread; false when its waiter already gave up.
    pub(crate) fn claim(&self) -> bool {
        self.state.compare_exchange(QUEUED, RUNNING, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// Runs the request to the end (PHP thread only).
    pub(crate) fn run(self) {
        let mut running = Running {
            head_tx: Some(self.head_tx),
            body_tx: self.body_tx,
            lines: Vec::new(),
            buf: BytesMut::new(),
            gone: false,
            body: BodyReader::new(self.body),
        };
        let outcome = ffi::execute(&self.request, &mut running);
        running.finish(outcome);
    }
}

/// The request's fields in C form.
fn c_request(params: &Params, script: &Script) -> ffi::Request {
    let get = |name: &str| params.get(name.as_bytes()).unwrap_or(b"");
    let non_empty = |name: &str| params.get(name.as_bytes()).filter(|v| !v.is_empty()).map(c_bytes);
    let content_length = std::str::from_utf8(get("CONTENT_LENGTH")).ok().and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
    let script_filename = params
        .get(b"SCRIPT_FILENAME")
        .map(c_bytes)
        .unwrap_or_else(|| c_bytes(script.filename.as_os_str().as_encoded_bytes()));
    let mut php_self = params.get(b"SCRIPT_NAME").map(<[u8]>::to_vec).unwrap_or_else(|| script.script_name.as_bytes().to_vec());
    php_self.extend_from_slice(params.get(b"PATH_INFO").unwrap_or(script.path_info.as_bytes()));
    let method = params.get(b"REQUEST_METHOD").filter(|m| !m.is_empty()).unwrap_or(b"GET");
    ffi::Request {
        method: c_bytes(method),
        query_string: c_bytes(get("QUERY_STRING")),
        request_uri: c_bytes(get("REQUEST_URI")),
        content_type: non_empty("CONTENT_TYPE"),
        content_length,
        script_filename,
        cookie: non_empty("HTTP_COOKIE"),
        authorization: non_empty("HTTP_AUTHORIZATION"),
        php_self: c_bytes(&php_self),
        params: params
            .iter()
            .filter(|(n, _)| !n.is_empty() && !n.contains(&0))
            .map(|(n, v)| (c_bytes(n), c_bytes(v)))
            .collect(),
    }
}

/// The SAPI callbacks of the running request.
struct Running {
    head_tx: Option<oneshot::Sender<HeadResult>>,
    body_tx: mpsc::Sender<Chunk>,
    lines: Vec<Vec<u8>>,
    buf: BytesMut,
    gone: bool,
    body: BodyReader,
}

impl Running {
    /// Sends the buffered bytes (blocking while the client is slow).
    fn send_buf(&mut self) -> bool {
        if self.gone {
            return false;
        }
        if !self.buf.is_empty() {
            let chunk = self.buf.split().freeze();
            if self.body_tx.blocking_send(Ok(chunk)).is_err() {
                self.gone = true;
            }
        }
        !self.gone
    }

    fn finish(mut self, outcome: Outcome) {
        let error = match outcome {
            Outcome::Ok => None,
            Outcome::StartupFailed => Some("php_request_startup failed"),
            Outcome::NotStarted => Some("embedded PHP is not started"),
        };
        if let Some(tx) = self.head_tx.take() {
            let msg = error.unwrap_or("PHP ended without sending headers");
            let _ = tx.send(Err(EngineError::Internal(msg.into())));
            return;
        }
        if let Some(msg) = error {
            let _ = self.body_tx.blocking_send(Err(EngineError::Internal(msg.into())));
            return;
        }
        self.send_buf();
    }
}

impl Sapi for Running {
    fn write(&mut self, data: &[u8]) -> bool {
        if self.gone {
            return false;
        }
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            return self.send_buf();
        }
        true
    }

    fn flush(&mut self) -> bool {
        self.send_buf()
    }

    fn header(&mut self, line: &[u8]) {
        self.lines.push(line.to_vec());
    }

    fn headers_done(&mut self, status: u16) -> bool {
        let mut head = ResponseHead::new();
        head.set_status(status);
        for line in self.lines.drain(..) {
            if let Err(e) = head.push_line(&line) {
                super::log::emit(4, &format!("dropping response header: {e}"));
            }
        }
        let delivered = self.head_tx.take().is_some_and(|tx| tx.send(Ok(head)).is_ok());
        if !delivered {
            self.gone = true;
        }
        delivered
    }

    fn read_body(&mut self, buf: &mut [u8]) -> usize {
        self.body.read(buf)
    }
}

/// Pulls the request body part by part as PHP asks for it (`read_post`).
struct BodyReader {
    parts: VecDeque<BodyPart>,
    /// Bytes of the front file part already read.
    file_pos: u64,
}

impl BodyReader {
    fn new(body: RequestBody) -> Self {
        BodyReader { parts: body.into_parts().into(), file_pos: 0 }
    }

    fn read(&mut self, buf: &mut [u8]) -> usize {
        loop {
            let Some(front) = self.parts.front_mut() else { return 0 };
            match front {
                BodyPart::Bytes(b) => {
                    if b.is_empty() {
                        self.parts.pop_front();
                        continue;
                    }
                    let n = b.len().min(buf.len());
                    buf[..n].copy_from_slice(&b.split_to(n));
                    return n;
                }
                BodyPart::File { file, offset, len } => {
                    let left = *len - self.file_pos;
                    if left == 0 {
                        self.parts.pop_front();
                        self.file_pos = 0;
                        continue;
                    }
                    let want = (left.min(buf.len() as u64)) as usize;
                    let got = file.seek(SeekFrom::Start(*offset + self.file_pos)).and_then(|_| file.read(&mut buf[..want]));
                    match got {
                        Ok(0) | Err(_) => {
                            super::log::emit(3, "request body file ended early or could not be read");
                            self.parts.clear();
                            return 0;
                        }
                        Ok(n) => {
                            self.file_pos += n as u64;
                            return n;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn body_reader_reads_bytes_and_file_parts_in_order() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"xxHELLOyy").unwrap();
        let mut body = RequestBody::from_bytes(Bytes::from_static(b"ab"));
        body.push(BodyPart::File { file: f, offset: 2, len: 5 });
        body.push(BodyPart::Bytes(Bytes::from_static(b"cd")));
        let mut r = BodyReader::new(body);
        let mut out = Vec::new();
        let mut buf = [0u8; 3];
        loop {
            let n = r.read(&mut buf);
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(out, b"abHELLOcd");
    }
}
