//! `fe-php serve`: bind the listener, then serve with the configured backend. FPM mode runs
//! one multi-threaded process; embedded mode forks `--workers` processes (PHP is NTS: one PHP
//! thread per process) that share the listener, supervised by `harness::workers`.

use std::fmt;
use std::net::TcpListener as StdListener;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use super::http::{ServerIdentity, Service};
use crate::engine::{BackendConfig, Engine};
use crate::error::ConfigError;
use crate::Config;

/// Why `serve` could not start.
#[derive(Debug)]
pub enum ServeError {
    /// The configuration is invalid (names the key).
    Config(ConfigError),
    /// The listen socket could not be bound.
    Bind(String, std::io::Error),
    /// The engine could not start (e.g. embedded PHP failed to initialise).
    Engine(String),
    /// Runtime or process management failure.
    Runtime(String),
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::Config(e) => write!(f, "{e}"),
            ServeError::Bind(addr, e) => write!(f, "cannot listen on {addr}: {e}"),
            ServeError::Engine(e) => write!(f, "cannot start the engine: {e}"),
            ServeError::Runtime(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ServeError {}

/// Loads the config and serves until SIGTERM / Ctrl-C.
pub fn run(config_path: &Path, workers: Option<usize>) -> Result<(), ServeError> {
    let config = Config::load(config_path).map_err(ServeError::Config)?;
    let site = Engine::site(&config).map_err(ServeError::Config)?;
    let mut backend = Engine::backend_config(&config).map_err(ServeError::Config)?;
    // The executor pool is forked here, before any runtime thread exists; it lives (and its
    // executors with it) as long as this process.
    #[cfg(feature = "embed")]
    let _pool = match (&backend, config.php.executors) {
        (BackendConfig::Embedded(opts), n) if n > 0 => {
            let terminate = Duration::from_millis(config.php.request_terminate_timeout_ms);
            let exec = crate::executor::ExecutorOptions {
                php: opts.clone(),
                executors: n as usize,
                max_requests: config.php.worker_max_requests,
                terminate_timeout: terminate,
                queue_size: config.php.queue_size as usize,
                queue_timeout: config.php.queue_timeout(),
                worker: config
                    .php
                    .worker_script
                    .clone()
                    .map(|script| crate::executor::WorkerOptions { script, watch: config.php.worker_watch.clone() }),
                ..Default::default()
            };
            let pool = crate::executor::Pool::start(exec, None).map_err(|e| ServeError::Engine(format!("executor pool: {e}")))?;
            backend = BackendConfig::Executors(pool.client(config.php.connect_timeout(), config.php.read_timeout(), terminate));
            Some(pool)
        }
        _ => None,
    };
    let listen = config.server.listen.clone();
    let listener = StdListener::bind(&listen).map_err(|e| ServeError::Bind(listen.clone(), e))?;
    listener.set_nonblocking(true).map_err(|e| ServeError::Bind(listen.clone(), e))?;
    let shutdown = Duration::from_millis(config.server.shutdown_timeout_ms);
    let max_requests = config.php.worker_max_requests;
    let identity =
        Arc::new(ServerIdentity { https: config.server.https, server_name: config.server.server_name.clone() });

    // `[php.values]` / `[php.admin_values]`: applied to each embedded request.
    let request_ini = Some(Arc::new(config.php.request_ini())).filter(|i| !i.is_empty());
    match backend {
        #[cfg(feature = "embed")]
        BackendConfig::Executors(_) => {
            crate::log!(Info, "serve", "listening on http://{listen} (PHP executor pool)");
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| ServeError::Runtime(format!("tokio runtime: {e}")))?;
            runtime.block_on(serve_process(listener, backend, site, shutdown, 0, identity, request_ini.clone()))
        }
        BackendConfig::Fpm(_) => {
            crate::log!(Info, "serve", "listening on http://{listen} (PHP-FPM at {})", config.php.fpm_socket);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| ServeError::Runtime(format!("tokio runtime: {e}")))?;
            runtime.block_on(serve_process(listener, backend, site, shutdown, 0, identity, request_ini))
        }
        #[cfg(feature = "embed")]
        BackendConfig::Embedded(_) => {
            // Process-wide (PHP is one per process), set before the workers fork.
            let slow = std::time::Duration::from_millis(config.php.slowlog_timeout_ms);
            crate::php::set_slowlog((!slow.is_zero()).then(|| crate::php::SlowLog {
                timeout: slow,
                path: (config.php.slowlog != "stderr").then(|| std::path::PathBuf::from(&config.php.slowlog)),
            }));
            let n = workers.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)).max(1);
            crate::log!(Info, "serve", "listening on http://{listen} (embedded PHP, {n} worker processes)");
            super::workers::supervise(n, move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| ServeError::Runtime(format!("tokio runtime: {e}")))?;
                let listener = listener.try_clone().map_err(|e| ServeError::Runtime(format!("listener: {e}")))?;
                runtime.block_on(serve_process(listener, backend.clone(), site.clone(), shutdown, max_requests, identity.clone(), request_ini.clone()))
            })
        }
    }
}

/// Serves on `listener` in this process until a shutdown signal, or until `max_requests`
/// PHP requests when non-zero (embedded worker recycling), then drains in-flight requests
/// (connections idle at that moment are closed, as nginx does on a graceful exit).
async fn serve_process(
    listener: StdListener,
    backend: BackendConfig,
    site: crate::cgi::Site,
    drain_timeout: Duration,
    max_requests: u64,
    identity: Arc<ServerIdentity>,
    request_ini: Option<Arc<crate::config::RequestIni>>,
) -> Result<(), ServeError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut sigterm =
        signal(SignalKind::terminate()).map_err(|e| ServeError::Runtime(format!("signal handler: {e}")))?;
    let mut sigint =
        signal(SignalKind::interrupt()).map_err(|e| ServeError::Runtime(format!("signal handler: {e}")))?;
    // Handlers are in place (before PHP starts its threads): let a pending stop signal in.
    super::workers::unblock_stop_signals();
    let engine = Engine::new(backend).map_err(|e| ServeError::Engine(e.to_string()))?;
    let service = Service::new(Arc::new(engine), Arc::new(site), identity, max_requests).with_request_ini(request_ini);
    let listener = TcpListener::from_std(listener).map_err(|e| ServeError::Runtime(format!("listener: {e}")))?;
    let local = listener.local_addr().ok();
    let graceful = GracefulShutdown::new();
    let mut served: u64 = 0;
    loop {
        tokio::select! {
            // Stop conditions first: once the limit is reached, a connection waiting in the
            // backlog must stay there for the next worker, not be accepted and then closed.
            biased;
            _ = service.limit_reached() => {
                crate::log!(Info, "serve", "worker {} served {} requests: recycling", std::process::id(), service.requests());
                break;
            }
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        crate::log!(Warn, "serve", "accept: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let svc = service.for_connection(peer, local);
                let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        crate::log!(Debug, "serve", "connection from {peer}: {e}");
                    }
                });
                served += 1;
            }
        }
    }
    drop(listener);
    crate::log!(Info, "serve", "process {} shutting down ({served} connections accepted); draining", std::process::id());
    if tokio::time::timeout(drain_timeout, graceful.shutdown()).await.is_err() {
        crate::log!(Warn, "serve", "in-flight requests still running after {drain_timeout:?}; exiting anyway");
    }
    Ok(())
}
