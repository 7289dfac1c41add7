//! The shared-memory transport between clients (nginx workers, `fe-php serve`) and executors,
//! in the spirit of NGINX Unit's router ↔ application ports: no socket and no connection per
//! request, one copy of the bytes each way, a futex wake to the executors and an eventfd wake
//! to the client's event loop.
//!
//! # The region ([`region`])
//! One memfd mapping created by the pool's owner before any fork, shared by the owner's client
//! processes, the supervisor and the executors:
//! - the **queue**: a bitmap with one bit per slot ("queued"), a futex word bumped by each
//!   publish, and a count of sleeping executors. Any idle executor takes the next queued slot
//!   (a round-robin pass over the bitmap; `fetch_and` on the bit, then a CAS of the slot's state
//!   `QUEUED → TAKEN + executor`: two executors never get the same request);
//! - one **claim word** per executor (the slot it is claiming, so the supervisor can put a
//!   request back in the queue if the executor dies between taking the bit and the CAS);
//! - the **slots**, partitioned by client (client `c` owns slots `c × per_client ..`; no slot
//!   allocation crosses processes): control words, a 16 KiB request ring and a 32 KiB
//!   response ring.
//!
//! # A request
//! 1. The client takes a free slot of its own (none: 503, its share of the queue is full),
//!    writes the request (the [`crate::executor::wire`] head, then the body) into the request
//!    ring — as much as fits; the rest follows as the executor drains the ring — sets the state
//!    `QUEUED`, sets the bit, bumps the queue futex and wakes one sleeping executor.
//! 2. The executor claims it, reads the request, runs PHP and writes response frames (the same
//!    `HEAD` / `DATA` / `END` / `FAIL` frames as the socket transport) into the response ring,
//!    waiting (futex, bounded) while the ring is full: back-pressure, a credit of one ring.
//!    After each write it bumps the slot's `notify` word and, if the client said it waits,
//!    rings the client's doorbell (an eventfd, [`bell`]). Then it releases the slot.
//! 3. The client's event loop sees its eventfd readable and wakes the requests whose `notify`
//!    moved ([`bell::Bell::ring`]); each copies the new bytes out and decodes frames.
//!
//! # Failures
//! - An executor that dies (crash, SIGKILL after the terminate timeout): the supervisor marks
//!   its slots `DEAD_CRASH` (502) or `DEAD_TIMEOUT` (504) and rings their clients
//!   ([`serve::Shared::executor_gone`]). The client reuses a slot only once it is `RELEASED` or
//!   dead, so a half-written slot is never read as a new response.
//! - The client gives up (timeout, the HTTP client left): a still-queued slot is withdrawn
//!   (CAS `QUEUED → FREE`); a taken one gets `cancel`, and PHP sees an aborted connection.
//! - Everything one side reads from the region is validated (ring positions against the
//!   capacity, frames by the wire decoder, states against the known set); the client's waits
//!   are all non-blocking with the read timeout, so no executor can hang an nginx worker.

pub mod bell;
pub mod client;
pub mod region;
pub mod serve;
mod wake;

#[cfg(test)]
mod tests;

pub use bell::{Bell, BellHost};
pub use client::{ShmBody, ShmClient};
pub use region::{Layout, Region};
pub use serve::Shared;

/// A new doorbell (a non-blocking, close-on-exec eventfd) for [`Shared::bells`].
pub fn wake_eventfd() -> std::io::Result<std::os::fd::OwnedFd> {
    wake::eventfd()
}
