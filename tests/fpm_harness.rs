//! `fe-php serve` in FPM mode against a REAL php-fpm (php8.2-fpm), over HTTP.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::{fake_fpm, http, read_fcgi_request, scripts_dir, Fpm, Harness};

fn fpm_toml(fpm: &Fpm) -> String {
    format!("use_fpm = true\nfpm_socket = \"{}\"\nworker_pool_size = 4\n", fpm.address)
}

#[test]
fn hello_world_over_unix_and_tcp() {
    for fpm in [Fpm::start_unix(2), Fpm::start_tcp(2)] {
        let h = Harness::start(&scripts_dir(), &fpm_toml(&fpm));
        let r = h.get("/hello.php");
        assert_eq!(r.status, 200, "{}", h.log());
        assert_eq!(r.text(), "Hello, world!\n");
        assert_eq!(r.header("content-type"), Some("text/html; charset=UTF-8"));
        // keep-alive reuse: many requests, connections stay bounded by the pool size
        for _ in 0..20 {
            assert_eq!(h.get("/hello.php").status, 200);
        }
        let metrics = h.get("/_metrics").text();
        assert!(metrics.contains("fephp_requests_total{class=\"2xx\"} 21"), "{metrics}");
        assert!(metrics.contains("fephp_pool_connections_reused_total"), "{metrics}");
        let opened = metric(&metrics, "fephp_pool_connections_opened_total");
        assert!(opened <= 4.0, "opened {opened} connections for sequential requests");
    }
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no metric {name} in {text}"))
}

#[test]
fn get_post_multipart_cookies() {
    let fpm = Fpm::start_unix(2);
    let h = Harness::start(&scripts_dir(), &fpm_toml(&fpm));
    let r = http(h.addr, "GET", "/echo_request.php?a=1&b[]=x&b[]=y", &[("Cookie", "c1=v1; c2=v2")], b"");
    assert_eq!(r.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["get"]["a"], "1");
    assert_eq!(v["get"]["b"][1], "y");
    assert_eq!(v["cookie"]["c2"], "v2");

    let r = http(
        h.addr,
        "POST",
        "/echo_request.php",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"name=J%C3%BCrgen&n=42",
    );
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["post"]["name"], "Jürgen");
    assert_eq!(v["post"]["n"], "42");

    let file = vec![7u8; 100_000];
    let mut body = Vec::new();
    body.extend_from_slice(b"--XyZ\r\nContent-Disposition: form-data; name=\"field\"\r\n\r\nvalue\r\n");
    body.extend_from_slice(b"--XyZ\r\nContent-Disposition: form-data; name=\"up\"; filename=\"a.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n");
    body.extend_from_slice(&file);
    body.extend_from_slice(b"\r\n--XyZ--\r\n");
    let r = http(h.addr, "POST", "/echo_request.php", &[("Content-Type", "multipart/form-data; boundary=XyZ")], &body);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["post"]["field"], "value");
    assert_eq!(v["files"]["up"]["name"], "a.bin");
    assert_eq!(v["files"]["up"]["size"], 100_000);
    assert_eq!(v["files"]["up"]["sha1"], sha1_hex(&file));
}

fn sha1_hex(data: &[u8]) -> String {
    // Compare against PHP's own sha1 via a second request would be circular; use sha1sum.
    let mut child = std::process::Command::new("sha1sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string()
}

#[test]
fn status_headers_cookies_redirect() {
    let fpm = Fpm::start_unix(2);
    let h = Harness::start(&scripts_dir(), &fpm_toml(&fpm));
    let r = h.get("/status_headers.php");
    assert_eq!(r.status, 418);
    assert_eq!(r.header("x-custom"), Some("one"));
    assert_eq!(r.all("x-multi"), ["a", "b"]);
    let cookies = r.all("set-cookie");
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    assert!(cookies[0].starts_with("first=1"));
    assert!(cookies[1].starts_with("second=2") && cookies[1].contains("HttpOnly"));
    let r = h.get("/redirect.php");
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("/hello.php"));
}

#[test]
fn big_post_and_streamed_big_response() {
    let fpm = Fpm::start_unix(2);
    let h = Harness::start(&scripts_dir(), &fpm_toml(&fpm));
    let body: Vec<u8> = (0..5 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let r = http(h.addr, "POST", "/echo_request.php", &[("Content-Type", "application/octet-stream")], &body);
    assert_eq!(r.status, 200, "{}", h.log());
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["input_len"], 5 * 1024 * 1024);
    assert_eq!(v["input_sha1"], sha1_hex(&body));

    let r = h.get("/big_output.php?mb=50");
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 50 * 1024 * 1024);
    assert!(r.body.chunks(16).all(|c| c == b"0123456789abcdef"));
}

#[test]
fn server_variables() {
    let fpm = Fpm::start_unix(2);
    let h = Harness::start(&scripts_dir(), &fpm_toml(&fpm));
    let r = http(h.addr, "GET", "/server_vars.php/extra/info?x=1", &[("X-Custom", "hi")], b"");
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let root = scripts_dir().canonicalize().unwrap();
    assert_eq!(v["REQUEST_METHOD"], "GET");
    assert_eq!(v["REQUEST_URI"], "/server_vars.php/extra/info?x=1");
    assert_eq!(v["QUERY_STRING"], "x=1");
    assert_eq!(v["SCRIPT_NAME"], "/server_vars.php");
    assert_eq!(v["PATH_INFO"], "/extra/info");
    assert_eq!(v["SCRIPT_FILENAME"], format!("{}/server_vars.php", root.display()));
    assert_eq!(v["DOCUMENT_ROOT"], root.display().to_string());
    assert_eq!(v["SERVER_PROTOCOL"], "HTTP/1.1");
    assert_eq!(v["GATEWAY_INTERFACE"], "CGI/1.1");
    assert_eq!(v["REMOTE_ADDR"], "127.0.0.1");
    assert_eq!(v["SERVER_PORT"], h.addr.port().to_string());
    assert_eq!(v["HTTP_HOST"], "localhost");
    assert_eq!(v["SERVER_NAME"], "localhost");
    assert_eq!(v["HTTP_X_CUSTOM"], "hi");
    assert_eq!(v["REQUEST_SCHEME"], "http");
    assert_eq!(v["PHP_SELF"], "/server_vars.php/extra/info");
}

/// `server.server_name` is SERVER_NAME whatever Host the client sends (no host-header
/// poisoning of links built from SERVER_NAME); HTTP_HOST still shows what the client sent.
#[test]
fn server_name_key_is_not_taken_from_the_host_header() {
    let fpm = Fpm::start_unix(1);
    let h = Harness::start_with_server(&scripts_dir(), "server_name = \"example.org\"", &fpm_toml(&fpm));
    let r = http(h.addr, "GET", "/server_vars.php", &[("Host", "evil.test")], b"");
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["SERVER_NAME"], "example.org");
    assert_eq!(v["HTTP_HOST"], "evil.test");
}

#[test]
fn traversal_corpus_never_reaches_php() {
    let fpm = Fpm::start_unix(2);
    let h = Harness::start(&scripts_dir(), &fpm_toml(&fpm));
    let refused = [
        "/../support/mod.rs", "/../fpm_harness.rs", "/%2e%2e/support/php.ini", "/sub/%2e%2e/%2e%2e/Cargo.toml",
        "/hello.php%00.txt", "/uploads/image.jpg", "/uploads/image.jpg/x.php", "/style.css", "/..%2f..%2fetc/passwd",
        "/nope.php", "/sub/../hello.php",
    ];
    for path in refused {
        let r = http(h.addr, "GET", path, &[], b"");
        assert!(r.status == 403 || r.status == 404 || r.status == 400, "{path}: {} {}", r.status, r.text());
        assert!(!r.text().contains("evil") && !r.text().contains("Hello"), "{path} executed: {}", r.text());
    }
    assert_eq!(h.get("/").text(), "index\n");
    assert_eq!(h.get("/sub/").text(), "sub index\n");
    assert_eq!(h.get("/info.php/a/b").text(), "/a/b");
    let metrics = h.get("/_metrics").text();
    assert!(metric(&metrics, "fephp_backend_errors_total{kind=\"forbidden\"}") >= 5.0, "{metrics}");
}

#[test]
fn fatal_error_exit_and_exception_then_next_request_works() {
    let fpm = Fpm::start_unix(1);
    let h = Harness::start(&scripts_dir(), &fpm_toml(&fpm));
    assert_eq!(h.get("/fatal.php").status, 500);
    assert_eq!(h.get("/exception.php").status, 500);
    let r = h.get("/exit_mid.php");
    assert_eq!((r.status, r.text().as_str()), (200, "partial"));
    assert_eq!(h.get("/hello.php").status, 200);
    assert!(h.log().contains("Uncaught RuntimeException: boom"), "PHP stderr should reach our log: {}", h.log());
}

#[test]
fn fpm_down_is_502_and_health_is_503() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!("use_fpm = true\nfpm_socket = \"unix:{}/none.sock\"\n", dir.path().display());
    let h = Harness::start(&scripts_dir(), &toml);
    let r = h.get("/hello.php");
    assert_eq!(r.status, 502);
    let health = h.get("/_health");
    assert_eq!(health.status, 503);
    assert!(health.text().contains("\"ok\":false"), "{}", health.text());
    let fpm = Fpm::start_unix(1);
    let h = Harness::start(&scripts_dir(), &fpm_toml(&fpm));
    let health = h.get("/_health");
    assert_eq!(health.status, 200, "{}", health.text());
    assert!(health.text().contains("\"backend\":\"fpm\""));
}

#[test]
fn slow_fpm_is_504() {
    let fpm = Fpm::start_unix(2);
    let toml = format!("{}read_timeout_ms = 300\n", fpm_toml(&fpm));
    let h = Harness::start(&scripts_dir(), &toml);
    assert_eq!(h.get("/sleep.php?s=3").status, 504);
    assert_eq!(h.get("/hello.php").status, 200);
}

#[test]
fn pool_exhausted_queues_then_503() {
    let fpm = Fpm::start_unix(4);
    let toml = format!(
        "use_fpm = true\nfpm_socket = \"{}\"\nworker_pool_size = 1\nqueue_size = 8\nqueue_timeout_ms = 300\n",
        fpm.address
    );
    let h = Harness::start(&scripts_dir(), &toml);
    let addr = h.addr;
    let slow = std::thread::spawn(move || http(addr, "GET", "/sleep.php?s=2", &[], b"").status);
    support::wait_until("the slow request to hold the only connection", Duration::from_secs(5), || {
        h.get("/_metrics").text().contains("fephp_pool_connections_in_use 1")
    });
    let r = h.get("/hello.php");
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(slow.join().unwrap(), 200);
    // A queued request that gets the connection in time is served.
    let slow = std::thread::spawn(move || http(addr, "GET", "/sleep.php?s=0.1", &[], b"").status);
    let queued = http(addr, "GET", "/hello.php", &[], b"");
    assert_eq!(queued.status, 200);
    assert_eq!(slow.join().unwrap(), 200);
}

#[test]
fn fpm_killed_and_restarted_recovers() {
    let mut fpm = Fpm::start_unix(2);
    let h = Harness::start(&scripts_dir(), &fpm_toml(&fpm));
    for _ in 0..4 {
        assert_eq!(h.get("/hello.php").status, 200);
    }
    fpm.kill();
    assert_eq!(h.get("/hello.php").status, 502);
    fpm.restart();
    for _ in 0..6 {
        assert_eq!(h.get("/hello.php").status, 200, "{}", h.log());
    }
    let metrics = h.get("/_metrics").text();
    assert_eq!(metric(&metrics, "fephp_pool_connections_in_use"), 0.0, "{metrics}");
}

#[test]
fn garbage_from_fake_fpm_is_502_and_connection_dropped() {
    fn garbage(mut s: TcpStream) {
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\n\r\nthis is not fastcgi at all");
    }
    let addr = fake_fpm(garbage);
    let toml = format!("use_fpm = true\nfpm_socket = \"{addr}\"\nworker_pool_size = 2\n");
    let h = Harness::start(&scripts_dir(), &toml);
    for _ in 0..3 {
        assert_eq!(h.get("/hello.php").status, 502);
    }
    let metrics = h.get("/_metrics").text();
    assert_eq!(metric(&metrics, "fephp_pool_connections_open"), 0.0, "{metrics}");
    assert!(metric(&metrics, "fephp_backend_errors_total{kind=\"protocol\"}") >= 3.0);
}

#[test]
fn stalled_fake_fpm_is_504() {
    fn stall(s: TcpStream) {
        std::thread::sleep(Duration::from_secs(5));
        drop(s);
    }
    let addr = fake_fpm(stall);
    let toml = format!("use_fpm = true\nfpm_socket = \"{addr}\"\nread_timeout_ms = 200\n");
    let h = Harness::start(&scripts_dir(), &toml);
    assert_eq!(h.get("/hello.php").status, 504);
}

#[test]
fn bad_config_names_key_and_exits_nonzero() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[server]\ndocument_root = \"/tmp\"\nlisten = \"nope\"\n", "server.listen"),
        ("[server]\ndocument_root = \"/tmp\"\n[php]\nworker_pool_size = -1\n", "php.worker_pool_size"),
        ("[server]\ndocument_root = \"/tmp\"\n[php]\nbogus = 1\n", "php.bogus"),
        ("[server]\ndocument_root = \"/definitely/not/here\"\n", "server.document_root"),
        ("[server]\ndocument_root = \"/tmp\"\n[php]\nini_file = \"/definitely/not/here.ini\"\n", "php.ini_file"),
    ];
    for (text, key) in cases {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_fe-php"))
            .args(["serve", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{text}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(key), "{key} not named in: {err}");
        assert_eq!(out.status.code(), Some(2), "{text}: {err}");
        if key == "php.ini_file" {
            assert!(err.contains("cannot read php.ini file /definitely/not/here.ini"), "{err}");
        }
    }
}

#[test]
fn sigterm_finishes_in_flight_request_and_exits_zero() {
    let fpm = Fpm::start_unix(2);
    let mut h = Harness::start(&scripts_dir(), &fpm_toml(&fpm));
    let addr = h.addr;
    let slow = std::thread::spawn(move || http(addr, "GET", "/sleep.php?s=1", &[], b""));
    support::wait_until("the request to be in flight", Duration::from_secs(5), || {
        h.get("/_metrics").text().contains("fephp_pool_connections_in_use 1")
    });
    let status = h.terminate();
    assert!(status.success(), "exit status {status}");
    let r = slow.join().unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "slept 1\n"));
}

#[test]
fn pool_larger_than_fpm_children_does_not_stall() {
    // FPM children block on an idle kept-alive connection; a pool bigger than FPM's static
    // pool must release idle connections while a fresh one waits to be accepted.
    let fpm = Fpm::start_unix(2);
    let toml = format!("use_fpm = true\nfpm_socket = \"{}\"\nworker_pool_size = 8\nread_timeout_ms = 10000\n", fpm.address);
    let h = Harness::start(&scripts_dir(), &toml);
    for _round in 0..3 {
        let addr = h.addr;
        let threads: Vec<_> = (0..12)
            .map(|_| std::thread::spawn(move || http(addr, "GET", "/sleep.php?s=0.05", &[], b"").status))
            .collect();
        let statuses: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}\n{}", h.log());
    }
}

#[test]
fn fpm_children_recycling_is_survived_by_stale_connection_retry() {
    // Each FPM child exits after 2 requests, closing our kept-alive connection under us.
    let fpm = Fpm::start_unix_with(2, "pm.max_requests = 2");
    let h = Harness::start(&scripts_dir(), &fpm_toml(&fpm));
    for i in 0..20 {
        let r = h.get("/hello.php");
        assert_eq!(r.status, 200, "request {i}: {}", h.log());
    }
}

#[test]
fn worker_max_requests_recycles_connections() {
    let fpm = Fpm::start_unix(2);
    let toml = format!("{}worker_max_requests = 3\n", fpm_toml(&fpm));
    let h = Harness::start(&scripts_dir(), &toml);
    for _ in 0..9 {
        assert_eq!(h.get("/hello.php").status, 200);
    }
    let metrics = h.get("/_metrics").text();
    assert_eq!(metric(&metrics, "fephp_pool_connections_opened_total"), 3.0, "{metrics}");
    assert_eq!(metric(&metrics, "fephp_pool_connections_reused_total"), 6.0, "{metrics}");
}

fn write_fcgi_response(s: &mut TcpStream, body: &[u8]) {
    let mut out = vec![1, 6, 0, 1, (body.len() >> 8) as u8, body.len() as u8, 0, 0];
    out.extend_from_slice(body);
    out.extend_from_slice(&[1, 3, 0, 1, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    s.write_all(&out).unwrap();
}

#[test]
fn stale_keepalive_connection_is_retried_once_on_a_fresh_one() {
    // Serves the first request of each connection, then reads the second and hangs up
    // without a byte: like an FPM child that died between two requests.
    fn one_then_hang_up(mut s: TcpStream) {
        if read_fcgi_request(&mut s) {
            write_fcgi_response(&mut s, b"Content-Type: text/plain\r\n\r\nfrom fake");
        }
        read_fcgi_request(&mut s);
    }
    let addr = fake_fpm(one_then_hang_up);
    let toml = format!("use_fpm = true\nfpm_socket = \"{addr}\"\nworker_pool_size = 1\n");
    let h = Harness::start(&scripts_dir(), &toml);
    for _ in 0..4 {
        let r = h.get("/hello.php");
        assert_eq!((r.status, r.text().as_str()), (200, "from fake"), "{}", h.log());
    }
    let metrics = h.get("/_metrics").text();
    assert_eq!(metric(&metrics, "fephp_pool_retries_total"), 3.0, "{metrics}");
}

/// Peak resident memory of a process, in KiB (VmHWM).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_200_mb_response_to_a_slow_client_is_streamed_not_buffered() {
    let fpm = Fpm::start_unix(1);
    let h = Harness::start(&scripts_dir(), &fpm_toml(&fpm));
    let before = peak_rss_kib(h.pid());
    let mut s = TcpStream::connect(h.addr).unwrap();
    s.write_all(b"GET /big_output.php?mb=200 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    // A slow client first: read little for a while, so PHP-FPM must wait on the harness.
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0usize;
    for _ in 0..20 {
        total += s.read(&mut buf[..4096]).unwrap();
        std::thread::sleep(Duration::from_millis(10));
    }
    loop {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n;
    }
    assert!(total > 200 * 1024 * 1024, "read {total} bytes");
    let grown_mib = (peak_rss_kib(h.pid()).saturating_sub(before)) / 1024;
    assert!(grown_mib < 50, "harness peak RSS grew by {grown_mib} MiB for a 200 MiB response");
}

#[test]
fn client_abort_mid_response_drops_the_fastcgi_connection() {
    let fpm = Fpm::start_unix(2);
    let h = Harness::start(&scripts_dir(), &fpm_toml(&fpm));
    assert_eq!(h.get("/hello.php").status, 200);
    let metrics = h.get("/_metrics").text();
    assert_eq!(metric(&metrics, "fephp_pool_connections_open"), 1.0, "{metrics}");
    {
        let mut s = TcpStream::connect(h.addr).unwrap();
        s.write_all(b"GET /big_output.php?mb=50 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut buf = [0u8; 8192];
        let _ = s.read(&mut buf).unwrap();
    } // the client goes away mid-response
    support::wait_until("the aborted response's connection to be closed", Duration::from_secs(10), || {
        let m = h.get("/_metrics").text();
        metric(&m, "fephp_pool_connections_in_use") == 0.0 && metric(&m, "fephp_pool_connections_open") == 0.0
    });
    assert_eq!(h.get("/hello.php").status, 200);
}

#[test]
fn health_answers_while_a_kept_alive_connection_holds_the_only_fpm_child() {
    // The idle kept-alive connection occupies FPM's single child: a fresh probe connection
    // would wait in FPM's backlog. The probe uses the idle connection instead.
    let fpm = Fpm::start_unix(1);
    let h = Harness::start(&scripts_dir(), &fpm_toml(&fpm));
    for _ in 0..3 {
        assert_eq!(h.get("/hello.php").status, 200);
        let health = h.get("/_health");
        assert_eq!(health.status, 200, "{}", health.text());
    }
    assert_eq!(h.get("/hello.php").status, 200);
}
