//! Process supervision for embedded mode: fork N serving processes on one inherited listener,
//! restart any that dies (a PHP segfault takes down one worker, not the service) or that exits
//! after `worker_max_requests`, and stop them all on SIGTERM / SIGINT.
//!
//! Forking happens before any thread exists in the supervisor (no tokio runtime, no PHP), so
//! each child starts clean and builds its own runtime and PHP thread.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::serve::ServeError;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Runs `child` in `n` forked processes and supervises them until SIGTERM/SIGINT.
/// `child` must not return in the supervisor: it runs only after `fork` in each child.
pub fn supervise<F>(n: usize, child: F) -> Result<(), ServeError>
where
    F: Fn() -> Result<(), ServeError>,
{
    install_handlers()?;
    let mut children: HashMap<libc::pid_t, (usize, Instant)> = HashMap::new();
    for slot in 0..n {
        let pid = spawn(slot, &child)?;
        children.insert(pid, (slot, Instant::now()));
    }
    while !STOP.load(Ordering::SeqCst) {
        let mut status = 0;
        // SAFETY: waitpid with a valid out-pointer; EINTR (our signal handler) is handled below.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid < 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(ServeError::Runtime(format!("waitpid: {err}")));
        }
        let Some((slot, started)) = children.remove(&pid) else { continue };
        if STOP.load(Ordering::SeqCst) {
            break;
        }
        let crashed = describe_exit(pid, status);
        if crashed && started.elapsed() < Duration::from_millis(500) {
            // A worker that dies at once would otherwise be restarted in a tight loop.
            std::thread::sleep(Duration::from_millis(500));
        }
        let pid = spawn(slot, &child)?;
        children.insert(pid, (slot, Instant::now()));
    }
    crate::log!(Info, "serve", "stopping {} worker processes", children.len());
    for pid in children.keys() {
        // SAFETY: plain syscall on a child pid we own.
        unsafe { libc::kill(*pid, libc::SIGTERM) };
    }
    for _ in 0..children.len() {
        let mut status = 0;
        // SAFETY: as above.
        while unsafe { libc::waitpid(-1, &mut status, 0) } < 0 {
            if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                break;
            }
        }
    }
    Ok(())
}

fn spawn<F: Fn() -> Result<(), ServeError>>(slot: usize, child: &F) -> Result<libc::pid_t, ServeError> {
    // Stop signals stay blocked across fork: a SIGTERM sent to a just-forked child must not run
    // the supervisor's handler in the child (it would be lost). The child unblocks them once
    // its own handler is installed (`unblock_stop_signals`), so a pending one is delivered then.
    set_stop_signals_blocked(true);
    // SAFETY: the supervisor is single-threaded here (no runtime, no PHP), so the child may run
    // arbitrary code after fork.
    let pid = unsafe { libc::fork() };
    if pid != 0 {
        set_stop_signals_blocked(false);
    }
    if pid < 0 {
        return Err(ServeError::Runtime(format!("fork: {}", std::io::Error::last_os_error())));
    }
    if pid == 0 {
        reset_handlers();
        let code = match child() {
            Ok(()) => 0,
            Err(e) => {
                crate::log!(Error, "worker", "worker {slot}: {e}");
                1
            }
        };
        std::process::exit(code);
    }
    crate::log!(Info, "serve", "worker {slot} started as process {pid}");
    Ok(pid)
}

/// Logs how a worker ended; true when it crashed or failed (not a recycle).
fn describe_exit(pid: libc::pid_t, status: libc::c_int) -> bool {
    if libc::WIFSIGNALED(status) {
        crate::log!(Error, "serve", "worker process {pid} killed by signal {}; restarting it", libc::WTERMSIG(status));
        true
    } else if libc::WEXITSTATUS(status) != 0 {
        crate::log!(Error, "serve", "worker process {pid} exited with status {}; restarting it", libc::WEXITSTATUS(status));
        true
    } else {
        crate::log!(Info, "serve", "worker process {pid} recycled; starting a new one");
        false
    }
}

fn set_stop_signals_blocked(blocked: bool) {
    // SAFETY: building a signal set and changing this thread's mask; no memory is shared.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        let how = if blocked { libc::SIG_BLOCK } else { libc::SIG_UNBLOCK };
        libc::pthread_sigmask(how, &set, std::ptr::null_mut());
    }
}

/// Called by a serving process once its own SIGTERM/SIGINT handling is installed: delivers a
/// stop signal that arrived since fork. Harmless when nothing was blocked (FPM mode).
pub(super) fn unblock_stop_signals() {
    set_stop_signals_blocked(false);
}

fn install_handlers() -> Result<(), ServeError> {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: a zeroed sigaction with a handler that only stores an atomic; no SA_RESTART so
        // waitpid returns EINTR and the loop sees STOP.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_stop_signal as *const () as usize;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(sig, &action, std::ptr::null_mut()) != 0 {
                return Err(ServeError::Runtime(format!("sigaction: {}", std::io::Error::last_os_error())));
            }
        }
    }
    Ok(())
}

fn reset_handlers() {
    // SIGTERM/SIGINT: tokio installs the worker's own handlers later. SIGSEGV/SIGBUS: Rust's
    // stack-overflow handler would swallow a `kill -SEGV`; a worker must die on it, so the
    // supervisor replaces it.
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGSEGV, libc::SIGBUS] {
        // SAFETY: restoring the default disposition in the freshly forked child.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
}
