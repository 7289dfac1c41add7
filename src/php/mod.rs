//! Embedded libphp executor: our own web SAPI (C shim) behind a safe Rust API (stub until it lands).

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;

use crate::cgi::{Params, RequestBody, ResponseHead, Script};
use crate::config::PhpConfig;
use crate::error::EngineError;

/// Options of the embedded PHP runtime.
#[derive(Debug, Clone, Default)]
pub struct PhpOptions {
    /// php.ini file to load, if any.
    pub ini_file: Option<PathBuf>,
    /// ini settings applied over it.
    pub ini: Vec<(String, String)>,
    /// Requests that may wait for the PHP thread.
    pub queue_size: usize,
    /// How long a request may wait (then 503).
    pub queue_timeout: Duration,
}

impl PhpOptions {
    /// Options from `[php]`.
    pub fn from_config(php: &PhpConfig) -> PhpOptions {
        PhpOptions {
            ini_file: php.ini_file.clone(),
            ini: php.ini.iter().map(|(k, v)| (k.clone(), v.to_ini_string())).collect(),
            queue_size: php.queue_size as usize,
            queue_timeout: php.queue_timeout(),
        }
    }
}

/// Handle to this process's PHP thread.
#[derive(Clone)]
pub struct Php {}

/// Streaming body from the PHP thread.
#[derive(Debug)]
pub struct PhpBody {}

impl PhpBody {
    /// The next chunk.
    pub async fn next_chunk(&mut self) -> Option<Result<Bytes, EngineError>> {
        None
    }
}

/// Gauges of the PHP thread.
#[derive(Debug, Default, Clone)]
pub struct PhpStats {}

impl PhpStats {
    /// Appends Prometheus text.
    pub fn render(&self, _out: &mut String) {}
}

impl Php {
    /// Starts the PHP thread.
    pub fn start(_opts: PhpOptions) -> Result<Php, EngineError> {
        Err(EngineError::Internal("embedded PHP not written yet".into()))
    }
    /// Runs a script.
    pub async fn execute(&self, _params: Params, _script: Script, _body: RequestBody) -> Result<(ResponseHead, PhpBody), EngineError> {
        Err(EngineError::Internal("embedded PHP not written yet".into()))
    }
    /// Liveness.
    pub fn probe(&self) -> Result<(), EngineError> {
        Ok(())
    }
    /// Gauges.
    pub fn stats(&self) -> PhpStats {
        PhpStats {}
    }
}
