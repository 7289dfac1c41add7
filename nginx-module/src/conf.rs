//! Configuration: the directives, their storage and their merge.
//!
//! Every location field starts unset (`None`), is inherited from the enclosing level when unset
//! (nginx's `ngx_conf_merge_*_value`), and gets its explicit default in [`merge_loc_conf`], so a
//! request reads merged values ([`LocConf::split_path_info`] and friends) and never builds a
//! default. `fephp_param` lists are inherited as a whole, like `fastcgi_param`: a level with at
//! least one `fephp_param` does not see its parent's.
//!
//! FPM pools: one per FPM address and worker, whatever the locations passing to it, so
//! `fephp_max_connections` is a limit for the address (set it to FPM's `pm.max_children` and no
//! request waits in FPM's backlog). Its pool-wide settings (`fephp_max_connections`,
//! `fephp_max_requests`, `fephp_queue N`) apply to every location passing to the address; two
//! locations that set one of them to different values are a configuration error. Timeouts
//! (`fephp_*_timeout`, `fephp_queue timeout=`) and `fephp_buffer_size` are per location (per
//! request).
//!
//! | directive | context | default |
//! |---|---|---|
//! | `fephp_pass executors \| embedded \| unix:/path \| host:port \| UPSTREAM;` | location, if in location | — |
//! | `fephp_param NAME VALUE [if_not_empty];` | http, server, location | — |
//! | `fephp_index NAME;` | http, server, location | `index.php` |
//! | `fephp_split_path_info on \| off \| REGEX;` | http, server, location | `on` |
//! | `fephp_connect_timeout TIME;` | http, server, location | `60s` |
//! | `fephp_send_timeout TIME;` | http, server, location | `60s` |
//! | `fephp_read_timeout TIME;` | http, server, location | `60s` |
//! | `fephp_buffer_size SIZE;` (most bytes of a response head, else 502) | http, server, location | `4k\|8k` (one memory page) |
//! | `fephp_max_connections N;` (FPM connections per worker and address; old name `fephp_keepalive`) | http, server, location | `16` |
//! | `fephp_max_requests N;` (per FPM connection, 0 = no limit) | http, server, location | `0` |
//! | `fephp_queue N [timeout=TIME];` (requests waiting for PHP) | http, server, location | `1024`, FPM: connect timeout, embedded: `60s` |
//! | `fephp_intercept_errors on \| off;` | http, server, location | `off` |
//! | `fephp_status;` | location | — |
//! | `fephp_php_value NAME VALUE;` (embedded PHP, per request) | http, server, location | — |
//! | `fephp_php_admin_value NAME VALUE;` (embedded PHP, per request, locked) | http, server, location | — |
//! | `fephp_php_ini NAME VALUE;` (embedded PHP) | http | — |
//! | `fephp_php_ini_file PATH \| off;` (embedded PHP) | http | the php.ini libphp was built with |
//! | `fephp_next_upstream error \| timeout \| off ...;` ([`crate::upstream`]) | http, server, location | `error timeout` |
//! | `fephp_next_upstream_tries N;` (0 = no limit) | http, server, location | `0` |
//! | `fephp_slowlog_timeout TIME;` (embedded PHP) | http | `0` (off) |
//! | `fephp_slowlog FILE \| stderr;` (embedded PHP) | http | `stderr` (nginx's error log) |

use std::ffi::{c_char, c_void};
use std::ptr;
use std::sync::Arc;
use std::time::Duration;

use fephp::cgi::SplitRule;
use fephp::config::{self as defaults, IniFile, IniSetting, RequestIni};
use fephp::pool::{Address, PoolConfig, Timeouts};
use ngx::ffi::{
    ngx_command_t, ngx_conf_t, ngx_http_compile_complex_value, ngx_http_compile_complex_value_t,
    ngx_http_complex_value_t, ngx_http_upstream_add, ngx_http_upstream_srv_conf_t, ngx_parse_size, ngx_parse_time,
    ngx_pcalloc, ngx_str_t, ngx_url_t, NGX_ERROR, NGX_LOG_EMERG, NGX_LOG_WARN, NGX_OK,
};
use ngx::http::{HttpModuleLocationConf, HttpModuleMainConf, NgxHttpCoreModule};
use ngx::ngx_conf_log_error;

use crate::upstream::{NextUpstream, UpstreamKey};
use crate::Module;

/// `NGX_CONF_OK`.
pub(crate) const CONF_OK: *mut c_char = ptr::null_mut();
/// `NGX_CONF_ERROR`.
pub(crate) const CONF_ERROR: *mut c_char = ngx::core::NGX_CONF_ERROR as *mut c_char;

/// Default for the three `fephp_*_timeout` directives: nginx's `fastcgi_*_timeout` default.
/// (The harness's `[php]` timeouts default to the same value, [`defaults::DEFAULT_TIMEOUT`].)
pub const DEFAULT_TIMEOUT: Duration = defaults::DEFAULT_TIMEOUT;

/// Where `fephp_pass` sends requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pass {
    /// The embedded PHP of this worker process.
    Embedded,
    /// The executor pool (PHP processes of their own, one shared queue).
    Executors,
    /// A PHP-FPM pool.
    Fpm(Address),
    /// An `upstream` block of PHP-FPM servers, by name ([`crate::upstream`]).
    Upstream(String, *mut ngx_http_upstream_srv_conf_t),
}

/// Which engine of the worker serves a location, fixed at merge time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The worker's embedded engine.
    Embedded,
    /// The worker's client of the executor pool.
    Executors,
    /// The FPM engine at this index of [`MainConf::pools`].
    Fpm(usize),
    /// The upstream at this index of [`MainConf::upstreams`].
    Upstream(usize),
}

/// One `fephp_param NAME VALUE [if_not_empty]`.
#[derive(Debug, Clone)]
pub struct Param {
    /// The param name (`SCRIPT_FILENAME`, `APP_ENV`, ...).
    pub name: String,
    /// The compiled value (may contain variables), allocated in the configuration pool.
    pub value: *mut ngx_http_complex_value_t,
    /// `if_not_empty`: skip the param when the value evaluates to "".
    pub skip_empty: bool,
}

/// One FPM pool (per worker): an address and its pool-wide settings, as the locations passing to
/// it set them (`None`: no location set it, the default applies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSpec {
    /// FPM address.
    pub address: Address,
    /// `fephp_max_connections`.
    pub max_connections: Option<usize>,
    /// `fephp_max_requests`.
    pub max_requests: Option<u64>,
    /// `fephp_queue N`: requests that may wait for a free connection.
    pub queue_size: Option<usize>,
}

impl PoolSpec {
    /// The engine's pool settings (its own timeouts are the defaults; each request brings its
    /// location's, see [`LocConf::timeouts`]).
    pub fn pool_config(&self) -> PoolConfig {
        let mut cfg = PoolConfig::new(self.address.clone());
        cfg.size = self.max_connections.unwrap_or(defaults::DEFAULT_MAX_CONNECTIONS);
        cfg.max_requests = self.max_requests.unwrap_or(0);
        cfg.queue_size = self.queue_size.unwrap_or(defaults::DEFAULT_QUEUE_SIZE);
        cfg
    }

    /// Takes a location's explicit settings into the pool; the name of a directive the location
    /// sets to another value than an earlier location passing to the same address.
    fn take(&mut self, conf: &LocConf) -> Result<(), &'static str> {
        fn one<T: PartialEq + Copy>(slot: &mut Option<T>, value: Option<T>, name: &'static str) -> Result<(), &'static str> {
            match (*slot, value) {
                (Some(a), Some(b)) if a != b => Err(name),
                (None, Some(b)) => {
                    *slot = Some(b);
                    Ok(())
                }
                _ => Ok(()),
            }
        }
        one(&mut self.max_connections, conf.max_connections, "fephp_max_connections")?;
        one(&mut self.max_requests, conf.max_requests, "fephp_max_requests")?;
        one(&mut self.queue_size, conf.queue.map(|q| q.size), "fephp_queue")
    }
}

/// `http`-level configuration.
#[derive(Debug, Default)]
pub struct MainConf {
    /// `fephp_php_ini` settings for the embedded PHP, in order.
    pub php_ini: Vec<(String, String)>,
    /// `fephp_php_ini_file`; `None`: the distribution's php.ini ([`IniFile::Distribution`]).
    pub php_ini_file: Option<IniFile>,
    /// True when some location uses `fephp_pass embedded` (the worker starts PHP).
    pub embedded: bool,
    /// One FPM pool per address; each worker creates one engine per entry.
    pub pools: Vec<PoolSpec>,
    /// Upstream blocks used by `fephp_pass`, with their pool settings and retry rules; each
    /// worker makes one engine per server and entry on first use.
    pub upstreams: Vec<UpstreamKey>,
    /// `fephp_queue` of the locations using `fephp_pass embedded` (they share the worker's one
    /// PHP thread, so they must agree); `None` means the defaults.
    pub embedded_queue: Option<Queue>,
    /// The executor pool's settings (`fephp_pass executors`).
    pub executors: crate::executors::ExecutorsConf,
    /// `fephp_slowlog_timeout` (embedded PHP); `None` or zero: no slow log.
    pub slowlog_timeout: Option<Duration>,
    /// `fephp_slowlog FILE | stderr`; `None`: stderr (nginx's error log). A relative FILE is
    /// relative to nginx's prefix, like `error_log`.
    pub slowlog: Option<Option<std::path::PathBuf>>,
}

/// `fephp_queue N [timeout=TIME]`: how many requests may wait for PHP, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queue {
    /// Requests that may wait (beyond those running); one more gets 503.
    pub size: usize,
    /// How long one may wait before it gets 503; `None`: the backend's default.
    pub timeout: Option<Duration>,
}

impl Queue {
    /// The embedded engine's queue size and timeout (defaults: 1024, 60s).
    pub fn embedded(queue: Option<Queue>) -> (usize, Duration) {
        match queue {
            Some(q) => (q.size, q.timeout.unwrap_or(DEFAULT_TIMEOUT)),
            None => (defaults::DEFAULT_QUEUE_SIZE, DEFAULT_TIMEOUT),
        }
    }
}

/// Location-level configuration (also created at `http` and `server` level). The fields are
/// what the directives set; [`merge_loc_conf`] fills every one a request reads.
#[derive(Debug, Default)]
pub struct LocConf {
    /// `fephp_pass`.
    pub pass: Option<Pass>,
    /// Set by merge from `pass`.
    pub backend: Option<Backend>,
    /// `fephp_param` list.
    pub params: Option<Vec<Param>>,
    /// `fephp_index`.
    pub index: Option<String>,
    /// `fephp_split_path_info`.
    pub split_path_info: Option<SplitRule>,
    /// `fephp_connect_timeout`.
    pub connect_timeout: Option<Duration>,
    /// `fephp_send_timeout`.
    pub send_timeout: Option<Duration>,
    /// `fephp_read_timeout`.
    pub read_timeout: Option<Duration>,
    /// `fephp_buffer_size`.
    pub buffer_size: Option<usize>,
    /// `fephp_max_connections` (or its old name `fephp_keepalive`).
    pub max_connections: Option<usize>,
    /// `fephp_max_requests`.
    pub max_requests: Option<u64>,
    /// `fephp_intercept_errors`.
    pub intercept_errors: Option<bool>,
    /// `fephp_queue`.
    pub queue: Option<Queue>,
    /// `fephp_next_upstream`.
    pub next_upstream: Option<NextUpstream>,
    /// `fephp_next_upstream_tries`.
    pub next_upstream_tries: Option<usize>,
    /// Set by merge: this location's FPM timeouts.
    pub timeouts: Option<Timeouts>,
    /// `fephp_php_value` / `fephp_php_admin_value` of this level, then (after merge) also the
    /// enclosing levels' settings of other names.
    pub php_values: Option<Vec<IniSetting>>,
    /// Set by merge from `php_values`: what embedded PHP applies to each request here.
    pub request_ini: Option<Arc<RequestIni>>,
    /// The response path: buffering, temp files ([`crate::response_conf`]).
    pub response: crate::response_conf::ResponseConf,
}

/// The defaults of the fields a request reads, when merge has not run (never in nginx).
static UNMERGED_SPLIT: std::sync::LazyLock<SplitRule> = std::sync::LazyLock::new(|| SplitRule::Extension);

impl LocConf {
    /// `fephp_index` (merged; default `index.php`).
    pub fn index(&self) -> &str {
        self.index.as_deref().unwrap_or(defaults::DEFAULT_INDEX)
    }

    /// `fephp_split_path_info` (merged; default on, [`SplitRule::Extension`]).
    pub fn split_path_info(&self) -> &SplitRule {
        self.split_path_info.as_ref().unwrap_or(&UNMERGED_SPLIT)
    }

    /// `fephp_read_timeout` (merged; default 60s; also the bridge's idle guard for embedded PHP).
    pub fn read_timeout(&self) -> Duration {
        self.read_timeout.unwrap_or(DEFAULT_TIMEOUT)
    }

    /// `fephp_buffer_size` (merged; default one memory page): the response head limit.
    pub fn buffer_size(&self) -> usize {
        self.buffer_size.unwrap_or(4096)
    }

    /// `fephp_intercept_errors` (merged; default off).
    pub fn intercept_errors(&self) -> bool {
        self.intercept_errors.unwrap_or(false)
    }

    /// The `fephp_param` list (empty when none is set at any level).
    pub fn params(&self) -> &[Param] {
        self.params.as_deref().unwrap_or(&[])
    }

    /// This location's FPM timeouts (merged): connect, send, read, and the queue wait
    /// (`fephp_queue timeout=`, default: the connect timeout).
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts.unwrap_or_else(|| self.merged_timeouts())
    }

    fn merged_timeouts(&self) -> Timeouts {
        let connect = self.connect_timeout.unwrap_or(DEFAULT_TIMEOUT);
        Timeouts {
            queue: self.queue.and_then(|q| q.timeout).unwrap_or(connect),
            connect,
            send: self.send_timeout.unwrap_or(DEFAULT_TIMEOUT),
            read: self.read_timeout.unwrap_or(DEFAULT_TIMEOUT),
        }
    }
}

/// `fephp_php_value` / `fephp_php_admin_value` merge by name (unlike `fephp_param`): a level
/// keeps the enclosing levels' settings and overrides those it names itself, so a location
/// setting `memory_limit` keeps the server's `open_basedir`.
fn merge_php_values(conf: &mut LocConf, prev: &LocConf) {
    let mut merged: Vec<IniSetting> = Vec::new();
    if let Some(parent) = &prev.php_values {
        let own = conf.php_values.as_deref().unwrap_or(&[]);
        merged.extend(parent.iter().filter(|p| !own.iter().any(|o| o.name == p.name)).cloned());
    }
    if let Some(own) = &conf.php_values {
        merged.extend(own.iter().cloned());
    }
    if merged.is_empty() {
        return;
    }
    // Plain values first, then admin values (stable), as php-fpm applies its pool's.
    let mut entries = merged.clone();
    entries.sort_by_key(|e| e.admin);
    conf.request_ini = Some(Arc::new(RequestIni { entries }));
    conf.php_values = Some(merged);
}

fn inherit<T: Clone>(this: &mut Option<T>, prev: &Option<T>) {
    if this.is_none() {
        this.clone_from(prev);
    }
}

/// One memory page (`ngx_pagesize`), the default `fephp_buffer_size` as nginx's
/// `fastcgi_buffer_size` (4k or 8k).
pub(crate) fn page_size() -> usize {
    // SAFETY: plain read of a value nginx sets at start-up, before any configuration is parsed.
    let page = unsafe { ngx::ffi::ngx_pagesize };
    if page == 0 {
        4096
    } else {
        page
    }
}

/// Merges `conf` with its parent `prev`, applies every default a request reads, and registers
/// the location's backend in the main configuration, so each worker can start every engine in
/// `init_process`.
///
/// # Safety
/// `cf` must be the configuration being parsed (an `http` context).
pub unsafe fn merge_loc_conf(cf: *mut ngx_conf_t, prev: &LocConf, conf: &mut LocConf) -> *mut c_char {
    inherit(&mut conf.pass, &prev.pass);
    inherit(&mut conf.params, &prev.params);
    inherit(&mut conf.index, &prev.index);
    inherit(&mut conf.split_path_info, &prev.split_path_info);
    inherit(&mut conf.connect_timeout, &prev.connect_timeout);
    inherit(&mut conf.send_timeout, &prev.send_timeout);
    inherit(&mut conf.read_timeout, &prev.read_timeout);
    inherit(&mut conf.buffer_size, &prev.buffer_size);
    inherit(&mut conf.max_connections, &prev.max_connections);
    inherit(&mut conf.max_requests, &prev.max_requests);
    inherit(&mut conf.intercept_errors, &prev.intercept_errors);
    inherit(&mut conf.queue, &prev.queue);
    inherit(&mut conf.next_upstream, &prev.next_upstream);
    inherit(&mut conf.next_upstream_tries, &prev.next_upstream_tries);
    merge_php_values(conf, prev);
    // SAFETY: `cf` is the configuration being merged (caller contract).
    if let Err(e) = unsafe { conf.response.merge(cf, &prev.response, conf.buffer_size.unwrap_or_else(page_size)) } {
        return e;
    }

    // The defaults, once, here (ngx_conf_merge_*_value's third argument).
    conf.index.get_or_insert_with(|| defaults::DEFAULT_INDEX.to_string());
    conf.split_path_info.get_or_insert(SplitRule::Extension);
    conf.read_timeout.get_or_insert(DEFAULT_TIMEOUT);
    conf.buffer_size.get_or_insert_with(page_size);
    conf.intercept_errors.get_or_insert(false);
    conf.timeouts = Some(conf.merged_timeouts());

    // SAFETY: `cf` is a valid http-context configuration (caller contract).
    let Some(main) = Module::main_conf_mut(unsafe { &*cf }) else {
        return CONF_ERROR;
    };
    conf.backend = match &conf.pass {
        None => None,
        Some(Pass::Embedded) => {
            main.embedded = true;
            if let Some(queue) = conf.queue {
                match main.embedded_queue {
                    Some(other) if other != queue => {
                        ngx_conf_log_error!(
                            NGX_LOG_EMERG,
                            cf,
                            "\"fephp_queue\" directive: locations with \"fephp_pass embedded\" share one PHP thread per worker and must use the same fephp_queue"
                        );
                        return CONF_ERROR;
                    }
                    _ => main.embedded_queue = Some(queue),
                }
            }
            Some(Backend::Embedded)
        }
        Some(Pass::Executors) => {
            let e = &mut main.executors;
            e.used = true;
            let read = conf.read_timeout();
            e.read_timeout = Some(e.read_timeout.map_or(read, |r| r.max(read)));
            if let Some(queue) = conf.queue {
                match e.queue {
                    Some(other) if other != queue => {
                        ngx_conf_log_error!(
                            NGX_LOG_EMERG,
                            cf,
                            "\"fephp_queue\" directive: locations with \"fephp_pass executors\" share one queue and must use the same fephp_queue"
                        );
                        return CONF_ERROR;
                    }
                    _ => e.queue = Some(queue),
                }
            }
            Some(Backend::Executors)
        }
        Some(Pass::Fpm(address)) => {
            let index = match main.pools.iter().position(|p| p.address == *address) {
                Some(i) => i,
                None => {
                    main.pools.push(PoolSpec { address: address.clone(), max_connections: None, max_requests: None, queue_size: None });
                    main.pools.len() - 1
                }
            };
            if let Err(directive) = main.pools[index].take(conf) {
                ngx_conf_log_error!(
                    NGX_LOG_EMERG,
                    cf,
                    "\"{directive}\" directive: locations passing to {address} share one FPM pool per worker and must agree on {directive}"
                );
                return CONF_ERROR;
            }
            Some(Backend::Fpm(index))
        }
        Some(Pass::Upstream(name, uscf)) => {
            let key = UpstreamKey {
                name: name.clone(),
                uscf: *uscf,
                // Every server's pool takes these settings (`address` is replaced by the
                // server's); the timeouts are the location's, per request.
                pool: PoolSpec {
                    address: Address::Tcp(format!("upstream {name}")),
                    max_connections: conf.max_connections,
                    max_requests: conf.max_requests,
                    queue_size: conf.queue.map(|q| q.size),
                },
                next: conf.next_upstream.unwrap_or_default(),
                tries: conf.next_upstream_tries.unwrap_or(0),
            };
            let index = match main.upstreams.iter().position(|k| *k == key) {
                Some(i) => i,
                None => {
                    main.upstreams.push(key);
                    main.upstreams.len() - 1
                }
            };
            Some(Backend::Upstream(index))
        }
    };
    CONF_OK
}

// ---------------------------------------------------------------------------------------------
// Directive setters. Each one is an `extern "C"` entry point: panics are caught.
// ---------------------------------------------------------------------------------------------

/// The directive's arguments (index 0 is the directive name).
///
/// # Safety
/// `cf` must be a configuration being parsed, inside a directive handler.
pub(crate) unsafe fn args<'a>(cf: *mut ngx_conf_t) -> &'a [ngx_str_t] {
    // SAFETY: nginx fills `cf->args` with `nelts` ngx_str_t before calling a handler.
    unsafe {
        let a = (*cf).args;
        std::slice::from_raw_parts((*a).elts as *const ngx_str_t, (*a).nelts)
    }
}

pub(crate) fn text(s: &ngx_str_t) -> String {
    String::from_utf8_lossy(s.as_bytes()).into_owned()
}

/// Logs `[emerg] "directive" <msg>` for the directive being parsed and returns NGX_CONF_ERROR.
pub(crate) fn fail(cf: *mut ngx_conf_t, msg: std::fmt::Arguments<'_>) -> *mut c_char {
    // SAFETY: called from a directive handler with a valid `cf`.
    let name = unsafe { args(cf).first().map(text).unwrap_or_default() };
    ngx_conf_log_error!(NGX_LOG_EMERG, cf, "\"{name}\" directive: {msg}");
    CONF_ERROR
}

/// Defines an `extern "C"` setter around a safe body `fn(cf, args, conf: &mut $conf)`.
macro_rules! setter {
    ($(#[$doc:meta])* $name:ident, $conf:ty, |$cf:ident, $args:ident, $c:ident| $body:block) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// Called by nginx with a valid `cf` and this module's configuration at `conf`.
        pub unsafe extern "C" fn $name(cf: *mut ngx_conf_t, _cmd: *mut ngx_command_t, conf: *mut c_void) -> *mut c_char {
            ffi_guard!(CONF_ERROR, {
                let $cf = cf;
                // SAFETY: nginx passes the arguments of the directive being parsed and our
                // configuration structure of the level the command table names.
                let ($args, $c) = unsafe { (args(cf), &mut *(conf as *mut $conf)) };
                $body
            })
        }
    };
}

setter!(
    /// `fephp_pass embedded | unix:/path | host:port;`: sets the location's content handler.
    set_pass, LocConf, |cf, a, conf| {
        if conf.pass.is_some() {
            return fail(cf, format_args!("is duplicate"));
        }
        let value = text(&a[1]);
        conf.pass = Some(if value == "embedded" || value == "in-worker" {
            Pass::Embedded
        } else if value == "executors" {
            Pass::Executors
        } else if is_upstream_name(&value) {
            // Like `fastcgi_pass NAME`: the `upstream NAME {}` block, defined before or after.
            // SAFETY: `cf` is being parsed; nginx copies what it keeps of `url`.
            let uscf = unsafe {
                let mut url: ngx_url_t = std::mem::zeroed();
                url.url = a[1];
                url.set_no_resolve(1);
                ngx_http_upstream_add(cf, &mut url, 0)
            };
            if uscf.is_null() {
                return CONF_ERROR;
            }
            Pass::Upstream(value, uscf)
        } else {
            match Address::parse(&value) {
                // Like `fastcgi_pass host:port`: the name is resolved when nginx loads its
                // configuration (each worker resolves it again at start, never while serving).
                Ok(Address::Tcp(hp)) if !resolves(&hp) => {
                    return fail(cf, format_args!("host not found in \"{hp}\""));
                }
                Ok(address) => Pass::Fpm(address),
                Err(reason) => return fail(cf, format_args!("invalid address: {reason} (expected executors, embedded, unix:/path, host:port or an upstream name)")),
            }
        });
        // SAFETY: `cf` is a location (or if-in-location) context here.
        let Some(clcf) = NgxHttpCoreModule::location_conf_mut(unsafe { &*cf }) else {
            return CONF_ERROR;
        };
        clcf.handler = Some(crate::handler::fephp_handler);
        if clcf.name.as_bytes().ends_with(b"/") {
            clcf.set_auto_redirect(1);
        }
        CONF_OK
    }
);

setter!(
    /// `fephp_param NAME VALUE [if_not_empty];`: VALUE may contain variables.
    set_param, LocConf, |cf, a, conf| {
        let name = text(&a[1]);
        if name.is_empty() || name.bytes().any(|b| b.is_ascii_whitespace() || b == b'=' || b == 0) {
            return fail(cf, format_args!("invalid param name \"{name}\""));
        }
        let skip_empty = match a.get(3).map(|s| s.as_bytes()) {
            None => false,
            Some(b"if_not_empty") => true,
            Some(other) => {
                return fail(cf, format_args!("invalid parameter \"{}\" (expected if_not_empty)", String::from_utf8_lossy(other)))
            }
        };
        // SAFETY: `cf->pool` outlives the configuration; the compiled value lives there.
        let value = unsafe {
            let cv = ngx_pcalloc((*cf).pool, std::mem::size_of::<ngx_http_complex_value_t>()) as *mut ngx_http_complex_value_t;
            if cv.is_null() {
                return CONF_ERROR;
            }
            let mut source = a[2];
            let mut ccv: ngx_http_compile_complex_value_t = std::mem::zeroed();
            ccv.cf = cf;
            ccv.value = &mut source;
            ccv.complex_value = cv;
            if ngx_http_compile_complex_value(&mut ccv) != NGX_OK as isize {
                return CONF_ERROR;
            }
            cv
        };
        conf.params.get_or_insert_with(Vec::new).push(Param { name, value, skip_empty });
        CONF_OK
    }
);

setter!(
    /// `fephp_index NAME;`: the script run for a URI ending in `/`.
    set_index, LocConf, |cf, a, conf| {
        if conf.index.is_some() {
            return fail(cf, format_args!("is duplicate"));
        }
        let name = text(&a[1]);
        if name.is_empty() || name.contains('/') {
            return fail(cf, format_args!("invalid index \"{name}\" (a file name without /)"));
        }
        conf.index = Some(name);
        CONF_OK
    }
);

pub(crate) fn flag(cf: *mut ngx_conf_t, a: &[ngx_str_t], slot: &mut Option<bool>) -> *mut c_char {
    if slot.is_some() {
        return fail(cf, format_args!("is duplicate"));
    }
    *slot = Some(match a[1].as_bytes() {
        b"on" => true,
        b"off" => false,
        other => return fail(cf, format_args!("invalid value \"{}\", it must be \"on\" or \"off\"", String::from_utf8_lossy(other))),
    });
    CONF_OK
}

setter!(
    /// `fephp_split_path_info on | off | REGEX;`: how `/a.php/extra` splits into SCRIPT_NAME and
    /// PATH_INFO. The rule itself lives in the core ([`SplitRule`]); a REGEX (two captures, like
    /// `fastcgi_split_path_info`) is compiled here, at configuration time.
    set_split_path_info, LocConf, |cf, a, conf| {
        if conf.split_path_info.is_some() {
            return fail(cf, format_args!("is duplicate"));
        }
        let value = text(&a[1]);
        conf.split_path_info = Some(match value.as_str() {
            "on" => SplitRule::Extension,
            "off" => SplitRule::Off,
            pattern => match SplitRule::regex(pattern) {
                Ok(rule) => rule,
                Err(why) => return fail(cf, format_args!("invalid value \"{value}\": {why} (expected on, off or a regex)")),
            },
        });
        CONF_OK
    }
);

setter!(
    /// `fephp_intercept_errors on | off;`: PHP responses with status >= 300 go through `error_page`.
    set_intercept_errors, LocConf, |cf, a, conf| { flag(cf, a, &mut conf.intercept_errors) }
);

fn time(cf: *mut ngx_conf_t, a: &[ngx_str_t], slot: &mut Option<Duration>) -> *mut c_char {
    if slot.is_some() {
        return fail(cf, format_args!("is duplicate"));
    }
    let mut value = a[1];
    // SAFETY: `value` is a valid ngx_str_t; ngx_parse_time only reads it.
    let ms = unsafe { ngx_parse_time(&mut value, 0) };
    if ms == NGX_ERROR as isize || ms <= 0 {
        return fail(cf, format_args!("invalid time \"{}\"", text(&a[1])));
    }
    *slot = Some(Duration::from_millis(ms as u64));
    CONF_OK
}

setter!(
    /// `fephp_connect_timeout TIME;`.
    set_connect_timeout, LocConf, |cf, a, conf| { time(cf, a, &mut conf.connect_timeout) }
);
setter!(
    /// `fephp_send_timeout TIME;`.
    set_send_timeout, LocConf, |cf, a, conf| { time(cf, a, &mut conf.send_timeout) }
);
setter!(
    /// `fephp_read_timeout TIME;`.
    set_read_timeout, LocConf, |cf, a, conf| { time(cf, a, &mut conf.read_timeout) }
);

fn number(cf: *mut ngx_conf_t, a: &[ngx_str_t], min: u64) -> Result<u64, *mut c_char> {
    let t = text(&a[1]);
    match t.parse::<u64>() {
        Ok(n) if n >= min && n <= u32::MAX as u64 => Ok(n),
        _ => Err(fail(cf, format_args!("invalid number \"{t}\" (expected an integer >= {min})"))),
    }
}

setter!(
    /// `fephp_max_connections N;` (old name: `fephp_keepalive`, deprecated: nginx's `keepalive`
    /// sizes an idle cache, this caps every open connection): most FastCGI connections per
    /// worker to one FPM address, busy or idle.
    set_max_connections, LocConf, |cf, a, conf| {
        if conf.max_connections.is_some() {
            return fail(cf, format_args!("is duplicate"));
        }
        if a[0].as_bytes() == b"fephp_keepalive" {
            ngx_conf_log_error!(
                NGX_LOG_WARN,
                cf,
                "the \"fephp_keepalive\" directive is deprecated, use the \"fephp_max_connections\" directive instead"
            );
        }
        match number(cf, a, 1) {
            Ok(n) => conf.max_connections = Some(n as usize),
            Err(e) => return e,
        }
        CONF_OK
    }
);

setter!(
    /// `fephp_buffer_size SIZE;`: most bytes a PHP response head (status line and headers) may
    /// take; a longer one is a 502, as nginx's `fastcgi_buffer_size` ("upstream sent too big
    /// header").
    set_buffer_size, LocConf, |cf, a, conf| {
        if conf.buffer_size.is_some() {
            return fail(cf, format_args!("is duplicate"));
        }
        let mut value = a[1];
        // SAFETY: `value` is a valid ngx_str_t; ngx_parse_size only reads it.
        let size = unsafe { ngx_parse_size(&mut value) };
        if size == NGX_ERROR as isize || size <= 0 {
            return fail(cf, format_args!("invalid size \"{}\"", text(&a[1])));
        }
        conf.buffer_size = Some(size as usize);
        CONF_OK
    }
);

setter!(
    /// `fephp_max_requests N;`: requests per FastCGI connection before it is closed (0 = no limit).
    set_max_requests, LocConf, |cf, a, conf| {
        if conf.max_requests.is_some() {
            return fail(cf, format_args!("is duplicate"));
        }
        match number(cf, a, 0) {
            Ok(n) => conf.max_requests = Some(n),
            Err(e) => return e,
        }
        CONF_OK
    }
);

setter!(
    /// `fephp_queue N [timeout=TIME];`: at most N requests wait for PHP (a free FPM connection,
    /// or the embedded PHP thread), each for at most TIME; more, or longer, get 503.
    set_queue, LocConf, |cf, a, conf| {
        if conf.queue.is_some() {
            return fail(cf, format_args!("is duplicate"));
        }
        let size = match number(cf, a, 1) {
            Ok(n) => n as usize,
            Err(e) => return e,
        };
        let mut timeout = None;
        if let Some(arg) = a.get(2) {
            let Some(value) = arg.as_bytes().strip_prefix(b"timeout=") else {
                return fail(cf, format_args!("invalid parameter \"{}\" (expected timeout=TIME)", text(arg)));
            };
            let mut value = ngx_str_t { len: value.len(), data: value.as_ptr() as *mut u8 };
            // SAFETY: `value` points into the directive's argument; ngx_parse_time only reads it.
            let ms = unsafe { ngx_parse_time(&mut value, 0) };
            if ms == NGX_ERROR as isize || ms <= 0 {
                return fail(cf, format_args!("invalid time in \"{}\"", text(arg)));
            }
            timeout = Some(Duration::from_millis(ms as u64));
        }
        conf.queue = Some(Queue { size, timeout });
        CONF_OK
    }
);

setter!(
    /// `fephp_status;`: this location reports the worker's engines (health JSON or Prometheus).
    set_status, LocConf, |cf, _a, _conf| {
        // SAFETY: `cf` is a location context here.
        let Some(clcf) = NgxHttpCoreModule::location_conf_mut(unsafe { &*cf }) else {
            return CONF_ERROR;
        };
        clcf.handler = Some(crate::status::fephp_status_handler);
        CONF_OK
    }
);

/// `fephp_php_value` / `fephp_php_admin_value NAME VALUE`: checked here (name syntax, no NUL or
/// line break in the value, a name once per level); whether PHP knows the name is only known
/// once PHP runs (logged by the worker, then ignored, like php-fpm).
fn php_value(cf: *mut ngx_conf_t, a: &[ngx_str_t], conf: &mut LocConf, admin: bool) -> *mut c_char {
    let (name, value) = (text(&a[1]), text(&a[2]));
    if let Err(e) = RequestIni::check(&name, &value) {
        return fail(cf, format_args!("{e}"));
    }
    let list = conf.php_values.get_or_insert_with(Vec::new);
    if list.iter().any(|e| e.name == name) {
        return fail(cf, format_args!("\"{name}\" is already set at this level"));
    }
    list.push(IniSetting { name, value, admin });
    CONF_OK
}

setter!(
    /// `fephp_php_value NAME VALUE;`: an ini setting of embedded PHP for each request of this
    /// level (php-fpm's `php_value[NAME] = VALUE`).
    set_php_value, LocConf, |cf, a, conf| { php_value(cf, a, conf, false) }
);

setter!(
    /// `fephp_php_admin_value NAME VALUE;`: the same, locked against `ini_set()` (php-fpm's
    /// `php_admin_value[NAME] = VALUE`).
    set_php_admin_value, LocConf, |cf, a, conf| { php_value(cf, a, conf, true) }
);

setter!(
    /// `fephp_php_ini NAME VALUE;`: an ini setting of the embedded PHP (http level).
    set_php_ini, MainConf, |cf, a, conf| {
        let name = text(&a[1]);
        if name.is_empty() || name.bytes().any(|b| b.is_ascii_whitespace() || b == b'=') {
            return fail(cf, format_args!("invalid ini name \"{name}\""));
        }
        conf.php_ini.push((name, text(&a[2])));
        CONF_OK
    }
);

setter!(
    /// `fephp_php_ini_file PATH | off;`: the php.ini of the embedded PHP (http level). A relative
    /// PATH is relative to nginx's configuration prefix (like `include`); the file must be
    /// readable now (`nginx -t` fails naming it otherwise).
    set_php_ini_file, MainConf, |cf, a, conf| {
        if conf.php_ini_file.is_some() {
            return fail(cf, format_args!("is duplicate"));
        }
        let mut ini = IniFile::from_setting(&text(&a[1]));
        if let IniFile::File(path) = &mut ini {
            if path.is_relative() && !path.as_os_str().is_empty() {
                // SAFETY: `cf` and its cycle are valid while the configuration is parsed.
                let prefix = unsafe { (*(*cf).cycle).conf_prefix };
                *path = std::path::Path::new(&text(&prefix)).join(&*path);
            }
        }
        if let Err(e) = ini.check() {
            return fail(cf, format_args!("{e}"));
        }
        conf.php_ini_file = Some(ini);
        CONF_OK
    }
);

setter!(
    /// `fephp_next_upstream error | timeout | off ...;`: which failures before the response head
    /// send the request to the next server of an upstream block.
    set_next_upstream, LocConf, |cf, a, conf| {
        if conf.next_upstream.is_some() {
            return fail(cf, format_args!("is duplicate"));
        }
        let mut next = NextUpstream { error: false, timeout: false };
        for arg in &a[1..] {
            match arg.as_bytes() {
                b"error" => next.error = true,
                b"timeout" => next.timeout = true,
                b"off" if a.len() == 2 => {}
                _ => return fail(cf, format_args!("invalid value \"{}\" (expected error, timeout or off)", text(arg))),
            }
        }
        conf.next_upstream = Some(next);
        CONF_OK
    }
);

setter!(
    /// `fephp_slowlog_timeout TIME;` (http level): embedded PHP writes the backtrace of a request
    /// running longer than TIME, once (`0` turns the slow log off, the default).
    set_slowlog_timeout, MainConf, |cf, a, conf| {
        if conf.slowlog_timeout.is_some() {
            return fail(cf, format_args!("is duplicate"));
        }
        let mut value = a[1];
        // SAFETY: `value` is a valid ngx_str_t; ngx_parse_time only reads it.
        let ms = unsafe { ngx_parse_time(&mut value, 0) };
        if ms == NGX_ERROR as isize || ms < 0 {
            return fail(cf, format_args!("invalid time \"{}\"", text(&a[1])));
        }
        conf.slowlog_timeout = Some(Duration::from_millis(ms as u64));
        CONF_OK
    }
);

setter!(
    /// `fephp_slowlog FILE | stderr;` (http level): where the slow log goes (default: stderr,
    /// which is nginx's error log in a worker). A relative FILE is relative to nginx's prefix.
    set_slowlog, MainConf, |cf, a, conf| {
        if conf.slowlog.is_some() {
            return fail(cf, format_args!("is duplicate"));
        }
        let value = text(&a[1]);
        if value.is_empty() || value.contains('\0') {
            return fail(cf, format_args!("invalid value \"{value}\" (expected a file or stderr)"));
        }
        conf.slowlog = Some(if value == "stderr" {
            None
        } else {
            let mut path = std::path::PathBuf::from(&value);
            if path.is_relative() {
                // SAFETY: `cf` and its cycle are valid while the configuration is parsed.
                let prefix = unsafe { (*(*cf).cycle).prefix };
                path = std::path::Path::new(&text(&prefix)).join(path);
            }
            Some(path)
        });
        CONF_OK
    }
);

setter!(
    /// `fephp_next_upstream_tries N;`: attempts per request over an upstream block (0 = no limit).
    set_next_upstream_tries, LocConf, |cf, a, conf| {
        if conf.next_upstream_tries.is_some() {
            return fail(cf, format_args!("is duplicate"));
        }
        match number(cf, a, 0) {
            Ok(n) => conf.next_upstream_tries = Some(n as usize),
            Err(e) => return e,
        }
        CONF_OK
    }
);

/// A `fephp_pass` value naming an upstream block: not `unix:…`, no port, no path.
fn is_upstream_name(value: &str) -> bool {
    !value.is_empty() && !value.contains([':', '/']) && !value.bytes().any(|b| b.is_ascii_whitespace())
}

/// True when `host:port` resolves to at least one address (blocking: configuration time only).
fn resolves(host_port: &str) -> bool {
    use std::net::ToSocketAddrs;
    host_port.to_socket_addrs().is_ok_and(|mut addrs| addrs.next().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_timeouts_default_and_queue_follows_connect() {
        let mut conf = LocConf::default();
        let t = conf.timeouts();
        assert_eq!((t.connect, t.send, t.read, t.queue), (DEFAULT_TIMEOUT, DEFAULT_TIMEOUT, DEFAULT_TIMEOUT, DEFAULT_TIMEOUT));
        conf.connect_timeout = Some(Duration::from_secs(3));
        assert_eq!(conf.timeouts().queue, Duration::from_secs(3));
        conf.queue = Some(Queue { size: 1, timeout: Some(Duration::from_secs(1)) });
        assert_eq!(conf.timeouts().queue, Duration::from_secs(1));
    }

    #[test]
    fn one_pool_per_address_explicit_settings_must_agree() {
        let address = Address::parse("127.0.0.1:9000").unwrap();
        let mut spec = PoolSpec { address: address.clone(), max_connections: None, max_requests: None, queue_size: None };
        let cfg = spec.pool_config();
        assert_eq!((cfg.size, cfg.max_requests, cfg.queue_size), (16, 0, 1024));
        assert_eq!(cfg.address, address);
        let mut a = LocConf::default();
        assert_eq!(spec.take(&a), Ok(()));
        a.max_connections = Some(4);
        assert_eq!(spec.take(&a), Ok(()));
        assert_eq!(spec.take(&LocConf::default()), Ok(()), "a location that sets nothing takes the pool's");
        a.max_connections = Some(5);
        assert_eq!(spec.take(&a), Err("fephp_max_connections"));
        assert_eq!(spec.pool_config().size, 4);
    }

    #[test]
    fn upstream_names() {
        assert!(is_upstream_name("php_backends"));
        for not in ["", "unix:/run/php.sock", "127.0.0.1:9000", "a/b", "a b"] {
            assert!(!is_upstream_name(not), "{not}");
        }
    }

    #[test]
    fn inherit_only_fills_unset() {
        let mut a = Some(1);
        inherit(&mut a, &Some(2));
        assert_eq!(a, Some(1));
        let mut b = None;
        inherit(&mut b, &Some(2));
        assert_eq!(b, Some(2));
    }
}
