//! The response's way out to the client: the head into nginx's structures (through
//! [`super::headers`]), body chunks as buffers pointing into the engine's bytes, and the
//! client's back-pressure (stop pulling while nginx cannot send, resume on the write event).

use std::collections::VecDeque;
use std::ffi::{c_char, c_void};
use std::ptr;

use bytes::Bytes;
use fephp::cgi::ResponseHead;
use ngx::ffi::{
    ngx_add_timer, ngx_buf_t, ngx_chain_get_free_buf, ngx_chain_t, ngx_chain_update_chains, ngx_del_timer,
    ngx_handle_write_event, ngx_http_err_page_t, ngx_http_output_filter, ngx_http_request_empty_handler,
    ngx_http_request_t, ngx_http_send_header, ngx_int_t, ngx_pcalloc, ngx_temp_file_t, ngx_write_chain_to_temp_file,
    off_t, NGX_AGAIN, NGX_ERROR, NGX_HTTP_REQUEST_TIME_OUT, NGX_LOG_INFO, NGX_LOG_WARN, NGX_OK,
};
use ngx::http::{HttpModule, HttpModuleLocationConf, NgxHttpCoreModule};
use ngx::ngx_log_error;

use super::headers;
use super::lifecycle::{arm_guard, disarm_guard, finish, pump_guarded, ReqCtx};
use super::Settings;
use crate::response_conf::Buffering;
use crate::Module;

/// The output side of one request.
pub(super) struct Out {
    pub(super) header_sent: bool,
    /// A HEAD request (or a status without a body): the body is not sent.
    pub(super) header_only: bool,
    /// We stop pulling from the engine: the client cannot take more now and (buffering) the
    /// memory and temp file limits are reached.
    pub(super) blocked: bool,
    /// [`writer`] is the request's write handler: nginx holds output the client has not taken.
    pub(super) writing: bool,
    /// This response is buffered (`fephp_buffering`, or `X-Accel-Buffering`): its settings.
    buffering: Option<Buffering>,
    free: *mut ngx_chain_t,
    busy: *mut ngx_chain_t,
    /// Body chunks nginx may still be sending, with the buffer that points into each.
    held: VecDeque<(*mut ngx_buf_t, Bytes)>,
    /// Their total size.
    held_bytes: usize,
    /// The temp file of a buffered response (allocated from the request pool on first use).
    temp: *mut ngx_temp_file_t,
}

impl Out {
    pub(super) fn new(settings: &Settings) -> Out {
        Out {
            header_sent: false,
            header_only: false,
            blocked: false,
            writing: false,
            buffering: settings.buffering.enabled.then_some(settings.buffering),
            free: ptr::null_mut(),
            busy: ptr::null_mut(),
            held: VecDeque::new(),
            held_bytes: 0,
            temp: ptr::null_mut(),
        }
    }

    /// How many bytes a pump collects before handing them on (buffering: one temp file write;
    /// streaming: all that is ready).
    pub(super) fn batch_limit(&self) -> usize {
        self.buffering.map_or(usize::MAX, |b| b.write_size)
    }

    /// Bytes written to the temp file so far.
    fn temp_size(&self) -> u64 {
        // SAFETY: `temp` is null or our temp file in the live request pool.
        if self.temp.is_null() { 0 } else { unsafe { (*self.temp).offset as u64 } }
    }

    /// Buffering, and both the memory and the temp file are full: stop pulling.
    fn buffers_full(&self, b: &Buffering) -> bool {
        self.held_bytes >= b.memory && self.temp_size() >= b.max_temp_file_size
    }
}

thread_local! {
    /// Body chunks collected by one pump, kept between pumps for the capacity.
    static BATCH: std::cell::Cell<Vec<Bytes>> = const { std::cell::Cell::new(Vec::new()) };
}

/// The thread's chunk list while a pump runs; handed back, emptied, when dropped.
pub(super) struct Batch(Vec<Bytes>, usize);

impl Batch {
    pub(super) fn take() -> Batch {
        Batch(BATCH.take(), 0)
    }
    pub(super) fn push(&mut self, b: Bytes) {
        self.1 += b.len();
        self.0.push(b);
    }
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Bytes collected.
    pub(super) fn bytes(&self) -> usize {
        self.1
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        self.0.clear();
        BATCH.set(std::mem::take(&mut self.0));
    }
}

/// What became of the response head.
pub(super) enum HeadSent {
    /// Sent: the body follows.
    Body,
    /// The request is over with this code (error, HEAD, intercepted error page).
    Over(ngx_int_t),
    /// `X-Accel-Redirect` to this URI or `@name`: nothing was sent.
    Redirect(String),
}

/// Sends the response head (or reports an `X-Accel-Redirect`).
pub(super) unsafe fn send_head(ctx: *mut ReqCtx, head: ResponseHead) -> HeadSent {
    // SAFETY: `ctx` and its request are live (nginx thread).
    unsafe {
        let r = (*ctx).r;
        if (*ctx).settings.intercept_errors && head.status >= 300 && has_error_page(r, head.status) {
            return HeadSent::Over(head.status as ngx_int_t);
        }
        let controls = match headers::copy_head(r, &head) {
            Ok(controls) => controls,
            Err(()) => return HeadSent::Over(NGX_ERROR as ngx_int_t),
        };
        if let Some(uri) = controls.redirect {
            return HeadSent::Redirect(uri);
        }
        // `X-Accel-Buffering: yes | no` switches buffering for this response, as nginx's
        // upstream module does for FastCGI.
        match controls.buffering {
            Some(true) => (*ctx).out.buffering = Some(Buffering { enabled: true, ..(*ctx).settings.buffering }),
            Some(false) => (*ctx).out.buffering = None,
            None => {}
        }
        let rc = ngx_http_send_header(r);
        let out = &mut (*ctx).out;
        out.header_sent = true;
        out.header_only = (*r).header_only() != 0;
        if rc == NGX_ERROR as ngx_int_t || rc > NGX_OK as ngx_int_t || out.header_only {
            return HeadSent::Over(rc);
        }
        HeadSent::Body
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

/// Writes body chunks (and the last buffer when `last`). Returns the output filter's code.
///
/// Streaming: marks the request blocked when the client can't take more now (back-pressure to
/// PHP). Buffering: what nginx cannot send now stays with nginx, in memory up to
/// `fephp_buffers`, then in the temp file (`ngx_write_chain_to_temp_file`, as the event pipe
/// does) up to `fephp_max_temp_file_size`; the request blocks only when both are full.
pub(super) unsafe fn send_body(ctx: *mut ReqCtx, chunks: &mut Batch, last: bool) -> ngx_int_t {
    // SAFETY: `ctx` and its request are live (nginx thread); buffers come from the request pool.
    unsafe {
        let r = (*ctx).r;
        let c = &mut (*ctx).out;
        let pool = (*r).pool;
        let tag = Module::module() as *const _ as *mut c_void;
        let mut out: *mut ngx_chain_t = ptr::null_mut();
        let mut tail: *mut *mut ngx_chain_t = &mut out;
        let mut last_cl: *mut ngx_chain_t = ptr::null_mut();
        // Chunks bound for the temp file, written as one buffer when the run ends.
        let mut to_file: Vec<Bytes> = Vec::new();
        let mut spilling = false;
        chunks.1 = 0;
        // Taken out for the loop (which also borrows `c`), handed back for its capacity.
        let mut all = std::mem::take(&mut chunks.0);
        for bytes in all.drain(..) {
            if let Some(b) = c.buffering {
                let mem_ok = !spilling && c.held_bytes + bytes.len() <= b.memory;
                let file_ok = c.temp_size() + (to_file.iter().map(Bytes::len).sum::<usize>() + bytes.len()) as u64
                    <= b.max_temp_file_size;
                if !mem_ok && file_ok {
                    spilling = true;
                    to_file.push(bytes);
                    continue;
                }
            }
            if !to_file.is_empty() {
                let Some(cl) = file_buf(r, c, &mut to_file, tag) else { return NGX_ERROR as ngx_int_t };
                *tail = cl;
                tail = &mut (*cl).next;
                spilling = false;
            }
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
            c.held_bytes += bytes.len();
            c.held.push_back((b, bytes));
            *tail = cl;
            tail = &mut (*cl).next;
            last_cl = cl;
        }
        chunks.0 = all;
        if !to_file.is_empty() {
            let Some(cl) = file_buf(r, c, &mut to_file, tag) else { return NGX_ERROR as ngx_int_t };
            *tail = cl;
            tail = &mut (*cl).next;
            last_cl = cl;
        }
        if !last && !last_cl.is_null() {
            (*(*last_cl).buf).set_flush(1);
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
        if rc == NGX_ERROR as ngx_int_t || last {
            return rc;
        }
        let pending = rc == NGX_AGAIN as ngx_int_t || !c.busy.is_null();
        match c.buffering {
            None if pending => block(ctx),
            Some(b) => {
                if pending && !wait_client(ctx) {
                    return NGX_ERROR as ngx_int_t;
                }
                if (*ctx).out.buffers_full(&b) {
                    (*ctx).out.blocked = true;
                    disarm_guard(&mut *ctx);
                }
            }
            None => {}
        }
        rc
    }
}

/// Writes `chunks` to the request's temp file (created on first use, in `fephp_temp_path`,
/// with nginx's "buffered to a temporary file" warning) and returns a chain link with one file
/// buffer covering them.
unsafe fn file_buf(r: *mut ngx_http_request_t, c: &mut Out, chunks: &mut Vec<Bytes>, tag: *mut c_void) -> Option<*mut ngx_chain_t> {
    // SAFETY: live request on the nginx thread; the temp file and the buffer live in its pool;
    // the chain handed to nginx's writer points into `chunks`, which outlive the (synchronous)
    // write.
    unsafe {
        let b = c.buffering?;
        if c.temp.is_null() {
            let tf = ngx_pcalloc((*r).pool, std::mem::size_of::<ngx_temp_file_t>()) as *mut ngx_temp_file_t;
            if tf.is_null() {
                return None;
            }
            (*tf).file.fd = -1; // NGX_INVALID_FILE
            (*tf).file.log = (*(*r).connection).log;
            (*tf).path = b.temp_path;
            (*tf).pool = (*r).pool;
            (*tf).warn = c"a fephp response is buffered to a temporary file".as_ptr() as *mut c_char;
            (*tf).set_log_level(NGX_LOG_WARN);
            c.temp = tf;
        }
        let tf = c.temp;
        // SAFETY: all-zero ngx_buf_t / ngx_chain_t are valid empty values.
        let mut bufs: Vec<ngx_buf_t> = (0..chunks.len()).map(|_| std::mem::zeroed()).collect();
        let mut links: Vec<ngx_chain_t> = (0..chunks.len()).map(|_| std::mem::zeroed()).collect();
        for (i, bytes) in chunks.iter().enumerate() {
            let buf = &mut bufs[i];
            let start = bytes.as_ptr() as *mut u8;
            buf.start = start;
            buf.pos = start;
            buf.last = start.add(bytes.len());
            buf.end = buf.last;
            buf.set_memory(1);
        }
        let n = links.len();
        for i in 0..n {
            links[i].buf = &mut bufs[i];
            links[i].next = if i + 1 < n { &mut links[i + 1] } else { ptr::null_mut() };
        }
        let total: usize = chunks.iter().map(Bytes::len).sum();
        let from = (*tf).offset;
        let written = ngx_write_chain_to_temp_file(tf, links.as_mut_ptr());
        chunks.clear();
        if written == NGX_ERROR as isize || written as usize != total {
            return None;
        }
        (*tf).offset += written as off_t;
        let cl = ngx_chain_get_free_buf((*r).pool, &mut c.free);
        if cl.is_null() {
            return None;
        }
        let fb = (*cl).buf;
        ptr::write_bytes(fb, 0, 1);
        (*fb).set_in_file(1);
        (*fb).set_temp_file(1);
        (*fb).file = &mut (*tf).file;
        (*fb).file_pos = from;
        (*fb).file_last = (*tf).offset;
        (*fb).tag = tag;
        Some(cl)
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
        c.held_bytes = c.held.iter().map(|(_, bytes)| bytes.len()).sum();
    }
}

/// The client is slow and we stream: stop pulling, wait for the write event.
unsafe fn block(ctx: *mut ReqCtx) {
    // SAFETY: live request on the nginx thread.
    unsafe {
        (*ctx).out.blocked = true;
        disarm_guard(&mut *ctx);
        wait_client(ctx);
    }
}

/// Makes [`writer`] the request's write handler and waits for the client (send timeout).
unsafe fn wait_client(ctx: *mut ReqCtx) -> bool {
    // SAFETY: live request on the nginx thread.
    unsafe {
        let r = (*ctx).r;
        (*ctx).out.writing = true;
        (*r).write_event_handler = Some(writer);
        wait_writable(r)
    }
}

unsafe fn wait_writable(r: *mut ngx_http_request_t) -> bool {
    // SAFETY: live request on the nginx thread.
    unsafe {
        let wev = (*(*r).connection).write;
        let Some(clcf) = NgxHttpCoreModule::location_conf(&*r) else { return false };
        if (*wev).delayed() == 0 && (*wev).timer_set() == 0 {
            ngx_add_timer(wev, clcf.send_timeout);
        }
        ngx_handle_write_event(wev, clcf.send_lowat) == NGX_OK as ngx_int_t
    }
}

/// `r->write_event_handler` while nginx holds output the client has not taken: flush; resume
/// pulling from the engine when we had stopped and there is room again.
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
            let sent_before = (*c).sent;
            let rc = ngx_http_output_filter(r, ptr::null_mut());
            after_output(r, &mut (*ctx).out, ptr::null_mut());
            if rc == NGX_ERROR as ngx_int_t {
                return finish(ctx, rc);
            }
            let pending = rc == NGX_AGAIN as ngx_int_t || !(*ctx).out.busy.is_null();
            if pending {
                // The client took something: its send timeout starts again.
                if (*c).sent != sent_before && (*wev).timer_set() != 0 {
                    ngx_del_timer(wev);
                }
                if !wait_writable(r) {
                    return finish(ctx, NGX_ERROR as ngx_int_t);
                }
            } else {
                if (*wev).timer_set() != 0 {
                    ngx_del_timer(wev);
                }
                (*ctx).out.writing = false;
                (*r).write_event_handler = Some(ngx_http_request_empty_handler);
            }
            let resume = match (*ctx).out.buffering {
                None => !pending,
                Some(b) => !(*ctx).out.buffers_full(&b),
            };
            if (*ctx).out.blocked && resume {
                (*ctx).out.blocked = false;
                arm_guard(&mut *ctx);
                pump_guarded(ctx);
            }
        }
    })
}
