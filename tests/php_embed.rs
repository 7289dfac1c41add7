//! The embedded PHP backend against the real libphp (Debian's libphp8.2-embed).
//!
//! One PHP runtime per process: every test shares one [`Engine`] (a `once_cell` static) and a
//! temp document root, and takes [`serial`] so requests never interleave unexpectedly.
#![cfg(feature = "embed")]

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use fephp::cgi::{HttpRequest, RequestBody, Site};
use fephp::engine::{BackendConfig, Response};
use fephp::config::IniFile;
use fephp::php::PhpOptions;
use fephp::{Engine, EngineError, Request};
use once_cell::sync::Lazy;

struct World {
    engine: Engine,
    site: Site,
    dir: PathBuf,
}

const QUEUE_SIZE: usize = 2;
/// Long enough for any test request to reach the PHP thread; short enough to wait out once.
const QUEUE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

static WORLD: Lazy<World> = Lazy::new(|| {
    let dir = tempfile::tempdir().unwrap().keep();
    let root = dir.join("www");
    for sub in ["www", "sessions", "uploads", "state"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let ini = vec![
        ("display_errors".to_string(), "0".to_string()),
        ("log_errors".to_string(), "1".to_string()),
        ("error_reporting".to_string(), "E_ALL".to_string()),
        ("session.save_path".to_string(), dir.join("sessions").display().to_string()),
        ("upload_tmp_dir".to_string(), dir.join("uploads").display().to_string()),
    ];
    let opts = PhpOptions { ini_file: IniFile::Off, ini, queue_size: QUEUE_SIZE, queue_timeout: QUEUE_TIMEOUT };
    let engine = Engine::new(BackendConfig::Embedded(opts)).expect("embedded PHP starts");
    let site = Site::new(&root, "index.php", &[".php".to_string()], true, false).unwrap();
    World { engine, site, dir }
});

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn world() -> &'static World {
    &WORLD
}

fn script(name: &str, code: &str) {
    std::fs::write(world().site.root().join(name), code).unwrap();
}

fn state_dir() -> PathBuf {
    world().dir.join("state")
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn req(method: &str, uri: &str) -> HttpRequest {
    let mut r = HttpRequest::new(method, uri);
    r.headers.push(("Host".into(), b"example.test".to_vec()));
    r
}

async fn send(http: HttpRequest, body: &[u8]) -> Result<Response, EngineError> {
    let body = RequestBody::from_bytes(Bytes::copy_from_slice(body));
    world().engine.serve(&world().site, Request { http, body }).await
}

async fn read_all(resp: &mut Response) -> String {
    let mut out = Vec::new();
    while let Some(chunk) = resp.body.next_chunk().await {
        out.extend_from_slice(&chunk.expect("body chunk"));
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Runs one request to the end: (status, headers, body).
fn get_full(http: HttpRequest, body: &[u8]) -> (u16, Vec<(String, String)>, String) {
    rt().block_on(async {
        let mut resp = send(http, body).await.expect("response");
        let text = read_all(&mut resp).await;
        (resp.head.status, resp.head.headers.clone(), text)
    })
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

fn all_headers<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
}

#[test]
fn hello_world() {
    let _s = serial();
    script("hello.php", "<?php echo 'Hello, ', php_sapi_name(), '!';");
    let (status, headers, body) = get_full(req("GET", "/hello.php"), b"");
    assert_eq!(status, 200);
    assert_eq!(body, "Hello, fe-php!");
    assert_eq!(header(&headers, "content-type"), Some("text/html; charset=UTF-8"));
}

fn state(name: &str) -> String {
    state_dir().join(name).display().to_string()
}

#[test]
fn get_post_request_and_server_vars_match_the_params() {
    let _s = serial();
    script(
        "vars.php",
        r#"<?php
        echo json_encode([
            'get' => $_GET, 'post' => $_POST, 'request' => $_REQUEST,
            'method' => $_SERVER['REQUEST_METHOD'], 'query' => $_SERVER['QUERY_STRING'],
            'uri' => $_SERVER['REQUEST_URI'], 'script_name' => $_SERVER['SCRIPT_NAME'],
            'php_self' => $_SERVER['PHP_SELF'], 'path_info' => $_SERVER['PATH_INFO'] ?? null,
            'host' => $_SERVER['HTTP_HOST'], 'getenv_host' => getenv('HTTP_HOST'),
            'software' => $_SERVER['SERVER_SOFTWARE'], 'gateway' => $_SERVER['GATEWAY_INTERFACE'],
            'filename' => $_SERVER['SCRIPT_FILENAME'], 'root' => $_SERVER['DOCUMENT_ROOT'],
            'has_path_env' => isset($_SERVER['PATH']),
            'content_type' => $_SERVER['CONTENT_TYPE'], 'content_length' => $_SERVER['CONTENT_LENGTH'],
        ]);"#,
    );
    let mut http = req("POST", "/vars.php/extra?a=1&b%5B%5D=x");
    http.headers.push(("Content-Type".into(), b"application/x-www-form-urlencoded".to_vec()));
    let (status, _, body) = get_full(http, b"c=3&d=hello+world");
    assert_eq!(status, 200, "{body}");
    let v: serde_json_lite::Value = serde_json_lite::parse(&body);
    assert_eq!(v.get("get"), r#"{"a":"1","b":["x"]}"#);
    assert_eq!(v.get("post"), r#"{"c":"3","d":"hello world"}"#);
    assert_eq!(v.get("request"), r#"{"a":"1","b":["x"],"c":"3","d":"hello world"}"#);
    assert_eq!(v.get("method"), r#""POST""#);
    assert_eq!(v.get("query"), r#""a=1&b%5B%5D=x""#);
    assert_eq!(v.get("uri"), r#""\/vars.php\/extra?a=1&b%5B%5D=x""#);
    assert_eq!(v.get("script_name"), r#""\/vars.php""#);
    assert_eq!(v.get("php_self"), r#""\/vars.php\/extra""#);
    assert_eq!(v.get("path_info"), r#""\/extra""#);
    assert_eq!(v.get("host"), r#""example.test""#);
    assert_eq!(v.get("getenv_host"), r#""example.test""#);
    assert!(v.get("software").starts_with("\"fe-php"), "{body}");
    assert_eq!(v.get("gateway"), r#""CGI\/1.1""#);
    assert_eq!(v.get("has_path_env"), "false", "host environment must not leak into $_SERVER");
    assert_eq!(v.get("content_type"), r#""application\/x-www-form-urlencoded""#);
    assert_eq!(v.get("content_length"), r#""17""#);
    let root = world().site.root().display().to_string().replace('/', "\\/");
    assert_eq!(v.get("root"), format!("\"{root}\""));
    assert_eq!(v.get("filename"), format!("\"{root}\\/vars.php\""));
}

/// A tiny reader for the flat JSON objects the scripts print: top-level key → raw JSON text.
mod serde_json_lite {
    pub struct Value(Vec<(String, String)>);
    impl Value {
        pub fn get(&self, key: &str) -> &str {
            self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap_or_else(|| panic!("no key {key}"))
        }
    }
    pub fn parse(text: &str) -> Value {
        let b = text.trim().as_bytes();
        assert!(b.first() == Some(&b'{'), "not an object: {text}");
        let (mut i, mut out) = (1, Vec::new());
        while i < b.len() && b[i] != b'}' {
            let (key, next) = string(b, i);
            i = next + 1; // ':'
            let start = i;
            let (mut depth, mut in_str) = (0i32, false);
            while i < b.len() {
                let c = b[i];
                if in_str {
                    if c == b'\\' { i += 1 } else if c == b'"' { in_str = false }
                } else if c == b'"' { in_str = true } else if c == b'{' || c == b'[' { depth += 1 } else if c == b'}' || c == b']' {
                    if depth == 0 { break }
                    depth -= 1
                } else if c == b',' && depth == 0 { break }
                i += 1;
            }
            out.push((key, text.trim()[start..i].to_string()));
            if b[i] == b',' { i += 1 }
        }
        Value(out)
    }
    fn string(b: &[u8], at: usize) -> (String, usize) {
        let mut i = at + 1;
        while b[i] != b'"' { i += 1 }
        (String::from_utf8_lossy(&b[at + 1..i]).into_owned(), i + 1)
    }
}

#[test]
fn basic_auth_fills_php_auth_vars() {
    let _s = serial();
    script("auth.php", "<?php echo $_SERVER['PHP_AUTH_USER'] ?? '-', '|', $_SERVER['PHP_AUTH_PW'] ?? '-';");
    let mut http = req("GET", "/auth.php");
    http.headers.push(("Authorization".into(), b"Basic dXNlcjpzZWNyZXQ=".to_vec())); // user:secret
    let (status, _, body) = get_full(http, b"");
    assert_eq!((status, body.as_str()), (200, "user|secret"));
}

#[test]
fn multipart_upload_fills_files_and_the_temp_file_is_removed() {
    let _s = serial();
    script(
        "upload.php",
        r#"<?php
        $f = $_FILES['doc'];
        echo $_POST['title'], '|', $f['name'], '|', $f['size'], '|', $f['error'], '|',
            file_get_contents($f['tmp_name']), '|', is_uploaded_file($f['tmp_name']) ? 'up' : 'no', '|', $f['tmp_name'];"#,
    );
    let boundary = "XyZzY";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nReport\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nfile contents\r\n\
         --{boundary}--\r\n"
    );
    let mut http = req("POST", "/upload.php");
    http.headers.push(("Content-Type".into(), format!("multipart/form-data; boundary={boundary}").into_bytes()));
    let (status, _, out) = get_full(http, body.as_bytes());
    assert_eq!(status, 200, "{out}");
    let parts: Vec<&str> = out.split('|').collect();
    assert_eq!(&parts[..6], ["Report", "a.txt", "13", "0", "file contents", "up"]);
    let tmp = PathBuf::from(parts[6]);
    assert!(tmp.starts_with(world().dir.join("uploads")), "{tmp:?}");
    assert!(!tmp.exists(), "uploaded temp file must be removed after the request");
    assert_eq!(std::fs::read_dir(world().dir.join("uploads")).unwrap().count(), 0);
}

#[test]
fn cookies_and_several_set_cookie_headers() {
    let _s = serial();
    script(
        "cookies.php",
        r#"<?php
        setcookie('one', '1');
        setcookie('two', '2', ['path' => '/x', 'httponly' => true]);
        echo json_encode($_COOKIE);"#,
    );
    let mut http = req("GET", "/cookies.php");
    http.headers.push(("Cookie".into(), b"a=1; b=two".to_vec()));
    let (status, headers, body) = get_full(http, b"");
    assert_eq!(status, 200);
    assert_eq!(body, r#"{"a":"1","b":"two"}"#);
    assert_eq!(all_headers(&headers, "set-cookie"), ["one=1", "two=2; path=/x; HttpOnly"]);
}

#[test]
fn header_header_remove_and_response_code() {
    let _s = serial();
    script(
        "headers.php",
        r#"<?php
        header('X-A: 1');
        header('X-B: 2');
        header('X-Multi: a');
        header('X-Multi: b', false);
        header_remove('X-A');
        http_response_code(201);
        echo 'made';"#,
    );
    let (status, headers, body) = get_full(req("GET", "/headers.php"), b"");
    assert_eq!((status, body.as_str()), (201, "made"));
    assert_eq!(header(&headers, "x-a"), None);
    assert_eq!(header(&headers, "x-b"), Some("2"));
    assert_eq!(all_headers(&headers, "x-multi"), ["a", "b"]);
    assert_eq!(header(&headers, "x-powered-by"), None, "expose_php=0 without a php.ini: {headers:?}");
    assert_eq!(header(&headers, "content-type"), Some("text/html; charset=UTF-8"));
}

#[test]
fn location_redirects_with_302_like_fpm() {
    let _s = serial();
    script("redirect.php", "<?php header('Location: /next.php'); echo 'moved';");
    for method in ["GET", "POST"] {
        let (status, headers, _) = get_full(req(method, "/redirect.php"), b"");
        assert_eq!(status, 302, "{method}");
        assert_eq!(header(&headers, "location"), Some("/next.php"));
    }
    script("status_header.php", "<?php header('Status: 404 Not Found'); echo 'nope';");
    let (status, _, body) = get_full(req("GET", "/status_header.php"), b"");
    assert_eq!((status, body.as_str()), (404, "nope"));
}

#[test]
fn php_input_is_the_raw_body() {
    let _s = serial();
    script("input.php", "<?php echo file_get_contents('php://input'), '|', file_get_contents('php://input'), '|', count($_POST);");
    let mut http = req("POST", "/input.php");
    http.headers.push(("Content-Type".into(), b"application/json".to_vec()));
    let big = format!("{{\"k\":\"{}\"}}", "v".repeat(100_000));
    let (status, _, body) = get_full(http, big.as_bytes());
    assert_eq!(status, 200);
    assert_eq!(body, format!("{big}|{big}|0"));
}

#[test]
fn head_runs_php_without_a_body() {
    let _s = serial();
    script("head.php", &format!("<?php header('X-Ran: yes'); file_put_contents('{}', 'ran'); echo 'body';", state("head")));
    let (status, headers, body) = get_full(req("HEAD", "/head.php"), b"");
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "x-ran"), Some("yes"));
    assert_eq!(body, "");
    assert_eq!(std::fs::read_to_string(state_dir().join("head")).unwrap(), "ran");
}

#[test]
fn exit_mid_output_and_shutdown_functions() {
    let _s = serial();
    script("exit.php", "<?php register_shutdown_function(function () { echo '|shutdown'; }); echo 'a'; exit('b'); echo 'c';");
    let (status, _, body) = get_full(req("GET", "/exit.php"), b"");
    assert_eq!((status, body.as_str()), (200, "ab|shutdown"));
}

#[test]
fn sessions_round_trip() {
    let _s = serial();
    script("session.php", "<?php session_start(); $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1; echo $_SESSION['n'];");
    let (status, headers, body) = get_full(req("GET", "/session.php"), b"");
    assert_eq!((status, body.as_str()), (200, "1"));
    let cookie = all_headers(&headers, "set-cookie").into_iter().find(|c| c.starts_with("PHPSESSID=")).expect("session cookie");
    let pair = cookie.split(';').next().unwrap().to_string();
    let mut http = req("GET", "/session.php");
    http.headers.push(("Cookie".into(), pair.into_bytes()));
    let (status, _, body) = get_full(http, b"");
    assert_eq!((status, body.as_str()), (200, "2"));
    assert!(std::fs::read_dir(world().dir.join("sessions")).unwrap().count() >= 1);
}

fn hello_ok() {
    script("ok.php", "<?php echo 'ok';");
    let (status, _, body) = get_full(req("GET", "/ok.php"), b"");
    assert_eq!((status, body.as_str()), (200, "ok"));
}

fn logged(needle: &str) -> bool {
    let php = fephp_php();
    php.iter().any(|l| l.contains(needle))
}

fn fephp_php() -> Vec<String> {
    fephp::php::recent_log()
}

#[test]
fn fatal_error_is_500_and_the_next_request_is_fine() {
    let _s = serial();
    script("fatal.php", "<?php echo 'before'; undefined_function_xyz();");
    let (status, _, body) = get_full(req("GET", "/fatal.php"), b"");
    // Output already started: like FPM the status stays; test the no-output case too.
    assert_eq!(body, "before");
    let _ = status;
    script("fatal2.php", "<?php undefined_function_xyz();");
    let (status, _, body) = get_full(req("GET", "/fatal2.php"), b"");
    assert_eq!((status, body.as_str()), (500, ""));
    assert!(logged("Call to undefined function undefined_function_xyz()"));
    hello_ok();
}

#[test]
fn uncaught_exception_is_500() {
    let _s = serial();
    script("exception.php", "<?php throw new RuntimeException('boom');");
    let (status, _, _) = get_full(req("GET", "/exception.php"), b"");
    assert_eq!(status, 500);
    assert!(logged("Uncaught RuntimeException: boom"));
    hello_ok();
}

#[test]
fn memory_limit_is_a_fatal_500_and_the_next_request_is_fine() {
    let _s = serial();
    script("memory.php", "<?php ini_set('memory_limit', '8M'); $a = []; while (true) { $a[] = str_repeat('x', 1 << 20); }");
    let (status, _, _) = get_full(req("GET", "/memory.php"), b"");
    assert_eq!(status, 500);
    assert!(logged("Allowed memory size of 8388608 bytes exhausted"));
    hello_ok();
}

#[test]
fn max_execution_time_ends_the_request_not_the_process() {
    let _s = serial();
    script("busy.php", "<?php ini_set('max_execution_time', '1'); $i = 0; while (true) { $i++; }");
    let (status, _, _) = get_full(req("GET", "/busy.php"), b"");
    assert_eq!(status, 500);
    assert!(logged("Maximum execution time of 1 second exceeded"), "{:?}", fephp_php());
    // set_time_limit() restarts the limit through the same path.
    script("busy2.php", "<?php set_time_limit(1); $i = 0; while (true) { $i++; }");
    let (status, _, _) = get_full(req("GET", "/busy2.php"), b"");
    assert_eq!(status, 500);
    hello_ok();
    script("limit.php", "<?php echo ini_get('max_execution_time'), '|', ini_get('hard_timeout');");
    let (_, _, body) = get_full(req("GET", "/limit.php"), b"");
    assert_eq!(body, "30|0");
}

#[test]
fn chdir_umask_putenv_setlocale_do_not_leak() {
    let _s = serial();
    let probe = r#"<?php echo json_encode(['cwd' => getcwd(), 'umask' => umask(), 'env' => getenv('FEPHP_LEAK'), 'locale' => setlocale(LC_ALL, 0)]);"#;
    script("probe.php", probe);
    let host_cwd = std::env::current_dir().unwrap();
    let (_, _, before) = get_full(req("GET", "/probe.php"), b"");
    let v = serde_json_lite::parse(&before);
    let root = world().site.root().display().to_string().replace('/', "\\/");
    assert_eq!(v.get("cwd"), format!("\"{root}\""), "like FPM, the script runs in its directory");
    script(
        "leak.php",
        r#"<?php chdir('/tmp'); umask(0077); putenv('FEPHP_LEAK=1'); setlocale(LC_ALL, 'C.UTF-8'); echo getcwd(), '|', getenv('FEPHP_LEAK');"#,
    );
    let (status, _, body) = get_full(req("GET", "/leak.php"), b"");
    assert_eq!((status, body.as_str()), (200, "/tmp|1"));
    let (_, _, after) = get_full(req("GET", "/probe.php"), b"");
    assert_eq!(after, before);
    assert_eq!(std::env::current_dir().unwrap(), host_cwd);
    assert!(std::env::var_os("FEPHP_LEAK").is_none());
}

#[test]
fn each_script_runs_in_its_own_directory_whichever_ran_before() {
    let _s = serial();
    let sub = world().site.root().join("cwdsub");
    std::fs::create_dir_all(&sub).unwrap();
    let probe = "<?php echo getcwd() === __DIR__ ? 'own dir' : 'wrong: ' . getcwd();";
    script("cwdtop.php", probe);
    script("cwdsub/cwd.php", probe);
    script("cwdmove.php", "<?php chdir('/'); echo getcwd();");
    // Alternate directories, and let a script move away in between: each one still starts in
    // its own directory (the shim's cached directory descriptor follows the script).
    for uri in ["/cwdtop.php", "/cwdsub/cwd.php", "/cwdsub/cwd.php", "/cwdmove.php", "/cwdsub/cwd.php", "/cwdtop.php"] {
        let (status, _, body) = get_full(req("GET", uri), b"");
        let want = if uri == "/cwdmove.php" { "/" } else { "own dir" };
        assert_eq!((status, body.as_str()), (200, want), "{uri}");
    }
}

#[test]
fn opcache_is_enabled_and_the_sapi_name_is_ours() {
    let _s = serial();
    script("opcache.php", "<?php $s = opcache_get_status(false); echo var_export($s['opcache_enabled'] ?? null, true), '|', PHP_SAPI;");
    let (_, _, body) = get_full(req("GET", "/opcache.php"), b"");
    assert_eq!(body, "true|fe-php");
}

#[test]
fn output_streams_before_the_script_ends() {
    let _s = serial();
    let go = state("stream-go");
    let _ = std::fs::remove_file(&go);
    script(
        "stream.php",
        &format!(
            "<?php ob_start(); echo 'first'; ob_flush(); flush();
            for ($i = 0; $i < 4000 && !file_exists('{go}'); $i++) {{ usleep(5000); }}
            echo file_exists('{go}') ? 'second' : 'timeout';"
        ),
    );
    rt().block_on(async {
        let mut resp = send(req("GET", "/stream.php"), b"").await.unwrap();
        assert_eq!(resp.head.status, 200);
        let first = resp.body.next_chunk().await.unwrap().unwrap();
        assert_eq!(&first[..], b"first");
        // Only now may the script finish: it waits for this file.
        std::fs::write(&go, "go").unwrap();
        assert_eq!(read_all(&mut resp).await, "second");
    });
}

/// This thread's umask (read by setting it and putting it back).
fn read_umask() -> libc::mode_t {
    // SAFETY: umask only swaps the calling thread's file mode mask; it is put back at once.
    unsafe {
        let mask = libc::umask(0o022);
        libc::umask(mask);
        mask
    }
}

#[test]
fn a_running_script_moves_neither_the_host_cwd_nor_its_umask() {
    let _s = serial();
    let go = state("cwd-go");
    let _ = std::fs::remove_file(&go);
    script(
        "cwdhold.php",
        &format!(
            "<?php chdir('/tmp'); umask(0077); echo getcwd(); flush();
            for ($i = 0; $i < 4000 && !file_exists('{go}'); $i++) {{ usleep(5000); }}
            echo '|', getcwd();"
        ),
    );
    let host_cwd = std::env::current_dir().unwrap();
    let host_umask = read_umask();
    rt().block_on(async {
        let mut resp = send(req("GET", "/cwdhold.php"), b"").await.unwrap();
        assert_eq!(resp.head.status, 200);
        let first = resp.body.next_chunk().await.unwrap().unwrap();
        assert_eq!(&first[..], b"/tmp");
        // The script sits in /tmp with umask 077 right now: the host's threads do not.
        assert_eq!(std::env::current_dir().unwrap(), host_cwd);
        assert_eq!(read_umask(), host_umask);
        std::fs::write(&go, "go").unwrap();
        assert_eq!(read_all(&mut resp).await, "|/tmp");
    });
}

#[test]
fn client_abort_is_seen_by_php() {
    let _s = serial();
    let out = state("aborted");
    let _ = std::fs::remove_file(&out);
    script(
        "abort.php",
        &format!(
            "<?php ignore_user_abort(true);
            register_shutdown_function(function () {{ file_put_contents('{out}', (string) connection_aborted()); }});
            echo 'start'; flush();
            for ($i = 0; $i < 100000 && !connection_aborted(); $i++) {{ echo str_repeat('x', 1024); flush(); }}"
        ),
    );
    rt().block_on(async {
        let mut resp = send(req("GET", "/abort.php"), b"").await.unwrap();
        let first = resp.body.next_chunk().await.unwrap().unwrap();
        assert_eq!(&first[..], b"start");
        drop(resp);
    });
    hello_ok(); // runs after abort.php has finished, shutdown functions included
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "1");
}

#[test]
fn full_queue_is_overloaded() {
    let _s = serial();
    let release = state("queue-release");
    let _ = std::fs::remove_file(&release);
    script(
        "block.php",
        &format!(
            "<?php echo 'blocking'; flush();
            for ($i = 0; $i < 4000 && !file_exists('{release}'); $i++) {{ usleep(5000); }}
            echo 'released';"
        ),
    );
    script("ok.php", "<?php echo 'ok';");
    rt().block_on(async {
        let mut running = send(req("GET", "/block.php"), b"").await.unwrap();
        let waiting: Vec<_> = (0..QUEUE_SIZE).map(|_| tokio::spawn(send(req("GET", "/ok.php"), b""))).collect();
        while !world().engine.render_metrics().contains(&format!("fephp_php_queue_depth {QUEUE_SIZE}\n")) {
            tokio::task::yield_now().await;
        }
        match send(req("GET", "/ok.php"), b"").await {
            Err(EngineError::Overloaded(_)) => {}
            other => panic!("expected Overloaded, got {:?}", other.map(|r| r.head)),
        }
        std::fs::write(&release, "go").unwrap();
        assert_eq!(read_all(&mut running).await, "blockingreleased");
        for w in waiting {
            let mut resp = w.await.unwrap().unwrap();
            assert_eq!(read_all(&mut resp).await, "ok");
        }
    });
}

#[test]
fn waiting_past_the_queue_timeout_is_overloaded() {
    let _s = serial();
    let release = state("timeout-release");
    let _ = std::fs::remove_file(&release);
    script(
        "block2.php",
        &format!(
            "<?php echo 'blocking'; flush();
            for ($i = 0; $i < 6000 && !file_exists('{release}'); $i++) {{ usleep(5000); }}
            echo 'released';"
        ),
    );
    script("ok.php", "<?php echo 'ok';");
    rt().block_on(async {
        let mut running = send(req("GET", "/block2.php"), b"").await.unwrap();
        // While a script runs, PHP's process-wide SIGPROF timer is not armed (the watchdog
        // measures the PHP thread's own CPU clock instead).
        let mut timer = libc::itimerval {
            it_interval: libc::timeval { tv_sec: 0, tv_usec: 0 },
            it_value: libc::timeval { tv_sec: 0, tv_usec: 0 },
        };
        // SAFETY: getitimer only writes the valid out-param.
        assert_eq!(unsafe { libc::getitimer(libc::ITIMER_PROF, &mut timer) }, 0);
        assert_eq!((timer.it_value.tv_sec, timer.it_value.tv_usec), (0, 0), "ITIMER_PROF is armed");
        // The PHP thread holds block2.php until the release file exists (at most ~30 s, far
        // past QUEUE_TIMEOUT), so this request can only end by giving up in the queue.
        match send(req("GET", "/ok.php"), b"").await {
            Err(EngineError::Overloaded(m)) => assert!(m.contains("waited more than"), "{m}"),
            other => panic!("expected Overloaded, got {:?}", other.map(|r| r.head)),
        }
        std::fs::write(&release, "go").unwrap();
        assert_eq!(read_all(&mut running).await, "blockingreleased");
    });
    hello_ok(); // the abandoned job was skipped, the thread serves on
}

#[test]
fn second_start_is_a_clear_error() {
    let _s = serial();
    let _ = world();
    match fephp::php::Php::start(PhpOptions::default()) {
        Err(e @ EngineError::AlreadyEmbedded) => {
            assert_eq!(e.to_string(), "embedded PHP already started in this process");
            assert!(fephp::engine::embedded_started());
        }
        Err(other) => panic!("wrong error {other}"),
        Ok(_) => panic!("second start must fail"),
    }
}
