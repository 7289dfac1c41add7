//! `fephp_pass executors` over the shared-memory transport (`fephp_executor_transport shm`)
//! through a REAL nginx with TWO workers (two clients of one queue, each with its own doorbell
//! and slots): both workers' requests are served by any executor; a reload under load fails
//! no request; a SIGKILLed nginx worker is replaced and its successor (same worker number)
//! takes its slots back; the exec'd supervisor (`fephp_executor_binary`) gets the region and
//! the doorbells; the master SIGKILLed takes every executor with it. No timing assertions.

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::nginx::{built_nginx, Nginx};
use support::{http, wait_until};

fn site(root: &std::path::Path) {
    std::fs::create_dir_all(root).unwrap();
    std::fs::write(root.join("pid.php"), "<?php echo getmypid();").unwrap();
    std::fs::write(root.join("work.php"), "<?php usleep(5000); echo 'ok';").unwrap();
    std::fs::write(root.join("slow.php"), "<?php sleep(3); echo 'slow done';").unwrap();
}

fn conf(root: &std::path::Path, extra: &str) -> String {
    format!(
        "fephp_executors 3;\n  fephp_executor_transport shm;\n  {extra}\n  server {{\n    listen 127.0.0.1:{{port}};\n    root {};\n    add_header X-Worker $pid;\n    location ~ \\.php$ {{ fephp_pass executors; }}\n    location = /status {{ fephp_status; }}\n  }}",
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

fn executor_pids(n: &Nginx) -> Vec<u32> {
    let addr = format!("127.0.0.1:{}", n.port).parse().unwrap();
    let text = http(addr, "GET", "/status?full", &[], b"").text();
    text.lines()
        .filter(|l| l.starts_with("fephp_executor_requests_total{"))
        .filter_map(|l| l.split("pid=\"").nth(1)?.split('"').next()?.parse().ok())
        .filter(|&p| p > 0)
        .collect()
}

fn supervisors(n: &Nginx) -> Vec<u32> {
    n.error_log()
        .lines()
        .filter_map(|l| l.split("fephp executors: supervisor ").nth(1)?.split(' ').next()?.parse().ok())
        .collect()
}

/// What one load thread reports: failed requests, and the nginx workers that answered.
type LoadReport = (Vec<(u16, String)>, HashSet<String>);

/// Runs `threads` clients on `/work.php` until `stop`; returns the failures and which nginx
/// workers and executors answered.
fn load(
    addr: std::net::SocketAddr,
    threads: usize,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
) -> Vec<std::thread::JoinHandle<LoadReport>> {
    (0..threads)
        .map(|_| {
            let (stop, done) = (stop.clone(), done.clone());
            std::thread::spawn(move || {
                let mut bad = Vec::new();
                let mut workers = HashSet::new();
                while !stop.load(Ordering::Relaxed) {
                    let r = http(addr, "GET", "/work.php", &[], b"");
                    if r.status != 200 || r.text() != "ok" {
                        bad.push((r.status, r.text()));
                    }
                    workers.insert(r.header("X-Worker").unwrap_or("").to_string());
                    done.fetch_add(1, Ordering::Relaxed);
                }
                (bad, workers)
            })
        })
        .collect()
}

#[test]
fn two_workers_share_the_queue_and_survive_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("html");
    site(&root);
    let n = Nginx::start_with_workers(&conf(&root, ""), 2);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", n.port).parse().unwrap();
    // Any executor serves any worker: 60 requests see several executors.
    let mut pids = HashSet::new();
    for _ in 0..60 {
        let r = http(addr, "GET", "/pid.php", &[], b"");
        assert_eq!(r.status, 200, "{}", n.error_log());
        pids.insert(r.text());
    }
    assert!(pids.len() >= 2, "{pids:?}");
    // Reloads under load: no failed request; requests came through both workers.
    let master = master_pid(&n);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let clients = load(addr, 6, stop.clone(), done.clone());
    for round in 1..=2 {
        let before = done.load(Ordering::Relaxed);
        // SAFETY: signal to the nginx master this test started.
        unsafe { libc::kill(master, libc::SIGHUP) };
        wait_until("a new pool", Duration::from_secs(15), || supervisors(&n).len() > round);
        wait_until("requests served after the reload", Duration::from_secs(15), || done.load(Ordering::Relaxed) > before + 50);
    }
    stop.store(true, Ordering::Relaxed);
    let mut bad = Vec::new();
    let mut workers = HashSet::new();
    for c in clients {
        let (b, w) = c.join().unwrap();
        bad.extend(b);
        workers.extend(w);
    }
    assert!(bad.is_empty(), "failed requests during reloads: {bad:?}\n{}", n.error_log());
    assert!(workers.len() >= 2, "{workers:?}");
    let sup = supervisors(&n);
    wait_until("old supervisors gone", Duration::from_secs(15), || sup[..sup.len() - 1].iter().all(|&p| !alive(p)));
    assert!(!n.error_log().contains("[alert]"), "{}", n.error_log());
}

#[test]
fn a_killed_worker_is_replaced_and_takes_its_slots_back() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("html");
    site(&root);
    let n = Nginx::start_with_workers(&conf(&root, ""), 1);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", n.port).parse().unwrap();
    let first = http(addr, "GET", "/work.php", &[], b"");
    assert_eq!(first.status, 200);
    let worker: i32 = first.header("X-Worker").unwrap().parse().unwrap();
    // The worker dies with a request in flight on an executor (its slot stays taken).
    let slow = std::thread::spawn(move || {
        let s = std::net::TcpStream::connect(addr).unwrap();
        std::io::Write::write_all(&mut &s, b"GET /slow.php HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut out = Vec::new();
        let _ = std::io::Read::read_to_end(&mut &s, &mut out);
    });
    wait_until("the slow request to run", Duration::from_secs(10), || {
        http(addr, "GET", "/status", &[], b"").text().contains("fephp_executors_busy{engine=\"executors\"} 1")
    });
    // SAFETY: a worker of the nginx this test started.
    unsafe { libc::kill(worker, libc::SIGKILL) };
    slow.join().unwrap();
    // The replacement (same worker number, same doorbell and slots) serves while its
    // predecessor's slot is still taken by the slow request: 300 requests, 6 at a time.
    let mut replaced = 0;
    wait_until("a new worker", Duration::from_secs(10), || {
        let r = http(addr, "GET", "/work.php", &[], b"");
        replaced = r.header("X-Worker").and_then(|w| w.parse().ok()).unwrap_or(0);
        r.status == 200 && replaced != worker
    });
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let clients = load(addr, 6, stop.clone(), done.clone());
    wait_until("300 requests", Duration::from_secs(60), || done.load(Ordering::Relaxed) >= 300);
    stop.store(true, Ordering::Relaxed);
    let bad: Vec<_> = clients.into_iter().flat_map(|c| c.join().unwrap().0).collect();
    assert!(bad.is_empty(), "{bad:?}\n{}", n.error_log());
    assert!(n.error_log().contains(&format!("worker process {worker} exited on signal 9")), "{}", n.error_log());
}

#[test]
fn an_execd_supervisor_gets_the_region_and_the_master_takes_it_all_down() {
    let (nginx, _) = built_nginx();
    let fe_php = nginx.ancestors().nth(5).unwrap().join("fe-php");
    assert!(fe_php.is_file(), "{} (cargo build --release --workspace builds it)", fe_php.display());
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("html");
    site(&root);
    let n = Nginx::start_with_workers(&conf(&root, &format!("fephp_executor_binary {};", fe_php.display())), 2);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", n.port).parse().unwrap();
    for _ in 0..20 {
        let r = http(addr, "GET", "/work.php", &[], b"");
        assert_eq!((r.status, r.text().as_str()), (200, "ok"), "{}", n.error_log());
    }
    let mut pids = Vec::new();
    wait_until("3 executors", Duration::from_secs(10), || {
        pids = executor_pids(&n);
        pids.len() == 3
    });
    assert_eq!(std::fs::read_link(format!("/proc/{}/exe", pids[0])).unwrap(), fe_php.canonicalize().unwrap());
    let sup = supervisors(&n);
    let master = master_pid(&n);
    // SAFETY: signals to processes this test started.
    unsafe { libc::kill(master, libc::SIGKILL) };
    wait_until("executors and supervisor gone", Duration::from_secs(5), || pids.iter().chain(&sup).all(|&p| !alive(p)));
    // SAFETY: nginx runs in its own process group (tests/support/nginx.rs).
    unsafe { libc::kill(-master, libc::SIGKILL) };
}
