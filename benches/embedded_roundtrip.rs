//! One embedded hello-world request through [`Engine::serve`] (resolve, params, hand-off to the
//! PHP thread, PHP request startup/execute/shutdown, body read back), on a current-thread
//! runtime. Run: `cargo bench --bench embedded_roundtrip`.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use fephp::cgi::{HttpRequest, RequestBody, Site};
use fephp::engine::BackendConfig;
use fephp::config::IniFile;
use fephp::php::PhpOptions;
use fephp::{Engine, Request};

fn roundtrip(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.php"), "<?php\necho \"Hello, world!\\n\";\n").unwrap();
    // No php.ini: the embedded runtime loads opcache itself (see `fephp::php`).
    let ini = [("display_errors", "0"), ("log_errors", "0")];
    let opts = PhpOptions {
        ini_file: IniFile::Off,
        ini: ini.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        queue_size: 16,
        queue_timeout: std::time::Duration::from_secs(5),
    };
    let engine = Engine::new(BackendConfig::Embedded(opts)).expect("embedded PHP starts");
    let site = Site::new(dir.path(), "index.php", &[".php".to_string()], true, false).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();

    let serve = || async {
        let mut http = HttpRequest::new("GET", "/hello.php");
        http.headers.push(("Host".into(), b"localhost".to_vec()));
        let mut resp = engine.serve(&site, Request { http, body: RequestBody::from_bytes(Bytes::new()) }).await.unwrap();
        assert_eq!(resp.head.status, 200);
        let mut n = 0;
        while let Some(chunk) = resp.body.next_chunk().await {
            n += chunk.unwrap().len();
        }
        assert_eq!(n, 14);
        n
    };
    c.bench_function("embedded: Engine::serve hello.php", |b| b.iter(|| black_box(rt.block_on(serve()))));
}

criterion_group!(benches, roundtrip);
criterion_main!(benches);
