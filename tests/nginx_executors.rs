//! `fephp_pass executors` through a REAL nginx (master + worker, the module's supervisor and
//! executors): the lifecycle the Test::Nginx suite cannot drive — `nginx -t` starts nothing,
//! the master SIGKILLed takes every executor with it, a reload under load fails no request
//! and the old pool exits after its last worker, `nginx -s quit` waits for in-flight PHP.
//! No timing assertions: every wait is bounded.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::nginx::{built_nginx, Nginx};
use support::{http, wait_until};

fn site(root: &std::path::Path) {
    std::fs::create_dir_all(root).unwrap();
    std::fs::write(root.join("pid.php"), "<?php echo getmypid();").unwrap();
    std::fs::write(root.join("work.php"), "<?php usleep(20000); echo 'ok';").unwrap();
    std::fs::write(root.join("slow.php"), "<?php sleep(2); echo 'slow done';").unwrap();
}

fn conf(root: &std::path::Path) -> String {
    format!(
        "fephp_executors 3;\n  server {{\n    listen 127.0.0.1:{{port}};\n    root {};\n    location ~ \\.php$ {{ fephp_pass executors; }}\n    location = /status {{ fephp_status; }}\n  }}",
        root.display()
    )
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
        .unwrap_or(false)
}

fn master_pid(n: &Nginx) -> i32 {
    let mut pid = 0;
    wait_until("the pid file", Duration::from_secs(10), || {
        pid = std::fs::read_to_string(n.dir.path().join("nginx.pid")).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
        pid > 0
    });
    pid
}

/// Executor pids from `fephp_status?full`.
fn executor_pids(n: &Nginx) -> Vec<u32> {
    let addr = format!("127.0.0.1:{}", n.port).parse().unwrap();
    let text = http(addr, "GET", "/status?full", &[], b"").text();
    text.lines()
        .filter(|l| l.starts_with("fephp_executor_requests_total{"))
        .filter_map(|l| l.split("pid=\"").nth(1)?.split('"').next()?.parse().ok())
        .filter(|&p| p > 0)
        .collect()
}

/// Supervisor pids from the error log (`supervisor N started`), in order.
fn supervisors(n: &Nginx) -> Vec<u32> {
    n.error_log()
        .lines()
        .filter_map(|l| l.split("fephp executors: supervisor ").nth(1)?.split(' ').next()?.parse().ok())
        .collect()
}

#[test]
fn nginx_t_starts_nothing() {
    let (nginx, module) = built_nginx();
    let dir = tempfile::tempdir().unwrap();
    site(&dir.path().join("html"));
    let prefix = dir.path().display().to_string();
    let body = conf(&dir.path().join("html")).replace("{port}", &support::free_port().to_string());
    std::fs::write(
        dir.path().join("nginx.conf"),
        format!(
            "daemon off;\nerror_log {prefix}/error.log info;\npid {prefix}/nginx.pid;\nload_module {};\nevents {{}}\nhttp {{\n  access_log off;\n  {body}\n}}\n",
            module.display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("logs")).unwrap();
    let out = std::process::Command::new(nginx)
        .args(["-t", "-p", &prefix, "-c", &format!("{prefix}/nginx.conf")])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
    assert!(!log.contains("executor pool started") && !stderr.contains("executor pool started"), "{log}{stderr}");
    // No process of ours carries this prefix on its command line.
    let ours = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|c| String::from_utf8_lossy(c).contains(&prefix))
        .count();
    assert_eq!(ours, 0);
}

#[test]
fn master_killed_takes_every_executor_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("html");
    site(&root);
    let n = Nginx::start(&conf(&root));
    let addr = format!("127.0.0.1:{}", n.port).parse().unwrap();
    assert_eq!(http(addr, "GET", "/pid.php", &[], b"").status, 200);
    let mut pids = Vec::new();
    wait_until("3 executors", Duration::from_secs(10), || {
        pids = executor_pids(&n);
        pids.len() == 3
    });
    let sup = supervisors(&n);
    assert_eq!(sup.len(), 1, "{}", n.error_log());
    let master = master_pid(&n);
    // SAFETY: signals to processes this test started.
    unsafe { libc::kill(master, libc::SIGKILL) };
    wait_until("executors and supervisor gone", Duration::from_secs(5), || {
        pids.iter().chain(&sup).all(|&p| !alive(p))
    });
    // nginx's workers outlive a SIGKILLed master (nginx's own behaviour): end them.
    // SAFETY: nginx runs in its own process group (tests/support/nginx.rs).
    unsafe { libc::kill(-master, libc::SIGKILL) };
}

#[test]
fn reload_under_load_fails_no_request_and_the_old_pool_exits() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("html");
    site(&root);
    let n = Nginx::start(&conf(&root));
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", n.port).parse().unwrap();
    let master = master_pid(&n);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (stop, done) = (stop.clone(), done.clone());
            std::thread::spawn(move || {
                let mut bad = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let r = http(addr, "GET", "/work.php", &[], b"");
                    if r.status != 200 || r.text() != "ok" {
                        bad.push((r.status, r.text()));
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
                bad
            })
        })
        .collect();
    for round in 1..=3 {
        let before = done.load(Ordering::Relaxed);
        // SAFETY: signal to the nginx master this test started.
        unsafe { libc::kill(master, libc::SIGHUP) };
        wait_until("a new pool", Duration::from_secs(15), || supervisors(&n).len() > round);
        wait_until("requests served after the reload", Duration::from_secs(15), || done.load(Ordering::Relaxed) > before + 20);
    }
    stop.store(true, Ordering::Relaxed);
    let bad: Vec<_> = clients.into_iter().flat_map(|c| c.join().unwrap()).collect();
    assert!(bad.is_empty(), "failed requests during reloads: {bad:?}");
    assert!(done.load(Ordering::Relaxed) > 60);
    // The old pools drain and exit once their workers are gone; the newest one serves on.
    let sup = supervisors(&n);
    assert_eq!(sup.len(), 4, "{}", n.error_log());
    wait_until("old supervisors gone", Duration::from_secs(15), || sup[..3].iter().all(|&p| !alive(p)));
    assert!(alive(sup[3]));
    assert_eq!(http(addr, "GET", "/work.php", &[], b"").status, 200);
}

#[test]
fn quit_waits_for_in_flight_php() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("html");
    site(&root);
    let n = Nginx::start(&conf(&root));
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", n.port).parse().unwrap();
    let master = master_pid(&n);
    let slow = std::thread::spawn(move || http(addr, "GET", "/slow.php", &[], b""));
    wait_until("the slow request to run", Duration::from_secs(10), || {
        http(addr, "GET", "/status", &[], b"").text().contains("fephp_executors_busy{engine=\"executors\"} 1")
    });
    // SAFETY: signal to the nginx master this test started.
    unsafe { libc::kill(master, libc::SIGQUIT) };
    let r = slow.join().unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "slow done"));
    wait_until("nginx gone", Duration::from_secs(10), || !alive(master as u32));
    let sup = supervisors(&n);
    wait_until("the pool gone", Duration::from_secs(5), || sup.iter().all(|&p| !alive(p)));
}

/// PHP that looks for `FEPHPSECRET-7431` in its own process memory (`/proc/self/mem`), without
/// ever holding the whole string itself.
const MEM_SCAN: &str = r#"<?php
$mem = fopen('/proc/self/mem', 'rb');
$hits = 0;
foreach (file('/proc/self/maps') as $line) {
    if (!preg_match('/^([0-9a-f]+)-([0-9a-f]+) r/', $line, $m) || strpos($line, '[v') !== false) continue;
    $start = hexdec($m[1]); $end = hexdec($m[2]);
    for ($at = $start; $at < $end; $at += 1 << 20) {
        $data = @stream_get_contents($mem, min(1 << 20, $end - $at), $at);
        if (!is_string($data)) break;
        $pos = 0;
        while (($pos = strpos($data, 'SECRET-7431', $pos)) !== false) {
            if ($pos >= 5 && substr($data, $pos - 5, 5) === 'FEPHP') $hits++;
            $pos++;
        }
    }
}
echo "hits ", $hits;
"#;

fn secret_conf(root: &std::path::Path, extra: &str) -> String {
    format!(
        "{extra}\n  server {{\n    listen 127.0.0.1:{{port}};\n    root {};\n    location ~ \\.php$ {{ fephp_pass executors; }}\n    location /other {{ proxy_set_header Authorization \"Bearer FEPHPSECRET-7431\"; proxy_pass http://127.0.0.1:9; }}\n    location = /status {{ fephp_status; }}\n  }}",
        root.display()
    )
}

#[test]
fn with_fephp_executor_binary_php_cannot_read_the_masters_memory() {
    let (nginx, _) = built_nginx();
    // <target>/release/build/nginx-sys-*/out/objs/nginx -> <target>/release/fe-php
    let fe_php = nginx.ancestors().nth(5).unwrap().join("fe-php");
    assert!(fe_php.is_file(), "{} (cargo build --release --workspace builds it)", fe_php.display());
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("html");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("scan.php"), MEM_SCAN).unwrap();

    // A forked pool is a copy of the master: the secret of another location is in reach.
    let forked = Nginx::start(&secret_conf(&root, "fephp_executors 1;"));
    let addr = format!("127.0.0.1:{}", forked.port).parse().unwrap();
    let r = http(addr, "GET", "/scan.php", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_ne!(r.text(), "hits 0", "the forked executor should see the master's memory (the test's premise)");
    drop(forked);

    // Exec'd: a fresh process image, nothing of nginx's memory.
    let execd = Nginx::start(&secret_conf(&root, &format!("fephp_executors 1;\n  fephp_executor_binary {};", fe_php.display())));
    let addr = format!("127.0.0.1:{}", execd.port).parse().unwrap();
    let r = http(addr, "GET", "/scan.php", &[], b"");
    assert_eq!((r.status, r.text().as_str()), (200, "hits 0"), "{}", execd.error_log());
    let pids = executor_pids(&execd);
    assert_eq!(pids.len(), 1);
    assert_eq!(std::fs::read_link(format!("/proc/{}/exe", pids[0])).unwrap(), fe_php.canonicalize().unwrap());
}
