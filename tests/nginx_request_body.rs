//! Request bodies through a REAL nginx arrive whole at PHP, in both backends (`fephp_pass
//! embedded` and `fephp_pass` → a real php-fpm): every size around every boundary nginx has
//! (the header buffer's preread, `client_body_buffer_size`, PHP's 16 KiB read block) ×
//! Content-Length, chunked and HTTP/2 × raw `php://input`, urlencoded `$_POST` and multipart
//! `$_FILES` × four body-buffer settings (default, `client_body_buffer_size 1k` / `128k`,
//! `client_body_in_file_only on`). PHP reports lengths and sha1s (`body_digest.php`); every
//! cell must match what was sent. fe-php 0.1.0 (embedded) kept only nginx's first body
//! buffer (CHANGELOG.md).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use support::nginx::Nginx;
use support::{scripts_dir, Fpm};

const SIZES: &[usize] = &[
    0, 1, 850, 860, 863, 868, 870, 900, 1000, 1023, 1024, 1025, 1100, 4095, 4096, 4097, 8191, 8192, 8193, 16383, 16384,
    16385, 65536, 1 << 20, 5 << 20,
];
const BACKENDS: &[&str] = &["embedded", "fpm"];
/// Location prefix and the nginx body-buffer setting it uses.
const BUFFERS: &[(&str, &str)] = &[
    ("default", ""),
    ("buf1k", "client_body_buffer_size 1k;"),
    ("buf128k", "client_body_buffer_size 128k;"),
    ("infile", "client_body_in_file_only on;"),
];

#[derive(Clone, Copy, Debug)]
enum Transport {
    ContentLength,
    Chunked,
    Http2,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    /// `application/octet-stream`, read from `php://input`.
    Raw,
    /// `a=<value>`, urlencoded, read from `$_POST['a']` (and `php://input`).
    Form,
    /// The body as the file `f` of a multipart form, read from `$_FILES`.
    Multipart,
}

/// Deterministic bytes: every value 0..=255 for raw and multipart, letters for the form.
fn content(size: usize, kind: Kind) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9 ^ size as u32;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    match kind {
        Kind::Form => {
            let mut v: Vec<u8> = (0..size).map(|_| b'a' + (next() % 26) as u8).collect();
            v.iter_mut().take(2).zip(b"a=").for_each(|(b, c)| *b = *c);
            v
        }
        _ => (0..size).map(|_| next() as u8).collect(),
    }
}

fn sha1(data: &[u8], dir: &Path) -> String {
    let path = dir.join("sha1-input");
    std::fs::write(&path, data).unwrap();
    let out = Command::new("sha1sum").arg(&path).output().expect("sha1sum (coreutils)");
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string()
}

/// A body file and what PHP must report for it.
struct Body {
    path: PathBuf,
    expect: Vec<String>,
}

fn prepare(size: usize, kind: Kind, dir: &Path) -> Body {
    let data = content(size, kind);
    let path = dir.join(format!("{kind:?}-{size}"));
    std::fs::write(&path, &data).unwrap();
    let empty = sha1(b"", dir);
    let digest = sha1(&data, dir);
    let expect = match kind {
        Kind::Raw => vec![format!("input {size} {digest}"), format!("post 0 {empty}"), "file none".into()],
        Kind::Form => {
            let value = data.get(2..).unwrap_or(b"");
            vec![
                format!("input {size} {digest}"),
                format!("post {} {}", value.len(), sha1(value, dir)),
                "file none".into(),
            ]
        }
        Kind::Multipart => vec![format!("post 0 {empty}"), format!("file 0 {size} {digest}")],
    };
    Body { path, expect }
}

fn curl(url: &str, transport: Transport, kind: Kind, body: &Path) -> Result<String, String> {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "60", "-H", "Expect:", "-o", "-", "-w", "\nstatus %{http_code}\n"]);
    match transport {
        Transport::ContentLength => cmd.arg("--http1.1"),
        Transport::Chunked => cmd.args(["--http1.1", "-H", "Transfer-Encoding: chunked"]),
        Transport::Http2 => cmd.arg("--http2-prior-knowledge"),
    };
    let at = format!("@{}", body.display());
    match kind {
        Kind::Raw => cmd.args(["-H", "Content-Type: application/octet-stream", "--data-binary", &at]),
        Kind::Form => cmd.args(["-H", "Content-Type: application/x-www-form-urlencoded", "--data-binary", &at]),
        Kind::Multipart => cmd.args(["-F", &format!("f={at};type=application/octet-stream")]),
    };
    let out = cmd.arg(url).output().map_err(|e| format!("curl: {e}"))?;
    if !out.status.success() {
        return Err(format!("curl {}: {}", out.status, String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn every_body_arrives_whole_in_both_backends() {
    let fpm = Fpm::start_unix(4);
    let root = tempfile::tempdir().unwrap();
    let mut locations = String::new();
    for backend in BACKENDS {
        let pass = match *backend {
            "embedded" => "embedded".to_string(),
            _ => fpm.address.clone(),
        };
        for (name, setting) in BUFFERS {
            let dir = root.path().join(format!("{backend}-{name}"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::copy(scripts_dir().join("body_digest.php"), dir.join("body_digest.php")).unwrap();
            locations += &format!("    location /{backend}-{name}/ {{ {setting} fephp_pass {pass}; }}\n");
        }
    }
    let nginx = Nginx::start(&format!(
        "  fephp_php_ini post_max_size 64M;\n  fephp_php_ini upload_max_filesize 64M;\n\
         server {{\n    listen 127.0.0.1:{{port}};\n    http2 on;\n    client_max_body_size 64m;\n\
         root {root};\n{locations}  }}",
        root = root.path().display()
    ));

    let bodies_dir = tempfile::tempdir().unwrap();
    let kinds = [Kind::Raw, Kind::Form, Kind::Multipart];
    let transports = [Transport::ContentLength, Transport::Chunked, Transport::Http2];
    let mut cells = Vec::new();
    for &size in SIZES {
        for kind in kinds {
            let body = std::sync::Arc::new(prepare(size, kind, bodies_dir.path()));
            for transport in transports {
                for backend in BACKENDS {
                    for (buffers, _) in BUFFERS {
                        cells.push((size, kind, transport, *backend, *buffers, body.clone()));
                    }
                }
            }
        }
    }

    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((size, kind, transport, backend, buffers, body)) = cells.get(i) else { break };
                let url = nginx.url(&format!("/{backend}-{buffers}/body_digest.php"));
                let cell = format!("{backend} {buffers} {transport:?} {kind:?} {size}");
                match curl(&url, *transport, *kind, &body.path) {
                    Err(e) => failures.lock().unwrap().push(format!("{cell}: {e}")),
                    Ok(out) => {
                        let status = "status 200".to_string();
                        let missing: Vec<&str> = body
                            .expect
                            .iter()
                            .chain([&status])
                            .filter(|line| !out.lines().any(|l| l == line.as_str()))
                            .map(String::as_str)
                            .collect();
                        if !missing.is_empty() {
                            failures.lock().unwrap().push(format!("{cell}: expected {missing:?}, PHP said {out:?}"));
                        }
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} cells lost bytes:\n{}\nnginx error log:\n{}",
        failures.len(),
        cells.len(),
        failures.join("\n"),
        nginx.error_log().lines().filter(|l| l.contains("[error]") || l.contains("[alert]")).take(20).collect::<Vec<_>>().join("\n")
    );
}
