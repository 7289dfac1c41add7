//! The C boundary: the `extern "C"` block of the shim (`shim.h`), the callbacks it calls, and
//! safe wrappers. This is the only file of `src/php/` with `unsafe`.
//!
//! Rules kept here: a panic never unwinds into C (every callback catches it), a longjmp never
//! crosses Rust (bailouts stay inside `shim.c`), and callbacks never call back into PHP.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// What one request's callbacks do (implemented by the running job).
pub(crate) trait Sapi {
    /// Body bytes; false when the client is gone.
    fn write(&mut self, data: &[u8]) -> bool;
    /// PHP flushed; false when the client is gone.
    fn flush(&mut self) -> bool;
    /// One `Name: value` header line.
    fn header(&mut self, line: &[u8]);
    /// Headers complete with `status`; false when nobody waits for them.
    fn headers_done(&mut self, status: u16) -> bool;
    /// Fills `buf` from the request body: all of it unless the body ends first (PHP takes a
    /// short read as the end); 0 at the end.
    fn read_body(&mut self, buf: &mut [u8]) -> usize;
    /// `fastcgi_finish_request()`: the response is complete (headers already given); the
    /// script runs on and its later output is discarded. False when the client is gone.
    fn finish_request(&mut self) -> bool;
}

/// Process-wide hooks (not tied to a request).
pub(crate) struct Hooks {
    /// A log line from PHP with its syslog level.
    pub log: fn(level: i32, msg: &str),
    /// The execution time limit restarts with this many CPU seconds (0 = none).
    pub set_timer: fn(seconds: i64),
}

#[repr(C)]
struct Callbacks {
    write: extern "C" fn(*mut c_void, *const c_char, usize) -> c_int,
    flush: extern "C" fn(*mut c_void) -> c_int,
    header: extern "C" fn(*mut c_void, *const c_char, usize),
    headers_done: extern "C" fn(*mut c_void, c_int) -> c_int,
    read_body: extern "C" fn(*mut c_void, *mut c_char, usize) -> usize,
    log: extern "C" fn(c_int, *const c_char, usize),
    set_timer: extern "C" fn(i64),
    finish: extern "C" fn(*mut c_void) -> c_int,
}

#[repr(C)]
struct RawRequest {
    ctx: *mut c_void,
    method: *const c_char,
    query_string: *const c_char,
    request_uri: *const c_char,
    content_type: *const c_char,
    content_length: i64,
    script_filename: *const c_char,
    cookie: *const c_char,
    authorization: *const c_char,
    php_self: *const c_char,
    param_names: *const *const c_char,
    param_values: *const *const c_char,
    param_value_lens: *const usize,
    param_count: usize,
}

/// Outcome of [`execute`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The script ran (a PHP error is still a response).
    Ok,
    /// `php_request_startup()` failed.
    StartupFailed,
    /// Module startup never succeeded.
    NotStarted,
}

#[repr(C)]
struct RawIniReport {
    loaded_file: *const c_char,
    scan_dir: *const c_char,
    scanned_files: *const c_char,
    built_ini_dir: *const c_char,
    built_scan_dir: *const c_char,
    opcache_loaded: c_int,
}

/// Which php.ini module startup reads (`fephp_ini_mode` of `shim.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IniMode {
    /// No php.ini, no scan directory.
    Off = 0,
    /// PHP's own search (PHPRC, then the directory libphp was built with).
    Distribution = 1,
    /// The given file.
    File = 2,
}

/// What module startup loaded, copied out of PHP (see [`ini_report`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct IniReport {
    /// The php.ini PHP read (`php_ini_loaded_file()`).
    pub loaded_file: Option<String>,
    /// The scan directory PHP used.
    pub scan_dir: Option<String>,
    /// The files read from it (`php_ini_scanned_files()`, comma-separated).
    pub scanned_files: Option<String>,
    /// libphp's compile-time php.ini directory (`PHP_CONFIG_FILE_PATH`).
    pub built_ini_dir: Option<String>,
    /// libphp's compile-time scan directory (`PHP_CONFIG_FILE_SCAN_DIR`).
    pub built_scan_dir: Option<String>,
    /// The Zend OPcache extension is loaded.
    pub opcache_loaded: bool,
}

extern "C" {
    fn fephp_shim_startup(
        callbacks: *const Callbacks,
        ini_entries: *const c_char,
        ini_mode: c_int,
        ini_path: *const c_char,
    ) -> c_int;
    fn fephp_shim_ini_report(out: *mut RawIniReport);
    fn fephp_shim_execute(req: *const RawRequest) -> c_int;
    fn fephp_shim_request_ini(entries: *mut RawIni, count: usize);
    fn fephp_shim_slowlog_target(path: *const c_char, timeout_seconds: f64);
    fn fephp_shim_slowlog_fire();
    fn fephp_shim_timeout_fire();
    fn fephp_shim_sapi_name() -> *const c_char;
    fn fephp_shim_last_peak_memory() -> usize;
    fn fephp_worker_run(hooks: *const RawWorkerHooks, boot: *const RawRequest) -> c_int;
}

static HOOKS: once_cell::sync::OnceCell<Hooks> = once_cell::sync::OnceCell::new();

/// Module startup. `ini_entries` are `k=v\n` lines applied over the php.ini `ini_mode` chooses
/// (`ini_path`: the file of [`IniMode::File`]). Must run on the PHP thread, once per process.
pub(crate) fn startup(hooks: Hooks, ini_entries: &CStr, ini_mode: IniMode, ini_path: Option<&CStr>) -> Result<(), ()> {
    if HOOKS.set(hooks).is_err() {
        return Err(());
    }
    let callbacks = Callbacks {
        write: cb_write,
        flush: cb_flush,
        header: cb_header,
        headers_done: cb_headers_done,
        read_body: cb_read_body,
        log: cb_log,
        set_timer: cb_set_timer,
        finish: cb_finish,
    };
    // SAFETY: the pointers are valid NUL-terminated strings / a valid struct for the call; the
    // shim copies what it keeps. Called on the PHP thread, once (HOOKS guards a second call).
    let rc = unsafe {
        fephp_shim_startup(
            &callbacks,
            ini_entries.as_ptr(),
            ini_mode as c_int,
            ini_path.map_or(std::ptr::null(), |p| p.as_ptr()),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(())
    }
}

/// What module startup loaded. Call on the PHP thread (PHP's globals), after [`startup`].
pub(crate) fn ini_report() -> IniReport {
    let mut raw = RawIniReport {
        loaded_file: std::ptr::null(),
        scan_dir: std::ptr::null(),
        scanned_files: std::ptr::null(),
        built_ini_dir: std::ptr::null(),
        built_scan_dir: std::ptr::null(),
        opcache_loaded: 0,
    };
    // SAFETY: `raw` is a valid out-param; the shim fills it with pointers to PHP's own
    // NUL-terminated strings (or NULL), which stay alive while PHP is up and are copied below.
    unsafe { fephp_shim_ini_report(&mut raw) };
    let text = |p: *const c_char| {
        // SAFETY: NULL or a valid C string (see above).
        (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    };
    IniReport {
        loaded_file: text(raw.loaded_file),
        scan_dir: text(raw.scan_dir),
        scanned_files: text(raw.scanned_files),
        built_ini_dir: text(raw.built_ini_dir),
        built_scan_dir: text(raw.built_scan_dir),
        opcache_loaded: raw.opcache_loaded != 0,
    }
}

/// The SAPI name scripts see.
pub(crate) fn sapi_name() -> String {
    // SAFETY: the shim returns sapi_module.name, a static NUL-terminated string.
    unsafe { CStr::from_ptr(fephp_shim_sapi_name()) }.to_string_lossy().into_owned()
}

/// Peak memory of PHP's memory manager during the last request (`memory_get_peak_usage(true)`).
pub(crate) fn last_peak_memory() -> u64 {
    // SAFETY: reads a plain static of the shim, written by the same thread during execute.
    unsafe { fephp_shim_last_peak_memory() as u64 }
}

/// Makes the running script raise PHP's "Maximum execution time" fatal at its next VM check.
/// Safe from any thread (two atomic stores).
pub(crate) fn timeout_fire() {
    // SAFETY: the shim only stores into the atomics EG(timed_out) / EG(vm_interrupt), which PHP
    // documents as settable from another thread (its own ZTS timers do so).
    unsafe { fephp_shim_timeout_fire() }
}

/// Where slow-log backtraces go (`None`: stderr) and the timeout they name. Call before the PHP
/// thread serves requests.
pub(crate) fn slowlog_target(path: Option<&CStr>, timeout: std::time::Duration) {
    // SAFETY: the shim copies the string (or takes NULL) before returning; called before any
    // request runs, so the PHP thread does not read the old value concurrently.
    unsafe { fephp_shim_slowlog_target(path.map_or(std::ptr::null(), |p| p.as_ptr()), timeout.as_secs_f64()) }
}

/// Makes the running script write its backtrace to the slow log at its next VM check. Safe from
/// any thread (two atomic stores).
pub(crate) fn slowlog_fire() {
    // SAFETY: the shim only stores into two atomics (its flag and EG(vm_interrupt)).
    unsafe { fephp_shim_slowlog_fire() }
}

/// A request in C form: every string NUL-terminated, all of them in ONE buffer. The PHP thread
/// keeps one `Request` and refills it for each job ([`Request::clear`]), so once warm, building
/// a request allocates nothing.
#[derive(Default)]
pub(crate) struct Request {
    buf: Vec<u8>,
    /// REQUEST_METHOD (offset into `buf`).
    pub method: usize,
    /// QUERY_STRING.
    pub query_string: usize,
    /// REQUEST_URI.
    pub request_uri: usize,
    /// CONTENT_TYPE (None when empty).
    pub content_type: Option<usize>,
    /// CONTENT_LENGTH (0 when absent, like FPM).
    pub content_length: i64,
    /// SCRIPT_FILENAME.
    pub script_filename: usize,
    /// HTTP_COOKIE.
    pub cookie: Option<usize>,
    /// HTTP_AUTHORIZATION.
    pub authorization: Option<usize>,
    /// PHP_SELF.
    pub php_self: usize,
    /// (name offset, value offset, value length without the NUL) of each param.
    params: Vec<(usize, usize, usize)>,
    /// Pointer arrays handed to C, refilled by [`execute`] (kept for their capacity).
    names: Vec<*const c_char>,
    values: Vec<*const c_char>,
    lens: Vec<usize>,
}

impl Request {
    /// Empties the request, keeping its buffers.
    pub(crate) fn clear(&mut self) {
        self.buf.clear();
        self.params.clear();
        self.content_type = None;
        self.cookie = None;
        self.authorization = None;
        self.content_length = 0;
    }

    /// Appends `parts` as one NUL-terminated string (cut at an interior NUL, which C could not
    /// see anyway); returns its offset and length.
    pub(crate) fn add(&mut self, parts: &[&[u8]]) -> (usize, usize) {
        let start = self.buf.len();
        for part in parts {
            match memchr::memchr(0, part) {
                Some(nul) => {
                    self.buf.extend_from_slice(&part[..nul]);
                    break;
                }
                None => self.buf.extend_from_slice(part),
            }
        }
        let len = self.buf.len() - start;
        self.buf.push(0);
        (start, len)
    }

    /// Appends a `$_SERVER` param.
    pub(crate) fn add_param(&mut self, name: &[u8], value: &[u8]) {
        let (n, _) = self.add(&[name]);
        let (v, len) = self.add(&[value]);
        self.params.push((n, v, len));
    }

    /// [`Request::add_param`] for a name and value known to hold no NUL byte.
    pub(crate) fn add_param_plain(&mut self, name: &[u8], value: &[u8]) {
        let n = self.buf.len();
        self.buf.reserve(name.len() + value.len() + 2);
        self.buf.extend_from_slice(name);
        self.buf.push(0);
        let v = self.buf.len();
        self.buf.extend_from_slice(value);
        self.buf.push(0);
        self.params.push((n, v, value.len()));
    }

    fn ptr(&self, offset: usize) -> *const c_char {
        self.buf[offset..].as_ptr().cast()
    }
}

/// `fephp_ini_entry` of `shim.h`.
#[repr(C)]
struct RawIni {
    name: *const c_char,
    value: *const c_char,
    admin: c_int,
    /// Written by the shim: 0 applied, 1 unknown name, 2 value refused.
    status: c_int,
}

/// A request's ini settings in C form, and what PHP made of them.
pub(crate) struct RequestIni {
    strings: Vec<(std::ffi::CString, std::ffi::CString)>,
    raw: Vec<RawIni>,
}

impl RequestIni {
    /// The settings in C form (a name or value with a NUL byte is left out: it was refused by
    /// configuration checks already).
    pub(crate) fn new(ini: &crate::config::RequestIni) -> RequestIni {
        let mut strings = Vec::with_capacity(ini.entries.len());
        let mut admin = Vec::with_capacity(ini.entries.len());
        for e in &ini.entries {
            if let (Ok(n), Ok(v)) = (std::ffi::CString::new(e.name.as_str()), std::ffi::CString::new(e.value.as_str())) {
                strings.push((n, v));
                admin.push(e.admin);
            }
        }
        let raw = strings
            .iter()
            .zip(admin)
            .map(|((n, v), admin)| RawIni { name: n.as_ptr(), value: v.as_ptr(), admin: c_int::from(admin), status: 0 })
            .collect();
        RequestIni { strings, raw }
    }

    /// Logs, once per process and name, each setting PHP did not take (like php-fpm's "Unable
    /// to set php_value", then ignored).
    pub(crate) fn log_refused(&self) {
        static WARNED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
        for (raw, (name, value)) in self.raw.iter().zip(&self.strings) {
            if raw.status == 0 {
                continue;
            }
            let name = name.to_string_lossy();
            let mut warned = WARNED.lock().unwrap_or_else(|e| e.into_inner());
            if warned.iter().any(|w| *w == name) {
                continue;
            }
            warned.push(name.to_string());
            let what = if raw.admin != 0 { "php_admin_value" } else { "php_value" };
            let why = if raw.status == 1 { "PHP has no such ini setting" } else { "PHP refused the value" };
            super::log::emit(4, &format!("{what} {name} = \"{}\" ignored: {why}", value.to_string_lossy()));
        }
    }
}

/// Hands a worker request's ini settings to the shim (applied when worker.c opens the request;
/// forgotten by worker.c at the request's end, before the host's `done`). `ini` must stay alive
/// (and in place: only its heap buffers are used) until that `done`: [`super::worker`] keeps it
/// with the request.
pub(crate) fn worker_request_ini(ini: Option<&mut RequestIni>) {
    let (ptr, len) = match ini {
        Some(ini) => (ini.raw.as_mut_ptr(), ini.raw.len()),
        None => (std::ptr::null_mut(), 0),
    };
    // SAFETY: the shim only stores the pointer; worker.c reads the entries (and writes their
    // status) while the request opens, before its `done`, while the caller keeps them alive (see
    // above); null/0 clears it.
    unsafe { fephp_shim_request_ini(ptr, len) };
}

/// Runs one request to the end on the PHP thread, calling `sapi` for output and input, with
/// `ini` applied for that request only.
pub(crate) fn execute(req: &mut Request, sapi: &mut dyn Sapi, ini: Option<&mut RequestIni>) -> Outcome {
    if let Some(ini) = ini {
        let raw = &mut ini.raw;
        // SAFETY: `raw` points at NUL-terminated strings owned by `ini`, alive until after the
        // execute call below, which is where the shim reads them and writes each `status`; the
        // shim forgets the pointer when that call returns.
        unsafe { fephp_shim_request_ini(raw.as_mut_ptr(), raw.len()) };
    }
    let mut sapi_ref: &mut dyn Sapi = sapi;
    let raw = raw_request(req, (&mut sapi_ref as *mut &mut dyn Sapi).cast());
    // SAFETY: every pointer in `raw` points into `req` (its NUL-terminated strings written by
    // `add` and the pointer arrays filled by `raw_request`) or at `sapi_ref`, all alive and
    // unmodified until this call returns; the shim keeps none of them afterwards. Bailouts are
    // caught inside the shim, so no longjmp crosses this frame.
    match unsafe { fephp_shim_execute(&raw) } {
        0 => Outcome::Ok,
        1 => Outcome::StartupFailed,
        _ => Outcome::NotStarted,
    }
}

/// The C form of `req` (its pointer arrays refilled) with `ctx` as the callbacks' context. The
/// pointers stay valid while `req` is neither moved nor modified.
fn raw_request(req: &mut Request, ctx: *mut c_void) -> RawRequest {
    req.names.clear();
    req.values.clear();
    req.lens.clear();
    for &(n, v, len) in &req.params {
        req.names.push(req.buf[n..].as_ptr().cast());
        req.values.push(req.buf[v..].as_ptr().cast());
        req.lens.push(len);
    }
    let req = &*req;
    let opt = |o: Option<usize>| o.map_or(std::ptr::null(), |off| req.ptr(off));
    RawRequest {
        ctx,
        method: req.ptr(req.method),
        query_string: req.ptr(req.query_string),
        request_uri: req.ptr(req.request_uri),
        content_type: opt(req.content_type),
        content_length: req.content_length,
        script_filename: req.ptr(req.script_filename),
        cookie: opt(req.cookie),
        authorization: opt(req.authorization),
        php_self: req.ptr(req.php_self),
        param_names: req.names.as_ptr(),
        param_values: req.values.as_ptr(),
        param_value_lens: req.lens.as_ptr(),
        param_count: req.names.len(),
    }
}

/// The request's handler behind a `ctx` pointer.
///
/// # Safety
/// `ctx` must be the `ctx` of the [`RawRequest`] being executed by [`execute`].
unsafe fn sapi<'a>(ctx: *mut c_void) -> &'a mut dyn Sapi {
    // SAFETY: guaranteed by the caller: ctx points at `sapi_ref` in `execute`, alive for the call.
    unsafe { &mut **ctx.cast::<&mut dyn Sapi>() }
}

/// Runs `f`, turning a panic into `fallback` (a panic must never unwind into C).
fn guard<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(_) => {
            eprintln!("fe-php: panic in a PHP SAPI callback (ignored)");
            fallback
        }
    }
}

extern "C" fn cb_write(ctx: *mut c_void, buf: *const c_char, len: usize) -> c_int {
    guard(-1, || {
        // SAFETY: PHP passes `len` readable bytes at `buf` (or len 0); ctx is the current request's.
        let data = if len == 0 { &[][..] } else { unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), len) } };
        // SAFETY: see `sapi`.
        if unsafe { sapi(ctx) }.write(data) {
            0
        } else {
            -1
        }
    })
}

extern "C" fn cb_flush(ctx: *mut c_void) -> c_int {
    // SAFETY: see `sapi`.
    guard(-1, || if unsafe { sapi(ctx) }.flush() { 0 } else { -1 })
}

extern "C" fn cb_header(ctx: *mut c_void, line: *const c_char, len: usize) {
    guard((), || {
        // SAFETY: PHP's header list entries hold `len` bytes at `line`.
        let line = if len == 0 { &[][..] } else { unsafe { std::slice::from_raw_parts(line.cast::<u8>(), len) } };
        // SAFETY: see `sapi`.
        unsafe { sapi(ctx) }.header(line)
    })
}

extern "C" fn cb_finish(ctx: *mut c_void) -> c_int {
    // SAFETY: see `sapi`.
    guard(-1, || if unsafe { sapi(ctx) }.finish_request() { 0 } else { -1 })
}

extern "C" fn cb_headers_done(ctx: *mut c_void, status: c_int) -> c_int {
    let status = u16::try_from(status).unwrap_or(500);
    // SAFETY: see `sapi`.
    guard(-1, || if unsafe { sapi(ctx) }.headers_done(status) { 0 } else { -1 })
}

extern "C" fn cb_read_body(ctx: *mut c_void, buf: *mut c_char, len: usize) -> usize {
    guard(0, || {
        if len == 0 {
            return 0;
        }
        // SAFETY: PHP hands a writable buffer of `len` bytes.
        let buf = unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), len) };
        // SAFETY: see `sapi`.
        unsafe { sapi(ctx) }.read_body(buf)
    })
}

extern "C" fn cb_log(level: c_int, msg: *const c_char, len: usize) {
    guard((), || {
        // SAFETY: the shim passes strlen(msg) bytes of a valid C string.
        let bytes = if len == 0 { &[][..] } else { unsafe { std::slice::from_raw_parts(msg.cast::<u8>(), len) } };
        if let Some(h) = HOOKS.get() {
            (h.log)(level, &String::from_utf8_lossy(bytes));
        }
    })
}

extern "C" fn cb_set_timer(seconds: i64) {
    guard((), || {
        if let Some(h) = HOOKS.get() {
            (h.set_timer)(seconds);
        }
    })
}

/// The CPU-time clock of the calling thread (for the watchdog, which reads it from another thread).
pub(crate) fn current_thread_cpu_clock() -> Option<libc::clockid_t> {
    let mut clock: libc::clockid_t = 0;
    // SAFETY: pthread_self() is always valid for the calling thread; `clock` is a valid out-param.
    let rc = unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut clock) };
    (rc == 0).then_some(clock)
}

/// Reads `clock` (a thread CPU clock from [`current_thread_cpu_clock`]).
pub(crate) fn cpu_time(clock: libc::clockid_t) -> std::time::Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-param; an invalid clock only makes the call fail (ts stays 0).
    unsafe { libc::clock_gettime(clock, &mut ts) };
    std::time::Duration::new(ts.tv_sec.max(0) as u64, ts.tv_nsec.clamp(0, 999_999_999) as u32)
}

// ---------------------------------------------------------------------------------------------
// Worker mode (`worker.c`)
// ---------------------------------------------------------------------------------------------

/// What a worker run asks of its host (implemented by [`super::worker`]).
pub(crate) trait WorkerHost {
    /// Blocks until the next request and writes its C form into `req`; false: stop.
    fn next(&mut self, req: &mut Request) -> bool;
    /// The callbacks of the current request (the boot's sink when none runs).
    fn sapi(&mut self) -> &mut dyn Sapi;
    /// The current request ended (`failed`: uncaught exception or fatal error).
    fn done(&mut self, failed: bool, peak_memory: u64);
}

/// How a worker run ended (`fephp_worker_result`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WorkerResult {
    /// The script ended or failed before calling `fephp_handle_request()`.
    BootFailed,
    /// The host said stop.
    Stopped,
    /// A request failed (uncaught exception, fatal error).
    RequestFailed,
    /// The handler called `exit()`.
    Exited,
    /// The script ended on its own after serving.
    Ended,
}

#[repr(C)]
struct RawWorkerHooks {
    ctx: *mut c_void,
    next: extern "C" fn(*mut c_void) -> *const RawRequest,
    done: extern "C" fn(*mut c_void, c_int, usize),
}

/// The state behind a worker run's `ctx`: the host (as a raw pointer: the SAPI callbacks reach
/// it through [`Forward`] too, never at the same time) and the current request's C form.
struct WorkerCtx<'h> {
    host: *mut (dyn WorkerHost + 'h),
    req: Request,
    raw: Option<RawRequest>,
    /// The `ctx` of every request of this run: points at a `&mut dyn Sapi` that is a [`Forward`].
    sapi_ctx: *mut c_void,
}

/// Forwards SAPI callbacks to the host's current request.
struct Forward<'h> {
    host: *mut (dyn WorkerHost + 'h),
}

impl Forward<'_> {
    fn current(&mut self) -> &mut dyn Sapi {
        // SAFETY: `host` outlives the run (see `run_worker`); the shim calls one callback at a
        // time on this thread, so no other reference to the host is live during this one.
        unsafe { (*self.host).sapi() }
    }
}

impl Sapi for Forward<'_> {
    fn write(&mut self, data: &[u8]) -> bool {
        self.current().write(data)
    }
    fn flush(&mut self) -> bool {
        self.current().flush()
    }
    fn header(&mut self, line: &[u8]) {
        self.current().header(line)
    }
    fn headers_done(&mut self, status: u16) -> bool {
        self.current().headers_done(status)
    }
    fn read_body(&mut self, buf: &mut [u8]) -> usize {
        self.current().read_body(buf)
    }
    fn finish_request(&mut self) -> bool {
        self.current().finish_request()
    }
}

/// Runs the worker script of `boot` (its C form, filled by the caller) until it ends: the
/// script's `fephp_handle_request()` calls `host.next` / `host.done` for each request, and the
/// SAPI callbacks go to `host.sapi()`. Run on the PHP thread of an executor process.
pub(crate) fn run_worker(boot: &mut Request, host: &mut dyn WorkerHost) -> WorkerResult {
    let host: *mut (dyn WorkerHost + '_) = host;
    let mut forward = Forward { host };
    let mut forward_ref: &mut dyn Sapi = &mut forward;
    let sapi_ctx: *mut c_void = (&mut forward_ref as *mut &mut dyn Sapi).cast();
    let mut ctx = WorkerCtx { host, req: Request::default(), raw: None, sapi_ctx };
    let boot_raw = raw_request(boot, sapi_ctx);
    let hooks = RawWorkerHooks { ctx: (&mut ctx as *mut WorkerCtx<'_>).cast(), next: cb_worker_next, done: cb_worker_done };
    // SAFETY: `boot_raw` points into `boot` and at `forward_ref`; `hooks.ctx` at `ctx`; all live
    // on this frame (or the caller's) until the call returns and are not touched meanwhile except
    // through the callbacks. Bailouts are caught inside worker.c/shim.c: no longjmp crosses here.
    let rc = unsafe { fephp_worker_run(&hooks, &boot_raw) };
    match rc {
        1 => WorkerResult::Stopped,
        2 => WorkerResult::RequestFailed,
        3 => WorkerResult::Exited,
        4 => WorkerResult::Ended,
        _ => WorkerResult::BootFailed,
    }
}

/// # Safety
/// `ctx` must be the `WorkerCtx` of the running [`run_worker`].
unsafe fn worker_ctx<'a, 'h>(ctx: *mut c_void) -> &'a mut WorkerCtx<'h> {
    // SAFETY: guaranteed by the caller.
    unsafe { &mut *ctx.cast::<WorkerCtx<'h>>() }
}

extern "C" fn cb_worker_next(ctx: *mut c_void) -> *const RawRequest {
    guard(std::ptr::null(), || {
        // SAFETY: the shim passes back the ctx of `run_worker`'s hooks.
        let w = unsafe { worker_ctx(ctx) };
        w.raw = None;
        // SAFETY: see `Forward::current`: no SAPI callback runs while `next` does.
        if !unsafe { (*w.host).next(&mut w.req) } {
            return std::ptr::null();
        }
        let raw = raw_request(&mut w.req, w.sapi_ctx);
        // The request stays in `w.raw` (and its strings in `w.req`) until the next `next`.
        &*w.raw.insert(raw) as *const RawRequest
    })
}

extern "C" fn cb_worker_done(ctx: *mut c_void, failed: c_int, peak: usize) {
    guard((), || {
        // SAFETY: the shim passes back the ctx of `run_worker`'s hooks.
        let w = unsafe { worker_ctx(ctx) };
        // SAFETY: see `Forward::current`.
        unsafe { (*w.host).done(failed != 0, peak as u64) }
    })
}
