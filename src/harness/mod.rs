//! The `fe-php` harness: `serve` (a hyper HTTP/1.1 server over the engine, with `/_health`
//! and `/_metrics`) and `bench` (a load generator). It holds no PHP or FastCGI logic: every
//! request goes through [`crate::Engine`].

pub mod bench;
pub mod cli;
mod http;
pub mod serve;
mod workers;
