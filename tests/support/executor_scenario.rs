//! The executor pool's scenario against the real parts, for either transport (included by
//! `tests/executor_pool.rs`, socket, and `tests/executor_shm.rs`, shared memory): a supervisor
//! forked from the test process runs Debian's libphp through our SAPI in executor processes;
//! requests go through the engine. Call [`run`] before any other thread exists (the pools are
//! forked). No timing assertions: every wait is bounded, nothing asserts how fast.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use fephp::cgi::{HttpRequest, RequestBody, Site};
use fephp::engine::BackendConfig;
use fephp::executor::{lookup_user, Dynamic, ExecutorOptions, Pool, Transport};
use fephp::{Engine, EngineError, Request};

const CRASH: &str = r#"<?php ini_set("memory_limit","-1"); $a=[]; $r=&$a; for($i=0;$i<3000000;$i++){$r[0]=[]; $r=&$r[0];} echo serialize($a);"#;

fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn is_root() -> bool {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn alive(pid: u32) -> bool {
    // A zombie still has /proc/<pid>; its state is Z.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
        .unwrap_or(false)
}

fn write(root: &Path, name: &str, code: &str) {
    let p = root.join(name);
    std::fs::write(&p, code).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
}

struct World {
    engine: Engine,
    site: Site,
}

impl World {
    async fn get(&self, uri: &str) -> Result<(u16, String), EngineError> {
        self.post(uri, b"").await
    }

    async fn post(&self, uri: &str, body: &[u8]) -> Result<(u16, String), EngineError> {
        let mut http = HttpRequest::new(if body.is_empty() { "GET" } else { "POST" }, uri);
        http.headers.push(("Host".into(), b"t".to_vec()));
        let body = RequestBody::from_bytes(Bytes::copy_from_slice(body));
        let mut resp = self.engine.serve(&self.site, Request { http, body }).await?;
        let mut out = Vec::new();
        while let Some(c) = resp.body.next_chunk().await {
            out.extend_from_slice(&c?);
        }
        Ok((resp.head.status, String::from_utf8_lossy(&out).into_owned()))
    }
}

/// The whole scenario over `transport`.
pub fn run(transport: Transport) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = dir.path();
    write(root, "hello.php", "<?php echo 'hello from ', php_sapi_name(), ' ', getmypid();");
    write(root, "slow.php", "<?php usleep((int)($_GET['ms'] ?? 1000) * 1000); echo 'slow done';");
    write(root, "crash.php", CRASH);
    write(root, "stuck.php", "<?php set_time_limit(0); sleep(30); echo 'never';");
    write(root, "body.php", "<?php $b = file_get_contents('php://input'); echo strlen($b), ' ', md5($b);");
    write(root, "uid.php", "<?php preg_match('/^Uid:\\s+(\\d+)/m', file_get_contents('/proc/self/status'), $m); echo $m[1];");
    write(root, "big.php", "<?php echo str_repeat('x', 1 << 20);");

    let user = if is_root() { lookup_user("nobody", None).ok() } else { None };
    let opts = ExecutorOptions {
        executors: 3,
        max_requests: 5,
        terminate_timeout: Duration::from_secs(6),
        queue_size: 64,
        user,
        transport,
        ..ExecutorOptions::default()
    };
    // Forked before the runtime's threads exist.
    let pool = Pool::start(opts, None).expect("pool starts");
    // A dynamic pool: 1 executor at first, at most 4, keeping 1 spare.
    let dynamic = Pool::start(
        ExecutorOptions {
            executors: 4,
            dynamic: Some(Dynamic { start: 1, min_spare: 1, max_spare: 1, idle_timeout: Duration::ZERO }),
            transport,
            ..ExecutorOptions::default()
        },
        None,
    )
    .expect("dynamic pool starts");
    let board = pool.scoreboard().clone();
    let supervisor = pool.supervisor_pid();

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let client = pool.client(Duration::from_secs(5), Duration::from_secs(30), Duration::from_secs(6));
    let world = std::sync::Arc::new(World {
        engine: Engine::new(BackendConfig::Executors(client)).unwrap(),
        site: Site::new(root, "index.php", &[".php".to_string()], true, false).unwrap(),
    });

    rt.block_on(async {
        // Hello through an executor (the SAPI name is ours).
        let (status, body) = world.get("/hello.php").await.expect("hello");
        assert_eq!(status, 200);
        assert!(body.starts_with("hello from fe-php "), "{body}");

        // Status: every executor up, with a pid.
        wait_until("3 idle executors", Duration::from_secs(10), || board.snapshot().idle == 3);
        let st = board.snapshot();
        assert!(st.executors.iter().all(|e| e.pid > 0 && e.state == "idle"), "{st:?}");
        assert_eq!(st.supervisor_pid, supervisor);

        // Shared queue: while one executor sleeps, the others serve 10 requests.
        let w = world.clone();
        let slow = tokio::spawn(async move { w.get("/slow.php?ms=1500").await });
        wait_until("the slow request to be running", Duration::from_secs(10), || board.snapshot().busy == 1);
        let st = board.snapshot();
        let busy = st.executors.iter().find(|e| e.state == "busy").expect("a busy executor");
        assert_eq!(busy.uri, "/slow.php?ms=1500");
        assert!(busy.running_for.is_some());
        for _ in 0..10 {
            assert_eq!(world.get("/hello.php").await.expect("hello while slow").0, 200);
        }
        assert!(!slow.is_finished(), "10 requests were served while the slow one ran");
        let (status, body) = slow.await.unwrap().expect("slow");
        assert_eq!((status, body.as_str()), (200, "slow done"));

        // Request bodies: small and large (a temp file on the executor side).
        let small = b"a=1&b=2".to_vec();
        let large: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        for body in [&small, &large] {
            let (status, text) = world.post("/body.php", body).await.expect("post");
            assert_eq!(status, 200);
            assert!(text.starts_with(&format!("{} ", body.len())), "{text}");
        }
        // A large response streams through.
        let (status, text) = world.get("/big.php").await.expect("big");
        assert_eq!((status, text.len()), (200, 1 << 20));

        // Executor user.
        let (_, uid) = world.get("/uid.php").await.expect("uid");
        match user {
            Some(cred) => assert_eq!(uid, cred.uid.to_string()),
            None => assert_eq!(uid, unsafe { libc::geteuid() }.to_string()),
        }

        // Crash: only that request fails (502), the executor is replaced, PHP serves on.
        let crashes = board.snapshot().crashes;
        let err = world.get("/crash.php").await.expect_err("the crash fails its request");
        assert_eq!(err.status(), 502, "{err}");
        wait_until("the crash to be counted", Duration::from_secs(10), || board.snapshot().crashes > crashes);
        wait_until("a replacement", Duration::from_secs(10), || board.snapshot().idle == 3);
        assert_eq!(world.get("/hello.php").await.expect("after crash").0, 200);

        // Hard timeout: the executor is killed (504) and replaced. (6 s: the crash script above must
        // crash well before it, even on a loaded machine.)
        let err = world.get("/stuck.php").await.expect_err("stuck is killed");
        assert_eq!(err.status(), 504, "{err}");
        wait_until("the kill to be counted", Duration::from_secs(10), || board.snapshot().timeouts >= 1);
        wait_until("a replacement", Duration::from_secs(10), || board.snapshot().idle == 3);
        assert_eq!(world.get("/hello.php").await.expect("after kill").0, 200);

        // Recycling: with max_requests 5, 20 requests see more than 3 processes.
        let mut pids = std::collections::HashSet::new();
        for _ in 0..20 {
            let (_, body) = world.get("/hello.php").await.expect("hello");
            pids.insert(body.rsplit(' ').next().unwrap().to_string());
        }
        assert!(pids.len() > 3, "{pids:?}");
        wait_until("restarts to be counted", Duration::from_secs(10), || board.snapshot().restarts >= 1);

        // Prometheus text.
        let metrics = world.engine.render_metrics();
        assert!(metrics.contains("fephp_executors_total 3\n"), "{metrics}");
        assert!(metrics.contains("fephp_executors_crashes_total"), "{metrics}");
    });

    // Dynamic: grows under load (keeping one spare), shrinks back when idle.
    let dboard = dynamic.scoreboard().clone();
    let dworld = std::sync::Arc::new(World {
        engine: Engine::new(BackendConfig::Executors(dynamic.client(
            Duration::from_secs(5),
            Duration::from_secs(20),
            Duration::ZERO,
        )))
        .unwrap(),
        site: Site::new(root, "index.php", &[".php".to_string()], true, false).unwrap(),
    });
    rt.block_on(async {
        wait_until("the first executor", Duration::from_secs(10), || dboard.snapshot().idle >= 1);
        let slow: Vec<_> = (0..3)
            .map(|_| {
                let w = dworld.clone();
                tokio::spawn(async move { w.get("/slow.php?ms=1000").await })
            })
            .collect();
        wait_until("the pool to grow", Duration::from_secs(10), || dboard.snapshot().running >= 3);
        for s in slow {
            assert_eq!(s.await.unwrap().expect("slow").0, 200);
        }
        wait_until("the pool to shrink to one spare", Duration::from_secs(10), || {
            let st = dboard.snapshot();
            st.running == 1 && st.idle == 1
        });
        assert_eq!(dboard.snapshot().restarts, 0, "a scale-down is not a restart");
    });
    drop(dworld);
    drop(dynamic);

    // The owner goes away (like a SIGKILLed nginx master): every executor is gone.
    let pids: Vec<u32> = board.snapshot().executors.iter().map(|e| e.pid).filter(|&p| p > 0).collect();
    assert!(!pids.is_empty());
    drop(world);
    drop(pool);
    wait_until("executors and supervisor gone", Duration::from_secs(5), || {
        !alive(supervisor) && pids.iter().all(|&p| !alive(p))
    });
}
