//! The scoreboard: one anonymous `MAP_SHARED` mapping, created before any fork (in the nginx
//! master, or by [`super::Pool::start`]), that every process of the pool sees: the supervisor
//! writes the pool's counters, each executor its own slot (state, requests, current URI, last
//! CPU and peak memory), clients the number of requests in flight. Like php-fpm's scoreboard.
//!
//! Every word is an `AtomicU64`. The mapping is writable by executors (PHP code runs there), so
//! a reader treats everything as UNTRUSTED: the slot count comes from the reader's own handle,
//! lengths are clamped, states outside the known set read as "unknown". Nothing read here
//! decides which process gets a signal (the supervisor kills only pids it forked).

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const MAGIC: u64 = 0x6665_7068_7065_7865; // "fephpexe"

/// Header words.
const H_MAGIC: usize = 0;
const H_RESTARTS: usize = 1;
const H_CRASHES: usize = 2;
const H_TIMEOUTS: usize = 3;
const H_MAX_REACHED: usize = 4;
const H_INFLIGHT: usize = 5;
const H_ACCEPTED: usize = 6;
const H_SUPERVISOR: usize = 7;
const H_WORKER_MODE: usize = 8;
const HEADER_WORDS: usize = 16;

/// Slot words.
const S_PID: usize = 0;
const S_STATE: usize = 1;
const S_REQUESTS: usize = 2;
const S_STARTED: usize = 3;
const S_LAST_CPU: usize = 4;
const S_LAST_PEAK: usize = 5;
const S_LAST_DURATION: usize = 6;
const S_URI_LEN: usize = 7;
const S_URI: usize = 8;
const URI_WORDS: usize = 32;
/// Bytes of the current URI kept per executor.
pub const URI_MAX: usize = URI_WORDS * 8;
const S_IDLE_SINCE: usize = S_URI + URI_WORDS;
const SLOT_WORDS: usize = S_IDLE_SINCE + 1;

/// Executor states.
pub const EMPTY: u64 = 0;
/// Forked, PHP not ready yet.
pub const STARTING: u64 = 1;
/// Waiting in `accept`.
pub const IDLE: u64 = 2;
/// Serving a request.
pub const BUSY: u64 = 3;

struct Mapping {
    base: NonNull<AtomicU64>,
    words: usize,
    slots: usize,
    /// The memfd behind the mapping (to hand it to an exec'd supervisor).
    fd: Option<std::os::fd::OwnedFd>,
}

// SAFETY: the mapping is only accessed through atomics.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `new` mapped; no reference outlives the last handle.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.words * 8) };
    }
}

/// A handle to the shared scoreboard. Cheap to clone.
#[derive(Clone)]
pub struct Scoreboard {
    map: Arc<Mapping>,
}

impl std::fmt::Debug for Scoreboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scoreboard").field("slots", &self.map.slots).finish()
    }
}

impl Scoreboard {
    /// A zeroed scoreboard for `slots` executors, shared with every process forked later (and,
    /// through [`Scoreboard::fd`], with an exec'd one).
    pub fn new(slots: usize) -> std::io::Result<Scoreboard> {
        let slots = slots.max(1);
        let words = HEADER_WORDS + slots * SLOT_WORDS;
        let fd = super::sys::memfd("fephp-scoreboard", words * 8)?;
        let board = Self::map(fd, slots)?;
        board.word(H_MAGIC).store(MAGIC, Ordering::Relaxed);
        Ok(board)
    }

    /// Maps a scoreboard created by [`Scoreboard::new`] in another process (its memfd) for
    /// `slots` executors; the file must have exactly that size.
    pub fn from_fd(fd: std::os::fd::OwnedFd, slots: usize) -> std::io::Result<Scoreboard> {
        use std::os::fd::AsRawFd;
        let words = HEADER_WORDS + slots.max(1) * SLOT_WORDS;
        if super::sys::file_size(fd.as_raw_fd())? != (words * 8) as u64 {
            return Err(std::io::Error::other("scoreboard size does not match the executor count"));
        }
        Self::map(fd, slots)
    }

    fn map(fd: std::os::fd::OwnedFd, slots: usize) -> std::io::Result<Scoreboard> {
        use std::os::fd::AsRawFd;
        let slots = slots.max(1);
        let words = HEADER_WORDS + slots * SLOT_WORDS;
        // SAFETY: shared mapping of our memfd of (at least) that size; the result is checked.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                words * 8,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let base = NonNull::new(ptr.cast::<AtomicU64>()).ok_or_else(|| std::io::Error::other("mmap returned NULL"))?;
        Ok(Scoreboard { map: Arc::new(Mapping { base, words, slots, fd: Some(fd) }) })
    }

    /// The memfd behind the mapping.
    pub fn fd(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        self.map.fd.as_ref().map(|f| f.as_raw_fd())
    }

    /// Number of executor slots.
    pub fn slots(&self) -> usize {
        self.map.slots
    }

    fn word(&self, i: usize) -> &AtomicU64 {
        assert!(i < self.map.words);
        // SAFETY: in bounds (checked); the mapping lives as long as `self`; zeroed memory is a
        // valid AtomicU64.
        unsafe { &*self.map.base.as_ptr().add(i) }
    }

    fn slot(&self, slot: usize, field: usize) -> &AtomicU64 {
        self.word(HEADER_WORDS + slot.min(self.map.slots - 1) * SLOT_WORDS + field)
    }

    pub(crate) fn count(&self, what: Counter) {
        let i = match what {
            Counter::Restart => H_RESTARTS,
            Counter::Crash => H_CRASHES,
            Counter::Timeout => H_TIMEOUTS,
            Counter::MaxReached => H_MAX_REACHED,
            Counter::Accepted => H_ACCEPTED,
        };
        self.word(i).fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn set_supervisor(&self, pid: u32) {
        self.word(H_SUPERVISOR).store(pid as u64, Ordering::Relaxed);
    }

    /// The pool runs a worker script (worker mode) rather than one script per request.
    pub(crate) fn set_worker_mode(&self, on: bool) {
        self.word(H_WORKER_MODE).store(u64::from(on), Ordering::Relaxed);
    }

    /// A client starts (+1) or ends (-1) a request.
    pub(crate) fn inflight(&self, delta: i64) {
        if delta >= 0 {
            self.word(H_INFLIGHT).fetch_add(delta as u64, Ordering::Relaxed);
        } else {
            let _ = self.word(H_INFLIGHT).fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(delta.unsigned_abs()))
            });
        }
    }

    pub(crate) fn slot_reset(&self, slot: usize, pid: u32, state: u64) {
        self.slot(slot, S_PID).store(pid as u64, Ordering::Relaxed);
        self.slot(slot, S_REQUESTS).store(0, Ordering::Relaxed);
        self.slot(slot, S_URI_LEN).store(0, Ordering::Relaxed);
        self.slot(slot, S_STARTED).store(0, Ordering::Relaxed);
        self.slot(slot, S_IDLE_SINCE).store(super::sys::monotonic_ns(), Ordering::Relaxed);
        self.slot(slot, S_STATE).store(state, Ordering::Release);
    }

    /// Since when the executor in `slot` has been idle (ns, monotonic), if idle.
    pub(crate) fn idle_since(&self, slot: usize) -> Option<u64> {
        (self.slot_state(slot) == IDLE).then(|| self.slot(slot, S_IDLE_SINCE).load(Ordering::Relaxed))
    }

    pub(crate) fn slot_state(&self, slot: usize) -> u64 {
        self.slot(slot, S_STATE).load(Ordering::Acquire)
    }

    pub(crate) fn set_idle(&self, slot: usize) {
        self.slot(slot, S_STATE).store(IDLE, Ordering::Release);
    }

    /// The executor in `slot` starts serving `uri` at `now_ns`.
    pub(crate) fn begin(&self, slot: usize, uri: &[u8], now_ns: u64) {
        let uri = &uri[..uri.len().min(URI_MAX)];
        for (i, chunk) in uri.chunks(8).enumerate() {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.slot(slot, S_URI + i).store(u64::from_le_bytes(w), Ordering::Relaxed);
        }
        self.slot(slot, S_URI_LEN).store(uri.len() as u64, Ordering::Relaxed);
        self.slot(slot, S_STARTED).store(now_ns, Ordering::Relaxed);
        self.slot(slot, S_STATE).store(BUSY, Ordering::Release);
    }

    /// The executor in `slot` finished a request.
    pub(crate) fn end(&self, slot: usize, cpu: Duration, peak: u64, duration: Duration) {
        self.slot(slot, S_REQUESTS).fetch_add(1, Ordering::Relaxed);
        self.slot(slot, S_LAST_CPU).store(cpu.as_nanos() as u64, Ordering::Relaxed);
        self.slot(slot, S_LAST_PEAK).store(peak, Ordering::Relaxed);
        self.slot(slot, S_LAST_DURATION).store(duration.as_nanos() as u64, Ordering::Relaxed);
        self.slot(slot, S_IDLE_SINCE).store(super::sys::monotonic_ns(), Ordering::Relaxed);
        self.slot(slot, S_STATE).store(IDLE, Ordering::Release);
    }

    /// When the executor in `slot` started its current request (ns, monotonic), if busy.
    pub(crate) fn busy_since(&self, slot: usize) -> Option<u64> {
        (self.slot_state(slot) == BUSY).then(|| self.slot(slot, S_STARTED).load(Ordering::Relaxed))
    }

    /// The pool as it is now (values validated: see the module docs).
    pub fn snapshot(&self) -> PoolStatus {
        let now = super::sys::monotonic_ns();
        let mut st = PoolStatus {
            size: self.map.slots,
            restarts: self.word(H_RESTARTS).load(Ordering::Relaxed),
            crashes: self.word(H_CRASHES).load(Ordering::Relaxed),
            timeouts: self.word(H_TIMEOUTS).load(Ordering::Relaxed),
            max_reached: self.word(H_MAX_REACHED).load(Ordering::Relaxed),
            accepted: self.word(H_ACCEPTED).load(Ordering::Relaxed),
            supervisor_pid: self.word(H_SUPERVISOR).load(Ordering::Relaxed).min(u32::MAX as u64) as u32,
            worker_mode: self.word(H_WORKER_MODE).load(Ordering::Relaxed) == 1,
            ..PoolStatus::default()
        };
        let inflight = self.word(H_INFLIGHT).load(Ordering::Relaxed);
        for s in 0..self.map.slots {
            let state = self.slot(s, S_STATE).load(Ordering::Acquire);
            let pid = self.slot(s, S_PID).load(Ordering::Relaxed).min(u32::MAX as u64) as u32;
            let started = self.slot(s, S_STARTED).load(Ordering::Relaxed);
            let len = (self.slot(s, S_URI_LEN).load(Ordering::Relaxed) as usize).min(URI_MAX);
            let mut uri = Vec::with_capacity(len);
            for i in 0..len.div_ceil(8) {
                uri.extend_from_slice(&self.slot(s, S_URI + i).load(Ordering::Relaxed).to_le_bytes());
            }
            uri.truncate(len);
            let state_name = match state {
                EMPTY => "empty",
                STARTING => "starting",
                IDLE => "idle",
                BUSY => "busy",
                _ => "unknown",
            };
            match state {
                IDLE => st.idle += 1,
                BUSY => st.busy += 1,
                _ => {}
            }
            if matches!(state, STARTING | IDLE | BUSY) {
                st.running += 1;
            }
            st.executors.push(ExecutorStatus {
                pid,
                state: state_name,
                requests: self.slot(s, S_REQUESTS).load(Ordering::Relaxed),
                uri: if state == BUSY { String::from_utf8_lossy(&uri).into_owned() } else { String::new() },
                running_for: (state == BUSY && started > 0 && started <= now).then(|| Duration::from_nanos(now - started)),
                last_cpu: Duration::from_nanos(self.slot(s, S_LAST_CPU).load(Ordering::Relaxed)),
                last_peak_memory: self.slot(s, S_LAST_PEAK).load(Ordering::Relaxed),
                last_duration: Duration::from_nanos(self.slot(s, S_LAST_DURATION).load(Ordering::Relaxed)),
            });
        }
        st.queued = inflight.saturating_sub(st.busy as u64);
        st
    }
}

/// Pool counters.
pub(crate) enum Counter {
    Restart,
    Crash,
    Timeout,
    MaxReached,
    Accepted,
}

/// The pool at one moment ([`Scoreboard::snapshot`]).
#[derive(Debug, Clone, Default)]
pub struct PoolStatus {
    /// Executor slots (the configured number of executors; with a dynamic pool, the most).
    pub size: usize,
    /// Executor processes running now (idle, busy or starting).
    pub running: usize,
    /// Executors waiting for a request.
    pub idle: usize,
    /// Executors serving a request.
    pub busy: usize,
    /// Requests sent by clients and not yet taken by an executor.
    pub queued: u64,
    /// Times every executor was busy (the supervisor's tick saw no idle one).
    pub max_reached: u64,
    /// Executors replaced after a normal exit (recycled after max_requests).
    pub restarts: u64,
    /// Executors that died on a signal (crash) and were replaced.
    pub crashes: u64,
    /// Executors killed after the request terminate timeout.
    pub timeouts: u64,
    /// Requests taken by executors since start.
    pub accepted: u64,
    /// The supervisor's pid.
    pub supervisor_pid: u32,
    /// Worker mode: every executor runs a worker script (`fephp_worker`).
    pub worker_mode: bool,
    /// One entry per slot.
    pub executors: Vec<ExecutorStatus>,
}

/// One executor ([`PoolStatus::executors`]).
#[derive(Debug, Clone, Default)]
pub struct ExecutorStatus {
    /// Its pid (0 when the slot is empty).
    pub pid: u32,
    /// `empty`, `starting`, `idle`, `busy` (or `unknown`).
    pub state: &'static str,
    /// Requests served by this process.
    pub requests: u64,
    /// The current request's URI (busy only; at most [`URI_MAX`] bytes).
    pub uri: String,
    /// How long the current request has run (busy only).
    pub running_for: Option<Duration>,
    /// CPU time of the last request.
    pub last_cpu: Duration,
    /// Peak memory of the last request (bytes).
    pub last_peak_memory: u64,
    /// Wall time of the last request.
    pub last_duration: Duration,
}

impl PoolStatus {
    /// Appends the pool's gauges and counters in Prometheus text format; with `full`, one
    /// series per executor too.
    pub fn render_prometheus(&self, out: &mut String, full: bool) {
        use std::fmt::Write;
        let g = |out: &mut String, name: &str, kind: &str, help: &str, v: u64| {
            let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n");
        };
        g(out, "fephp_executors_total", "gauge", "Executor processes configured (the most, for a dynamic pool).", self.size as u64);
        g(out, "fephp_executors_running", "gauge", "Executor processes running.", self.running as u64);
        g(out, "fephp_executors_idle", "gauge", "Executors waiting for a request.", self.idle as u64);
        g(out, "fephp_executors_busy", "gauge", "Executors serving a request.", self.busy as u64);
        g(out, "fephp_executors_queued", "gauge", "Requests waiting for an executor.", self.queued);
        g(out, "fephp_executors_max_reached_total", "counter", "Times every executor was busy.", self.max_reached);
        g(out, "fephp_executors_restarts_total", "counter", "Executors replaced after max_requests.", self.restarts);
        g(out, "fephp_executors_crashes_total", "counter", "Executors that crashed and were replaced.", self.crashes);
        g(out, "fephp_executors_timeouts_total", "counter", "Executors killed after the request terminate timeout.", self.timeouts);
        g(out, "fephp_executors_accepted_total", "counter", "Requests taken by executors.", self.accepted);
        g(out, "fephp_executors_worker_mode", "gauge", "1 when the executors run a worker script (fephp_worker), 0 in classic mode.", u64::from(self.worker_mode));
        if full {
            self.render_executors(out);
        }
    }

    /// Appends one series per executor (pid, state, current URI and its duration, last
    /// request's CPU, peak memory and duration), in Prometheus text format.
    pub fn render_executors(&self, out: &mut String) {
        use std::fmt::Write;
        let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
        let meta = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
        };
        meta(out, "fephp_executor_requests_total", "counter", "Requests served by one executor process.");
        for e in &self.executors {
            let _ = writeln!(out, "fephp_executor_requests_total{{pid=\"{}\",state=\"{}\"}} {}", e.pid, e.state, e.requests);
        }
        meta(out, "fephp_executor_request_duration_seconds", "gauge", "How long the executor's current request has run.");
        for e in &self.executors {
            if let Some(d) = e.running_for {
                let _ = writeln!(out, "fephp_executor_request_duration_seconds{{pid=\"{}\",uri=\"{}\"}} {:.6}", e.pid, esc(&e.uri), d.as_secs_f64());
            }
        }
        meta(out, "fephp_executor_last_cpu_seconds", "gauge", "CPU time of the executor's last request.");
        for e in &self.executors {
            let _ = writeln!(out, "fephp_executor_last_cpu_seconds{{pid=\"{}\"}} {:.6}", e.pid, e.last_cpu.as_secs_f64());
        }
        meta(out, "fephp_executor_last_peak_memory_bytes", "gauge", "Peak PHP memory of the executor's last request.");
        for e in &self.executors {
            let _ = writeln!(out, "fephp_executor_last_peak_memory_bytes{{pid=\"{}\"}} {}", e.pid, e.last_peak_memory);
        }
        meta(out, "fephp_executor_last_duration_seconds", "gauge", "Wall time of the executor's last request.");
        for e in &self.executors {
            let _ = writeln!(out, "fephp_executor_last_duration_seconds{{pid=\"{}\"}} {:.6}", e.pid, e.last_duration.as_secs_f64());
        }
    }

    /// A php-fpm-like text page: the pool, then with `full` one block per executor.
    pub fn render_text(&self, out: &mut String, full: bool) {
        use std::fmt::Write;
        let _ = write!(
            out,
            "pool:                 executors\nmode:                 {}\nsupervisor pid:       {}\ntotal processes:      {}\nidle processes:       {}\nactive processes:     {}\nlisten queue:         {}\naccepted conn:        {}\nmax children reached: {}\nrestarts:             {}\ncrashes:              {}\nterminate timeouts:   {}\n",
            if self.worker_mode { "worker" } else { "classic" }, self.supervisor_pid, self.size, self.idle, self.busy, self.queued, self.accepted, self.max_reached, self.restarts, self.crashes, self.timeouts
        );
        if full {
            for e in &self.executors {
                let _ = write!(
                    out,
                    "\n************************\npid:                  {}\nstate:                {}\nrequests:             {}\nrequest uri:          {}\nrequest duration:     {}\nlast request cpu:     {:.3}\nlast request memory:  {}\nlast request duration: {}\n",
                    e.pid,
                    e.state,
                    e.requests,
                    e.uri.escape_default(),
                    e.running_for.map_or(0, |d| d.as_micros()),
                    e.last_cpu.as_secs_f64() * 1000.0,
                    e.last_peak_memory,
                    e.last_duration.as_micros(),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_round_trips_and_garbage_is_clamped() {
        let b = Scoreboard::new(2).unwrap();
        b.slot_reset(0, 42, IDLE);
        b.begin(0, b"/a.php?x=1", super::super::sys::monotonic_ns());
        let s = b.snapshot();
        assert_eq!((s.idle, s.busy), (0, 1));
        assert_eq!(s.executors[0].uri, "/a.php?x=1");
        assert_eq!(s.executors[0].pid, 42);
        // An executor scribbling nonsense: huge URI length, unknown state.
        b.slot(1, S_URI_LEN).store(u64::MAX, Ordering::Relaxed);
        b.slot(1, S_STATE).store(99, Ordering::Relaxed);
        let s = b.snapshot();
        assert_eq!(s.executors[1].state, "unknown");
        b.end(0, Duration::from_millis(1), 1 << 20, Duration::from_millis(2));
        let s = b.snapshot();
        assert_eq!(s.executors[0].requests, 1);
        assert_eq!(s.idle, 1);
    }
}
