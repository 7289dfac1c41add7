//! The FastCGI connection pool to PHP-FPM (tokio).
//!
//! - At most `size` connections are open; a request that finds them all busy waits in a
//!   bounded queue for `queue_timeout`, then gets 503 ([`EngineError::Overloaded`]).
//! - Connections are kept alive (`FCGI_KEEP_CONN`) and reused newest-first; a connection goes
//!   back to the pool only from its guard's `Drop`, and only after a clean `END_REQUEST`.
//!   It is closed instead after a protocol error, an early drop of the body (client abort),
//!   `max_requests` requests, or while a fresh connection is waiting for FPM to accept it
//!   (FPM children block on idle kept-alive connections and report no capacity, so keeping
//!   every idle connection could starve a new one forever).
//! - A reused connection that turns out stale before any response byte is retried once on a
//!   fresh connection.
//! - The response body is read from the socket only as the caller asks for it ([`FpmBody`]).

mod body;
mod conn;
mod exchange;
mod host;
mod stream;

pub use crate::address::Address;
pub use host::{ConnectFuture, Connector, HostSocket};
pub use body::FpmBody;
pub use stream::Stream;

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::cgi::{Params, RequestBody, ResponseHead};
use crate::config::PhpConfig;
use crate::error::{ConfigError, EngineError};
use conn::{Conn, Idle};

/// Longest a health probe ([`Pool::probe_state`]) waits for PHP-FPM, in all (an idle
/// connection first, then a fresh one): short, so `fephp_status` and `/_health` answer at once
/// when every child is busy, instead of waiting for their own request timeout.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// What a health probe found ([`Pool::probe_state`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeState {
    /// A PHP-FPM child answered GET_VALUES.
    Ready,
    /// PHP-FPM accepted the connection (or it has one kept alive) but no child answered within
    /// [`PROBE_TIMEOUT`]: every child is busy (or stuck). Requests queue in FPM's backlog.
    Busy(String),
}

/// Pool settings.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Where PHP-FPM listens.
    pub address: Address,
    /// Most connections open at once.
    pub size: usize,
    /// Requests per connection before it is closed (0 = unlimited).
    pub max_requests: u64,
    /// Requests that may wait for a connection.
    pub queue_size: usize,
    /// How long a request may wait for a connection (then 503).
    pub queue_timeout: Duration,
    /// Connect timeout (→ 504).
    pub connect_timeout: Duration,
    /// Send timeout between writes (→ 504).
    pub send_timeout: Duration,
    /// Read timeout between reads (→ 504).
    pub read_timeout: Duration,
    /// Opens the connections instead of tokio's sockets (`None`, the default: tokio). The nginx
    /// module sets one that runs the sockets on nginx's event loop.
    pub connector: Option<Arc<dyn Connector>>,
}

impl PoolConfig {
    /// Pool settings from `[php]`.
    pub fn from_config(php: &PhpConfig) -> Result<PoolConfig, ConfigError> {
        Ok(PoolConfig {
            address: Address::parse(&php.fpm_socket).map_err(|r| ConfigError::new("php.fpm_socket", r))?,
            size: php.worker_pool_size as usize,
            max_requests: php.connection_max_requests(),
            queue_size: php.queue_size as usize,
            queue_timeout: php.queue_timeout(),
            connect_timeout: php.connect_timeout(),
            send_timeout: php.send_timeout(),
            read_timeout: php.read_timeout(),
            connector: None,
        })
    }

    /// The pool's own timeouts: those of a request that brings none.
    pub fn timeouts(&self) -> Timeouts {
        Timeouts { queue: self.queue_timeout, connect: self.connect_timeout, send: self.send_timeout, read: self.read_timeout }
    }

    /// Defaults for `address` (the `[php]` defaults of [`crate::config`]).
    pub fn new(address: Address) -> PoolConfig {
        PoolConfig::from_config(&PhpConfig::default()).map(|c| PoolConfig { address, ..c }).unwrap_or_else(|_| unreachable!())
    }
}

/// The timeouts of one request. Pool-wide settings (size, queue size, `max_requests`) belong to
/// the pool; timeouts belong to the request, so locations with different timeouts share one
/// pool (and its connection limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// How long the request may wait for a free connection (then 503).
    pub queue: Duration,
    /// Connect timeout (→ 504).
    pub connect: Duration,
    /// Send timeout between writes (→ 504).
    pub send: Duration,
    /// Read timeout between reads (→ 504).
    pub read: Duration,
}

/// A pool of FastCGI connections to one PHP-FPM address. Cheap to clone (shared state).
#[derive(Clone)]
pub struct Pool {
    shared: Arc<Shared>,
}

struct Shared {
    cfg: PoolConfig,
    permits: Arc<Semaphore>,
    idle: Mutex<Vec<Idle>>,
    open: AtomicUsize,
    in_use: AtomicUsize,
    waiting: AtomicUsize,
    /// Fresh connections that sent a request and have not seen a response byte yet.
    fresh_pending: AtomicUsize,
    opened_total: AtomicU64,
    reused_total: AtomicU64,
    retried_total: AtomicU64,
}

/// A snapshot of the pool's gauges and counters.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections open (idle + in use).
    pub open: usize,
    /// Connections serving a request.
    pub in_use: usize,
    /// Connections kept alive, waiting for a request.
    pub idle: usize,
    /// Requests waiting for a connection.
    pub waiting: usize,
    /// Connections opened since start.
    pub opened_total: u64,
    /// Requests that reused a kept-alive connection.
    pub reused_total: u64,
    /// Requests retried on a fresh connection after a stale one failed.
    pub retried_total: u64,
}

impl PoolStats {
    /// Appends the Prometheus text of these values to `out`.
    pub fn render(&self, out: &mut String) {
        let gauges = [
            ("fephp_pool_connections_open", "FastCGI connections open.", self.open),
            ("fephp_pool_connections_in_use", "FastCGI connections serving a request.", self.in_use),
            ("fephp_pool_connections_idle", "FastCGI connections kept alive and idle.", self.idle),
            ("fephp_pool_requests_waiting", "Requests waiting for a FastCGI connection.", self.waiting),
        ];
        for (name, help, v) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        let counters = [
            ("fephp_pool_connections_opened_total", "FastCGI connections opened.", self.opened_total),
            ("fephp_pool_connections_reused_total", "Requests sent on a kept-alive connection.", self.reused_total),
            ("fephp_pool_retries_total", "Requests retried after a stale kept-alive connection.", self.retried_total),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        }
    }
}

/// Decrements the waiting gauge even when the waiting future is dropped.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

impl Pool {
    /// A pool that connects lazily, on the first request.
    pub fn new(cfg: PoolConfig) -> Pool {
        let size = cfg.size.max(1);
        Pool {
            shared: Arc::new(Shared {
                permits: Arc::new(Semaphore::new(size)),
                idle: Mutex::new(Vec::with_capacity(size)),
                cfg,
                open: AtomicUsize::new(0),
                in_use: AtomicUsize::new(0),
                waiting: AtomicUsize::new(0),
                fresh_pending: AtomicUsize::new(0),
                opened_total: AtomicU64::new(0),
                reused_total: AtomicU64::new(0),
                retried_total: AtomicU64::new(0),
            }),
        }
    }

    /// The PHP-FPM address.
    pub fn address(&self) -> &Address {
        &self.shared.cfg.address
    }

    /// The pool's settings.
    pub fn config(&self) -> &PoolConfig {
        &self.shared.cfg
    }

    /// Sends one request (params + body) and returns the parsed response head with the body
    /// still to be read. Errors: [`EngineError::Overloaded`] (queue full or timed out, 503),
    /// [`EngineError::Unreachable`] (refused, reset, closed early: 502),
    /// [`EngineError::Protocol`] (garbage: 502), [`EngineError::Timeout`] (504).
    pub async fn send(&self, params: &Params, body: RequestBody) -> Result<(ResponseHead, FpmBody), EngineError> {
        self.send_with(params, body, &self.shared.cfg.timeouts(), None).await
    }

    /// [`Pool::send`] with this request's `timeouts` and a limit on the response head
    /// (status line and headers, as FPM sent them): a longer head is a 502
    /// ([`EngineError::Protocol`]), like nginx's "upstream sent too big header".
    pub async fn send_with(
        &self,
        params: &Params,
        body: RequestBody,
        timeouts: &Timeouts,
        head_limit: Option<usize>,
    ) -> Result<(ResponseHead, FpmBody), EngineError> {
        let permit = self.acquire(timeouts.queue).await?;
        exchange::run(self, permit, params, body, timeouts, head_limit).await
    }

    /// Asks PHP-FPM for `FCGI_MPXS_CONNS` (GET_VALUES): Ok when it answers within
    /// [`PROBE_TIMEOUT`] (or the connect timeout when shorter). Uses an idle kept-alive
    /// connection when there is one (its FPM child is waiting on it, so it answers at once even
    /// when every other child is busy; FPM closes it afterwards), else a fresh connection.
    pub async fn probe(&self) -> Result<(), EngineError> {
        match self.probe_state().await? {
            ProbeState::Ready => Ok(()),
            ProbeState::Busy(why) => Err(EngineError::Timeout(why)),
        }
    }

    /// The health probe: [`ProbeState::Ready`] when a child answers GET_VALUES,
    /// [`ProbeState::Busy`] when none answers within [`PROBE_TIMEOUT`] (or the connect timeout
    /// when shorter) in all; an error when PHP-FPM cannot be reached (refused, no socket, bad
    /// answer). An idle kept-alive connection is tried first, for at most half the budget (its
    /// FPM child is waiting on it, so it answers at once even when every other child is busy;
    /// FPM closes it afterwards), then a fresh connection for the rest.
    pub async fn probe_state(&self) -> Result<ProbeState, EngineError> {
        let limit = self.shared.cfg.connect_timeout.min(PROBE_TIMEOUT);
        let started = std::time::Instant::now();
        let idle = self.shared.idle.lock().pop();
        if let Some(idle) = idle {
            let stream = Conn::take_idle(&self.shared, idle);
            // A kept-alive connection whose child is still busy (a script running on after
            // fastcgi_finish_request) stays silent: the fresh connection gets the rest.
            if !stream.is_stale() && exchange::get_values(stream, limit / 2).await.is_ok() {
                return Ok(ProbeState::Ready);
            }
        }
        let busy = || {
            ProbeState::Busy(format!(
                "no PHP-FPM child at {} answered within {limit:?}: every child busy",
                self.shared.cfg.address
            ))
        };
        let left = limit.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Ok(busy());
        }
        let stream = match Stream::connect(&self.shared.cfg.address, left, self.shared.cfg.connector.as_deref()).await {
            Ok(s) => s,
            Err(EngineError::Timeout(_)) => return Ok(busy()), // backlog full
            Err(e) => return Err(e),
        };
        let left = limit.saturating_sub(started.elapsed()).max(Duration::from_millis(1));
        match exchange::get_values(stream, left).await {
            Ok(()) => Ok(ProbeState::Ready),
            Err(EngineError::Timeout(_)) => Ok(busy()),
            Err(e) => Err(e),
        }
    }

    /// Current gauges and counters.
    pub fn stats(&self) -> PoolStats {
        let s = &self.shared;
        PoolStats {
            open: s.open.load(Relaxed),
            in_use: s.in_use.load(Relaxed),
            idle: s.idle.lock().len(),
            waiting: s.waiting.load(Relaxed),
            opened_total: s.opened_total.load(Relaxed),
            reused_total: s.reused_total.load(Relaxed),
            retried_total: s.retried_total.load(Relaxed),
        }
    }

    /// Waits (bounded) for the right to use a connection.
    async fn acquire(&self, queue_timeout: Duration) -> Result<OwnedSemaphorePermit, EngineError> {
        let s = &self.shared;
        if let Ok(permit) = s.permits.clone().try_acquire_owned() {
            return Ok(permit);
        }
        if s.waiting.fetch_add(1, Relaxed) >= s.cfg.queue_size {
            s.waiting.fetch_sub(1, Relaxed);
            return Err(EngineError::Overloaded(format!(
                "all {} FastCGI connections busy and {} requests already waiting",
                s.cfg.size, s.cfg.queue_size
            )));
        }
        let _waiting = Waiting(&s.waiting);
        match tokio::time::timeout(queue_timeout, s.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(EngineError::Internal("pool closed".into())),
            Err(_) => Err(EngineError::Overloaded(format!(
                "no FastCGI connection free within {:?} ({} busy)",
                queue_timeout, s.cfg.size
            ))),
        }
    }

    /// A connection for a request: the newest live idle one, else a fresh one.
    async fn checkout(&self, permit: OwnedSemaphorePermit, connect_timeout: Duration) -> Result<Conn, (EngineError, OwnedSemaphorePermit)> {
        loop {
            let idle = self.shared.idle.lock().pop();
            match idle {
                Some(idle) if idle.stream.is_stale() => Conn::discard_idle(&self.shared, idle),
                Some(idle) => {
                    self.shared.reused_total.fetch_add(1, Relaxed);
                    return Ok(Conn::reused(self.shared.clone(), idle, permit));
                }
                None => break,
            }
        }
        self.connect_fresh(permit, connect_timeout).await
    }

    async fn connect_fresh(&self, permit: OwnedSemaphorePermit, connect_timeout: Duration) -> Result<Conn, (EngineError, OwnedSemaphorePermit)> {
        let cfg = &self.shared.cfg;
        match Stream::connect(&cfg.address, connect_timeout, cfg.connector.as_deref()).await {
            Ok(stream) => {
                self.shared.opened_total.fetch_add(1, Relaxed);
                Ok(Conn::fresh(self.shared.clone(), stream, permit))
            }
            Err(e) => Err((e, permit)),
        }
    }
}
