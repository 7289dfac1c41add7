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
            EngineError::Internal(_) => 500,
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
        }
    }
}

impl std::error::Error for EngineError {}
