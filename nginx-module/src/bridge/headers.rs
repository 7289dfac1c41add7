//! The response head into nginx's structures, the way nginx's upstream module does it
//! (`ngx_http_upstream_headers_in` and its copy handlers in `ngx_http_upstream.c`): every header
//! is looked up in one table whose entry says how it reaches `r->headers_out` — the list only,
//! the list plus the pointer nginx's filters use (`date`, `etag`, `expires`, `location`, …),
//! a parsed field (`content_length_n`, `content_type` + `charset`, `last_modified_time`), or
//! not at all (hop-by-hop headers, `Status`, the `X-Accel-*` controls).

use std::ptr;

use fephp::cgi::{content_length, ResponseHead};
use ngx::ffi::{
    ngx_http_headers_out_t, ngx_http_request_t, ngx_list_push, ngx_parse_http_time, ngx_pnalloc, ngx_str_t,
    ngx_table_elt_t, NGX_LOG_WARN,
};
use ngx::ngx_log_error;

/// A `headers_out` pointer field that one header sets (nginx's `offsetof(ngx_http_headers_out_t, …)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Server,
    Date,
    ETag,
    Refresh,
    Expires,
    ContentRange,
    AcceptRanges,
    ContentEncoding,
}

impl Field {
    fn slot(self, out: &mut ngx_http_headers_out_t) -> &mut *mut ngx_table_elt_t {
        match self {
            Field::Server => &mut out.server,
            Field::Date => &mut out.date,
            Field::ETag => &mut out.etag,
            Field::Refresh => &mut out.refresh,
            Field::Expires => &mut out.expires,
            Field::ContentRange => &mut out.content_range,
            Field::AcceptRanges => &mut out.accept_ranges,
            Field::ContentEncoding => &mut out.content_encoding,
        }
    }
}

/// A `headers_out` list of repeated headers (nginx ≥ 1.23 links them through `next`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MultiField {
    CacheControl,
    Link,
}

/// How one response header reaches `r->headers_out` (nginx's per-header `copy_handler`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Copy {
    /// Not passed on (`ngx_http_upstream_ignore_header_line`): hop-by-hop, or consumed.
    Ignore,
    /// `content_length_n` (nginx writes the header itself).
    ContentLength,
    /// `content_type`, its length without `; charset=…`, and `charset`.
    ContentType,
    /// Into the list, and the field points at it. The first one wins for the single-valued
    /// headers nginx's `ngx_http_upstream_process_header_line` keeps once (`once`): a repeat
    /// is logged and dropped.
    Single { field: Field, once: bool },
    /// Into the list and onto the field's list of repeats.
    Multi(MultiField),
    /// `last_modified` and the parsed `last_modified_time`.
    LastModified,
    /// `Location`: an absolute URL becomes `headers_out.location`; a relative one (`/x`) stays a
    /// plain header, so nginx's header filter does not make it absolute from the client's
    /// `Host` (as `ngx_http_upstream_rewrite_location` without `proxy_redirect`).
    Location,
    /// Into the list only.
    Plain,
}

/// One entry of the table: the header's name and how it is copied.
struct HeaderHandler {
    name: &'static str,
    copy: Copy,
}

/// The headers with a handler, as nginx's `ngx_http_upstream_headers_in` (plus the ones the
/// FastCGI module hides by default: `Status` and the `X-Accel-*` controls). Any other header is
/// [`Copy::Plain`].
const HEADERS: &[HeaderHandler] = &[
    HeaderHandler { name: "Status", copy: Copy::Ignore },
    HeaderHandler { name: "Content-Type", copy: Copy::ContentType },
    HeaderHandler { name: "Content-Length", copy: Copy::ContentLength },
    HeaderHandler { name: "Date", copy: Copy::Single { field: Field::Date, once: true } },
    HeaderHandler { name: "Last-Modified", copy: Copy::LastModified },
    HeaderHandler { name: "ETag", copy: Copy::Single { field: Field::ETag, once: true } },
    HeaderHandler { name: "Server", copy: Copy::Single { field: Field::Server, once: true } },
    HeaderHandler { name: "Location", copy: Copy::Location },
    HeaderHandler { name: "Refresh", copy: Copy::Single { field: Field::Refresh, once: true } },
    HeaderHandler { name: "Cache-Control", copy: Copy::Multi(MultiField::CacheControl) },
    HeaderHandler { name: "Expires", copy: Copy::Single { field: Field::Expires, once: false } },
    HeaderHandler { name: "Accept-Ranges", copy: Copy::Single { field: Field::AcceptRanges, once: false } },
    HeaderHandler { name: "Content-Range", copy: Copy::Single { field: Field::ContentRange, once: false } },
    HeaderHandler { name: "Connection", copy: Copy::Ignore },
    HeaderHandler { name: "Keep-Alive", copy: Copy::Ignore },
    HeaderHandler { name: "Link", copy: Copy::Multi(MultiField::Link) },
    HeaderHandler { name: "Transfer-Encoding", copy: Copy::Ignore },
    HeaderHandler { name: "Content-Encoding", copy: Copy::Single { field: Field::ContentEncoding, once: false } },
    HeaderHandler { name: "X-Accel-Expires", copy: Copy::Ignore },
    HeaderHandler { name: "X-Accel-Redirect", copy: Copy::Ignore },
    HeaderHandler { name: "X-Accel-Limit-Rate", copy: Copy::Ignore },
    HeaderHandler { name: "X-Accel-Buffering", copy: Copy::Ignore },
    HeaderHandler { name: "X-Accel-Charset", copy: Copy::Ignore },
];

/// How `name` (any case) is copied.
fn copy_of(name: &str) -> Copy {
    HEADERS.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map_or(Copy::Plain, |h| h.copy)
}

/// Where `; charset=` starts in a `Content-Type` value and the charset's bounds (quotes
/// stripped), as `ngx_http_upstream_copy_content_type`: `(type_len, charset_start, charset_end)`.
fn split_charset(v: &[u8]) -> Option<(usize, usize, usize)> {
    let mut i = 0;
    while i < v.len() {
        if v[i] != b';' {
            i += 1;
            continue;
        }
        let semi = i;
        i += 1;
        while i < v.len() && v[i] == b' ' {
            i += 1;
        }
        if i >= v.len() {
            return None;
        }
        if v.len() - i < 8 || !v[i..i + 8].eq_ignore_ascii_case(b"charset=") {
            continue;
        }
        let mut start = i + 8;
        if v.get(start) == Some(&b'"') {
            start += 1;
        }
        let mut end = v.len();
        if end > start && v[end - 1] == b'"' {
            end -= 1;
        }
        return Some((semi, start, end.max(start)));
    }
    None
}

/// Copies `s` into the request pool, NUL-terminated (nginx's header values are).
unsafe fn pool_str(r: *mut ngx_http_request_t, s: &[u8], lowercase: bool) -> Result<ngx_str_t, ()> {
    // SAFETY: allocating from the live request's pool.
    unsafe {
        let p = ngx_pnalloc((*r).pool, s.len() + 1) as *mut u8;
        if p.is_null() {
            return Err(());
        }
        let dst = std::slice::from_raw_parts_mut(p, s.len() + 1);
        dst[..s.len()].copy_from_slice(s);
        dst[s.len()] = 0;
        if lowercase {
            dst.make_ascii_lowercase();
        }
        Ok(ngx_str_t { len: s.len(), data: p })
    }
}

/// Pushes `name: value` onto `headers_out.headers`.
unsafe fn push(r: *mut ngx_http_request_t, name: &str, value: &str) -> Result<*mut ngx_table_elt_t, ()> {
    // SAFETY: `r` is live; everything is allocated from its pool.
    unsafe {
        let h = ngx_list_push(&mut (*r).headers_out.headers) as *mut ngx_table_elt_t;
        if h.is_null() {
            return Err(());
        }
        ptr::write_bytes(h, 0, 1);
        (*h).hash = 1;
        (*h).key = pool_str(r, name.as_bytes(), false)?;
        (*h).value = pool_str(r, value.as_bytes(), false)?;
        (*h).lowcase_key = pool_str(r, name.as_bytes(), true)?.data;
        Ok(h)
    }
}

/// Logs a dropped repeat of a single-valued header, as nginx does.
unsafe fn warn_duplicate(r: *mut ngx_http_request_t, name: &str, value: &str, previous: *mut ngx_table_elt_t) {
    // SAFETY: live request; `previous` is one of its headers.
    unsafe {
        let prev = String::from_utf8_lossy((*previous).value.as_bytes());
        ngx_log_error!(
            NGX_LOG_WARN,
            (*(*r).connection).log,
            "fephp: PHP sent duplicate header line: \"{name}: {value}\", previous value: \"{name}: {prev}\", ignored"
        );
    }
}

/// Appends `h` to the list of repeats of `field`.
unsafe fn link_multi(r: *mut ngx_http_request_t, field: MultiField, h: *mut ngx_table_elt_t) {
    // SAFETY: live request; `h` was just pushed onto its headers.
    #[cfg(nginx1_23)]
    unsafe {
        let out = &mut (*r).headers_out;
        let mut slot: *mut *mut ngx_table_elt_t = match field {
            MultiField::CacheControl => &mut out.cache_control,
            MultiField::Link => &mut out.link,
        };
        while !(*slot).is_null() {
            slot = &mut (**slot).next;
        }
        *slot = h;
    }
    // Before 1.23 `cache_control` is an array nginx's `expires` fills itself and there is no
    // `link`: the header is passed on as a plain line.
    #[cfg(not(nginx1_23))]
    let _ = (r, field, h);
}

/// What the head's `X-Accel-*` controls ask of the response (they are not passed on).
#[derive(Debug, Default)]
pub(super) struct Controls {
    /// `X-Accel-Buffering: yes | no`.
    pub(super) buffering: Option<bool>,
}

/// `X-Accel-Buffering`'s value as nginx reads it (`yes` / `no`, any case; else ignored).
fn accel_buffering(value: &str) -> Option<bool> {
    if value.eq_ignore_ascii_case("no") {
        Some(false)
    } else if value.eq_ignore_ascii_case("yes") {
        Some(true)
    } else {
        None
    }
}

/// Copies the response head (status, status line, headers) into `r->headers_out`.
///
/// # Safety
/// `r` must be a live request on the nginx thread whose header has not been sent.
pub(super) unsafe fn copy_head(r: *mut ngx_http_request_t, head: &ResponseHead) -> Result<Controls, ()> {
    // SAFETY: caller contract; everything is allocated from the request pool.
    unsafe {
        (*r).headers_out.status = head.status as _;
        if let Some(reason) = &head.reason {
            // PHP's status line, as fastcgi_pass passes it on (nginx then keeps, for one, a
            // 204's Content-Type, which it drops when it writes the status line itself).
            let line = format!("{} {reason}", head.status);
            (*r).headers_out.status_line = pool_str(r, line.as_bytes(), false)?;
        }
        let mut have_length = false;
        let mut have_type = false;
        let mut have_location = false;
        let mut controls = Controls::default();
        for (name, value) in &head.headers {
            match copy_of(name) {
                Copy::Ignore => {
                    if name.eq_ignore_ascii_case("X-Accel-Buffering") {
                        controls.buffering = accel_buffering(value.trim());
                    }
                }
                Copy::ContentLength => {
                    // As nginx (≥ 1.23): one Content-Length; a value that is not a number is
                    // dropped and the body is framed by its end.
                    if have_length {
                        continue;
                    }
                    if let Some(n) = content_length(value) {
                        (*r).headers_out.content_length_n = n as _;
                        have_length = true;
                    }
                }
                Copy::ContentType => {
                    if have_type {
                        continue;
                    }
                    have_type = true;
                    let v = pool_str(r, value.as_bytes(), false)?;
                    let out = &mut (*r).headers_out;
                    out.content_type = v;
                    out.content_type_len = v.len;
                    out.content_type_lowcase = ptr::null_mut();
                    if let Some((type_len, cs, ce)) = split_charset(value.as_bytes()) {
                        out.content_type_len = type_len;
                        out.charset = ngx_str_t { len: ce - cs, data: v.data.add(cs) };
                    }
                }
                Copy::Single { field, once } => {
                    let prev = *field.slot(&mut (*r).headers_out);
                    if once && !prev.is_null() {
                        warn_duplicate(r, name, value, prev);
                        continue;
                    }
                    let h = push(r, name, value)?;
                    *field.slot(&mut (*r).headers_out) = h;
                }
                Copy::Multi(field) => {
                    let h = push(r, name, value)?;
                    link_multi(r, field, h);
                }
                Copy::LastModified => {
                    let prev = (*r).headers_out.last_modified;
                    if !prev.is_null() {
                        warn_duplicate(r, name, value, prev);
                        continue;
                    }
                    let h = push(r, name, value)?;
                    (*r).headers_out.last_modified = h;
                    (*r).headers_out.last_modified_time = ngx_parse_http_time((*h).value.data, (*h).value.len);
                }
                Copy::Location => {
                    if have_location {
                        continue;
                    }
                    have_location = true;
                    let h = push(r, name, value)?;
                    if !value.starts_with('/') {
                        (*r).headers_out.location = h;
                    }
                }
                Copy::Plain => {
                    push(r, name, value)?;
                }
            }
        }
        // As the upstream module without a cache: nginx does not answer 304 / 412 itself from
        // PHP's Last-Modified / ETag (PHP decides about conditional requests).
        (*r).set_disable_not_modified(1);
        Ok(controls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_found_in_any_case() {
        assert_eq!(copy_of("content-type"), Copy::ContentType);
        assert_eq!(copy_of("ETAG"), Copy::Single { field: Field::ETag, once: true });
        assert_eq!(copy_of("x-accel-redirect"), Copy::Ignore);
        assert_eq!(copy_of("X-Powered-By"), Copy::Plain);
    }

    #[test]
    fn charset_is_split_off_as_nginx_does() {
        let v = b"text/html; charset=UTF-8";
        let (t, s, e) = split_charset(v).unwrap();
        assert_eq!(&v[..t], b"text/html");
        assert_eq!(&v[s..e], b"UTF-8");
        let v = b"text/plain;charset=\"koi8-r\"";
        let (t, s, e) = split_charset(v).unwrap();
        assert_eq!(&v[..t], b"text/plain");
        assert_eq!(&v[s..e], b"koi8-r");
        assert_eq!(split_charset(b"text/html; q=1"), None);
        assert_eq!(split_charset(b"application/json"), None);
        assert_eq!(split_charset(b"text/html; "), None);
    }
}
