//! The supervisor process and the executor processes it forks.
//!
//! The supervisor runs PHP's module startup once, forks the executors (so opcache is one
//! shared memory for all), and then ticks every [`TICK`]: it reaps ended executors and forks
//! replacements (a normal exit is a recycle after `max_requests`, a signal is a crash), kills
//! (SIGKILL) an executor whose request has run past the terminate timeout, and watches the two
//! pipes of its owner:
//! - `master`: only the owner (the nginx master) holds the write end. A `D` byte means "drain"
//!   (a reload: a new pool serves new requests); EOF without it means the owner died: every
//!   executor is killed at once and the supervisor exits.
//! - `users`: the owner and its clients (the nginx workers of this configuration) hold the write
//!   end. After a drain, its EOF means the last client is gone: executors are stopped, the
//!   supervisor exits.
//!
//! An executor: accepts one connection at a time on the shared listening socket (the kernel's
//! accept queue is the shared queue: any idle executor takes the next request), checks the
//! peer's uid, reads the request (head and whole body), refuses it with 503 if it waited past
//! the queue timeout, runs PHP, streams the response, and exits after `max_requests`. The
//! transport side of that loop is [`Serving`] (`next_request` / `finish`): the classic loop
//! runs one script per request through it, a worker script (worker mode) pulls its requests
//! through the same calls from inside `fephp_handle_request()`.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::scoreboard::{Counter, Scoreboard, BUSY, STARTING};
use super::sys::{self, Exit, Forked};
use super::{wire, ExecutorOptions};
use crate::cgi::{BodyPart, RequestBody, ResponseHead, Script};
use crate::cgi::Params;
use crate::php::process as php;
use crate::php::worker::{self, RequestSource, WorkerEnd, WorkerRequest};

/// The supervisor's tick.
pub const TICK: Duration = Duration::from_millis(50);
/// A body up to this size is read into memory; larger ones go to an unnamed temp file.
const BODY_IN_MEMORY: u64 = 1 << 20;
/// How long an executor waits for a client's request bytes.
const CLIENT_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// The descriptors a supervisor keeps.
pub struct SupervisorFds {
    /// The shared listening socket.
    pub listener: OwnedFd,
    /// Read end of the owner-liveness pipe.
    pub master: OwnedFd,
    /// Read end of the clients-liveness pipe.
    pub users: OwnedFd,
    /// Where stderr (log lines) should go, if not where it goes now.
    pub log: Option<RawFd>,
    /// The shared-memory transport's region and doorbells (when the pool uses it).
    pub shm: Option<super::shm::Shared>,
}

/// One log line on stderr, in nginx's error-log shape.
pub fn log(level: &str, msg: &str) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs() as libc::time_t;
    // SAFETY: localtime_r with valid in/out params.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&now, &mut tm);
        tm
    };
    let line = format!(
        "{:04}/{:02}/{:02} {:02}:{:02}:{:02} [{level}] {}#0: fephp executors: {msg}\n",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        sys::getpid()
    );
    let _ = sys::write_all(2, line.as_bytes());
}

struct Child {
    pid: libc::pid_t,
    spawned: Instant,
    killed_for_timeout: bool,
    /// Asked to stop (a dynamic pool scaling down): its exit is not a restart.
    stopping: bool,
}

/// The supervisor's main function, in a freshly forked process; never returns.
pub fn run(opts: ExecutorOptions, fds: SupervisorFds, board: Scoreboard) -> ! {
    sys::reset_signals();
    if let Some(fd) = fds.log {
        sys::redirect_stderr(fd);
    }
    let board_fd = board.fd().unwrap_or(-1);
    let mut keep = vec![fds.listener.as_raw_fd(), fds.master.as_raw_fd(), fds.users.as_raw_fd(), board_fd];
    if let Some(shm) = &fds.shm {
        keep.push(shm.region.fd());
        keep.extend(shm.bells.iter().map(|b| b.as_raw_fd()));
    }
    sys::close_other_fds(&keep);
    sys::new_session();
    sys::set_name("fephp-supervisor");
    let me = sys::getpid();
    board.set_supervisor(me as u32);
    if let Err(e) = php::startup(&opts.php) {
        log("alert", &format!("PHP did not start, no executors: {e}"));
        sys::exit_now(1);
    }
    let n = board.slots();
    let mut children: Vec<Option<Child>> = (0..n).map(|_| None).collect();
    let mut draining = false;
    let mut master_open = true;
    let mut all_busy = false;
    match opts.dynamic {
        None => log("notice", &format!("supervisor {me} started {n} executors")),
        Some(d) => log(
            "notice",
            &format!(
                "supervisor {me} started a dynamic pool: {} executors at first, at most {n}, {}-{} spare, idle timeout {:?}",
                d.start, d.min_spare, d.max_spare, d.idle_timeout
            ),
        ),
    }
    let mut first = true;
    // Per slot: quick failures in a row, and no respawn before this time (exponential backoff).
    let mut failures: Vec<u32> = vec![0; n];
    let mut not_before: Vec<Option<Instant>> = vec![None; n];
    // Worker mode's `watch`: the watched files' fingerprint, looked at about once a second.
    let watch = opts.worker.as_ref().map(|w| w.watch.clone()).filter(|w| !w.is_empty());
    let mut watched = watch.as_deref().map(super::watch::fingerprint);
    let mut last_watch = Instant::now();
    if let Some(w) = &opts.worker {
        log("notice", &format!("worker mode: every executor runs {}", w.script.display()));
    }
    loop {
        // How many to start now: static, every empty slot; dynamic, `start` at first, then
        // enough to keep `min_spare` idle (php-fpm's pm = dynamic).
        let live = children.iter().filter(|c| c.is_some()).count();
        let want = match opts.dynamic {
            None => n - live,
            Some(d) if first => d.start.clamp(1, n).saturating_sub(live),
            Some(d) => {
                let spare = (0..n)
                    .filter(|&s| children[s].as_ref().is_some_and(|c| !c.stopping))
                    .filter(|&s| matches!(board.slot_state(s), super::scoreboard::IDLE | STARTING))
                    .count();
                d.min_spare.saturating_sub(spare).min(n - live)
            }
        };
        first = false;
        let mut started = 0;
        let now = Instant::now();
        for (slot, child) in children.iter_mut().enumerate() {
            if started < want && child.is_none() && !draining && !matches!(not_before[slot], Some(t) if now < t) {
                *child = spawn(&opts, &fds, &board, slot, me);
                started += 1;
            }
        }
        // Dynamic: stop idle executors beyond max_spare, and those idle past the idle timeout
        // while more than min_spare are idle (SIGTERM: an executor that just took a request
        // finishes it first).
        if let Some(d) = opts.dynamic {
            let now = sys::monotonic_ns();
            let mut idle: Vec<(usize, u64)> = (0..n)
                .filter(|&s| children[s].as_ref().is_some_and(|c| !c.stopping))
                .filter_map(|s| board.idle_since(s).map(|t| (s, t)))
                .collect();
            idle.sort_by_key(|&(_, t)| t); // longest idle first
            let mut left = idle.len();
            for (slot, since) in idle {
                let expired = !d.idle_timeout.is_zero() && now.saturating_sub(since) >= d.idle_timeout.as_nanos() as u64;
                if left > d.max_spare || (expired && left > d.min_spare) {
                    if let Some(c) = children[slot].as_mut() {
                        c.stopping = true;
                        sys::kill(c.pid, libc::SIGTERM);
                        left -= 1;
                    }
                }
            }
        }
        let ready = sys::poll_readable(
            &[if master_open { fds.master.as_raw_fd() } else { -1 }, fds.users.as_raw_fd()],
            TICK,
        );
        if ready[0] {
            let mut buf = [0u8; 16];
            match sys::read(fds.master.as_raw_fd(), &mut buf) {
                Ok(0) | Err(_) => {
                    master_open = false;
                    if !draining {
                        log("notice", "owner gone (nginx master or fe-php serve): stopping executors now");
                        stop(&mut children, libc::SIGKILL);
                        sys::exit_now(0);
                    }
                }
                Ok(k) => {
                    if buf[..k].contains(&b'D') && !draining {
                        draining = true;
                        log("notice", "draining: executors stop when the last worker of this configuration is gone");
                    }
                }
            }
        }
        if ready[1] {
            let mut buf = [0u8; 16];
            if matches!(sys::read(fds.users.as_raw_fd(), &mut buf), Ok(0) | Err(_)) {
                // Every client is gone (after a drain; or the owner died with them).
                stop(&mut children, libc::SIGTERM);
                sys::exit_now(0);
            }
        }
        // Reap and count.
        while let Some((pid, exit)) = sys::reap() {
            let Some(slot) = children.iter().position(|c| c.as_ref().is_some_and(|c| c.pid == pid)) else { continue };
            let child = children[slot].take().expect("found above");
            board.slot_reset(slot, 0, super::scoreboard::EMPTY);
            if let Some(shm) = &fds.shm {
                // Its requests in shared memory end now (502, or 504 for the terminate timeout).
                shm.executor_gone(slot, child.killed_for_timeout);
            }
            match exit {
                Exit::Code(0) if child.stopping => {}
                Exit::Code(0) => {
                    board.count(Counter::Restart);
                }
                Exit::Signal(_) if child.killed_for_timeout => {
                    log("error", &format!("executor {pid} killed after the request terminate timeout; replaced"));
                }
                Exit::Signal(sig) => {
                    board.count(Counter::Crash);
                    log("error", &format!("executor {pid} exited on signal {sig}; replaced"));
                }
                Exit::Code(code) => {
                    board.count(Counter::Crash);
                    log("error", &format!("executor {pid} exited with code {code}; replaced"));
                }
            }
            // Do not spin on a failing start: 200 ms before this slot is tried again; for a worker
            // script that cannot boot, doubling per failure in a row, at most 10 s.
            if matches!(exit, Exit::Code(EXIT_BOOT_FAILED)) {
                failures[slot] = failures[slot].saturating_add(1);
                let delay = Duration::from_millis(200u64 << failures[slot].clamp(1, 6).saturating_sub(1)).min(Duration::from_secs(10));
                not_before[slot] = Some(Instant::now() + delay);
                log("error", &format!("worker boot failed {} time(s) in a row in slot {slot}; next try in {delay:?}", failures[slot]));
            } else if child.spawned.elapsed() < Duration::from_secs(1) && !matches!(exit, Exit::Code(0)) {
                not_before[slot] = Some(Instant::now() + Duration::from_millis(200));
            } else {
                failures[slot] = 0;
                not_before[slot] = None;
            }
        }
        // Worker mode's watch: changed files restart every worker (each finishes its request).
        if let Some(patterns) = &watch {
            if last_watch.elapsed() >= Duration::from_secs(1) {
                last_watch = Instant::now();
                let now = super::watch::fingerprint(patterns);
                if watched != Some(now) {
                    watched = Some(now);
                    log("notice", "watched files changed: restarting the workers");
                    for c in children.iter().flatten() {
                        sys::kill(c.pid, libc::SIGTERM);
                    }
                }
            }
        }
        // Terminate timeout.
        if !opts.terminate_timeout.is_zero() {
            let now = sys::monotonic_ns();
            for (slot, child) in children.iter_mut().enumerate() {
                let Some(child) = child else { continue };
                if let Some(since) = board.busy_since(slot) {
                    if !child.killed_for_timeout && now.saturating_sub(since) >= opts.terminate_timeout.as_nanos() as u64 {
                        child.killed_for_timeout = true;
                        board.count(Counter::Timeout);
                        sys::kill(child.pid, libc::SIGKILL);
                    }
                }
            }
        }
        let busy = (0..n).filter(|&s| board.slot_state(s) == BUSY).count();
        let spare = (0..n).filter(|&s| board.slot_state(s) == super::scoreboard::IDLE).count();
        let full = children.iter().all(Option::is_some) && spare == 0 && busy > 0;
        if full && !all_busy {
            board.count(Counter::MaxReached);
        }
        all_busy = full;
    }
}

fn stop(children: &mut [Option<Child>], sig: libc::c_int) {
    for c in children.iter().flatten() {
        sys::kill(c.pid, sig);
    }
    let deadline = Instant::now() + Duration::from_secs(1);
    while children.iter().any(Option::is_some) && Instant::now() < deadline {
        while let Some((pid, _)) = sys::reap() {
            for c in children.iter_mut() {
                if c.as_ref().is_some_and(|c| c.pid == pid) {
                    *c = None;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    for c in children.iter().flatten() {
        sys::kill(c.pid, libc::SIGKILL);
    }
}

fn spawn(opts: &ExecutorOptions, fds: &SupervisorFds, board: &Scoreboard, slot: usize, supervisor: libc::pid_t) -> Option<Child> {
    board.slot_reset(slot, 0, STARTING);
    match sys::fork() {
        Ok(Forked::Child) => {
            let code = executor_main(opts, fds, board, slot, supervisor);
            sys::exit_now(code)
        }
        Ok(Forked::Parent(pid)) => {
            // The child writes its pid and IDLE itself (writing here would race with it).
            Some(Child { pid, spawned: Instant::now(), killed_for_timeout: false, stopping: false })
        }
        Err(e) => {
            log("alert", &format!("fork of an executor failed: {e}"));
            board.slot_reset(slot, 0, super::scoreboard::EMPTY);
            None
        }
    }
}

/// One executor process: serves requests until `max_requests`, returns the exit code.
fn executor_main(opts: &ExecutorOptions, fds: &SupervisorFds, board: &Scoreboard, slot: usize, supervisor: libc::pid_t) -> i32 {
    if !sys::die_with_parent(supervisor) {
        return 1;
    }
    sys::set_name("fephp-executor");
    // Our copies of the owner's pipes (the struct that owns them is never dropped here: this
    // process ends with _exit). Other descriptors stay: PHP opened them at startup (opcache).
    sys::close_fd(fds.master.as_raw_fd());
    sys::close_fd(fds.users.as_raw_fd());
    if let Some(cred) = opts.user {
        if let Err(e) = sys::become_user(cred) {
            log("alert", &format!("executor cannot switch to uid {} gid {}: {e}", cred.uid, cred.gid));
            return 2;
        }
    }
    if let Err(e) = php::start_watchdog() {
        log("alert", &format!("executor: {e}"));
        return 2;
    }
    sys::graceful_sigterm();
    // A worker boots first: STARTING until it asks for its first request.
    let state = if opts.worker.is_some() { STARTING } else { super::scoreboard::IDLE };
    board.slot_reset(slot, sys::getpid() as u32, state);
    let transport = match fds.shm.clone() {
        Some(s) => Transport::Shm(super::shm::serve::Source::new(s, slot)),
        None => Transport::Socket(fds.listener.as_raw_fd()),
    };
    let mut serving = Serving { opts, transport, board, slot, served: 0, ready: state != STARTING };
    match &opts.worker {
        None => classic_loop(&mut serving),
        Some(w) => worker_loop(&mut serving, &w.script),
    }
}

/// Classic mode: every request runs its script from the start.
fn classic_loop(serving: &mut Serving<'_>) -> i32 {
    let mut request = php::Request::default();
    loop {
        let taken = match serving.next_request() {
            Ok(t) => t,
            Err(code) => return code,
        };
        let Taken { params, script, body, mut out, ini, started } = taken;
        let stats = php::run_with(&mut request, &params, &script, body.into_reader(), &mut out, ini.as_ref());
        drop(out);
        serving.finish(started, stats);
    }
}

/// Worker mode: the worker script boots once and takes its requests through the same
/// [`Serving::next_request`] (see [`crate::php::worker`]). Every end but a stop is a restart:
/// the process exits and the supervisor forks a fresh executor, which boots the script again.
fn worker_loop(serving: &mut Serving<'_>, script: &std::path::Path) -> i32 {
    let mut source = WorkerSource { serving, started: None, stop: 0 };
    match worker::run_worker(script, &mut source) {
        WorkerEnd::Stopped => source.stop,
        WorkerEnd::Ended => 0,
        WorkerEnd::Exited => 0,
        WorkerEnd::RequestFailed => {
            log("warn", &format!("worker {}: a request failed (uncaught exception or fatal error, see PHP's log); restarting the worker", script.display()));
            0
        }
        WorkerEnd::BootFailed { output } => {
            let output = output.trim();
            let shown = if output.is_empty() { String::new() } else { format!("; its output: {:?}", output.chars().take(300).collect::<String>()) };
            log(
                "error",
                &format!(
                    "worker script {} failed to boot (it ended or failed before calling fephp_handle_request(); see PHP's log){shown}",
                    script.display()
                ),
            );
            source.serving.refuse_waiting("the worker script failed to boot");
            EXIT_BOOT_FAILED
        }
    }
}

/// Exit code of an executor whose worker script failed to boot (the supervisor backs off).
pub const EXIT_BOOT_FAILED: i32 = 4;

/// The worker's [`RequestSource`]: requests from [`Serving`].
struct WorkerSource<'s, 'a> {
    serving: &'s mut Serving<'a>,
    started: Option<Instant>,
    /// The exit code [`Serving::next_request`] gave with its stop.
    stop: i32,
}

impl RequestSource for WorkerSource<'_, '_> {
    fn next(&mut self) -> Option<WorkerRequest> {
        match self.serving.next_request() {
            Ok(t) => {
                self.started = Some(t.started);
                Some(WorkerRequest { params: t.params, script: t.script, body: t.body.into_reader(), out: Box::new(t.out), ini: t.ini })
            }
            Err(code) => {
                self.stop = code;
                None
            }
        }
    }

    fn done(&mut self, stats: php::RunStats) {
        let started = self.started.take().unwrap_or_else(Instant::now);
        self.serving.finish(started, stats);
    }
}

/// Where an executor takes its requests from: the pool's transport.
enum Transport {
    /// The shared-memory queue.
    Shm(super::shm::serve::Source),
    /// The shared listening socket (its accept queue is the shared queue).
    Socket(RawFd),
}

/// The transport side of an executor's serving loop — the seam between the transport and PHP:
/// the classic loop and a worker script both take their requests through
/// [`Serving::next_request`] (from shared memory or the socket alike) and report them through
/// [`Serving::finish`].
struct Serving<'a> {
    opts: &'a ExecutorOptions,
    transport: Transport,
    board: &'a Scoreboard,
    slot: usize,
    /// Requests taken (served or refused).
    served: u64,
    /// The slot was marked IDLE (a worker marks it at its first request).
    ready: bool,
}

/// One request taken from the transport, ready for PHP.
struct Taken {
    params: Params,
    script: Script,
    body: RequestBody,
    /// The response's way back (owns the request's connection or shared-memory slot).
    out: ConnOutput,
    /// Ini settings for this request only (wire FEX2).
    ini: Option<crate::config::RequestIni>,
    started: Instant,
}

impl Serving<'_> {
    /// Blocks until the next request (requests refused on the way are answered and counted);
    /// `Err(exit code)`: this executor must stop (`max_requests` reached, SIGTERM, a broken
    /// listener).
    fn next_request(&mut self) -> Result<Taken, i32> {
        if !self.ready {
            self.board.set_idle(self.slot);
            self.ready = true;
        }
        loop {
            if self.opts.max_requests > 0 && self.served >= self.opts.max_requests {
                return Err(0);
            }
            if sys::stop_requested() {
                return Err(0);
            }
            let conn: Box<dyn Conn> = match &mut self.transport {
                Transport::Shm(source) => {
                    let Some(conn) = source.next(sys::stop_requested) else { return Err(0) };
                    self.board.count(Counter::Accepted);
                    Box::new(conn)
                }
                Transport::Socket(listener) => {
                    let conn = match sys::accept_once(*listener) {
                        Ok(c) => c,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            log("alert", &format!("executor accept failed: {e}"));
                            return Err(3);
                        }
                    };
                    self.board.count(Counter::Accepted);
                    if !peer_allowed(self.opts, conn.as_raw_fd()) {
                        self.board.set_idle(self.slot);
                        self.served += 1;
                        continue;
                    }
                    let _ = sys::set_read_timeout(conn.as_raw_fd(), CLIENT_READ_TIMEOUT);
                    Box::new(SocketConn(conn))
                }
            };
            match take(self.opts, self.board, self.slot, conn) {
                Some(t) => return Ok(t),
                None => {
                    self.board.set_idle(self.slot);
                    self.served += 1;
                }
            }
        }
    }

    /// The request taken at `started` has ended (its output dropped: connection closed or
    /// shared-memory slot released).
    fn finish(&mut self, started: Instant, stats: php::RunStats) {
        self.board.end(self.slot, stats.cpu, stats.peak_memory, started.elapsed());
        self.board.set_idle(self.slot);
        self.served += 1;
    }

    /// Answers every request already waiting with 503 (`why`), without blocking.
    fn refuse_waiting(&mut self, why: &str) {
        loop {
            let conn: Box<dyn Conn> = match &mut self.transport {
                Transport::Shm(source) => match source.try_next() {
                    Some(c) => Box::new(c),
                    None => return,
                },
                Transport::Socket(listener) => {
                    if !sys::poll_readable(&[*listener], Duration::ZERO)[0] {
                        return;
                    }
                    let Ok(conn) = sys::accept_once(*listener) else { return };
                    if !peer_allowed(self.opts, conn.as_raw_fd()) {
                        continue;
                    }
                    let _ = sys::set_read_timeout(conn.as_raw_fd(), CLIENT_READ_TIMEOUT);
                    Box::new(SocketConn(conn))
                }
            };
            self.board.count(Counter::Accepted);
            if let Some(mut t) = take(self.opts, self.board, self.slot, conn) {
                t.out.fail_kind(wire::FAIL_OVERLOADED, why);
            }
            self.board.set_idle(self.slot);
        }
    }
}

/// The socket transport: the peer's uid must be allowed (an abstract socket has no file
/// permissions).
fn peer_allowed(opts: &ExecutorOptions, fd: RawFd) -> bool {
    match sys::peer_uid(fd) {
        Ok(uid) if opts.allowed_uids.is_empty() || opts.allowed_uids.contains(&uid) || uid == 0 => true,
        Ok(uid) => {
            log("warn", &format!("refused a connection from uid {uid}"));
            false
        }
        Err(_) => false,
    }
}

/// One request's byte streams, whichever transport carries them: the request's bytes in, the
/// response's frames out. The serving loop sees only this.
pub(super) trait Conn {
    /// Reads at least one byte (blocking, bounded by the transport's client timeout).
    fn read_some(&mut self, buf: &mut [u8]) -> std::io::Result<usize>;
    /// Writes all of `data`; false when the client is gone.
    fn write_all(&mut self, data: &[u8]) -> bool;
    /// Fills `buf`.
    fn read_exact(&mut self, mut buf: &mut [u8]) -> std::io::Result<()> {
        while !buf.is_empty() {
            let n = self.read_some(buf)?;
            buf = &mut buf[n..];
        }
        Ok(())
    }
}

/// A connection of the socket transport (closed when dropped).
struct SocketConn(OwnedFd);

impl Conn for SocketConn {
    fn read_some(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match sys::read(self.0.as_raw_fd(), buf)? {
            0 => Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the client closed the connection")),
            n => Ok(n),
        }
    }
    fn write_all(&mut self, data: &[u8]) -> bool {
        sys::send_all(self.0.as_raw_fd(), data).is_ok()
    }
}

impl Conn for super::shm::serve::ShmRequest {
    fn read_some(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        super::shm::serve::ShmRequest::read_some(self, buf)
    }
    fn write_all(&mut self, data: &[u8]) -> bool {
        super::shm::serve::ShmRequest::write_all(self, data)
    }
}

/// Reads one request from `conn` (the head, the body, the queue timeout); `None` when it was
/// refused or broken (answered when there was someone to answer).
fn take(opts: &ExecutorOptions, board: &Scoreboard, slot: usize, mut conn: Box<dyn Conn>) -> Option<Taken> {
    // One read takes the preamble, the head and often the whole small body.
    let mut first = vec![0u8; 16 * 1024];
    let mut got = 0;
    while got < 8 {
        match conn.read_some(&mut first[got..]) {
            Ok(n) => got += n,
            Err(_) => return None,
        }
    }
    let mut out = ConnOutput { conn, buf: BytesMut::with_capacity(16 * 1024 + 64) };
    let Ok(len) = wire::request_head_len(first[..8].try_into().expect("8 bytes")) else {
        out.fail_kind(wire::FAIL_INTERNAL, "bad request preamble");
        return None;
    };
    if first.len() < 8 + len {
        first.resize(8 + len, 0);
    }
    if got < 8 + len && out.conn.read_exact(&mut first[got..8 + len]).is_err() {
        return None;
    }
    got = got.max(8 + len);
    let Ok(req) = wire::decode_request_head(&first[8..8 + len]) else {
        out.fail_kind(wire::FAIL_INTERNAL, "bad request head");
        return None;
    };
    // Body bytes that came with the head.
    let early = &first[8 + len..got];
    if early.len() as u64 > req.body_len {
        out.fail_kind(wire::FAIL_INTERNAL, "more body bytes than announced");
        return None;
    }
    let body = read_body(out.conn.as_mut(), req.body_len, early).ok()?;
    let started = Instant::now();
    let now = sys::monotonic_ns();
    let uri = req.params.get(b"REQUEST_URI").unwrap_or(req.script_name.as_bytes()).to_vec();
    board.begin(slot, &uri, now);
    if !opts.queue_timeout.is_zero() && now.saturating_sub(req.submitted_ns) > opts.queue_timeout.as_nanos() as u64 {
        out.fail_kind(wire::FAIL_OVERLOADED, "waited longer than the queue timeout for an executor");
        return None;
    }
    let script = Script {
        filename: std::path::PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(req.filename)),
        script_name: req.script_name,
        path_info: req.path_info,
    };
    Some(Taken { params: req.params, script, body, out, ini: req.ini, started })
}

/// The request body: `early` (bytes read with the head) and the rest from `conn`.
fn read_body(conn: &mut dyn Conn, len: u64, early: &[u8]) -> std::io::Result<RequestBody> {
    if len == 0 {
        return Ok(RequestBody::empty());
    }
    if len <= BODY_IN_MEMORY {
        let mut buf = vec![0u8; len as usize];
        buf[..early.len()].copy_from_slice(early);
        conn.read_exact(&mut buf[early.len()..])?;
        return Ok(RequestBody::from_bytes(Bytes::from(buf)));
    }
    let file = sys::anonymous_file()?;
    sys::write_all(file.as_raw_fd(), early)?;
    let mut left = len - early.len() as u64;
    let mut buf = vec![0u8; 64 * 1024];
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        conn.read_exact(&mut buf[..want])?;
        sys::write_all(file.as_raw_fd(), &buf[..want])?;
        left -= want as u64;
    }
    let mut body = RequestBody::empty();
    body.push(BodyPart::File { file, offset: 0, len });
    Ok(body)
}

/// PHP's output, as response frames on the request's [`Conn`] (closed or released when
/// dropped).
struct ConnOutput {
    conn: Box<dyn Conn>,
    buf: BytesMut,
}

impl ConnOutput {
    fn fail_kind(&mut self, kind: u8, msg: &str) {
        self.buf.clear();
        wire::encode_fail(&mut self.buf, kind, msg);
        let _ = self.conn.write_all(&self.buf);
    }
}

impl php::Output for ConnOutput {
    fn send(&mut self, head: Option<&ResponseHead>, chunk: &[u8], end: bool) -> bool {
        self.buf.clear();
        if let Some(h) = head {
            wire::encode_head(&mut self.buf, h);
        }
        wire::encode_data(&mut self.buf, chunk);
        if end {
            wire::encode_end(&mut self.buf);
        }
        self.conn.write_all(&self.buf)
    }

    fn fail(&mut self, message: &str) {
        self.fail_kind(wire::FAIL_INTERNAL, message);
    }
}
