//! What nginx's `$upstream_*` variables read: one `ngx_http_upstream_state_t` per PHP request
//! in `r->upstream_states`, filled as `ngx_http_upstream.c` fills it (times in milliseconds
//! from the start, the status, the bytes received, the backend's address). nginx's own
//! variable handlers read only `r->upstream_states` (not `r->upstream`), so
//! `$upstream_response_time`, `$upstream_header_time`, `$upstream_status`, `$upstream_addr`,
//! `$upstream_bytes_received` and `$upstream_response_length` work unchanged, across internal
//! redirects too (`X-Accel-Redirect` to another PHP location appends a state after nginx's
//! `" : "` separator, an empty state).

use ngx::ffi::{
    ngx_array_create, ngx_array_push, ngx_http_request_t, ngx_http_upstream_state_t, ngx_msec_t, ngx_str_t,
};

/// "Not measured" (nginx's `(ngx_msec_t) -1`, printed as `-`).
const UNSET: ngx_msec_t = ngx_msec_t::MAX;

/// A request's state in `r->upstream_states`: its index (the array may move when it grows) and
/// its start.
#[derive(Debug, Clone, Copy)]
pub(super) struct State {
    index: usize,
    start: ngx_msec_t,
}

fn now() -> ngx_msec_t {
    // SAFETY: nginx's cached clock, read on the nginx thread.
    unsafe { ngx::ffi::ngx_current_msec }
}

/// Appends a state for a request to `peer` (an empty `peer`: no state, e.g. `fephp_status`).
///
/// # Safety
/// `r` must be a live request on the nginx thread; `peer` must outlive it.
pub(super) unsafe fn begin(r: *mut ngx_http_request_t, peer: *mut ngx_str_t) -> Option<State> {
    // SAFETY: caller contract; the array and its elements live in the request pool.
    unsafe {
        if peer.is_null() || (*peer).len == 0 {
            return None;
        }
        let size = std::mem::size_of::<ngx_http_upstream_state_t>();
        if (*r).upstream_states.is_null() {
            (*r).upstream_states = ngx_array_create((*r).pool, 1, size);
            if (*r).upstream_states.is_null() {
                return None;
            }
        } else if (*(*r).upstream_states).nelts > 0 {
            // An earlier upstream / PHP request of this request (before an internal redirect):
            // nginx separates them with an empty state (" : " in the variables).
            let sep = ngx_array_push((*r).upstream_states) as *mut ngx_http_upstream_state_t;
            if sep.is_null() {
                return None;
            }
            std::ptr::write_bytes(sep, 0, 1);
        }
        let s = ngx_array_push((*r).upstream_states) as *mut ngx_http_upstream_state_t;
        if s.is_null() {
            return None;
        }
        std::ptr::write_bytes(s, 0, 1);
        (*s).response_time = UNSET;
        (*s).connect_time = UNSET;
        (*s).header_time = UNSET;
        (*s).queue_time = UNSET;
        (*s).peer = peer;
        Some(State { index: (*(*r).upstream_states).nelts - 1, start: now() })
    }
}

/// The state's element, if `r` still has it.
unsafe fn get(r: *mut ngx_http_request_t, st: State) -> Option<*mut ngx_http_upstream_state_t> {
    // SAFETY: live request; `index` was pushed by `begin` (an internal redirect keeps the array).
    unsafe {
        let a = (*r).upstream_states;
        if a.is_null() || st.index >= (*a).nelts {
            return None;
        }
        Some(((*a).elts as *mut ngx_http_upstream_state_t).add(st.index))
    }
}

/// The response head arrived with `status`.
///
/// # Safety
/// `r` must be the live request `st` was begun for.
pub(super) unsafe fn header(r: *mut ngx_http_request_t, st: State, status: u16) {
    // SAFETY: caller contract.
    unsafe {
        if let Some(s) = get(r, st) {
            (*s).status = status as _;
            (*s).header_time = now().wrapping_sub(st.start);
        }
    }
}

/// Body bytes received from the backend.
///
/// # Safety
/// `r` must be the live request `st` was begun for.
pub(super) unsafe fn received(r: *mut ngx_http_request_t, st: State, bytes: usize) {
    // SAFETY: caller contract.
    unsafe {
        if let Some(s) = get(r, st) {
            (*s).bytes_received += bytes as i64;
            (*s).response_length += bytes as i64;
        }
    }
}

/// Our part of the request ended; `status` is recorded when no head arrived (an error: 502,
/// 504, ...; 0 leaves `-`). Idempotent: the first end counts.
///
/// # Safety
/// `r` must be the live request `st` was begun for.
pub(super) unsafe fn end(r: *mut ngx_http_request_t, st: State, status: u16) {
    // SAFETY: caller contract.
    unsafe {
        if let Some(s) = get(r, st) {
            if (*s).response_time != UNSET {
                return;
            }
            if (*s).status == 0 {
                (*s).status = status as _;
            }
            (*s).response_time = now().wrapping_sub(st.start);
        }
    }
}
