//! `fephp_request`: an HTTP request being built by the host.

use std::ffi::c_char;
use std::net::SocketAddr;

use bytes::Bytes;

use super::{bytes, cstr, ffi_fn, fephp_result, utf8, Failure};
use crate::cgi::{BodyPart, HttpRequest, RequestBody};
use crate::engine::Request;

/// A request to execute: method, target, headers, addresses and body. Created by
/// `fephp_request_new`, owned by the caller until it is passed to `fephp_execute` /
/// `fephp_execute_async` (which take ownership) or freed with `fephp_request_free`.
pub struct fephp_request {
    http: HttpRequest,
    body: RequestBody,
    https: Option<bool>,
}

impl fephp_request {
    /// The engine request; `https_default` is the engine's `server.https` unless the host set it.
    pub(crate) fn into_request(self, https_default: bool, server_name: Option<&str>) -> Request {
        let mut http = self.http;
        http.https = self.https.unwrap_or(https_default);
        http.server_name = server_name.map(str::to_string);
        Request { http, body: self.body }
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Runs `f` on the request behind `req` (non-NULL, checked by the caller's `ffi_fn!`).
fn with_request(req: *mut fephp_request, f: impl FnOnce(&mut fephp_request) -> Result<(), Failure>) -> fephp_result {
    // SAFETY: `req` is non-NULL (checked by ffi_fn!) and a live request from fephp_request_new
    // used by one thread at a time (the caller's contract).
    let req = unsafe { &mut *req };
    match f(req) {
        Ok(()) => fephp_result::FEPHP_OK,
        Err(failure) => failure.report(),
    }
}

/// Creates a request. `method` (`"GET"`, `"POST"`, ...: an HTTP token) and `uri` (the request
/// target as received, `"/path?query"`) are NUL-terminated UTF-8 strings, copied (not
/// retained). The protocol is `HTTP/1.1`; headers, body and addresses are empty until set.
///
/// On success writes the new request to `*out` (owned by the caller) and returns `FEPHP_OK`.
/// Errors: `FEPHP_ERR_NULL_ARGUMENT`, `FEPHP_ERR_INVALID_UTF8`, `FEPHP_ERR_INVALID_ARGUMENT`
/// (method not a token, empty URI).
#[no_mangle]
pub extern "C" fn fephp_request_new(method: *const c_char, uri: *const c_char, out: *mut *mut fephp_request) -> fephp_result {
    ffi_fn!("fephp_request_new", nonnull(method, uri, out), {
        let run = || -> Result<fephp_request, Failure> {
            // SAFETY: both non-NULL (checked above) and NUL-terminated (the caller's contract).
            let (method, uri) = unsafe { (cstr(method), cstr(uri)) };
            let method = utf8("fephp_request_new", "method", method)?;
            let uri = utf8("fephp_request_new", "uri", uri)?;
            if !is_token(method) {
                return Err(Failure::new(
                    fephp_result::FEPHP_ERR_INVALID_ARGUMENT,
                    format!("fephp_request_new: method {method:?} is not an HTTP token"),
                ));
            }
            if uri.is_empty() {
                return Err(Failure::new(fephp_result::FEPHP_ERR_INVALID_ARGUMENT, "fephp_request_new: uri is empty"));
            }
            Ok(fephp_request { http: HttpRequest::new(method, uri), body: RequestBody::empty(), https: None })
        };
        match run() {
            Ok(req) => {
                // SAFETY: `out` is non-NULL (checked above) and writable (the caller's contract).
                unsafe { *out = Box::into_raw(Box::new(req)) };
                fephp_result::FEPHP_OK
            }
            Err(f) => f.report(),
        }
    })
}

/// Frees a request that was not passed to `fephp_execute` / `fephp_execute_async`. NULL is
/// ignored.
#[no_mangle]
pub extern "C" fn fephp_request_free(req: *mut fephp_request) {
    ffi_fn!("fephp_request_free", nonnull(), {
        if !req.is_null() {
            // SAFETY: `req` came from Box::into_raw in fephp_request_new and is freed once.
            drop(unsafe { Box::from_raw(req) });
        }
    })
}

/// Appends a request header. `name` (`name_len` bytes, UTF-8, an HTTP token such as
/// `Content-Type`) and `value` (`value_len` bytes, any bytes except CR, LF and NUL) are copied;
/// either pointer may be NULL when its length is 0. Repeated headers are kept in order (PHP
/// sees them joined with `, `, or `; ` for `Cookie`). Headers reach PHP as `$_SERVER['HTTP_*']`;
/// `Content-Type` also as `CONTENT_TYPE`.
///
/// Errors: `FEPHP_ERR_NULL_ARGUMENT`, `FEPHP_ERR_INVALID_UTF8` (name),
/// `FEPHP_ERR_INVALID_ARGUMENT` (name not a token, value with CR/LF/NUL). The request is
/// unchanged on error.
#[no_mangle]
pub extern "C" fn fephp_request_add_header(
    req: *mut fephp_request,
    name: *const u8,
    name_len: usize,
    value: *const u8,
    value_len: usize,
) -> fephp_result {
    ffi_fn!("fephp_request_add_header", nonnull(req), {
        with_request(req, |req| {
            const F: &str = "fephp_request_add_header";
            // SAFETY: each points to its length in readable bytes (the caller's contract).
            let (name, value) = unsafe { (bytes(F, "name", name, name_len)?, bytes(F, "value", value, value_len)?) };
            let name = utf8(F, "name", name)?;
            if !is_token(name) {
                return Err(Failure::new(
                    fephp_result::FEPHP_ERR_INVALID_ARGUMENT,
                    format!("{F}: header name {name:?} is not an HTTP token"),
                ));
            }
            if value.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0) {
                return Err(Failure::new(
                    fephp_result::FEPHP_ERR_INVALID_ARGUMENT,
                    format!("{F}: the value of header {name:?} contains CR, LF or NUL"),
                ));
            }
            req.http.headers.push((name.to_string(), value.to_vec()));
            Ok(())
        })
    })
}

/// Sets the request body to a copy of the `len` bytes at `data` (NULL allowed when `len` is
/// 0), replacing any previous body. PHP sees `CONTENT_LENGTH = len` and reads the bytes from
/// `php://input` (and `$_POST` / `$_FILES` for form content types).
///
/// Errors: `FEPHP_ERR_NULL_ARGUMENT`.
#[no_mangle]
pub extern "C" fn fephp_request_set_body(req: *mut fephp_request, data: *const u8, len: usize) -> fephp_result {
    ffi_fn!("fephp_request_set_body", nonnull(req), {
        with_request(req, |req| {
            // SAFETY: `data` points to `len` readable bytes (the caller's contract).
            let data = unsafe { bytes("fephp_request_set_body", "data", data, len) }?;
            req.body = RequestBody::from_bytes(Bytes::copy_from_slice(data));
            Ok(())
        })
    })
}

/// Appends a copy of the `len` bytes at `data` (NULL allowed when `len` is 0) to the request
/// body, after what [`fephp_request_set_body`] or earlier appends gave: a body that arrives in
/// pieces (as a server reads it) is passed piece by piece, and PHP reads it whole, in order.
/// `CONTENT_LENGTH` is the sum of the pieces.
///
/// Errors: `FEPHP_ERR_NULL_ARGUMENT`.
#[no_mangle]
pub extern "C" fn fephp_request_append_body(req: *mut fephp_request, data: *const u8, len: usize) -> fephp_result {
    ffi_fn!("fephp_request_append_body", nonnull(req), {
        with_request(req, |req| {
            // SAFETY: `data` points to `len` readable bytes (the caller's contract).
            let data = unsafe { bytes("fephp_request_append_body", "data", data, len) }?;
            req.body.push(BodyPart::Bytes(Bytes::copy_from_slice(data)));
            Ok(())
        })
    })
}

fn parse_addr(function: &str, addr: *const c_char) -> Result<SocketAddr, Failure> {
    // SAFETY: non-NULL (checked by the caller's ffi_fn!) and NUL-terminated (caller's contract).
    let text = utf8(function, "addr", unsafe { cstr(addr) })?;
    text.parse().map_err(|_| {
        Failure::new(
            fephp_result::FEPHP_ERR_INVALID_ARGUMENT,
            format!("{function}: {text:?} is not an `ip:port` address (IPv6 as `[::1]:80`)"),
        )
    })
}

/// Sets the client address, a NUL-terminated `"ip:port"` (`"203.0.113.7:51234"`,
/// `"[2001:db8::1]:443"`): PHP sees `REMOTE_ADDR` and `REMOTE_PORT`. Not set: both absent.
///
/// Errors: `FEPHP_ERR_NULL_ARGUMENT`, `FEPHP_ERR_INVALID_UTF8`, `FEPHP_ERR_INVALID_ARGUMENT`.
#[no_mangle]
pub extern "C" fn fephp_request_set_remote_addr(req: *mut fephp_request, addr: *const c_char) -> fephp_result {
    ffi_fn!("fephp_request_set_remote_addr", nonnull(req, addr), {
        with_request(req, |req| {
            req.http.remote_addr = Some(parse_addr("fephp_request_set_remote_addr", addr)?);
            Ok(())
        })
    })
}

/// Sets the local (server) address the request came in on, a NUL-terminated `"ip:port"`: PHP
/// sees `SERVER_ADDR` and `SERVER_PORT`.
///
/// Errors: `FEPHP_ERR_NULL_ARGUMENT`, `FEPHP_ERR_INVALID_UTF8`, `FEPHP_ERR_INVALID_ARGUMENT`.
#[no_mangle]
pub extern "C" fn fephp_request_set_local_addr(req: *mut fephp_request, addr: *const c_char) -> fephp_result {
    ffi_fn!("fephp_request_set_local_addr", nonnull(req, addr), {
        with_request(req, |req| {
            req.http.local_addr = Some(parse_addr("fephp_request_set_local_addr", addr)?);
            Ok(())
        })
    })
}

/// Marks the client connection as TLS (`https` non-zero: PHP sees `HTTPS=on` and
/// `REQUEST_SCHEME=https`) or not. Not called: the engine's `server.https` applies.
///
/// Errors: `FEPHP_ERR_NULL_ARGUMENT`.
#[no_mangle]
pub extern "C" fn fephp_request_set_https(req: *mut fephp_request, https: bool) -> fephp_result {
    ffi_fn!("fephp_request_set_https", nonnull(req), {
        with_request(req, |req| {
            req.https = Some(https);
            Ok(())
        })
    })
}
