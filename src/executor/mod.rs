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
//!   memfd; with shared memory the region's memfd at 7 and the clients' doorbells from 8 on),
//!   so PHP starts from a fresh address space. With [`Pool::start`] the supervisor and
//!   the executors are copies of the owner's memory (for nginx: every server block's
//!   configuration and TLS keys, readable by PHP through `/proc/self/mem`).
//! - Executors may switch to their own user and group after the fork
//!   ([`ExecutorOptions::user`]); they die with the supervisor (`PR_SET_PDEATHSIG`).
//!
//! # Worker mode
//! With [`ExecutorOptions::worker`] every executor runs the worker script once
//! ([`crate::php::worker`]): it boots the application and takes its requests through
//! `fephp_handle_request()`, which pulls them from the same transport seam as the classic loop
//! (`supervisor.rs`: `Serving::next_request` / `Serving::finish`, over either transport, with
//! the request's own ini settings). Any end of the worker but a
//! stop (a failed request, `exit()`, the script leaving its loop) ends the executor and the
//! supervisor forks a fresh one; a worker that cannot boot exits with a distinct code, answers
//! waiting requests with 503, and its slot is retried with an exponential backoff (200 ms to
//! 10 s). `watch` patterns are fingerprinted by the supervisor about once a second
//! (`watch.rs`); a change SIGTERMs every executor (each finishes its request first).
//!
//! # Transports (measured; see `benches/ANALYSIS.md`)
//! [`Transport::Shm`] (the default, [`shm`]): requests travel through shared memory — slots
//! with a request ring and a response ring each, a queue (a bitmap of queued slots, served round
//! robin) that any idle executor takes from, a futex wake to the executors and an eventfd wake to
//! the client process (in nginx an nginx connection, so the wake arrives in the worker's own
//! epoll). The supervisor marks the slots of a dead executor (502, or 504 after the terminate
//! timeout) and wakes their clients. Only processes that inherited the region can use it.
//!
//! [`Transport::Socket`]: the shared queue is the kernel's accept queue of one listening socket:
//! any idle executor takes the next connection (php-fpm's model), the backlog is `fephp_queue`'s
//! size, a full backlog is an immediate 503. One connection per request carries our own compact
//! framing ([`wire`]: one message for the request head, the body's raw bytes, then `HEAD` /
//! `DATA` / `END` frames; no FastCGI records, no per-record round trip). On the nginx side the
//! connection is an nginx connection (the FPM pool's [`crate::pool::Connector`]).
//!
//! Both carry the same [`wire`] request head and response frames; the executor's serving loop
//! sees one `Conn` (read the request bytes, write the response frames) whichever carries them.
//!
//! # Untrusted peers
//! Everything read back from an executor (frames, shared-memory positions and states,
//! scoreboard) is validated: lengths are bounded before anything is allocated, header names and
//! values checked, states clamped, ring positions checked against the ring. A dead,
//! hung or lying executor costs its own request (502/504) and nothing else. An executor accepts
//! only peers whose uid is allowed ([`ExecutorOptions::allowed_uids`], checked with
//! `SO_PEERCRED`), since an abstract socket has no file permissions.

mod client;
pub mod scoreboard;
pub mod shm;
mod supervisor;
pub mod sys;
mod watch;
pub mod wire;

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use client::{Client, ClientConfig, ExecBody};
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

/// How requests travel between clients and executors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// One unix-socket connection per request (the kernel's accept queue is the shared queue).
    Socket,
    /// Shared-memory slots, a queue in shared memory, futex / eventfd wakes ([`shm`]): the
    /// default (measured faster: `benches/ANALYSIS.md`).
    #[default]
    Shm,
}

impl Transport {
    /// `"socket"` or `"shm"`.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Socket => "socket",
            Transport::Shm => "shm",
        }
    }

    /// Parses `"socket"` / `"shm"`.
    pub fn parse(s: &str) -> Option<Transport> {
        match s {
            "socket" => Some(Transport::Socket),
            "shm" => Some(Transport::Shm),
            _ => None,
        }
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
    /// uids allowed to connect (root always is); empty = anyone (socket transport; the
    /// shared-memory transport is reachable only by processes that inherited its region).
    pub allowed_uids: Vec<u32>,
    /// The transport.
    pub transport: Transport,
    /// Shared-memory transport: client processes (nginx workers; 1 for `fe-php serve`), each
    /// with its own doorbell and its share of the queue's slots.
    pub clients: usize,
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
            transport: Transport::default(),
            clients: 1,
            worker: None,
        }
    }
}

impl ExecutorOptions {
    /// The pool of a configuration's `[php]` section (`executors > 0`, embedded `php`
    /// options) and the `fe-php` binary to exec, if any. Errors name the key.
    pub fn from_config(
        config: &crate::config::PhpConfig,
        php: PhpOptions,
    ) -> Result<(ExecutorOptions, Option<PathBuf>), crate::error::ConfigError> {
        use crate::error::ConfigError;
        let n = (config.executors as usize).max(1);
        let transport = match config.executor_transport.as_deref() {
            None => Transport::default(),
            Some(t) => Transport::parse(t)
                .ok_or_else(|| ConfigError::new("php.executor_transport", format!("\"{t}\": must be \"socket\" or \"shm\"")))?,
        };
        let user = match &config.executor_user {
            Some(u) => Some(lookup_user(u, config.executor_group.as_deref()).map_err(|e| ConfigError::new("php.executor_user", e))?),
            None if config.executor_group.is_some() => {
                return Err(ConfigError::new("php.executor_group", "needs php.executor_user"));
            }
            None => None,
        };
        let dynamic = match config.executors_dynamic {
            None => None,
            Some(d) => {
                let mut out = Dynamic::fpm_defaults(n);
                if let Some(v) = d.min_spare {
                    out.min_spare = v as usize;
                }
                if let Some(v) = d.max_spare {
                    out.max_spare = v as usize;
                }
                out.start = d.start.map_or(out.min_spare + out.max_spare.saturating_sub(out.min_spare) / 2, |v| v as usize);
                if let Some(ms) = d.idle_timeout_ms {
                    out.idle_timeout = Duration::from_millis(ms);
                }
                if out.min_spare == 0 || out.min_spare > out.max_spare || out.max_spare > n || out.start == 0 || out.start > n {
                    return Err(ConfigError::new(
                        "php.executors_dynamic",
                        format!("needs 1 <= min_spare <= max_spare <= {n} (php.executors) and 1 <= start <= {n}"),
                    ));
                }
                Some(out)
            }
        };
        if let Some(b) = &config.executor_binary {
            if !b.is_absolute() || !b.is_file() {
                return Err(ConfigError::new("php.executor_binary", format!("{} is not an absolute path to a file", b.display())));
            }
        }
        let opts = ExecutorOptions {
            php,
            executors: n,
            dynamic,
            max_requests: config.worker_max_requests,
            terminate_timeout: Duration::from_millis(config.request_terminate_timeout_ms),
            queue_size: config.queue_size as usize,
            queue_timeout: config.queue_timeout(),
            user,
            allowed_uids: Vec::new(),
            transport,
            clients: 1,
            worker: config.worker_script.clone().map(|script| WorkerOptions { script, watch: config.worker_watch.clone() }),
        };
        Ok((opts, config.executor_binary.clone()))
    }

    /// The shared-memory region's layout for these options.
    pub fn shm_layout(&self) -> shm::Layout {
        shm::Layout::new(self.clients, self.executors, self.queue_size)
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
    shm: Option<shm::Shared>,
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
    let shm = match opts.transport {
        Transport::Socket => None,
        Transport::Shm => {
            // SAFETY: as above: the region at 7, the doorbells from 8 on.
            let region = unsafe { OwnedFd::from_raw_fd(7) };
            let bells = (0..opts.clients).map(|i| unsafe { OwnedFd::from_raw_fd(8 + i as RawFd) }).collect();
            match shm::Region::from_fd(region, opts.shm_layout()) {
                Ok(r) => Some(shm::Shared { region: std::sync::Arc::new(r), bells: std::sync::Arc::new(bells) }),
                Err(e) => {
                    supervisor::log("alert", &format!("shared-memory region: {e}"));
                    sys::exit_now(2)
                }
            }
        }
    };
    supervisor::run(opts, supervisor::SupervisorFds { listener, master, users, log: None, shm }, board)
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
        out.push_str(&format!("transport\t{}\nclients\t{}\n", self.transport.name(), self.clients));
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
                "transport" => o.transport = Transport::parse(value).ok_or("bad transport")?,
                "clients" => o.clients = (num(value)? as usize).clamp(1, 4096),
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
        let shm = match opts.transport {
            Transport::Socket => None,
            Transport::Shm => {
                let region = shm::Region::new(opts.shm_layout())?;
                let bells = (0..opts.clients.max(1)).map(|_| shm::wake_eventfd()).collect::<io::Result<Vec<_>>>()?;
                Some(shm::Shared { region: std::sync::Arc::new(region), bells: std::sync::Arc::new(bells) })
            }
        };
        // Everything the exec'ing child needs is made before the fork (no allocation between
        // fork and exec in a multi-threaded owner, such as a C ABI host).
        let encoded = opts.encode();
        match sys::fork()? {
            sys::Forked::Child => {
                drop(master_w);
                drop(users_w);
                if let Some(binary) = binary {
                    let mut fds = vec![listener.as_raw_fd(), master_r.as_raw_fd(), users_r.as_raw_fd(), board.fd().unwrap_or(-1)];
                    if let Some(s) = &shm {
                        fds.push(s.region.fd());
                        fds.extend(s.bells.iter().map(|b| b.as_raw_fd()));
                    }
                    let err = sys::exec_with_fds(binary, &["fephp-supervisor", EXEC_COMMAND, &encoded], &fds, log);
                    supervisor::log("alert", &format!("cannot exec {}: {err}", binary.display()));
                    sys::exit_now(1);
                }
                let fds = supervisor::SupervisorFds { listener, master: master_r, users: users_r, log, shm };
                supervisor::run(opts, fds, board)
            }
            sys::Forked::Parent(pid) => {
                Ok(Pool { name, board, master: Some(master_w), users: Some(users_w), supervisor: pid, shm })
            }
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

    /// A client of this pool (with the scoreboard, for status): over the pool's transport;
    /// with shared memory, as client index 0, its doorbell watched by a tokio task.
    pub fn client(&self, connect_timeout: Duration, read_timeout: Duration, terminate_timeout: Duration) -> Client {
        let cfg = ClientConfig { address: self.address(), connect_timeout, read_timeout, terminate_timeout, connector: None };
        match self.shm_client(0, None, read_timeout) {
            Some(Ok(shm)) => Client::with_shm(cfg, Some(self.board.clone()), shm),
            _ => Client::new(cfg, Some(self.board.clone())),
        }
    }

    /// The shared-memory transport's client number `index` (an nginx worker's number), its
    /// doorbell watched by `host` (a tokio task when `None`); `None` when the pool uses the
    /// socket transport. Errors: the index is out of range, or the doorbell cannot be copied.
    pub fn shm_client(
        &self,
        index: usize,
        host: Option<std::sync::Arc<dyn shm::BellHost>>,
        read_timeout: Duration,
    ) -> Option<Result<shm::ShmClient, String>> {
        let s = self.shm.as_ref()?;
        let Some(bell) = s.bells.get(index) else {
            return Some(Err(format!("client index {index} is out of range ({} clients)", s.bells.len())));
        };
        let bell = match bell.try_clone() {
            Ok(b) => b,
            Err(e) => return Some(Err(format!("doorbell: {e}"))),
        };
        Some(shm::ShmClient::new(std::sync::Arc::clone(&s.region), index, bell, host, read_timeout))
    }

    /// The transport of this pool.
    pub fn transport(&self) -> Transport {
        if self.shm.is_some() {
            Transport::Shm
        } else {
            Transport::Socket
        }
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
