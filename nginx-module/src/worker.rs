//! Per-worker state: the engines this worker process runs and the cached [`Site`]s.
//!
//! Created in `init_process` (after `fork`, so the master never has threads), used only on the
//! worker's nginx thread, dropped in `exit_process`. Engines are shared through `Arc` (the
//! futures polled by the bridge hold them); `Engine` is thread-safe. The FPM pools' sockets are
//! nginx connections ([`crate::ngx_socket`]), used on this thread only.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use fephp::cgi::{Site, SplitRule, SymlinkPolicy};
use fephp::engine::{BackendConfig, EMBEDDED_LABEL, EXECUTORS_LABEL};
use fephp::php::PhpOptions;
use fephp::{Engine, EngineError};
use ngx::ffi::{ngx_cycle_t, ngx_int_t, ngx_process, NGX_LOG_ALERT, NGX_LOG_NOTICE, NGX_OK, NGX_PROCESS_SINGLE, NGX_PROCESS_WORKER};
use ngx::http::HttpModuleMainConf;
use ngx::ngx_log_error;

use crate::conf::{Backend, Queue};
use crate::ngx_socket::NgxConnector;
use crate::{bridge, Module};

/// An engine, or why it could not start (requests to it fail with 500 and an error line).
pub type EngineSlot = Result<Arc<Engine>, String>;

/// The engines of one worker process.
pub struct Worker {
    /// The embedded PHP engine, when some location uses `fephp_pass embedded`.
    pub embedded: Option<EngineSlot>,
    /// The executor pool's client, when some location uses `fephp_pass executors`.
    pub executors: Option<EngineSlot>,
    /// One FPM engine per [`crate::conf::MainConf::pools`] entry (one per address), same order.
    pub pools: Vec<(String, EngineSlot)>,
    /// The engines of upstream servers, made on first use ([`crate::upstream`]).
    pub upstreams: crate::upstream::Servers,
    sites: RefCell<HashMap<SiteKey, Arc<Site>>>,
    /// The site found last, checked first without allocating a key.
    last_site: RefCell<Option<(SiteKey, Arc<Site>)>>,
}

/// Document root, index file, split rule and symlink policy.
type SiteKey = (Vec<u8>, String, SplitRule, SymlinkPolicy);

thread_local! {
    static WORKER: RefCell<Option<Rc<Worker>>> = const { RefCell::new(None) };
}

/// This worker's state (`None` outside worker processes or before `init_process`).
pub fn current() -> Option<Rc<Worker>> {
    WORKER.with(|w| w.borrow().clone())
}

impl Worker {
    /// The engine serving `backend`.
    pub fn engine(&self, backend: Backend) -> Result<Arc<Engine>, EngineError> {
        let slot = match backend {
            Backend::Embedded => self.embedded.as_ref(),
            Backend::Executors => self.executors.as_ref(),
            Backend::Fpm(i) => self.pools.get(i).map(|(_, slot)| slot),
            Backend::Upstream(_) => None, // per server: crate::upstream
        };
        match slot {
            Some(Ok(engine)) => Ok(engine.clone()),
            Some(Err(why)) => Err(EngineError::Internal(why.clone())),
            None => Err(EngineError::Internal("no engine for this location in this worker".into())),
        }
    }

    /// Every engine with a label (`embedded`, or the FPM address with pool settings).
    pub fn engines(&self) -> Vec<(String, EngineSlot)> {
        let mut all = Vec::new();
        if let Some(slot) = &self.embedded {
            all.push((EMBEDDED_LABEL.to_string(), slot.clone()));
        }
        if let Some(slot) = &self.executors {
            all.push((EXECUTORS_LABEL.to_string(), slot.clone()));
        }
        all.extend(self.pools.iter().cloned());
        all
    }

    /// The [`Site`] for a document root and script rules, created on first use (the root is
    /// canonicalized once; a missing root is a 404 like nginx's static handler). Each symlink
    /// policy gets its own site (and so its own lookup cache).
    pub fn site(
        &self,
        root: &[u8],
        index: &str,
        split: &SplitRule,
        symlinks: SymlinkPolicy,
    ) -> Result<Arc<Site>, EngineError> {
        // Most workers serve one site: compare with the last one before building a map key.
        if let Some(((r, i, s, p), site)) = &*self.last_site.borrow() {
            if r.as_slice() == root && i == index && s == split && *p == symlinks {
                return Ok(site.clone());
            }
        }
        let key = (root.to_vec(), index.to_string(), split.clone(), symlinks);
        if let Some(site) = self.sites.borrow().get(&key) {
            *self.last_site.borrow_mut() = Some((key, site.clone()));
            return Ok(site.clone());
        }
        use std::os::unix::ffi::OsStrExt;
        let path = std::path::Path::new(std::ffi::OsStr::from_bytes(root));
        let site = Site::new(path, index, &[".php".to_string()], true, false).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                EngineError::NotFound(e.to_string())
            } else {
                EngineError::Internal(e.to_string())
            }
        })?;
        let site = Arc::new(site.with_split_rule(split.clone()).with_symlink_policy(key.3.clone()));
        self.sites.borrow_mut().insert(key.clone(), site.clone());
        *self.last_site.borrow_mut() = Some((key, site.clone()));
        Ok(site)
    }
}

/// `init_process`: in a worker (or single-process nginx) with an `http` block using this
/// module, starts the bridge (runtime + wakeup fd) and the engines.
///
/// # Safety
/// `cycle` must be the running cycle; call on the worker's main thread.
pub unsafe fn init(cycle: *mut ngx_cycle_t) -> ngx_int_t {
    // SAFETY: plain read of nginx's process type on its main thread.
    let process = unsafe { ngx_process } as u32;
    // SAFETY: `cycle` is valid (caller contract).
    let Some(main) = Module::main_conf(unsafe { &*cycle }) else {
        return NGX_OK as ngx_int_t; // no http block
    };
    // Every process forked from the master settles its ends of the executor pool's pipes.
    // SAFETY: main thread of a process forked after init_module.
    let exec_client = unsafe { crate::executors::init_process(main) };
    if process != NGX_PROCESS_WORKER && process != NGX_PROCESS_SINGLE {
        return NGX_OK as ngx_int_t; // cache manager / loader: nothing to serve
    }
    // SAFETY: `cycle` is valid.
    let log = unsafe { (*cycle).log };
    if !main.embedded && main.pools.is_empty() {
        // Still start the bridge when only `fephp_status` is used.
    }
    // SAFETY: on the worker's main thread, once.
    if let Err(e) = unsafe { bridge::start(cycle) } {
        ngx_log_error!(NGX_LOG_ALERT, log, "fephp: cannot start the bridge: {e}");
        return ngx::ffi::NGX_ERROR as ngx_int_t;
    }
    let embedded = main.embedded.then(|| {
        let (queue_size, queue_timeout) = Queue::embedded(main.embedded_queue);
        let opts = PhpOptions {
            ini_file: main.php_ini_file.clone().unwrap_or_default(),
            ini: main.php_ini.clone(),
            queue_size,
            queue_timeout,
        };
        fephp::php::set_slowlog(main.slowlog_timeout.map(|timeout| fephp::php::SlowLog {
            timeout,
            path: main.slowlog.clone().flatten(),
        }));
        let slot = bridge::in_runtime(|| Engine::new(BackendConfig::Embedded(opts)))
            .map(Arc::new)
            .map_err(|e| format!("embedded PHP did not start: {e}"));
        if let Err(e) = &slot {
            ngx_log_error!(NGX_LOG_ALERT, log, "fephp: {e}");
        }
        slot
    });
    let pools = main
        .pools
        .iter()
        .map(|spec| {
            let mut cfg = spec.pool_config();
            // The pool's sockets run on this thread's nginx event loop.
            cfg.connector = Some(Arc::new(NgxConnector::new(&cfg.address)));
            let backend = BackendConfig::Fpm(cfg);
            let label = backend.label();
            let slot = bridge::in_runtime(|| Engine::new(backend)).map_err(|e| e.to_string()).map(Arc::new);
            if let Err(e) = &slot {
                ngx_log_error!(NGX_LOG_ALERT, log, "fephp: {label}: {e}");
            }
            (label, slot)
        })
        .collect();
    let executors = exec_client.map(|client| {
        bridge::in_runtime(|| Engine::new(BackendConfig::Executors(client))).map(Arc::new).map_err(|e| e.to_string())
    });
    let worker = Worker {
        embedded,
        executors,
        pools,
        upstreams: Default::default(), sites: RefCell::new(HashMap::new()), last_site: RefCell::new(None) };
    ngx_log_error!(
        NGX_LOG_NOTICE,
        log,
        "fephp: worker engines started (embedded: {}, executors: {}, fpm pools: {})",
        worker.embedded.is_some(),
        worker.executors.is_some(),
        worker.pools.len()
    );
    WORKER.with(|w| *w.borrow_mut() = Some(Rc::new(worker)));
    NGX_OK as ngx_int_t
}

/// `exit_process`: drops the engines (inside the runtime), then stops the bridge.
///
/// # Safety
/// Call on the worker's main thread from `exit_process`.
pub unsafe fn exit(_cycle: *mut ngx_cycle_t) {
    let worker = WORKER.with(|w| w.borrow_mut().take());
    if let Some(worker) = worker {
        bridge::in_runtime(move || drop(worker));
    }
    // SAFETY: nginx thread, exiting; the executor engine is dropped above.
    unsafe { crate::exec_bell::close_all() };
    // SAFETY: same thread as `start`, nginx is exiting.
    unsafe { bridge::stop(Duration::from_secs(1)) };
}
