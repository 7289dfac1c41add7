//! The FPM read timeout while a response body streams: a fake FPM sends the response head and
//! the first body bytes, then stalls (no more records, connection open). The body must end
//! with a timeout after `read_timeout`, however its reader polls it: the nginx bridge polls a
//! request again only when it is woken, and builds nothing that outlives one poll, so the timer
//! has to live in the body itself.

mod support;

use std::future::Future;
use std::io::Write;
use std::net::TcpStream;
use std::task::Poll;
use std::time::{Duration, Instant};

use fephp::cgi::{HttpRequest, RequestBody, Site};
use fephp::engine::BackendConfig;
use fephp::pool::{Address, PoolConfig};
use fephp::{Engine, EngineError, Request, Response};

use support::{fake_fpm, read_fcgi_request, scripts_dir};

const READ_TIMEOUT: Duration = Duration::from_millis(300);

/// One FastCGI STDOUT record (request id 1).
fn stdout_record(data: &[u8]) -> Vec<u8> {
    let mut out = vec![1, 6, 0, 1, (data.len() >> 8) as u8, data.len() as u8, 0, 0];
    out.extend_from_slice(data);
    out
}

/// Answers the head and "first", then sends nothing more for 5 s.
fn head_then_stall(mut s: TcpStream) {
    if !read_fcgi_request(&mut s) {
        return;
    }
    let _ = s.write_all(&stdout_record(b"Content-Type: text/plain\r\n\r\nfirst"));
    std::thread::sleep(Duration::from_secs(5));
}

fn engine(addr: &str) -> Engine {
    let mut cfg = PoolConfig::new(Address::parse(addr).unwrap());
    cfg.read_timeout = READ_TIMEOUT;
    Engine::new(BackendConfig::Fpm(cfg)).unwrap()
}

async fn start(engine: &Engine) -> Response {
    let site = Site::new(&scripts_dir(), "index.php", &[".php".to_string()], true, false).unwrap();
    let req = Request { http: HttpRequest::new("GET", "/hello.php"), body: RequestBody::empty() };
    let resp = engine.serve(&site, req).await.unwrap();
    assert_eq!(resp.head.status, 200);
    resp
}

/// Reads the body to its end the way the nginx bridge does: each poll builds a fresh
/// `next_chunk` future and drops it when it is pending; the next poll happens only after a
/// wakeup. Returns the bytes and how the body ended.
async fn read_like_the_bridge(resp: &mut Response) -> (Vec<u8>, Option<EngineError>) {
    let mut body = Vec::new();
    loop {
        let next = std::future::poll_fn(|cx| match std::pin::pin!(resp.body.next_chunk()).poll(cx) {
            Poll::Ready(next) => Poll::Ready(next),
            Poll::Pending => Poll::Pending,
        })
        .await;
        match next {
            Some(Ok(chunk)) => body.extend_from_slice(&chunk),
            Some(Err(e)) => return (body, Some(e)),
            None => return (body, None),
        }
    }
}

#[test]
fn a_body_stalled_mid_stream_times_out_when_each_poll_builds_a_new_future() {
    let addr = fake_fpm(head_then_stall);
    let engine = engine(&addr);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut resp = start(&engine).await;
        let started = Instant::now();
        let read = tokio::time::timeout(Duration::from_secs(3), read_like_the_bridge(&mut resp)).await;
        let (body, end) = read.expect("the stalled body never ended: its read timeout did not fire");
        assert_eq!(body, b"first");
        assert!(matches!(end, Some(EngineError::Timeout(_))), "{end:?}");
        let took = started.elapsed();
        assert!(took >= READ_TIMEOUT && took < READ_TIMEOUT * 4, "ended after {took:?}");
    });
}

/// Answers the head, then one chunk every 200 ms (each wait shorter than the read timeout, all
/// of them together longer), then END_REQUEST.
fn drip(mut s: TcpStream) {
    if !read_fcgi_request(&mut s) {
        return;
    }
    let _ = s.write_all(&stdout_record(b"Content-Type: text/plain\r\n\r\n"));
    for i in 0..4u8 {
        std::thread::sleep(Duration::from_millis(200));
        let _ = s.write_all(&stdout_record(&[b'0' + i]));
    }
    let _ = s.write_all(&[1, 6, 0, 1, 0, 0, 0, 0, 1, 3, 0, 1, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    std::thread::sleep(Duration::from_secs(1));
}

#[test]
fn the_read_timeout_restarts_with_every_chunk_polled_through_poll_chunk() {
    let addr = fake_fpm(drip);
    let engine = engine(&addr);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut resp = start(&engine).await;
        let started = Instant::now();
        let mut body = Vec::new();
        while let Some(chunk) = std::future::poll_fn(|cx| resp.body.poll_chunk(cx)).await {
            body.extend_from_slice(&chunk.expect("no timeout: every wait is shorter than the read timeout"));
        }
        assert_eq!(body, b"0123");
        assert!(started.elapsed() > READ_TIMEOUT * 2);
    });
}
