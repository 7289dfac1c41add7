//! The response head into nginx's structures, the way nginx's upstream module does it
//! (`ngx_http_upstream_headers_in` and its copy handlers in `ngx_http_upstream.c`): every header
//! is looked up in one table whose entry says how it reaches `r->headers_out` — the list only,
//! the list plus the pointer nginx's filters use (`date`, `etag`, `expires`, `location`, …),
//! a parsed field (`content_length_n`, `content_type` + `charset`, `last_modified_time`), or
//! not at all (hop-by-hop headers, `Status`, the `X-Accel-*` controls).

use std::ptr;

use fephp::cgi::{content_length, ResponseHead};
use ngx::ffi::{
    ngx_http_headers_out_t, ngx_http_request_t, ngx_list_push, ngx_palloc, ngx_parse_http_time, ngx_pnalloc,
    ngx_str_t, ngx_table_elt_t, NGX_LOG_WARN,
};
use ngx::http::HttpModuleLocationConf;
use ngx::ngx_log_error;

use crate::response_conf::{Ignore, ResponseConf};
use crate::Module;

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

/// An `X-Accel-*` control (nginx's `process_handler`s that act on the request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Accel {
    Redirect,
    Expires,
    LimitRate,
    Buffering,
    Charset,
}

/// One entry of the table: the header's name, how it is copied, whether it is copied before an
/// `X-Accel-Redirect` too (nginx's `redirect` flag), and the control it carries.
struct HeaderHandler {
    name: &'static str,
    copy: Copy,
    redirect: bool,
    accel: Option<Accel>,
}

const fn h(name: &'static str, copy: Copy) -> HeaderHandler {
    HeaderHandler { name, copy, redirect: false, accel: None }
}

/// Also copied before an `X-Accel-Redirect` (nginx's `redirect` flag).
const fn hr(name: &'static str, copy: Copy) -> HeaderHandler {
    HeaderHandler { name, copy, redirect: true, accel: None }
}

/// An `X-Accel-*` control (hidden by default, see `fephp_pass_header`).
const fn ha(name: &'static str, accel: Accel) -> HeaderHandler {
    HeaderHandler { name, copy: Copy::Plain, redirect: false, accel: Some(accel) }
}

/// The headers with a handler, as nginx's `ngx_http_upstream_headers_in`. Any other header is
/// [`Copy::Plain`]. `Status` and the `X-Accel-*` controls are hidden by default
/// ([`crate::response_conf::DEFAULT_HIDDEN`]), as the FastCGI module hides them.
const HEADERS: &[HeaderHandler] = &[
    h("Status", Copy::Plain),
    hr("Content-Type", Copy::ContentType),
    h("Content-Length", Copy::ContentLength),
    h("Date", Copy::Single { field: Field::Date, once: true }),
    h("Last-Modified", Copy::LastModified),
    h("ETag", Copy::Single { field: Field::ETag, once: true }),
    h("Server", Copy::Single { field: Field::Server, once: true }),
    h("Location", Copy::Location),
    h("Refresh", Copy::Single { field: Field::Refresh, once: true }),
    hr("Set-Cookie", Copy::Plain),
    hr("Content-Disposition", Copy::Plain),
    hr("Cache-Control", Copy::Multi(MultiField::CacheControl)),
    hr("Expires", Copy::Single { field: Field::Expires, once: false }),
    hr("Accept-Ranges", Copy::Single { field: Field::AcceptRanges, once: false }),
    h("Content-Range", Copy::Single { field: Field::ContentRange, once: false }),
    h("Connection", Copy::Ignore),
    h("Keep-Alive", Copy::Ignore),
    h("Link", Copy::Multi(MultiField::Link)),
    h("Transfer-Encoding", Copy::Ignore),
    h("Content-Encoding", Copy::Single { field: Field::ContentEncoding, once: false }),
    ha("X-Accel-Expires", Accel::Expires),
    ha("X-Accel-Redirect", Accel::Redirect),
    ha("X-Accel-Limit-Rate", Accel::LimitRate),
    ha("X-Accel-Buffering", Accel::Buffering),
    ha("X-Accel-Charset", Accel::Charset),
];

/// The table entry of `name` (any case); `None`: a plain header.
fn handler_of(name: &str) -> Option<&'static HeaderHandler> {
    HEADERS.iter().find(|h| h.name.eq_ignore_ascii_case(name))
}

/// How `name` (any case) is copied.
#[cfg(test)]
fn copy_of(name: &str) -> Copy {
    handler_of(name).map_or(Copy::Plain, |h| h.copy)
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
    /// `X-Accel-Redirect`: the URI or `@name` to redirect to (the head was not copied, except
    /// the headers nginx keeps for the redirect).
    pub(super) redirect: Option<String>,
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

/// Reads the head's `X-Accel-*` controls as nginx's process handlers do (the first
/// `X-Accel-Redirect`, `-Expires`, `-Limit-Rate` wins, a repeat is logged and dropped; the last
/// `-Buffering` and `-Charset` win), skipping those named in `fephp_ignore_headers`.
/// `X-Accel-Limit-Rate` and `X-Accel-Charset` act on the request right away.
unsafe fn process_controls(r: *mut ngx_http_request_t, head: &ResponseHead, conf: &ResponseConf) -> Result<Controls, ()> {
    // SAFETY: live request; allocations from its pool.
    unsafe {
        let mut controls = Controls::default();
        let mut seen: [Option<&str>; 3] = [None; 3];
        for (name, value) in &head.headers {
            if name.len() < 8 || !name.as_bytes()[..8].eq_ignore_ascii_case(b"x-accel-") {
                continue;
            }
            let Some(accel) = handler_of(name).and_then(|h| h.accel) else { continue };
            let once = match accel {
                Accel::Redirect => Some(0),
                Accel::Expires => Some(1),
                Accel::LimitRate => Some(2),
                _ => None,
            };
            if let Some(i) = once {
                if let Some(prev) = seen[i] {
                    ngx_log_error!(
                        NGX_LOG_WARN,
                        (*(*r).connection).log,
                        "fephp: PHP sent duplicate header line: \"{name}: {value}\", previous value: \"{name}: {prev}\", ignored"
                    );
                    continue;
                }
                seen[i] = Some(value);
            }
            match accel {
                Accel::Redirect if !conf.ignores(Ignore::XA_REDIRECT) => controls.redirect = Some(value.clone()),
                // Only meaningful with a response cache (issue 16 item 2), as in nginx.
                Accel::Expires => {}
                Accel::LimitRate if !conf.ignores(Ignore::XA_LIMIT_RATE) => {
                    if let Some(n) = atoi(value) {
                        (*r).limit_rate = n;
                        (*r).set_limit_rate_set(1);
                    }
                }
                Accel::Buffering if !conf.ignores(Ignore::XA_BUFFERING) => {
                    if let Some(b) = accel_buffering(value) {
                        controls.buffering = Some(b);
                    }
                }
                Accel::Charset if !conf.ignores(Ignore::XA_CHARSET) => {
                    let v = pool_str(r, value.as_bytes(), false)?;
                    let cs = ngx_palloc((*r).pool, std::mem::size_of::<ngx_str_t>()) as *mut ngx_str_t;
                    if cs.is_null() {
                        return Err(());
                    }
                    cs.write(v);
                    (*r).headers_out.override_charset = cs;
                }
                _ => {}
            }
        }
        Ok(controls)
    }
}

/// A non-negative decimal number as `ngx_atoi` reads it (no sign, no spaces).
fn atoi(v: &str) -> Option<usize> {
    (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())).then(|| v.parse().ok()).flatten()
}

/// Copies the response head (status, status line, headers) into `r->headers_out`, as
/// `ngx_http_upstream_process_headers`: hidden headers (`fephp_hide_header`, the defaults less
/// `fephp_pass_header`) are skipped, every other one goes through its table entry. With an
/// `X-Accel-Redirect` only the headers nginx keeps for the redirect are copied (hidden or not,
/// as nginx) and nothing else is set.
///
/// # Safety
/// `r` must be a live request on the nginx thread whose header has not been sent.
pub(super) unsafe fn copy_head(r: *mut ngx_http_request_t, head: &ResponseHead) -> Result<Controls, ()> {
    // SAFETY: caller contract; everything is allocated from the request pool.
    unsafe {
        let default_conf = ResponseConf::default();
        let conf = Module::location_conf(&*r).map_or(&default_conf, |lcf| &lcf.response);
        let controls = process_controls(r, head, conf)?;
        let redirect = controls.redirect.is_some();
        if !redirect {
            (*r).headers_out.status = head.status as _;
            if let Some(reason) = &head.reason {
                // PHP's status line, as fastcgi_pass passes it on (nginx then keeps, for one, a
                // 204's Content-Type, which it drops when it writes the status line itself).
                let line = format!("{} {reason}", head.status);
                (*r).headers_out.status_line = pool_str(r, line.as_bytes(), false)?;
            }
        }
        let mut have_length = false;
        let mut have_type = false;
        let mut have_location = false;
        for (name, value) in &head.headers {
            let handler = handler_of(name);
            if redirect {
                if !handler.is_some_and(|h| h.redirect) {
                    continue;
                }
            } else if conf.is_hidden(name) {
                continue;
            }
            match handler.map_or(Copy::Plain, |h| h.copy) {
                Copy::Ignore => {}
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
        if !redirect {
            // As the upstream module without a cache: nginx does not answer 304 / 412 itself
            // from PHP's Last-Modified / ETag (PHP decides about conditional requests).
            (*r).set_disable_not_modified(1);
        }
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
        assert_eq!(handler_of("x-accel-redirect").and_then(|h| h.accel), Some(Accel::Redirect));
        assert!(handler_of("Set-Cookie").is_some_and(|h| h.redirect));
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
