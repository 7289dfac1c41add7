//! The response's way out to the client: the head into nginx's structures (through
//! [`super::headers`]), body chunks as buffers pointing into the engine's bytes, and the
//! client's back-pressure (stop pulling while nginx cannot send, resume on the write event).

use std::collections::VecDeque;
use std::ffi::c_void;
use std::ptr;

use bytes::Bytes;
use fephp::cgi::ResponseHead;
use ngx::ffi::{
    ngx_add_timer, ngx_buf_t, ngx_chain_get_free_buf, ngx_chain_t, ngx_chain_update_chains, ngx_del_timer,
    ngx_handle_write_event, ngx_http_err_page_t, ngx_http_output_filter, ngx_http_request_empty_handler,
    ngx_http_request_t, ngx_http_send_header, ngx_int_t, NGX_AGAIN, NGX_ERROR, NGX_HTTP_REQUEST_TIME_OUT,
    NGX_LOG_INFO, NGX_OK,
};
use ngx::http::{HttpModule, HttpModuleLocationConf, NgxHttpCoreModule};
use ngx::ngx_log_error;

use super::headers;
use super::lifecycle::{arm_guard, disarm_guard, finish, pump_guarded, ReqCtx};
use super::Settings;
use crate::Module;

/// The output side of one request.
pub(super) struct Out {
    pub(super) header_sent: bool,
    /// A HEAD request (or a status without a body): the body is not sent.
    pub(super) header_only: bool,
    /// The client cannot take more now: we wait for its write event.
    pub(super) blocked: bool,
    free: *mut ngx_chain_t,
    busy: *mut ngx_chain_t,
    /// Body chunks nginx may still be sending, with the buffer that points into each.
    held: VecDeque<(*mut ngx_buf_t, Bytes)>,
}

impl Out {
    pub(super) fn new(_settings: &Settings) -> Out {
        Out {
            header_sent: false,
            header_only: false,
            blocked: false,
            free: ptr::null_mut(),
            busy: ptr::null_mut(),
            held: VecDeque::new(),
        }
    }
}

thread_local! {
    /// Body chunks collected by one pump, kept between pumps for the capacity.
    static BATCH: std::cell::Cell<Vec<Bytes>> = const { std::cell::Cell::new(Vec::new()) };
}

/// The thread's chunk list while a pump runs; handed back, emptied, when dropped.
pub(super) struct Batch(Vec<Bytes>);

impl Batch {
    pub(super) fn take() -> Batch {
        Batch(BATCH.take())
    }
    pub(super) fn push(&mut self, b: Bytes) {
        self.0.push(b);
    }
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        self.0.clear();
        BATCH.set(std::mem::take(&mut self.0));
    }
}

/// Sends the response head. `Some(rc)` means the request is over (error, HEAD, intercepted).
pub(super) unsafe fn send_head(ctx: *mut ReqCtx, head: ResponseHead) -> Option<ngx_int_t> {
    // SAFETY: `ctx` and its request are live (nginx thread).
    unsafe {
        let r = (*ctx).r;
        if (*ctx).settings.intercept_errors && head.status >= 300 && has_error_page(r, head.status) {
            return Some(head.status as ngx_int_t);
        }
        if headers::copy_head(r, &head).is_err() {
            return Some(NGX_ERROR as ngx_int_t);
        }
        let rc = ngx_http_send_header(r);
        let out = &mut (*ctx).out;
        out.header_sent = true;
        out.header_only = (*r).header_only() != 0;
        if rc == NGX_ERROR as ngx_int_t || rc > NGX_OK as ngx_int_t || out.header_only {
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

/// Writes body chunks (and the last buffer when `last`). Returns the output filter's code;
/// marks the request blocked when the client can't take more now.
pub(super) unsafe fn send_body(ctx: *mut ReqCtx, chunks: &mut Batch, last: bool) -> ngx_int_t {
    // SAFETY: `ctx` and its request are live (nginx thread); buffers come from the request pool.
    unsafe {
        let r = (*ctx).r;
        let c = &mut (*ctx).out;
        let pool = (*r).pool;
        let tag = Module::module() as *const _ as *mut c_void;
        let mut out: *mut ngx_chain_t = ptr::null_mut();
        let mut tail: *mut *mut ngx_chain_t = &mut out;
        let count = chunks.0.len();
        for (i, bytes) in chunks.0.drain(..).enumerate() {
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
        after_output(r, c, out);
        if rc == NGX_ERROR as ngx_int_t {
            return rc;
        }
        if !last && (rc == NGX_AGAIN as ngx_int_t || !c.busy.is_null()) {
            block(ctx);
        }
        rc
    }
}

/// Recycles the buffers nginx has finished with and releases their `Bytes`.
unsafe fn after_output(r: *mut ngx_http_request_t, c: &mut Out, mut out: *mut ngx_chain_t) {
    // SAFETY: our chains, in the live request's pool.
    unsafe {
        let tag = Module::module() as *const _ as *mut c_void;
        ngx_chain_update_chains((*r).pool, &mut c.free, &mut c.busy, &mut out, tag);
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
unsafe fn block(ctx: *mut ReqCtx) {
    // SAFETY: live request on the nginx thread.
    unsafe {
        (*ctx).out.blocked = true;
        disarm_guard(&mut *ctx);
        let r = (*ctx).r;
        (*r).write_event_handler = Some(writer);
        wait_writable(r);
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
            after_output(r, &mut (*ctx).out, ptr::null_mut());
            if rc == NGX_ERROR as ngx_int_t {
                return finish(ctx, rc);
            }
            if rc == NGX_AGAIN as ngx_int_t || !(*ctx).out.busy.is_null() {
                if !wait_writable(r) {
                    return finish(ctx, NGX_ERROR as ngx_int_t);
                }
                return;
            }
            if (*wev).timer_set() != 0 {
                ngx_del_timer(wev);
            }
            (*ctx).out.blocked = false;
            (*r).write_event_handler = Some(ngx_http_request_empty_handler);
            arm_guard(&mut *ctx);
            pump_guarded(ctx);
        }
    })
}
