//! Worker mode (`fephp_handle_request()`) against the real parts: executor pools forked from this
//! process run a worker script on Debian's libphp through our SAPI; requests go through the
//! engine. Every per-request reset item of issue 15 is checked one by one, then the faults
//! (uncaught exception, fatal error, exit(), crash, boot failure) and recycling.
//!
//! ONE test function: the pools are forked before any other thread exists. No timing
//! assertions: every wait is bounded, nothing asserts how fast.
#![cfg(feature = "embed")]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use fephp::cgi::{HttpRequest, RequestBody, Site};
use fephp::engine::BackendConfig;
use fephp::executor::{ExecutorOptions, Pool, WorkerOptions};
use fephp::{Engine, EngineError, Request};

/// The worker: boots once (a boot id, an ini value, a shutdown function of its own, a static
/// counter), then serves `?op=...`.
const WORKER: &str = r#"<?php
$boot = getmypid() . '-' . bin2hex(random_bytes(4));
ini_set('precision', '10');
register_shutdown_function(function () { file_put_contents(__DIR__ . '/boot-shutdown.log', "boot\n", FILE_APPEND); });
final class Hits { public static int $n = 0; }
$handler = function () use ($boot) {
    Hits::$n++;
    $op = $_GET['op'] ?? 'info';
    switch ($op) {
    case 'info':
        header('Content-Type: application/json');
        echo json_encode([
            'boot' => $boot, 'hits' => Hits::$n, 'get' => $_GET, 'post' => $_POST, 'cookie' => $_COOKIE,
            'files' => $_FILES, 'request' => $_REQUEST, 'uri' => $_SERVER['REQUEST_URI'] ?? null,
            'x_test' => $_SERVER['HTTP_X_TEST'] ?? null, 'server_injected' => $_SERVER['INJECTED'] ?? null,
            'session' => isset($_SESSION), 'session_id' => session_id(), 'session_status' => session_status(),
            'code' => http_response_code(), 'precision' => ini_get('precision'),
            'memory_limit' => ini_get('memory_limit'), 'max_execution_time' => ini_get('max_execution_time'),
            'headers' => headers_list(), 'ob_level' => ob_get_level(), 'sapi' => PHP_SAPI,
        ]);
        break;
    case 'dirty':
        // Everything a request may change that must not reach the next one.
        header('X-Leak: yes');
        http_response_code(201);
        ini_set('precision', '3');
        ini_set('memory_limit', '300M');
        set_time_limit(77);
        $_GET['injected'] = 1; $_SERVER['INJECTED'] = 1; $_COOKIE['c'] = 'x';
        register_shutdown_function(function () { echo "[request shutdown]"; });
        ob_start();
        echo 'dirty';
        break; // the buffer is left open on purpose
    case 'session':
        session_start();
        $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
        echo session_id(), ' ', $_SESSION['n'];
        break;
    case 'upload':
        $f = $_FILES['f'] ?? null;
        echo $f ? $f['tmp_name'] . ' ' . (file_exists($f['tmp_name']) ? 'exists' : 'missing') . ' ' . file_get_contents($f['tmp_name']) : 'no file';
        break;
    case 'exists':
        echo file_exists($_GET['path']) ? 'exists' : 'gone';
        break;
    case 'throw':
        echo 'partial';
        throw new RuntimeException('boom in the handler');
    case 'fatal':
        undefined_function_in_handler();
        break;
    case 'exit':
        echo 'bye';
        exit;
    case 'finish':
        echo 'early';
        fastcgi_finish_request();
        echo 'lost';
        file_put_contents(__DIR__ . '/after-finish.log', 'after');
        break;
    case 'nested':
        try { fephp_handle_request(fn() => null); } catch (Error $e) { echo get_class($e), ': ', $e->getMessage(); }
        break;
    case 'crash':
        $a = []; $r = &$a; for ($i = 0; $i < 3000000; $i++) { $r[0] = []; $r = &$r[0]; } echo serialize($a);
        break;
    case 'spin':
        set_time_limit(1);
        for ($x = 0; ; $x++) {}
    case 'hog':
        ini_set('memory_limit', '16M');
        $s = str_repeat('x', 64 << 20);
        echo strlen($s);
        break;
    case 'body':
        echo strlen(file_get_contents('php://input'));
        break;
    }
};
while (fephp_handle_request($handler)) {
    gc_collect_cycles();
}
"#;

fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn write(root: &Path, name: &str, code: &str) {
    let p = root.join(name);
    std::fs::write(&p, code).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
}

struct World {
    engine: Engine,
    site: Site,
}

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

impl World {
    async fn send(&self, method: &str, uri: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<Resp, EngineError> {
        let mut http = HttpRequest::new(method, uri);
        http.headers.push(("Host".into(), b"t".to_vec()));
        for (n, v) in headers {
            http.headers.push(((*n).into(), v.as_bytes().to_vec()));
        }
        let body = RequestBody::from_bytes(Bytes::copy_from_slice(body));
        let mut resp = self.engine.serve(&self.site, Request { http, body }).await?;
        let mut out = Vec::new();
        while let Some(c) = resp.body.next_chunk().await {
            out.extend_from_slice(&c?);
        }
        Ok(Resp { status: resp.head.status, headers: resp.head.headers.clone(), body: String::from_utf8_lossy(&out).into_owned() })
    }

    async fn get(&self, uri: &str) -> Resp {
        self.send("GET", uri, &[], b"").await.unwrap_or_else(|e| panic!("GET {uri}: {e}"))
    }
}

/// `n` answers of `/worker.php`, in order.
async fn bodies(w: &World, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(w.get("/worker.php").await.body);
    }
    out
}

fn world(pool: &Pool, root: &Path) -> World {
    World {
        engine: Engine::new(BackendConfig::Executors(pool.client(Duration::from_secs(5), Duration::from_secs(30), Duration::ZERO))).unwrap(),
        site: Site::new(root, "index.php", &[".php".to_string()], true, false).unwrap(),
    }
}

fn worker_opts(root: &Path, script: &str, executors: usize, max_requests: u64) -> ExecutorOptions {
    let mut o = ExecutorOptions {
        executors,
        max_requests,
        queue_size: 64,
        worker: Some(WorkerOptions { script: root.join(script), watch: Vec::new() }),
        ..ExecutorOptions::default()
    };
    o.php.ini_file = fephp::config::IniFile::Off;
    o.php.ini = vec![("memory_limit".into(), "128M".into()), ("max_execution_time".into(), "30".into())];
    o
}

#[test]
fn executor_worker_mode() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = dir.path();
    write(root, "worker.php", WORKER);
    write(root, "classic.php", "<?php try { fephp_handle_request(fn() => null); } catch (Error $e) { echo get_class($e), ': ', $e->getMessage(); }");
    write(root, "broken.php", "<?php echo 'booting'; this_function_does_not_exist_at_boot();");
    write(root, "noloop.php", "<?php echo 'I never call fephp_handle_request';");
    // Ignores the stop (false) and calls again: the call ends the script like exit().
    write(root, "stubborn.php", "<?php $b = getmypid() . '-' . mt_rand(); for (;;) { fephp_handle_request(function () use ($b) { echo $b; }); }");
    let log = std::fs::File::create(root.join("pools.log")).unwrap();
    use std::os::fd::AsRawFd;

    // Forked before the runtime's threads exist.
    let single = Pool::start(worker_opts(root, "worker.php", 1, 0), Some(log.as_raw_fd())).expect("pool starts");
    let recycled = Pool::start(worker_opts(root, "worker.php", 1, 3), Some(log.as_raw_fd())).expect("pool starts");
    let broken = Pool::start(worker_opts(root, "broken.php", 1, 0), Some(log.as_raw_fd())).expect("pool starts");
    let noloop = Pool::start(worker_opts(root, "noloop.php", 1, 0), Some(log.as_raw_fd())).expect("pool starts");
    let stubborn = Pool::start(worker_opts(root, "stubborn.php", 1, 2), Some(log.as_raw_fd())).expect("pool starts");
    let classic = Pool::start(ExecutorOptions { executors: 1, ..ExecutorOptions::default() }, Some(log.as_raw_fd())).expect("pool starts");
    let board = single.scoreboard().clone();

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let w = world(&single, root);
    rt.block_on(async {
        // Boots once, serves many: one boot id, a static counter that persists.
        let metrics = w.engine.render_metrics();
        assert!(metrics.contains("fephp_executors_worker_mode 1\n"), "{metrics}");
        let first = w.get("/worker.php?a=1").await;
        assert_eq!(first.status, 200, "{}", first.body);
        let j = first.json();
        let boot = j["boot"].as_str().unwrap().to_string();
        assert_eq!(j["sapi"], "fe-php");
        assert_eq!(j["get"]["a"], "1");
        assert_eq!(j["uri"], "/worker.php?a=1");
        assert_eq!(j["precision"], "10", "the boot's ini_set() is the base of every request");
        let hits = j["hits"].as_u64().unwrap();
        let j = w.get("/worker.php").await.json();
        assert_eq!(j["boot"], boot.as_str());
        assert_eq!(j["hits"].as_u64().unwrap(), hits + 1, "application statics persist");
        assert_eq!(j["get"], serde_json::json!([]), "$_GET is the request's");

        // Every reset item, one by one: a dirty request, then a clean look.
        let dirty = w
            .send("POST", "/worker.php?op=dirty&g=1", &[("X-Test", "one"), ("Cookie", "c=1"), ("Content-Type", "application/x-www-form-urlencoded")], b"p=1")
            .await
            .unwrap();
        assert_eq!(dirty.status, 201);
        assert_eq!(dirty.header("X-Leak"), Some("yes"));
        assert_eq!(dirty.body, "dirty[request shutdown]", "open buffers flushed, the request's shutdown function ran at its end");
        let clean = w.get("/worker.php?op=info").await;
        assert_eq!(clean.status, 200, "status reset");
        assert_eq!(clean.header("X-Leak"), None, "headers reset");
        let j = clean.json();
        assert_eq!(j["boot"], boot.as_str(), "same worker");
        assert_eq!(j["code"], 200, "http_response_code() reset");
        assert!(!j["headers"].as_array().unwrap().iter().any(|h| h.as_str().unwrap().starts_with("X-Leak")), "{j}");
        assert_eq!(j["get"], serde_json::json!({"op": "info"}), "$_GET");
        assert_eq!(j["post"], serde_json::json!([]), "$_POST");
        assert_eq!(j["cookie"], serde_json::json!([]), "$_COOKIE");
        assert_eq!(j["request"], serde_json::json!({"op": "info"}), "$_REQUEST");
        assert_eq!(j["x_test"], serde_json::Value::Null, "$_SERVER (request header)");
        assert_eq!(j["server_injected"], serde_json::Value::Null, "$_SERVER (written by the handler)");
        assert_eq!(j["precision"], "10", "ini_set() restored to the boot's value");
        assert_eq!(j["memory_limit"], "128M", "memory_limit restored");
        assert_eq!(j["max_execution_time"], "30", "set_time_limit() restored");
        assert_eq!(j["ob_level"], 0, "output buffers reset");
        // POST data and cookies of the dirty request were the request's own.
        let j = w
            .send("POST", "/worker.php?op=info", &[("Cookie", "k=v"), ("Content-Type", "application/x-www-form-urlencoded")], b"p=2")
            .await
            .unwrap()
            .json();
        assert_eq!(j["post"], serde_json::json!({"p": "2"}));
        assert_eq!(j["cookie"], serde_json::json!({"k": "v"}));
        assert_eq!(j["request"], serde_json::json!({"op": "info", "p": "2", "k": "v"}), "$_REQUEST from GET, POST, COOKIE");

        // $_SESSION and the session id do not leak to the next request.
        let s = w.get("/worker.php?op=session").await;
        assert_eq!(s.status, 200);
        let (sid, n) = s.body.split_once(' ').unwrap();
        assert_eq!(n, "1");
        assert!(!sid.is_empty());
        let j = w.get("/worker.php?op=info").await.json();
        assert_eq!(j["session"], false, "$_SESSION gone");
        assert_eq!(j["session_id"], "", "no session id");
        assert_eq!(j["session_status"], 1, "PHP_SESSION_NONE");
        // The same session comes back with its cookie.
        let cookie = format!("PHPSESSID={sid}");
        let again = w.send("GET", "/worker.php?op=session", &[("Cookie", &cookie)], b"").await.unwrap();
        assert_eq!(again.body, format!("{sid} 2"));

        // $_FILES: the upload is there during its request, its temp file gone afterwards.
        let multipart = "--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nfile-content\r\n--XyZ--\r\n";
        let up = w
            .send("POST", "/worker.php?op=upload", &[("Content-Type", "multipart/form-data; boundary=XyZ")], multipart.as_bytes())
            .await
            .unwrap();
        assert_eq!(up.status, 200);
        let parts: Vec<&str> = up.body.splitn(3, ' ').collect();
        assert_eq!(parts[1..], ["exists", "file-content"], "{}", up.body);
        let gone = w.get(&format!("/worker.php?op=exists&path={}", parts[0])).await;
        assert_eq!(gone.body, "gone", "uploaded temp file removed after its request");
        let j = w.get("/worker.php?op=info").await.json();
        assert_eq!(j["files"], serde_json::json!([]), "$_FILES");

        // Request bodies of any size reach php://input.
        let big = vec![b'x'; 2_000_000];
        assert_eq!(w.send("POST", "/worker.php?op=body", &[], &big).await.unwrap().body, "2000000");

        // fastcgi_finish_request(): the response ends there, the handler goes on.
        let f = w.get("/worker.php?op=finish").await;
        assert_eq!((f.status, f.body.as_str()), (200, "early"));
        wait_until("the handler to go on after fastcgi_finish_request()", Duration::from_secs(10), || root.join("after-finish.log").exists());

        // fephp_handle_request() inside a handler: an Error, the worker goes on.
        let nested = w.get("/worker.php?op=nested").await;
        assert_eq!(nested.body, "Error: fephp_handle_request() works only in a worker script (fephp_worker), outside its handler");
        assert_eq!(w.get("/worker.php").await.json()["boot"], boot.as_str());

        // Faults. An uncaught exception: 500 for that request, a fresh worker after it.
        let restarts = board.snapshot().restarts;
        let t = w.get("/worker.php?op=throw").await;
        assert_eq!(t.status, 500, "{}", t.body);
        let j = w.get("/worker.php").await.json();
        assert_ne!(j["boot"], boot.as_str(), "a fresh worker after an uncaught exception");
        assert_eq!(j["hits"], 1, "fresh state");
        wait_until("the restart to be counted", Duration::from_secs(10), || board.snapshot().restarts > restarts);
        // A fatal error: the same.
        let boot2 = j["boot"].as_str().unwrap().to_string();
        let f = w.get("/worker.php?op=fatal").await;
        assert_eq!(f.status, 500, "{}", f.body);
        let j = w.get("/worker.php").await.json();
        assert_ne!(j["boot"], boot2.as_str(), "a fresh worker after a fatal error");
        // exit(): the request ends normally; a fresh worker follows.
        let boot3 = j["boot"].as_str().unwrap().to_string();
        let e = w.get("/worker.php?op=exit").await;
        assert_eq!((e.status, e.body.as_str()), (200, "bye"));
        assert_ne!(w.get("/worker.php").await.json()["boot"], boot3.as_str());
        // The boot's shutdown functions ran when those workers ended, never at a request's end.
        let log_text = std::fs::read_to_string(root.join("boot-shutdown.log")).unwrap_or_default();
        assert!(log_text.lines().count() >= 3, "{log_text:?}");
        // The request's own time limit (set_time_limit) and memory limit: PHP's fatal errors, 500,
        // a fresh worker; the next request has the configured limits again.
        for op in ["spin", "hog"] {
            let before = w.get("/worker.php").await.json()["boot"].as_str().unwrap().to_string();
            let r = w.get(&format!("/worker.php?op={op}")).await;
            assert_eq!(r.status, 500, "{op}: {}", r.body);
            let j = w.get("/worker.php").await.json();
            assert_ne!(j["boot"], before.as_str(), "{op}: a fresh worker");
            assert_eq!((j["max_execution_time"].as_str(), j["memory_limit"].as_str()), (Some("30"), Some("128M")));
        }
        // A crash: 502 for that request only, the executor replaced.
        let crashes = board.snapshot().crashes;
        let err = w.send("GET", "/worker.php?op=crash", &[], b"").await.expect_err("the crash fails its request");
        assert_eq!(err.status(), 502, "{err}");
        wait_until("the crash to be counted", Duration::from_secs(10), || board.snapshot().crashes > crashes);
        assert_eq!(w.get("/worker.php").await.status, 200);

        // Recycling after max_requests (3): a new boot every 3 requests.
        let r = world(&recycled, root);
        let mut boots = Vec::new();
        for _ in 0..7 {
            boots.push(r.get("/worker.php").await.json()["boot"].as_str().unwrap().to_string());
        }
        assert_eq!(boots[0], boots[2]);
        assert_ne!(boots[2], boots[3]);
        assert_eq!(boots[3], boots[5]);
        assert_ne!(boots[5], boots[6]);

        // A script that keeps calling after false still stops (and is recycled).
        let st = world(&stubborn, root);
        let boots: Vec<String> = bodies(&st, 5).await;
        assert_eq!(boots[0], boots[1]);
        assert_ne!(boots[1], boots[2]);
        assert_ne!(boots[3], boots[4]);

        // A worker that cannot boot: 503, a clear [error], backoff (no spin).
        let b = world(&broken, root);
        let err = b.send("GET", "/worker.php", &[], b"").await.expect_err("no worker");
        assert_eq!(err.status(), 503, "{err}");
        let n = world(&noloop, root);
        let err = n.send("GET", "/worker.php", &[], b"").await.expect_err("no worker");
        assert_eq!(err.status(), 503, "{err}");

        // Classic mode: fephp_handle_request() is an Error.
        let c = world(&classic, root);
        assert!(c.engine.render_metrics().contains("fephp_executors_worker_mode 0\n"));
        assert_eq!(
            c.get("/classic.php").await.body,
            "Error: fephp_handle_request() works only in a worker script (fephp_worker), outside its handler"
        );
    });
    let text = std::fs::read_to_string(root.join("pools.log")).unwrap();
    assert!(text.contains("[error]") && text.contains("broken.php failed to boot"), "{text}");
    assert!(text.contains("\"booting\""), "the boot's output is in the log line: {text}");
    assert!(text.contains("noloop.php failed to boot"), "{text}");
    assert!(text.contains("worker boot failed"), "backoff is logged: {text}");
    assert!(text.contains("a request failed"), "{text}");
    drop((single, recycled, broken, noloop, stubborn, classic));
}
