//! The C ABI of fe-php: `libfephp.so` / `libfephp.a` and `include/fephp.h`.
//!
//! A thin layer over [`crate::engine::Engine`]: opaque handles, `_new` / `_free` pairs, a
//! [`fephp_result`] from every fallible function, out-params written only on success, and the
//! message of the last failure readable through `fephp_last_error`. This module is the only
//! place with the C ABI's `unsafe`; it holds no PHP or FastCGI logic. The header is generated
//! from these doc comments by cbindgen (`scripts/gen-header.sh`); `docs/capi.md` is the guide.
//!
//! Every entry point runs behind `ffi_fn!`: NULL pointer arguments are refused with
//! `FEPHP_ERR_NULL_ARGUMENT` before anything else, and a panic is caught and reported as
//! `FEPHP_ERR_PANIC` (or the function's neutral value) instead of unwinding into C.
//!
//! Thread-safety, in one place:
//! - a `fephp_engine` may be used from any number of threads at once (`fephp_execute` and
//!   `fephp_execute_async` take it `const`), except that `fephp_engine_free` must not race any
//!   other call on it and must not be called from inside a callback;
//! - a `fephp_request` or `fephp_response` belongs to one thread at a time (they may be moved
//!   between threads, not shared);
//! - the last-error message is thread-local.
#![allow(non_camel_case_types)]
// The entry points are called from C, where `unsafe fn` means nothing: their pointer
// contracts are documented on each function (and so in fephp.h), NULL is checked by
// `ffi_fn!`, and every dereference has its own `// SAFETY:` comment.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use std::cell::RefCell;
use std::ffi::c_char;

mod engine;
mod execute;
mod request;
mod response;

pub use engine::{fephp_engine, fephp_engine_free, fephp_engine_new_from_file, fephp_engine_new_from_toml};
pub use execute::{
    fephp_body_chunk_callback, fephp_complete_callback, fephp_execute, fephp_execute_async, fephp_head_callback,
    fephp_write_callbacks,
};
pub use request::{
    fephp_request, fephp_request_add_header, fephp_request_free, fephp_request_new, fephp_request_set_body,
    fephp_request_set_https, fephp_request_set_local_addr, fephp_request_set_remote_addr,
};
pub use response::{
    fephp_response, fephp_response_error, fephp_response_free, fephp_response_header_at,
    fephp_response_header_count, fephp_response_status,
};

/// Version of the C ABI; the shared library's soname is `libfephp.so.<FEPHP_ABI_VERSION>`.
/// It changes only when a change breaks existing callers.
pub const FEPHP_ABI_VERSION: u32 = 0;

/// The outcome of a fallible call. Values are stable: new codes are only ever appended.
/// Whenever a function returns something other than `FEPHP_OK`, `fephp_last_error` on the
/// same thread returns a message saying why.
///
/// cbindgen:prefix-with-name=false
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum fephp_result {
    /// Success.
    FEPHP_OK = 0,
    /// A pointer argument that must not be NULL was NULL (the message names it).
    FEPHP_ERR_NULL_ARGUMENT = 1,
    /// A string argument that must be UTF-8 was not (config text, method, URI, header name,
    /// address).
    FEPHP_ERR_INVALID_UTF8 = 2,
    /// The configuration was refused; the message names the dotted key (`php.fpm_socket`) and
    /// the reason.
    FEPHP_ERR_CONFIG = 3,
    /// An embedded-PHP engine was already created in this process: PHP is built
    /// non-thread-safe (NTS) and starts once per process, so a process gets one embedded
    /// engine (share it between threads; freeing it does not allow a new one). FPM engines
    /// are not limited.
    FEPHP_ERR_ALREADY_EMBEDDED = 4,
    /// fe-php panicked (a bug); the panic was caught at the boundary. Objects passed in keep
    /// the ownership rules of the function that panicked.
    FEPHP_ERR_PANIC = 5,
    /// An argument is out of range or malformed (header name with invalid characters, header
    /// value with CR/LF, `ip:port` that does not parse, header index past the end).
    FEPHP_ERR_INVALID_ARGUMENT = 6,
    /// The engine could not be started: the embedded PHP runtime failed to start, or the
    /// engine's threads could not be spawned.
    FEPHP_ERR_BACKEND_START = 7,
    /// A write callback returned non-zero: the request was aborted at the backend (the FastCGI
    /// connection is closed; embedded PHP sees `connection_aborted()`).
    FEPHP_ERR_ABORTED = 8,
    /// The backend failed after the response head was delivered: the body is truncated (an
    /// HTTP host should close the client connection).
    FEPHP_ERR_BODY_TRUNCATED = 9,
    /// An asynchronous request was cancelled because its engine was freed first.
    FEPHP_ERR_CANCELLED = 10,
    /// `fephp_execute` was called on one of the engine's own runtime threads (from inside a
    /// callback), where blocking would deadlock. Use `fephp_execute_async` there.
    FEPHP_ERR_WRONG_THREAD = 11,
}

/// An error inside an entry point: the code to return and the message for `fephp_last_error`.
pub(crate) struct Failure(pub fephp_result, pub String);

impl Failure {
    pub(crate) fn new(code: fephp_result, msg: impl Into<String>) -> Failure {
        Failure(code, msg.into())
    }

    /// Records the message for this thread and returns the code.
    pub(crate) fn report(self) -> fephp_result {
        set_last_error(self.1);
        self.0
    }
}

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Sets this thread's last-error message.
pub(crate) fn set_last_error(msg: impl Into<String>) {
    let msg = msg.into();
    // `try_with`: during thread teardown the slot may be gone; the message is then dropped.
    let _ = LAST_ERROR.try_with(|slot| *slot.borrow_mut() = msg);
}

/// What an entry point returns when it fails before or outside its body: for
/// [`fephp_result`] an error code, for other return types a neutral value (0, NULL, nothing).
pub(crate) trait Boundary {
    /// The value for a NULL pointer argument.
    fn null_argument() -> Self;
    /// The value after a caught panic.
    fn panicked() -> Self;
}

impl Boundary for fephp_result {
    fn null_argument() -> Self {
        fephp_result::FEPHP_ERR_NULL_ARGUMENT
    }
    fn panicked() -> Self {
        fephp_result::FEPHP_ERR_PANIC
    }
}

impl Boundary for () {
    fn null_argument() -> Self {}
    fn panicked() -> Self {}
}

impl Boundary for usize {
    fn null_argument() -> Self {
        0
    }
    fn panicked() -> Self {
        0
    }
}

impl Boundary for u16 {
    fn null_argument() -> Self {
        0
    }
    fn panicked() -> Self {
        0
    }
}

impl Boundary for *const c_char {
    fn null_argument() -> Self {
        std::ptr::null()
    }
    fn panicked() -> Self {
        std::ptr::null()
    }
}

/// Records "`function`: argument `arg` is NULL" and returns the NULL value of `T`.
pub(crate) fn null_argument<T: Boundary>(function: &str, arg: &str) -> T {
    set_last_error(format!("{function}: argument `{arg}` must not be NULL"));
    T::null_argument()
}

/// Records the panic message and returns the panic value of `T`.
pub(crate) fn panicked<T: Boundary>(function: &str, what: String) -> T {
    set_last_error(format!("{function}: internal error (panic): {what}"));
    T::panicked()
}

/// The boundary around every entry point: `ffi_fn!("name", nonnull(a, b), { body })` returns
/// early with the function's NULL value (and a message naming the argument) when one of the
/// listed pointers is NULL, then runs `body` under `catch_unwind` so that a panic becomes
/// `FEPHP_ERR_PANIC` (or the neutral value) instead of unwinding into C. `return` inside
/// `body` returns from the body.
macro_rules! ffi_fn {
    ($name:literal, nonnull($($arg:ident),* $(,)?), $body:block) => {{
        $(
            if $arg.is_null() {
                return $crate::capi::null_argument($name, stringify!($arg));
            }
        )*
        match $crate::error::catch_panic(|| $body) {
            Ok(value) => value,
            Err(what) => $crate::capi::panicked($name, what),
        }
    }};
}
pub(crate) use ffi_fn;

/// Borrows `len` bytes at `ptr`; NULL is accepted when `len` is 0.
///
/// # Safety
/// When non-NULL, `ptr` must point to `len` readable bytes that stay valid and unmodified for
/// the returned lifetime.
pub(crate) unsafe fn bytes<'a>(function: &str, arg: &str, ptr: *const u8, len: usize) -> Result<&'a [u8], Failure> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Failure::new(
            fephp_result::FEPHP_ERR_NULL_ARGUMENT,
            format!("{function}: argument `{arg}` must not be NULL when its length is {len}"),
        ));
    }
    // SAFETY: non-NULL, and the caller guarantees `len` readable bytes (see above).
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Checks that `b` is UTF-8.
pub(crate) fn utf8<'a>(function: &str, arg: &str, b: &'a [u8]) -> Result<&'a str, Failure> {
    std::str::from_utf8(b).map_err(|e| {
        Failure::new(fephp_result::FEPHP_ERR_INVALID_UTF8, format!("{function}: argument `{arg}` is not UTF-8: {e}"))
    })
}

/// Borrows a NUL-terminated string (not NULL: checked by the caller's `ffi_fn!`).
///
/// # Safety
/// `ptr` must be non-NULL and point to a NUL-terminated string valid for the returned lifetime.
pub(crate) unsafe fn cstr<'a>(ptr: *const c_char) -> &'a [u8] {
    // SAFETY: guaranteed by the caller (see above).
    unsafe { std::ffi::CStr::from_ptr(ptr) }.to_bytes()
}

/// Copies `msg` into `buf` as a NUL-terminated string truncated to `len - 1` bytes; returns
/// the full length of `msg`.
///
/// # Safety
/// When `len > 0`, `buf` must point to `len` writable bytes.
pub(crate) unsafe fn copy_out(msg: &[u8], buf: *mut c_char, len: usize) -> usize {
    if !buf.is_null() && len > 0 {
        let n = msg.len().min(len - 1);
        // SAFETY: `buf` has room for `len` bytes (caller's contract) and n + 1 <= len; the
        // source is a Rust slice that cannot overlap a caller buffer we never handed out.
        unsafe {
            std::ptr::copy_nonoverlapping(msg.as_ptr(), buf.cast::<u8>(), n);
            *buf.add(n) = 0;
        }
    }
    msg.len()
}

/// Copies the message of the last failed call made on THIS thread into `buf` (at most
/// `len - 1` bytes, always NUL-terminated when `len > 0`) and returns the full length of the
/// message in bytes (without the NUL), like `snprintf`: a return value `>= len` means the copy
/// was truncated. `buf` may be NULL when `len` is 0 (to ask for the length). Returns 0 when no
/// call on this thread has failed yet.
///
/// The message is thread-local: it is set by every function that returns something other than
/// `FEPHP_OK` (and before `on_complete` is called with a failure, on the thread that calls it);
/// successful calls leave it unchanged.
#[no_mangle]
pub extern "C" fn fephp_last_error(buf: *mut c_char, len: usize) -> usize {
    ffi_fn!("fephp_last_error", nonnull(), {
        LAST_ERROR
            .try_with(|slot| {
                let msg = slot.borrow();
                // SAFETY: the caller provides `len` writable bytes at `buf` (documented above).
                unsafe { copy_out(msg.as_bytes(), buf, len) }
            })
            .unwrap_or(0)
    })
}

/// The version of fe-php as a static NUL-terminated string (`"0.1.0"`). Never free it.
#[no_mangle]
pub extern "C" fn fephp_version() -> *const c_char {
    ffi_fn!("fephp_version", nonnull(), { concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast::<c_char>() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last_error() -> String {
        let mut buf = [0 as c_char; 256];
        let n = fephp_last_error(buf.as_mut_ptr(), buf.len());
        // SAFETY: fephp_last_error NUL-terminates within `buf`.
        let s = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned();
        assert_eq!(n, s.len());
        s
    }

    fn panics(p: *const u8) -> fephp_result {
        ffi_fn!("panics", nonnull(p), {
            if !p.is_null() {
                panic!("boom");
            }
            fephp_result::FEPHP_OK
        })
    }

    #[test]
    fn boundary_catches_panics_and_nulls() {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        assert_eq!(panics(b"x".as_ptr()), fephp_result::FEPHP_ERR_PANIC);
        std::panic::set_hook(prev);
        assert!(last_error().contains("panics: internal error (panic): boom"), "{}", last_error());
        assert_eq!(panics(std::ptr::null()), fephp_result::FEPHP_ERR_NULL_ARGUMENT);
        assert_eq!(last_error(), "panics: argument `p` must not be NULL");
    }

    #[test]
    fn last_error_truncates_like_snprintf() {
        set_last_error("0123456789");
        let mut buf = [1 as c_char; 4];
        assert_eq!(fephp_last_error(buf.as_mut_ptr(), 4), 10);
        assert_eq!(buf.map(|c| c as u8), *b"012\0");
        assert_eq!(fephp_last_error(std::ptr::null_mut(), 0), 10);
    }

    #[test]
    fn version_is_the_crate_version() {
        // SAFETY: a static NUL-terminated string.
        let v = unsafe { std::ffi::CStr::from_ptr(fephp_version()) };
        assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }
}
