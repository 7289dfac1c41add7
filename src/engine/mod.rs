//! The engine: one API that serves a PHP request through either backend — the FastCGI
//! [`Pool`] to PHP-FPM or the embedded libphp executor — with script
//! resolution and params building done once, here, through [`crate::cgi`].

mod body;

use std::sync::Arc;
use std::time::Instant;

pub use body::ResponseBody;

use crate::cgi::{build_params, HttpRequest, RequestBody, ResponseHead, Site};
use crate::config::{Config, RequestIni};
use crate::error::{ConfigError, EngineError};
use crate::metrics::Metrics;
use crate::pool::{Pool, PoolConfig, ProbeState};

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

enum Backend {
    Fpm(Pool),
    #[cfg(feature = "embed")]
    Embedded(crate::php::Php),
    #[cfg(feature = "embed")]
    Executors(crate::executor::Client),
}

/// Backend health, as `/_health` and `fephp_status` report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// `"fpm"` or `"embedded"`.
    pub backend: &'static str,
    /// True when the backend can take requests (FPM reachable; PHP thread alive).
    pub ok: bool,
    /// Human-readable detail (the FPM address, the error).
    pub detail: String,
    /// Every PHP worker is busy: no FPM child answered the probe within
    /// [`crate::pool::PROBE_TIMEOUT`], or the embedded PHP thread is running a request. A busy
    /// backend is still `ok` (it takes requests; they wait).
    pub busy: bool,
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
        self.serve_with(site, req, None).await
    }

    /// [`Engine::serve`] with per-request ini settings for embedded PHP (`fephp_php_value`,
    /// `fephp_php_admin_value`, `[php.values]`): applied before PHP's request startup, undone
    /// after the request. The FPM backend sends none (php-fpm's pool configuration has its own
    /// `php_value[]`).
    pub async fn serve_with(&self, site: &Site, req: Request, ini: Option<Arc<RequestIni>>) -> Result<Response, EngineError> {
        let started = Instant::now();
        let result = self.serve_inner(site, req, ini).await;
        match &result {
            Ok(resp) => self.metrics.record(resp.head.status, started.elapsed()),
            Err(e) => {
                self.metrics.record_error(e.kind());
                self.metrics.record(e.status(), started.elapsed());
            }
        }
        result
    }

    async fn serve_inner(&self, site: &Site, req: Request, ini: Option<Arc<RequestIni>>) -> Result<Response, EngineError> {
        let script = site.resolve(&req.http.uri)?;
        let params = build_params(&req.http, site, &script, req.body.len());
        match &self.backend {
            Backend::Fpm(pool) => {
                let _ = ini;
                let (head, body) = pool.send(&params, req.body).await?;
                Ok(Response { head, body: ResponseBody::fpm(body) })
            }
            #[cfg(feature = "embed")]
            Backend::Embedded(php) => {
                let (head, body) = php.execute_with(params, script, req.body, ini.filter(|i| !i.is_empty())).await?;
                Ok(Response { head, body: ResponseBody::php(body) })
            }
            #[cfg(feature = "embed")]
            Backend::Executors(client) => {
                let (head, body) = client.execute(&params, &script, req.body).await?;
                Ok(Response { head, body: ResponseBody::exec(body) })
            }
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
