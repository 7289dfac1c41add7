//! Response buffering through a REAL nginx, both backends (`fephp_pass embedded` and
//! `fephp_pass` → a real php-fpm): with `fephp_buffering on` (the default) a client that reads
//! nothing does not hold PHP — a 20 MB response is taken into memory and nginx's temp file, PHP
//! finishes (it writes a marker file after its last `echo`), another request is answered
//! meanwhile, and the slow client still gets every byte, in order. With `fephp_buffering off`
//! (or a response's `X-Accel-Buffering: no`) the back-pressure reaches PHP: the script does not finish while the client does not read,
//! and finishes once it does.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use support::nginx::Nginx;
use support::{wait_until, Fpm};

/// Blocks of 64 KiB the script echoes: 20 MiB.
const BLOCKS: usize = 320;
const BLOCK: usize = 65536;

/// Block `i` as `big.php` writes it: its number, then dots.
fn block(i: usize) -> Vec<u8> {
    let mut b = format!("{i}:").into_bytes();
    b.resize(BLOCK, b'.');
    b
}

const BIG_PHP: &str = r#"<?php
for ($i = 0; $i < 320; $i++) {
    echo str_pad("$i:", 65536, ".");
}
file_put_contents($_GET['marker'], "done");
"#;

fn write_scripts(root: &Path, dirs: &[&str]) {
    for d in dirs {
        let dir = root.join(d);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("big.php"), BIG_PHP).unwrap();
        let no_buffering = BIG_PHP.replacen("<?php\n", "<?php\nheader('X-Accel-Buffering: no');\n", 1);
        std::fs::write(dir.join("big-nobuf.php"), no_buffering).unwrap();
        std::fs::write(dir.join("hello.php"), "<?php echo 'hello';").unwrap();
    }
}

/// Sends an HTTP/1.0 GET (no chunked framing: the body runs to the end of the connection).
fn get(port: u16, path: &str) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    s
}

/// Reads the response head and `n` bytes of the body (the "slow client" reads this much).
fn read_head_and(s: &mut TcpStream, n: usize) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let mut body = buf[end + 4..].to_vec();
            while body.len() < n {
                let k = s.read(&mut tmp).unwrap();
                assert!(k > 0, "connection closed early");
                body.extend_from_slice(&tmp[..k]);
            }
            return (head, body);
        }
        let k = s.read(&mut tmp).unwrap();
        assert!(k > 0, "connection closed before the response head");
        buf.extend_from_slice(&tmp[..k]);
    }
}

fn hello(port: u16, path: &str) -> String {
    let mut s = get(port, path);
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

/// The whole body must be the script's blocks, in order.
fn check_body(body: &[u8], what: &str) {
    assert_eq!(body.len(), BLOCKS * BLOCK, "{what}: body length");
    for i in 0..BLOCKS {
        assert!(body[i * BLOCK..(i + 1) * BLOCK] == block(i)[..], "{what}: block {i} differs");
    }
}

fn start(root: &Path, fpm: &Fpm) -> Nginx {
    Nginx::start(&format!(
        "  server {{\n    listen 127.0.0.1:{{port}};\n    root {root};\n\
         location /emb/ {{ fephp_temp_path {{prefix}}/fephp_tmp 1 2; fephp_pass embedded; }}\n\
         location /emb-off/ {{ fephp_buffering off; fephp_pass embedded; }}\n\
         location /fpm/ {{ fephp_pass {fpm}; }}\n\
         location /fpm-off/ {{ fephp_buffering off; fephp_pass {fpm}; }}\n  }}",
        root = root.display(),
        fpm = fpm.address,
    ))
}

/// Buffering on: PHP finishes while the client reads nothing; hello is answered meanwhile;
/// the slow client then gets the whole body, from memory and the temp file.
fn buffered(nginx: &Nginx, markers: &Path, loc: &str) {
    let marker = markers.join(format!("{loc}-buffered"));
    let mut slow = get(nginx.port, &format!("/{loc}/big.php?marker={}", marker.display()));
    let (head, mut body) = read_head_and(&mut slow, 1000);
    assert!(head.starts_with("HTTP/1.1 200"), "{loc}: {head}");
    wait_until(&format!("{loc}: PHP to finish while the client reads nothing"), Duration::from_secs(60), || {
        marker.exists()
    });
    let answer = hello(nginx.port, &format!("/{loc}/hello.php"));
    assert!(answer.ends_with("\r\n\r\nhello"), "{loc}: hello while a slow client is served: {answer}");
    assert!(
        nginx.error_log().contains("a fephp response is buffered to a temporary file"),
        "{loc}: the response went to nginx's temp file: {}",
        nginx.error_log()
    );
    slow.read_to_end(&mut body).unwrap();
    check_body(&body, loc);
}

/// Buffering off (`fephp_buffering off`, or the response's `X-Accel-Buffering: no`): PHP stays
/// in its echo loop while the client does not read (the client's and the kernel's buffers hold
/// far less than 20 MB), and finishes once the client reads.
fn streamed(nginx: &Nginx, markers: &Path, loc: &str, script: &str) {
    let marker = markers.join(format!("{loc}-{script}-streamed"));
    let mut slow = get(nginx.port, &format!("/{loc}/{script}?marker={}", marker.display()));
    let (head, mut body) = read_head_and(&mut slow, 1000);
    assert!(head.starts_with("HTTP/1.1 200"), "{loc}: {head}");
    std::thread::sleep(Duration::from_secs(2));
    assert!(!marker.exists(), "{loc}: with fephp_buffering off PHP must wait for the client (back-pressure)");
    slow.read_to_end(&mut body).unwrap();
    check_body(&body, loc);
    wait_until(&format!("{loc}: PHP to finish once the client has read"), Duration::from_secs(30), || marker.exists());
}

#[test]
fn a_slow_client_does_not_hold_php_unless_buffering_is_off() {
    let root = tempfile::tempdir().unwrap();
    let markers = tempfile::tempdir().unwrap();
    write_scripts(root.path(), &["emb", "emb-off", "fpm", "fpm-off"]);
    let fpm = Fpm::start_unix(1);
    let nginx = start(root.path(), &fpm);

    buffered(&nginx, markers.path(), "emb");
    buffered(&nginx, markers.path(), "fpm");
    streamed(&nginx, markers.path(), "emb-off", "big.php");
    streamed(&nginx, markers.path(), "fpm-off", "big.php");
    streamed(&nginx, markers.path(), "emb", "big-nobuf.php");
    streamed(&nginx, markers.path(), "fpm", "big-nobuf.php");
    assert!(nginx.dir.path().join("fephp_tmp").is_dir(), "fephp_temp_path is created by nginx");
    assert!(nginx.dir.path().join("fephp_temp").is_dir(), "the default fephp_temp_path is created by nginx");
    let log = nginx.error_log();
    assert!(!log.contains("[alert]") && !log.contains("[crit]"), "{log}");
}
