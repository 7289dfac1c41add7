//! `fe-php serve` in worker mode (`php.worker_script`): the real binary, its executor pool and
//! Debian's libphp. The worker boots once and serves; a fatal error restarts it.
#![cfg(feature = "embed")]

mod support;

use support::Harness;

#[test]
fn serve_runs_a_worker_script() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(
        root.join("worker.php"),
        "<?php $boot = getmypid() . '-' . mt_rand(); $n = 0;\n\
         while (fephp_handle_request(function () use ($boot, &$n) {\n\
             if (isset($_GET['fatal'])) { no_such_function(); }\n\
             $n++; echo $boot, ' ', $n, ' ', $_GET['q'] ?? '-';\n\
         })) {}\n",
    )
    .unwrap();
    std::fs::write(root.join("index.php"), "<?php echo 'classic';").unwrap();
    let php = format!("executors = 1\nworker_script = \"{}\"\n", root.join("worker.php").display());
    let h = Harness::start(root, &php);
    let first = h.get("/index.php?q=a");
    assert_eq!(first.status, 200, "{}", h.log());
    let first = first.text();
    let (boot, rest) = first.split_once(' ').unwrap();
    assert_eq!(rest, "1 a", "the worker's handler answers, not index.php");
    assert_eq!(h.get("/index.php?q=b").text(), format!("{boot} 2 b"), "same boot, state kept");
    assert_eq!(h.get("/index.php?fatal=1").status, 500);
    let after = h.get("/index.php?q=c").text();
    assert!(after.ends_with(" 1 c") && !after.starts_with(boot), "a fresh worker: {after}");
}
