//! The embedded PHP backend against the real libphp (Debian's libphp8.2-embed).
//!
//! One PHP runtime per process: every test shares one [`Engine`] (a `once_cell` static) and a
//! temp document root, and takes [`serial`] so requests never interleave unexpectedly.
#![cfg(feature = "embed")]

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use fephp::cgi::{HttpRequest, RequestBody, Site};
use fephp::engine::{BackendConfig, Response};
use fephp::php::PhpOptions;
use fephp::{Engine, EngineError, Request};
use once_cell::sync::Lazy;

struct World {
    engine: Engine,
    site: Site,
    dir: PathBuf,
}

const QUEUE_SIZE: usize = 2;

static WORLD: Lazy<World> = Lazy::new(|| {
    let dir = tempfile::tempdir().unwrap().into_path();
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
    let opts = PhpOptions { ini_file: None, ini, queue_size: QUEUE_SIZE, queue_timeout: std::time::Duration::from_secs(120) };
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
