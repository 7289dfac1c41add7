//! A request's life on the bridge: start and register it ([`start_local`]), pump it when woken
//! ([`pump`]), guard it against a silent backend, and end it exactly once ([`finish`]; the
//! request's HTTP and pool cleanups when nginx ends it).

use std::ffi::c_void;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use fephp::error::catch_panic;
use std::ptr;

use ngx::ffi::{
    ngx_add_timer, ngx_del_timer, ngx_event_t, ngx_http_cleanup_add, ngx_http_core_get_method,
    ngx_http_finalize_request, ngx_http_internal_redirect, ngx_http_named_location, ngx_http_parse_unsafe_uri,
    ngx_http_request_empty_handler, ngx_http_request_t, ngx_http_run_posted_requests, ngx_http_test_reading,
    ngx_int_t, ngx_msec_t, ngx_pool_cleanup_add, ngx_str_t, ngx_uint_t, NGX_DONE, NGX_ERROR, NGX_HTTP_GATEWAY_TIME_OUT,
    NGX_HTTP_GET, NGX_HTTP_HEAD, NGX_HTTP_INTERNAL_SERVER_ERROR, NGX_HTTP_LOG_UNSAFE, NGX_HTTP_NOT_FOUND, NGX_LOG_ERR,
    NGX_LOG_INFO, NGX_OK,
};
use ngx::http::HttpModule;
use ngx::ngx_log_error;

use super::output::{self, HeadSent, Out};
use super::poll::{Event, Local, LocalFuture, LocalState};
use super::states;
use super::wakeup::{registry_get, registry_insert, registry_remove, ReqWaker, BRIDGE};
use super::Settings;
use crate::Module;

/// The idle guard fires this long after `fephp_read_timeout`, so the engine's own timeout (with
/// its precise error) wins when it has one (FPM); the guard covers embedded PHP.
const GUARD_MARGIN: Duration = Duration::from_secs(1);

/// The nginx-side state of one request in flight. Boxed (the guard event must not move), owned
/// by the request pool's cleanup, stopped by the request's HTTP cleanup (see [`register`]).
pub(super) struct ReqCtx {
    pub(super) id: u64,
    pub(super) r: *mut ngx_http_request_t,
    /// The request's future / body; `None` once over.
    pub(super) local: Option<Local>,
    pub(super) guard: ngx_event_t,
    pub(super) settings: Settings,
    /// Set once the request is ended (by us or by nginx): nothing of ours acts on it any more.
    pub(super) done: bool,
    /// The response's way out to the client.
    pub(super) out: Out,
    /// This request's `$upstream_*` state.
    pub(super) state: Option<states::State>,
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
        done: false,
        out: Out::new(&settings),
        // SAFETY: `r` is live (caller contract); `peer` outlives it (Settings contract).
        state: unsafe { states::begin(r, settings.peer) },
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
        let stopped_by_nginx = !ctx.done;
        ctx.done = true;
        // SAFETY: the guard timer is ours.
        unsafe { disarm_guard(ctx) };
        forget(ctx);
        if stopped_by_nginx {
            // Ended by nginx (client abort, timeout, terminate): as nginx records 499 then.
            end_state(ctx, 0);
        }
        if ctx.out.blocked || ctx.out.writing {
            ctx.out.blocked = false;
            ctx.out.writing = false;
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
/// depends on what else is borrowed (see the registry in [`super::wakeup`]), so no wakeup can
/// reach a freed context.
pub(super) fn forget(ctx: &mut ReqCtx) {
    registry_remove(ctx.id);
    // Dropping the engine future / body cancels the request (PHP sees an aborted connection).
    ctx.local = None;
}

fn msec(d: Duration) -> ngx_msec_t {
    d.as_millis().clamp(1, ngx_msec_t::MAX as u128 / 2) as ngx_msec_t
}

/// (Re)arms the idle guard: `fephp_read_timeout` (plus a margin) from now.
pub(super) unsafe fn arm_guard(ctx: &mut ReqCtx) {
    // SAFETY: the guard event lives as long as `ctx`; the cleanups delete the timer.
    unsafe { ngx_add_timer(&mut ctx.guard, msec(ctx.settings.read_timeout + GUARD_MARGIN)) };
}

/// Stops the idle guard (the client, not the backend, is what we wait for now).
pub(super) unsafe fn disarm_guard(ctx: &mut ReqCtx) {
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
            let rc = if (*ctx).out.header_sent { NGX_ERROR as ngx_int_t } else { NGX_HTTP_GATEWAY_TIME_OUT as ngx_int_t };
            finish(ctx, rc);
            ngx_http_run_posted_requests(c);
        }
    })
}

/// Ends our part: drop the future and let nginx finalize with `rc`, once. `ctx` may be freed
/// when this returns: callers return right away. Nothing after the finalize can panic (a panic
/// dropping the future is caught before it), so no caller's panic fallback ever runs for a
/// request this has finalized.
pub(super) unsafe fn finish(ctx: *mut ReqCtx, rc: ngx_int_t) {
    // SAFETY: `ctx` is live on entry.
    let r = unsafe {
        let c = &mut *ctx;
        c.done = true;
        disarm_guard(c);
        let _ = catch_panic(|| forget(c));
        end_state(c, rc);
        c.r
    };
    // SAFETY: `r` is live; after this call neither `r` nor `ctx` is touched.
    unsafe { ngx_http_finalize_request(r, rc) };
}

/// Records the end of our part in the request's `$upstream_*` state (`rc`: the code the
/// request ends with; an HTTP status when no head arrived).
fn end_state(c: &mut ReqCtx, rc: ngx_int_t) {
    if let Some(st) = c.state {
        let status = if (100..600).contains(&rc) { rc as u16 } else { 0 };
        // SAFETY: the request is live while we end our part of it.
        unsafe { states::end(c.r, st, status) };
    }
}

/// `X-Accel-Redirect`: ends our part (PHP's body is discarded: dropping the response cancels
/// it at the backend) and redirects the request internally, exactly as
/// `ngx_http_upstream_process_headers`: `@name` → that named location; else the URI (and its
/// `?args`) is checked by `ngx_http_parse_unsafe_uri` (unsafe → 404), the method becomes GET
/// unless it is HEAD, and `ngx_http_internal_redirect` runs (so `internal;` locations are
/// reachable, as with `fastcgi_pass`).
unsafe fn redirect(ctx: *mut ReqCtx, uri: String) {
    // SAFETY: `ctx` is live on entry; after `forget` only `r` is used, which is live.
    unsafe {
        let r = {
            let c = &mut *ctx;
            c.done = true;
            disarm_guard(c);
            let _ = catch_panic(|| forget(c));
            end_state(c, 0);
            c.r
        };
        let Ok(mut target) = pool_bytes(r, uri.as_bytes()) else {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t);
            return;
        };
        if uri.starts_with('@') {
            ngx_http_named_location(r, &mut target);
        } else {
            let mut args = ngx_str_t { len: 0, data: ptr::null_mut() };
            let mut flags: ngx_uint_t = NGX_HTTP_LOG_UNSAFE as ngx_uint_t;
            if ngx_http_parse_unsafe_uri(r, &mut target, &mut args, &mut flags) != NGX_OK as ngx_int_t {
                ngx_http_finalize_request(r, NGX_HTTP_NOT_FOUND as ngx_int_t);
                return;
            }
            if (*r).method != NGX_HTTP_HEAD as ngx_uint_t {
                (*r).method = NGX_HTTP_GET as ngx_uint_t;
                (*r).method_name = ngx_http_core_get_method;
            }
            ngx_http_internal_redirect(r, &mut target, &mut args);
        }
        ngx_http_finalize_request(r, NGX_DONE as ngx_int_t);
    }
}

/// Copies `s` into the request pool.
unsafe fn pool_bytes(r: *mut ngx_http_request_t, s: &[u8]) -> Result<ngx_str_t, ()> {
    // SAFETY: allocating from the live request's pool.
    unsafe {
        let p = ngx::ffi::ngx_pnalloc((*r).pool, s.len().max(1)) as *mut u8;
        if p.is_null() {
            return Err(());
        }
        ptr::copy_nonoverlapping(s.as_ptr(), p, s.len());
        Ok(ngx_str_t { len: s.len(), data: p })
    }
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
        let rc = if (*ctx).out.header_sent { NGX_ERROR as ngx_int_t } else { status };
        finish(ctx, rc);
    }
}

/// The request's URI, for log lines.
pub(super) fn uri(r: *mut ngx_http_request_t) -> String {
    // SAFETY: `r` is a live request on the nginx thread.
    unsafe { String::from_utf8_lossy((*r).unparsed_uri.as_bytes()).into_owned() }
}

/// [`pump`], and if something in it panics (the engine's poll is caught earlier, in
/// [`Local::poll_event`]): log it and end the request once, 500 (or a truncated response),
/// unless it already ended. The panic stops here, so the other requests of a wakeup are still
/// pumped and no caller's fallback finalizes the request again.
pub(super) unsafe fn pump_guarded(ctx: *mut ReqCtx) {
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
                    let rc = if (*ctx).out.header_sent {
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
        if (*ctx).done || (*ctx).out.blocked {
            return;
        }
        let r = (*ctx).r;
        let mut batch = output::Batch::take();
        let mut got_any = false;
        loop {
            let Some(local) = (*ctx).local.as_mut() else { return };
            let Some(ev) = local.poll_event() else { break };
            got_any = true;
            match ev {
                Event::Head(head) => {
                    if let Some(st) = (*ctx).state {
                        states::header(r, st, head.status);
                    }
                    match output::send_head(ctx, head) {
                        HeadSent::Body => {}
                        HeadSent::Over(rc) => return finish(ctx, rc),
                        HeadSent::Redirect(uri) => return redirect(ctx, uri),
                    }
                }
                Event::Chunk(bytes) => {
                    if let Some(st) = (*ctx).state {
                        states::received(r, st, bytes.len());
                    }
                    if !(*ctx).out.header_only {
                        batch.push(bytes);
                        if batch.bytes() >= (*ctx).out.batch_limit() {
                            if output::send_body(ctx, &mut batch, false) == NGX_ERROR as ngx_int_t {
                                return finish(ctx, NGX_ERROR as ngx_int_t);
                            }
                            if (*ctx).out.blocked {
                                break;
                            }
                        }
                    }
                }
                Event::End => {
                    let rc = if (*ctx).out.header_only {
                        NGX_OK as ngx_int_t
                    } else {
                        output::send_body(ctx, &mut batch, true)
                    };
                    return finish(ctx, rc);
                }
                Event::Error(e) => {
                    let log = (*(*r).connection).log;
                    if (*ctx).out.header_sent {
                        ngx_log_error!(NGX_LOG_ERR, log, "fephp: response truncated: {e} while serving \"{}\"", uri(r));
                        if !batch.is_empty() && !(*ctx).out.header_only {
                            output::send_body(ctx, &mut batch, false);
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
        if !batch.is_empty() {
            let rc = output::send_body(ctx, &mut batch, false);
            if rc == NGX_ERROR as ngx_int_t {
                return finish(ctx, rc);
            }
        }
        if got_any && !(*ctx).out.blocked {
            arm_guard(&mut *ctx);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::ptr;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::bridge::wakeup::{Bridge, Wakeup};

    /// A request context with no nginx request behind it (only what `forget` touches).
    fn test_ctx(id: u64) -> Box<ReqCtx> {
        let buffering = crate::response_conf::ResponseConf::default().buffering();
        let settings =
            Settings { read_timeout: Duration::from_secs(1), intercept_errors: false, buffering, peer: ptr::null_mut() };
        Box::new(ReqCtx {
            id,
            r: ptr::null_mut(),
            local: None,
            // SAFETY: an all-zero ngx_event_t is its idle state.
            guard: unsafe { std::mem::zeroed() },
            settings,
            done: false,
            out: Out::new(&settings),
            state: None,
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
