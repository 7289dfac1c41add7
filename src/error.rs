//! Typed errors shared by the core: configuration errors and request-serving errors.

use std::fmt;
use std::io;

/// A configuration problem: names the key (dotted path, e.g. `php.worker_pool_size`) and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The dotted key the problem is about (`""` when the whole document is unreadable).
    pub key: String,
    /// Why the value was refused.
    pub reason: String,
}

impl ConfigError {
    /// Builds an error about `key` with the given reason.
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError { key: key.into(), reason: reason.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "config: {}", self.reason)
        } else {
            write!(f, "config key `{}`: {}", self.key, self.reason)
        }
    }
}

impl std::error::Error for ConfigError {}

/// A php.ini file named in the configuration that PHP could not load (PHP itself would start
/// without it and say nothing).
#[derive(Debug)]
pub enum IniFileError {
    /// The name is empty.
    Empty,
    /// The file cannot be opened or inspected (missing, no permission).
    Unreadable {
        /// The file named in the configuration.
        path: std::path::PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The name is a directory or another non-regular file.
    NotAFile {
        /// The file named in the configuration.
        path: std::path::PathBuf,
    },
}

impl fmt::Display for IniFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IniFileError::Empty => write!(f, "php.ini file name is empty"),
            IniFileError::Unreadable { path, source } => write!(f, "cannot read php.ini file {}: {source}", path.display()),
            IniFileError::NotAFile { path } => write!(f, "php.ini file {} is not a regular file", path.display()),
        }
    }
}

impl std::error::Error for IniFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            IniFileError::Unreadable { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Why a request could not be served. Each variant maps to the HTTP status a PHP operator
/// would expect from nginx + PHP-FPM ([`EngineError::status`]).
#[derive(Debug)]
pub enum EngineError {
    /// The request path is refused before reaching PHP (traversal, NUL byte, outside the root,
    /// not an allowed script extension). → 403
    Forbidden(String),
    /// No script exists for the request path. → 404
    NotFound(String),
    /// The request itself is malformed (bad URI encoding, bad header). → 400
    BadRequest(String),
    /// The backend could not be reached (connection refused, reset, closed early). → 502
    Unreachable(String),
    /// The backend answered something that is not valid FastCGI / CGI. → 502
    Protocol(String),
    /// A connect, send or read timeout elapsed. → 504
    Timeout(String),
    /// Every worker/connection is busy and the wait queue is full or its timeout elapsed. → 503
    Overloaded(String),
    /// The client went away; nothing is to be sent.
    ClientGone,
    /// An unexpected internal failure (a bug, or the PHP thread died). → 500
    Internal(String),
    /// A second embedded engine in a process that already started PHP (NTS, once per
    /// process: see [`crate::engine::embedded_started`]). → 500
    AlreadyEmbedded,
}

impl EngineError {
    /// The HTTP status a client gets for this error.
    pub fn status(&self) -> u16 {
        match self {
            EngineError::Forbidden(_) => 403,
            EngineError::NotFound(_) => 404,
            EngineError::BadRequest(_) => 400,
            EngineError::Unreachable(_) | EngineError::Protocol(_) => 502,
            EngineError::Timeout(_) => 504,
            EngineError::Overloaded(_) => 503,
            EngineError::ClientGone => 499,
            EngineError::Internal(_) | EngineError::AlreadyEmbedded => 500,
        }
    }

    /// A short stable name for metrics labels (`fephp_backend_errors_total{kind=...}`).
    pub fn kind(&self) -> &'static str {
        match self {
            EngineError::Forbidden(_) => "forbidden",
            EngineError::NotFound(_) => "not_found",
            EngineError::BadRequest(_) => "bad_request",
            EngineError::Unreachable(_) => "unreachable",
            EngineError::Protocol(_) => "protocol",
            EngineError::Timeout(_) => "timeout",
            EngineError::Overloaded(_) => "overloaded",
            EngineError::ClientGone => "client_gone",
            EngineError::Internal(_) => "internal",
            EngineError::AlreadyEmbedded => "already_embedded",
        }
    }

    /// Maps an I/O error from a backend connection to the matching variant (timeouts → 504,
    /// everything else → 502), keeping `context` in the message.
    pub fn from_io(context: &str, err: &io::Error) -> Self {
        match err.kind() {
            io::ErrorKind::TimedOut => EngineError::Timeout(format!("{context}: {err}")),
            _ => EngineError::Unreachable(format!("{context}: {err}")),
        }
    }
}

/// The reason phrase of a status fe-php answers itself (the statuses of [`EngineError::status`],
/// as nginx words them; `Internal Server Error` for any other).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        413 => "Request Entity Too Large",
        499 => "Client Closed Request",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Internal Server Error",
    }
}

/// `Content-Type` of [`error_text`].
pub const ERROR_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// The body of a response fe-php gives itself when a request failed before PHP produced a head
/// (harness and C ABI; nginx uses its own error pages): `"502 Bad Gateway\n"`.
pub fn error_text(status: u16) -> String {
    format!("{status} {}\n", reason_phrase(status))
}

/// The message of a caught panic's payload (`"unknown panic payload"` when it is not a string):
/// what every surface's panic boundary logs or reports.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic payload".into())
}

/// Runs `f`, turning a panic into `Err(message)` ([`panic_message`]): the one panic boundary
/// every surface (nginx module, C ABI, harness) wraps its entry points in, so a panic never
/// unwinds into C or nginx.
pub fn catch_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| panic_message(&*payload))
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::Forbidden(m) => write!(f, "forbidden: {m}"),
            EngineError::NotFound(m) => write!(f, "not found: {m}"),
            EngineError::BadRequest(m) => write!(f, "bad request: {m}"),
            EngineError::Unreachable(m) => write!(f, "backend unreachable: {m}"),
            EngineError::Protocol(m) => write!(f, "backend protocol error: {m}"),
            EngineError::Timeout(m) => write!(f, "backend timeout: {m}"),
            EngineError::Overloaded(m) => write!(f, "overloaded: {m}"),
            EngineError::ClientGone => write!(f, "client went away"),
            EngineError::Internal(m) => write!(f, "internal error: {m}"),
            EngineError::AlreadyEmbedded => write!(f, "embedded PHP already started in this process"),
        }
    }
}

impl std::error::Error for EngineError {}
