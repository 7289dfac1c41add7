//! `fephp_pass executors;`: PHP in a pool of executor processes (see `fephp::executor`),
//! started by the nginx master and shared by every worker through one queue.
//!
//! Lifecycle, in nginx's terms:
//! - `init_module` (the master, at start and at every reload; never under `nginx -t`): when a
//!   location uses `fephp_pass executors`, [`fephp::executor::Pool::start`] creates the
//!   scoreboard (shared memory), the listening socket and the two liveness pipes and forks the
//!   supervisor, which starts PHP once and forks the executors. A cleanup on the cycle's pool
//!   drains that pool when the cycle goes (a reload: in-flight requests of the old workers
//!   finish on the old executors; the old pool exits when the last old worker has exited).
//! - `init_process` (each worker): closes its copy of the master-only pipe end (so the master's
//!   death alone is seen), keeps the users end until it exits, and builds the worker's executor
//!   engine: an nginx-connection client of the pool's socket.
//!
//! | directive | context | default |
//! |---|---|---|
//! | `fephp_executors N [start=S] [min_spare=A] [max_spare=B] [idle_timeout=TIME];` | http | `5`, static (Debian php-fpm's `pm.max_children`); any of the options makes the pool dynamic, up to N |
//! | `fephp_executor_max_requests N;` | http | `0` (never recycle) |
//! | `fephp_executor_user USER [GROUP];` | http | nginx's worker `user` when the master is root |
//! | `fephp_request_terminate_timeout TIME;` | http | `0` (off) |
//! | `fephp_executor_binary PATH;` | http | — (the supervisor is a forked copy of the master) |
//! | `fephp_executor_transport shm \| socket;` | http | `shm` |
//! | `fephp_worker PATH [executors=N] [max_requests=M] [watch=GLOB …];` | http, server, location | — (classic mode) |
//!
//! `fephp_worker` puts the configuration's ONE executor pool in worker mode
//! ([`fephp::php::worker`]): every executor runs the worker script once, and every request of
//! every `fephp_pass executors` location goes to its `fephp_handle_request()` handler. It may be
//! written where it is used (a location), but there is one worker script per configuration: a
//! second `fephp_worker` must name the same script. `executors=` and `max_requests=` are
//! `fephp_executors N` and `fephp_executor_max_requests M`; `watch=` may repeat.

use std::ffi::{c_char, c_void};
use std::time::Duration;

use fephp::executor::{lookup_user, Client, ClientConfig, ExecutorOptions, Pool, Transport};
use fephp::php::PhpOptions;
use ngx::ffi::{
    ngx_command_t, ngx_conf_t, ngx_core_conf_t, ngx_core_module, ngx_cycle_t, ngx_int_t, ngx_parse_time,
    ngx_pool_cleanup_add, ngx_process, ngx_test_config, NGX_ERROR, NGX_LOG_EMERG, NGX_LOG_NOTICE, NGX_OK,
    NGX_PROCESS_SINGLE, NGX_PROCESS_WORKER,
};
use ngx::http::HttpModuleMainConf;
use ngx::{ngx_conf_log_error, ngx_log_error};

use crate::conf::{MainConf, Queue};
use crate::Module;

/// `http`-level settings of the executor pool.
#[derive(Debug, Default, Clone)]
pub struct ExecutorsConf {
    /// Some location uses `fephp_pass executors`.
    pub used: bool,
    /// `fephp_executors N`.
    pub count: Option<usize>,
    /// `fephp_executors N min_spare=… max_spare=… start=… idle_timeout=…`: a dynamic pool.
    pub dynamic: Option<fephp::executor::Dynamic>,
    /// `fephp_executor_max_requests`.
    pub max_requests: Option<u64>,
    /// `fephp_executor_user USER [GROUP]`.
    pub user: Option<(String, Option<String>)>,
    /// `fephp_request_terminate_timeout`.
    pub terminate_timeout: Option<Duration>,
    /// `fephp_queue` of the executors locations (one shared queue: they must agree).
    pub queue: Option<Queue>,
    /// The longest `fephp_read_timeout` of the executors locations.
    pub read_timeout: Option<Duration>,
    /// `fephp_executor_binary PATH`: the `fe-php` binary the supervisor execs.
    pub binary: Option<std::path::PathBuf>,
    /// `fephp_executor_transport socket | shm`.
    pub transport: Option<Transport>,
    /// `fephp_worker PATH …`: the pool runs in worker mode.
    pub worker: Option<fephp::executor::WorkerOptions>,
}

/// The pool of the current configuration (set in the master by `init_module`, inherited by the
/// workers forked after it). Only touched on nginx's main thread.
static mut CURRENT: *mut Pool = std::ptr::null_mut();

const CONF_OK: *mut c_char = std::ptr::null_mut();
const CONF_ERROR: *mut c_char = ngx::core::NGX_CONF_ERROR as *mut c_char;

/// `init_module`: starts the pool of this configuration (see the module docs).
///
/// # Safety
/// Called by nginx with the new cycle, on its main thread.
pub unsafe fn init_module(cycle: *mut ngx_cycle_t) -> ngx_int_t {
    // SAFETY: plain reads of nginx globals on the main thread.
    if unsafe { ngx_test_config } != 0 {
        return NGX_OK as ngx_int_t;
    }
    // SAFETY: valid cycle (caller contract).
    let Some(main) = Module::main_conf(unsafe { &*cycle }) else { return NGX_OK as ngx_int_t };
    if !main.executors.used {
        return NGX_OK as ngx_int_t;
    }
    // SAFETY: valid cycle; the core module's configuration exists once the cycle is configured.
    let (log, log_fd, worker_uid, worker_gid, workers) = unsafe {
        let log = (*cycle).log;
        let fd = if !(*log).file.is_null() { Some((*(*log).file).fd) } else { None };
        let ccf = *(*cycle).conf_ctx.add(ngx_core_module.index) as *const ngx_core_conf_t;
        let workers = if (*ccf).master != 0 { (*ccf).worker_processes.max(1) as usize } else { 1 };
        (log, fd, (*ccf).user, (*ccf).group, workers)
    };
    let e = &main.executors;
    // SAFETY: plain call.
    let root = unsafe { libc::geteuid() } == 0;
    let user = match &e.user {
        Some((u, g)) => match lookup_user(u, g.as_deref()) {
            Ok(c) => Some(c),
            Err(why) => {
                ngx_log_error!(NGX_LOG_EMERG, log, "fephp: fephp_executor_user: {why}");
                return NGX_ERROR as ngx_int_t;
            }
        },
        // Like nginx's workers: never PHP as root when a worker user is known.
        None if root && worker_uid != UNSET_UID => {
            Some(fephp::executor::Credentials { uid: worker_uid, gid: worker_gid })
        }
        None => None,
    };
    // SAFETY: plain call.
    let mut allowed = vec![unsafe { libc::geteuid() }];
    if worker_uid != UNSET_UID {
        allowed.push(worker_uid);
    }
    let (queue_size, queue_timeout) = Queue::embedded(e.queue);
    let opts = ExecutorOptions {
        php: PhpOptions { ini_file: main.php_ini_file.clone().unwrap_or_default(), ini: main.php_ini.clone(), queue_size: 0, queue_timeout: Duration::ZERO },
        executors: e.count.unwrap_or(fephp::executor::DEFAULT_EXECUTORS),
        dynamic: e.dynamic,
        max_requests: e.max_requests.unwrap_or(0),
        terminate_timeout: e.terminate_timeout.unwrap_or(Duration::ZERO),
        queue_size,
        queue_timeout,
        user,
        allowed_uids: allowed,
        transport: e.transport.unwrap_or_default(),
        // One doorbell and one share of the queue per worker (ngx_worker numbers them).
        clients: workers,
        worker: e.worker.clone(),
    };
    let n = opts.executors;
    let started = match &e.binary {
        Some(binary) => Pool::start_exec(opts, log_fd, binary),
        None => Pool::start(opts, log_fd),
    };
    let pool = match started {
        Ok(p) => Box::into_raw(Box::new(p)),
        Err(e) => {
            ngx_log_error!(NGX_LOG_EMERG, log, "fephp: cannot start the executor pool: {e}");
            return NGX_ERROR as ngx_int_t;
        }
    };
    // SAFETY: the cycle's pool is valid; the cleanup runs when that pool is destroyed (in the
    // master at the next reload or at exit).
    unsafe {
        let cln = ngx_pool_cleanup_add((*cycle).pool, 0);
        if cln.is_null() {
            return NGX_ERROR as ngx_int_t;
        }
        (*cln).handler = Some(drain_pool);
        (*cln).data = pool.cast();
        CURRENT = pool;
    }
    // SAFETY: `pool` was just created.
    let supervisor = unsafe { (*pool).supervisor_pid() };
    ngx_log_error!(NGX_LOG_NOTICE, log, "fephp: executor pool started: supervisor {supervisor}, {n} executors");
    NGX_OK as ngx_int_t
}

/// `postconfiguration` (every location merged, `nginx -t` too): a `fephp_worker` needs a
/// location with `fephp_pass executors` to serve (worker mode runs in the executor pool only).
///
/// # Safety
/// Called by nginx with the `http` block's configuration.
pub unsafe extern "C" fn postconfiguration(cf: *mut ngx_conf_t) -> ngx_int_t {
    ffi_guard!(NGX_ERROR as ngx_int_t, {
        // SAFETY: nginx passes a valid configuration context.
        let Some(main) = Module::main_conf(unsafe { &*cf }) else { return NGX_OK as ngx_int_t };
        if main.executors.worker.is_some() && !main.executors.used {
            ngx_conf_log_error!(
                NGX_LOG_EMERG,
                cf,
                "\"fephp_worker\" directive: no location has \"fephp_pass executors\" (worker mode runs in the executor pool)"
            );
            return NGX_ERROR as ngx_int_t;
        }
        NGX_OK as ngx_int_t
    })
}

/// `(uid_t) NGX_CONF_UNSET_UINT`: nginx's `user` when the master is not root.
const UNSET_UID: u32 = u32::MAX;

/// The cycle's pool is destroyed: drain this configuration's executor pool.
unsafe extern "C" fn drain_pool(data: *mut c_void) {
    ffi_guard!((), {
        // SAFETY: `data` is the Box made in `init_module`, taken exactly once here.
        let pool = unsafe { Box::from_raw(data.cast::<Pool>()) };
        // SAFETY: main thread.
        unsafe {
            if CURRENT == data.cast::<Pool>() {
                CURRENT = std::ptr::null_mut();
            }
        }
        pool.drain();
    })
}

/// In `init_process`: drops this process's master-only pipe end and returns the worker's
/// client of the pool (`None` when no location uses executors).
///
/// # Safety
/// Call on the main thread of a process forked from the master after `init_module`.
pub unsafe fn init_process(main: &MainConf) -> Option<Client> {
    // SAFETY: main thread; CURRENT points at the Box made in the master (copied by fork).
    let pool = unsafe { CURRENT.as_mut()? };
    // SAFETY: plain read.
    let process = unsafe { ngx_process } as u32;
    match process {
        NGX_PROCESS_SINGLE => {}
        NGX_PROCESS_WORKER => pool.become_client(),
        _ => {
            pool.forget();
            return None;
        }
    }
    let e = &main.executors;
    let read_timeout = e.read_timeout.unwrap_or(crate::conf::DEFAULT_TIMEOUT);
    // SAFETY: plain read of nginx's worker number (0 in a single process).
    let index = if process == NGX_PROCESS_WORKER { unsafe { ngx::ffi::ngx_worker } } else { 0 };
    let host: std::sync::Arc<dyn fephp::executor::shm::BellHost> = std::sync::Arc::new(crate::exec_bell::NgxBellHost);
    let shm = match pool.shm_client(index, Some(host), read_timeout) {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(why)) => {
            // SAFETY: the running cycle's log.
            let log = unsafe { (*ngx::ffi::ngx_cycle).log };
            ngx_log_error!(ngx::ffi::NGX_LOG_ALERT, log, "fephp: executor pool (shared memory): {why}");
            return None;
        }
    };
    let address = pool.address();
    let connector = std::sync::Arc::new(crate::ngx_socket::NgxConnector::new(&address));
    let cfg = ClientConfig {
        address,
        connect_timeout: Duration::from_secs(10),
        read_timeout,
        terminate_timeout: e.terminate_timeout.unwrap_or(Duration::ZERO),
        connector: Some(connector),
    };
    Some(match shm {
        Some(shm) => Client::with_shm(cfg, Some(pool.scoreboard().clone()), shm),
        None => Client::new(cfg, Some(pool.scoreboard().clone())),
    })
}

// ---------------------------------------------------------------------------------------------
// Directives
// ---------------------------------------------------------------------------------------------

unsafe fn args<'a>(cf: *mut ngx_conf_t) -> &'a [ngx::ffi::ngx_str_t] {
    // SAFETY: nginx fills `cf->args` before calling a handler.
    unsafe {
        let a = (*cf).args;
        std::slice::from_raw_parts((*a).elts as *const ngx::ffi::ngx_str_t, (*a).nelts)
    }
}

fn text(s: &ngx::ffi::ngx_str_t) -> String {
    String::from_utf8_lossy(s.as_bytes()).into_owned()
}

fn fail(cf: *mut ngx_conf_t, msg: std::fmt::Arguments<'_>) -> *mut c_char {
    // SAFETY: inside a directive handler.
    let name = unsafe { args(cf).first().map(text).unwrap_or_default() };
    ngx_conf_log_error!(NGX_LOG_EMERG, cf, "\"{name}\" directive: {msg}");
    CONF_ERROR
}

macro_rules! main_setter {
    ($(#[$doc:meta])* $name:ident, |$cf:ident, $a:ident, $e:ident| $body:block) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// Called by nginx with a valid `cf` and this module's main configuration at `conf`.
        pub unsafe extern "C" fn $name(cf: *mut ngx_conf_t, _cmd: *mut ngx_command_t, conf: *mut c_void) -> *mut c_char {
            ffi_guard!(CONF_ERROR, {
                let $cf = cf;
                // SAFETY: nginx passes the directive's arguments and our MainConf.
                let ($a, $e) = unsafe { (args(cf), &mut (*(conf as *mut MainConf)).executors) };
                $body
            })
        }
    };
}

main_setter!(
    /// `fephp_executors N [start=S] [min_spare=A] [max_spare=B] [idle_timeout=TIME];`: N
    /// executor processes (static), or with any option a dynamic pool of at most N (php-fpm's
    /// `pm = dynamic`; unset options take php-fpm's defaults: min_spare 1, max_spare 3, start in
    /// between, idle_timeout 10s).
    set_executors, |cf, a, e| {
        if e.count.is_some() {
            return fail(cf, format_args!("is duplicate"));
        }
        let n = match text(&a[1]).parse::<usize>() {
            Ok(n) if (1..=4096).contains(&n) => n,
            _ => return fail(cf, format_args!("invalid number \"{}\" (1 to 4096)", text(&a[1]))),
        };
        e.count = Some(n);
        if a.len() > 2 {
            let mut d = fephp::executor::Dynamic::fpm_defaults(n);
            let mut start = None;
            for arg in &a[2..] {
                let t = text(arg);
                let Some((k, v)) = t.split_once('=') else {
                    return fail(cf, format_args!("invalid parameter \"{t}\""));
                };
                if k == "idle_timeout" {
                    let mut value = ngx::ffi::ngx_str_t { len: v.len(), data: v.as_ptr() as *mut u8 };
                    // SAFETY: valid ngx_str_t over `v`; only read.
                    let ms = unsafe { ngx_parse_time(&mut value, 0) };
                    if ms == NGX_ERROR as isize || ms < 0 {
                        return fail(cf, format_args!("invalid time in \"{t}\""));
                    }
                    d.idle_timeout = Duration::from_millis(ms as u64);
                    continue;
                }
                let Ok(v) = v.parse::<usize>() else { return fail(cf, format_args!("invalid number in \"{t}\"")) };
                match k {
                    "start" => start = Some(v),
                    "min_spare" => d.min_spare = v,
                    "max_spare" => d.max_spare = v,
                    _ => return fail(cf, format_args!("invalid parameter \"{t}\"")),
                }
            }
            d.start = start.unwrap_or(d.min_spare + d.max_spare.saturating_sub(d.min_spare) / 2);
            if d.min_spare == 0 || d.min_spare > d.max_spare || d.max_spare > n || d.start == 0 || d.start > n {
                return fail(cf, format_args!("needs 1 <= min_spare <= max_spare <= {n} and 1 <= start <= {n}"));
            }
            e.dynamic = Some(d);
        }
        CONF_OK
    }
);

main_setter!(
    /// `fephp_executor_max_requests N;`: requests per executor before it is replaced (0: never).
    set_executor_max_requests, |cf, a, e| {
        if e.max_requests.is_some() {
            return fail(cf, format_args!("is duplicate"));
        }
        match text(&a[1]).parse::<u64>() {
            Ok(n) => e.max_requests = Some(n),
            _ => return fail(cf, format_args!("invalid number \"{}\"", text(&a[1]))),
        }
        CONF_OK
    }
);

main_setter!(
    /// `fephp_executor_user USER [GROUP];`: executors run as this user (the master must be root).
    set_executor_user, |cf, a, e| {
        if e.user.is_some() {
            return fail(cf, format_args!("is duplicate"));
        }
        let user = text(&a[1]);
        let group = a.get(2).map(text);
        if let Err(why) = lookup_user(&user, group.as_deref()) {
            return fail(cf, format_args!("{why}"));
        }
        e.user = Some((user, group));
        CONF_OK
    }
);

main_setter!(
    /// `fephp_request_terminate_timeout TIME;`: an executor whose request runs longer is killed
    /// (504) and replaced; 0 turns it off.
    set_request_terminate_timeout, |cf, a, e| {
        if e.terminate_timeout.is_some() {
            return fail(cf, format_args!("is duplicate"));
        }
        let mut value = a[1];
        // SAFETY: valid ngx_str_t; only read.
        let ms = unsafe { ngx_parse_time(&mut value, 0) };
        if ms == NGX_ERROR as isize || ms < 0 {
            return fail(cf, format_args!("invalid time \"{}\"", text(&a[1])));
        }
        e.terminate_timeout = Some(Duration::from_millis(ms as u64));
        CONF_OK
    }
);

main_setter!(
    /// `fephp_executor_binary PATH;`: the supervisor execs this `fe-php` binary after the fork,
    /// so PHP runs in a fresh address space, not in a copy of the master's (configuration, TLS
    /// keys).
    set_executor_binary, |cf, a, e| {
        if e.binary.is_some() {
            return fail(cf, format_args!("is duplicate"));
        }
        let path = std::path::PathBuf::from(text(&a[1]));
        if !path.is_absolute() || !path.is_file() {
            return fail(cf, format_args!("\"{}\" is not an absolute path to a file", path.display()));
        }
        e.binary = Some(path);
        CONF_OK
    }
);

main_setter!(
    /// `fephp_executor_transport socket | shm;`: how requests travel to the executors: a unix
    /// socket connection per request, or shared-memory slots with futex / eventfd wakes.
    set_executor_transport, |cf, a, e| {
        if e.transport.is_some() {
            return fail(cf, format_args!("is duplicate"));
        }
        match Transport::parse(&text(&a[1])) {
            Some(t) => e.transport = Some(t),
            None => return fail(cf, format_args!("invalid value \"{}\" (socket or shm)", text(&a[1]))),
        }
        CONF_OK
    }
);

main_setter!(
    /// `fephp_worker PATH [executors=N] [max_requests=M] [watch=GLOB …];`: the executor pool runs
    /// in worker mode with this worker script (see the module docs).
    set_worker, |cf, a, e| {
        let path = std::path::PathBuf::from(text(&a[1]));
        if !path.is_absolute() || !path.is_file() {
            return fail(cf, format_args!("\"{}\" is not an absolute path to a file", path.display()));
        }
        if let Some(w) = &e.worker {
            if w.script != path || a.len() > 2 {
                return fail(cf, format_args!("one worker script per configuration: \"{}\" is set already (repeat only the path)", w.script.display()));
            }
            return CONF_OK;
        }
        let mut watch = Vec::new();
        for arg in &a[2..] {
            let t = text(arg);
            let Some((k, v)) = t.split_once('=') else { return fail(cf, format_args!("invalid parameter \"{t}\"")) };
            match k {
                "executors" => match v.parse::<usize>() {
                    Ok(n) if (1..=4096).contains(&n) && e.count.is_none() => e.count = Some(n),
                    Ok(_) if e.count.is_some() => return fail(cf, format_args!("\"{t}\": fephp_executors is set already")),
                    _ => return fail(cf, format_args!("invalid number in \"{t}\" (1 to 4096)")),
                },
                "max_requests" => match v.parse::<u64>() {
                    Ok(n) if e.max_requests.is_none() => e.max_requests = Some(n),
                    Ok(_) => return fail(cf, format_args!("\"{t}\": fephp_executor_max_requests is set already")),
                    _ => return fail(cf, format_args!("invalid number in \"{t}\"")),
                },
                "watch" if !v.is_empty() => watch.push(v.to_string()),
                _ => return fail(cf, format_args!("invalid parameter \"{t}\"")),
            }
        }
        e.worker = Some(fephp::executor::WorkerOptions { script: path, watch });
        CONF_OK
    }
);
