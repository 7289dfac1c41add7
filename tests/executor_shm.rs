//! The executor pool over the shared-memory transport against the real parts: the same
//! scenario as `tests/executor_pool.rs` (shared queue, bodies both ways, crash → 502, terminate
//! timeout → 504, recycling, dynamic pool, owner death).
//!
//! ONE test function: the pools are forked from this process before any other thread exists.
#![cfg(feature = "embed")]

#[path = "support/executor_scenario.rs"]
mod scenario;

#[test]
fn executor_pool_over_shared_memory() {
    scenario::run(fephp::executor::Transport::Shm);
}
