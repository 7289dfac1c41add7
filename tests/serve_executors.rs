//! `fe-php serve` with an executor pool and the pool's options: `executor_transport`,
//! `[php.executors_dynamic]`, `executor_binary` (exec'd supervisor), `executor_user`, and the
//! per-request `[php.values]` carried to the executors; bad values refused naming the key.

mod support;

use std::process::Command;
use std::time::Duration;

use support::{wait_until, Harness};

fn is_root() -> bool {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    for (name, code) in [
        ("pid.php", "<?php echo getmypid();"),
        ("ini.php", "<?php echo ini_get('precision'), ' ', var_export(ini_set('max_input_vars', '5'), true);"),
        ("uid.php", "<?php preg_match('/^Uid:\\s+(\\d+)/m', file_get_contents('/proc/self/status'), $m); echo $m[1];"),
        ("slow.php", "<?php usleep(800000); echo 'slow';"),
    ] {
        std::fs::write(dir.path().join(name), code).unwrap();
        std::fs::set_permissions(dir.path().join(name), std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    }
    dir
}

#[test]
fn serve_runs_a_dynamic_shm_pool_execd_from_fe_php() {
    let root = site();
    let fe_php = env!("CARGO_BIN_EXE_fe-php");
    let user = if is_root() { "executor_user = \"nobody\"\n" } else { "" };
    let h = Harness::start(
        root.path(),
        &format!(
            "use_fpm = false\nexecutors = 3\nexecutor_transport = \"shm\"\nexecutor_binary = \"{fe_php}\"\n{user}\
             [php.executors_dynamic]\nstart = 1\nmin_spare = 1\nmax_spare = 1\nidle_timeout_ms = 0\n\
             [php.values]\nprecision = 5\n[php.admin_values]\nmax_input_vars = 77\n"
        ),
    );
    let r = h.get("/pid.php");
    assert_eq!(r.status, 200, "{}", h.log());
    let pid: u32 = r.text().parse().unwrap();
    assert_ne!(pid, h.pid());
    assert_eq!(std::fs::read_link(format!("/proc/{pid}/exe")).unwrap(), std::path::Path::new(fe_php).canonicalize().unwrap());
    assert!(h.log().contains("started a dynamic pool: 1 executors at first, at most 3"), "{}", h.log());
    // Per-request ini reaches the executor; the admin value cannot be changed.
    assert_eq!(h.get("/ini.php").text(), "5 false");
    // The executor user.
    let uid = h.get("/uid.php").text();
    if is_root() {
        assert_eq!(uid, "65534");
    } else {
        // SAFETY: no preconditions.
        assert_eq!(uid, unsafe { libc::geteuid() }.to_string());
    }
    // The dynamic pool grows under load: three slow requests at once all finish.
    let addr = h.addr;
    let slow: Vec<_> = (0..3).map(|_| std::thread::spawn(move || support::http(addr, "GET", "/slow.php", &[], b""))).collect();
    for s in slow {
        let r = s.join().unwrap();
        assert_eq!((r.status, r.text().as_str()), (200, "slow"));
    }
    wait_until("the log to show no crash", Duration::from_secs(1), || !h.log().contains("[error]"));
}

#[test]
fn bad_executor_options_are_refused_naming_the_key() {
    let root = site();
    for (toml, key) in [
        ("executors = 2\nexecutor_transport = \"pipe\"\n", "php.executor_transport"),
        ("executors = 2\nexecutor_binary = \"relative/fe-php\"\n", "php.executor_binary"),
        ("executors = 2\nexecutor_user = \"no-such-user-fephp\"\n", "php.executor_user"),
        ("executors = 2\n[php.executors_dynamic]\nmin_spare = 3\n", "php.executors_dynamic"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!("[server]\nlisten = \"127.0.0.1:1\"\ndocument_root = \"{}\"\n\n[php]\nuse_fpm = false\n{toml}", root.path().display()),
        )
        .unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_fe-php")).arg("serve").arg("--config").arg(&config).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{toml}: {err}");
        assert!(err.contains(key), "{toml}: {err}");
    }
}
