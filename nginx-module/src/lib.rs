//! `ngx_http_fephp_module`: serve PHP from nginx through the fe-php engine.
//!
//! A thin nginx surface over [`fephp::Engine`]: directives (the `fastcgi_*` twins, see
//! [`conf`]), a content handler that turns an nginx request into a [`fephp::Request`]
//! ([`handler`]), the one bridge that polls the engine on the nginx thread and takes wakeups from
//! other threads back to the nginx event loop ([`bridge`]), and the PHP-FPM sockets as nginx
//! connections ([`ngx_socket`]). Nothing but [`bridge`] receives data from other threads, and
//! nothing touches `ngx_http_request_t` off the nginx thread.
//!
//! File order follows nginx modules: configuration types, the command table, the module context,
//! the `ngx_module_t`, then functions in lifecycle order (configuration, worker start, requests,
//! worker exit).

// nginx-sys bindings use C naming; our FFI entry points take raw pointers by design.
#![allow(clippy::missing_safety_doc)]
#![deny(missing_docs)]

use std::ffi::{c_char, c_void};
use std::ptr::addr_of;

use ngx::ffi::{
    ngx_command_t, ngx_conf_t, ngx_cycle_t, ngx_http_module_t, ngx_int_t, ngx_module_t, ngx_str_t,
    ngx_uint_t, NGX_CONF_1MORE, NGX_CONF_FLAG, NGX_CONF_NOARGS, NGX_CONF_TAKE1, NGX_CONF_TAKE12, NGX_CONF_TAKE2, NGX_CONF_TAKE23, NGX_CONF_TAKE1234,
    NGX_HTTP_LIF_CONF, NGX_HTTP_LOC_CONF, NGX_HTTP_LOC_CONF_OFFSET, NGX_HTTP_MAIN_CONF,
    NGX_HTTP_MAIN_CONF_OFFSET, NGX_HTTP_MODULE, NGX_HTTP_SRV_CONF, NGX_LOG_ALERT,
};
use ngx::http::{HttpModule, HttpModuleLocationConf, HttpModuleMainConf};

/// Runs `$body` (an FFI entry point's work) and turns a panic into `$default` plus an
/// `[alert]` line in the cycle log: a panic never unwinds into nginx.
macro_rules! ffi_guard {
    ($default:expr, $body:block) => {
        match ::fephp::error::catch_panic(|| $body) {
            Ok(value) => value,
            Err(what) => {
                $crate::log_panic(&what);
                $default
            }
        }
    };
}

pub mod bridge;
pub mod conf;
pub mod exec_bell;
pub mod executors;
pub mod handler;
pub mod ngx_socket;
pub mod response_conf;
pub mod status;
pub mod upstream;
pub mod worker;

use conf::{LocConf, MainConf};

// ---------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------

const LOC: u32 = NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF;

/// Builds one `ngx_command_t`.
const fn command(
    name: &'static [u8],
    type_: u32,
    set: unsafe extern "C" fn(*mut ngx_conf_t, *mut ngx_command_t, *mut c_void) -> *mut c_char,
    conf: usize,
) -> ngx_command_t {
    ngx_command_t {
        // `name` literals below end with NUL, which is not part of the length.
        name: ngx_str_t { len: name.len() - 1, data: name.as_ptr() as *mut u8 },
        type_: type_ as ngx_uint_t,
        set: Some(set),
        conf: conf as ngx_uint_t,
        offset: 0,
        post: std::ptr::null_mut(),
    }
}

/// The directives; see [`conf`] for what each one does.
static mut NGX_HTTP_FEPHP_COMMANDS: [ngx_command_t; 38] = [
    command(b"fephp_pass\0", NGX_HTTP_LOC_CONF | NGX_HTTP_LIF_CONF | NGX_CONF_TAKE1, conf::set_pass, NGX_HTTP_LOC_CONF_OFFSET),
    command(b"fephp_param\0", LOC | NGX_CONF_TAKE23, conf::set_param, NGX_HTTP_LOC_CONF_OFFSET),
    command(b"fephp_index\0", LOC | NGX_CONF_TAKE1, conf::set_index, NGX_HTTP_LOC_CONF_OFFSET),
    command(b"fephp_split_path_info\0", LOC | NGX_CONF_TAKE1, conf::set_split_path_info, NGX_HTTP_LOC_CONF_OFFSET),
    command(b"fephp_connect_timeout\0", LOC | NGX_CONF_TAKE1, conf::set_connect_timeout, NGX_HTTP_LOC_CONF_OFFSET),
    command(b"fephp_send_timeout\0", LOC | NGX_CONF_TAKE1, conf::set_send_timeout, NGX_HTTP_LOC_CONF_OFFSET),
    command(b"fephp_read_timeout\0", LOC | NGX_CONF_TAKE1, conf::set_read_timeout, NGX_HTTP_LOC_CONF_OFFSET),
    command(b"fephp_buffer_size\0", LOC | NGX_CONF_TAKE1, conf::set_buffer_size, NGX_HTTP_LOC_CONF_OFFSET),
    command(b"fephp_max_connections\0", LOC | NGX_CONF_TAKE1, conf::set_max_connections, NGX_HTTP_LOC_CONF_OFFSET),
    // The old name of fephp_max_connections (deprecated: warns).
    command(b"fephp_keepalive\0", LOC | NGX_CONF_TAKE1, conf::set_max_connections, NGX_HTTP_LOC_CONF_OFFSET),
    command(b"fephp_max_requests\0", LOC | NGX_CONF_TAKE1, conf::set_max_requests, NGX_HTTP_LOC_CONF_OFFSET),
    command(b"fephp_intercept_errors\0", LOC | NGX_CONF_FLAG, conf::set_intercept_errors, NGX_HTTP_LOC_CONF_OFFSET),
    command(b"fephp_queue\0", LOC | NGX_CONF_TAKE12, conf::set_queue, NGX_HTTP_LOC_CONF_OFFSET),
    command(b"fephp_status\0", NGX_HTTP_LOC_CONF | NGX_CONF_NOARGS, conf::set_status, NGX_HTTP_LOC_CONF_OFFSET),
    command(b"fephp_php_value\0", LOC | NGX_CONF_TAKE2, conf::set_php_value, NGX_HTTP_LOC_CONF_OFFSET),
    command(b"fephp_php_admin_value\0", LOC | NGX_CONF_TAKE2, conf::set_php_admin_value, NGX_HTTP_LOC_CONF_OFFSET),
    command(b"fephp_php_ini\0", NGX_HTTP_MAIN_CONF | NGX_CONF_TAKE2, conf::set_php_ini, NGX_HTTP_MAIN_CONF_OFFSET),
    command(b"fephp_php_ini_file\0", NGX_HTTP_MAIN_CONF | NGX_CONF_TAKE1, conf::set_php_ini_file, NGX_HTTP_MAIN_CONF_OFFSET),
    command(b"fephp_next_upstream\0", LOC | NGX_CONF_1MORE, conf::set_next_upstream, NGX_HTTP_LOC_CONF_OFFSET),
    command(b"fephp_next_upstream_tries\0", LOC | NGX_CONF_TAKE1, conf::set_next_upstream_tries, NGX_HTTP_LOC_CONF_OFFSET),
    command(b"fephp_executors\0", NGX_HTTP_MAIN_CONF | NGX_CONF_1MORE, executors::set_executors, NGX_HTTP_MAIN_CONF_OFFSET),
    command(b"fephp_executor_max_requests\0", NGX_HTTP_MAIN_CONF | NGX_CONF_TAKE1, executors::set_executor_max_requests, NGX_HTTP_MAIN_CONF_OFFSET),
    command(b"fephp_executor_user\0", NGX_HTTP_MAIN_CONF | NGX_CONF_TAKE12, executors::set_executor_user, NGX_HTTP_MAIN_CONF_OFFSET),
    command(b"fephp_request_terminate_timeout\0", NGX_HTTP_MAIN_CONF | NGX_CONF_TAKE1, executors::set_request_terminate_timeout, NGX_HTTP_MAIN_CONF_OFFSET),
    command(b"fephp_executor_binary\0", NGX_HTTP_MAIN_CONF | NGX_CONF_TAKE1, executors::set_executor_binary, NGX_HTTP_MAIN_CONF_OFFSET),
    command(b"fephp_executor_transport\0", NGX_HTTP_MAIN_CONF | NGX_CONF_TAKE1, executors::set_executor_transport, NGX_HTTP_MAIN_CONF_OFFSET),
    command(b"fephp_worker\0", LOC | NGX_CONF_1MORE, executors::set_worker, NGX_HTTP_MAIN_CONF_OFFSET),
    command(b"fephp_slowlog_timeout\0", NGX_HTTP_MAIN_CONF | NGX_CONF_TAKE1, conf::set_slowlog_timeout, NGX_HTTP_MAIN_CONF_OFFSET),
    command(b"fephp_slowlog\0", NGX_HTTP_MAIN_CONF | NGX_CONF_TAKE1, conf::set_slowlog, NGX_HTTP_MAIN_CONF_OFFSET),
    command(b"fephp_buffering\0", LOC | NGX_CONF_FLAG, response_conf::set_buffering, NGX_HTTP_LOC_CONF_OFFSET),
    command(b"fephp_buffers\0", LOC | NGX_CONF_TAKE2, response_conf::set_buffers, NGX_HTTP_LOC_CONF_OFFSET),
    command(b"fephp_temp_path\0", LOC | NGX_CONF_TAKE1234, response_conf::set_temp_path, NGX_HTTP_LOC_CONF_OFFSET),
    command(b"fephp_max_temp_file_size\0", LOC | NGX_CONF_TAKE1, response_conf::set_max_temp_file_size, NGX_HTTP_LOC_CONF_OFFSET),
    command(b"fephp_temp_file_write_size\0", LOC | NGX_CONF_TAKE1, response_conf::set_temp_file_write_size, NGX_HTTP_LOC_CONF_OFFSET),
    command(b"fephp_hide_header\0", LOC | NGX_CONF_TAKE1, response_conf::set_hide_header, NGX_HTTP_LOC_CONF_OFFSET),
    command(b"fephp_pass_header\0", LOC | NGX_CONF_TAKE1, response_conf::set_pass_header, NGX_HTTP_LOC_CONF_OFFSET),
    command(b"fephp_ignore_headers\0", LOC | NGX_CONF_1MORE, response_conf::set_ignore_headers, NGX_HTTP_LOC_CONF_OFFSET),
    ngx_command_t::empty(),
];

// ---------------------------------------------------------------------------------------------
// Module
// ---------------------------------------------------------------------------------------------

/// The module type behind `ngx_http_fephp_module`.
pub struct Module;

impl HttpModule for Module {
    fn module() -> &'static ngx_module_t {
        // SAFETY: the static is only mutated by nginx while loading (ctx_index, index), on the
        // single configuration thread.
        unsafe { &*addr_of!(ngx_http_fephp_module) }
    }

}

// SAFETY: the main configuration of this module is a `MainConf` (see `create_main_conf`).
unsafe impl HttpModuleMainConf for Module {
    type MainConf = MainConf;
}

// SAFETY: the location configuration of this module is a `LocConf` (see `create_loc_conf`).
unsafe impl HttpModuleLocationConf for Module {
    type LocationConf = LocConf;
}

static NGX_HTTP_FEPHP_MODULE_CTX: ngx_http_module_t = ngx_http_module_t {
    preconfiguration: None,
    postconfiguration: Some(executors::postconfiguration),
    create_main_conf: Some(Module::create_main_conf),
    init_main_conf: None,
    create_srv_conf: None,
    merge_srv_conf: None,
    create_loc_conf: Some(Module::create_loc_conf),
    merge_loc_conf: Some(merge_loc_conf),
};

/// The exported module list (`ngx_modules`, `ngx_module_names`, `ngx_module_order`) nginx reads.
mod exports {
    #![allow(missing_docs)]
    use super::ngx_http_fephp_module;
    ngx::ngx_modules!(ngx_http_fephp_module);
}

/// The `ngx_module_t` nginx loads (`load_module modules/ngx_http_fephp_module.so;`).
#[no_mangle]
#[allow(non_upper_case_globals)]
pub static mut ngx_http_fephp_module: ngx_module_t = ngx_module_t {
    ctx: addr_of!(NGX_HTTP_FEPHP_MODULE_CTX) as *mut c_void,
    // SAFETY: only the address is taken; nginx reads the table while configuring.
    commands: addr_of!(NGX_HTTP_FEPHP_COMMANDS) as *mut ngx_command_t,
    type_: NGX_HTTP_MODULE as ngx_uint_t,
    init_module: Some(init_module),
    init_process: Some(init_process),
    exit_process: Some(exit_process),
    ..ngx_module_t::default()
};

/// Merges a location configuration with its parent (see [`conf::merge_loc_conf`]).
unsafe extern "C" fn merge_loc_conf(cf: *mut ngx_conf_t, prev: *mut c_void, conf: *mut c_void) -> *mut c_char {
    ffi_guard!(ngx::core::NGX_CONF_ERROR as *mut c_char, {
        // SAFETY: nginx passes the parent's and this level's configuration, both created by
        // `create_loc_conf` as `LocConf`, and a valid `cf`.
        unsafe { conf::merge_loc_conf(cf, &*(prev as *const LocConf), &mut *(conf as *mut LocConf)) }
    })
}

/// Module init (the master, at start and at each reload; nothing under `nginx -t`): starts the
/// executor pool when a location uses `fephp_pass executors` (see [`executors`]).
unsafe extern "C" fn init_module(cycle: *mut ngx_cycle_t) -> ngx_int_t {
    ffi_guard!(ngx::ffi::NGX_ERROR as ngx_int_t, {
        // SAFETY: nginx passes the new cycle, on its main thread.
        unsafe { executors::init_module(cycle) }
    })
}

/// Worker start: starts this worker's tokio runtime, its wakeup eventfd and its engines (the
/// embedded PHP thread, one FPM pool per distinct address + settings). Runs after `fork`, so no
/// thread ever exists in the master process.
unsafe extern "C" fn init_process(cycle: *mut ngx_cycle_t) -> ngx_int_t {
    ffi_guard!(ngx::ffi::NGX_ERROR as ngx_int_t, {
        // SAFETY: nginx passes the new cycle.
        unsafe { worker::init(cycle) }
    })
}

/// Worker exit: stops the engines and the runtime, closes the wakeup eventfd.
unsafe extern "C" fn exit_process(cycle: *mut ngx_cycle_t) {
    ffi_guard!((), {
        // SAFETY: nginx passes the exiting cycle.
        unsafe { worker::exit(cycle) }
    })
}

/// Logs a caught panic's message ([`fephp::error::panic_message`]) at `[alert]` in the cycle log.
#[doc(hidden)]
pub fn log_panic(msg: &str) {
    let log = ngx::log::ngx_cycle_log().as_ptr();
    ngx::ngx_log_error!(NGX_LOG_ALERT, log, "fephp: panic caught at the FFI boundary: {msg}");
}
