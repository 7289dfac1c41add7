//! The bridge: the ONE place where results from other threads come back to the nginx loop.
//!
//! Its parts, one job each (as nginx splits `ngx_http_upstream.c` from the protocol modules):
//! - [`wakeup`]: the worker's runtime, the eventfd and the posted ready event, the per-request
//!   waker and the registry of requests in flight;
//! - [`poll`]: a request's engine side (its future, then its body) as a sequence of events;
//! - [`lifecycle`]: start, register, pump, guard, finish, and the request's cleanups;
//! - [`output`]: the response's way out to the client (body buffers, back-pressure);
//! - [`headers`]: the response head into `r->headers_out`, as the upstream module's table;
//! - [`states`]: `r->upstream_states`, what nginx's `$upstream_*` variables read.
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

use std::time::Duration;

mod headers;
mod lifecycle;
mod output;
mod poll;
mod states;
mod wakeup;

pub use lifecycle::{finalize_after_panic, start_local};
pub use poll::{LocalFuture, Output};
pub use wakeup::{in_runtime, on_nginx_thread, start, stop};

/// Per-request settings of the nginx side.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Idle guard while waiting for the backend (`fephp_read_timeout`).
    pub read_timeout: Duration,
    /// `fephp_intercept_errors`.
    pub intercept_errors: bool,
    /// `fephp_buffering` and its companions.
    pub buffering: crate::response_conf::Buffering,
    /// The backend's address for `$upstream_addr` (in memory that outlives the request; null:
    /// no `$upstream_*` state, e.g. `fephp_status`).
    pub peer: *mut ngx::ffi::ngx_str_t,
}
