//! Round trip between two processes, per transport the executor pool could use: what one
//! request's hand-off costs without PHP. A parent (the "nginx worker") sends a 200-byte request
//! and waits for a 200-byte response from a forked child (the "executor"), N times.
//!
//! - `connect-per-request`: a unix stream socket, connect + accept + write + read + close per
//!   round trip (what `fephp_pass executors` does today, and php-fpm behind `fastcgi_pass`).
//! - `persistent-socket`: one connected socketpair, write + read each way.
//! - `shm-futex`: a MAP_SHARED slot, the bytes copied in, a process-shared futex wake each way
//!   (the shared-memory design; the nginx side would wake through an eventfd instead).
//! - `shm-eventfd`: the same slot, an eventfd each way (what an nginx worker can poll).
//!
//! Prints wall µs and CPU µs (both processes) per round trip. `cargo bench --bench
//! executor_transport` (a few seconds).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

const N: u32 = 20_000;
const MSG: usize = 200;

fn cpu_us() -> f64 {
    // SAFETY: valid out-params.
    unsafe {
        let mut a: libc::rusage = std::mem::zeroed();
        let mut b: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut a);
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut b);
        let t = |r: &libc::rusage| {
            (r.ru_utime.tv_sec + r.ru_stime.tv_sec) as f64 * 1e6 + (r.ru_utime.tv_usec + r.ru_stime.tv_usec) as f64
        };
        t(&a) + t(&b)
    }
}

fn run(name: &str, child: impl FnOnce(), parent: impl FnOnce()) {
    let cpu0 = cpu_us();
    let t0 = Instant::now();
    // SAFETY: the bench is single-threaded; the child runs only `child` and _exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        child();
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(0) };
    }
    parent();
    // SAFETY: waits for our child.
    unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
    let wall = t0.elapsed().as_secs_f64() * 1e6 / N as f64;
    let cpu = (cpu_us() - cpu0) / N as f64;
    println!("{name:22} {wall:8.1} µs wall/round trip {cpu:8.1} µs CPU/round trip");
}

fn rw(fd: i32, buf: &mut [u8], write: bool) {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: valid buffer.
        let n = unsafe {
            if write {
                libc::write(fd, buf[done..].as_ptr().cast(), buf.len() - done)
            } else {
                libc::read(fd, buf[done..].as_mut_ptr().cast(), buf.len() - done)
            }
        };
        assert!(n > 0, "io failed");
        done += n as usize;
    }
}

fn futex_wait(f: &AtomicU32, val: u32) {
    while f.load(Ordering::Acquire) == val {
        // SAFETY: futex on a word of a shared mapping (no FUTEX_PRIVATE_FLAG: cross-process).
        unsafe { libc::syscall(libc::SYS_futex, f as *const AtomicU32, libc::FUTEX_WAIT, val, std::ptr::null::<libc::timespec>()) };
    }
}

fn futex_wake(f: &AtomicU32) {
    f.fetch_add(1, Ordering::Release);
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_futex, f as *const AtomicU32, libc::FUTEX_WAKE, 1) };
}

fn main() {
    let mut buf = [7u8; MSG];

    // connect per request
    let name = format!("fephp-bench-{}", std::process::id());
    let listener = fephp::executor::sys::listen_abstract(name.as_bytes(), 128).unwrap();
    let lfd = listener.as_raw_fd();
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    run(
        "connect-per-request",
        || {
            let mut b = [0u8; MSG];
            for _ in 0..N {
                let c = fephp::executor::sys::accept(lfd).unwrap();
                rw(c.as_raw_fd(), &mut b, false);
                rw(c.as_raw_fd(), &mut b, true);
            }
        },
        || {
            for _ in 0..N {
                let s = std::os::unix::net::UnixStream::connect_addr(&addr).unwrap();
                rw(s.as_raw_fd(), &mut buf, true);
                rw(s.as_raw_fd(), &mut buf, false);
            }
        },
    );
    drop(listener);

    // persistent socketpair
    let mut fds = [0; 2];
    // SAFETY: valid out array.
    unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr()) };
    // SAFETY: new descriptors we own.
    let (a, b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    run(
        "persistent-socket",
        || {
            let mut x = [0u8; MSG];
            for _ in 0..N {
                rw(b.as_raw_fd(), &mut x, false);
                rw(b.as_raw_fd(), &mut x, true);
            }
        },
        || {
            for _ in 0..N {
                rw(a.as_raw_fd(), &mut buf, true);
                rw(a.as_raw_fd(), &mut buf, false);
            }
        },
    );

    // shared memory slot + futex / eventfd
    let board = fephp::executor::Scoreboard::new(1).unwrap();
    let _ = &board;
    // SAFETY: anonymous shared mapping, checked.
    let shm = unsafe {
        let p = libc::mmap(std::ptr::null_mut(), 4096, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED | libc::MAP_ANONYMOUS, -1, 0);
        assert_ne!(p, libc::MAP_FAILED);
        p.cast::<u8>()
    };
    // SAFETY: the first 8 bytes of the mapping hold two futex words; bytes 64.. the message.
    let (to_exec, to_worker) = unsafe { (&*(shm as *const AtomicU32), &*(shm.add(4) as *const AtomicU32)) };
    let data = move || {
        // SAFETY: bytes 64..64+MSG of the mapping.
        unsafe { std::slice::from_raw_parts_mut(shm.add(64), MSG) }
    };
    run(
        "shm-futex",
        || {
            let mut seen = 0;
            for _ in 0..N {
                futex_wait(to_exec, seen);
                seen = to_exec.load(Ordering::Acquire);
                let d = data();
                d[0] = d[0].wrapping_add(1);
                futex_wake(to_worker);
            }
        },
        || {
            let mut seen = 0;
            for _ in 0..N {
                data().copy_from_slice(&buf);
                futex_wake(to_exec);
                futex_wait(to_worker, seen);
                seen = to_worker.load(Ordering::Acquire);
                buf.copy_from_slice(data());
            }
        },
    );
    // SAFETY: eventfd calls with valid flags.
    let (e1, e2) = unsafe { (libc::eventfd(0, 0), libc::eventfd(0, 0)) };
    let ev = |fd: i32, write: bool| {
        let mut v = [1u8, 0, 0, 0, 0, 0, 0, 0];
        rw(fd, &mut v, write);
    };
    run(
        "shm-eventfd",
        || {
            for _ in 0..N {
                ev(e1, false);
                let d = data();
                d[0] = d[0].wrapping_add(1);
                ev(e2, true);
            }
        },
        || {
            for _ in 0..N {
                data().copy_from_slice(&buf);
                ev(e1, true);
                ev(e2, false);
                buf.copy_from_slice(data());
            }
        },
    );
}
