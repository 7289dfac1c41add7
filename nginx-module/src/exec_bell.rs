//! The executor pool's shared-memory doorbell on nginx's event loop: the worker's eventfd
//! (rung by executors when a response is ready) becomes an nginx connection, so its
//! readiness comes from nginx's own epoll and the requests it wakes are polled on this thread
//! (their wakers post the bridge's ready event: no eventfd of the bridge, no thread hop).

use std::ffi::c_void;
use std::io;
use std::sync::Arc;

use fephp::executor::shm::{Bell, BellHost};
use ngx::ffi::{ngx_close_connection, ngx_connection_t, ngx_cycle, ngx_event_t, ngx_get_connection, ngx_handle_read_event, ngx_int_t, NGX_OK};

thread_local! {
    /// The doorbell connections of this worker (closed by [`close_all`] at exit).
    static BELLS: std::cell::RefCell<Vec<*mut ngx_connection_t>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Closes this worker's doorbell connections (at `exit_process`, so nginx finds no socket left
/// open) and drops their bells.
///
/// # Safety
/// Call on the worker's nginx thread, once the requests that used the doorbells are gone.
pub unsafe fn close_all() {
    for c in BELLS.with(|b| std::mem::take(&mut *b.borrow_mut())) {
        // SAFETY: our connections, made in `watch`, each closed once; `data` holds the Arc.
        unsafe {
            drop(Arc::from_raw((*c).data as *const Bell));
            ngx_close_connection(c);
        }
    }
}

/// Watches an executor client's doorbell with nginx's event loop (see the module docs).
#[derive(Debug, Default)]
pub struct NgxBellHost;

impl BellHost for NgxBellHost {
    fn watch(&self, bell: Arc<Bell>) -> io::Result<()> {
        if !crate::bridge::on_nginx_thread() {
            return Err(io::Error::other("the executor doorbell is registered on nginx's thread only"));
        }
        // A descriptor of our own for nginx to own (ngx_close_connection closes it).
        // SAFETY: plain fcntl on a valid descriptor.
        let fd = unsafe { libc::fcntl(bell.fd(), libc::F_DUPFD_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: nginx thread (checked above); the cycle is running; the connection keeps a
        // leaked `Arc<Bell>` in `data` for the life of the process (one per worker).
        unsafe {
            let log = (*ngx_cycle).log;
            let c: *mut ngx_connection_t = ngx_get_connection(fd, log);
            if c.is_null() {
                libc::close(fd);
                return Err(io::Error::other("no free connection for the executor doorbell (worker_connections)"));
            }
            (*c).data = Arc::into_raw(bell) as *mut c_void;
            let rev = (*c).read;
            (*rev).handler = Some(on_bell);
            (*rev).log = log;
            (*(*c).write).log = log;
            (*c).log = log;
            if ngx_handle_read_event(rev, 0) != NGX_OK as ngx_int_t {
                drop(Arc::from_raw((*c).data as *const Bell));
                ngx_close_connection(c);
                return Err(io::Error::other("cannot add the executor doorbell to the event loop"));
            }
            BELLS.with(|b| b.borrow_mut().push(c));
        }
        Ok(())
    }
}

/// The doorbell's read handler: reset it and wake the requests whose slots changed.
unsafe extern "C" fn on_bell(ev: *mut ngx_event_t) {
    ffi_guard!((), {
        // SAFETY: nginx calls the handler with our event; `data` is the leaked Arc<Bell>.
        unsafe {
            let c = (*ev).data as *mut ngx_connection_t;
            let bell = &*((*c).data as *const Bell);
            // Reset before waking (a ring racing with us re-arms the edge-triggered fd).
            bell.ring();
            (*ev).set_ready(0);
            ngx_handle_read_event(ev, 0);
        }
    })
}
