//! One request on its way through the PHP thread: built on the async side ([`Job::new`], which
//! only moves the request in: no copies, no C strings on the caller's thread), run on the PHP
//! thread ([`Job::run`]) where the SAPI callbacks hand the head and the body back through the
//! request's [`Handoff`]. The head waits for the first chunk (16 KiB of output, a `flush()`, or
//! the end), so a small response reaches the async side in one handover.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::BytesMut;

use super::handoff::{Handoff, Receiver, Sender};
use super::ffi::{self, Outcome, Sapi};
use crate::cgi::{BodyReader, Params, RequestBody, ResponseHead, Script};
use crate::config::RequestIni;
use crate::error::EngineError;

/// Output is sent to the client in chunks of about this size (or earlier, on `flush()`).
const CHUNK: usize = 16 * 1024;

/// A request for the PHP thread.
pub(crate) struct Job {
    params: Params,
    script: Script,
    body: RequestBody,
    ini: Option<Arc<RequestIni>>,
    tx: Sender,
}

impl Job {
    /// A job running `script` with `params` (built by [`crate::cgi::build_params`]), and the
    /// waiter's end of its handoff.
    pub(crate) fn new(params: Params, script: Script, body: RequestBody, ini: Option<Arc<RequestIni>>) -> (Job, Receiver) {
        let (tx, rx) = Handoff::pair();
        (Job { params, script, body, ini, tx }, rx)
    }

    /// Claims the job for the PHP thread; false when its waiter already gave up.
    pub(crate) fn claim(&self) -> bool {
        self.tx.claim()
    }

    /// Runs the request to the end (PHP thread only), building its C form in `request` (kept
    /// by the PHP thread across jobs for its buffers).
    pub(crate) fn run(self, request: &mut ffi::Request, finishing: &AtomicBool) {
        fill_request(request, &self.params, &self.script);
        let mut running = Running {
            finished: false,
            finishing,
            tx: self.tx,
            head: None,
            lines: Vec::new(),
            buf: BytesMut::new(),
            gone: false,
            body: self.body.into_reader(),
        };
        let mut ini = self.ini.as_deref().map(ffi::RequestIni::new);
        let outcome = ffi::execute(request, &mut running, ini.as_mut());
        if let Some(ini) = &ini {
            ini.log_refused();
        }
        running.finish(outcome);
    }
}

/// The params [`fill_request`] reads, in the order of its `found` array.
const WANTED: [&[u8]; 10] = [
    b"REQUEST_METHOD",
    b"QUERY_STRING",
    b"REQUEST_URI",
    b"CONTENT_TYPE",
    b"CONTENT_LENGTH",
    b"SCRIPT_FILENAME",
    b"HTTP_COOKIE",
    b"HTTP_AUTHORIZATION",
    b"SCRIPT_NAME",
    b"PATH_INFO",
];

/// Writes the request's fields in C form into `req`, in one pass over the params (the last
/// value of a repeated name wins, as in `$_SERVER`).
pub(super) fn fill_request(req: &mut ffi::Request, params: &Params, script: &Script) {
    req.clear();
    let mut found: [Option<&[u8]>; WANTED.len()] = [None; WANTED.len()];
    // One scan for NUL bytes over all params; only when there is one is each string checked.
    let checked = params.has_nul();
    for (name, value) in params.iter() {
        if name.is_empty() || checked && memchr::memchr(0, name).is_some() {
            continue;
        }
        if let Some(i) = WANTED.iter().position(|w| *w == name) {
            found[i] = Some(value);
        }
        if checked {
            req.add_param(name, value);
        } else {
            req.add_param_plain(name, value);
        }
    }
    let [method, query, uri, content_type, content_length, filename, cookie, authorization, script_name, path_info] =
        found;
    req.content_length =
        content_length.and_then(|v| std::str::from_utf8(v).ok()).and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
    req.method = req.add(&[non_empty(method).unwrap_or(b"GET")]).0;
    req.query_string = req.add(&[query.unwrap_or(b"")]).0;
    req.request_uri = req.add(&[uri.unwrap_or(b"")]).0;
    req.content_type = non_empty(content_type).map(|v| req.add(&[v]).0);
    req.script_filename = req.add(&[filename.unwrap_or(script.filename.as_os_str().as_encoded_bytes())]).0;
    req.cookie = non_empty(cookie).map(|v| req.add(&[v]).0);
    req.authorization = non_empty(authorization).map(|v| req.add(&[v]).0);
    req.php_self = req
        .add(&[script_name.unwrap_or(script.script_name.as_bytes()), path_info.unwrap_or(script.path_info.as_bytes())])
        .0;
}

/// `v` unless it is empty.
fn non_empty(v: Option<&[u8]>) -> Option<&[u8]> {
    v.filter(|v| !v.is_empty())
}

/// The SAPI callbacks of the running request.
struct Running<'a> {
    /// `fastcgi_finish_request()` ended the response; the script runs on, its output goes nowhere.
    finished: bool,
    /// The PHP thread's "finishing" gauge, set while a finished request runs on.
    finishing: &'a AtomicBool,
    tx: Sender,
    /// The head PHP has produced, held until the first chunk goes (or the end).
    head: Option<ResponseHead>,
    lines: Vec<Vec<u8>>,
    buf: BytesMut,
    gone: bool,
    body: BodyReader,
}

impl Running<'_> {
    /// Hands over the held head and the buffered bytes (blocking while the client is slow).
    fn send_buf(&mut self, end: bool) -> bool {
        if self.gone {
            return false;
        }
        let chunk = (!self.buf.is_empty()).then(|| Ok(self.buf.split().freeze()));
        let head = self.head.take().map(Ok);
        if (head.is_some() || chunk.is_some() || end) && !self.tx.send(head, chunk, end) {
            self.gone = true;
        }
        !self.gone
    }

    fn finish(mut self, outcome: Outcome) {
        if self.finished {
            // The client has its whole response; what went wrong afterwards is in PHP's log.
            return;
        }
        let error = match outcome {
            Outcome::Ok => None,
            Outcome::StartupFailed => Some("php_request_startup failed"),
            Outcome::NotStarted => Some("embedded PHP is not started"),
        };
        if self.head.is_none() && !self.tx.head_sent() {
            let msg = error.unwrap_or("PHP ended without sending headers");
            self.tx.send(Some(Err(EngineError::Internal(msg.into()))), None, true);
            return;
        }
        match error {
            Some(msg) => {
                self.send_buf(false);
                self.tx.send(None, Some(Err(EngineError::Internal(msg.into()))), true);
            }
            None => {
                self.send_buf(true);
            }
        }
    }
}

impl Sapi for Running<'_> {
    fn write(&mut self, data: &[u8]) -> bool {
        if self.finished {
            return true;
        }
        if self.gone {
            return false;
        }
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            return self.send_buf(false);
        }
        true
    }

    fn flush(&mut self) -> bool {
        self.finished || self.send_buf(false)
    }

    fn finish_request(&mut self) -> bool {
        if self.finished {
            return !self.gone;
        }
        if self.head.is_none() && !self.tx.head_sent() && !self.gone {
            // PHP gave no headers (cannot happen after php_header()): end like a script would.
            self.tx.send(Some(Err(EngineError::Internal("PHP finished without sending headers".into()))), None, true);
            self.gone = true;
        }
        // Set before the end is handed over: a request the client sends next already sees it.
        self.finishing.store(true, Ordering::SeqCst);
        let ok = self.send_buf(true);
        self.finished = true;
        ok
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
        if self.tx.is_gone() {
            self.gone = true;
            return false;
        }
        self.head = Some(head);
        true
    }

    /// PHP's `read_post`: fills `buf` across body parts (PHP takes a short read as the end).
    fn read_body(&mut self, buf: &mut [u8]) -> usize {
        match self.body.fill(buf) {
            Ok(n) => n,
            Err(e) => {
                super::log::emit(3, &format!("request body cut short: {e}"));
                0
            }
        }
    }
}
