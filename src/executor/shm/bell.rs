//! A client process's doorbell: the eventfd executors ring after writing to one of this
//! client's slots, and the wakers of the requests waiting on those slots.
//!
//! Whoever runs the client's event loop calls [`Bell::ring`] when the eventfd is readable: the
//! nginx module registers it as an nginx connection ([`BellHost`]), so the wake arrives in the
//! worker's own epoll, with no thread hop; without a host, a tokio task watches it. `ring`
//! wakes only the requests whose slot's `notify` word moved since they last looked.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::Waker;

use super::region::Region;
use super::wake;

/// Watches a client's doorbell on the caller's event loop: calls [`Bell::ring`] each time
/// [`Bell::fd`] becomes readable, on the thread that polls the requests, for as long as the
/// process serves (the nginx module's implementation: an nginx connection's read event).
pub trait BellHost: Send + Sync + fmt::Debug {
    /// Starts watching `bell`.
    fn watch(&self, bell: Arc<Bell>) -> io::Result<()>;
}

/// See the module docs.
pub struct Bell {
    fd: OwnedFd,
    region: Arc<Region>,
    first: usize,
    /// Per local slot: the `notify` value last seen and the waiting request's waker.
    waiters: Mutex<Vec<Option<(u32, Waker)>>>,
}

impl fmt::Debug for Bell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bell").field("fd", &self.fd.as_raw_fd()).field("first", &self.first).finish()
    }
}

impl Bell {
    /// The doorbell `fd` of the client owning slots `first..first + count` of `region`.
    pub(super) fn new(fd: OwnedFd, region: Arc<Region>, first: usize, count: usize) -> Bell {
        Bell { fd, region, first, waiters: Mutex::new((0..count).map(|_| None).collect()) }
    }

    /// The eventfd to watch for readability.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Resets the eventfd and wakes every request whose slot changed since it looked. Call
    /// when the eventfd is readable (see [`BellHost`]).
    pub fn ring(&self) {
        wake::drain(&self.fd);
        let mut woken = Vec::new();
        {
            let mut waiters = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
            for (i, w) in waiters.iter_mut().enumerate() {
                if let Some((seen, _)) = w {
                    if self.region.ctl(self.first + i).notify.load(Ordering::SeqCst) != *seen {
                        woken.push(w.take().expect("checked").1);
                    }
                }
            }
        }
        for w in woken {
            w.wake();
        }
    }

    /// Registers the waker of the request on global slot `slot`, which saw `notify == seen`.
    pub(super) fn register(&self, slot: usize, seen: u32, waker: &Waker) {
        let mut waiters = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = waiters.get_mut(slot - self.first) {
            match w {
                Some((s, old)) if old.will_wake(waker) => *s = seen,
                _ => *w = Some((seen, waker.clone())),
            }
        }
    }

    /// Forgets the waker of `slot` (its request ended).
    pub(super) fn unregister(&self, slot: usize) {
        let mut waiters = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = waiters.get_mut(slot - self.first) {
            *w = None;
        }
    }
}

/// Without a [`BellHost`]: a task on the current tokio runtime rings the bell whenever its
/// eventfd is readable.
pub(super) fn watch_with_tokio(bell: Arc<Bell>) -> io::Result<()> {
    let handle = tokio::runtime::Handle::try_current()
        .map_err(|_| io::Error::other("the executor client needs a tokio runtime to watch its doorbell"))?;
    let _guard = handle.enter();
    let fd = bell.fd.try_clone()?;
    // SAFETY: `fd` is an OwnedFd moved into the AsyncFd: open and the same description for
    // the AsyncFd's whole life.
    let afd = unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
        .map_err(|e| e.into_parts().1)?;
    handle.spawn(async move {
        loop {
            match afd.readable().await {
                Ok(mut guard) => {
                    bell.ring();
                    guard.clear_ready();
                }
                Err(_) => return,
            }
        }
    });
    Ok(())
}
