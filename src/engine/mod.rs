//! The engine: one API that serves a PHP request through either backend — the FastCGI
//! [`Pool`] to PHP-FPM or the embedded libphp executor — with script
//! resolution and params building done once, here, through [`crate::cgi`].

mod body;
mod health;

use std::sync::Arc;
use std::time::Instant;

pub use body::ResponseBody;
pub use health::{health_json, json_str, Health};

use crate::cgi::{build_params, HttpRequest, RequestBody, ResponseHead, Site};
use crate::config::{Config, RequestIni};
use crate::error::{ConfigError, EngineError};
use crate::metrics::Metrics;
use crate::pool::{Pool, PoolConfig, ProbeState, Timeouts};

/// A request to serve: the HTTP parts and the body.
#[derive(Debug)]
pub struct Request {
    /// Method, target, headers, addresses.
    pub http: HttpRequest,
    /// The request body (length known up front).
    pub body: RequestBody,
}

/// A response: status and headers, then a body read chunk by chunk.
#[derive(Debug)]
pub struct Response {
    /// Status and headers.
    pub head: ResponseHead,
    /// The body stream; dropping it early aborts the request at the backend.
    pub body: ResponseBody,
}

/// Per-request settings a surface may give [`Engine::serve_with`] (e.g. from the nginx location
/// that serves the request); `Default` means the backend's own settings, no head limit and no
/// per-request ini.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServeOptions {
    /// FPM: this request's timeouts instead of the pool's (the pool, and so its connection
    /// limit, is shared by every location passing to one address). Embedded PHP ignores them.
    pub timeouts: Option<Timeouts>,
    /// Most bytes the response head may take ([`ResponseHead::wire_len`]); a longer head is a
    /// 502 ([`EngineError::Protocol`]), as nginx answers when it exceeds `fastcgi_buffer_size`.
    pub head_limit: Option<usize>,
    /// Embedded PHP: per-request ini settings (`fephp_php_value`, `fephp_php_admin_value`,
    /// `[php.values]`), applied before PHP's request startup and undone after the request. The
    /// FPM backend sends none (php-fpm's pool configuration has its own `php_value[]`); the
    /// executors get them with the request and apply them the same way.
    pub ini: Option<Arc<RequestIni>>,
}

/// True once this process has started embedded PHP: PHP is NTS and its module startup runs once
/// per process, so a process gets one embedded engine, ever (the one flag every surface asks).
pub fn embedded_started() -> bool {
    #[cfg(feature = "embed")]
    {
        crate::php::started()
    }
    #[cfg(not(feature = "embed"))]
    false
}

/// Which backend runs PHP.
#[derive(Debug, Clone)]
pub enum BackendConfig {
    /// PHP-FPM over FastCGI.
    Fpm(PoolConfig),
    /// Embedded libphp in this process.
    #[cfg(feature = "embed")]
    Embedded(crate::php::PhpOptions),
    /// A pool of PHP executor processes (started by its owner, see [`crate::executor::Pool`]).
    #[cfg(feature = "embed")]
    Executors(crate::executor::Client),
}

/// The label of the embedded engine in status reports and metrics ([`BackendConfig::label`]).
pub const EMBEDDED_LABEL: &str = "embedded";

/// The label of the executor pool's engine in status reports and metrics.
pub const EXECUTORS_LABEL: &str = "executors";

/// [`ServeOptions::head_limit`] for the backends that hand over a whole head (embedded PHP and
/// the executors; FPM's parser enforces it while reading).
#[cfg(feature = "embed")]
fn head_within(head: &crate::cgi::ResponseHead, limit: Option<usize>) -> Result<(), EngineError> {
    match limit {
        Some(limit) if head.wire_len() > limit => {
            Err(EngineError::Protocol(format!("PHP sent too big a response head (more than {limit} bytes)")))
        }
        _ => Ok(()),
    }
}

fn fpm_label(address: &crate::pool::Address) -> String {
    format!("fpm {address}")
}

impl BackendConfig {
    /// The label of an engine with this backend in status reports and metrics:
    /// [`EMBEDDED_LABEL`], [`EXECUTORS_LABEL`] or `fpm ADDRESS`.
    pub fn label(&self) -> String {
        match self {
            BackendConfig::Fpm(cfg) => fpm_label(&cfg.address),
            #[cfg(feature = "embed")]
            BackendConfig::Embedded(_) => EMBEDDED_LABEL.to_string(),
            #[cfg(feature = "embed")]
            BackendConfig::Executors(_) => EXECUTORS_LABEL.to_string(),
        }
    }
}

enum Backend {
    Fpm(Pool),
    #[cfg(feature = "embed")]
    Embedded(crate::php::Php),
    #[cfg(feature = "embed")]
    Executors(crate::executor::Client),
}

/// Serves PHP requests. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct Engine {
    backend: Backend,
    metrics: Arc<Metrics>,
}

impl Engine {
    /// Creates an engine for `backend`. For [`BackendConfig::Embedded`] this starts the
    /// process's single PHP thread (once per process; a second embedded engine is an error).
    pub fn new(backend: BackendConfig) -> Result<Engine, EngineError> {
        let backend = match backend {
            BackendConfig::Fpm(cfg) => Backend::Fpm(Pool::new(cfg)),
            #[cfg(feature = "embed")]
            BackendConfig::Embedded(opts) => Backend::Embedded(crate::php::Php::start(opts)?),
            #[cfg(feature = "embed")]
            BackendConfig::Executors(client) => Backend::Executors(client),
        };
        Ok(Engine { backend, metrics: Arc::new(Metrics::default()) })
    }

    /// The backend selected by a [`Config`] (`php.use_fpm`).
    pub fn backend_config(config: &Config) -> Result<BackendConfig, ConfigError> {
        if config.php.use_fpm {
            return Ok(BackendConfig::Fpm(PoolConfig::from_config(&config.php)?));
        }
        #[cfg(feature = "embed")]
        {
            Ok(BackendConfig::Embedded(crate::php::PhpOptions::from_config(&config.php)))
        }
        #[cfg(not(feature = "embed"))]
        Err(ConfigError::new("php.use_fpm", "this build has no embedded PHP (feature `embed`); set use_fpm = true"))
    }

    /// The [`Site`] (document root and script rules) of a [`Config`].
    pub fn site(config: &Config) -> Result<Site, ConfigError> {
        let s = &config.server;
        Site::new(&s.document_root, &s.index, &s.script_extensions, s.split_path_info, s.allow_symlinks_outside_root)
            .map_err(|e| ConfigError::new("server.document_root", e.to_string()))
    }

    /// Serves `req` for `site`: resolves the script (refusing what must not run), builds the
    /// params, runs PHP on the backend and returns the response head with a streaming body.
    pub async fn serve(&self, site: &Site, req: Request) -> Result<Response, EngineError> {
        self.serve_with(site, req, ServeOptions::default()).await
    }

    /// [`Engine::serve`] with per-request settings ([`ServeOptions`]).
    pub async fn serve_with(&self, site: &Site, req: Request, opts: ServeOptions) -> Result<Response, EngineError> {
        let started = Instant::now();
        let result = self.serve_inner(site, req, opts).await;
        match &result {
            Ok(resp) => self.metrics.record(resp.head.status, started.elapsed()),
            Err(e) => {
                self.metrics.record_error(e.kind());
                self.metrics.record(e.status(), started.elapsed());
            }
        }
        result
    }

    async fn serve_inner(&self, site: &Site, req: Request, opts: ServeOptions) -> Result<Response, EngineError> {
        let script = site.resolve(&req.http.uri)?;
        let params = build_params(&req.http, site, &script, req.body.len());
        match &self.backend {
            Backend::Fpm(pool) => {
                let timeouts = opts.timeouts.unwrap_or_else(|| pool.config().timeouts());
                // Boxed (here and for the executors): an `async fn` is as large as its largest
                // branch, and the caller boxes and moves the whole future per request; the
                // embedded branch's is small.
                let (head, body) = Box::pin(pool.send_with(&params, req.body, &timeouts, opts.head_limit)).await?;
                Ok(Response { head, body: ResponseBody::fpm(body) })
            }
            #[cfg(feature = "embed")]
            Backend::Embedded(php) => {
                let (head, body) = php.execute_with(params, script, req.body, opts.ini.filter(|i| !i.is_empty())).await?;
                head_within(&head, opts.head_limit)?;
                Ok(Response { head, body: ResponseBody::php(body) })
            }
            #[cfg(feature = "embed")]
            Backend::Executors(client) => {
                let ini = opts.ini.filter(|i| !i.is_empty());
                let (head, body) = Box::pin(client.execute_with(&params, &script, req.body, ini.as_deref())).await?;
                head_within(&head, opts.head_limit)?;
                Ok(Response { head, body: ResponseBody::exec(body) })
            }
        }
    }

    /// This engine's label ([`BackendConfig::label`]).
    pub fn label(&self) -> String {
        match &self.backend {
            Backend::Fpm(pool) => fpm_label(pool.address()),
            #[cfg(feature = "embed")]
            Backend::Embedded(_) => EMBEDDED_LABEL.to_string(),
            #[cfg(feature = "embed")]
            Backend::Executors(_) => EXECUTORS_LABEL.to_string(),
        }
    }

    /// Checks the backend: connects to FPM (a fresh connection) or asks the PHP thread.
    pub async fn health(&self) -> Health {
        match &self.backend {
            Backend::Fpm(pool) => {
                let detail = pool.address().to_string();
                match pool.probe_state().await {
                    Ok(ProbeState::Ready) => Health { backend: "fpm", ok: true, detail, busy: false },
                    Ok(ProbeState::Busy(why)) => Health { backend: "fpm", ok: true, detail: why, busy: true },
                    Err(e) => Health { backend: "fpm", ok: false, detail: format!("{detail}: {e}"), busy: false },
                }
            }
            #[cfg(feature = "embed")]
            Backend::Embedded(php) => match php.probe() {
                Ok(()) => {
                    let busy = php.stats().busy;
                    let detail = if busy { "php thread running a request" } else { "php thread running" };
                    Health { backend: "embedded", ok: true, detail: detail.into(), busy }
                }
                Err(e) => Health { backend: "embedded", ok: false, detail: e.to_string(), busy: false },
            },
            #[cfg(feature = "embed")]
            Backend::Executors(client) => match client.status() {
                Some(st) if st.idle + st.busy == 0 => {
                    Health { backend: "executors", ok: false, detail: "no executor is running".into(), busy: false }
                }
                Some(st) => Health {
                    backend: "executors",
                    ok: true,
                    detail: format!("{} executors: {} idle, {} busy, {} queued", st.size, st.idle, st.busy, st.queued),
                    busy: st.idle == 0,
                },
                None => Health { backend: "executors", ok: true, detail: "executor pool".into(), busy: false },
            },
        }
    }

    /// The executor pool's status, when this engine serves through one (and shares its
    /// scoreboard).
    #[cfg(feature = "embed")]
    pub fn executor_status(&self) -> Option<crate::executor::PoolStatus> {
        match &self.backend {
            Backend::Executors(client) => client.status(),
            _ => None,
        }
    }

    /// Request and error counters, latency histogram.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Prometheus text exposition of the metrics plus the backend's gauges.
    pub fn render_metrics(&self) -> String {
        let mut out = self.metrics.render();
        match &self.backend {
            Backend::Fpm(pool) => pool.stats().render(&mut out),
            #[cfg(feature = "embed")]
            Backend::Embedded(php) => php.stats().render(&mut out),
            #[cfg(feature = "embed")]
            Backend::Executors(client) => {
                if let Some(st) = client.status() {
                    st.render_prometheus(&mut out, false);
                }
            }
        }
        out
    }
}
