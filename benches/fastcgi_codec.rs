//! FastCGI codec micro-benchmarks: encoding the params of a typical request, encoding a 64 KB
//! request body as STDIN records, and decoding a 16 KB STDOUT response split into records.
//! Run: `cargo bench --bench fastcgi_codec`.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fephp::cgi::Params;
use fephp::fastcgi::{encode_begin_request, encode_params, encode_stdin, encode_stdin_end, Event, ResponseDecoder};

/// The params nginx's `fastcgi_params` plus a browser's headers produce (~30 entries).
fn typical_params() -> Params {
    let mut p = Params::with_capacity(32);
    for (k, v) in [
        ("SCRIPT_FILENAME", "/var/www/app/public/index.php"),
        ("QUERY_STRING", "page=2&sort=desc"),
        ("REQUEST_METHOD", "GET"),
        ("CONTENT_TYPE", ""),
        ("CONTENT_LENGTH", ""),
        ("SCRIPT_NAME", "/index.php"),
        ("REQUEST_URI", "/products/42?page=2&sort=desc"),
        ("DOCUMENT_URI", "/index.php"),
        ("DOCUMENT_ROOT", "/var/www/app/public"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("REQUEST_SCHEME", "http"),
        ("GATEWAY_INTERFACE", "CGI/1.1"),
        ("SERVER_SOFTWARE", "fe-php/0.1.0"),
        ("REMOTE_ADDR", "127.0.0.1"),
        ("REMOTE_PORT", "53124"),
        ("SERVER_ADDR", "127.0.0.1"),
        ("SERVER_PORT", "8080"),
        ("SERVER_NAME", "localhost"),
        ("REDIRECT_STATUS", "200"),
        ("PATH_INFO", "/products/42"),
        ("HTTP_HOST", "localhost:8080"),
        ("HTTP_USER_AGENT", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
        ("HTTP_ACCEPT", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
        ("HTTP_ACCEPT_LANGUAGE", "en-US,en;q=0.5"),
        ("HTTP_ACCEPT_ENCODING", "gzip, deflate, br"),
        ("HTTP_CONNECTION", "keep-alive"),
        ("HTTP_COOKIE", "PHPSESSID=4f1c2a9be03d7f6a8c5e1b2d3a4f5e6d; theme=dark; consent=1"),
        ("HTTP_UPGRADE_INSECURE_REQUESTS", "1"),
        ("HTTP_CACHE_CONTROL", "max-age=0"),
    ] {
        p.push(k, v);
    }
    p
}

/// A STDOUT response of `body` bytes of content in records of `record` bytes (as php-fpm
/// writes them: 8-byte aligned with padding), then END_REQUEST.
fn stdout_response(request_id: u16, body: usize, record: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(body + body / record * 16 + 64);
    let content: Vec<u8> = b"Content-type: text/html; charset=UTF-8\r\n\r\n".iter().copied().chain((0..).map(|i| b'a' + (i % 26) as u8)).take(body).collect();
    for chunk in content.chunks(record) {
        let pad = (8 - chunk.len() % 8) % 8;
        let [id_hi, id_lo] = request_id.to_be_bytes();
        let [len_hi, len_lo] = (chunk.len() as u16).to_be_bytes();
        out.extend_from_slice(&[1, 6, id_hi, id_lo, len_hi, len_lo, pad as u8, 0]);
        out.extend_from_slice(chunk);
        out.resize(out.len() + pad, 0);
    }
    let [id_hi, id_lo] = request_id.to_be_bytes();
    out.extend_from_slice(&[1, 6, id_hi, id_lo, 0, 0, 0, 0]);
    out.extend_from_slice(&[1, 3, id_hi, id_lo, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    out
}

fn encode(c: &mut Criterion) {
    let params = typical_params();
    let mut probe = BytesMut::new();
    encode_begin_request(&mut probe, 1, true);
    encode_params(&mut probe, 1, &params);
    let mut g = c.benchmark_group("fastcgi_encode");
    g.throughput(Throughput::Bytes(probe.len() as u64));
    let mut buf = BytesMut::with_capacity(8192);
    g.bench_function("begin+params (29 typical params)", |b| {
        b.iter(|| {
            buf.clear();
            encode_begin_request(&mut buf, 1, true);
            encode_params(&mut buf, 1, black_box(&params));
            black_box(buf.len())
        })
    });

    let body = vec![b'x'; 64 * 1024];
    g.throughput(Throughput::Bytes(body.len() as u64));
    let mut buf = BytesMut::with_capacity(80 * 1024);
    g.bench_function("stdin 64 KB + end", |b| {
        b.iter(|| {
            buf.clear();
            encode_stdin(&mut buf, 1, black_box(&body));
            encode_stdin_end(&mut buf, 1);
            black_box(buf.len())
        })
    });
    g.finish();
}

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("fastcgi_decode");
    for record in [8 * 1024, 1024] {
        let wire = stdout_response(1, 16 * 1024, record);
        g.throughput(Throughput::Bytes(wire.len() as u64));
        g.bench_function(format!("16 KB stdout in {} B records", record), |b| {
            b.iter(|| {
                let mut buf = BytesMut::from(&wire[..]);
                let mut dec = ResponseDecoder::new(1);
                let mut got = 0;
                while let Some(ev) = dec.decode(&mut buf).unwrap() {
                    if let Event::Stdout(bytes) = ev {
                        got += bytes.len();
                    }
                }
                assert!(dec.is_finished());
                black_box(got)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, encode, decode);
criterion_main!(benches);
