//! The FastCGI connection pool to PHP-FPM (tokio).

mod address;

pub use address::Address;

use bytes::Bytes;

use crate::cgi::{Params, RequestBody, ResponseHead};
use crate::config::PhpConfig;
use crate::error::{ConfigError, EngineError};
use std::time::Duration;

/// Pool settings.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Where PHP-FPM listens.
    pub address: Address,
    /// Most connections open at once.
    pub size: usize,
    /// Requests per connection before it is closed (0 = unlimited).
    pub max_requests: u64,
    /// Requests that may wait for a connection.
    pub queue_size: usize,
    /// How long a request may wait for a connection (then 503).
    pub queue_timeout: Duration,
    /// Connect timeout (→ 504).
    pub connect_timeout: Duration,
    /// Send timeout between writes (→ 504).
    pub send_timeout: Duration,
    /// Read timeout between reads (→ 504).
    pub read_timeout: Duration,
}

impl PoolConfig {
    /// Pool settings from `[php]`.
    pub fn from_config(php: &PhpConfig) -> Result<PoolConfig, ConfigError> {
        Ok(PoolConfig {
            address: Address::parse(&php.fpm_socket).map_err(|r| ConfigError::new("php.fpm_socket", r))?,
            size: php.worker_pool_size as usize,
            max_requests: php.worker_max_requests,
            queue_size: php.queue_size as usize,
            queue_timeout: php.queue_timeout(),
            connect_timeout: php.connect_timeout(),
            send_timeout: php.send_timeout(),
            read_timeout: php.read_timeout(),
        })
    }
}

/// The pool (stub until the pool lands).
pub struct Pool {
    cfg: PoolConfig,
}

/// A streaming FastCGI response body.
#[derive(Debug)]
pub struct FpmBody {}

impl FpmBody {
    /// The next chunk.
    pub async fn next_chunk(&mut self) -> Option<Result<Bytes, EngineError>> {
        None
    }
}

/// Pool gauges.
#[derive(Debug, Default, Clone)]
pub struct PoolStats {}

impl PoolStats {
    /// Appends Prometheus text.
    pub fn render(&self, _out: &mut String) {}
}

impl Pool {
    /// A pool that connects lazily.
    pub fn new(cfg: PoolConfig) -> Pool {
        Pool { cfg }
    }
    /// The FPM address.
    pub fn address(&self) -> &Address {
        &self.cfg.address
    }
    /// Sends one request.
    pub async fn send(&self, _params: &Params, _body: RequestBody) -> Result<(ResponseHead, FpmBody), EngineError> {
        Err(EngineError::Internal("pool not written yet".into()))
    }
    /// Probes FPM.
    pub async fn probe(&self) -> Result<(), EngineError> {
        Err(EngineError::Internal("pool not written yet".into()))
    }
    /// Gauges.
    pub fn stats(&self) -> PoolStats {
        PoolStats {}
    }
}
