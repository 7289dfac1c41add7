//! fe-php: serve PHP from nginx.
//!
//! One [`engine::Engine`] serves a PHP request through either backend, chosen per site:
//! a FastCGI connection [`pool`] to PHP-FPM, or the embedded libphp SAPI in [`php`].
//! The surfaces (the nginx module, the C ABI in [`capi`], the `fe-php` harness) are thin
//! layers over the engine.
//!
//! Dependency direction (arrows point at what is used):
//!
//! ```text
//! fastcgi (codec, no I/O) <- pool ---------\
//! cgi (request -> params, response head) ---+-> engine <- surfaces: nginx-module, capi, harness
//! php (C shim + safe wrapper) -------------/
//! ```
#![deny(missing_docs)]

pub mod address;
pub mod capi;
pub mod cgi;
pub mod config;
pub mod engine;
pub mod error;
pub mod fastcgi;
pub mod log;
pub mod metrics;
pub mod pool;

#[cfg(feature = "embed")]
pub mod php;

#[cfg(feature = "embed")]
pub mod executor;

#[cfg(feature = "harness")]
pub mod harness;

pub use config::Config;
pub use engine::{Engine, Request, Response};
pub use error::{ConfigError, EngineError};
