//! The wakes of the shared-memory transport: a process-shared futex (clients → executors) and
//! eventfds (executors → a client process, whose event loop polls its eventfd).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// Sleeps while `word == expected`, at most `timeout` (spurious returns are fine: callers
/// re-check). Process-shared (no `FUTEX_PRIVATE_FLAG`): the word is in a `MAP_SHARED` mapping.
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let ts = libc::timespec { tv_sec: timeout.as_secs() as libc::time_t, tv_nsec: timeout.subsec_nanos() as libc::c_long };
    // SAFETY: `word` is a valid, aligned u32 for the duration of the call; `ts` outlives it.
    unsafe {
        libc::syscall(libc::SYS_futex, word as *const AtomicU32, libc::FUTEX_WAIT, expected, &ts as *const libc::timespec);
    }
}

/// Wakes up to `n` sleepers of `word`.
pub fn futex_wake(word: &AtomicU32, n: i32) {
    // SAFETY: as above; FUTEX_WAKE only reads the address.
    unsafe {
        libc::syscall(libc::SYS_futex, word as *const AtomicU32, libc::FUTEX_WAKE, n);
    }
}

/// A new non-blocking, close-on-exec eventfd (a client's doorbell).
pub fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Rings an eventfd (adds 1; a full counter is already "ringing", so errors are ignored).
pub fn ring(fd: RawFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a local u64.
    unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
}

/// Resets a non-blocking eventfd's counter (nothing when it is zero).
pub fn drain(fd: &OwnedFd) {
    let mut v: u64 = 0;
    // SAFETY: reads 8 bytes into a local u64 from our non-blocking eventfd.
    unsafe { libc::read(fd.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
}
