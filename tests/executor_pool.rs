//! The executor pool over the socket transport against the real parts (the scenario is in
//! `tests/support/executor_scenario.rs`, shared with `tests/executor_shm.rs`).
//!
//! ONE test function: the pools are forked from this process before any other thread exists
//! (the test harness runs tests on threads; forking while other tests run would be unsafe).
#![cfg(feature = "embed")]

#[path = "support/executor_scenario.rs"]
mod scenario;

#[test]
fn executor_pool() {
    scenario::run(fephp::executor::Transport::Socket);
}
