//! `fephp_engine`: an [`Engine`], the [`Site`] it serves and the tokio runtime it runs on.

use std::ffi::c_char;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::{bytes, cstr, ffi_fn, fephp_result, utf8, Failure};
use crate::cgi::Site;
use crate::config::Config;
use crate::engine::{BackendConfig, Engine};

/// Worker threads of each engine's runtime.
const WORKER_THREADS: usize = 2;
/// Most threads each engine's runtime starts for blocking work (reading body files).
const MAX_BLOCKING_THREADS: usize = 8;
/// How long `fephp_engine_free` waits for blocking work to stop.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// A PHP engine: the backend chosen by the configuration (a FastCGI connection pool to
/// PHP-FPM, embedded PHP, or — with `php.executors > 0` and `php.executor_binary` — a pool of
/// executor processes exec'd from the `fe-php` binary, stopped by `fephp_engine_free`), the
/// site it serves (document root, script rules) and the tokio
/// runtime the backend runs on.
///
/// Threads: each engine owns a multi-threaded tokio runtime with 2 worker threads named
/// `fephp-rt` (plus at most 8 short-lived threads for blocking file reads); an embedded
/// engine additionally runs PHP on its own thread. Created by `fephp_engine_new_from_toml` or
/// `fephp_engine_new_from_file`, owned by the caller, released with `fephp_engine_free`.
/// Safe to use from many threads at once (see `fephp_execute`).
pub struct fephp_engine {
    runtime: Option<tokio::runtime::Runtime>,
    shared: Option<Arc<Shared>>,
    /// The executor pool this engine started (`php.executors > 0`): dropped after the engine,
    /// which stops its supervisor and executors.
    #[cfg(feature = "embed")]
    pool: Option<crate::executor::Pool>,
}

/// What the requests of an engine share (async requests keep it alive while they run).
pub(crate) struct Shared {
    pub(crate) engine: Engine,
    pub(crate) site: Site,
    /// `server.https`: default of every request's `HTTPS` param.
    pub(crate) https: bool,
    /// `server.server_name`: every request's `SERVER_NAME` (else the Host header's name).
    pub(crate) server_name: Option<String>,
}

impl fephp_engine {
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        self.shared.as_ref().expect("engine is alive")
    }

    pub(crate) fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.as_ref().expect("engine is alive")
    }

    fn start(config: Config) -> Result<fephp_engine, Failure> {
        let config_err = |e: crate::error::ConfigError| Failure::new(fephp_result::FEPHP_ERR_CONFIG, e.to_string());
        #[allow(unused_mut)]
        let mut backend = Engine::backend_config(&config).map_err(config_err)?;
        let site = Engine::site(&config).map_err(config_err)?;
        // An executor pool (`php.executors > 0`): PHP in processes of their own, exec'd from
        // the fe-php binary (a forked copy of this possibly multi-threaded host must not run
        // PHP); this process never starts PHP itself.
        #[cfg(feature = "embed")]
        let pool = match &backend {
            BackendConfig::Embedded(opts) if config.php.executors > 0 => {
                let (exec, binary) =
                    crate::executor::ExecutorOptions::from_config(&config.php, opts.clone()).map_err(config_err)?;
                let Some(binary) = binary else {
                    return Err(config_err(crate::error::ConfigError::new(
                        "php.executor_binary",
                        "the C API starts executors by exec'ing the fe-php binary: set its absolute path",
                    )));
                };
                let terminate = exec.terminate_timeout;
                let pool = crate::executor::Pool::start_exec(exec, None, &binary).map_err(|e| {
                    Failure::new(fephp_result::FEPHP_ERR_BACKEND_START, format!("cannot start the executor pool: {e}"))
                })?;
                backend = BackendConfig::Executors(pool.client(
                    config.php.connect_timeout(),
                    config.php.read_timeout(),
                    terminate,
                ));
                Some(pool)
            }
            _ => None,
        };
        #[cfg(feature = "embed")]
        let embedded = matches!(backend, BackendConfig::Embedded(_));
        #[cfg(not(feature = "embed"))]
        let embedded = false;
        if embedded && crate::engine::embedded_started() {
            return Err(Failure::new(
                fephp_result::FEPHP_ERR_ALREADY_EMBEDDED,
                "an embedded-PHP engine was already created in this process (PHP is NTS and starts once per \
                 process: share that engine, or use php.use_fpm = true)",
            ));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKER_THREADS)
            .max_blocking_threads(MAX_BLOCKING_THREADS)
            .thread_name("fephp-rt")
            .enable_all()
            .build()
            .map_err(|e| Failure::new(fephp_result::FEPHP_ERR_BACKEND_START, format!("cannot start the engine's threads: {e}")))?;
        let engine = {
            let _guard = runtime.enter();
            Engine::new(backend)
        }
        .map_err(|e| {
            // Two engines created at once: the loser finds PHP started by the other.
            let code = if embedded && matches!(e, crate::error::EngineError::AlreadyEmbedded) {
                fephp_result::FEPHP_ERR_ALREADY_EMBEDDED
            } else {
                fephp_result::FEPHP_ERR_BACKEND_START
            };
            Failure::new(code, format!("cannot start the backend: {e}"))
        })?;
        let shared = Arc::new(Shared { engine, site, https: config.server.https, server_name: config.server.server_name.clone() });
        Ok(fephp_engine {
            runtime: Some(runtime),
            shared: Some(shared),
            #[cfg(feature = "embed")]
            pool,
        })
    }

    fn into_out(self, out: *mut *mut fephp_engine) -> fephp_result {
        // SAFETY: `out` is non-NULL (checked by ffi_fn!) and points to writable storage for a
        // pointer (the caller's contract).
        unsafe { *out = Box::into_raw(Box::new(self)) };
        fephp_result::FEPHP_OK
    }
}

impl Drop for fephp_engine {
    fn drop(&mut self) {
        let Some(runtime) = self.runtime.take() else { return };
        // Cancels in-flight async requests (their on_complete gets FEPHP_ERR_CANCELLED) and
        // stops the runtime threads; then the last reference to the engine goes.
        if tokio::runtime::Handle::try_current().is_ok() {
            runtime.shutdown_background(); // freed from a callback (documented as forbidden)
        } else {
            runtime.shutdown_timeout(SHUTDOWN_TIMEOUT);
        }
        drop(self.shared.take());
        // The owner's pipe ends close: the supervisor stops every executor.
        #[cfg(feature = "embed")]
        drop(self.pool.take());
    }
}

/// Creates an engine from a `config.toml` document held in memory: `toml` points to `len`
/// bytes of UTF-8 (no NUL terminator needed; not retained after the call). Relative paths in
/// it (`server.document_root`, `php.ini_file`) are relative to the process's working directory.
///
/// On success writes a new engine to `*out` (free it with `fephp_engine_free`) and returns
/// `FEPHP_OK`. Errors: `FEPHP_ERR_NULL_ARGUMENT`, `FEPHP_ERR_INVALID_UTF8`, `FEPHP_ERR_CONFIG`
/// (the message names the key, e.g. "config key `php.worker_pool_size`: must be greater than
/// 0"), `FEPHP_ERR_ALREADY_EMBEDDED`, `FEPHP_ERR_BACKEND_START`. FPM is not contacted here:
/// an unreachable FPM shows as 502 responses.
#[no_mangle]
pub extern "C" fn fephp_engine_new_from_toml(toml: *const c_char, len: usize, out: *mut *mut fephp_engine) -> fephp_result {
    ffi_fn!("fephp_engine_new_from_toml", nonnull(out), {
        let run = || -> Result<fephp_engine, Failure> {
            // SAFETY: `toml` points to `len` readable bytes (the caller's contract).
            let text = unsafe { bytes("fephp_engine_new_from_toml", "toml", toml.cast(), len) }?;
            let text = utf8("fephp_engine_new_from_toml", "toml", text)?;
            let config = Config::parse(text).map_err(|e| Failure::new(fephp_result::FEPHP_ERR_CONFIG, e.to_string()))?;
            fephp_engine::start(config)
        };
        match run() {
            Ok(engine) => engine.into_out(out),
            Err(f) => f.report(),
        }
    })
}

/// Creates an engine from a `config.toml` file: `path` is a NUL-terminated file name (any
/// bytes; not retained). Relative paths inside the file are relative to the file's directory.
///
/// On success writes a new engine to `*out` (free it with `fephp_engine_free`) and returns
/// `FEPHP_OK`. Errors: as `fephp_engine_new_from_toml`; an unreadable file is
/// `FEPHP_ERR_CONFIG`.
#[no_mangle]
pub extern "C" fn fephp_engine_new_from_file(path: *const c_char, out: *mut *mut fephp_engine) -> fephp_result {
    ffi_fn!("fephp_engine_new_from_file", nonnull(path, out), {
        // SAFETY: `path` is non-NULL (checked above) and NUL-terminated (the caller's contract).
        let path = Path::new(std::ffi::OsStr::from_bytes(unsafe { cstr(path) }));
        let run = || -> Result<fephp_engine, Failure> {
            let config = Config::load(path).map_err(|e| Failure::new(fephp_result::FEPHP_ERR_CONFIG, e.to_string()))?;
            fephp_engine::start(config)
        };
        match run() {
            Ok(engine) => engine.into_out(out),
            Err(f) => f.report(),
        }
    })
}

/// Frees an engine: cancels its in-flight asynchronous requests (each one's `on_complete` is
/// called with `FEPHP_ERR_CANCELLED`, possibly on the calling thread), stops its threads and
/// closes its FastCGI connections (or releases embedded PHP; PHP starts once per process, so
/// no other embedded engine can be created afterwards). NULL is ignored.
///
/// Must not be called while another thread is inside a call on the same engine, nor from
/// inside one of its callbacks.
#[no_mangle]
pub extern "C" fn fephp_engine_free(engine: *mut fephp_engine) {
    ffi_fn!("fephp_engine_free", nonnull(), {
        if !engine.is_null() {
            // SAFETY: `engine` came from Box::into_raw in fephp_engine_new_* and is freed once
            // (the caller's contract).
            drop(unsafe { Box::from_raw(engine) });
        }
    })
}
