//! `fephp_response`: status and headers of an executed request.

use std::ffi::c_char;

use super::{copy_out, ffi_fn, fephp_result, Failure};
use crate::cgi::{content_length, header_use, HeaderUse, ResponseHead};
use crate::error::{error_text, EngineError, ERROR_CONTENT_TYPE};

/// The status and headers of a response (the body is delivered through the write callbacks).
/// Returned by `fephp_execute` / `fephp_execute_async`, owned by the caller, released with
/// `fephp_response_free`. Pointers obtained from it stay valid until then.
pub struct fephp_response {
    status: u16,
    headers: Vec<(String, String)>,
    /// Set when fe-php answered itself because the request failed before PHP produced a head.
    error: Option<String>,
}

impl fephp_response {
    pub(crate) fn from_head(head: ResponseHead) -> fephp_response {
        // The response-header policy of every surface: hop-by-hop and internal headers and an
        // invalid Content-Length are not passed on.
        let mut headers = head.headers;
        headers.retain(|(name, value)| match header_use(name) {
            HeaderUse::Hidden => false,
            HeaderUse::ContentLength => content_length(value).is_some(),
            _ => true,
        });
        fephp_response { status: head.status, headers, error: None }
    }

    /// The response fe-php gives when serving failed before a head: the status nginx would
    /// give (404, 403, 400, 502, 503, 504, 500) and a plain-text body line (returned too).
    pub(crate) fn from_error(err: &EngineError) -> (fephp_response, String) {
        let status = err.status();
        let body = error_text(status);
        let headers = vec![("Content-Type".to_string(), ERROR_CONTENT_TYPE.to_string())];
        (fephp_response { status, headers, error: Some(err.to_string()) }, body)
    }
}

/// The HTTP status code (`200`, `404`, `502`, ...). 0 when `resp` is NULL.
#[no_mangle]
pub extern "C" fn fephp_response_status(resp: *const fephp_response) -> u16 {
    ffi_fn!("fephp_response_status", nonnull(resp), {
        // SAFETY: non-NULL (checked above) and live until fephp_response_free (caller's contract).
        unsafe { &*resp }.status
    })
}

/// The number of response headers (`Status:` is not one of them: see `fephp_response_status`).
/// Repeated headers such as `Set-Cookie` count once per occurrence. 0 when `resp` is NULL.
#[no_mangle]
pub extern "C" fn fephp_response_header_count(resp: *const fephp_response) -> usize {
    ffi_fn!("fephp_response_header_count", nonnull(resp), {
        // SAFETY: non-NULL (checked above) and live until fephp_response_free (caller's contract).
        unsafe { &*resp }.headers.len()
    })
}

/// Header number `index` (0-based, in the order PHP sent them). Writes pointers to the name
/// and the value and their lengths in bytes; the strings are NOT NUL-terminated (use the
/// lengths), are owned by `resp` and stay valid until `fephp_response_free(resp)`.
///
/// Errors: `FEPHP_ERR_NULL_ARGUMENT`, `FEPHP_ERR_INVALID_ARGUMENT` (`index >=
/// fephp_response_header_count(resp)`); nothing is written then.
#[no_mangle]
pub extern "C" fn fephp_response_header_at(
    resp: *const fephp_response,
    index: usize,
    name: *mut *const c_char,
    name_len: *mut usize,
    value: *mut *const c_char,
    value_len: *mut usize,
) -> fephp_result {
    ffi_fn!("fephp_response_header_at", nonnull(resp, name, name_len, value, value_len), {
        // SAFETY: non-NULL (checked above) and live until fephp_response_free (caller's contract).
        let resp = unsafe { &*resp };
        match resp.headers.get(index) {
            Some((n, v)) => {
                // SAFETY: all four out-pointers are non-NULL (checked above) and writable
                // (the caller's contract); the strings live as long as `resp`.
                unsafe {
                    *name = n.as_ptr().cast();
                    *name_len = n.len();
                    *value = v.as_ptr().cast();
                    *value_len = v.len();
                }
                fephp_result::FEPHP_OK
            }
            None => Failure::new(
                fephp_result::FEPHP_ERR_INVALID_ARGUMENT,
                format!("fephp_response_header_at: index {index} out of range ({} headers)", resp.headers.len()),
            )
            .report(),
        }
    })
}

/// When fe-php produced this response itself because serving failed before PHP answered (the
/// script was not found → 404, refused → 403, FPM unreachable → 502, overloaded → 503,
/// timeout → 504), copies the reason into `buf` like `fephp_last_error` (for the host's log;
/// do not show it to clients) and returns its full length. Returns 0 for a response from PHP.
/// `buf` may be NULL when `len` is 0.
#[no_mangle]
pub extern "C" fn fephp_response_error(resp: *const fephp_response, buf: *mut c_char, len: usize) -> usize {
    ffi_fn!("fephp_response_error", nonnull(resp), {
        // SAFETY: non-NULL (checked above) and live until fephp_response_free (caller's contract).
        let resp = unsafe { &*resp };
        match &resp.error {
            // SAFETY: `buf` has `len` writable bytes (the caller's contract).
            Some(msg) => unsafe { copy_out(msg.as_bytes(), buf, len) },
            None => {
                if !buf.is_null() && len > 0 {
                    // SAFETY: at least one writable byte.
                    unsafe { *buf = 0 };
                }
                0
            }
        }
    })
}

/// Frees a response and everything borrowed from it. NULL is ignored.
#[no_mangle]
pub extern "C" fn fephp_response_free(resp: *mut fephp_response) {
    ffi_fn!("fephp_response_free", nonnull(), {
        if !resp.is_null() {
            // SAFETY: `resp` came from Box::into_raw in fephp_execute* and is freed once.
            drop(unsafe { Box::from_raw(resp) });
        }
    })
}
