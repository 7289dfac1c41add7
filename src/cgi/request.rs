//! [`HttpRequest`] and [`build_params`]: the CGI params PHP sees, built the same way for every
//! backend (the set nginx's `fastcgi_params` gives, plus the script fields and `HTTP_*`).

use std::borrow::Cow;
use std::net::SocketAddr;

use super::{Params, Script, Site};

/// The parts of an HTTP request the CGI layer needs. Surfaces fill it from their own request
/// type (hyper, nginx, the C ABI).
#[derive(Debug, Clone)]
pub struct HttpRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The raw request target as received: `/path?query`.
    pub uri: String,
    /// `HTTP/1.1`, `HTTP/1.0`, `HTTP/2.0`.
    pub protocol: String,
    /// Request headers in arrival order, names as received.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Client address (`REMOTE_ADDR`, `REMOTE_PORT`).
    pub remote_addr: Option<SocketAddr>,
    /// Local address the request came in on (`SERVER_ADDR`, `SERVER_PORT`).
    pub local_addr: Option<SocketAddr>,
    /// `SERVER_NAME`: the configured name of the server (nginx: the server block's first
    /// `server_name`, what `$server_name` gives `fastcgi_params`). `None` (the harness, the C
    /// ABI, which have no configured name): the `Host` header without port, or `localhost`.
    pub server_name: Option<String>,
    /// `SERVER_SOFTWARE`; `None`: [`SERVER_SOFTWARE`] (`fe-php/<version>`). The nginx module
    /// says `nginx/<version>`, like `fastcgi_params`.
    pub server_software: Option<Cow<'static, str>>,
    /// True when the client connection is TLS (`HTTPS=on`, `REQUEST_SCHEME=https`).
    pub https: bool,
    /// Extra params set by the surface (nginx `fephp_param`), applied last so they override.
    pub extra_params: Params,
}

impl HttpRequest {
    /// A request with the given method and target and nothing else set.
    pub fn new(method: &str, uri: &str) -> Self {
        HttpRequest {
            method: method.to_string(),
            uri: uri.to_string(),
            protocol: "HTTP/1.1".to_string(),
            headers: Vec::new(),
            remote_addr: None,
            local_addr: None,
            server_name: None,
            server_software: None,
            https: false,
            extra_params: Params::default(),
        }
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
    }

    /// The query string (after `?`, without the fragment).
    pub fn query(&self) -> &str {
        match self.uri.find('?') {
            Some(q) => self.uri[q + 1..].split('#').next().unwrap_or(""),
            None => "",
        }
    }
}

/// `SERVER_SOFTWARE` reported to PHP.
pub const SERVER_SOFTWARE: &str = concat!("fe-php/", env!("CARGO_PKG_VERSION"));

/// Builds the params for `req` running `script` of `site`, with a body of `content_length`
/// bytes. Header rules follow nginx: each header becomes `HTTP_` + upper-case name with `-` →
/// `_`; names with other characters than letters, digits and `-` are dropped (so `X_Forwarded`
/// can't spoof `HTTP_X_FORWARDED`); `Proxy` is dropped (httpoxy); repeated headers are joined
/// with `, ` (`; ` for `Cookie`).
pub fn build_params(req: &HttpRequest, site: &Site, script: &Script, content_length: u64) -> Params {
    let mut p = Params::with_capacity(32 + req.headers.len());
    let root = super::text(site.root().as_os_str().as_encoded_bytes());
    let mut itoa_buf = itoa_fmt::Buffer::default();

    p.push("GATEWAY_INTERFACE", "CGI/1.1");
    p.push("SERVER_SOFTWARE", req.server_software.as_deref().unwrap_or(SERVER_SOFTWARE));
    p.push("QUERY_STRING", req.query());
    p.push("REQUEST_METHOD", &req.method);
    p.push("CONTENT_TYPE", req.header("content-type").unwrap_or(b""));
    if content_length > 0 || req.header("content-length").is_some() {
        p.push("CONTENT_LENGTH", itoa_buf.format(content_length));
    } else {
        p.push("CONTENT_LENGTH", "");
    }
    p.push("SCRIPT_FILENAME", super::text(script.filename.as_os_str().as_encoded_bytes()).as_bytes());
    p.push("SCRIPT_NAME", &script.script_name);
    if !script.path_info.is_empty() {
        p.push("PATH_INFO", &script.path_info);
    }
    p.push("REQUEST_URI", &req.uri);
    p.push_concat(b"DOCUMENT_URI", &[script.script_name.as_bytes(), script.path_info.as_bytes()]);
    p.push("DOCUMENT_ROOT", root.as_bytes());
    p.push("SERVER_PROTOCOL", &req.protocol);
    p.push("REQUEST_SCHEME", if req.https { "https" } else { "http" });
    if req.https {
        p.push("HTTPS", "on");
    }
    let mut ip_buf = ip_fmt::Buffer::default();
    if let Some(addr) = req.remote_addr {
        p.push("REMOTE_ADDR", ip_buf.format(addr.ip()));
        p.push("REMOTE_PORT", itoa_buf.format(addr.port()));
    }
    if let Some(addr) = req.local_addr {
        p.push("SERVER_ADDR", ip_buf.format(addr.ip()));
        p.push("SERVER_PORT", itoa_buf.format(addr.port()));
    }
    let server_name: &[u8] = match (&req.server_name, req.header("host")) {
        (Some(name), _) => name.as_bytes(),
        (None, Some(host)) => strip_port(host),
        (None, None) => b"localhost",
    };
    p.push("SERVER_NAME", server_name);
    p.push("REDIRECT_STATUS", "200");

    push_http_headers(&mut p, &req.headers);

    for (name, value) in req.extra_params.iter() {
        p.remove(name);
        p.push(name, value);
    }
    p
}

fn push_http_headers(p: &mut Params, headers: &[(String, Vec<u8>)]) {
    // Repeated names are joined into their first occurrence. Which headers repeat is found from
    // a case-insensitive hash of each name: names are compared only when their hashes match
    // (nearly never); up to 16 headers on the stack, more through a sort (O(n log n)).
    const SMALL: usize = 16;
    let n = headers.len();
    let mut small = ([0u64; SMALL], [0usize; SMALL], [false; SMALL]);
    let mut big;
    let (hashes, first_of, repeated): (&mut [u64], &mut [usize], &mut [bool]) = if n <= SMALL {
        (&mut small.0[..n], &mut small.1[..n], &mut small.2[..n])
    } else {
        big = (vec![0u64; n], vec![0usize; n], vec![false; n]);
        (&mut big.0[..], &mut big.1[..], &mut big.2[..])
    };
    for (i, (name, _)) in headers.iter().enumerate() {
        hashes[i] = name_hash(name);
        first_of[i] = i;
    }
    let same = |hashes: &[u64], a: usize, b: usize| hashes[a] == hashes[b] && headers[a].0.eq_ignore_ascii_case(&headers[b].0);
    if n <= SMALL {
        for i in 1..n {
            if let Some(j) = (0..i).find(|&j| first_of[j] == j && same(hashes, i, j)) {
                first_of[i] = j;
                repeated[j] = true;
            }
        }
    } else {
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| (hashes[i], i));
        let mut run = 0; // start of the run of equal hashes in `order`
        for w in 1..n {
            let i = order[w];
            if hashes[i] != hashes[order[w - 1]] {
                run = w;
                continue;
            }
            if let Some(&first) = order[run..w].iter().find(|&&f| first_of[f] == f && same(hashes, i, f)) {
                first_of[i] = first;
                repeated[first] = true;
            }
        }
    }
    for (i, (name, value)) in headers.iter().enumerate() {
        if first_of[i] != i
            || name.is_empty()
            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            || name.eq_ignore_ascii_case("proxy")
        {
            continue; // a repeat is joined into the first occurrence below
        }
        let mut joined: Option<Vec<u8>> = None;
        if repeated[i] {
            let sep: &[u8] = if name.eq_ignore_ascii_case("cookie") { b"; " } else { b", " };
            for k in i + 1..n {
                if first_of[k] == i {
                    let j = joined.get_or_insert_with(|| value.clone());
                    j.extend_from_slice(sep);
                    j.extend_from_slice(&headers[k].1);
                }
            }
        }
        let value = joined.as_deref().unwrap_or(value);
        p.push_with(
            |b| {
                b.extend_from_slice(b"HTTP_");
                b.extend(name.bytes().map(|c| if c == b'-' { b'_' } else { c.to_ascii_uppercase() }));
            },
            value,
        );
    }
}

/// FNV-1a of the ASCII-lowercased name.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b.to_ascii_lowercase() as u64).wrapping_mul(0x100_0000_01b3))
}

/// `host` without its `:port` (an IPv6 literal keeps its brackets).
fn strip_port(host: &[u8]) -> &[u8] {
    if host.starts_with(b"[") {
        return match host.iter().position(|&b| b == b']') {
            Some(end) => &host[..end + 1],
            None => host,
        };
    }
    match host.iter().rposition(|&b| b == b':') {
        Some(colon) => &host[..colon],
        None => host,
    }
}

/// IP address formatting into a stack buffer (no allocation; IPv4 without `core::fmt`).
mod ip_fmt {
    use std::io::Write;
    use std::net::IpAddr;

    pub struct Buffer([u8; 48]);

    impl Default for Buffer {
        fn default() -> Self {
            Buffer([0; 48])
        }
    }

    impl Buffer {
        pub fn format(&mut self, ip: IpAddr) -> &[u8] {
            let mut len = 0;
            match ip {
                IpAddr::V4(v4) => {
                    for (i, octet) in v4.octets().into_iter().enumerate() {
                        if i > 0 {
                            self.0[len] = b'.';
                            len += 1;
                        }
                        if octet >= 100 {
                            self.0[len] = b'0' + octet / 100;
                            len += 1;
                        }
                        if octet >= 10 {
                            self.0[len] = b'0' + octet / 10 % 10;
                            len += 1;
                        }
                        self.0[len] = b'0' + octet % 10;
                        len += 1;
                    }
                }
                IpAddr::V6(v6) => {
                    let mut cursor = std::io::Cursor::new(&mut self.0[..]);
                    // An IPv6 text form is at most 45 bytes: it always fits.
                    let _ = write!(cursor, "{v6}");
                    len = cursor.position() as usize;
                }
            }
            &self.0[..len]
        }
    }
}

/// Integer formatting into a reusable stack buffer (no allocation).
mod itoa_fmt {
    #[derive(Default)]
    pub struct Buffer([u8; 20]);

    impl Buffer {
        pub fn format(&mut self, n: impl Into<u64>) -> &[u8] {
            let mut n: u64 = n.into();
            let mut i = self.0.len();
            loop {
                i -= 1;
                self.0[i] = b'0' + (n % 10) as u8;
                n /= 10;
                if n == 0 {
                    break;
                }
            }
            &self.0[i..]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_ip_addresses_like_display() {
        let mut buf = ip_fmt::Buffer::default();
        for ip in ["0.0.0.0", "127.0.0.1", "10.20.255.9", "192.168.100.200", "::1", "2001:db8::8a2e:370:7334", "::ffff:1.2.3.4"] {
            let parsed: std::net::IpAddr = ip.parse().unwrap();
            assert_eq!(buf.format(parsed), parsed.to_string().as_bytes(), "{ip}");
        }
    }

    #[test]
    fn params_match_fastcgi_params() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.php"), "<?php").unwrap();
        let site = Site::new(dir.path(), "index.php", &[".php".into()], true, false).unwrap();
        let mut req = HttpRequest::new("POST", "/a.php/x/y?q=1&r=2");
        req.headers = vec![
            ("Host".into(), b"example.org:8080".to_vec()),
            ("Content-Type".into(), b"text/plain".to_vec()),
            ("X-Forwarded-For".into(), b"1.1.1.1".to_vec()),
            ("x-forwarded-for".into(), b"2.2.2.2".to_vec()),
            ("Cookie".into(), b"a=1".to_vec()),
            ("Cookie".into(), b"b=2".to_vec()),
            ("X_Spoof".into(), b"bad".to_vec()),
            ("Proxy".into(), b"http://evil".to_vec()),
        ];
        req.remote_addr = Some("10.0.0.1:5555".parse().unwrap());
        req.local_addr = Some("127.0.0.1:8080".parse().unwrap());
        req.extra_params.push("SERVER_NAME", "override");
        let script = site.resolve(&req.uri).unwrap();
        let p = build_params(&req, &site, &script, 5);
        let get = |n: &str| p.get_str(n).unwrap_or_else(|| panic!("missing {n}"));
        assert_eq!(get("QUERY_STRING"), "q=1&r=2");
        assert_eq!(get("REQUEST_METHOD"), "POST");
        assert_eq!(get("CONTENT_LENGTH"), "5");
        assert_eq!(get("CONTENT_TYPE"), "text/plain");
        assert_eq!(get("SCRIPT_NAME"), "/a.php");
        assert_eq!(get("PATH_INFO"), "/x/y");
        assert_eq!(get("DOCUMENT_URI"), "/a.php/x/y");
        assert_eq!(get("REQUEST_URI"), "/a.php/x/y?q=1&r=2");
        assert!(get("SCRIPT_FILENAME").ends_with("/a.php"));
        assert_eq!(get("REMOTE_ADDR"), "10.0.0.1");
        assert_eq!(get("REMOTE_PORT"), "5555");
        assert_eq!(get("SERVER_PORT"), "8080");
        assert_eq!(get("SERVER_NAME"), "override");
        assert_eq!(get("SERVER_SOFTWARE"), SERVER_SOFTWARE);
        assert_eq!(get("HTTP_HOST"), "example.org:8080");
        assert_eq!(get("HTTP_X_FORWARDED_FOR"), "1.1.1.1, 2.2.2.2");
        assert_eq!(get("HTTP_COOKIE"), "a=1; b=2");
        assert_eq!(get("REQUEST_SCHEME"), "http");
        assert!(p.get(b"HTTP_X_SPOOF").is_none());
        assert!(p.get(b"HTTP_PROXY").is_none());
        assert!(p.get(b"HTTPS").is_none());
    }

    #[test]
    fn repeated_headers_join_into_the_first_few_or_many() {
        for filler in [0usize, 40] {
            let mut req = HttpRequest::new("GET", "/x.php");
            req.headers.push(("X-A".into(), b"1".to_vec()));
            for k in 0..filler {
                req.headers.push((format!("X-F{k}"), b"f".to_vec()));
            }
            req.headers.push(("cookie".into(), b"a=1".to_vec()));
            req.headers.push(("x-a".into(), b"2".to_vec()));
            req.headers.push(("Cookie".into(), b"b=2".to_vec()));
            req.headers.push(("X-A".into(), b"3".to_vec()));
            let site = Site::new(std::env::temp_dir().as_path(), "index.php", &[".php".to_string()], true, false).unwrap();
            let script = crate::cgi::Script { filename: "/x.php".into(), script_name: "/x.php".into(), path_info: String::new() };
            let p = build_params(&req, &site, &script, 0);
            assert_eq!(p.get(b"HTTP_X_A"), Some(&b"1, 2, 3"[..]), "{filler}");
            assert_eq!(p.get(b"HTTP_COOKIE"), Some(&b"a=1; b=2"[..]), "{filler}");
            assert_eq!(p.iter().filter(|(n, _)| *n == b"HTTP_X_A").count(), 1);
            if filler > 0 {
                assert_eq!(p.get(b"HTTP_X_F39"), Some(&b"f"[..]));
            }
        }
    }

    #[test]
    fn a_configured_server_name_and_software_win_over_the_host_header() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.php"), "<?php").unwrap();
        let site = Site::new(dir.path(), "index.php", &[".php".into()], true, false).unwrap();
        let mut req = HttpRequest::new("GET", "/a.php");
        req.headers = vec![("Host".into(), b"evil.example:80".to_vec())];
        let script = site.resolve(&req.uri).unwrap();
        let p = build_params(&req, &site, &script, 0);
        assert_eq!(p.get_str("SERVER_NAME"), Some("evil.example"), "no configured name: the Host");
        req.server_name = Some("example.org".into());
        req.server_software = Some("nginx/1.28.3".into());
        let p = build_params(&req, &site, &script, 0);
        assert_eq!(p.get_str("SERVER_NAME"), Some("example.org"));
        assert_eq!(p.get_str("SERVER_SOFTWARE"), Some("nginx/1.28.3"));
        assert_eq!(p.get_str("HTTP_HOST"), Some("evil.example:80"));
        req.server_name = Some(String::new());
        let p = build_params(&req, &site, &script, 0);
        assert_eq!(p.get_str("SERVER_NAME"), Some(""), "an empty configured name stays empty, like $server_name");
    }

    #[test]
    fn server_name_from_host_without_port() {
        assert_eq!(strip_port(b"a.org:80"), b"a.org");
        assert_eq!(strip_port(b"[::1]:80"), b"[::1]");
        assert_eq!(strip_port(b"a.org"), b"a.org");
    }
}
