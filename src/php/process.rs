//! PHP run on the calling thread of THIS process, for the executor processes of
//! [`crate::executor`]: module startup once (in the supervisor, before it forks), then one
//! request at a time on the process's main thread, its output handed to a synchronous
//! [`Output`] (the executor's socket). The same C shim and the same request cycle as the PHP
//! thread of [`super::Php`]; only the hand-over differs (no exchange, no async side).
//!
//! Call order in a process: [`startup`] (once; refused after [`super::Php::start`] and vice
//! versa), `fork`, then in each child [`start_watchdog`] and [`run`] per request.

use std::ffi::CString;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use once_cell::sync::OnceCell;

use super::ffi::{self, Outcome, Sapi};
use super::watchdog::Watchdog;
use super::{log, thread, PhpOptions, STARTED};
use crate::cgi::{BodyReader, Params, ResponseHead, Script};
use crate::error::EngineError;

/// Output is handed to [`Output::send`] in chunks of about this size (or earlier, on `flush()`).
const CHUNK: usize = 16 * 1024;

static WATCHDOG: OnceCell<Arc<Watchdog>> = OnceCell::new();

/// Where a request's response goes (the executor's connection). Each call may block.
pub trait Output {
    /// Hands over the head (first call only), a body chunk (may be empty) and the end mark, in
    /// one step. False when the receiver is gone (PHP then sees an aborted connection).
    fn send(&mut self, head: Option<&ResponseHead>, chunk: &[u8], end: bool) -> bool;
    /// The request failed before any head was sent (`php_request_startup` failed).
    fn fail(&mut self, message: &str);
}

impl<O: Output + ?Sized> Output for &mut O {
    fn send(&mut self, head: Option<&ResponseHead>, chunk: &[u8], end: bool) -> bool {
        (**self).send(head, chunk, end)
    }
    fn fail(&mut self, message: &str) {
        (**self).fail(message)
    }
}

impl<O: Output + ?Sized> Output for Box<O> {
    fn send(&mut self, head: Option<&ResponseHead>, chunk: &[u8], end: bool) -> bool {
        (**self).send(head, chunk, end)
    }
    fn fail(&mut self, message: &str) {
        (**self).fail(message)
    }
}

/// What [`run`] measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunStats {
    /// CPU time of the calling thread spent in the request.
    pub cpu: Duration,
    /// Peak memory of PHP's memory manager during the request (`memory_get_peak_usage(true)`).
    pub peak_memory: u64,
}

/// Module startup on the calling thread, once per process (see the module docs of
/// [`super`] for the ini rules). Errors: PHP already started in this process, or a failed
/// startup (its reason is logged).
pub fn startup(opts: &PhpOptions) -> Result<(), EngineError> {
    if STARTED.swap(true, Ordering::SeqCst) {
        return Err(EngineError::AlreadyEmbedded);
    }
    let ini = CString::new(thread::ini_entries(opts))
        .map_err(|_| EngineError::Internal("ini entries contain a NUL byte".into()))?;
    let (ini_mode, ini_path) = thread::ini_startup_args(opts)?;
    let hooks = ffi::Hooks { log: log::emit, set_timer };
    ffi::startup(hooks, &ini, ini_mode, ini_path.as_deref())
        .map_err(|()| EngineError::Internal("PHP module startup failed (see the log above)".into()))?;
    thread::log_ini_report(ini_mode, &ffi::ini_report());
    Ok(())
}

/// Starts the `max_execution_time` watchdog for the calling thread (call in each forked
/// executor, on the thread that then calls [`run`]).
pub fn start_watchdog() -> Result<(), EngineError> {
    let dog = Watchdog::start_for_current_thread(Duration::ZERO).map_err(|e| EngineError::Internal(format!("watchdog: {e}")))?;
    let _ = WATCHDOG.set(dog);
    Ok(())
}

fn set_timer(seconds: i64) {
    if let Some(dog) = WATCHDOG.get() {
        dog.set(seconds);
    }
}

/// Runs one request to the end on the calling thread (after [`startup`] in this process or
/// in the parent it was forked from). `request` keeps the C form's buffers across requests.
pub fn run(
    request: &mut Request,
    params: &Params,
    script: &Script,
    body: BodyReader,
    out: &mut dyn Output,
) -> RunStats {
    run_with(request, params, script, body, out, None)
}

/// [`run`] with ini settings for this request only (applied before PHP's request startup,
/// undone after it; refused ones are logged), as [`super::Php::execute_with`] does.
pub fn run_with(
    request: &mut Request,
    params: &Params,
    script: &Script,
    body: BodyReader,
    out: &mut dyn Output,
    ini: Option<&crate::config::RequestIni>,
) -> RunStats {
    let clock = ffi::current_thread_cpu_clock();
    let cpu_before = clock.map(ffi::cpu_time).unwrap_or_default();
    super::job::fill_request(&mut request.0, params, script);
    let mut running = Running::new(out, body);
    let mut ini = ini.map(ffi::RequestIni::new);
    let outcome = ffi::execute(&mut request.0, &mut running, ini.as_mut());
    if let Some(ini) = &ini {
        ini.log_refused();
    }
    running.finish(outcome);
    RunStats {
        cpu: clock.map(ffi::cpu_time).unwrap_or_default().saturating_sub(cpu_before),
        peak_memory: ffi::last_peak_memory(),
    }
}

/// The C form of a request, kept across requests for its buffers.
#[derive(Default)]
pub struct Request(pub(super) ffi::Request);

/// The SAPI callbacks of one request whose response goes to an [`Output`] (borrowed by [`run`],
/// owned by a worker-mode request).
pub(super) struct Running<O: Output> {
    out: O,
    head: Option<ResponseHead>,
    lines: Vec<Vec<u8>>,
    buf: BytesMut,
    gone: bool,
    head_sent: bool,
    /// `fastcgi_finish_request()` ended the response: later output is discarded.
    finished: bool,
    body: BodyReader,
}

impl<O: Output> Running<O> {
    /// The callbacks of a request answering to `out` and reading `body`.
    pub(super) fn new(out: O, body: BodyReader) -> Self {
        Running { out, head: None, lines: Vec::new(), buf: BytesMut::new(), gone: false, head_sent: false, finished: false, body }
    }

    fn send_buf(&mut self, end: bool) -> bool {
        if self.gone {
            return false;
        }
        let head = self.head.take();
        if head.is_none() && !self.head_sent {
            // No head yet (output before headers_done cannot happen; PHP sends headers first).
            return true;
        }
        if head.is_some() || !self.buf.is_empty() || end {
            if !self.out.send(head.as_ref(), &self.buf, end) {
                self.gone = true;
            }
            self.head_sent = true;
            self.buf.clear();
        }
        !self.gone
    }

    /// A failed request (worker mode): a head PHP gave but that has not reached the client yet
    /// becomes a 500 (PHP could not change it: its headers counted as sent at the first output).
    pub(super) fn fail_unsent_head(&mut self) {
        if let (Some(head), false) = (self.head.as_mut(), self.head_sent) {
            head.set_status(500);
        }
    }

    /// Ends the response after the script (`outcome`: how PHP's part ended).
    pub(super) fn finish(mut self, outcome: Outcome) {
        if self.finished {
            return;
        }
        match outcome {
            Outcome::Ok => {
                if self.head.is_none() && !self.head_sent {
                    self.out.fail("PHP ended without sending headers");
                } else {
                    self.send_buf(true);
                }
            }
            Outcome::StartupFailed | Outcome::NotStarted => {
                let msg = if outcome == Outcome::NotStarted { "PHP is not started" } else { "php_request_startup failed" };
                if self.head.is_none() && !self.head_sent {
                    self.out.fail(msg);
                } else {
                    self.send_buf(false);
                    self.out.fail(msg);
                }
            }
        }
    }
}

impl<O: Output> Sapi for Running<O> {
    fn write(&mut self, data: &[u8]) -> bool {
        if self.gone {
            return false;
        }
        if self.finished {
            return true;
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

    /// `fastcgi_finish_request()`: the response ends for the client now; the script runs on
    /// (the executor stays busy), its later output is discarded.
    fn finish_request(&mut self) -> bool {
        if self.finished {
            return !self.gone;
        }
        if self.head.is_none() && !self.head_sent && !self.gone {
            self.out.fail("PHP finished without sending headers");
            self.gone = true;
        }
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
                log::emit(4, &format!("dropping response header: {e}"));
            }
        }
        self.head = Some(head);
        !self.gone
    }

    fn read_body(&mut self, buf: &mut [u8]) -> usize {
        match self.body.fill(buf) {
            Ok(n) => n,
            Err(e) => {
                log::emit(3, &format!("request body cut short: {e}"));
                0
            }
        }
    }
}
