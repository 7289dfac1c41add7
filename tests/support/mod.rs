//! Shared test support: a REAL php-fpm started per test (generated pool config, temp dir,
//! unix socket or TCP on a free port, `-F`, `-R` when root), the `fe-php serve` harness as a
//! child process, a minimal blocking HTTP/1.1 client, and fault-injection fake FPMs.
#![allow(dead_code)]

pub mod nginx;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The committed test scripts.
pub fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts")
}

/// The php.ini both backends use in tests.
pub fn test_php_ini() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/php.ini")
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Waits until `check` is true (bounded), panicking with `what` otherwise.
pub fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A php-fpm master with a static pool, stopped on drop.
pub struct Fpm {
    pub dir: tempfile::TempDir,
    /// `unix:/…/fpm.sock` or `127.0.0.1:port`, as fe-php's config takes it.
    pub address: String,
    child: Option<Child>,
    children: u32,
    extra: String,
}

impl Fpm {
    /// Starts php-fpm on a unix socket with extra `[www]` pool lines (e.g. `pm.max_requests = 2`).
    pub fn start_unix_with(children: u32, extra: &str) -> Fpm {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("fpm.sock");
        let mut fpm = Fpm { address: format!("unix:{}", sock.display()), dir, child: None, children, extra: extra.to_string() };
        fpm.spawn(&sock.display().to_string());
        fpm
    }

    /// Starts php-fpm on a unix socket with `children` static children.
    pub fn start_unix(children: u32) -> Fpm {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("fpm.sock");
        let mut fpm = Fpm { address: format!("unix:{}", sock.display()), dir, child: None, children, extra: String::new() };
        fpm.spawn(&sock.display().to_string());
        fpm
    }

    /// Starts php-fpm on 127.0.0.1 and a free port.
    pub fn start_tcp(children: u32) -> Fpm {
        let dir = tempfile::tempdir().unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let mut fpm = Fpm { address: addr.clone(), dir, child: None, children, extra: String::new() };
        fpm.spawn(&addr);
        fpm
    }

    fn spawn(&mut self, listen: &str) {
        let conf = self.dir.path().join("php-fpm.conf");
        let user = if is_root() { "user = root\ngroup = root\n" } else { "" };
        let text = format!(
            "[global]\nerror_log = {log}\ndaemonize = no\nlog_level = notice\n\n[www]\nlisten = {listen}\n{user}\
             pm = static\npm.max_children = {n}\nclear_env = yes\ncatch_workers_output = yes\n\
             decorate_workers_output = no\nphp_admin_value[session.save_path] = {dir}\n{extra}\n",
            log = self.dir.path().join("fpm.log").display(),
            n = self.children,
            dir = self.dir.path().display(),
            extra = self.extra,
        );
        std::fs::write(&conf, text).unwrap();
        let mut cmd = Command::new("php-fpm8.2");
        cmd.arg("-F").arg("-y").arg(&conf).arg("-c").arg(test_php_ini());
        if is_root() {
            cmd.arg("-R");
        }
        cmd.env("PHP_INI_SCAN_DIR", "").stdout(Stdio::null()).stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        self.child = Some(cmd.spawn().expect("php-fpm8.2 must be installed (see README)"));
        let address = self.address.clone();
        wait_until(&format!("php-fpm on {listen}"), Duration::from_secs(10), || connectable(&address));
    }

    /// Kills the master and its children (SIGKILL), like a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: php-fpm runs in its own process group (see spawn): kill master and children.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
        }
        if let Some(path) = self.address.strip_prefix("unix:") {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Starts php-fpm again on the same address.
    pub fn restart(&mut self) {
        self.kill();
        let listen = self.address.strip_prefix("unix:").unwrap_or(&self.address).to_string();
        self.spawn(&listen);
    }

    /// The FPM error log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("fpm.log")).unwrap_or_default()
    }
}

impl Drop for Fpm {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: plain signal to our child.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
        }
    }
}

fn connectable(address: &str) -> bool {
    match address.strip_prefix("unix:") {
        Some(path) => std::os::unix::net::UnixStream::connect(path).is_ok(),
        None => TcpStream::connect(address).is_ok(),
    }
}

/// A running `fe-php serve`, stopped (SIGTERM) on drop.
pub struct Harness {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    log_path: PathBuf,
}

impl Harness {
    /// Starts `fe-php serve` with `[server]` pointing at `document_root` and the given extra
    /// TOML for `[php]` (and more sections after it).
    pub fn start(document_root: &Path, php_toml: &str) -> Harness {
        Harness::start_with_args(document_root, php_toml, &[])
    }

    /// Like [`Harness::start`] with extra command-line arguments (e.g. `--workers 2`).
    pub fn start_with_args(document_root: &Path, php_toml: &str, args: &[&str]) -> Harness {
        Harness::spawn(document_root, php_toml, args, true)
    }

    /// Like [`Harness::start_with_args`], but PHP scans the directory it was built with
    /// (the distribution's conf.d): no `PHP_INI_SCAN_DIR` override.
    #[allow(dead_code)] // not every test binary uses it
    pub fn start_with_distribution_ini(document_root: &Path, php_toml: &str, args: &[&str]) -> Harness {
        Harness::spawn(document_root, php_toml, args, false)
    }

    /// Like [`Harness::start`] with extra `[server]` lines.
    pub fn start_with_server(document_root: &Path, server_toml: &str, php_toml: &str) -> Harness {
        Harness::spawn_with(document_root, server_toml, php_toml, &[], true)
    }

    fn spawn(document_root: &Path, php_toml: &str, args: &[&str], no_scan_dir: bool) -> Harness {
        Harness::spawn_with(document_root, "", php_toml, args, no_scan_dir)
    }

    fn spawn_with(document_root: &Path, server_toml: &str, php_toml: &str, args: &[&str], no_scan_dir: bool) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\ndocument_root = \"{}\"\nshutdown_timeout_ms = 3000\n{server_toml}\n\n[php]\n{php_toml}\n",
            document_root.display()
        );
        let config_path = dir.path().join("config.toml");
        std::fs::write(&config_path, config).unwrap();
        let log_path = dir.path().join("harness.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fe-php"));
        cmd.arg("serve").arg("--config").arg(&config_path).args(args);
        if no_scan_dir {
            cmd.env("PHP_INI_SCAN_DIR", ""); // like the test php-fpm: only tests/support/php.ini
        } else {
            cmd.env_remove("PHP_INI_SCAN_DIR");
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut h = Harness { addr, dir, child: Some(child), log_path };
        wait_until("fe-php serve to listen", Duration::from_secs(15), || {
            if let Some(status) = h.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("fe-php serve exited early ({status}): {}", h.log());
            }
            TcpStream::connect(addr).is_ok()
        });
        h
    }

    /// Everything the harness logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The harness process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends SIGTERM and returns the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        // SAFETY: plain signal to our child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        child.wait().unwrap()
    }

    /// GET `path`.
    pub fn get(&self, path: &str) -> HttpResponse {
        http(self.addr, "GET", path, &[], b"")
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.terminate();
        }
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// The status line's reason phrase.
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// First header value named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every value of header `name`, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request with `Connection: close`; reads the whole response.
pub fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpResponse {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    send_request(&stream, method, path, headers, body);
    read_response(stream, method == "HEAD")
}

/// Writes a request on `stream`.
pub fn send_request(mut stream: &TcpStream, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) {
    let host = if headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) { "" } else { "Host: localhost\r\n" };
    let mut head = format!("{method} {path} HTTP/1.1\r\n{host}Connection: close\r\n");
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
}

/// Reads a whole response (Content-Length, chunked, or until close).
pub fn read_response(stream: TcpStream, head_only: bool) -> HttpResponse {
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status: u16 = line.split_whitespace().nth(1).unwrap_or_else(|| panic!("bad status line {line:?}")).parse().unwrap();
    let reason = line.trim_end().splitn(3, ' ').nth(2).unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (n, v) = l.split_once(':').unwrap();
        headers.push((n.trim().to_string(), v.trim().to_string()));
    }
    let mut resp = HttpResponse { status, reason, headers, body: Vec::new() };
    if head_only {
        return resp;
    }
    if resp.header("transfer-encoding").map(|v| v.eq_ignore_ascii_case("chunked")).unwrap_or(false) {
        loop {
            line.clear();
            r.read_line(&mut line).unwrap();
            let size = usize::from_str_radix(line.trim(), 16).unwrap();
            if size == 0 {
                break;
            }
            let start = resp.body.len();
            resp.body.resize(start + size, 0);
            r.read_exact(&mut resp.body[start..]).unwrap();
            line.clear();
            r.read_line(&mut line).unwrap();
        }
    } else if let Some(len) = resp.header("content-length").map(|v| v.parse::<usize>().unwrap()) {
        resp.body.resize(len, 0);
        r.read_exact(&mut resp.body).unwrap();
    } else {
        r.read_to_end(&mut resp.body).unwrap();
    }
    resp
}

/// For fake FPMs: reads FastCGI records until the empty STDIN record that ends a request;
/// false on EOF.
pub fn read_fcgi_request(s: &mut TcpStream) -> bool {
    loop {
        let mut header = [0u8; 8];
        if s.read_exact(&mut header).is_err() {
            return false;
        }
        let len = u16::from_be_bytes([header[4], header[5]]) as usize + header[6] as usize;
        let mut content = vec![0u8; len];
        if s.read_exact(&mut content).is_err() {
            return false;
        }
        if header[1] == 5 && header[4] == 0 && header[5] == 0 {
            return true;
        }
    }
}

/// A fake FastCGI server for fault injection: accepts connections and runs `behaviour` on
/// each in a thread. Returns its address as `127.0.0.1:port`.
pub fn fake_fpm(behaviour: fn(TcpStream)) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || behaviour(stream));
        }
    });
    addr
}

/// `target/<profile>`: where cargo put libfephp.so / libfephp.a for this test binary.
pub fn capi_artifact_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().to_path_buf(); // …/release/deps/x → …/release
    assert!(
        dir.join("libfephp.so").is_file(),
        "no libfephp.so in {}: `cargo test` does not build the cdylib; run `cargo build --release` first (scripts/test.sh does)",
        dir.display()
    );
    assert!(dir.join("libfephp.a").is_file(), "no libfephp.a in {}", dir.display());
    dir
}

/// Installs the C API (scripts/install-capi.sh) into `<artifact dir>/<name>`, fresh; returns
/// the prefix (with lib/, include/, lib/pkgconfig/fephp.pc).
pub fn install_capi(name: &str) -> PathBuf {
    let artifacts = capi_artifact_dir();
    let prefix = artifacts.join(name);
    let _ = std::fs::remove_dir_all(&prefix);
    let out = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install-capi.sh"))
        .arg(&prefix)
        .env("FEPHP_LIB_DIR", &artifacts)
        .output()
        .unwrap();
    assert!(out.status.success(), "install-capi.sh failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(prefix.join("lib/libfephp.so.0").exists(), "no soname link under {}", prefix.display());
    prefix
}
