//! `config.toml`: the harness's and the C ABI's configuration, parsed with serde + toml.
//!
//! Unknown keys and bad values are errors that name the dotted key and the reason
//! ([`ConfigError`]). See the committed `config.toml` for every key, documented.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{ConfigError, IniFileError};

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[server]`: where the harness listens and which files it serves.
    pub server: ServerConfig,
    /// `[php]`: which backend runs PHP and its limits.
    #[serde(default)]
    pub php: PhpConfig,
}

/// `[server]` section.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// `listen`: socket address of the harness (`127.0.0.1:8080`).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// `document_root`: directory holding the PHP scripts. Relative paths are relative to the
    /// config file's directory.
    pub document_root: PathBuf,
    /// `index`: file served for a request that names a directory.
    #[serde(default = "default_index")]
    pub index: String,
    /// `script_extensions`: extensions allowed to run as PHP (FPM's `security.limit_extensions`).
    #[serde(default = "default_extensions")]
    pub script_extensions: Vec<String>,
    /// `split_path_info`: split `/a.php/extra` into SCRIPT_NAME `/a.php` + PATH_INFO `/extra`.
    #[serde(default = "default_true")]
    pub split_path_info: bool,
    /// `allow_symlinks_outside_root`: like nginx `disable_symlinks off` (default: refuse).
    #[serde(default)]
    pub allow_symlinks_outside_root: bool,
    /// `https`: set `HTTPS=on` in the params (when a TLS terminator sits in front).
    #[serde(default)]
    pub https: bool,
    /// `server_name`: the `SERVER_NAME` PHP sees (nginx's `server_name`). Without it, the
    /// request's Host header without port — which the client chooses: set it wherever PHP
    /// builds links or password-reset mails from `SERVER_NAME`.
    #[serde(default)]
    pub server_name: Option<String>,
    /// `shutdown_timeout_ms`: on SIGTERM, how long in-flight requests may take to finish.
    #[serde(default = "default_shutdown_ms")]
    pub shutdown_timeout_ms: u64,
}

/// `[php.executors_dynamic]`: the dynamic executor pool's settings.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DynamicPool {
    /// Executors started at first.
    pub start: Option<u32>,
    /// Fewer idle executors than this: more are started.
    pub min_spare: Option<u32>,
    /// More idle executors than this: the longest idle are stopped.
    pub max_spare: Option<u32>,
    /// An executor idle this long is stopped while more than `min_spare` are idle.
    pub idle_timeout_ms: Option<u64>,
}

/// `[php]` section.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PhpConfig {
    /// `use_fpm`: `true` → PHP-FPM over FastCGI; `false` → embedded libphp.
    #[serde(default)]
    pub use_fpm: bool,
    /// `fpm_socket`: `unix:/path/to.sock` or `host:port` of PHP-FPM.
    #[serde(default = "default_fpm_socket")]
    pub fpm_socket: String,
    /// `worker_pool_size`: most FastCGI connections open at once (FPM), per process.
    #[serde(default = "default_pool_size")]
    pub worker_pool_size: u32,
    /// `worker_max_requests`: requests an embedded worker process serves before it is replaced;
    /// 0 = unlimited. (Before `connection_max_requests` existed it also capped FPM connections;
    /// with `use_fpm = true` and no `connection_max_requests` it still does, with a warning.)
    #[serde(default)]
    pub worker_max_requests: u64,
    /// `connection_max_requests`: requests one FastCGI connection serves before it is closed
    /// (FPM; nginx's `fephp_max_requests`); 0 = unlimited.
    #[serde(default)]
    pub connection_max_requests: Option<u64>,
    /// `queue_size`: requests that may wait for a busy backend before new ones get 503.
    #[serde(default = "default_queue_size")]
    pub queue_size: u32,
    /// `queue_timeout_ms`: how long a request waits in the queue before 503 (default: the
    /// connect timeout, as `fephp_queue`).
    #[serde(default)]
    pub queue_timeout_ms: Option<u64>,
    /// `connect_timeout_ms`: FastCGI connect timeout (→ 504).
    #[serde(default = "default_io_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// `send_timeout_ms`: FastCGI send timeout, between two successful writes (→ 504).
    #[serde(default = "default_io_timeout_ms")]
    pub send_timeout_ms: u64,
    /// `read_timeout_ms`: FastCGI read timeout, between two successful reads (→ 504).
    #[serde(default = "default_io_timeout_ms")]
    pub read_timeout_ms: u64,
    /// `executors`: with `use_fpm = false`, N > 0 runs embedded PHP in a pool of N executor
    /// processes behind one shared queue ([`crate::executor`]) instead of one PHP thread per
    /// worker process; 0 (default) keeps PHP in the serving processes.
    #[serde(default)]
    pub executors: u32,
    /// `request_terminate_timeout_ms`: executors only: a request running longer gets its
    /// executor killed (504) and replaced; 0 = never.
    #[serde(default)]
    pub request_terminate_timeout_ms: u64,
    /// `executor_transport`: `"shm"` (default: shared-memory slots, futex / eventfd wakes) or
    /// `"socket"` (a unix-socket connection per request); nginx: `fephp_executor_transport`.
    #[serde(default)]
    pub executor_transport: Option<String>,
    /// `executor_user` / `executor_group`: executors switch to this user (and group; default:
    /// the user's primary group) after the fork; needs root (nginx: `fephp_executor_user`).
    #[serde(default)]
    pub executor_user: Option<String>,
    /// See `executor_user`.
    #[serde(default)]
    pub executor_group: Option<String>,
    /// `executor_binary`: the `fe-php` binary the supervisor execs, so PHP starts from a fresh
    /// address space (nginx: `fephp_executor_binary`); required by the C ABI (a forked copy of a
    /// multi-threaded host is not safe to run PHP in).
    #[serde(default)]
    pub executor_binary: Option<PathBuf>,
    /// `[php.executors_dynamic]`: a dynamic pool of at most `executors` (php-fpm's
    /// `pm = dynamic`): `start`, `min_spare`, `max_spare`, `idle_timeout_ms`; unset keys take
    /// php-fpm's defaults.
    #[serde(default)]
    pub executors_dynamic: Option<DynamicPool>,
    /// `worker_script`: executors only: worker mode ([`crate::php::worker`]; nginx:
    /// `fephp_worker`): every executor runs this script once, and it serves every request
    /// through `fephp_handle_request()`. Absolute path.
    #[serde(default)]
    pub worker_script: Option<std::path::PathBuf>,
    /// `worker_watch`: glob patterns; a change under them restarts the workers (development).
    #[serde(default)]
    pub worker_watch: Vec<String>,
    /// `ini_file`: the php.ini of the embedded backend: absent = the one PHP was built with
    /// (Debian: `/etc/php/8.2/embed/php.ini` + `conf.d/`), a path, or `"off"` / `false` for none.
    #[serde(default)]
    pub ini_file: IniFile,
    /// `[php.ini]`: ini settings for the embedded backend, applied over `ini_file`.
    #[serde(default)]
    pub ini: BTreeMap<String, IniValue>,
    /// `slowlog_timeout_ms`: an embedded request running longer (wall clock) gets its PHP
    /// backtrace written once to `slowlog` (0 = no slow log; nginx: `fephp_slowlog_timeout`).
    #[serde(default)]
    pub slowlog_timeout_ms: u64,
    /// `slowlog`: the file slow-log backtraces are appended to, or `"stderr"` (the default).
    #[serde(default = "default_slowlog")]
    pub slowlog: String,
    /// `[php.values]`: ini settings applied to every request of the embedded backend and undone
    /// after it, like php-fpm's `php_value[]` (nginx: `fephp_php_value`).
    #[serde(default)]
    pub values: BTreeMap<String, IniValue>,
    /// `[php.admin_values]`: the same, and `ini_set()` cannot change them, like php-fpm's
    /// `php_admin_value[]` (nginx: `fephp_php_admin_value`).
    #[serde(default)]
    pub admin_values: BTreeMap<String, IniValue>,
}

/// One per-request ini setting of embedded PHP (see [`RequestIni`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IniSetting {
    /// The ini name (`memory_limit`, `open_basedir`, ...).
    pub name: String,
    /// Its value, as php.ini text.
    pub value: String,
    /// `php_admin_value`: locked for the request (`ini_set()` and `.user.ini` cannot change it).
    pub admin: bool,
}

/// ini settings applied to each request of embedded PHP (before PHP's request startup, so
/// `upload_max_filesize` or `post_max_size` apply to the request body) and undone after it:
/// php-fpm's `php_value[]` / `php_admin_value[]`, per nginx location (`fephp_php_value`,
/// `fephp_php_admin_value`) or for `fe-php serve` (`[php.values]`, `[php.admin_values]`).
/// Applied in order: plain values first, then admin values. A name PHP does not know, or a value
/// PHP refuses, is logged once per process (`[warn]`) and ignored, as php-fpm does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct RequestIni {
    /// The settings, plain values before admin values.
    pub entries: Vec<IniSetting>,
}

impl RequestIni {
    /// `values` then `admin_values`, each in the given order; a name in both is set by the admin value.
    pub fn new(values: &[(String, String)], admin_values: &[(String, String)]) -> RequestIni {
        let plain = values.iter().map(|(n, v)| IniSetting { name: n.clone(), value: v.clone(), admin: false });
        let admin = admin_values.iter().map(|(n, v)| IniSetting { name: n.clone(), value: v.clone(), admin: true });
        RequestIni { entries: plain.chain(admin).collect() }
    }

    /// True when there is nothing to apply.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Checks one name and value as `fephp_php_value` and `[php.values]` take them: a name of
    /// letters, digits, `_`, `.` and `-`; a value without NUL or line break.
    pub fn check(name: &str, value: &str) -> Result<(), String> {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-') {
            return Err(format!("invalid ini name \"{name}\""));
        }
        if value.bytes().any(|b| b == 0 || b == b'\n' || b == b'\r') {
            return Err(format!("invalid value for \"{name}\": NUL or line break"));
        }
        Ok(())
    }
}

/// Which php.ini the embedded PHP loads: `php.ini_file` here, `fephp_php_ini_file` in nginx.
/// Settings given one by one (`[php.ini]`, `fephp_php_ini`) always apply on top.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum IniFile {
    /// The php.ini and scan directory libphp was built with, found the way PHP's own SAPIs find
    /// them (Debian's embed SAPI: `/etc/php/8.2/embed/php.ini` and `/etc/php/8.2/embed/conf.d`;
    /// the `PHPRC` and `PHP_INI_SCAN_DIR` environment variables apply as for every PHP SAPI).
    /// Every extension enabled with Debian's `phpenmod` (what `apt-get install php8.2-…` does)
    /// is loaded, like in php-fpm. The default.
    #[default]
    Distribution,
    /// No php.ini and no scan directory: PHP's built-in defaults, plus opcache and
    /// php.ini-production's safe choices (see [`crate::php`]).
    Off,
    /// This file, like `php -c FILE` (PHP still scans the directory it was built with, unless
    /// `PHP_INI_SCAN_DIR` says otherwise). It must exist and be readable when PHP starts.
    File(PathBuf),
}

impl IniFile {
    /// The value of a setting written as text (`fephp_php_ini_file`): `off` means
    /// [`IniFile::Off`], anything else is a file name.
    pub fn from_setting(value: &str) -> IniFile {
        if value == "off" {
            IniFile::Off
        } else {
            IniFile::File(PathBuf::from(value))
        }
    }

    /// Checks that a named file ([`IniFile::File`]) is a regular file this process can read
    /// (PHP itself would silently run without it). Always Ok for the other variants.
    pub fn check(&self) -> Result<(), IniFileError> {
        let IniFile::File(path) = self else { return Ok(()) };
        let unreadable = |source| IniFileError::Unreadable { path: path.clone(), source };
        if path.as_os_str().is_empty() {
            return Err(IniFileError::Empty);
        }
        let file = std::fs::File::open(path).map_err(unreadable)?;
        let meta = file.metadata().map_err(unreadable)?;
        if !meta.is_file() {
            return Err(IniFileError::NotAFile { path: path.clone() });
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for IniFile {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Flag(bool),
            Text(String),
        }
        match Raw::deserialize(d) {
            Ok(Raw::Flag(false)) => Ok(IniFile::Off),
            Ok(Raw::Text(s)) => Ok(IniFile::from_setting(&s)),
            _ => Err(serde::de::Error::custom("expected a php.ini path, \"off\" or false")),
        }
    }
}

/// A `[php.ini]` value: TOML strings, integers, floats and booleans are accepted. A dotted
/// key (`opcache.enable = 1`, which TOML reads as a nested table) is flattened back to the
/// ini name by [`PhpConfig::ini_entries`].
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum IniValue {
    /// `memory_limit = "128M"`
    Str(String),
    /// `max_execution_time = 30`
    Int(i64),
    /// `precision = 14.0`
    Float(f64),
    /// `display_errors = false`
    Bool(bool),
    /// `opcache.enable = 1` (TOML's dotted key) → `{"opcache": {"enable": 1}}`
    Table(BTreeMap<String, IniValue>),
}

impl IniValue {
    /// The value as php.ini text (`true` → `1`, `false` → `0`); `None` for a table.
    pub fn to_ini_string(&self) -> Option<String> {
        Some(match self {
            IniValue::Str(s) => s.clone(),
            IniValue::Int(i) => i.to_string(),
            IniValue::Float(f) => f.to_string(),
            IniValue::Bool(b) => if *b { "1" } else { "0" }.to_string(),
            IniValue::Table(_) => return None,
        })
    }
}

fn flatten_ini(prefix: &str, table: &BTreeMap<String, IniValue>, out: &mut Vec<(String, String)>) {
    for (key, value) in table {
        let name = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        match value {
            IniValue::Table(inner) => flatten_ini(&name, inner, out),
            scalar => out.extend(scalar.to_ini_string().map(|v| (name, v))),
        }
    }
}

/// The one default of every PHP timeout (connect, send, read, and the queue wait, which
/// defaults to the connect timeout): nginx's `fastcgi_*_timeout` default, used by the harness,
/// the C ABI and the nginx module alike.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Default index file (`server.index`, `fephp_index`).
pub const DEFAULT_INDEX: &str = "index.php";
/// Default number of FastCGI connections per pool (`php.worker_pool_size`,
/// `fephp_max_connections`).
pub const DEFAULT_MAX_CONNECTIONS: usize = 16;
/// Default number of requests that may wait for PHP (`php.queue_size`, `fephp_queue`).
pub const DEFAULT_QUEUE_SIZE: usize = 1024;

fn default_listen() -> String { "127.0.0.1:8080".into() }
fn default_index() -> String { DEFAULT_INDEX.into() }
fn default_extensions() -> Vec<String> { vec![".php".into()] }
fn default_true() -> bool { true }
fn default_shutdown_ms() -> u64 { 10_000 }
fn default_fpm_socket() -> String { "unix:/run/php/php8.2-fpm.sock".into() }
fn default_pool_size() -> u32 { DEFAULT_MAX_CONNECTIONS as u32 }
fn default_queue_size() -> u32 { DEFAULT_QUEUE_SIZE as u32 }
fn default_io_timeout_ms() -> u64 { DEFAULT_TIMEOUT.as_millis() as u64 }
fn default_slowlog() -> String { "stderr".into() }

impl Default for PhpConfig {
    fn default() -> Self {
        PhpConfig {
            use_fpm: false,
            fpm_socket: default_fpm_socket(),
            worker_pool_size: default_pool_size(),
            worker_max_requests: 0,
            connection_max_requests: None,
            queue_size: default_queue_size(),
            queue_timeout_ms: None,
            connect_timeout_ms: default_io_timeout_ms(),
            send_timeout_ms: default_io_timeout_ms(),
            read_timeout_ms: default_io_timeout_ms(),
            executors: 0,
            request_terminate_timeout_ms: 0,
            executor_transport: None,
            executor_user: None,
            executor_group: None,
            executor_binary: None,
            executors_dynamic: None,
            worker_script: None,
            worker_watch: Vec::new(),
            ini_file: IniFile::Distribution,
            ini: BTreeMap::new(),
            values: BTreeMap::new(),
            admin_values: BTreeMap::new(),
            slowlog_timeout_ms: 0,
            slowlog: default_slowlog(),
        }
    }
}

impl PhpConfig {
    /// The `[php.ini]` settings as (ini name, value) pairs, dotted keys flattened.
    pub fn ini_entries(&self) -> Vec<(String, String)> {
        let mut out = Vec::with_capacity(self.ini.len());
        flatten_ini("", &self.ini, &mut out);
        out
    }

    /// `[php.values]` and `[php.admin_values]` as one [`RequestIni`] (dotted keys flattened).
    pub fn request_ini(&self) -> RequestIni {
        let (mut values, mut admin) = (Vec::new(), Vec::new());
        flatten_ini("", &self.values, &mut values);
        flatten_ini("", &self.admin_values, &mut admin);
        RequestIni::new(&values, &admin)
    }

    /// `connect_timeout_ms` as a [`Duration`].
    pub fn connect_timeout(&self) -> Duration { Duration::from_millis(self.connect_timeout_ms) }
    /// `send_timeout_ms` as a [`Duration`].
    pub fn send_timeout(&self) -> Duration { Duration::from_millis(self.send_timeout_ms) }
    /// `read_timeout_ms` as a [`Duration`].
    pub fn read_timeout(&self) -> Duration { Duration::from_millis(self.read_timeout_ms) }
    /// `queue_timeout_ms` as a [`Duration`] (default: the connect timeout).
    pub fn queue_timeout(&self) -> Duration { Duration::from_millis(self.queue_timeout_ms.unwrap_or(self.connect_timeout_ms)) }
    /// Requests per FastCGI connection: `connection_max_requests`, else (the old meaning, with a
    /// warning) `worker_max_requests`.
    pub fn connection_max_requests(&self) -> u64 {
        match self.connection_max_requests {
            Some(n) => n,
            None if self.worker_max_requests > 0 => {
                crate::log!(Warn, "config", "php.worker_max_requests with use_fpm = true is deprecated: it caps FastCGI connections, use php.connection_max_requests");
                self.worker_max_requests
            }
            None => 0,
        }
    }
}

impl Config {
    /// Parses and validates a TOML document. Relative paths stay relative (see [`Config::load`]).
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
        config.validate()?;
        Ok(config)
    }

    /// Reads, parses and validates a file; relative `document_root` / `ini_file` are resolved
    /// against the file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new("", format!("cannot read {}: {e}", path.display())))?;
        let mut config = Config::parse(&text)?;
        let base = path.parent().unwrap_or(Path::new("."));
        if config.server.document_root.is_relative() {
            config.server.document_root = base.join(&config.server.document_root);
        }
        if let IniFile::File(ini) = &config.php.ini_file {
            if ini.is_relative() && !ini.as_os_str().is_empty() {
                config.php.ini_file = IniFile::File(base.join(ini));
            }
        }
        Ok(config)
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.server.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::new(
                "server.listen",
                format!("`{}` is not an IP:port socket address", self.server.listen),
            ));
        }
        if self.server.document_root.as_os_str().is_empty() {
            return Err(ConfigError::new("server.document_root", "must not be empty"));
        }
        if self.server.index.is_empty() || self.server.index.contains('/') {
            return Err(ConfigError::new("server.index", "must be a file name without `/`"));
        }
        if self.server.script_extensions.is_empty() {
            return Err(ConfigError::new("server.script_extensions", "must list at least one extension"));
        }
        for ext in &self.server.script_extensions {
            if !ext.starts_with('.') || ext.len() < 2 || ext.contains('/') {
                return Err(ConfigError::new(
                    "server.script_extensions",
                    format!("`{ext}` must look like `.php`"),
                ));
            }
        }
        let php = &self.php;
        if php.use_fpm {
            crate::address::Address::parse(&php.fpm_socket)
                .map_err(|reason| ConfigError::new("php.fpm_socket", reason))?;
        }
        if php.slowlog.is_empty() || php.slowlog.contains('\0') {
            return Err(ConfigError::new("php.slowlog", "must be a file path or \"stderr\""));
        }
        for (table, key) in [(&php.values, "php.values"), (&php.admin_values, "php.admin_values")] {
            let mut flat = Vec::new();
            flatten_ini("", table, &mut flat);
            for (name, value) in &flat {
                RequestIni::check(name, value).map_err(|reason| ConfigError::new(key, reason))?;
            }
        }
        let positive = [
            ("php.worker_pool_size", php.worker_pool_size as u64),
            ("php.connect_timeout_ms", php.connect_timeout_ms),
            ("php.send_timeout_ms", php.send_timeout_ms),
            ("php.read_timeout_ms", php.read_timeout_ms),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(ConfigError::new(key, "must be greater than 0"));
            }
        }
        if php.worker_pool_size > 65_535 {
            return Err(ConfigError::new("php.worker_pool_size", "must be at most 65535"));
        }
        if !php.use_fpm {
            php.ini_file.check().map_err(|e| ConfigError::new("php.ini_file", e.to_string()))?;
        }
        if let Some(script) = &php.worker_script {
            if php.use_fpm || php.executors == 0 {
                return Err(ConfigError::new("php.worker_script", "needs use_fpm = false and executors > 0"));
            }
            if !script.is_absolute() || !script.is_file() {
                return Err(ConfigError::new("php.worker_script", format!("\"{}\" is not an absolute path to a file", script.display())));
            }
        } else if !php.worker_watch.is_empty() {
            return Err(ConfigError::new("php.worker_watch", "needs php.worker_script"));
        }
        Ok(())
    }
}

/// Turns a toml/serde error into a [`ConfigError`] naming the dotted key at the error's span.
fn toml_error(text: &str, err: &toml::de::Error) -> ConfigError {
    let reason = err.message().trim().to_string();
    let key = err.span().map(|span| key_at(text, span.start)).unwrap_or_default();
    ConfigError::new(key, reason)
}

/// The dotted key (`section.key`) whose line holds byte offset `at`.
fn key_at(text: &str, at: usize) -> String {
    let at = at.min(text.len());
    let mut section = String::new();
    let mut line_start = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        let within = at >= line_start && at < line_start + line.len().max(1);
        if trimmed.starts_with('[') && trimmed.ends_with(']') {
            section = trimmed.trim_matches(|c| c == '[' || c == ']').trim().to_string();
            if within {
                return section;
            }
        } else if within {
            let key = trimmed.split('=').next().unwrap_or("").trim().trim_matches('"');
            return match (section.is_empty(), key.is_empty()) {
                (_, true) => section,
                (true, false) => key.to_string(),
                (false, false) => format!("{section}.{key}"),
            };
        }
        line_start += line.len();
    }
    section
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "[server]\ndocument_root = \"/srv/app\"\n";

    #[test]
    fn minimal_config_takes_defaults() {
        let c = Config::parse(MINIMAL).unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:8080");
        assert_eq!(c.server.index, "index.php");
        assert!(!c.php.use_fpm);
        assert_eq!(c.php.worker_pool_size, 16);
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::parse("[server]\ndocument_root = \"/x\"\nlisten_port = 80\n").unwrap_err();
        assert_eq!(err.key, "server.listen_port");
        assert!(err.reason.contains("unknown field"), "{err}");
    }

    #[test]
    fn wrong_type_is_named() {
        let text = "[server]\ndocument_root = \"/x\"\n[php]\nworker_pool_size = \"many\"\n";
        let err = Config::parse(text).unwrap_err();
        assert_eq!(err.key, "php.worker_pool_size");
        assert!(err.reason.contains("invalid type"), "{err}");
    }

    #[test]
    fn bad_values_are_named() {
        let cases = [
            ("[server]\ndocument_root=\"/x\"\nlisten=\"nope\"\n", "server.listen"),
            ("[server]\ndocument_root=\"/x\"\nindex=\"a/b\"\n", "server.index"),
            ("[server]\ndocument_root=\"/x\"\nscript_extensions=[\"php\"]\n", "server.script_extensions"),
            ("[server]\ndocument_root=\"/x\"\n[php]\nworker_pool_size=0\n", "php.worker_pool_size"),
            ("[server]\ndocument_root=\"/x\"\n[php]\nuse_fpm=true\nfpm_socket=\"nowhere\"\n", "php.fpm_socket"),
            ("[server]\ndocument_root=\"/x\"\n[php]\nread_timeout_ms=0\n", "php.read_timeout_ms"),
        ];
        for (text, key) in cases {
            let err = Config::parse(text).unwrap_err();
            assert_eq!(err.key, key, "{text}: {err}");
        }
    }

    #[test]
    fn worker_script_needs_executors_and_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("worker.php");
        std::fs::write(&script, "<?php").unwrap();
        let ok = format!("{MINIMAL}[php]\nexecutors = 2\nworker_script = \"{}\"\nworker_watch = [\"/srv/*.php\"]\n", script.display());
        let c = Config::parse(&ok).unwrap();
        assert_eq!(c.php.worker_script.as_deref(), Some(script.as_path()));
        assert_eq!(c.php.worker_watch, ["/srv/*.php"]);
        let cases = [
            format!("{MINIMAL}[php]\nworker_script = \"{}\"\n", script.display()),
            format!("{MINIMAL}[php]\nexecutors = 2\nworker_script = \"worker.php\"\n"),
            format!("{MINIMAL}[php]\nexecutors = 2\nworker_script = \"/nonexistent/w.php\"\n"),
        ];
        for text in &cases {
            assert_eq!(Config::parse(text).unwrap_err().key, "php.worker_script", "{text}");
        }
        let err = Config::parse(&format!("{MINIMAL}[php]\nworker_watch = [\"/x\"]\n")).unwrap_err();
        assert_eq!(err.key, "php.worker_watch");
    }

    #[test]
    fn missing_section_is_reported() {
        let err = Config::parse("[php]\nuse_fpm = true\n").unwrap_err();
        assert!(err.reason.contains("server"), "{err}");
    }

    #[test]
    fn ini_file_is_distribution_off_or_a_readable_file() {
        let php = |v: &str| format!("[server]\ndocument_root=\"/x\"\n[php]\n{v}\n");
        assert_eq!(Config::parse(MINIMAL).unwrap().php.ini_file, IniFile::Distribution);
        assert_eq!(Config::parse(&php("ini_file = \"off\"")).unwrap().php.ini_file, IniFile::Off);
        assert_eq!(Config::parse(&php("ini_file = false")).unwrap().php.ini_file, IniFile::Off);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("php.ini");
        std::fs::write(&file, "memory_limit = 64M\n").unwrap();
        let ok = Config::parse(&php(&format!("ini_file = \"{}\"", file.display()))).unwrap();
        assert_eq!(ok.php.ini_file, IniFile::File(file.clone()));
        for (value, says) in [
            (format!("ini_file = \"{}/missing.ini\"", dir.path().display()), "missing.ini"),
            (format!("ini_file = \"{}\"", dir.path().display()), "not a regular file"),
            ("ini_file = \"\"".to_string(), "empty"),
            ("ini_file = true".to_string(), "\"off\" or false"),
        ] {
            let err = Config::parse(&php(&value)).unwrap_err();
            assert_eq!(err.key, "php.ini_file", "{value}: {err}");
            assert!(err.reason.contains(says), "{value}: {err}");
        }
        // FPM does not read it.
        let fpm = php(&format!("use_fpm = true\nini_file = \"{}/missing.ini\"", dir.path().display()));
        assert!(Config::parse(&fpm).is_ok());
    }

    #[test]
    fn ini_table_accepts_scalars() {
        let text = "[server]\ndocument_root=\"/x\"\n[php.ini]\nmemory_limit=\"64M\"\nmax_execution_time=5\ndisplay_errors=false\nopcache.enable=1\n\"session.save_path\"=\"/tmp\"\n";
        let c = Config::parse(text).unwrap();
        let entries = c.php.ini_entries();
        let get = |k: &str| entries.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("memory_limit"), Some("64M"));
        assert_eq!(get("max_execution_time"), Some("5"));
        assert_eq!(get("display_errors"), Some("0"));
        assert_eq!(get("opcache.enable"), Some("1"));
        assert_eq!(get("session.save_path"), Some("/tmp"));
    }

    #[test]
    fn php_values_become_one_request_ini_admin_last_and_bad_names_are_refused() {
        let text = "[server]\ndocument_root=\"/x\"\n[php.admin_values]\nopen_basedir=\"/x:/tmp\"\n[php.values]\nmemory_limit=\"96M\"\nsession.gc_maxlifetime=60\n";
        let c = Config::parse(text).unwrap();
        let ini = c.php.request_ini();
        let got: Vec<_> = ini.entries.iter().map(|e| (e.name.as_str(), e.value.as_str(), e.admin)).collect();
        assert_eq!(
            got,
            [("memory_limit", "96M", false), ("session.gc_maxlifetime", "60", false), ("open_basedir", "/x:/tmp", true)]
        );
        let bad = Config::parse("[server]\ndocument_root=\"/x\"\n[php.values]\n\"a b\"=1\n").unwrap_err();
        assert!(bad.to_string().contains("php.values"), "{bad}");
        assert!(RequestIni::check("x", "a\nb").is_err());
        assert!(RequestIni::check("opcache.jit-buffer_size", "64M").is_ok());
    }

    #[test]
    fn slowlog_keys() {
        let c = Config::parse("[server]\ndocument_root=\"/x\"\n[php]\nslowlog_timeout_ms=1500\nslowlog=\"/tmp/slow.log\"\n").unwrap();
        assert_eq!((c.php.slowlog_timeout_ms, c.php.slowlog.as_str()), (1500, "/tmp/slow.log"));
        assert_eq!(PhpConfig::default().slowlog, "stderr");
        let bad = Config::parse("[server]\ndocument_root=\"/x\"\n[php]\nslowlog=\"\"\n").unwrap_err();
        assert!(bad.to_string().contains("php.slowlog"), "{bad}");
    }
}
