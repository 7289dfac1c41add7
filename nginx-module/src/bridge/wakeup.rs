//! Wakeups: how a request that became ready (on another thread, or on the nginx thread itself)
//! gets polled again on the nginx thread. The eventfd, the posted ready event, the per-request
//! waker, the registry of requests in flight, and the worker's runtime ([`start`] / [`stop`]).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::c_void;
use std::hash::{BuildHasherDefault, Hasher};
use std::os::fd::RawFd;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Wake;
use std::time::Duration;

use ngx::ffi::{
    ngx_close_connection, ngx_connection_t, ngx_cycle_t, ngx_delete_posted_event, ngx_event_t, ngx_get_connection,
    ngx_handle_read_event, ngx_http_run_posted_requests, ngx_int_t, NGX_OK,
};

use super::lifecycle::{pump_guarded, ReqCtx};

// ---------------------------------------------------------------------------------------------
// Cross-thread part: the eventfd.
// ---------------------------------------------------------------------------------------------

/// Shared between the nginx thread and the runtime threads.
pub(super) struct Wakeup {
    /// Ready request ids and whether the eventfd is still open (both under one lock so a late
    /// waker can never write to a closed, possibly reused, descriptor).
    pub(super) state: Mutex<(Vec<u64>, bool)>,
    pub(super) efd: RawFd,
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

/// The waker of a local request: one wakeup per time it becomes ready.
pub(super) struct ReqWaker {
    pub(super) id: u64,
    pub(super) wakeup: Arc<Wakeup>,
    /// Set when queued for the nginx loop, cleared right before it polls the request.
    pub(super) queued: AtomicBool,
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

// ---------------------------------------------------------------------------------------------
// The worker's bridge and the registry of requests in flight.
// ---------------------------------------------------------------------------------------------

pub(super) struct Bridge {
    pub(super) runtime: tokio::runtime::Runtime,
    pub(super) wakeup: Arc<Wakeup>,
    pub(super) conn: *mut ngx_connection_t,
    /// The event [`post_local`] posts (boxed: nginx's queue points into it).
    pub(super) ready_event: Box<ngx_event_t>,
    pub(super) next_id: u64,
}

thread_local! {
    pub(super) static BRIDGE: RefCell<Option<Bridge>> = const { RefCell::new(None) };
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

pub(super) fn registry_insert(id: u64, ctx: *mut ReqCtx) {
    REQUESTS.with(|m| m.borrow_mut().insert(id, ctx));
}

pub(super) fn registry_get(id: u64) -> Option<*mut ReqCtx> {
    REQUESTS.with(|m| m.borrow().get(&id).copied())
}

pub(super) fn registry_remove(id: u64) {
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
