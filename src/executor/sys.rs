//! The system calls of the executor pool (fork, pipes, the shared listening socket, signals,
//! credentials), each behind a small safe function. With `scoreboard.rs`, the only `unsafe`
//! of `src/executor/`.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// CLOCK_MONOTONIC in nanoseconds (the same clock in every process of the machine).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid out-param.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Which side of a [`fork`] we are on.
pub enum Forked {
    /// In the new process.
    Child,
    /// In the caller, with the child's pid.
    Parent(libc::pid_t),
}

/// `fork()`. The child must only run code that is safe after a fork of this process (the pool
/// forks from single-threaded processes: the nginx master, the supervisor).
pub fn fork() -> io::Result<Forked> {
    // SAFETY: fork has no memory-safety preconditions of its own; see the doc comment for what
    // the child may do.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid)),
    }
}

/// Ends the calling process now, without running destructors or atexit handlers (a forked
/// child must not flush its parent's buffers or run its parent's exit hooks).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and has no preconditions.
    unsafe { libc::_exit(code) }
}

/// A pipe, both ends close-on-exec: (read, write).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: valid out array of two ints.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 returned two new descriptors we own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn abstract_addr(name: &[u8]) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: sockaddr_un is plain old data; all-zero is valid.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    if name.is_empty() || name.len() + 1 > addr.sun_path.len() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "bad abstract socket name"));
    }
    for (i, &b) in name.iter().enumerate() {
        addr.sun_path[i + 1] = b as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + 1 + name.len();
    Ok((addr, len as libc::socklen_t))
}

/// A listening unix stream socket bound to the abstract name `name` (Linux; no file to clean
/// up, gone with its last descriptor), close-on-exec, with `backlog`.
pub fn listen_abstract(name: &[u8], backlog: usize) -> io::Result<OwnedFd> {
    let (addr, len) = abstract_addr(name)?;
    // SAFETY: plain socket call.
    let fd = cvt(unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `fd` is a new descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: `addr` is a valid sockaddr_un of `len` bytes.
    cvt(unsafe { libc::bind(fd.as_raw_fd(), (&addr as *const libc::sockaddr_un).cast(), len) })?;
    let backlog = backlog.clamp(1, i32::MAX as usize) as libc::c_int;
    // SAFETY: plain listen call on our socket.
    cvt(unsafe { libc::listen(fd.as_raw_fd(), backlog) })?;
    Ok(fd)
}

/// Blocking `accept4` (close-on-exec), once: a signal makes it fail with `Interrupted`.
pub fn accept_once(listener: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: null address out-params are allowed.
    let rc = unsafe { libc::accept4(listener, std::ptr::null_mut(), std::ptr::null_mut(), libc::SOCK_CLOEXEC) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: accept returned a new descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(rc) })
}

static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_sigterm(_: libc::c_int) {
    STOP.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// SIGTERM sets a flag ([`stop_requested`]) and interrupts a blocking call (no `SA_RESTART`)
/// instead of ending the process: an executor finishes its request first.
pub fn graceful_sigterm() {
    // SAFETY: installs an async-signal-safe handler (one atomic store).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigterm as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        sa.sa_flags = 0;
        libc::sigaction(libc::SIGTERM, &sa, std::ptr::null_mut());
    }
}

/// True once SIGTERM arrived (after [`graceful_sigterm`]).
pub fn stop_requested() -> bool {
    STOP.load(std::sync::atomic::Ordering::SeqCst)
}

/// Blocking `accept4` (close-on-exec), retried on EINTR.
pub fn accept(listener: RawFd) -> io::Result<OwnedFd> {
    loop {
        // SAFETY: null address out-params are allowed.
        let rc = unsafe { libc::accept4(listener, std::ptr::null_mut(), std::ptr::null_mut(), libc::SOCK_CLOEXEC) };
        if rc >= 0 {
            // SAFETY: accept returned a new descriptor we own.
            return Ok(unsafe { OwnedFd::from_raw_fd(rc) });
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// The uid of the process at the other end of a unix socket (`SO_PEERCRED`).
pub fn peer_uid(fd: RawFd) -> io::Result<u32> {
    // SAFETY: ucred is plain old data.
    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: valid out-params of the announced size.
    cvt(unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_PEERCRED, (&mut cred as *mut libc::ucred).cast(), &mut len) })?;
    Ok(cred.uid)
}

/// Sets `SO_RCVTIMEO` (a blocking read fails with EAGAIN after `timeout`).
pub fn set_read_timeout(fd: RawFd, timeout: Duration) -> io::Result<()> {
    let tv = libc::timeval { tv_sec: timeout.as_secs() as libc::time_t, tv_usec: timeout.subsec_micros() as libc::suseconds_t };
    // SAFETY: valid option value of the announced size.
    cvt(unsafe {
        libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, (&tv as *const libc::timeval).cast(), std::mem::size_of::<libc::timeval>() as libc::socklen_t)
    })?;
    Ok(())
}

/// Blocking read, retried on EINTR; 0 at EOF.
pub fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is valid for `buf.len()` bytes.
        let rc = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if rc >= 0 {
            return Ok(rc as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Fills `buf` completely; an EOF first is `UnexpectedEof`.
pub fn read_exact(fd: RawFd, buf: &mut [u8]) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        match read(fd, &mut buf[done..])? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => done += n,
        }
    }
    Ok(())
}

/// Writes all of `buf` to a socket (`MSG_NOSIGNAL`: a gone peer is EPIPE, not SIGPIPE).
pub fn send_all(fd: RawFd, buf: &[u8]) -> io::Result<()> {
    // SAFETY: `ptr` is valid for `len` bytes (a slice of `buf`).
    write_loop(buf, |ptr, len| unsafe { libc::send(fd, ptr.cast(), len, libc::MSG_NOSIGNAL) })
}

/// Writes all of `buf` to a file descriptor.
pub fn write_all(fd: RawFd, buf: &[u8]) -> io::Result<()> {
    // SAFETY: `ptr` is valid for `len` bytes (a slice of `buf`).
    write_loop(buf, |ptr, len| unsafe { libc::write(fd, ptr.cast(), len) })
}

/// Calls `write_some(ptr, len)` on what is left of `buf` until all of it is written, retrying
/// on EINTR.
fn write_loop(mut buf: &[u8], write_some: impl Fn(*const u8, usize) -> isize) -> io::Result<()> {
    while !buf.is_empty() {
        let rc = write_some(buf.as_ptr(), buf.len());
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        buf = &buf[rc as usize..];
    }
    Ok(())
}

/// In a freshly forked helper: every signal unblocked and back to its default action (the
/// nginx master's handlers would otherwise reap our children with `waitpid(-1)`), SIGPIPE
/// ignored.
pub fn reset_signals() {
    // SAFETY: sigset and sigaction calls with valid arguments; no handler of ours is installed.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        for sig in 1..32 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// Closes every descriptor above 2 except `keep` (a forked helper must not hold nginx's
/// listening sockets, log files or other generations' pipes).
pub fn close_other_fds(keep: &[RawFd]) {
    let fds: Vec<RawFd> = match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect(),
        Err(_) => (3..1024).collect(),
    };
    for fd in fds {
        if fd > 2 && !keep.contains(&fd) {
            // SAFETY: closing a descriptor number; nothing in this fresh process uses the others
            // (the directory handle used above is already closed).
            unsafe { libc::close(fd) };
        }
    }
}

/// Closes a descriptor number that no owner will close again (see the caller).
pub fn close_fd(fd: RawFd) {
    // SAFETY: the caller guarantees no `OwnedFd` for `fd` will be dropped in this process.
    unsafe { libc::close(fd) };
}

/// `dup2(fd, 2)`: stderr goes where `fd` goes (the error log).
pub fn redirect_stderr(fd: RawFd) {
    // SAFETY: dup2 on descriptor numbers.
    unsafe { libc::dup2(fd, 2) };
}

/// Detaches from the terminal's process group (Ctrl-C on a foreground nginx reaches nginx,
/// which then stops the pool in order).
pub fn new_session() {
    // SAFETY: plain call.
    unsafe { libc::setsid() };
}

/// The calling process gets SIGKILL when its parent dies; false when the parent is already
/// not `parent` (it died before the call).
pub fn die_with_parent(parent: libc::pid_t) -> bool {
    // SAFETY: plain prctl / getppid calls.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
        libc::getppid() == parent
    }
}

/// This process's pid.
pub fn getpid() -> libc::pid_t {
    // SAFETY: plain call.
    unsafe { libc::getpid() }
}

/// The effective uid.
pub fn geteuid() -> u32 {
    // SAFETY: plain call.
    unsafe { libc::geteuid() }
}

/// Sends `sig` to `pid` (errors ignored: the process may be gone).
pub fn kill(pid: libc::pid_t, sig: libc::c_int) {
    if pid > 0 {
        // SAFETY: plain call with a positive pid (never a process group).
        unsafe { libc::kill(pid, sig) };
    }
}

/// How a child ended.
#[derive(Debug, Clone, Copy)]
pub enum Exit {
    /// `exit(code)`.
    Code(i32),
    /// Killed by a signal.
    Signal(i32),
}

/// Reaps one ended child without blocking.
pub fn reap() -> Option<(libc::pid_t, Exit)> {
    let mut status = 0;
    // SAFETY: valid out-param.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    if pid <= 0 {
        return None;
    }
    let exit = if libc::WIFSIGNALED(status) { Exit::Signal(libc::WTERMSIG(status)) } else { Exit::Code(libc::WEXITSTATUS(status)) };
    Some((pid, exit))
}

/// `poll` for readability (or hang-up) of `fds` (negative entries are skipped), up to
/// `timeout`; returns which are ready.
pub fn poll_readable(fds: &[RawFd], timeout: Duration) -> Vec<bool> {
    let mut pfds: Vec<libc::pollfd> = fds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
    // SAFETY: valid array of pollfd.
    let rc = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout.as_millis() as libc::c_int) };
    if rc <= 0 {
        return vec![false; fds.len()];
    }
    pfds.iter().map(|p| p.fd >= 0 && p.revents != 0).collect()
}

/// A user to run executors as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credentials {
    /// uid.
    pub uid: u32,
    /// gid.
    pub gid: u32,
}

/// Looks up `user` (and `group`, default the user's primary group) in the system's databases.
/// Call at configuration time only (not thread-safe, may block).
pub fn lookup_user(user: &str, group: Option<&str>) -> Result<Credentials, String> {
    let cuser = CString::new(user).map_err(|_| format!("bad user name {user:?}"))?;
    // SAFETY: getpwnam returns NULL or a pointer to a static record valid until the next call.
    let pw = unsafe { libc::getpwnam(cuser.as_ptr()) };
    if pw.is_null() {
        return Err(format!("unknown user \"{user}\""));
    }
    // SAFETY: non-null record from getpwnam.
    let (uid, mut gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    if let Some(group) = group {
        let cgroup = CString::new(group).map_err(|_| format!("bad group name {group:?}"))?;
        // SAFETY: as above, for getgrnam.
        let gr = unsafe { libc::getgrnam(cgroup.as_ptr()) };
        if gr.is_null() {
            return Err(format!("unknown group \"{group}\""));
        }
        // SAFETY: non-null record.
        gid = unsafe { (*gr).gr_gid };
    }
    Ok(Credentials { uid, gid })
}

/// Drops to `cred` (supplementary groups = the one group, then gid, then uid). Only works as
/// root; a no-op error otherwise.
pub fn become_user(cred: Credentials) -> io::Result<()> {
    let gid = cred.gid as libc::gid_t;
    // SAFETY: plain calls with valid arguments.
    unsafe {
        cvt(libc::setgroups(1, &gid))?;
        cvt(libc::setgid(gid))?;
        cvt(libc::setuid(cred.uid as libc::uid_t))?;
    }
    Ok(())
}

/// A temp file with no name (O_TMPFILE in the temp dir), for a large request body.
pub fn anonymous_file() -> io::Result<std::fs::File> {
    let dir = CString::new(std::env::temp_dir().into_os_string().into_encoded_bytes())
        .map_err(|_| io::Error::other("temp dir path has a NUL"))?;
    // SAFETY: valid path string; the descriptor returned is ours.
    let fd = cvt(unsafe { libc::open(dir.as_ptr(), libc::O_TMPFILE | libc::O_RDWR | libc::O_CLOEXEC, 0o600) })?;
    // SAFETY: new descriptor we own.
    Ok(unsafe { std::fs::File::from_raw_fd(fd) })
}

/// Names the calling thread/process for `ps -o comm`, `top` (at most 15 bytes).
pub fn set_name(name: &str) {
    let mut buf = [0u8; 16];
    let n = name.len().min(15);
    buf[..n].copy_from_slice(&name.as_bytes()[..n]);
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, buf.as_ptr() as libc::c_ulong, 0, 0, 0) };
}

/// An anonymous shared-memory file of `size` bytes (`memfd_create`, close-on-exec): a mapping
/// that survives `exec` when its descriptor is passed on.
pub fn memfd(name: &str, size: usize) -> io::Result<OwnedFd> {
    let cname = CString::new(name).map_err(|_| io::Error::other("bad memfd name"))?;
    // SAFETY: valid name; the descriptor returned is ours.
    let fd = cvt(unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC) })?;
    // SAFETY: new descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: plain call on our descriptor.
    cvt(unsafe { libc::ftruncate(fd.as_raw_fd(), size as libc::off_t) })?;
    Ok(fd)
}

/// The size of the file behind `fd`.
pub fn file_size(fd: RawFd) -> io::Result<u64> {
    // SAFETY: stat is plain old data; valid out-param.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    cvt(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(st.st_size as u64)
}

/// In a forked child about to `exec`: puts `fds` at descriptors 3, 4, … (inheritable, in
/// order), stderr on `log` if given, then replaces the process with `binary args…`. Returns
/// only on failure.
pub fn exec_with_fds(binary: &std::path::Path, args: &[&str], fds: &[RawFd], log: Option<RawFd>) -> io::Error {
    if let Some(fd) = log {
        redirect_stderr(fd);
    }
    // First out of the way (above any target number), then into place; dup2 clears CLOEXEC.
    let mut high = Vec::new();
    for &fd in fds {
        // SAFETY: plain fcntl on a descriptor number.
        match cvt(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 64) }) {
            Ok(h) => high.push(h),
            Err(e) => return e,
        }
    }
    for (i, &h) in high.iter().enumerate() {
        // SAFETY: dup2 on descriptor numbers.
        if let Err(e) = cvt(unsafe { libc::dup2(h, 3 + i as RawFd) }) {
            return e;
        }
    }
    let Ok(path) = CString::new(binary.as_os_str().as_encoded_bytes()) else {
        return io::Error::other("binary path has a NUL");
    };
    let Ok(cargs) = args.iter().map(|a| CString::new(*a)).collect::<Result<Vec<_>, _>>() else {
        return io::Error::other("argument has a NUL");
    };
    let mut argv: Vec<*const libc::c_char> = cargs.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    // SAFETY: NUL-terminated path and argv array, valid until the call (which only returns
    // on failure).
    unsafe { libc::execv(path.as_ptr(), argv.as_ptr()) };
    io::Error::last_os_error()
}

/// The paths matching the shell pattern `pattern` (`glob(3)` with brace expansion), sorted;
/// none when nothing matches or the pattern holds a NUL byte.
pub fn glob(pattern: &str) -> Vec<std::path::PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(pattern) else { return Vec::new() };
    // SAFETY: glob_t is plain data; zeroed is its documented initial state.
    let mut g: libc::glob_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid NUL-terminated pattern and out-param; globfree releases what glob allocated.
    let rc = unsafe { libc::glob(c.as_ptr(), libc::GLOB_BRACE, None, &mut g) };
    let mut out = Vec::new();
    if rc == 0 {
        for i in 0..g.gl_pathc {
            // SAFETY: glob filled gl_pathv with gl_pathc valid C strings.
            let p = unsafe { std::ffi::CStr::from_ptr(*g.gl_pathv.add(i)) };
            out.push(std::path::PathBuf::from(std::ffi::OsStr::from_bytes(p.to_bytes())));
        }
    }
    // SAFETY: `g` came from glob (or is zeroed, which globfree accepts).
    unsafe { libc::globfree(&mut g) };
    out
}
