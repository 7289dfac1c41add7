//! The PHP thread: module startup once, then one job at a time from the queue.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use once_cell::sync::OnceCell;
use tokio::sync::mpsc;

use super::job::Job;
use super::watchdog::Watchdog;
use super::{ffi, log, PhpOptions};
use crate::config::IniFile;
use crate::error::EngineError;

/// C stack of the PHP thread (PHP recurses on the C stack for some operations).
const STACK_SIZE: usize = 16 * 1024 * 1024;

/// Counters shared by the PHP thread and the handles.
#[derive(Default)]
pub(crate) struct Shared {
    /// Jobs sent and not yet taken by the PHP thread.
    pub queue_depth: AtomicUsize,
    /// Requests run to the end.
    pub executed: AtomicU64,
    /// A request is running.
    pub busy: AtomicBool,
    /// The running request called `fastcgi_finish_request()`: its client has the response,
    /// the script runs on.
    pub finishing: AtomicBool,
    /// The thread is serving its queue.
    pub alive: AtomicBool,
}

static WATCHDOG: OnceCell<Arc<Watchdog>> = OnceCell::new();

/// The `ini_entries` text: opcache and safe choices (only with `ini_file` off: otherwise the
/// php.ini and its scan directory load the extensions), the configured entries, then
/// `hard_timeout=0` last so nothing can bring PHP's `_exit()` back.
pub(crate) fn ini_entries(opts: &PhpOptions) -> String {
    let mut ini = String::new();
    if opts.ini_file == IniFile::Off {
        // Without a php.ini: load opcache, and start from php.ini-production's choices where
        // PHP's built-in defaults are unsafe for a web server: errors are logged, not shown to
        // clients (a fatal error is then a 500, as with Debian's php-fpm), and the host's
        // environment stays out of $_ENV (php-fpm's clear_env shows none). Output buffering
        // stays off (PHP's default) so flush() streams. The configured entries below override
        // any of these.
        ini.push_str(
            "zend_extension=opcache.so\nvariables_order=GPCS\ndisplay_errors=0\ndisplay_startup_errors=0\nlog_errors=1\nexpose_php=0\n",
        );
    }
    for (k, v) in &opts.ini {
        ini.push_str(k);
        ini.push('=');
        ini.push_str(v);
        ini.push('\n');
    }
    ini.push_str("hard_timeout=0\n");
    ini
}

/// How module startup finds its php.ini (checked: a named file must be readable now).
pub(super) fn ini_startup_args(opts: &PhpOptions) -> Result<(ffi::IniMode, Option<CString>), EngineError> {
    opts.ini_file.check().map_err(|e| EngineError::Internal(e.to_string()))?;
    Ok(match &opts.ini_file {
        IniFile::Off => (ffi::IniMode::Off, None),
        IniFile::Distribution => (ffi::IniMode::Distribution, None),
        IniFile::File(p) => (
            ffi::IniMode::File,
            Some(
                CString::new(p.as_os_str().as_bytes())
                    .map_err(|_| EngineError::Internal("ini_file path contains a NUL byte".into()))?,
            ),
        ),
    })
}

/// Starts the PHP thread and waits for module startup. Returns the job queue.
pub(crate) fn spawn(opts: &PhpOptions, shared: Arc<Shared>) -> Result<mpsc::Sender<Job>, EngineError> {
    let ini =
        CString::new(ini_entries(opts)).map_err(|_| EngineError::Internal("ini entries contain a NUL byte".into()))?;
    let (ini_mode, ini_path) = ini_startup_args(opts)?;
    let (tx, mut rx) = mpsc::channel::<Job>(opts.queue_size.max(1));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    std::thread::Builder::new()
        .name("fephp-php".into())
        .stack_size(STACK_SIZE)
        .spawn(move || {
            let slow = super::slowlog();
            if let Some(slow) = &slow {
                ffi::slowlog_target(slow.path_c().as_deref(), slow.timeout);
            }
            let dog = match Watchdog::start_for_current_thread(slow.map_or(std::time::Duration::ZERO, |s| s.timeout)) {
                Ok(d) => d,
                Err(e) => {
                    let _ = ready_tx.send(Err(format!("watchdog: {e}")));
                    return;
                }
            };
            let _ = WATCHDOG.set(dog);
            let hooks = ffi::Hooks { log: log::emit, set_timer };
            if ffi::startup(hooks, &ini, ini_mode, ini_path.as_deref()).is_err() {
                let _ = ready_tx.send(Err("PHP module startup failed (see the log above)".into()));
                return;
            }
            log_ini_report(ini_mode, &ffi::ini_report());
            shared.alive.store(true, Ordering::SeqCst);
            let _ = ready_tx.send(Ok(()));
            let served = crate::error::catch_panic(|| {
                let mut request = ffi::Request::default();
                while let Some(job) = rx.blocking_recv() {
                    // Busy before the job leaves the queue's count: a sender that sees neither
                    // knows nothing runs ahead of its job (see `Php::execute_with`).
                    shared.busy.store(true, Ordering::SeqCst);
                    shared.queue_depth.fetch_sub(1, Ordering::SeqCst);
                    if !job.claim() {
                        shared.busy.store(false, Ordering::SeqCst);
                        continue;
                    }
                    if let Some(dog) = WATCHDOG.get() {
                        dog.request_start();
                    }
                    job.run(&mut request, &shared.finishing);
                    if let Some(dog) = WATCHDOG.get() {
                        dog.request_end();
                    }
                    shared.finishing.store(false, Ordering::SeqCst);
                    shared.busy.store(false, Ordering::SeqCst);
                    shared.executed.fetch_add(1, Ordering::SeqCst);
                }
            });
            if let Err(msg) = served {
                log::emit(2, &format!("the PHP thread panicked ({msg}); embedded PHP is down"));
            }
            shared.alive.store(false, Ordering::SeqCst);
            shared.busy.store(false, Ordering::SeqCst);
        })
        .map_err(|e| EngineError::Internal(format!("cannot spawn the PHP thread: {e}")))?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(tx),
        Ok(Err(msg)) => Err(EngineError::Internal(msg)),
        Err(_) => Err(EngineError::Internal("the PHP thread died during startup".into())),
    }
}

/// One log line saying which configuration PHP loaded (and a warning when opcache is missing).
pub(super) fn log_ini_report(mode: ffi::IniMode, report: &ffi::IniReport) {
    log::emit(6, &ini_report_line(mode, report));
    if !report.opcache_loaded {
        log::emit(
            4,
            "opcache is not loaded: the php.ini and its scan directory have no `zend_extension=opcache.so` \
             (Debian: conf.d/10-opcache.ini); scripts are compiled at every request",
        );
    }
}

/// `php.ini: FILE (or none); scanned: DIR (N files); opcache: on|off`.
pub(crate) fn ini_report_line(mode: ffi::IniMode, r: &ffi::IniReport) -> String {
    let none = "none".to_string();
    let file = match mode {
        ffi::IniMode::Off => "off".to_string(),
        _ => r.loaded_file.clone().unwrap_or_else(|| {
            format!("none found (PHP looked in {})", r.built_ini_dir.as_deref().unwrap_or("its built-in directory"))
        }),
    };
    let scanned = match (mode, r.scan_dir.as_deref()) {
        (ffi::IniMode::Off, _) | (_, None | Some("")) => none,
        (_, Some(dir)) => {
            let n = r.scanned_files.as_deref().map_or(0, |f| f.split(',').filter(|s| !s.trim().is_empty()).count());
            format!("{dir} ({n} files)")
        }
    };
    let opcache = if r.opcache_loaded { "loaded" } else { "not loaded" };
    format!("embedded PHP configuration: php.ini: {file}; scanned: {scanned}; opcache: {opcache}")
}

fn set_timer(seconds: i64) {
    if let Some(dog) = WATCHDOG.get() {
        dog.set(seconds);
    }
}
