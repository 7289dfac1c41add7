//! The `fephp_pass` content handler: reads the request body (nginx buffers large bodies to a temp
//! file), turns the nginx request into a [`fephp::Request`] on the nginx thread, and hands it to
//! the [`bridge`].

use std::fs::File;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::FromRawFd;

use bytes::Bytes;
use fephp::cgi::{BodyPart, HttpRequest, Params, RequestBody, SymlinkPolicy};
use fephp::engine::ServeOptions;
use fephp::{EngineError, Request};
use ngx::ffi::{
    ngx_connection_local_sockaddr, ngx_http_complex_value, ngx_http_finalize_request, ngx_http_map_uri_to_path,
    ngx_http_read_client_request_body, ngx_http_request_t, ngx_int_t, ngx_list_part_t, ngx_str_t, ngx_table_elt_t,
    sockaddr, ngx_pnalloc, NGX_DONE, NGX_HTTP_INTERNAL_SERVER_ERROR, NGX_HTTP_SPECIAL_RESPONSE, NGX_LOG_ERR, NGX_OK,
};
use ngx::http::{HttpModuleLocationConf, HttpModuleMainConf, HttpModuleServerConf, NgxHttpCoreModule};
use ngx::ngx_log_error;

use crate::bridge::{self, Output, Settings};
use crate::conf::{Backend, LocConf};
use crate::{upstream, worker, Module};

/// The content handler `fephp_pass` installs.
///
/// # Safety
/// Called by nginx with a live request.
pub unsafe extern "C" fn fephp_handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    ffi_guard!(NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t, {
        // SAFETY: nginx passes a live request; the post handler runs on the nginx thread.
        let rc = unsafe { ngx_http_read_client_request_body(r, Some(body_read)) };
        if rc >= NGX_HTTP_SPECIAL_RESPONSE as ngx_int_t {
            return rc;
        }
        NGX_DONE as ngx_int_t
    })
}

/// Body fully read (in memory and/or a temp file): build the request and start it.
unsafe extern "C" fn body_read(r: *mut ngx_http_request_t) {
    // SAFETY (default): on panic the request still gets an answer, finalized once (through the
    // bridge when it already owns the request).
    ffi_guard!(unsafe { bridge::finalize_after_panic(r, NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t) }, {
        // SAFETY: nginx calls the post handler with the live request.
        unsafe { start(r) }
    })
}

unsafe fn fail(r: *mut ngx_http_request_t, e: EngineError) {
    // SAFETY: live request on the nginx thread.
    unsafe {
        ngx_log_error!(
            NGX_LOG_ERR,
            (*(*r).connection).log,
            "fephp: {e} while serving \"{}\"",
            String::from_utf8_lossy((*r).unparsed_uri.as_bytes())
        );
        ngx_http_finalize_request(r, e.status() as ngx_int_t);
    }
}

unsafe fn start(r: *mut ngx_http_request_t) {
    // SAFETY: live request on the nginx thread throughout.
    unsafe {
        let Some(lcf) = Module::location_conf(&*r) else {
            return fail(r, EngineError::Internal("no fephp configuration".into()));
        };
        let Some(backend) = lcf.backend else {
            return fail(r, EngineError::Internal("fephp_pass is not set for this location".into()));
        };
        let Some(worker) = worker::current() else {
            return fail(r, EngineError::Internal("fephp is not running in this process".into()));
        };
        let engine = match backend {
            Backend::Upstream(_) => None, // the balancer picks the server's engine per attempt
            _ => match worker.engine(backend) {
                Ok(e) => Some(e),
                Err(e) => return fail(r, e),
            },
        };
        let root = match document_root(r) {
            Some(root) => root,
            None => return fail(r, EngineError::Internal("cannot map the document root".into())),
        };
        let site = match symlink_policy(r).and_then(|p| worker.site(root, lcf.index(), lcf.split_path_info(), p)) {
            Ok(s) => s,
            Err(e) => return fail(r, e),
        };
        let req = match build_request(r, lcf) {
            Ok(req) => req,
            Err(e) => return fail(r, e),
        };
        let mut settings = Settings {
            read_timeout: lcf.read_timeout(),
            intercept_errors: lcf.intercept_errors(),
            buffering: lcf.response.buffering(),
            peer: peer_name(r, backend),
        };
        let opts = ServeOptions {
            timeouts: matches!(backend, Backend::Fpm(_) | Backend::Upstream(_)).then(|| lcf.timeouts()),
            head_limit: Some(lcf.buffer_size()),
            ini: lcf.request_ini.clone(),
        };
        let fut: bridge::LocalFuture = match (backend, engine) {
            (Backend::Upstream(i), _) => match upstream::serve(r, i, site, req, opts) {
                Ok((fut, attempts)) => {
                    // The bridge's idle guard must outlast every attempt before the head.
                    settings.read_timeout = upstream::guard(lcf, attempts);
                    fut
                }
                Err(e) => return fail(r, e),
            },
            (_, Some(engine)) => Box::pin(async move { engine.serve_with(&site, req, opts).await.map(Output::Stream) }),
            (_, None) => return fail(r, EngineError::Internal("no engine for this location".into())),
        };
        // Polled on this thread: embedded PHP wakes nginx from the PHP thread; FPM's sockets are
        // nginx connections (`ngx_socket`), so their readiness comes from nginx's own epoll.
        let started = bridge::start_local(r, settings, fut);
        if let Err(e) = started {
            fail(r, EngineError::Internal(e));
        }
    }
}

/// The backend's name for `$upstream_addr`, in the request pool (null when out of memory: no
/// `$upstream_*` state then): the FPM address as written (`unix:/path`, `host:port`), the
/// `upstream` block's name, `embedded` or `executors`.
unsafe fn peer_name(r: *mut ngx_http_request_t, backend: Backend) -> *mut ngx_str_t {
    // SAFETY: live request on the nginx thread; allocations from its pool.
    unsafe {
        let main = Module::main_conf(&*r);
        let name = match backend {
            Backend::Embedded => "embedded".to_string(),
            Backend::Executors => "executors".to_string(),
            Backend::Fpm(i) => main.and_then(|m| m.pools.get(i)).map_or_else(String::new, |p| p.address.to_string()),
            Backend::Upstream(i) => main.and_then(|m| m.upstreams.get(i)).map_or_else(String::new, |u| u.name.clone()),
        };
        let pool = (*r).pool;
        let s = ngx_pnalloc(pool, std::mem::size_of::<ngx_str_t>()) as *mut ngx_str_t;
        let data = ngx_pnalloc(pool, name.len().max(1)) as *mut u8;
        if s.is_null() || data.is_null() {
            return std::ptr::null_mut();
        }
        std::ptr::copy_nonoverlapping(name.as_ptr(), data, name.len());
        s.write(ngx_str_t { len: name.len(), data });
        s
    }
}

/// The location's `root` (variables evaluated), without a trailing NUL or slash. The bytes live
/// in the request pool.
unsafe fn document_root<'r>(r: *mut ngx_http_request_t) -> Option<&'r [u8]> {
    // SAFETY: live request; nginx allocates `path` in the request pool, which outlives 'r uses.
    unsafe {
        let mut path = ngx_str_t { len: 0, data: std::ptr::null_mut() };
        let mut root_len: usize = 0;
        if ngx_http_map_uri_to_path(r, &mut path, &mut root_len, 0).is_null() {
            return None;
        }
        let mut root = std::slice::from_raw_parts(path.data, root_len.min(path.len));
        while root.len() > 1 && (root.last() == Some(&b'/') || root.last() == Some(&0)) {
            root = &root[..root.len() - 1];
        }
        Some(root)
    }
}

/// `SERVER_SOFTWARE`, as `fastcgi_params` sets it (`nginx/$nginx_version`).
const SERVER_SOFTWARE: &str = match ngx::ffi::NGINX_VER.to_str() {
    Ok(v) => v,
    Err(_) => "nginx",
};

/// `SERVER_NAME`: nginx's `$server_name`, the first `server_name` of the request's server block
/// (never the client's `Host`).
unsafe fn server_name(r: *mut ngx_http_request_t) -> Option<String> {
    // SAFETY: live request on the nginx thread; the core module's server conf is always set.
    let cscf = unsafe { NgxHttpCoreModule::server_conf(&*r) }?;
    Some(owned_text(str_of(&cscf.server_name)))
}

/// The location's `disable_symlinks` (with `from=` evaluated for this request), for the core's
/// script resolution to apply.
unsafe fn symlink_policy(r: *mut ngx_http_request_t) -> Result<SymlinkPolicy, EngineError> {
    // SAFETY: live request on the nginx thread; the core module's location conf is always set.
    unsafe {
        let Some(clcf) = NgxHttpCoreModule::location_conf(&*r) else {
            return Err(EngineError::Internal("no core location configuration".into()));
        };
        let mut from = ngx_str_t { len: 0, data: std::ptr::null_mut() };
        if !clcf.disable_symlinks_from.is_null()
            && ngx_http_complex_value(r, clcf.disable_symlinks_from, &mut from) != NGX_OK as ngx_int_t
        {
            return Err(EngineError::Internal("cannot evaluate disable_symlinks from=".into()));
        }
        Ok(SymlinkPolicy::from_nginx(clcf.disable_symlinks as u32, (from.len > 0).then(|| str_of(&from))))
    }
}

/// `b` as a `String`: validated with the standard (fast) UTF-8 check, lossy only when invalid.
fn owned_text(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(b).into_owned(),
    }
}

fn str_of(s: &ngx_str_t) -> &[u8] {
    s.as_bytes()
}

/// Percent-encodes what `Site::resolve` would misread in a decoded URI path.
fn encode_path(path: &[u8]) -> String {
    let mut out = String::with_capacity(path.len());
    for &b in path {
        if b.is_ascii_graphic() && b != b'%' && b != b'?' && b != b'#' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

unsafe fn sockaddr_to_std(sa: *const sockaddr) -> Option<SocketAddr> {
    if sa.is_null() {
        return None;
    }
    // SAFETY: nginx's sockaddrs are sized for their family.
    unsafe {
        match (*sa).sa_family as i32 {
            libc::AF_INET => {
                let sin = &*(sa as *const libc::sockaddr_in);
                let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                Some(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(sin.sin_port))))
            }
            libc::AF_INET6 => {
                let sin6 = &*(sa as *const libc::sockaddr_in6);
                let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                Some(SocketAddr::V6(SocketAddrV6::new(ip, u16::from_be(sin6.sin6_port), 0, sin6.sin6_scope_id)))
            }
            _ => None,
        }
    }
}

/// Builds the engine request from `r`: method, target, headers, addresses, `fephp_param`s and
/// the body (memory buffers copied, the temp file passed as a dup'd descriptor).
unsafe fn build_request(r: *mut ngx_http_request_t, lcf: &LocConf) -> Result<Request, EngineError> {
    // SAFETY: live request on the nginx thread; all pointers below come from it.
    unsafe {
        let method = owned_text(str_of(&(*r).method_name));
        let unparsed = owned_text(str_of(&(*r).unparsed_uri));
        // The request line target unless nginx rewrote the URI (rewrite, try_files, index):
        // then the current URI decides the script and REQUEST_URI stays the original.
        let rewritten = (*r).valid_unparsed_uri() == 0 || (*r).internal() != 0;
        let (uri, original_uri) = if rewritten {
            let mut u = encode_path(str_of(&(*r).uri));
            if (*r).args.len > 0 {
                u.push('?');
                u.push_str(&String::from_utf8_lossy(str_of(&(*r).args)));
            }
            (u, Some(unparsed))
        } else {
            (unparsed, None)
        };
        let proto = str_of(&(*r).http_protocol);
        let protocol = if proto.is_empty() { "HTTP/1.0".into() } else { owned_text(proto) };
        let mut http = HttpRequest {
            method,
            uri,
            protocol,
            headers: Vec::with_capacity((*r).headers_in.headers.part.nelts),
            remote_addr: None,
            local_addr: None,
            server_name: server_name(r),
            server_software: Some(SERVER_SOFTWARE.into()),
            https: false,
            extra_params: Params::default(),
        };

        let mut part: *const ngx_list_part_t = &(*r).headers_in.headers.part;
        while !part.is_null() {
            let elts = std::slice::from_raw_parts((*part).elts as *const ngx_table_elt_t, (*part).nelts);
            for h in elts {
                if h.hash == 0 {
                    continue; // deleted header
                }
                http.headers.push((owned_text(str_of(&h.key)), str_of(&h.value).to_vec()));
            }
            part = (*part).next;
        }

        let c = (*r).connection;
        http.remote_addr = sockaddr_to_std((*c).sockaddr);
        if ngx_connection_local_sockaddr(c, std::ptr::null_mut(), 0) == NGX_OK as ngx_int_t {
            http.local_addr = sockaddr_to_std((*c).local_sockaddr);
        }
        http.https = !(*c).ssl.is_null();

        let mut extra = Params::default();
        if let Some(original) = &original_uri {
            extra.push("REQUEST_URI", original.as_bytes());
        }
        for p in lcf.params() {
            let mut value = ngx_str_t { len: 0, data: std::ptr::null_mut() };
            if ngx_http_complex_value(r, p.value, &mut value) != NGX_OK as ngx_int_t {
                return Err(EngineError::Internal(format!("cannot evaluate fephp_param {}", p.name)));
            }
            if p.skip_empty && value.len == 0 {
                continue;
            }
            extra.push(p.name.as_bytes(), str_of(&value));
        }
        http.extra_params = extra;

        let mut body = RequestBody::empty();
        let rb = (*r).request_body;
        if !rb.is_null() {
            let mut cl = (*rb).bufs;
            while !cl.is_null() {
                let b = (*cl).buf;
                if (*b).in_file() != 0 && !(*b).file.is_null() {
                    let len = ((*b).file_last - (*b).file_pos) as u64;
                    if len > 0 {
                        let fd = libc::dup((*(*b).file).fd);
                        if fd < 0 {
                            return Err(EngineError::Internal(format!(
                                "dup of the request body file: {}",
                                std::io::Error::last_os_error()
                            )));
                        }
                        body.push(BodyPart::File { file: File::from_raw_fd(fd), offset: (*b).file_pos as u64, len });
                    }
                } else if !(*b).pos.is_null() && (*b).last > (*b).pos {
                    let bytes = std::slice::from_raw_parts((*b).pos, (*b).last.offset_from((*b).pos) as usize);
                    body.push(BodyPart::Bytes(Bytes::copy_from_slice(bytes)));
                }
                cl = (*cl).next;
            }
        }
        Ok(Request { http, body })
    }
}

#[cfg(test)]
mod tests {
    use super::encode_path;

    #[test]
    fn encodes_only_what_resolve_would_misread() {
        assert_eq!(encode_path(b"/a b/x.php"), "/a%20b/x.php");
        assert_eq!(encode_path(b"/100%/q?.php"), "/100%25/q%3F.php");
        assert_eq!(encode_path(b"/index.php"), "/index.php");
    }
}
