//! Worker mode (FrankenPHP's worker mode, in an executor process): a worker script boots the
//! application ONCE and then serves many requests:
//!
//! ```php
//! <?php
//! $app = require __DIR__ . '/bootstrap.php';        // autoload, container, routes: once
//! while (fephp_handle_request(function () use ($app) {
//!     $app->handle($_SERVER['REQUEST_URI']);         // this request's superglobals
//! })) {
//!     gc_collect_cycles();
//! }
//! ```
//!
//! `fephp_handle_request(callable $handler): bool` blocks until the next request, runs the
//! handler with that request's superglobals, headers, status and output, ends the request, and
//! returns true; it returns false when the executor must stop (`max_requests` reached, a reload,
//! a `watch`ed file changed, shutdown); called again after that, it ends the script as `exit()`
//! would (a loop that ignores the false cannot keep the executor alive). Called anywhere but in a
//! worker script (or from inside a handler) it throws an `Error`.
//!
//! # What is per request, what persists
//! Reset for every request (`worker.c`): `$_GET`, `$_POST`, `$_COOKIE`, `$_FILES` (uploaded temp
//! files removed at the end), `$_SERVER`, `$_REQUEST`, `$_SESSION` (written and removed at the
//! end; the session module starts afresh, so `session_id()` is the request's), response headers
//! and status (`http_response_code()`), the output layer (buffers the handler left open are
//! flushed at its end), ini settings the request changed (`ini_set()`, `set_time_limit()`,
//! `memory_limit`) back to what the boot left, the execution time limit (armed per request; no
//! limit while waiting), `register_shutdown_function()` callbacks of the request (run at its
//! end; the boot's run when the worker ends), `fastcgi_finish_request()`.
//! Persisting, on purpose: everything else the application holds — globals, static properties
//! and variables, objects the boot built, open connections, loaded classes. A handler that
//! leaks into them leaks across requests.
//!
//! # Faults
//! An uncaught exception (after the application's own exception handler, if set) or a fatal
//! error in the handler ends that request with 500 (unless headers already went out) and ends
//! the worker script: the executor exits and the supervisor boots a fresh one. `exit()` in the
//! handler ends the request normally and restarts the worker too, and so does a client that
//! goes away during a large response (PHP's connection-abort bailout, unless
//! `ignore_user_abort(true)`): after any bailout the engine's stack is not reusable. A script that ends or fails
//! before its first `fephp_handle_request()` is a boot failure ([`WorkerEnd::BootFailed`]).

use std::path::Path;
use std::time::Duration;

use super::ffi::{self, Outcome, Sapi, WorkerResult};
use super::process::{Output, Request, RunStats, Running};
use crate::cgi::{BodyReader, Params, Script};

/// Where a worker gets its requests from (the executor's transport) — the same "next request"
/// the classic loop serves.
pub trait RequestSource {
    /// Blocks until the next request; `None`: the worker must stop.
    fn next(&mut self) -> Option<WorkerRequest>;
    /// The request [`RequestSource::next`] gave has ended (response complete, its output
    /// dropped), with what it cost.
    fn done(&mut self, stats: RunStats);
}

/// One request for a worker's handler.
pub struct WorkerRequest {
    /// The CGI params (`$_SERVER`).
    pub params: Params,
    /// The resolved script (its name and path info; the worker's handler runs whatever it is).
    pub script: Script,
    /// The request body.
    pub body: BodyReader,
    /// Where the response goes.
    pub out: Box<dyn Output>,
    /// Ini settings for this request only (`fephp_php_value` / `fephp_php_admin_value`): applied
    /// before its superglobals are read, put back with its other ini changes at its end.
    pub ini: Option<crate::config::RequestIni>,
}

/// How a worker script ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerEnd {
    /// The script ended or failed before its first `fephp_handle_request()` (the reason is in
    /// PHP's log); `output` is what it printed (at most 2 KiB).
    BootFailed {
        /// The script's output during the boot.
        output: String,
    },
    /// The source said stop; the script ended after `fephp_handle_request()` returned false.
    Stopped,
    /// A request failed (uncaught exception, fatal error): boot a fresh worker.
    RequestFailed,
    /// The handler called `exit()`: boot a fresh worker.
    Exited,
    /// The script left its loop on its own.
    Ended,
}

/// Most bytes of boot output kept for the log.
const BOOT_OUTPUT_MAX: usize = 2048;

/// Runs the worker script at `script` on the calling thread (an executor process, after
/// [`super::process::startup`] and [`super::process::start_watchdog`]) until it ends.
pub fn run_worker(script: &Path, source: &mut dyn RequestSource) -> WorkerEnd {
    let filename = script.as_os_str().as_encoded_bytes();
    let dir = script.parent().map(|d| d.as_os_str().as_encoded_bytes()).unwrap_or(b"/");
    let name = script.file_name().map(|n| n.as_encoded_bytes()).unwrap_or(b"");
    let mut params = Params::with_capacity(6);
    params.push("SCRIPT_FILENAME", filename);
    params.push_concat(b"SCRIPT_NAME", &[b"/", name]);
    params.push("DOCUMENT_ROOT", dir);
    params.push("REQUEST_METHOD", "GET");
    params.push_concat(b"REQUEST_URI", &[b"/", name]);
    params.push("FEPHP_WORKER", "1");
    let boot_script = Script { filename: script.to_path_buf(), script_name: format!("/{}", String::from_utf8_lossy(name)), path_info: String::new() };
    let mut boot = Request::default();
    super::job::fill_request(&mut boot.0, &params, &boot_script);
    let mut host = Host { source, current: None, boot: BootSink::default(), clock: ffi::current_thread_cpu_clock() };
    match ffi::run_worker(&mut boot.0, &mut host) {
        WorkerResult::BootFailed => WorkerEnd::BootFailed { output: String::from_utf8_lossy(&host.boot.output).into_owned() },
        WorkerResult::Stopped => WorkerEnd::Stopped,
        WorkerResult::RequestFailed => WorkerEnd::RequestFailed,
        WorkerResult::Exited => WorkerEnd::Exited,
        WorkerResult::Ended => WorkerEnd::Ended,
    }
}

struct Current {
    running: Running<Box<dyn Output>>,
    cpu_before: Duration,
    /// The request's ini settings in C form: the shim holds a pointer to them until the
    /// request's `done` (worker.c forgets it before calling it).
    ini: Option<ffi::RequestIni>,
}

struct Host<'s> {
    source: &'s mut dyn RequestSource,
    current: Option<Current>,
    boot: BootSink,
    clock: Option<libc::clockid_t>,
}

impl Host<'_> {
    fn cpu(&self) -> Duration {
        self.clock.map(ffi::cpu_time).unwrap_or_default()
    }
}

impl ffi::WorkerHost for Host<'_> {
    fn next(&mut self, req: &mut ffi::Request) -> bool {
        let Some(r) = self.source.next() else { return false };
        super::job::fill_request(req, &r.params, &r.script);
        let current = self.current.insert(Current {
            running: Running::new(r.out, r.body),
            cpu_before: self.cpu(),
            ini: r.ini.as_ref().map(ffi::RequestIni::new),
        });
        ffi::worker_request_ini(current.ini.as_mut());
        true
    }

    fn sapi(&mut self) -> &mut dyn Sapi {
        match &mut self.current {
            Some(c) => &mut c.running,
            None => &mut self.boot,
        }
    }

    fn done(&mut self, failed: bool, peak_memory: u64) {
        let Some(mut c) = self.current.take() else { return };
        // A failed request has its 500 head from PHP, or a head still held here (made a 500),
        // or a body already streaming (it ends truncated, like PHP's own).
        if failed {
            c.running.fail_unsent_head();
        }
        c.running.finish(Outcome::Ok);
        if let Some(ini) = &c.ini {
            ini.log_refused();
        }
        let cpu = self.cpu().saturating_sub(c.cpu_before);
        self.source.done(RunStats { cpu, peak_memory });
    }
}

/// The boot's output: kept (2 KiB) for a boot failure's log line, otherwise dropped.
#[derive(Default)]
struct BootSink {
    output: Vec<u8>,
}

impl Sapi for BootSink {
    fn write(&mut self, data: &[u8]) -> bool {
        let room = BOOT_OUTPUT_MAX.saturating_sub(self.output.len());
        self.output.extend_from_slice(&data[..data.len().min(room)]);
        true
    }
    fn flush(&mut self) -> bool {
        true
    }
    fn header(&mut self, _line: &[u8]) {}
    fn headers_done(&mut self, _status: u16) -> bool {
        true
    }
    fn read_body(&mut self, _buf: &mut [u8]) -> usize {
        0
    }
    fn finish_request(&mut self) -> bool {
        true
    }
}
