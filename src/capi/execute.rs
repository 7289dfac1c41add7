//! `fephp_execute` (blocking) and `fephp_execute_async` (completion callback): run a request
//! on an engine and stream the response body to the host's write callbacks.

use std::ffi::{c_int, c_void};
use std::sync::Arc;

use super::engine::Shared;
use super::{ffi_fn, fephp_engine, fephp_request, fephp_response, fephp_result, null_argument, set_last_error, Failure};
use crate::engine::Request;

/// Called once with the response status and headers, before the first body chunk.
/// `response` is borrowed for the duration of the call (read it with `fephp_response_status`,
/// `fephp_response_header_*`; do not free it): on success the same object is handed over
/// through `*out` / `on_complete`. Return 0 to go on, non-zero to abort the request.
pub type fephp_head_callback = Option<unsafe extern "C" fn(userdata: *mut c_void, response: *const fephp_response) -> c_int>;

/// Called for each piece of the response body, in order, as it streams from PHP: `len` bytes
/// at `data` (never 0), borrowed for the duration of the call only (copy what you keep).
/// Return 0 to go on, non-zero to abort the request (the call then fails with
/// `FEPHP_ERR_ABORTED`).
pub type fephp_body_chunk_callback = Option<unsafe extern "C" fn(userdata: *mut c_void, data: *const u8, len: usize) -> c_int>;

/// Called exactly once when an asynchronous request ends, on one of the engine's runtime
/// threads (or, for `FEPHP_ERR_CANCELLED`, possibly on the thread calling
/// `fephp_engine_free`). On `FEPHP_OK`, `response` is a new response owned by the callee
/// (free it with `fephp_response_free`); otherwise `response` is NULL and
/// `fephp_last_error` on this thread, during the call, says why.
pub type fephp_complete_callback =
    Option<unsafe extern "C" fn(userdata: *mut c_void, result: fephp_result, response: *mut fephp_response)>;

/// Where a response goes. Both members may be NULL: no head notification, body discarded.
/// The struct is copied by the execute functions; it need not outlive the call.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct fephp_write_callbacks {
    /// Called once with the status and headers (may be NULL).
    pub on_head: fephp_head_callback,
    /// Called for each body chunk (may be NULL: the body is read and discarded).
    pub on_body_chunk: fephp_body_chunk_callback,
}

/// The callbacks plus the host's pointer, movable to a runtime thread.
#[derive(Clone, Copy)]
struct Sink {
    callbacks: fephp_write_callbacks,
    userdata: *mut c_void,
}

// SAFETY: `userdata` is only handed back to the host's callbacks; the host promises (see
// fephp_execute_async) that it may be used from the engine's threads.
unsafe impl Send for Sink {}

impl Sink {
    fn head(&self, resp: &fephp_response) -> bool {
        match self.callbacks.on_head {
            // SAFETY: a host function with the documented signature; `resp` outlives the call.
            Some(f) => unsafe { f(self.userdata, resp) == 0 },
            None => true,
        }
    }

    fn chunk(&self, data: &[u8]) -> bool {
        match self.callbacks.on_body_chunk {
            // SAFETY: a host function with the documented signature; `data` outlives the call.
            Some(f) if !data.is_empty() => unsafe { f(self.userdata, data.as_ptr(), data.len()) == 0 },
            _ => true,
        }
    }
}

fn aborted(what: &str) -> Failure {
    Failure::new(fephp_result::FEPHP_ERR_ABORTED, format!("the {what} callback returned non-zero: request aborted"))
}

/// Serves `req`, delivering head and body to `sink`. A failure before PHP's head becomes a
/// response of fe-php's own (status from [`crate::EngineError::status`]).
async fn run(shared: &Shared, req: Request, sink: Sink) -> Result<Box<fephp_response>, Failure> {
    let mut body = match shared.engine.serve(&shared.site, req).await {
        Ok(resp) => {
            let head = Box::new(fephp_response::from_head(resp.head));
            if !sink.head(&head) {
                return Err(aborted("on_head")); // dropping resp.body aborts at the backend
            }
            (head, resp.body)
        }
        Err(err) => {
            let (head, text) = fephp_response::from_error(&err);
            let head = Box::new(head);
            if !sink.head(&head) {
                return Err(aborted("on_head"));
            }
            if !sink.chunk(text.as_bytes()) {
                return Err(aborted("on_body_chunk"));
            }
            return Ok(head);
        }
    };
    while let Some(chunk) = body.1.next_chunk().await {
        match chunk {
            Ok(bytes) => {
                if !sink.chunk(&bytes) {
                    return Err(aborted("on_body_chunk"));
                }
            }
            Err(e) => {
                return Err(Failure::new(
                    fephp_result::FEPHP_ERR_BODY_TRUNCATED,
                    format!("the response body is truncated: {e}"),
                ))
            }
        }
    }
    Ok(body.0)
}

/// Takes ownership of `req` (non-NULL).
///
/// # Safety
/// `req` must come from `fephp_request_new` and not be used by the caller afterwards.
unsafe fn take_request(req: *mut fephp_request) -> fephp_request {
    // SAFETY: see above.
    *unsafe { Box::from_raw(req) }
}

/// Executes `req` on `engine` and blocks the calling thread until the response body has been
/// delivered: `callbacks->on_head` once, then `callbacks->on_body_chunk` for each chunk, all on
/// the calling thread, while the engine's runtime threads do the I/O.
///
/// Ownership: `req` is consumed whenever it is non-NULL, whatever the result (do not use or
/// free it afterwards). `callbacks` (may be NULL) is read during the call only. `userdata` is
/// passed to the callbacks untouched. On `FEPHP_OK` a new response (owned by the caller, free
/// it with `fephp_response_free`) is written to `*out` unless `out` is NULL (then it is freed).
///
/// A request that fails before PHP answers is still a response and `FEPHP_OK`: 404/403/400
/// when the script is missing or refused, 502 when FPM is unreachable or answers garbage, 503
/// when the backend is overloaded, 504 on a timeout, 500 on an internal error; the body is one
/// plain-text line and `fephp_response_error` tells the reason.
///
/// Errors: `FEPHP_ERR_NULL_ARGUMENT` (`engine`, `req`), `FEPHP_ERR_ABORTED` (a callback
/// returned non-zero), `FEPHP_ERR_BODY_TRUNCATED` (the backend failed mid-body, after
/// `on_head`), `FEPHP_ERR_WRONG_THREAD` (called from a runtime thread, e.g. inside a callback
/// of `fephp_execute_async`), `FEPHP_ERR_PANIC`. Nothing is written to `*out` on error.
///
/// Thread-safety: any number of threads may call this at once on the same engine.
#[no_mangle]
pub extern "C" fn fephp_execute(
    engine: *const fephp_engine,
    req: *mut fephp_request,
    callbacks: *const fephp_write_callbacks,
    userdata: *mut c_void,
    out: *mut *mut fephp_response,
) -> fephp_result {
    ffi_fn!("fephp_execute", nonnull(), {
        if req.is_null() {
            return null_argument("fephp_execute", "req");
        }
        // SAFETY: non-NULL; the caller hands the request over (documented above).
        let req = unsafe { take_request(req) };
        if engine.is_null() {
            return null_argument("fephp_execute", "engine");
        }
        // SAFETY: non-NULL and live (not freed concurrently: the caller's contract).
        let engine = unsafe { &*engine };
        let callbacks = if callbacks.is_null() {
            fephp_write_callbacks::default()
        } else {
            // SAFETY: non-NULL and points to a readable fephp_write_callbacks (caller's contract).
            unsafe { *callbacks }
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            return Failure::new(
                fephp_result::FEPHP_ERR_WRONG_THREAD,
                "fephp_execute: called on a runtime thread (inside a callback?); use fephp_execute_async there",
            )
            .report();
        }
        let shared = engine.shared();
        let request = req.into_request(shared.https, shared.server_name.as_deref());
        match engine.runtime().block_on(run(shared, request, Sink { callbacks, userdata })) {
            Ok(resp) => {
                if !out.is_null() {
                    // SAFETY: non-NULL and writable (the caller's contract).
                    unsafe { *out = Box::into_raw(resp) };
                }
                fephp_result::FEPHP_OK
            }
            Err(f) => f.report(),
        }
    })
}

/// Calls `on_complete` exactly once: with the outcome, or from `Drop` when the task is
/// cancelled (engine freed) or panicked.
struct Completion {
    on_complete: unsafe extern "C" fn(*mut c_void, fephp_result, *mut fephp_response),
    userdata: *mut c_void,
    done: bool,
}

// SAFETY: see `Sink`: the host promises `userdata` may be used from the engine's threads.
unsafe impl Send for Completion {}

impl Completion {
    fn call(&mut self, result: fephp_result, resp: *mut fephp_response) {
        self.done = true;
        // SAFETY: a host function with the documented signature.
        unsafe { (self.on_complete)(self.userdata, result, resp) }
    }

    fn complete(mut self, outcome: Result<Box<fephp_response>, Failure>) {
        match outcome {
            Ok(resp) => self.call(fephp_result::FEPHP_OK, Box::into_raw(resp)),
            Err(f) => {
                let code = f.report();
                self.call(code, std::ptr::null_mut());
            }
        }
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let code = if std::thread::panicking() {
            set_last_error("fephp_execute_async: internal error (panic) while serving the request");
            fephp_result::FEPHP_ERR_PANIC
        } else {
            set_last_error("fephp_execute_async: cancelled: the engine was freed before the request finished");
            fephp_result::FEPHP_ERR_CANCELLED
        };
        self.call(code, std::ptr::null_mut());
    }
}

/// Starts executing `req` on `engine` and returns at once, for hosts with their own event
/// loop. The request runs on the engine's runtime; `callbacks->on_head`,
/// `callbacks->on_body_chunk` and then `on_complete` are called on one of the engine's
/// runtime threads (`fephp-rt`), one at a time for a given request. Callbacks should be
/// quick (copy or queue the data, wake the host loop): while one runs, that runtime thread
/// serves nothing else. They must not call `fephp_execute` (it fails with
/// `FEPHP_ERR_WRONG_THREAD`) nor `fephp_engine_free`; `fephp_execute_async` is allowed.
///
/// Ownership: `req` is consumed whenever it is non-NULL, whatever the result. `callbacks`
/// (may be NULL) is copied. `userdata` must stay valid, and usable from another thread,
/// until `on_complete` has been called.
///
/// Returns `FEPHP_OK` when the request was started: then `on_complete` (non-NULL) is called
/// exactly once, with the same outcomes as `fephp_execute` (a backend failure is a 5xx
/// response), or `FEPHP_ERR_CANCELLED` if the engine is freed first. Any other result
/// (`FEPHP_ERR_NULL_ARGUMENT`, `FEPHP_ERR_PANIC`) means nothing was started and `on_complete`
/// is never called.
#[no_mangle]
pub extern "C" fn fephp_execute_async(
    engine: *const fephp_engine,
    req: *mut fephp_request,
    callbacks: *const fephp_write_callbacks,
    userdata: *mut c_void,
    on_complete: fephp_complete_callback,
) -> fephp_result {
    ffi_fn!("fephp_execute_async", nonnull(), {
        if req.is_null() {
            return null_argument("fephp_execute_async", "req");
        }
        // SAFETY: non-NULL; the caller hands the request over (documented above).
        let req = unsafe { take_request(req) };
        if engine.is_null() {
            return null_argument("fephp_execute_async", "engine");
        }
        let Some(on_complete) = on_complete else {
            return null_argument("fephp_execute_async", "on_complete");
        };
        // SAFETY: non-NULL and live (not freed concurrently: the caller's contract).
        let engine = unsafe { &*engine };
        let callbacks = if callbacks.is_null() {
            fephp_write_callbacks::default()
        } else {
            // SAFETY: non-NULL and points to a readable fephp_write_callbacks (caller's contract).
            unsafe { *callbacks }
        };
        let shared = Arc::clone(engine.shared());
        let request = req.into_request(shared.https, shared.server_name.as_deref());
        let sink = Sink { callbacks, userdata };
        let completion = Completion { on_complete, userdata, done: false };
        engine.runtime().spawn(async move {
            let outcome = run(&shared, request, sink).await;
            completion.complete(outcome);
        });
        fephp_result::FEPHP_OK
    })
}
