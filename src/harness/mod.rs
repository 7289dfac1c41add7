//! The `fe-php` harness: `serve` (hyper server over the engine) and `bench` (load generator).
