//! PHP executors: embedded PHP (our SAPI over libphp, no FastCGI, no php-fpm) in a pool of
//! PHP processes behind ONE shared queue, supervised by a process of ours — PHP-FPM's
//! concurrency and isolation with the embedded SAPI.
//!
//! Layers (the folders keep them apart): [`crate::php`] (the SAPI: C shim + safe wrapper; here
//! only [`crate::php::process`], PHP on a process's main thread) ← `executor` (processes,
//! shared queue, transport) → used by [`crate::engine`] (one API) ← surfaces (nginx module,
//! harness, C ABI).
//!
//! # Processes
//! - [`Pool::start`] (the nginx master in `init_module`, or any single-threaded owner) creates
//!   the [`Scoreboard`] (an anonymous `MAP_SHARED` mapping), the shared listening socket (an
//!   abstract unix socket: no file, gone with its last descriptor) and two pipes, then forks the
//!   **supervisor**. The supervisor must be its own process: nginx reaps every child of its
//!   master and workers with `waitpid(-1)`, so the executors' parent cannot be an nginx process.
//! - The supervisor resets the signal state nginx left, closes every inherited descriptor but
//!   its own, runs PHP's module startup ONCE and forks the executors from that state (opcache:
//!   one shared memory for all), statically N or dynamically ([`Dynamic`]: php-fpm's
//!   `pm = dynamic`, min/max spare, idle timeout; an executor asked to stop finishes its
//!   request first). It respawns crashed executors, recycles them after
//!   `max_requests`, SIGKILLs one whose request runs past `terminate_timeout`, and counts
//!   everything on the scoreboard. See [`supervisor`] for the pipes: owner death (EOF on the
//!   owner pipe) kills every executor at once; a drain (`D`, a reload) lets in-flight requests
//!   finish and stops the pool when the last client (the old workers) has closed the users pipe.
//! - [`Pool::start_exec`]: the supervisor `exec`s the `fe-php` binary right after the fork
//!   (`fe-php executor-supervisor`, descriptors 3–6: socket, owner pipe, users pipe, scoreboard
//!   memfd), so PHP starts from a fresh address space. With [`Pool::start`] the supervisor and
//!   the executors are copies of the owner's memory (for nginx: every server block's
//!   configuration and TLS keys, readable by PHP through `/proc/self/mem`).
//! - Executors may switch to their own user and group after the fork
//!   ([`ExecutorOptions::user`]); they die with the supervisor (`PR_SET_PDEATHSIG`).
//!
//! # Worker mode
//! With [`ExecutorOptions::worker`] every executor runs the worker script once
//! ([`crate::php::worker`]): it boots the application and takes its requests through
//! `fephp_handle_request()`, which pulls them from the same transport seam as the classic loop
//! (`supervisor.rs`: `Serving::next_request` / `Serving::finish`). Any end of the worker but a
//! stop (a failed request, `exit()`, the script leaving its loop) ends the executor and the
//! supervisor forks a fresh one; a worker that cannot boot exits with a distinct code, answers
//! waiting requests with 503, and its slot is retried with an exponential backoff (200 ms to
//! 10 s). `watch` patterns are fingerprinted by the supervisor about once a second
//! (`watch.rs`); a change SIGTERMs every executor (each finishes its request first).
//!
//! # Transport (measured; see `benches/ANALYSIS.md`)
//! The shared queue is the kernel's accept queue of one listening socket: any idle executor
//! takes the next connection (php-fpm's model), the backlog is `fephp_queue`'s size, a full
//! backlog is an immediate 503. One connection per request carries our own compact framing
//! ([`wire`]: one message for the request head, the body's raw bytes, then `HEAD` / `DATA` /
//! `END` frames; no FastCGI records, no per-record round trip); a small response is one write
//! and one wakeup. On the nginx side the connection is an nginx connection (the FPM pool's
//! [`crate::pool::Connector`]), so readiness comes from nginx's own epoll: no thread hop.
//!
//! The suggested shared-memory transport (slots + an MPMC ring of slot indexes, futex
//! and eventfd wakes) is NOT built yet: this socket transport is the first committed step. Its
//! cost next to the in-process PHP thread is in `benches/ANALYSIS.md`.
//!
//! # Untrusted peers
//! Everything read back from an executor (frames, scoreboard) is validated: lengths are bounded
//! before anything is allocated, header names and values checked, states clamped. A dead,
//! hung or lying executor costs its own request (502/504) and nothing else. An executor accepts
//! only peers whose uid is allowed ([`ExecutorOptions::allowed_uids`], checked with
//! `SO_PEERCRED`), since an abstract socket has no file permissions.

mod client;
pub mod scoreboard;
mod supervisor;
pub mod sys;
mod watch;
pub mod wire;

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use client::{Client, ClientConfig, ExecBody, PolledExecBody};
pub use scoreboard::{ExecutorStatus, PoolStatus, Scoreboard};
pub use sys::{lookup_user, Credentials};

use crate::config::IniFile;
use crate::php::PhpOptions;
use crate::pool::Address;

/// Default number of executors (Debian's php-fpm pool: `pm.max_children = 5`).
pub const DEFAULT_EXECUTORS: usize = 5;

/// A dynamic pool (php-fpm's `pm = dynamic`): between 1 and [`ExecutorOptions::executors`]
/// processes, keeping `min_spare`..=`max_spare` idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dynamic {
    /// Executors started at first.
    pub start: usize,
    /// Fewer idle executors than this: more are started.
    pub min_spare: usize,
    /// More idle executors than this: the longest idle are stopped.
    pub max_spare: usize,
    /// An executor idle this long is stopped while more than `min_spare` are idle
    /// (`ZERO` = never).
    pub idle_timeout: Duration,
}

impl Dynamic {
    /// php-fpm's defaults for `pm = dynamic` with `max` children: min_spare 1, max_spare 3,
    /// start min_spare + (max_spare - min_spare) / 2, and an idle timeout of 10 s.
    pub fn fpm_defaults(max: usize) -> Dynamic {
        let (min_spare, max_spare) = (1.min(max), 3.min(max));
        Dynamic { start: (min_spare + (max_spare - min_spare) / 2).max(1), min_spare, max_spare, idle_timeout: Duration::from_secs(10) }
    }
}

/// Settings of an executor pool.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// PHP's ini settings (the queue fields of [`PhpOptions`] are not used here).
    pub php: PhpOptions,
    /// Number of executor processes (static), or the most (dynamic); at least 1.
    pub executors: usize,
    /// `None`: a static pool of `executors` processes; `Some`: a dynamic pool.
    pub dynamic: Option<Dynamic>,
    /// Requests an executor serves before it is replaced (0 = never).
    pub max_requests: u64,
    /// A request running longer than this gets its executor SIGKILLed (504) and replaced
    /// (`Duration::ZERO` = never; like php-fpm's `request_terminate_timeout`).
    pub terminate_timeout: Duration,
    /// Requests that may wait in the shared queue (the listen backlog; more → 503).
    pub queue_size: usize,
    /// A request that waited longer than this for an executor gets 503 (`ZERO` = no limit).
    pub queue_timeout: Duration,
    /// Executors switch to this user and group after the fork (needs root).
    pub user: Option<Credentials>,
    /// uids allowed to connect (root always is); empty = anyone.
    pub allowed_uids: Vec<u32>,
    /// Worker mode: every executor runs this worker script instead of one script per request.
    pub worker: Option<WorkerOptions>,
}

/// Worker mode of a pool ([`crate::php::worker`]): each executor runs `script` once; it boots
/// the application and serves requests through `fephp_handle_request()`. `max_requests` of the
/// pool recycles it; any failed request restarts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerOptions {
    /// The worker script (absolute path).
    pub script: PathBuf,
    /// Glob patterns (`glob(3)`; a matching directory counts with everything under it): when a
    /// matching file changes, appears or goes, every worker is restarted (for development).
    pub watch: Vec<String>,
}

impl Default for ExecutorOptions {
    fn default() -> Self {
        ExecutorOptions {
            php: PhpOptions::default(),
            executors: DEFAULT_EXECUTORS,
            dynamic: None,
            max_requests: 0,
            terminate_timeout: Duration::ZERO,
            queue_size: 1024,
            queue_timeout: Duration::from_secs(60),
            user: None,
            allowed_uids: Vec::new(),
            worker: None,
        }
    }
}

/// A running pool, as seen by its owner: the supervisor's pid, the socket's name, the
/// scoreboard and the owner's ends of the two pipes.
///
/// Dropping it closes the owner's ends: the supervisor sees its owner gone and kills every
/// executor at once. [`Pool::drain`] instead lets in-flight requests finish.
#[derive(Debug)]
pub struct Pool {
    name: Vec<u8>,
    board: Scoreboard,
    master: Option<OwnedFd>,
    users: Option<OwnedFd>,
    supervisor: libc::pid_t,
}

static POOLS: AtomicU64 = AtomicU64::new(0);

/// The first argument of the `fe-php` binary that makes it an exec'd supervisor.
pub const EXEC_COMMAND: &str = "executor-supervisor";

/// `fe-php executor-supervisor OPTIONS`: the supervisor after [`Pool::start_exec`]'s `exec`,
/// with the listening socket, the two pipes and the scoreboard at descriptors 3 to 6. Never
/// returns.
pub fn exec_main(encoded: &str) -> ! {
    use std::os::fd::FromRawFd;
    let opts = match ExecutorOptions::decode(encoded) {
        Ok(o) => o,
        Err(e) => {
            supervisor::log("alert", &format!("bad executor options: {e}"));
            sys::exit_now(2)
        }
    };
    // SAFETY: the exec'ing parent placed exactly these four descriptors here for us.
    let (listener, master, users, board) =
        unsafe { (OwnedFd::from_raw_fd(3), OwnedFd::from_raw_fd(4), OwnedFd::from_raw_fd(5), OwnedFd::from_raw_fd(6)) };
    let board = match Scoreboard::from_fd(board, opts.executors) {
        Ok(b) => b,
        Err(e) => {
            supervisor::log("alert", &format!("scoreboard: {e}"));
            sys::exit_now(2)
        }
    };
    supervisor::run(opts, supervisor::SupervisorFds { listener, master, users, log: None }, board)
}

fn escape(s: &str) -> String {
    s.replace('%', "%25").replace('\n', "%0A").replace('\t', "%09")
}

fn unescape(s: &str) -> String {
    s.replace("%0A", "\n").replace("%09", "\t").replace("%25", "%")
}

impl ExecutorOptions {
    /// The options as text (one `key\tvalue` per line), for an exec'd supervisor.
    pub fn encode(&self) -> String {
        let mut out = format!(
            "executors\t{}\nmax_requests\t{}\nterminate_ms\t{}\nqueue_size\t{}\nqueue_timeout_ms\t{}\n",
            self.executors,
            self.max_requests,
            self.terminate_timeout.as_millis(),
            self.queue_size,
            self.queue_timeout.as_millis()
        );
        if let Some(d) = self.dynamic {
            out.push_str(&format!("dynamic\t{}:{}:{}:{}\n", d.start, d.min_spare, d.max_spare, d.idle_timeout.as_millis()));
        }
        if let Some(c) = self.user {
            out.push_str(&format!("user\t{}:{}\n", c.uid, c.gid));
        }
        for uid in &self.allowed_uids {
            out.push_str(&format!("allow\t{uid}\n"));
        }
        if let Some(w) = &self.worker {
            out.push_str(&format!("worker\t{}\n", escape(&w.script.to_string_lossy())));
            for pattern in &w.watch {
                out.push_str(&format!("watch\t{}\n", escape(pattern)));
            }
        }
        match &self.php.ini_file {
            IniFile::Distribution => {}
            IniFile::Off => out.push_str("ini_off\toff\n"),
            IniFile::File(f) => out.push_str(&format!("ini_file\t{}\n", escape(&f.to_string_lossy()))),
        }
        for (k, v) in &self.php.ini {
            out.push_str(&format!("ini\t{}\t{}\n", escape(k), escape(v)));
        }
        out
    }

    /// Parses [`ExecutorOptions::encode`]'s text.
    pub fn decode(text: &str) -> Result<ExecutorOptions, String> {
        let mut o = ExecutorOptions::default();
        let num = |v: &str| v.parse::<u64>().map_err(|_| format!("bad number {v:?}"));
        for line in text.lines().filter(|l| !l.is_empty()) {
            let mut parts = line.splitn(3, '\t');
            let key = parts.next().unwrap_or("");
            let value = parts.next().ok_or_else(|| format!("no value in {line:?}"))?;
            match key {
                "executors" => o.executors = num(value)? as usize,
                "max_requests" => o.max_requests = num(value)?,
                "terminate_ms" => o.terminate_timeout = Duration::from_millis(num(value)?),
                "queue_size" => o.queue_size = num(value)? as usize,
                "queue_timeout_ms" => o.queue_timeout = Duration::from_millis(num(value)?),
                "user" => {
                    let (u, g) = value.split_once(':').ok_or("bad user")?;
                    o.user = Some(Credentials { uid: num(u)? as u32, gid: num(g)? as u32 });
                }
                "allow" => o.allowed_uids.push(num(value)? as u32),
                "worker" => o.worker = Some(WorkerOptions { script: PathBuf::from(unescape(value)), watch: Vec::new() }),
                "watch" => o.worker.as_mut().ok_or("watch before worker")?.watch.push(unescape(value)),
                "dynamic" => {
                    let v: Vec<u64> = value.split(':').map(num).collect::<Result<_, _>>()?;
                    let [start, min_spare, max_spare, idle_ms] = v[..] else { return Err("bad dynamic".into()) };
                    o.dynamic = Some(Dynamic {
                        start: start as usize,
                        min_spare: min_spare as usize,
                        max_spare: max_spare as usize,
                        idle_timeout: Duration::from_millis(idle_ms),
                    });
                }
                "ini_file" => o.php.ini_file = IniFile::File(PathBuf::from(unescape(value))),
                "ini_off" => o.php.ini_file = IniFile::Off,
                "ini" => {
                    let v = parts.next().ok_or("ini without a value")?;
                    o.php.ini.push((unescape(value), unescape(v)));
                }
                other => return Err(format!("unknown key {other:?}")),
            }
        }
        if o.executors == 0 {
            return Err("executors must be at least 1".into());
        }
        Ok(o)
    }
}

impl Pool {
    /// Creates the scoreboard, the socket and the pipes, and forks the supervisor, which starts
    /// PHP and the executors in the background (requests queue until they are up). `log`: a
    /// descriptor the supervisor's and PHP's log lines go to (default: this stderr).
    ///
    /// Call from a single-threaded process (the nginx master), or before other threads exist:
    /// the supervisor is forked and runs PHP's startup in the child.
    pub fn start(opts: ExecutorOptions, log: Option<RawFd>) -> io::Result<Pool> {
        Self::start_with(opts, log, None)
    }

    /// Like [`Pool::start`], but the supervisor `exec`s `binary` (the `fe-php` binary, which
    /// runs it through `fe-php executor-supervisor`) right after the fork, so the executors
    /// start from a fresh address space: nothing of the owner's memory (an nginx master's
    /// configuration, TLS private keys, header secrets) is readable by PHP through
    /// `/proc/self/mem`. Without it the executors are forked copies of the owner.
    pub fn start_exec(opts: ExecutorOptions, log: Option<RawFd>, binary: &std::path::Path) -> io::Result<Pool> {
        Self::start_with(opts, log, Some(binary))
    }

    fn start_with(opts: ExecutorOptions, log: Option<RawFd>, binary: Option<&std::path::Path>) -> io::Result<Pool> {
        let board = Scoreboard::new(opts.executors.max(1))?;
        board.set_worker_mode(opts.worker.is_some());
        let seq = POOLS.fetch_add(1, Ordering::Relaxed);
        let name = format!("fephp-exec-{}-{}-{}", sys::getpid(), seq, sys::monotonic_ns() % 1_000_000_007).into_bytes();
        let listener = sys::listen_abstract(&name, opts.queue_size.max(1))?;
        let (master_r, master_w) = sys::pipe()?;
        let (users_r, users_w) = sys::pipe()?;
        match sys::fork()? {
            sys::Forked::Child => {
                drop(master_w);
                drop(users_w);
                if let Some(binary) = binary {
                    let encoded = opts.encode();
                    let fds = [listener.as_raw_fd(), master_r.as_raw_fd(), users_r.as_raw_fd(), board.fd().unwrap_or(-1)];
                    let err = sys::exec_with_fds(binary, &["fephp-supervisor", EXEC_COMMAND, &encoded], &fds, log);
                    supervisor::log("alert", &format!("cannot exec {}: {err}", binary.display()));
                    sys::exit_now(1);
                }
                let fds = supervisor::SupervisorFds { listener, master: master_r, users: users_r, log };
                supervisor::run(opts, fds, board)
            }
            sys::Forked::Parent(pid) => Ok(Pool { name, board, master: Some(master_w), users: Some(users_w), supervisor: pid }),
        }
    }

    /// The address clients connect to.
    pub fn address(&self) -> Address {
        let mut path = vec![0u8];
        path.extend_from_slice(&self.name);
        Address::Unix(PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(path)))
    }

    /// The pool's scoreboard.
    pub fn scoreboard(&self) -> &Scoreboard {
        &self.board
    }

    /// The supervisor's pid.
    pub fn supervisor_pid(&self) -> u32 {
        self.supervisor as u32
    }

    /// A client of this pool (with the scoreboard, for status).
    pub fn client(&self, connect_timeout: Duration, read_timeout: Duration, terminate_timeout: Duration) -> Client {
        Client::new(
            ClientConfig { address: self.address(), connect_timeout, read_timeout, terminate_timeout, connector: None },
            Some(self.board.clone()),
        )
    }

    /// In a forked client process (an nginx worker): closes the owner's liveness end, so the
    /// owner's death alone is seen by the supervisor; keeps the users end until the process
    /// exits.
    pub fn become_client(&mut self) {
        self.master = None;
    }

    /// In a forked process that is not a client (cache manager): closes both ends.
    pub fn forget(&mut self) {
        self.master = None;
        self.users = None;
    }

    /// The owner's descriptors (for tests and diagnostics): owner pipe, users pipe.
    pub fn raw_fds(&self) -> (RawFd, RawFd) {
        (self.master.as_ref().map_or(-1, |f| f.as_raw_fd()), self.users.as_ref().map_or(-1, |f| f.as_raw_fd()))
    }

    /// Drains the pool (a reload): in-flight requests finish, no client of this owner sends
    /// new ones, the pool stops once every other holder of the users pipe is gone.
    pub fn drain(mut self) {
        if let Some(m) = self.master.take() {
            let _ = sys::write_all(m.as_raw_fd(), b"D");
        }
        self.users = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_round_trip_through_text() {
        let mut o = ExecutorOptions {
            executors: 7,
            max_requests: 9,
            terminate_timeout: Duration::from_millis(1500),
            user: Some(Credentials { uid: 65534, gid: 65534 }),
            allowed_uids: vec![0, 33],
            dynamic: Some(Dynamic::fpm_defaults(7)),
            ..Default::default()
        };
        o.php.ini = vec![("a.b".into(), "x\ty\n%z".into()), ("c".into(), "".into())];
        o.php.ini_file = IniFile::File("/etc/php.ini".into());
        o.worker = Some(WorkerOptions { script: "/srv/app/worker.php".into(), watch: vec!["/srv/app/src".into(), "/srv/*.php".into()] });
        let back = ExecutorOptions::decode(&o.encode()).unwrap();
        assert_eq!(back.encode(), o.encode());
        assert_eq!(back.php.ini, o.php.ini);
        assert_eq!(back.worker, o.worker);
        assert!(ExecutorOptions::decode("executors\t0\n").is_err());
        assert!(ExecutorOptions::decode("bogus\t1\n").is_err());
    }
}
