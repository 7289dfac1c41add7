//! `fephp_pass NAME;` to an `upstream NAME { server ...; }` block of PHP-FPM servers.
//!
//! nginx's upstream configuration is the source of truth and nginx's own peer machinery picks
//! the server: the location holds the block's `ngx_http_upstream_srv_conf_t` (found or created
//! by `ngx_http_upstream_add`, as `fastcgi_pass` does), and each request runs the block's
//! balancer — round robin, `least_conn`, `hash`, `ip_hash`, ... — through
//! `uscf->peer.init(r, uscf)` and the `get` / `free` callbacks it installs in
//! `r->upstream->peer`. Weights, `max_fails` / `fail_timeout`, `backup` and `down` are therefore
//! nginx's: a failed attempt is reported with `free(.., NGX_PEER_FAILED)`, a finished request
//! with `free(.., 0)` (from a request pool cleanup, after the response body, so `least_conn`
//! counts the whole request).
//!
//! We do not use the rest of `ngx_http_upstream` (no `ngx_http_upstream_init`): the FastCGI
//! exchange is the fe-php pool's. Each worker keeps one FPM engine (a keep-alive pool with the
//! usual no-stall rule, see `fephp::pool`) per upstream server and pool settings, made the first
//! time the balancer picks that server ([`Servers`]).
//!
//! Retries (`fephp_next_upstream error | timeout | off;`, `fephp_next_upstream_tries N;`): an
//! attempt that fails before the response head — so before any byte was passed to the client —
//! with `error` (refused, reset, closed early: 502) or `timeout` (504) goes to the next server
//! the balancer picks, while the balancer has tries left (one per server by default) and at most
//! `fephp_next_upstream_tries` attempts in all (0: no limit). The body is sent again from memory
//! or from nginx's temp file; a body that cannot be replayed is never retried. An invalid
//! response (502) marks the server failed but is not retried, nor is anything after the head.
//!
//! The keep-alive of an upstream block's `keepalive` directive does not apply (the fe-php pools
//! keep the connections). Peer state is read (for `fephp_status`) from the round-robin peer
//! list every stock balancer builds in `uscf->peer.data`.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::c_void;
use std::rc::Rc;
use std::sync::Arc;

use fephp::cgi::Site;
use fephp::engine::{BackendConfig, ServeOptions};
use fephp::pool::Address;
use fephp::{Engine, EngineError, Request};
use ngx::ffi::{
    ngx_http_request_t, ngx_http_upstream_create, ngx_http_upstream_rr_peer_t, ngx_http_upstream_rr_peers_t,
    ngx_http_upstream_srv_conf_t, ngx_log_t, ngx_peer_connection_t, ngx_pool_cleanup_add, ngx_rwlock_rlock,
    ngx_rwlock_unlock, ngx_uint_t, NGX_BUSY, NGX_DONE, NGX_LOG_ERR, NGX_OK, NGX_PEER_FAILED,
};
use ngx::ngx_log_error;

use crate::bridge::{self, LocalFuture, Output};
use crate::conf::{LocConf, PoolSpec};
use std::time::Duration;
use crate::ngx_socket::NgxConnector;
use crate::Module;
use ngx::http::HttpModuleMainConf;

/// `fephp_next_upstream`: which failures send a request to the next server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NextUpstream {
    /// `error`: refused, reset, closed before the response head (502).
    pub error: bool,
    /// `timeout`: connect, send or read timeout before the response head (504).
    pub timeout: bool,
}

impl Default for NextUpstream {
    /// `error timeout`, like `fastcgi_next_upstream`.
    fn default() -> Self {
        NextUpstream { error: true, timeout: true }
    }
}

/// One upstream block as locations use it, with their pool settings and retry rules (equal
/// keys share per-server engines; timeouts are not part of the key: each request brings its
/// location's, as for `fephp_pass ADDRESS`). Lives in [`crate::conf::MainConf::upstreams`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamKey {
    /// The block's name.
    pub name: String,
    /// The block (nginx's configuration pool; lives as long as the cycle).
    pub uscf: *mut ngx_http_upstream_srv_conf_t,
    /// Pool settings of every server's pool (`address` is replaced by the server's).
    pub pool: PoolSpec,
    /// `fephp_next_upstream`.
    pub next: NextUpstream,
    /// `fephp_next_upstream_tries` (0 = only the balancer's limit).
    pub tries: usize,
}

/// One upstream server as this worker uses it.
pub struct Server {
    /// Its FPM engine, or why it could not be made.
    pub engine: Result<Arc<Engine>, String>,
    /// Attempts sent to it.
    pub requests: Cell<u64>,
    /// Attempts that failed (`error`, `timeout` or an invalid response).
    pub errors: Cell<u64>,
}

/// The per-server engines of a worker, by ([`crate::conf::MainConf::upstreams`] index, server
/// name as the balancer reports it: `127.0.0.1:9000`, `unix:/path`).
#[derive(Default)]
pub struct Servers {
    map: RefCell<HashMap<(usize, String), Rc<Server>>>,
}

impl Servers {
    /// The server `name` of upstream `index`, its engine made on first use.
    fn get(&self, index: usize, key: &UpstreamKey, name: &str) -> Rc<Server> {
        if let Some(s) = self.map.borrow().get(&(index, name.to_string())) {
            return s.clone();
        }
        let engine = Address::parse(name)
            .map(|address| PoolSpec { address, ..key.pool.clone() }.pool_config())
            .and_then(|mut cfg| {
                // Names are numeric (nginx resolved the `server` lines at configuration time):
                // no lookup happens here.
                cfg.connector = Some(Arc::new(NgxConnector::new(&cfg.address)));
                bridge::in_runtime(|| Engine::new(BackendConfig::Fpm(cfg))).map_err(|e| e.to_string())
            })
            .map(Arc::new);
        let server = Rc::new(Server { engine, requests: Cell::new(0), errors: Cell::new(0) });
        self.map.borrow_mut().insert((index, name.to_string()), server.clone());
        server
    }

    /// The server of upstream `index` named `name`, when this worker has used it.
    pub fn used(&self, index: usize, name: &str) -> Option<Rc<Server>> {
        self.map.borrow().get(&(index, name.to_string())).cloned()
    }
}

/// The balancer's state for one request: `r->upstream->peer`, and whether a peer picked by
/// `get` still waits for its `free`. Allocated as the data of a request pool cleanup that frees
/// a held peer when the request ends.
struct Peer {
    pc: *mut ngx_peer_connection_t,
    held: bool,
}

impl Peer {
    /// Asks the balancer for a server; its name, or 502 when every server is down or failed.
    ///
    /// # Safety
    /// Nginx thread, request alive.
    unsafe fn get(&mut self, upstream: &str) -> Result<String, EngineError> {
        // SAFETY: `pc` is `r->upstream->peer`, set up by the balancer's init.
        unsafe {
            let pc = self.pc;
            (*pc).connection = std::ptr::null_mut();
            let get = (*pc).get.ok_or_else(|| EngineError::Internal("upstream balancer without get".into()))?;
            let rc = get(pc, (*pc).data);
            if rc == NGX_BUSY as isize {
                return Err(EngineError::Unreachable(format!("no live upstreams in \"{upstream}\"")));
            }
            if rc != NGX_OK as isize && rc != NGX_DONE as isize {
                return Err(EngineError::Internal(format!("upstream \"{upstream}\": balancer error {rc}")));
            }
            self.held = true;
            if (*pc).name.is_null() {
                return Err(EngineError::Internal(format!("upstream \"{upstream}\": balancer gave no server")));
            }
            Ok(String::from_utf8_lossy((*(*pc).name).as_bytes()).into_owned())
        }
    }

    /// Hands the held server back to the balancer: `failed` counts towards `max_fails`.
    ///
    /// # Safety
    /// Nginx thread, request alive.
    unsafe fn free(&mut self, failed: bool) {
        if !std::mem::take(&mut self.held) {
            return;
        }
        // SAFETY: as in `get`.
        unsafe {
            if let Some(free) = (*self.pc).free {
                free(self.pc, (*self.pc).data, if failed { NGX_PEER_FAILED as ngx_uint_t } else { 0 });
            }
        }
    }

    /// Attempts the balancer still allows.
    fn tries(&self) -> usize {
        // SAFETY: `pc` lives as long as the request.
        unsafe { (*self.pc).tries }
    }
}

/// Request pool cleanup: a request that ends with a server held (a response sent, or the client
/// gone) hands it back as not failed.
unsafe extern "C" fn release_peer(data: *mut c_void) {
    ffi_guard!((), {
        // SAFETY: `data` is the `Peer` written by `serve`; the request pool still exists.
        unsafe { (*(data as *mut Peer)).free(false) }
    })
}

/// How an attempt failed, for `fephp_next_upstream` and the balancer.
fn failure(e: &EngineError) -> Option<(&'static str, bool)> {
    match e {
        EngineError::Unreachable(_) => Some(("error", true)),
        EngineError::Timeout(_) => Some(("timeout", true)),
        EngineError::Protocol(_) => Some(("invalid response", false)),
        _ => None,
    }
}

/// Starts serving `req` through upstream `index`: sets up the block's balancer for `r` and
/// returns the future the bridge polls (on the nginx thread).
///
/// # Safety
/// Nginx thread, `r` alive; the future must be polled on this thread and dropped before `r`'s
/// pool is destroyed (the bridge does both).
/// Every attempt is served with `opts` (the location's timeouts and head limit). Also returns
/// the most attempts the request may make.
pub unsafe fn serve(
    r: *mut ngx_http_request_t,
    index: usize,
    site: Arc<Site>,
    req: Request,
    opts: ServeOptions,
) -> Result<(LocalFuture, usize), EngineError> {
    // SAFETY: live request on the nginx thread (caller contract) throughout.
    unsafe {
        let main = Module::main_conf(&*r).ok_or_else(|| EngineError::Internal("no fephp main configuration".into()))?;
        let key = main.upstreams.get(index).cloned().ok_or_else(|| EngineError::Internal("unknown upstream".into()))?;
        let worker = crate::worker::current().ok_or_else(|| EngineError::Internal("fephp is not running in this process".into()))?;
        let log: *mut ngx_log_t = (*(*r).connection).log;

        if ngx_http_upstream_create(r) != NGX_OK as isize {
            return Err(EngineError::Internal("ngx_http_upstream_create failed".into()));
        }
        let u = (*r).upstream;
        (*u).upstream = key.uscf;
        let init = (*key.uscf).peer.init.ok_or_else(|| EngineError::Internal(format!("upstream \"{}\" has no balancer", key.name)))?;
        if init(r, key.uscf) != NGX_OK as isize {
            return Err(EngineError::Internal(format!("upstream \"{}\": balancer init failed", key.name)));
        }
        let pc: *mut ngx_peer_connection_t = &mut (*u).peer;
        if key.tries != 0 && (*pc).tries > key.tries {
            (*pc).tries = key.tries;
        }
        let cln = ngx_pool_cleanup_add((*r).pool, std::mem::size_of::<Peer>());
        if cln.is_null() {
            return Err(EngineError::Internal("out of memory".into()));
        }
        let peer = (*cln).data as *mut Peer;
        peer.write(Peer { pc, held: false });
        (*cln).handler = Some(release_peer);
        let attempts = (*pc).tries.max(1);

        let fut: LocalFuture = Box::pin(async move {
            let servers = &worker.upstreams;
            let mut req = Some(req);
            loop {
                let name = (*peer).get(&key.name)?;
                let server = servers.get(index, &key, &name);
                let engine = match &server.engine {
                    Ok(engine) => engine.clone(),
                    Err(why) => {
                        (*peer).free(true);
                        return Err(EngineError::Internal(format!("upstream \"{}\" server {name}: {why}", key.name)));
                    }
                };
                let this = req.take().expect("a request per attempt");
                // `tries` still counts this attempt (the balancer's `free` decrements it). No
                // copy is kept when the body cannot be replayed: then this is the last attempt.
                let may_retry = (key.next.error || key.next.timeout) && (*peer).tries() > 1;
                if may_retry {
                    if let Ok(body) = this.body.try_clone() {
                        req = Some(Request { http: this.http.clone(), body });
                    }
                }
                server.requests.set(server.requests.get() + 1);
                let attempt = engine.serve_with(&site, this, opts.clone()).await;
                match attempt {
                    Ok(response) => return Ok(Output::Stream(response)), // freed at request end
                    Err(e) => {
                        let Some((kind, mark)) = failure(&e) else {
                            (*peer).free(false);
                            return Err(e);
                        };
                        server.errors.set(server.errors.get() + 1);
                        (*peer).free(mark);
                        let wanted = match kind {
                            "error" => key.next.error,
                            "timeout" => key.next.timeout,
                            _ => false,
                        };
                        if !wanted || req.is_none() || (*peer).tries() == 0 {
                            return Err(e);
                        }
                        ngx_log_error!(
                            NGX_LOG_ERR,
                            log,
                            "fephp: upstream \"{}\" server {name}: {e}; trying the next server",
                            key.name
                        );
                    }
                }
            }
        });
        Ok((fut, attempts))
    }
}

/// The bridge's idle guard for a request that may make `attempts` attempts before its
/// response head: each may take a connect and a read timeout.
pub fn guard(lcf: &LocConf, attempts: usize) -> Duration {
    let t = lcf.timeouts();
    if attempts <= 1 {
        return t.read;
    }
    (t.connect + t.read) * attempts.min(64) as u32
}

/// One server's state for `fephp_status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerState {
    /// The server's address as the balancer names it.
    pub name: String,
    /// A `backup` server.
    pub backup: bool,
    /// `weight=`.
    pub weight: i64,
    /// `down`.
    pub down: bool,
    /// Failures in the current `fail_timeout` window.
    pub fails: u64,
    /// `max_fails=` (0: never marked failed).
    pub max_fails: u64,
    /// `fail_timeout=` in seconds.
    pub fail_timeout: i64,
    /// Unix time until which the balancer skips it (`max_fails` reached), if it does now.
    pub failed_until: Option<i64>,
    /// Requests in flight through it (nginx's count, all of this worker's users of the block).
    pub conns: u64,
    /// Attempts this worker sent to it (through this location's settings).
    pub requests: u64,
    /// Attempts that failed.
    pub errors: u64,
}

impl ServerState {
    /// `up`, `down` or `failed`.
    pub fn state(&self) -> &'static str {
        if self.down {
            "down"
        } else if self.failed_until.is_some() {
            "failed"
        } else {
            "up"
        }
    }
}

/// Every server of upstream `index` (primary, then backup), with nginx's peer state and this
/// worker's counters.
///
/// # Safety
/// Nginx thread; `key.uscf` from the running configuration.
#[allow(clippy::unnecessary_cast)] // time_t is i64 here, not on every target
pub unsafe fn states(index: usize, key: &UpstreamKey, servers: &Servers) -> Vec<ServerState> {
    let mut out = Vec::new();
    // SAFETY: stock balancers keep their round-robin peer list in `peer.data`; with a `zone` it
    // sits in shared memory behind the list's rwlock.
    unsafe {
        let mut peers = (*key.uscf).peer.data as *mut ngx_http_upstream_rr_peers_t;
        let now = libc::time(std::ptr::null_mut()) as i64;
        let mut backup = false;
        while !peers.is_null() {
            let locked = !(*peers).shpool.is_null();
            if locked {
                ngx_rwlock_rlock(&mut (*peers).rwlock);
            }
            let mut p: *mut ngx_http_upstream_rr_peer_t = (*peers).peer;
            while !p.is_null() {
                let name = String::from_utf8_lossy((*p).name.as_bytes()).into_owned();
                let (requests, errors) =
                    servers.used(index, &name).map_or((0, 0), |s| (s.requests.get(), s.errors.get()));
                let max_fails = (*p).max_fails as u64;
                let fails = (*p).fails as u64;
                let until = (*p).checked as i64 + (*p).fail_timeout as i64;
                out.push(ServerState {
                    name,
                    backup,
                    weight: (*p).weight as i64,
                    down: (*p).down != 0,
                    fails,
                    max_fails,
                    fail_timeout: (*p).fail_timeout as i64,
                    failed_until: (max_fails != 0 && fails >= max_fails && now <= until).then_some(until),
                    conns: (*p).conns as u64,
                    requests,
                    errors,
                });
                p = (*p).next;
            }
            if locked {
                ngx_rwlock_unlock(&mut (*peers).rwlock);
            }
            peers = (*peers).next;
            backup = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transport_failures_are_retryable() {
        assert_eq!(failure(&EngineError::Unreachable("x".into())), Some(("error", true)));
        assert_eq!(failure(&EngineError::Timeout("x".into())), Some(("timeout", true)));
        assert_eq!(failure(&EngineError::Protocol("x".into())).map(|f| f.1), Some(false));
        assert_eq!(failure(&EngineError::NotFound("x".into())), None);
        assert_eq!(failure(&EngineError::Overloaded("x".into())), None);
    }

    #[test]
    fn state_names() {
        let mut s = ServerState {
            name: "a".into(),
            backup: false,
            weight: 1,
            down: false,
            fails: 0,
            max_fails: 1,
            fail_timeout: 10,
            failed_until: None,
            conns: 0,
            requests: 0,
            errors: 0,
        };
        assert_eq!(s.state(), "up");
        s.failed_until = Some(5);
        assert_eq!(s.state(), "failed");
        s.down = true;
        assert_eq!(s.state(), "down");
    }
}
