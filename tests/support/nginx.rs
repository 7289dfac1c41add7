//! A REAL nginx with the fe-php module loaded, started per test from the binaries that
//! `cargo build --release --workspace` leaves in the target dir (nginx from the `nginx-src`
//! crate, the module's `.so`): generated config in a temp dir, a free 127.0.0.1 port, stopped
//! (SIGQUIT, then SIGKILL) on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, is_root, wait_until};

/// The built nginx binary and module: `(nginx, module.so)`.
pub fn built_nginx() -> (PathBuf, PathBuf) {
    // The test executable is <target>/<profile>/deps/<name>-<hash>.
    let exe = std::env::current_exe().unwrap();
    let profile = exe.parent().and_then(Path::parent).expect("test binary under <target>/<profile>/deps");
    let module = profile.join("libngx_http_fephp_module.so");
    let mut objs: Vec<PathBuf> = std::fs::read_dir(profile.join("build"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("out/objs/nginx"))
        .filter(|p| p.starts_with(profile.join("build")) && p.to_string_lossy().contains("/nginx-sys-") && p.is_file())
        .collect();
    objs.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    let nginx = objs.pop();
    match nginx {
        Some(nginx) if module.is_file() => (nginx, module),
        _ => panic!(
            "no built nginx + module under {}: run `cargo build --release --workspace` first (scripts/test.sh does)",
            profile.display()
        ),
    }
}

/// A running nginx.
pub struct Nginx {
    /// Its prefix: config, logs, temp paths.
    pub dir: tempfile::TempDir,
    /// The port of `listen 127.0.0.1:{port}`.
    pub port: u16,
    child: Option<Child>,
}

impl Nginx {
    /// Starts nginx with `http` as the body of its `http {}` block; `{port}` in it is replaced
    /// with the listening port, `{prefix}` with the temp dir. One worker, error log at `info`.
    pub fn start(http: &str) -> Nginx {
        Self::start_with_workers(http, 1)
    }

    /// [`Nginx::start`] with `workers` worker processes.
    pub fn start_with_workers(http: &str, workers: usize) -> Nginx {
        let (nginx, module) = built_nginx();
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let prefix = dir.path().display().to_string();
        let user = if is_root() { "user root root;\n" } else { "" };
        let conf = format!(
            "{user}daemon off;\nmaster_process on;\nworker_processes {workers};\npid {prefix}/nginx.pid;\n\
             error_log {prefix}/error.log info;\nload_module {module};\n\
             events {{ worker_connections 512; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {prefix}/client_body;\n{body}\n}}\n",
            module = module.display(),
            body = http.replace("{port}", &port.to_string()).replace("{prefix}", &prefix),
        );
        std::fs::create_dir_all(dir.path().join("logs")).unwrap();
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let mut cmd = Command::new(&nginx);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
            .spawn()
            .unwrap();
        let mut n = Nginx { dir, port, child: Some(child) };
        wait_until("nginx to listen", Duration::from_secs(15), || {
            if let Some(status) = n.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("nginx exited early ({status}): {}{}", n.stderr(), n.error_log());
            }
            std::net::TcpStream::connect(("127.0.0.1", n.port)).is_ok()
        });
        n
    }

    /// `http://127.0.0.1:{port}{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// nginx's error log so far.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: plain signal to our child (graceful quit).
            unsafe { libc::kill(child.id() as i32, libc::SIGQUIT) };
            for _ in 0..100 {
                if child.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            // SAFETY: nginx runs in its own process group (see start): master and workers.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
        }
    }
}
