//! Embedded libphp executor: our own web SAPI (a small C shim, `shim.c`) over Debian's
//! `libphp8.2-embed`, behind a safe async API.
//!
//! # Shape
//! libphp is NTS: one thread per process may ever run PHP. [`Php::start`] spawns that thread
//! (once per process) and runs module startup on it; [`Php::execute`] queues a request (a
//! bounded queue: full or waited past `queue_timeout` → [`EngineError::Overloaded`], 503),
//! resolves when PHP hands over its headers (with the first 16 KiB of output, at a `flush()`, or
//! at the end: a small response is one handover and one wakeup), and hands back a [`PhpBody`]
//! that streams the rest through the request's bounded handoff, so a slow client blocks PHP's
//! `echo` (back-pressure) and a dropped body is an aborted connection for PHP
//! (`connection_aborted()`, `ignore_user_abort()`).
//!
//! Files: `shim.c`/`shim.h` (the `sapi_module_struct`, startup, the request cycle inside
//! `zend_first_try`), `ffi.rs` (the extern block and callbacks; the only `unsafe`), `thread.rs`
//! (the PHP thread), `job.rs` (one request on the PHP thread), `handoff.rs` (what one request
//! shares between the PHP thread and its waiter), `watchdog.rs` (time limits),
//! `log.rs` (PHP's log lines), `process.rs` (PHP on an executor process's own thread),
//! `worker.c`/`worker.h` + `worker.rs` (worker mode: `fephp_handle_request()`, see [`worker`]).
//!
//! # Semantics (the same as PHP-FPM behind nginx)
//! `$_SERVER` is exactly the CGI params the FPM backend sends, plus `PHP_SELF`
//! (`SCRIPT_NAME` + `PATH_INFO`), like FPM with `clear_env = yes`; `getenv()` reads the params
//! too. `SG(request_info)` gets method, query, `REQUEST_URI`, content type and length,
//! `SCRIPT_FILENAME` as path_translated, the cookie header and `HTTP_AUTHORIZATION`
//! (`PHP_AUTH_USER`/`PHP_AUTH_PW`). `proto_num` is 1000 like FPM, so a `Location` header makes a
//! 302 for every method. PHP chdirs into the script's directory like FPM does.
//!
//! # opcache
//! opcache enables itself only for SAPI names it knows, and looks once, in `accel_startup`
//! during module startup. The shim therefore starts modules under the name `fpm-fcgi` and
//! switches `sapi_module.name` to `fe-php` right after startup: opcache is on, and
//! `php_sapi_name()` / `PHP_SAPI` tell apps the truth (`fe-php`, a web SAPI) instead of
//! pretending to be FPM or the CLI server. `fpm-fcgi` is compared against by opcache and (at
//! request time only) by phar's web front controller, which then sees `fe-php`.
//!
//! # ini
//! [`IniFile::Distribution`] (the default): PHP looks for its php.ini the way Debian's embed
//! SAPI (and every other PHP SAPI) does, with the directory libphp was built with
//! (`PHP_CONFIG_FILE_PATH`, Debian: `/etc/php/8.2/embed`; `PHPRC` is looked at first, never the
//! working directory) and scans the directory it was built with (`PHP_CONFIG_FILE_SCAN_DIR`,
//! Debian: `/etc/php/8.2/embed/conf.d`, or `PHP_INI_SCAN_DIR`). The paths are the library's
//! own: the headers' `php-config` / `build-defs.h` describe Debian's CLI build
//! (`/etc/php/8.2/cli`), not the embed library we link. Every extension `apt-get install
//! php8.2-…` enabled is loaded, opcache included (`conf.d/10-opcache.ini`).
//! [`IniFile::File`]: that file, like `php -c FILE` (the scan directory as above); a missing or
//! unreadable file is a start-up error ([`crate::error::IniFileError`]), where PHP would run
//! without it. [`IniFile::Off`]: no php.ini and no scan directory: PHP's built-in defaults, plus
//! `zend_extension=opcache.so` and php.ini-production's safe choices (`display_errors=0`,
//! `log_errors=1`, `variables_order=GPCS`, `expose_php=0`).
//! In every case [`PhpOptions::ini`] applies on top, and `hard_timeout=0` is forced last; the
//! time-limit handler and the startup name that turns opcache on are the shim's, whatever the
//! ini says. With a php.ini, loading opcache is the configuration's job (loading it twice
//! would make PHP complain): a startup without it logs a warning. Startup logs one line naming
//! the php.ini and scan directory PHP actually read.
//! Values are written as `key=value` lines of php.ini syntax, unquoted.
//!
//! # Time limits
//! PHP's `max_execution_time` uses `setitimer(ITIMER_PROF)` — the CPU time of *all* threads of
//! the host — and `_exit()`s the whole process `hard_timeout` seconds after a missed limit. The
//! shim replaces the `on_modify` handler of `max_execution_time` (so `set_time_limit()` and
//! `ini_set()` still restart the limit), hides the limit and `max_input_time` from PHP through
//! request startup, script start and shutdown (PHP 8.2 arms its itimer in all three whenever
//! `max_input_time` is set, as the distribution's php.ini does), so PHP never calls
//! `setitimer`, and forces `hard_timeout=0`. The script's limit is the `max_execution_time` ini
//! entry once startup has applied the request's values and `.user.ini` files; after shutdown
//! the configured value is back, so no request's limit reaches the next. A watchdog thread
//! measures the PHP thread's own CPU clock (what a
//! one-thread FPM worker's ITIMER_PROF measures) and, when the limit passes, sets
//! `EG(timed_out)` + `EG(vm_interrupt)`: the VM raises PHP's own "Maximum execution time of N
//! seconds exceeded" fatal error (→ 500 with `display_errors=0`), the host lives on. Like PHP on
//! Linux, time spent sleeping or blocked in I/O does not count.
//!
//! # Per-request process state
//! The PHP thread has a filesystem context of its own (`unshare(CLONE_FS)` at startup: working
//! directory, umask and root are then per thread), so a script's directory, `chdir()` and
//! `umask()` never reach the host's threads, not even while the script runs. The shim notes
//! the umask and the locale once, at startup; the locale is put back after a request only when
//! it differs, the umask by PHP's own request shutdown (its `umask()` remembers the old one),
//! so no system call is spent saving them. `putenv()` values are undone by PHP's own request
//! shutdown. PHP does not install its per-request handlers for the host's signals (`SIGTERM`,
//! `SIGHUP`, …): `zend_signal`'s per-request reset is switched off. Like FPM, a script runs in
//! its own directory: the shim enters it with `fchdir` on a cached `O_PATH` descriptor of the
//! last script directory (reopened after 2 s, so a `current -> release` symlink swap is seen)
//! instead of PHP's `getcwd` + `chdir` + `chdir` back (`SAPI_OPTION_NO_CHDIR`), and stays there
//! between requests: the next script of the same directory costs no system call, unless a
//! script left it (PHP's `chdir()` is wrapped to note that). Where `unshare` is refused (a
//! seccomp filter) the working directory is the process's: the shim then puts the host's back
//! (`fchdir`) after every request, and while a request runs host code must not rely on
//! relative paths.
//!
//! # Per-request ini
//! [`Php::execute_with`] takes a [`RequestIni`] (nginx `fephp_php_value` /
//! `fephp_php_admin_value`, `fe-php serve` `[php.values]` / `[php.admin_values]`): the shim alters
//! each entry at `ZEND_INI_STAGE_ACTIVATE` before PHP's request startup, like mod_php's
//! `php_value` / `php_admin_value` and php-fpm's pool values (forced, whatever the entry's own
//! changeability; an admin value becomes `PHP_INI_SYSTEM`, so `ini_set()` fails), and PHP's
//! request shutdown restores every altered entry. Names PHP does not know and values it refuses
//! are logged once per process and ignored.
//!
//! # `.user.ini`
//! As php-fpm (its `sapi_cgi_activate`): at each request, in PHP's request startup (the SAPI
//! `activate` hook), the php.ini's `[PATH=]` sections for the script's directory, then every
//! `user_ini.filename` file (default `.user.ini`; empty: none) from `DOCUMENT_ROOT` down to the
//! script's directory (only that directory for a script outside the root), parsed by PHP's own
//! `php_parse_user_ini_file` and activated as `PHP_INI_PERDIR` at `PHP_INI_STAGE_HTACCESS`: system
//! settings and admin values stay. Each directory's parse is cached for `user_ini.cache_ttl`
//! seconds (default 300), so a changed file is seen after that.
//!
//! # Slow log
//! [`set_slowlog`] (nginx `fephp_slowlog_timeout` / `fephp_slowlog`): the watchdog thread also
//! watches the running request's wall-clock time; past the timeout it sets a flag and
//! `EG(vm_interrupt)`, and at the VM's next check the shim's `zend_interrupt_function` writes the
//! backtrace from inside the PHP thread (no ptrace, the script goes on), once per request. A
//! script blocked in a system call (`sleep()`, a slow query) is logged when it next runs PHP code,
//! with the line it is at then.
//!
//! # `fastcgi_finish_request()`
//! Defined by the shim (registered at module startup, as php-fpm registers its own): it ends
//! every output buffer, sends the headers, and hands the end of the response over, so the
//! client has the whole response (and its keep-alive connection back) while the script runs
//! on. Later output is discarded; the time limit keeps counting; a second call returns false.
//! While such a script runs on, [`PhpStats::finishing`] is set (`fephp_php_finishing 1`). The PHP
//! thread stays busy until the script ends: the next request of this process waits for it, as
//! with a php-fpm child. Unlike php-fpm on a kept-alive FastCGI connection, where output after
//! the call still reaches the socket and more than its 8 KiB buffer aborts the script unless
//! `ignore_user_abort`, output afterwards never fails here.
//!
//! # Not equal to PHP-FPM
//! No `request_terminate_timeout` (wall-clock kill), and one PHP thread per process
//! (parallelism = processes).

mod handoff;
mod ffi;
mod job;
mod log;
pub mod process;
mod thread;
mod watchdog;
pub mod worker;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::cgi::{Params, RequestBody, ResponseHead, Script};
use crate::config::{IniFile, PhpConfig, RequestIni};
use crate::error::EngineError;

use job::Job;
use thread::Shared;

/// Options of the embedded PHP runtime.
#[derive(Debug, Clone, Default)]
pub struct PhpOptions {
    /// Which php.ini to load (default: the distribution's; see the module docs).
    pub ini_file: IniFile,
    /// ini settings applied over it (`ini_entries`), in order.
    pub ini: Vec<(String, String)>,
    /// Requests that may wait for the PHP thread (0 counts as 1).
    pub queue_size: usize,
    /// How long a request may wait for the PHP thread before it gets a 503
    /// ([`Duration::ZERO`] = no limit).
    pub queue_timeout: Duration,
}

impl PhpOptions {
    /// Options from `[php]`.
    pub fn from_config(php: &PhpConfig) -> PhpOptions {
        PhpOptions {
            ini_file: php.ini_file.clone(),
            ini: php.ini_entries(),
            queue_size: php.queue_size as usize,
            queue_timeout: php.queue_timeout(),
        }
    }
}

/// The most recent lines PHP logged in this process (errors and warnings when `error_log` is
/// unset, startup problems), oldest first, as `[level] php: message`. Each line is also written
/// to stderr as it happens.
pub fn recent_log() -> Vec<String> {
    log::recent()
}

/// Handle to this process's single PHP thread. Cheap to clone.
#[derive(Clone)]
pub struct Php {
    inner: Arc<Inner>,
}

struct Inner {
    queue: mpsc::Sender<Job>,
    shared: Arc<Shared>,
    queue_timeout: Duration,
}

static STARTED: AtomicBool = AtomicBool::new(false);

/// True once [`Php::start`] or [`process::startup`] (an executor supervisor) has been called in
/// this process (successfully or not: PHP's module startup runs once per process).
pub fn started() -> bool {
    STARTED.load(Ordering::SeqCst)
}

/// The slow log of embedded PHP (nginx `fephp_slowlog_timeout` + `fephp_slowlog`): a request
/// running longer than `timeout` (wall clock) gets its PHP backtrace (innermost frame first,
/// `function() file:line`, at most 20 frames) written once, without being stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlowLog {
    /// Wall-clock time after which a request's backtrace is written (non-zero).
    pub timeout: Duration,
    /// The file backtraces are appended to; `None`: stderr (nginx: its error log).
    pub path: Option<std::path::PathBuf>,
}

impl SlowLog {
    fn path_c(&self) -> Option<std::ffi::CString> {
        use std::os::unix::ffi::OsStrExt;
        self.path.as_ref().and_then(|p| std::ffi::CString::new(p.as_os_str().as_bytes()).ok())
    }
}

static SLOWLOG: std::sync::Mutex<Option<SlowLog>> = std::sync::Mutex::new(None);

/// Sets the slow log of this process's embedded PHP; takes effect when [`Php::start`] runs
/// (call it before). `None` or a zero timeout: no slow log.
pub fn set_slowlog(slowlog: Option<SlowLog>) {
    *SLOWLOG.lock().unwrap_or_else(|e| e.into_inner()) = slowlog.filter(|s| !s.timeout.is_zero());
}

fn slowlog() -> Option<SlowLog> {
    SLOWLOG.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// The streaming body of one PHP response. Dropping it before the end tells PHP the client is
/// gone (its next output sees an aborted connection).
#[derive(Debug)]
pub struct PhpBody {
    rx: handoff::Receiver,
}

impl PhpBody {
    /// Polls for the next chunk of output, as PHP produced (and flushed) it; `Ready(None)` at
    /// the end of the script. An error means the response is truncated. Pending registers
    /// `cx`'s waker with the handoff (PHP's next send wakes it).
    pub fn poll_chunk(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<Result<Bytes, EngineError>>> {
        self.rx.poll_chunk(cx)
    }

    /// The next chunk of output (see [`PhpBody::poll_chunk`]).
    pub async fn next_chunk(&mut self) -> Option<Result<Bytes, EngineError>> {
        std::future::poll_fn(|cx| self.rx.poll_chunk(cx)).await
    }
}

/// Gauges of the PHP thread, taken at one moment.
#[derive(Debug, Default, Clone)]
pub struct PhpStats {
    /// Requests waiting for the PHP thread.
    pub queue_depth: usize,
    /// Requests run to the end since startup.
    pub requests_executed: u64,
    /// A request is running now.
    pub busy: bool,
    /// The running request called `fastcgi_finish_request()`: its client has the whole
    /// response, the script runs on.
    pub finishing: bool,
    /// The PHP thread is serving its queue.
    pub alive: bool,
}

impl PhpStats {
    /// Appends the gauges in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = write!(
            out,
            "# HELP fephp_php_queue_depth Requests waiting for the embedded PHP thread.\n\
             # TYPE fephp_php_queue_depth gauge\n\
             fephp_php_queue_depth {}\n\
             # HELP fephp_php_requests_executed Requests the embedded PHP thread ran to the end.\n\
             # TYPE fephp_php_requests_executed gauge\n\
             fephp_php_requests_executed {}\n\
             # HELP fephp_php_busy 1 while the embedded PHP thread runs a request.\n\
             # TYPE fephp_php_busy gauge\n\
             fephp_php_busy {}\n\
             # HELP fephp_php_finishing 1 while the running request goes on after fastcgi_finish_request().\n\
             # TYPE fephp_php_finishing gauge\n\
             fephp_php_finishing {}\n",
            self.queue_depth,
            self.requests_executed,
            u8::from(self.busy),
            u8::from(self.finishing),
        );
    }
}

impl Php {
    /// Starts this process's PHP thread and runs PHP's module startup on it (blocking until
    /// done). Errors: a second call in the same process
    /// ([`EngineError::AlreadyEmbedded`]), or a failed
    /// startup (its reason is in the log).
    pub fn start(opts: PhpOptions) -> Result<Php, EngineError> {
        if STARTED.swap(true, Ordering::SeqCst) {
            return Err(EngineError::AlreadyEmbedded);
        }
        let shared = Arc::new(Shared::default());
        let queue = thread::spawn(&opts, Arc::clone(&shared))?;
        Ok(Php { inner: Arc::new(Inner { queue, shared, queue_timeout: opts.queue_timeout }) })
    }

    /// Runs `script` with `params` (from [`crate::cgi::build_params`]) and `body`. Resolves
    /// when PHP sends its headers (first output past the buffer, a flush, or the end of the
    /// script); the body then streams through [`PhpBody`].
    ///
    /// Errors: [`EngineError::Overloaded`] when the queue is full or the request waited longer
    /// than `queue_timeout`; [`EngineError::Internal`] when the PHP thread is down or the
    /// request could not start.
    pub async fn execute(
        &self,
        params: Params,
        script: Script,
        body: RequestBody,
    ) -> Result<(ResponseHead, PhpBody), EngineError> {
        self.execute_with(params, script, body, None).await
    }

    /// [`Php::execute`] with ini settings for this request only ([`RequestIni`]: applied
    /// before PHP's request startup, undone by its request shutdown).
    pub async fn execute_with(
        &self,
        params: Params,
        script: Script,
        body: RequestBody,
        ini: Option<Arc<RequestIni>>,
    ) -> Result<(ResponseHead, PhpBody), EngineError> {
        let shared = &self.inner.shared;
        let (job, rx) = Job::new(params, script, body, ini);
        // Nothing ahead of this job (no job waiting, none running: the PHP thread marks itself
        // busy before it takes a job off the queue) means it starts as soon as the PHP thread
        // wakes: no queue timer is armed for it (a timer per request is a lock and a wheel
        // entry on the runtime's timer, and may wake the runtime thread).
        let ahead = shared.queue_depth.fetch_add(1, Ordering::SeqCst) > 0 || shared.busy.load(Ordering::SeqCst);
        if let Err(e) = self.inner.queue.try_send(job) {
            shared.queue_depth.fetch_sub(1, Ordering::SeqCst);
            return Err(match e {
                mpsc::error::TrySendError::Full(_) => EngineError::Overloaded(format!(
                    "embedded PHP queue is full ({} waiting)",
                    self.inner.queue.max_capacity()
                )),
                mpsc::error::TrySendError::Closed(_) => EngineError::Internal("the PHP thread is not running".into()),
            });
        }
        // A caller that stops waiting (client gone) drops `rx`, which takes a job that has not
        // started out of the queue.
        let head = {
            let mut head = std::pin::pin!(std::future::poll_fn(|cx| rx.poll_head(cx)));
            if self.inner.queue_timeout.is_zero() || !ahead {
                head.await
            } else {
                tokio::select! {
                    biased;
                    r = &mut head => r,
                    _ = tokio::time::sleep(self.inner.queue_timeout) => {
                        if rx.cancel_if_queued() {
                            return Err(EngineError::Overloaded(format!(
                                "waited more than {:?} for the PHP thread",
                                self.inner.queue_timeout
                            )));
                        }
                        head.await
                    }
                }
            }
        }?;
        Ok((head, PhpBody { rx }))
    }

    /// Ok while the PHP thread is alive and serving its queue.
    pub fn probe(&self) -> Result<(), EngineError> {
        if self.inner.shared.alive.load(Ordering::SeqCst) && !self.inner.queue.is_closed() {
            Ok(())
        } else {
            Err(EngineError::Internal("the PHP thread is not running".into()))
        }
    }

    /// The PHP thread's gauges now.
    pub fn stats(&self) -> PhpStats {
        let s = &self.inner.shared;
        PhpStats {
            queue_depth: s.queue_depth.load(Ordering::SeqCst),
            requests_executed: s.executed.load(Ordering::SeqCst),
            busy: s.busy.load(Ordering::SeqCst),
            finishing: s.finishing.load(Ordering::SeqCst),
            alive: s.alive.load(Ordering::SeqCst),
        }
    }

    /// The name scripts see in `php_sapi_name()` (`"fe-php"`).
    pub fn sapi_name(&self) -> String {
        ffi::sapi_name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini_entries_load_opcache_without_a_file_and_force_hard_timeout_last() {
        let opts = PhpOptions {
            ini_file: IniFile::Off,
            ini: vec![("hard_timeout".into(), "5".into()), ("a".into(), "1".into())],
            ..Default::default()
        };
        let ini = thread::ini_entries(&opts);
        assert!(ini.starts_with("zend_extension=opcache.so\n"));
        assert!(ini.ends_with("a=1\nhard_timeout=0\n"));
        for ini_file in [IniFile::Distribution, IniFile::File("/x/php.ini".into())] {
            let with_file = PhpOptions { ini_file, ..Default::default() };
            assert_eq!(thread::ini_entries(&with_file), "hard_timeout=0\n");
        }
    }

    #[test]
    fn ini_report_line_names_what_php_read() {
        let report = ffi::IniReport {
            loaded_file: Some("/etc/php/8.2/embed/php.ini".into()),
            scan_dir: Some("/etc/php/8.2/embed/conf.d".into()),
            scanned_files: Some("/etc/php/8.2/embed/conf.d/10-opcache.ini,\n/etc/php/8.2/embed/conf.d/20-intl.ini".into()),
            built_ini_dir: Some("/etc/php/8.2/embed".into()),
            built_scan_dir: Some("/etc/php/8.2/embed/conf.d".into()),
            opcache_loaded: true,
        };
        assert_eq!(
            thread::ini_report_line(ffi::IniMode::Distribution, &report),
            "embedded PHP configuration: php.ini: /etc/php/8.2/embed/php.ini; \
             scanned: /etc/php/8.2/embed/conf.d (2 files); opcache: loaded"
        );
        let missing = ffi::IniReport { loaded_file: None, scan_dir: Some(String::new()), ..report.clone() };
        assert!(thread::ini_report_line(ffi::IniMode::Distribution, &missing)
            .contains("php.ini: none found (PHP looked in /etc/php/8.2/embed); scanned: none"));
        assert!(thread::ini_report_line(ffi::IniMode::Off, &report).contains("php.ini: off; scanned: none"));
    }

    #[test]
    fn stats_render_prometheus_gauges() {
        let mut out = String::new();
        PhpStats { queue_depth: 3, requests_executed: 7, busy: true, finishing: true, alive: true }.render(&mut out);
        assert!(out.contains("fephp_php_queue_depth 3\n"));
        assert!(out.contains("fephp_php_requests_executed 7\n"));
        assert!(out.contains("fephp_php_busy 1\n"));
        assert!(out.contains("fephp_php_finishing 1\n"));
    }
}
