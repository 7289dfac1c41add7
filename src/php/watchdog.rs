//! `max_execution_time` without PHP's SIGPROF timer.
//!
//! PHP arms `setitimer(ITIMER_PROF)`, which counts the CPU time of every thread of the host, and
//! `_exit()`s the process when a timed-out script does not stop within `hard_timeout`. Instead,
//! the shim reports each (re)start of the limit here (request start, `set_time_limit()`,
//! `ini_set('max_execution_time')`), and this thread watches the PHP thread's own CPU clock —
//! the quantity PHP-FPM's one-thread workers measure — and, when the limit passes, makes the VM
//! raise PHP's own "Maximum execution time of N seconds exceeded" fatal error.
//!
//! Arming and disarming happen twice per request, so they cost no wakeup: [`Watchdog::set`]
//! only stores the new limit under a mutex that nobody else holds except for the watchdog's
//! short check (an uncontended lock is one atomic operation, no system call). The watchdog
//! thread polls on a coarse tick ([`TICK`]) and notes the CPU clock at the start of a limit
//! itself, so a limit fires at most two ticks late.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::ffi;

/// How often the watchdog looks at the PHP thread's CPU clock (at most; it sleeps less when an
/// armed limit is closer).
const TICK: Duration = Duration::from_millis(50);

struct Armed {
    /// CPU time of the PHP thread when the watchdog first saw this limit (read by the
    /// watchdog, not by [`Watchdog::set`], so arming costs the PHP thread no system call; the
    /// limit may thus run up to one [`TICK`] of CPU time long).
    start: Option<Duration>,
    limit: Duration,
}

/// The running request as the slow log sees it (wall clock, like php-fpm's
/// `request_slowlog_timeout`).
struct Running {
    started: std::time::Instant,
    /// The backtrace was asked for (once per request).
    logged: bool,
}

/// The watchdog of the PHP thread.
pub(crate) struct Watchdog {
    clock: libc::clockid_t,
    /// `fephp_slowlog_timeout` (zero: no slow log).
    slow_timeout: Duration,
    /// The request running now (slow log only). Fired under this lock, so a request that has
    /// ended ([`Watchdog::request_end`]) is never logged.
    running: Mutex<Option<Running>>,
    /// The armed limit. The watchdog fires while holding this lock, so once [`Watchdog::set`]
    /// has taken it a previous limit can no longer fire into the next request.
    armed: Mutex<Option<Armed>>,
}

impl Watchdog {
    /// Starts the watchdog thread for the calling (PHP) thread's CPU clock.
    pub(crate) fn start_for_current_thread(slow_timeout: Duration) -> std::io::Result<Arc<Watchdog>> {
        let clock = ffi::current_thread_cpu_clock()
            .ok_or_else(|| std::io::Error::other("pthread_getcpuclockid failed"))?;
        let dog = Arc::new(Watchdog { clock, slow_timeout, running: Mutex::new(None), armed: Mutex::new(None) });
        let runner = Arc::clone(&dog);
        std::thread::Builder::new().name("fephp-php-watchdog".into()).spawn(move || runner.run())?;
        Ok(dog)
    }

    /// Restarts the limit at `seconds` of CPU time from now; 0 or less disarms. Once this
    /// returns, a previous limit can no longer fire. Wakes nobody.
    pub(crate) fn set(&self, seconds: i64) {
        let armed = (seconds > 0).then(|| Armed { start: None, limit: Duration::from_secs(seconds as u64) });
        *self.armed.lock().unwrap_or_else(|e| e.into_inner()) = armed;
    }

    /// A request starts on the PHP thread (slow log). Cheap: one uncontended lock, no wakeup.
    pub(crate) fn request_start(&self) {
        if !self.slow_timeout.is_zero() {
            *self.running.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(Running { started: std::time::Instant::now(), logged: false });
        }
    }

    /// The request ended: it can no longer be logged as slow.
    pub(crate) fn request_end(&self) {
        if !self.slow_timeout.is_zero() {
            *self.running.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }

    /// Asks for the running request's backtrace once it has run `slow_timeout` (wall clock).
    fn check_slow(&self) {
        if self.slow_timeout.is_zero() {
            return;
        }
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = &mut *running {
            if !r.logged && r.started.elapsed() >= self.slow_timeout {
                r.logged = true;
                ffi::slowlog_fire();
            }
        }
    }

    fn run(&self) {
        loop {
            self.check_slow();
            let nap = {
                let mut armed = self.armed.lock().unwrap_or_else(|e| e.into_inner());
                match &mut *armed {
                    None => TICK,
                    Some(Armed { start: start @ None, .. }) => {
                        *start = Some(ffi::cpu_time(self.clock));
                        TICK
                    }
                    Some(Armed { start: Some(start), limit }) => {
                        let (start, limit) = (*start, *limit);
                        let used = ffi::cpu_time(self.clock).saturating_sub(start);
                        if used >= limit {
                            // Fired under the lock: `set` (the end of the request) cannot race
                            // past it.
                            ffi::timeout_fire();
                            *armed = None;
                            TICK
                        } else {
                            // CPU time never runs faster than wall time: sleeping the rest
                            // cannot overshoot.
                            (limit - used).min(TICK)
                        }
                    }
                }
            };
            std::thread::sleep(nap);
        }
    }
}
