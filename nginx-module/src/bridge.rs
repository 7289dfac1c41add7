//! The bridge: the ONE place where results from other threads come back to the nginx loop.
//!
//! # Design
//! - Each request's engine future, and then its response body (`poll_chunk`), is polled right
//!   here, on the nginx thread ([`start_local`]), with a [`Waker`] that marks the request ready.
//!   Nothing of a request runs on another thread except what the engine itself hands over (the
//!   embedded PHP thread; the runtime's timers).
//! - Each worker process owns a tokio runtime (one runtime thread, started in `init_process`).
//!   Its context is entered while polling, for the engines' timers (queue, connect and I/O
//!   timeouts), which the runtime thread drives. It runs no request tasks.
//! - Woken from another thread (the PHP thread's head/body sends, a timer): the request id goes
//!   to a shared "ready" list and an `eventfd` is written. That eventfd is an nginx connection
//!   (`ngx_get_connection` + `ngx_handle_read_event`) whose read handler drains it and pumps the
//!   ready requests, on the nginx thread.
//!
//!   Why not `ngx_notify`: it exists only with epoll/kqueue and it keeps ONE global handler
//!   (`notify_event.data`), which nginx's thread pools (`aio threads`) set too; two users race and
//!   one loses its wakeup. An eventfd of our own works with every event module.
//! - Woken on the nginx thread itself (an FPM socket's nginx event, see [`crate::ngx_socket`]; a
//!   pool permit released by another request): the id goes to a thread-local list and one nginx
//!   event is posted to `ngx_posted_events`, which nginx runs after the current batch of I/O
//!   events. So an FPM response costs one epoll wakeup, like `fastcgi_pass`. The waker never
//!   pumps directly: it may be called while its own request is being polled.
//! - Back-pressure: the nginx side polls a request only while the client connection accepts
//!   data. When `ngx_http_output_filter` returns `NGX_AGAIN` or our buffers are still busy, it
//!   stops polling; PHP's output channel fills up (embedded) or the FPM socket is not read. The
//!   write event (`writer`) flushes and resumes polling.
//! - Abort: when the request ends (client abort via `ngx_http_test_reading`, timeout, normal end,
//!   `ngx_http_terminate_request`), the request's HTTP cleanup (`ngx_http_cleanup_add`, as
//!   nginx's upstream module) drops the future / body, which cancels the request at the backend
//!   (the FPM connection is closed; PHP sees an aborted connection).
//! - Body chunks are passed to nginx without copying: a buffer points into the `Bytes`, which is
//!   kept alive until nginx has sent it (`ngx_chain_update_chains`) or the request pool goes.
//! - An idle guard timer (`fephp_read_timeout`) runs while we wait for the backend: it answers
//!   504 if nothing arrives, and, being a non-cancelable nginx timer, it keeps a gracefully
//!   exiting worker alive until in-flight PHP requests finish.
//!
//! Nothing here touches an `ngx_http_request_t` off the nginx thread: other threads only see
//! `Send` data (the waker: a request id and the shared wakeup).

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::ffi::c_void;
use std::hash::{BuildHasherDefault, Hasher};
use std::future::Future;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use bytes::Bytes;
use fephp::cgi::{content_length, header_use, HeaderUse, ResponseHead};
use fephp::engine::ResponseBody;
use fephp::error::catch_panic;
use fephp::{EngineError, Response};
use ngx::ffi::{
    ngx_add_timer, ngx_buf_t, ngx_chain_get_free_buf, ngx_chain_t, ngx_chain_update_chains, ngx_close_connection,
    ngx_connection_t, ngx_cycle_t, ngx_del_timer, ngx_delete_posted_event, ngx_event_t, ngx_get_connection,
    ngx_handle_read_event, ngx_handle_write_event, ngx_http_err_page_t, ngx_http_finalize_request, ngx_http_output_filter,
    ngx_http_request_empty_handler, ngx_http_request_t, ngx_http_run_posted_requests, ngx_http_send_header,
    ngx_http_test_reading, ngx_int_t, ngx_list_push, ngx_msec_t, ngx_pnalloc, ngx_http_cleanup_add,
    ngx_pool_cleanup_add, ngx_str_t,
    ngx_table_elt_t, NGX_AGAIN, NGX_ERROR, NGX_HTTP_GATEWAY_TIME_OUT,
    NGX_HTTP_INTERNAL_SERVER_ERROR, NGX_HTTP_REQUEST_TIME_OUT, NGX_LOG_ERR, NGX_LOG_INFO, NGX_OK,
};
use ngx::http::{HttpModule, HttpModuleLocationConf, NgxHttpCoreModule};
use ngx::ngx_log_error;

use crate::Module;

/// The idle guard fires this long after `fephp_read_timeout`, so the engine's own timeout (with
/// its precise error) wins when it has one (FPM); the guard covers embedded PHP.
const GUARD_MARGIN: Duration = Duration::from_secs(1);

/// What a request's future produces.
pub enum Output {
    /// An engine response with a streaming body.
    Stream(Response),
    /// A complete response built by the module itself (`fephp_status`).
    Full(ResponseHead, Bytes),
}

/// Per-request settings of the nginx side.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Idle guard while waiting for the backend (`fephp_read_timeout`).
    pub read_timeout: Duration,
    /// `fephp_intercept_errors`.
    pub intercept_errors: bool,
}

/// What polling a request yields, in this order: `Head`, `Chunk`*, then `End` or `Error`
/// (or only `Error`).
enum Event {
    Head(ResponseHead),
    Chunk(Bytes),
    End,
    Error(EngineError),
}

// ---------------------------------------------------------------------------------------------
// Cross-thread part: the wakeup.
// ---------------------------------------------------------------------------------------------

/// Shared between the nginx thread and the runtime threads.
struct Wakeup {
    /// Ready request ids and whether the eventfd is still open (both under one lock so a late
    /// waker can never write to a closed, possibly reused, descriptor).
    state: Mutex<(Vec<u64>, bool)>,
    efd: RawFd,
}

impl Wakeup {
    /// Marks `id` ready and wakes the nginx loop (one eventfd write per batch of ids).
    fn wake(&self, id: u64) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (ready, open) = &mut *state;
        if !*open {
            return;
        }
        let first = ready.is_empty();
        ready.push(id);
        if first {
            let one: u64 = 1;
            // SAFETY: `efd` is open while `open` is true (checked under the lock); writing 8
            // bytes from a valid u64. EAGAIN (counter overflow) cannot lose the wakeup.
            unsafe { libc::write(self.efd, &one as *const u64 as *const c_void, 8) };
        }
    }

    /// Swaps the ready ids into `ids` (empty on entry; its capacity becomes the list's).
    fn take_ready(&self, ids: &mut Vec<u64>) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::swap(&mut state.0, ids);
    }
}

/// The waker of a local request: one eventfd wakeup per time it becomes ready.
struct ReqWaker {
    id: u64,
    wakeup: Arc<Wakeup>,
    /// Set when queued for the nginx loop, cleared right before it polls the request.
    queued: AtomicBool,
}

impl Wake for ReqWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) && !post_local(self.id) {
            self.wakeup.wake(self.id);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Same-thread wakeups.
// ---------------------------------------------------------------------------------------------

thread_local! {
    /// Requests woken on the nginx thread itself, pumped by the posted [`READY_EVENT`].
    static LOCAL_READY: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
    /// The event posted to `ngx_posted_events` when [`LOCAL_READY`] gets its first id (owned by
    /// the [`Bridge`]; null while the bridge is not running, and on every other thread).
    static READY_EVENT: Cell<*mut ngx_event_t> = const { Cell::new(ptr::null_mut()) };
}

/// True on the worker's nginx thread while the bridge runs (where nginx may be called).
pub fn on_nginx_thread() -> bool {
    !READY_EVENT.with(|e| e.get()).is_null()
}

/// On the nginx thread, queues `id` and posts the ready event (nginx runs it after the current
/// batch of I/O events, in the same loop iteration: no eventfd, no extra wakeup). The waker may
/// be called while that very request is being polled, so it never pumps directly. False off
/// the nginx thread (the caller then uses the eventfd).
fn post_local(id: u64) -> bool {
    let ev = READY_EVENT.with(|e| e.get());
    if ev.is_null() {
        return false; // not the nginx thread
    }
    LOCAL_READY.with(|r| r.borrow_mut().push(id));
    // SAFETY: nginx thread; the event lives in the running bridge (unposted in `stop`).
    unsafe { post_ready_event(ev) };
    true
}

/// Posts the bridge's ready event to `ngx_posted_events`.
#[cfg(not(test))]
unsafe fn post_ready_event(ev: *mut ngx_event_t) {
    // SAFETY: caller contract (nginx thread, live event).
    unsafe { ngx::ffi::ngx_post_event(ev, ptr::addr_of_mut!(ngx::ffi::ngx_posted_events)) };
}

/// Unit tests run without nginx (its symbols are resolved only when nginx loads the module)
/// and never start the bridge, so [`READY_EVENT`] stays null and this is never reached.
#[cfg(test)]
unsafe fn post_ready_event(_ev: *mut ngx_event_t) {
    unreachable!("no nginx event loop in unit tests");
}

/// The posted ready event's handler: pump the requests woken on this thread.
unsafe extern "C" fn on_local_ready(_ev: *mut ngx_event_t) {
    ffi_guard!((), {
        pump_ready(|ids| LOCAL_READY.with(|r| std::mem::swap(&mut *r.borrow_mut(), ids)));
    })
}

/// A future a local request polls on the nginx thread.
pub type LocalFuture = Pin<Box<dyn Future<Output = Result<Output, EngineError>>>>;

/// Where a local request is.
enum LocalState {
    /// Waiting for the response head.
    Starting(LocalFuture),
    /// Streaming the body.
    Body(ResponseBody),
    /// A complete body still to hand over.
    Full(Bytes),
    /// End or error delivered.
    Done,
}

struct Local {
    state: LocalState,
    waker: Arc<ReqWaker>,
    runtime: tokio::runtime::Handle,
}

impl Local {
    /// Polls for the next event; `None` while nothing is ready. A panic in the engine's code
    /// is caught here and becomes an [`EngineError::Internal`] error event (the future is
    /// dropped), so it ends the request through the bridge's normal path, exactly once.
    fn poll_event(&mut self) -> Option<Event> {
        self.waker.queued.store(false, Ordering::Release);
        let waker = Waker::from(Arc::clone(&self.waker));
        let mut cx = Context::from_waker(&waker);
        let _rt = self.runtime.enter();
        match catch_panic(|| self.poll_state(&mut cx)) {
            Ok(ev) => ev,
            Err(msg) => {
                let state = std::mem::replace(&mut self.state, LocalState::Done);
                // Its drop may panic too; nothing of it is used any more.
                let _ = catch_panic(move || drop(state));
                Some(Event::Error(EngineError::Internal(format!("panic in the engine: {msg}"))))
            }
        }
    }

    fn poll_state(&mut self, cx: &mut Context<'_>) -> Option<Event> {
        loop {
            match &mut self.state {
                LocalState::Starting(fut) => match fut.as_mut().poll(cx) {
                    Poll::Pending => return None,
                    Poll::Ready(Err(e)) => {
                        self.state = LocalState::Done;
                        return Some(Event::Error(e));
                    }
                    Poll::Ready(Ok(Output::Stream(Response { head, body }))) => {
                        self.state = LocalState::Body(body);
                        return Some(Event::Head(head));
                    }
                    Poll::Ready(Ok(Output::Full(head, body))) => {
                        self.state = LocalState::Full(body);
                        return Some(Event::Head(head));
                    }
                },
                LocalState::Body(body) => {
                    return match body.poll_chunk(cx) {
                        Poll::Pending => None,
                        Poll::Ready(Some(Ok(chunk))) if chunk.is_empty() => continue,
                        Poll::Ready(Some(Ok(chunk))) => Some(Event::Chunk(chunk)),
                        Poll::Ready(Some(Err(e))) => {
                            self.state = LocalState::Done;
                            Some(Event::Error(e))
                        }
                        Poll::Ready(None) => {
                            self.state = LocalState::Done;
                            Some(Event::End)
                        }
                    };
                }
                LocalState::Full(body) => {
                    let body = std::mem::take(body);
                    self.state = LocalState::Done;
                    if body.is_empty() {
                        return Some(Event::End);
                    }
                    // Deliver the chunk now and the end on the next call.
                    self.state = LocalState::Full(Bytes::new());
                    return Some(Event::Chunk(body));
                }
                LocalState::Done => return Some(Event::End),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// nginx-thread part.
// ---------------------------------------------------------------------------------------------

struct Bridge {
    runtime: tokio::runtime::Runtime,
    wakeup: Arc<Wakeup>,
    conn: *mut ngx_connection_t,
    /// The event [`post_local`] posts (boxed: nginx's queue points into it).
    ready_event: Box<ngx_event_t>,
    next_id: u64,
}

thread_local! {
    static BRIDGE: RefCell<Option<Bridge>> = const { RefCell::new(None) };
    /// The requests in flight, by id: what a wakeup may pump. Kept apart from [`BRIDGE`] and
    /// borrowed only inside [`registry_insert`] / [`registry_get`] / [`registry_remove`], for one
    /// map operation that runs no other code (plain ids and pointers: nothing to drop), so the
    /// borrow can never be taken already and a request is always unregistered before its
    /// context is freed.
    static REQUESTS: RefCell<HashMap<u64, *mut ReqCtx, BuildHasherDefault<IdHasher>>> =
        RefCell::new(HashMap::default());
}

/// The registry's hasher: request ids are distinct sequential numbers, so the id itself
/// (spread by one multiplication) is the hash; no SipHash per request.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | b as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

fn registry_insert(id: u64, ctx: *mut ReqCtx) {
    REQUESTS.with(|m| m.borrow_mut().insert(id, ctx));
}

fn registry_get(id: u64) -> Option<*mut ReqCtx> {
    REQUESTS.with(|m| m.borrow().get(&id).copied())
}

fn registry_remove(id: u64) {
    REQUESTS.with(|m| m.borrow_mut().remove(&id));
}

/// Starts this worker's runtime and registers the wakeup eventfd with the nginx event loop.
///
/// # Safety
/// Call once, on the worker's nginx thread, from `init_process`.
pub unsafe fn start(cycle: *mut ngx_cycle_t) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("fephp-rt")
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    // SAFETY: plain syscall.
    let efd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if efd < 0 {
        return Err(format!("eventfd: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: `cycle` is the running cycle; nginx takes the descriptor into a connection slot
    // (closed by `ngx_close_connection` in `stop`).
    let conn = unsafe {
        let log = (*cycle).log;
        let c = ngx_get_connection(efd, log);
        if c.is_null() {
            libc::close(efd);
            return Err("no free connection for the wakeup eventfd (worker_connections)".into());
        }
        let rev = (*c).read;
        (*rev).handler = Some(on_wakeup);
        (*rev).log = log;
        (*(*c).write).log = log;
        (*c).log = log;
        if ngx_handle_read_event(rev, 0) != NGX_OK as ngx_int_t {
            ngx_close_connection(c);
            return Err("cannot add the wakeup eventfd to the event loop".into());
        }
        c
    };
    let wakeup = Arc::new(Wakeup { state: Mutex::new((Vec::new(), true)), efd });
    // SAFETY: an all-zero ngx_event_t is its idle state; `cycle` is valid.
    let mut ready_event: Box<ngx_event_t> = Box::new(unsafe { std::mem::zeroed() });
    ready_event.handler = Some(on_local_ready);
    ready_event.log = unsafe { (*cycle).log };
    READY_EVENT.with(|e| e.set(&mut *ready_event));
    BRIDGE.with(|b| *b.borrow_mut() = Some(Bridge { runtime, wakeup, conn, ready_event, next_id: 1 }));
    Ok(())
}

/// Runs `f` inside the runtime's context (engines create their tokio resources there); plain
/// call when the bridge is not running.
pub fn in_runtime<R>(f: impl FnOnce() -> R) -> R {
    let handle = BRIDGE.with(|b| b.borrow().as_ref().map(|b| b.runtime.handle().clone()));
    match handle {
        Some(h) => {
            let _guard = h.enter();
            f()
        }
        None => f(),
    }
}

/// Stops the runtime (waiting up to `grace` for its threads) and closes the eventfd.
///
/// # Safety
/// Call on the nginx thread from `exit_process`.
pub unsafe fn stop(grace: Duration) {
    let Some(mut bridge) = BRIDGE.with(|b| b.borrow_mut().take()) else { return };
    READY_EVENT.with(|e| e.set(ptr::null_mut()));
    LOCAL_READY.with(|r| r.borrow_mut().clear());
    if bridge.ready_event.posted() != 0 {
        // SAFETY: our event, posted in nginx's queue; removed before it is freed.
        unsafe { ngx_delete_posted_event(&mut *bridge.ready_event) };
    }
    bridge.runtime.shutdown_timeout(grace);
    {
        let mut state = bridge.wakeup.state.lock().unwrap_or_else(|p| p.into_inner());
        state.1 = false;
    }
    // SAFETY: the connection was obtained in `start`; no writer can touch the fd any more.
    unsafe { ngx_close_connection(bridge.conn) };
}

/// The nginx-side state of one request in flight. Boxed (the guard event must not move), owned
/// by the request pool's cleanup, stopped by the request's HTTP cleanup (see [`register`]).
struct ReqCtx {
    id: u64,
    r: *mut ngx_http_request_t,
    /// The request's future / body; `None` once over.
    local: Option<Local>,
    guard: ngx_event_t,
    settings: Settings,
    header_sent: bool,
    header_only: bool,
    done: bool,
    blocked: bool,
    free: *mut ngx_chain_t,
    busy: *mut ngx_chain_t,
    /// Body chunks nginx may still be sending, with the buffer that points into each.
    held: VecDeque<(*mut ngx_buf_t, Bytes)>,
}

/// Starts serving `r` with `fut`, polled on this (the nginx) thread. The caller's content handler
/// has returned (or will return) `NGX_DONE`; from here on the bridge finalizes the request.
/// `fut` must need no I/O driver of the runtime (tokio sockets would never wake it): embedded
/// PHP, FPM pools with the [`crate::ngx_socket`] connector, plain computations.
///
/// # Safety
/// `r` must be a live request, on the nginx thread, whose body has been read.
pub unsafe fn start_local(r: *mut ngx_http_request_t, settings: Settings, fut: LocalFuture) -> Result<(), String> {
    let started = BRIDGE.with(|b| {
        let mut b = b.borrow_mut();
        let b = b.as_mut()?;
        let id = b.next_id;
        b.next_id += 1;
        let waker = Arc::new(ReqWaker { id, wakeup: b.wakeup.clone(), queued: AtomicBool::new(false) });
        Some(Local { state: LocalState::Starting(fut), waker, runtime: b.runtime.handle().clone() })
    });
    let Some(local) = started else {
        return Err("the fephp runtime is not running in this process".into());
    };
    let id = local.waker.id;
    // SAFETY: caller contract; the first poll sends the job (or answers an early error).
    unsafe {
        let ctx = register(r, settings, id, local)?;
        pump_guarded(ctx);
    }
    Ok(())
}

/// Creates the request's [`ReqCtx`] and registers it, with two cleanups, as nginx's upstream
/// module splits the work:
/// - [`stop_request`], an HTTP request cleanup (`ngx_http_cleanup_add`, what the upstream module
///   uses): nginx runs those on every path that ends a request, and first of all in
///   `ngx_http_terminate_request` (an error or timeout of the main request or of any
///   subrequest), *before* it closes the request. When the main request is blocked (an
///   `aio threads` operation in flight) terminate only marks the connection and closes later;
///   a pool cleanup would run only then, and until that moment the request's future, guard
///   timer and wakeups would keep working on a request nginx has terminated.
/// - [`free_ctx`], a cleanup of the request pool, frees the memory: nginx may still hold
///   buffers pointing into the response bytes after the request stopped (postponed subrequest
///   output; an HTTP/2 stream closes only once its queued frames are gone), as the upstream
///   module's buffers live in the pool until it is destroyed.
///
/// Both lists belong to the main request (a subrequest shares its pool), so a subrequest's
/// context lives until the whole response is done.
unsafe fn register(
    r: *mut ngx_http_request_t,
    settings: Settings,
    id: u64,
    local: Local,
) -> Result<*mut ReqCtx, String> {
    let ctx = Box::into_raw(Box::new(ReqCtx {
        id,
        r,
        local: Some(local),
        // SAFETY: an all-zero ngx_event_t is its idle state (as nginx's ngx_pcalloc'd events).
        guard: unsafe { std::mem::zeroed() },
        settings,
        header_sent: false,
        header_only: false,
        done: false,
        blocked: false,
        free: ptr::null_mut(),
        busy: ptr::null_mut(),
        held: VecDeque::new(),
    }));
    // SAFETY: `r` is live; the pool cleanup owns `ctx` from here and frees it with the request
    // pool; the HTTP cleanup stops it when nginx ends or terminates the (main) request.
    unsafe {
        let cln = ngx_pool_cleanup_add((*r).pool, 0);
        if cln.is_null() {
            let mut ctx = Box::from_raw(ctx);
            forget(&mut ctx);
            return Err("out of memory".into());
        }
        (*cln).handler = Some(free_ctx);
        (*cln).data = ctx as *mut c_void;
        let hcln = ngx_http_cleanup_add(r, 0);
        if hcln.is_null() {
            forget(&mut *ctx);
            return Err("out of memory".into());
        }
        (*hcln).handler = Some(stop_request);
        (*hcln).data = ctx as *mut c_void;
        (*ctx).guard.handler = Some(on_guard_timeout);
        (*ctx).guard.data = ctx as *mut c_void;
        (*ctx).guard.log = (*(*r).connection).log;
        *(*r).ctx.add(Module::module().ctx_index) = ctx as *mut c_void;
        (*r).read_event_handler = Some(ngx_http_test_reading);
        (*r).write_event_handler = Some(ngx_http_request_empty_handler);
        arm_guard(&mut *ctx);
    }
    registry_insert(id, ctx);
    Ok(ctx)
}

/// The request's HTTP cleanup (normal end, or `ngx_http_terminate_request`): unregister the
/// request, drop its future (cancelling it at the backend) and stop its guard. From here on
/// nothing of ours acts on the request; the context itself stays until [`free_ctx`].
unsafe extern "C" fn stop_request(data: *mut c_void) {
    ffi_guard!((), {
        // SAFETY: `data` is the live `ReqCtx` of `register` (freed only by the pool cleanup,
        // which runs after the HTTP cleanups); nginx thread.
        let ctx = unsafe { &mut *(data as *mut ReqCtx) };
        ctx.done = true;
        // SAFETY: the guard timer is ours.
        unsafe { disarm_guard(ctx) };
        forget(ctx);
        if ctx.blocked {
            ctx.blocked = false;
            // SAFETY: the request is allocated while its main request's cleanups run (a
            // subrequest lives in the main request's pool, destroyed after them). `writer`
            // would only return (done); terminate sets its own handler after the cleanups.
            unsafe { (*ctx.r).write_event_handler = Some(ngx_http_request_empty_handler) };
        }
    })
}

/// The request pool's cleanup: frees the context and the response bytes nginx may have held
/// until now (stopping the request first, in case [`stop_request`] has not run).
unsafe extern "C" fn free_ctx(data: *mut c_void) {
    ffi_guard!((), {
        // SAFETY: `data` is the `ReqCtx` leaked in `register`; the pool runs this exactly once.
        let mut ctx = unsafe { Box::from_raw(data as *mut ReqCtx) };
        // SAFETY: the guard timer is ours.
        unsafe { disarm_guard(&mut ctx) };
        forget(&mut ctx);
    })
}

/// Unregisters the request and drops its future / body (idempotent). Unregistering never
/// depends on what else is borrowed (see [`REQUESTS`]), so no wakeup can reach a freed context.
fn forget(ctx: &mut ReqCtx) {
    registry_remove(ctx.id);
    // Dropping the engine future / body cancels the request (PHP sees an aborted connection).
    ctx.local = None;
}

/// The eventfd's read handler: drain it, then pump every ready request.
unsafe extern "C" fn on_wakeup(ev: *mut ngx_event_t) {
    ffi_guard!((), {
        let Some((efd, wakeup)) = BRIDGE.with(|b| b.borrow().as_ref().map(|b| (b.wakeup.efd, b.wakeup.clone()))) else {
            return;
        };
        let mut counter: u64 = 0;
        // SAFETY: reading 8 bytes into a u64 from our non-blocking eventfd. Draining BEFORE
        // taking the ready list means a wake racing with us re-arms the fd: nothing is lost.
        unsafe {
            libc::read(efd, &mut counter as *mut u64 as *mut c_void, 8);
            (*ev).set_ready(0);
            ngx_handle_read_event(ev, 0);
        }
        pump_ready(|ids| wakeup.take_ready(ids));
    })
}

thread_local! {
    /// The id list [`pump_ready`] works through, kept for its capacity (swapped with the ready
    /// lists, so a wakeup allocates nothing).
    static PUMPING: Cell<Vec<u64>> = const { Cell::new(Vec::new()) };
}

/// Pumps the requests that `take` swaps in (duplicates and finished ones skipped) and runs
/// nginx's posted requests after each.
fn pump_ready(take: impl FnOnce(&mut Vec<u64>)) {
    let mut ids = PUMPING.take();
    take(&mut ids);
    ids.dedup();
    for &id in &ids {
        let Some(ctx) = registry_get(id) else {
            continue; // finished meanwhile
        };
        // SAFETY: registered contexts are alive (the cleanups unregister them first);
        // the connection outlives this call (nginx connections live in the cycle's array).
        unsafe {
            let c = (*(*ctx).r).connection;
            pump_guarded(ctx);
            ngx_http_run_posted_requests(c);
        }
    }
    ids.clear();
    PUMPING.set(ids);
}

fn msec(d: Duration) -> ngx_msec_t {
    d.as_millis().clamp(1, ngx_msec_t::MAX as u128 / 2) as ngx_msec_t
}

unsafe fn arm_guard(ctx: &mut ReqCtx) {
    // SAFETY: the guard event lives as long as `ctx`; the cleanups delete the timer.
    unsafe { ngx_add_timer(&mut ctx.guard, msec(ctx.settings.read_timeout + GUARD_MARGIN)) };
}

unsafe fn disarm_guard(ctx: &mut ReqCtx) {
    if ctx.guard.timer_set() != 0 {
        // SAFETY: our timer, set.
        unsafe { ngx_del_timer(&mut ctx.guard) };
    }
}

/// Idle guard fired: the backend sent nothing for `fephp_read_timeout`.
unsafe extern "C" fn on_guard_timeout(ev: *mut ngx_event_t) {
    ffi_guard!((), {
        // SAFETY: `data` is the live `ReqCtx` (the cleanups delete this timer).
        unsafe {
            let ctx = (*ev).data as *mut ReqCtx;
            let r = (*ctx).r;
            let c = (*r).connection;
            ngx_log_error!(NGX_LOG_ERR, (*c).log, "fephp: backend timeout: nothing received within fephp_read_timeout while serving \"{}\"", uri(r));
            let rc = if (*ctx).header_sent { NGX_ERROR as ngx_int_t } else { NGX_HTTP_GATEWAY_TIME_OUT as ngx_int_t };
            finish(ctx, rc);
            ngx_http_run_posted_requests(c);
        }
    })
}

/// Ends our part: drop the future and let nginx finalize with `rc`, once. `ctx` may be freed
/// when this returns: callers return right away. Nothing after the finalize can panic (a panic
/// dropping the future is caught before it), so no caller's panic fallback ever runs for a
/// request this has finalized.
unsafe fn finish(ctx: *mut ReqCtx, rc: ngx_int_t) {
    // SAFETY: `ctx` is live on entry.
    let r = unsafe {
        let c = &mut *ctx;
        c.done = true;
        disarm_guard(c);
        let _ = catch_panic(|| forget(c));
        c.r
    };
    // SAFETY: `r` is live; after this call neither `r` nor `ctx` is touched.
    unsafe { ngx_http_finalize_request(r, rc) };
}

/// The panic fallback of a content handler's body callback: ends `r` with `status` exactly
/// once. When [`start_local`] has already registered the request, the bridge owns its
/// finalization (its guard is armed): it is ended through the bridge, or left alone when the
/// bridge has already finalized it; otherwise it is finalized here.
///
/// # Safety
/// `r` must be a live request on the nginx thread that the caller has not finalized.
pub unsafe fn finalize_after_panic(r: *mut ngx_http_request_t, status: ngx_int_t) {
    // SAFETY: caller contract; our module ctx slot is null or a `ReqCtx`, freed only with the
    // request pool.
    unsafe {
        let ctx = *(*r).ctx.add(Module::module().ctx_index) as *mut ReqCtx;
        if ctx.is_null() {
            ngx_http_finalize_request(r, status);
            return;
        }
        if (*ctx).done {
            return;
        }
        let rc = if (*ctx).header_sent { NGX_ERROR as ngx_int_t } else { status };
        finish(ctx, rc);
    }
}

fn uri(r: *mut ngx_http_request_t) -> String {
    // SAFETY: `r` is a live request on the nginx thread.
    unsafe { String::from_utf8_lossy((*r).unparsed_uri.as_bytes()).into_owned() }
}

thread_local! {
    /// Body chunks collected by one [`pump`] call, kept between calls for the capacity.
    static SCRATCH: std::cell::Cell<Vec<Bytes>> = const { std::cell::Cell::new(Vec::new()) };
}

/// The thread's chunk list while a [`pump`] runs; handed back, emptied, when dropped.
struct Scratch(Vec<Bytes>);

impl Scratch {
    fn take() -> Scratch {
        Scratch(SCRATCH.take())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.0.clear();
        SCRATCH.set(std::mem::take(&mut self.0));
    }
}

/// [`pump`], and if something in it panics (the engine's poll is caught earlier, in
/// [`Local::poll_event`]): log it and end the request once, 500 (or a truncated response),
/// unless it already ended. The panic stops here, so the other requests of a wakeup are still
/// pumped and no caller's fallback finalizes the request again.
unsafe fn pump_guarded(ctx: *mut ReqCtx) {
    // SAFETY: `ctx` is live on entry.
    let id = unsafe { (*ctx).id };
    // SAFETY: caller contract.
    if let Err(msg) = catch_panic(|| unsafe { pump(ctx) }) {
        crate::log_panic(&msg);
        // Still registered means still live and not finished (`finish` unregisters first).
        if let Some(ctx) = registry_get(id) {
            // SAFETY: registered, so live.
            unsafe {
                if !(*ctx).done {
                    let rc = if (*ctx).header_sent {
                        NGX_ERROR as ngx_int_t
                    } else {
                        NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t
                    };
                    finish(ctx, rc);
                }
            }
        }
    }
}

/// Polls the request and writes what it yields, until it is pending, the client blocks or the
/// response ends.
unsafe fn pump(ctx: *mut ReqCtx) {
    // SAFETY: `ctx` is live on entry; every path that finalizes returns at once.
    unsafe {
        if (*ctx).done || (*ctx).blocked {
            return;
        }
        let r = (*ctx).r;
        let mut out = Scratch::take();
        let out = &mut out.0;
        let mut got_any = false;
        loop {
            let Some(local) = (*ctx).local.as_mut() else { return };
            let Some(ev) = local.poll_event() else { break };
            got_any = true;
            match ev {
                Event::Head(head) => {
                    if let Some(rc) = send_head(ctx, head) {
                        return finish(ctx, rc);
                    }
                }
                Event::Chunk(bytes) => {
                    if !(*ctx).header_only {
                        out.push(bytes);
                    }
                }
                Event::End => {
                    let rc = if (*ctx).header_only { NGX_OK as ngx_int_t } else { send_body(ctx, out, true) };
                    return finish(ctx, rc);
                }
                Event::Error(e) => {
                    let log = (*(*r).connection).log;
                    if (*ctx).header_sent {
                        ngx_log_error!(NGX_LOG_ERR, log, "fephp: response truncated: {e} while serving \"{}\"", uri(r));
                        if !out.is_empty() && !(*ctx).header_only {
                            send_body(ctx, out, false);
                        }
                        return finish(ctx, NGX_ERROR as ngx_int_t);
                    }
                    let status = e.status();
                    if status == 499 {
                        ngx_log_error!(NGX_LOG_INFO, log, "fephp: {e} while serving \"{}\"", uri(r));
                    } else {
                        ngx_log_error!(NGX_LOG_ERR, log, "fephp: {e} while serving \"{}\"", uri(r));
                    }
                    return finish(ctx, status as ngx_int_t);
                }
            }
        }
        if !out.is_empty() {
            let rc = send_body(ctx, out, false);
            if rc == NGX_ERROR as ngx_int_t {
                return finish(ctx, rc);
            }
        }
        if got_any && !(*ctx).blocked {
            arm_guard(&mut *ctx);
        }
    }
}

/// Sends the response head. `Some(rc)` means the request is over (error, HEAD, intercepted).
unsafe fn send_head(ctx: *mut ReqCtx, head: ResponseHead) -> Option<ngx_int_t> {
    // SAFETY: `ctx` and its request are live (nginx thread).
    unsafe {
        let r = (*ctx).r;
        if (*ctx).settings.intercept_errors && head.status >= 300 && has_error_page(r, head.status) {
            return Some(head.status as ngx_int_t);
        }
        (*r).headers_out.status = head.status as _;
        if let Some(reason) = &head.reason {
            // PHP's status line, as fastcgi_pass passes it on (nginx then keeps, for one, a
            // 204's Content-Type, which it drops when it writes the status line itself).
            let line = format!("{} {reason}", head.status);
            let Ok(line) = pool_str(r, line.as_bytes(), false) else { return Some(NGX_ERROR as ngx_int_t) };
            (*r).headers_out.status_line = line;
        }
        for (name, value) in &head.headers {
            if set_header(r, name, value).is_err() {
                return Some(NGX_ERROR as ngx_int_t);
            }
        }
        let rc = ngx_http_send_header(r);
        (*ctx).header_sent = true;
        (*ctx).header_only = (*r).header_only() != 0;
        if rc == NGX_ERROR as ngx_int_t || rc > NGX_OK as ngx_int_t || (*ctx).header_only {
            return Some(rc);
        }
        None
    }
}

/// True when the location has an `error_page` for `status`.
unsafe fn has_error_page(r: *mut ngx_http_request_t, status: u16) -> bool {
    // SAFETY: reading the request's core location configuration.
    unsafe {
        let Some(clcf) = NgxHttpCoreModule::location_conf(&*r) else { return false };
        let pages = clcf.error_pages;
        if pages.is_null() {
            return false;
        }
        let pages = std::slice::from_raw_parts((*pages).elts as *const ngx_http_err_page_t, (*pages).nelts);
        pages.iter().any(|p| p.status == status as ngx_int_t)
    }
}

unsafe fn pool_str(r: *mut ngx_http_request_t, s: &[u8], lowercase: bool) -> Result<ngx_str_t, ()> {
    // SAFETY: allocating from the live request's pool.
    unsafe {
        let p = ngx_pnalloc((*r).pool, s.len().max(1)) as *mut u8;
        if p.is_null() {
            return Err(());
        }
        let dst = std::slice::from_raw_parts_mut(p, s.len());
        dst.copy_from_slice(s);
        if lowercase {
            dst.make_ascii_lowercase();
        }
        Ok(ngx_str_t { len: s.len(), data: p })
    }
}

/// Maps one PHP header onto `r->headers_out` (the list, plus the pointers nginx's filters use).
unsafe fn set_header(r: *mut ngx_http_request_t, name: &str, value: &str) -> Result<(), ()> {
    // SAFETY: `r` is live; everything is allocated from its pool.
    unsafe {
        let out = &mut (*r).headers_out;
        let role = header_use(name);
        match role {
            HeaderUse::Hidden => return Ok(()),
            HeaderUse::ContentLength => {
                if let Some(n) = content_length(value) {
                    out.content_length_n = n as _;
                }
                return Ok(());
            }
            HeaderUse::ContentType => {
                let v = pool_str(r, value.as_bytes(), false)?;
                out.content_type = v;
                out.content_type_len = v.len;
                out.content_type_lowcase = ptr::null_mut();
                return Ok(());
            }
            _ => {}
        }
        let h = ngx_list_push(&mut out.headers) as *mut ngx_table_elt_t;
        if h.is_null() {
            return Err(());
        }
        ptr::write_bytes(h, 0, 1);
        (*h).hash = 1;
        (*h).key = pool_str(r, name.as_bytes(), false)?;
        (*h).value = pool_str(r, value.as_bytes(), false)?;
        (*h).lowcase_key = pool_str(r, name.as_bytes(), true)?.data;
        match role {
            // As nginx's upstream module: only an absolute URL becomes `headers_out.location`;
            // a relative one (`/x`) stays a plain header, so nginx's header filter does not
            // make it absolute from the client's Host (fastcgi_pass passes `/x` unchanged).
            HeaderUse::Location if !value.starts_with('/') => out.location = h,
            HeaderUse::Server => out.server = h,
            HeaderUse::Date => out.date = h,
            HeaderUse::ContentEncoding => out.content_encoding = h,
            _ => {}
        }
        Ok(())
    }
}

/// Writes body chunks (and the last buffer when `last`). Returns the output filter's code;
/// marks the request blocked when the client can't take more now.
unsafe fn send_body(ctx: *mut ReqCtx, chunks: &mut Vec<Bytes>, last: bool) -> ngx_int_t {
    // SAFETY: `ctx` and its request are live (nginx thread); buffers come from the request pool.
    unsafe {
        let c = &mut *ctx;
        let r = c.r;
        let pool = (*r).pool;
        let tag = Module::module() as *const _ as *mut c_void;
        let mut out: *mut ngx_chain_t = ptr::null_mut();
        let mut tail: *mut *mut ngx_chain_t = &mut out;
        let count = chunks.len();
        for (i, bytes) in chunks.drain(..).enumerate() {
            let cl = ngx_chain_get_free_buf(pool, &mut c.free);
            if cl.is_null() {
                return NGX_ERROR as ngx_int_t;
            }
            let b = (*cl).buf;
            ptr::write_bytes(b, 0, 1);
            let start = bytes.as_ptr() as *mut u8;
            (*b).start = start;
            (*b).pos = start;
            (*b).last = start.add(bytes.len());
            (*b).end = (*b).last;
            (*b).set_memory(1);
            (*b).tag = tag;
            if i + 1 == count && !last {
                (*b).set_flush(1);
            }
            c.held.push_back((b, bytes));
            *tail = cl;
            tail = &mut (*cl).next;
        }
        if last {
            let cl = ngx_chain_get_free_buf(pool, &mut c.free);
            if cl.is_null() {
                return NGX_ERROR as ngx_int_t;
            }
            let b = (*cl).buf;
            ptr::write_bytes(b, 0, 1);
            (*b).tag = tag;
            // As `ngx_http_send_special(r, NGX_HTTP_LAST)`: `last_buf` ends the response of
            // the main request only; a subrequest (or post_action) ends its part of the output
            // with `last_in_chain` and `sync`, which makes the empty buffer a special one (not
            // a "zero size buf in output").
            if r == (*r).main && (*r).post_action() == 0 {
                (*b).set_last_buf(1);
            } else {
                (*b).set_sync(1);
                (*b).set_last_in_chain(1);
            }
            *tail = cl;
        }
        let rc = ngx_http_output_filter(r, out);
        after_output(c, out);
        if rc == NGX_ERROR as ngx_int_t {
            return rc;
        }
        if !last && (rc == NGX_AGAIN as ngx_int_t || !c.busy.is_null()) {
            block(c);
        }
        rc
    }
}

/// Recycles the buffers nginx has finished with and releases their `Bytes`.
unsafe fn after_output(c: &mut ReqCtx, mut out: *mut ngx_chain_t) {
    // SAFETY: our chains, in the live request's pool.
    unsafe {
        let tag = Module::module() as *const _ as *mut c_void;
        ngx_chain_update_chains((*c.r).pool, &mut c.free, &mut c.busy, &mut out, tag);
        let mut busy = Vec::new();
        let mut cl = c.busy;
        while !cl.is_null() {
            busy.push((*cl).buf);
            cl = (*cl).next;
        }
        c.held.retain(|(b, _)| busy.contains(b));
    }
}

/// The client is slow: stop pulling, wait for the write event.
unsafe fn block(c: &mut ReqCtx) {
    c.blocked = true;
    // SAFETY: live request on the nginx thread.
    unsafe {
        disarm_guard(c);
        (*c.r).write_event_handler = Some(writer);
        wait_writable(c.r);
    }
}

unsafe fn wait_writable(r: *mut ngx_http_request_t) -> bool {
    // SAFETY: live request on the nginx thread.
    unsafe {
        let wev = (*(*r).connection).write;
        let Some(clcf) = NgxHttpCoreModule::location_conf(&*r) else { return false };
        if (*wev).delayed() == 0 {
            ngx_add_timer(wev, clcf.send_timeout);
        }
        ngx_handle_write_event(wev, clcf.send_lowat) == NGX_OK as ngx_int_t
    }
}

/// `r->write_event_handler` while the client is slow: flush, then resume pulling.
unsafe extern "C" fn writer(r: *mut ngx_http_request_t) {
    ffi_guard!((), {
        // SAFETY: nginx calls this for a live request whose module ctx we set in `register`.
        unsafe {
            let ctx = *(*r).ctx.add(Module::module().ctx_index) as *mut ReqCtx;
            if ctx.is_null() || (*ctx).done {
                return;
            }
            let c = (*r).connection;
            let wev = (*c).write;
            if (*wev).timedout() != 0 {
                ngx_log_error!(NGX_LOG_INFO, (*c).log, "fephp: client timed out");
                (*c).set_timedout(1);
                return finish(ctx, NGX_HTTP_REQUEST_TIME_OUT as ngx_int_t);
            }
            let rc = ngx_http_output_filter(r, ptr::null_mut());
            after_output(&mut *ctx, ptr::null_mut());
            if rc == NGX_ERROR as ngx_int_t {
                return finish(ctx, rc);
            }
            if rc == NGX_AGAIN as ngx_int_t || !(*ctx).busy.is_null() {
                if !wait_writable(r) {
                    return finish(ctx, NGX_ERROR as ngx_int_t);
                }
                return;
            }
            if (*wev).timer_set() != 0 {
                ngx_del_timer(wev);
            }
            (*ctx).blocked = false;
            (*r).write_event_handler = Some(ngx_http_request_empty_handler);
            arm_guard(&mut *ctx);
            pump_guarded(ctx);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request context with no nginx request behind it (only what `forget` touches).
    fn test_ctx(id: u64) -> Box<ReqCtx> {
        Box::new(ReqCtx {
            id,
            r: ptr::null_mut(),
            local: None,
            // SAFETY: an all-zero ngx_event_t is its idle state.
            guard: unsafe { std::mem::zeroed() },
            settings: Settings { read_timeout: Duration::from_secs(1), intercept_errors: false },
            header_sent: false,
            header_only: false,
            done: false,
            blocked: false,
            free: ptr::null_mut(),
            busy: ptr::null_mut(),
            held: VecDeque::new(),
        })
    }

    /// A bridge with no nginx behind it: a runtime and a wakeup, no connection.
    fn test_bridge() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let wakeup = Arc::new(Wakeup { state: Mutex::new((Vec::new(), false)), efd: -1 });
        // SAFETY: an all-zero ngx_event_t is its idle state.
        let ready_event: Box<ngx_event_t> = Box::new(unsafe { std::mem::zeroed() });
        BRIDGE.with(|b| {
            *b.borrow_mut() = Some(Bridge { runtime, wakeup, conn: ptr::null_mut(), ready_event, next_id: 1 })
        });
    }

    #[test]
    fn a_panicking_engine_future_is_one_error_event() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let wakeup = Arc::new(Wakeup { state: Mutex::new((Vec::new(), false)), efd: -1 });
        let waker = Arc::new(ReqWaker { id: 1, wakeup, queued: AtomicBool::new(false) });
        let fut: LocalFuture = Box::pin(async { panic!("engine bug") });
        let mut local = Local { state: LocalState::Starting(fut), waker, runtime: runtime.handle().clone() };
        let ev = catch_panic(|| local.poll_event())
            .expect("a panic while polling must not unwind out of the bridge (the handler would finalize again)");
        match ev {
            Some(Event::Error(EngineError::Internal(msg))) => assert!(msg.contains("engine bug"), "{msg}"),
            _ => panic!("expected an internal error event"),
        }
        assert!(matches!(local.state, LocalState::Done));
    }

    #[test]
    fn forget_unregisters_even_while_the_bridge_is_borrowed() {
        test_bridge();
        let mut ctx = test_ctx(7);
        let raw: *mut ReqCtx = &mut *ctx;
        registry_insert(7, raw);
        BRIDGE.with(|b| {
            let _held = b.borrow();
            forget(&mut ctx);
        });
        let left = registry_get(7);
        assert!(left.is_none(), "a forgotten request stays registered: a later wakeup would pump freed memory");
    }
}
