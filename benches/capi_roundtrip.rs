//! One FPM "hello world" request through the C API (the `extern "C"` entry points, exactly as
//! C calls them: request building, the ffi boundary, the write callbacks) versus the same
//! request through the Rust API (`Engine::serve` + draining the body on a tokio runtime of the
//! same shape), against a real php-fpm started by the bench.
//!
//! Run: `cargo bench --bench capi_roundtrip`

#[path = "../tests/support/mod.rs"]
#[allow(unused_imports)]
mod support;

use std::ffi::{c_int, c_void, CString};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use fephp::capi::*;
use fephp::cgi::{HttpRequest, RequestBody};
use fephp::{Config, Engine, Request};

fn toml(fpm: &str) -> String {
    format!(
        "[server]\ndocument_root = \"{}\"\n\n[php]\nuse_fpm = true\nfpm_socket = \"{fpm}\"\nworker_pool_size = 4\n",
        support::scripts_dir().display()
    )
}

unsafe extern "C" fn count_chunk(userdata: *mut c_void, _data: *const u8, len: usize) -> c_int {
    // SAFETY: userdata is the &mut usize passed below, alive for the call.
    unsafe { *(userdata as *mut usize) += len };
    0
}

fn roundtrip(c: &mut Criterion) {
    let fpm = support::Fpm::start_unix(2);
    let toml = toml(&fpm.address);

    // Rust API
    let config = Config::parse(&toml).unwrap();
    let site = Engine::site(&config).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let engine = {
        let _g = rt.enter();
        Engine::new(Engine::backend_config(&config).unwrap()).unwrap()
    };
    let mut group = c.benchmark_group("fpm_hello");
    group.sample_size(50).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    group.bench_function("rust_api", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut http = HttpRequest::new("GET", "/hello.php");
                http.headers.push(("Host".into(), b"localhost".to_vec()));
                let mut resp = engine.serve(&site, Request { http, body: RequestBody::empty() }).await.unwrap();
                let mut n = 0;
                while let Some(chunk) = resp.body.next_chunk().await {
                    n += chunk.unwrap().len();
                }
                assert_eq!((resp.head.status, n), (200, 14));
            })
        })
    });

    // C API
    let mut capi_engine = std::ptr::null_mut();
    assert_eq!(fephp_engine_new_from_toml(toml.as_ptr().cast(), toml.len(), &mut capi_engine), fephp_result::FEPHP_OK);
    let (get, uri) = (CString::new("GET").unwrap(), CString::new("/hello.php").unwrap());
    let callbacks = fephp_write_callbacks { on_head: None, on_body_chunk: Some(count_chunk) };
    group.bench_function("c_api", |b| {
        b.iter(|| {
            let mut req = std::ptr::null_mut();
            assert_eq!(fephp_request_new(get.as_ptr(), uri.as_ptr(), &mut req), fephp_result::FEPHP_OK);
            fephp_request_add_header(req, b"Host".as_ptr(), 4, b"localhost".as_ptr(), 9);
            let mut n = 0usize;
            let mut resp = std::ptr::null_mut();
            let r = fephp_execute(capi_engine, req, &callbacks, (&mut n as *mut usize).cast(), &mut resp);
            assert_eq!(r, fephp_result::FEPHP_OK);
            assert_eq!((fephp_response_status(resp), n), (200, 14));
            fephp_response_free(resp);
        })
    });
    group.finish();
    fephp_engine_free(capi_engine);
    drop(engine);
}

criterion_group!(benches, roundtrip);
criterion_main!(benches);
