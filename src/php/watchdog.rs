//! `max_execution_time` without PHP's SIGPROF timer.
//!
//! PHP arms `setitimer(ITIMER_PROF)`, which counts the CPU time of every thread of the host, and
//! `_exit()`s the process when a timed-out script does not stop within `hard_timeout`. Instead,
//! the shim reports each (re)start of the limit here (request start, `set_time_limit()`,
//! `ini_set('max_execution_time')`), and this thread watches the PHP thread's own CPU clock —
//! the quantity PHP-FPM's one-thread workers measure — and, when the limit passes, makes the VM
//! raise PHP's own "Maximum execution time of N seconds exceeded" fatal error.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::ffi;

struct Armed {
    start: Duration,
    limit: Duration,
}

struct State {
    armed: Option<Armed>,
}

/// The watchdog of the PHP thread.
pub(crate) struct Watchdog {
    clock: libc::clockid_t,
    state: Mutex<State>,
    wake: Condvar,
}

impl Watchdog {
    /// Starts the watchdog thread for the calling (PHP) thread's CPU clock.
    pub(crate) fn start_for_current_thread() -> std::io::Result<Arc<Watchdog>> {
        let clock = ffi::current_thread_cpu_clock()
            .ok_or_else(|| std::io::Error::other("pthread_getcpuclockid failed"))?;
        let dog = Arc::new(Watchdog { clock, state: Mutex::new(State { armed: None }), wake: Condvar::new() });
        let runner = Arc::clone(&dog);
        std::thread::Builder::new().name("fephp-php-watchdog".into()).spawn(move || runner.run())?;
        Ok(dog)
    }

    /// Restarts the limit at `seconds` of CPU time from now; 0 or less disarms. Once this
    /// returns, a previous limit can no longer fire.
    pub(crate) fn set(&self, seconds: i64) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.armed = (seconds > 0).then(|| Armed {
            start: ffi::cpu_time(self.clock),
            limit: Duration::from_secs(seconds as u64),
        });
        self.wake.notify_one();
    }

    fn run(&self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let Some(armed) = &st.armed else {
                st = self.wake.wait(st).unwrap_or_else(|e| e.into_inner());
                continue;
            };
            let used = ffi::cpu_time(self.clock).saturating_sub(armed.start);
            if used >= armed.limit {
                // Fired under the lock: `set` (the end of the request) cannot race past it.
                ffi::timeout_fire();
                st.armed = None;
                continue;
            }
            // CPU time never runs faster than wall time, so sleeping the rest cannot overshoot
            // by more than the thread's idle time, after which we look again.
            let rest = armed.limit - used;
            st = self.wake.wait_timeout(st, rest).unwrap_or_else(|e| e.into_inner()).0;
        }
    }
}
