//! CGI layer micro-benchmarks: resolving a request target inside the document root
//! (`Site::resolve`, which touches the file system) and building the params
//! (`build_params`), and parsing a CGI response head (`ResponseHead::parse`).
//! Run: `cargo bench --bench cgi`.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fephp::cgi::{build_params, HeadParse, HttpRequest, ResponseHead, Site};

fn request() -> HttpRequest {
    let mut req = HttpRequest::new("GET", "/hello.php/extra/path?page=2&sort=desc");
    for (n, v) in [
        ("Host", "localhost:8080"),
        ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
        ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
        ("Accept-Language", "en-US,en;q=0.5"),
        ("Accept-Encoding", "gzip, deflate, br"),
        ("Connection", "keep-alive"),
        ("Cookie", "PHPSESSID=4f1c2a9be03d7f6a8c5e1b2d3a4f5e6d; theme=dark"),
        ("Cache-Control", "max-age=0"),
    ] {
        req.headers.push((n.to_string(), v.as_bytes().to_vec()));
    }
    req.remote_addr = Some("127.0.0.1:53124".parse().unwrap());
    req.local_addr = Some("127.0.0.1:8080".parse().unwrap());
    req
}

fn params(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts");
    let site = Site::new(&root, "index.php", &[".php".to_string()], true, false).unwrap();
    let req = request();
    let mut g = c.benchmark_group("cgi");
    g.bench_function("Site::resolve", |b| b.iter(|| black_box(site.resolve(black_box(&req.uri)).unwrap())));
    let script = site.resolve(&req.uri).unwrap();
    g.bench_function("build_params (8 headers)", |b| b.iter(|| black_box(build_params(black_box(&req), &site, &script, 0))));
    g.bench_function("resolve + build_params", |b| {
        b.iter(|| {
            let script = site.resolve(black_box(&req.uri)).unwrap();
            black_box(build_params(&req, &site, &script, 0))
        })
    });
    g.finish();
}

fn head(c: &mut Criterion) {
    let mut g = c.benchmark_group("cgi");
    let small = b"Content-type: text/html; charset=UTF-8\r\n\r\nHello, world!\n".to_vec();
    let big = b"Status: 302 Found\r\nContent-Type: application/json\r\nCache-Control: no-store, no-cache, must-revalidate\r\n\
Pragma: no-cache\r\nExpires: Thu, 19 Nov 1981 08:52:00 GMT\r\nSet-Cookie: PHPSESSID=4f1c2a9be03d7f6a8c5e1b2d3a4f5e6d; path=/; HttpOnly\r\n\
Set-Cookie: theme=dark; expires=Fri, 26-Dec-2026 10:00:00 GMT; Max-Age=2592000; path=/\r\nX-Powered-By: PHP/8.2\r\n\
Location: /login?next=%2Fproducts%2F42\r\nVary: Accept-Encoding\r\n\r\n{}"
        .to_vec();
    for (name, buf) in [("ResponseHead::parse (1 header)", small), ("ResponseHead::parse (10 headers)", big)] {
        g.throughput(Throughput::Bytes(buf.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| match ResponseHead::parse(black_box(&buf)).unwrap() {
                HeadParse::Complete { head, body_start } => black_box((head, body_start)),
                HeadParse::Incomplete => unreachable!(),
            })
        });
    }
    g.finish();
}

criterion_group!(benches, params, head);
criterion_main!(benches);
