//! `fephp_worker` in a real nginx with an exec'd supervisor (`fephp_executor_binary`): the
//! worker options travel through `fe-php executor-supervisor`'s encoded options, the worker boots
//! once in the fresh `fe-php` image, and `watch=` restarts it when a watched file changes.
#![cfg(feature = "embed")]

mod support;

use std::time::Duration;

use support::nginx::{built_nginx, Nginx};
use support::{http, wait_until};

#[test]
fn worker_mode_with_an_execd_supervisor_and_watch() {
    let (nginx, _) = built_nginx();
    // <target>/release/build/nginx-sys-*/out/objs/nginx -> <target>/release/fe-php
    let fe_php = nginx.ancestors().nth(5).unwrap().join("fe-php");
    assert!(fe_php.is_file(), "{} (cargo build --release --workspace builds it)", fe_php.display());
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("html");
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(
        root.join("worker.php"),
        "<?php $v = require __DIR__ . '/src/version.php'; $boot = getmypid() . '-' . mt_rand();\n\
         while (fephp_handle_request(function () use ($v, $boot) { echo $v, ' ', $boot; })) {}\n",
    )
    .unwrap();
    std::fs::write(root.join("src/version.php"), "<?php return 'v1';").unwrap();
    let conf = format!(
        "fephp_executors 1;\n  fephp_executor_binary {fe};\n  fephp_php_ini opcache.revalidate_freq 0;\n  server {{\n    listen 127.0.0.1:{{port}};\n    root {root};\n    location ~ \\.php$ {{ fephp_worker {root}/worker.php watch={root}/src; fephp_pass executors; }}\n    location = /status {{ fephp_status; }}\n  }}",
        fe = fe_php.display(),
        root = root.display()
    );
    let n = Nginx::start(&conf);
    let addr = format!("127.0.0.1:{}", n.port).parse().unwrap();
    let get = || http(addr, "GET", "/worker.php", &[], b"").text();
    let first = get();
    assert!(first.starts_with("v1 "), "{first}\n{}", n.error_log());
    assert_eq!(get(), first, "one boot serves both requests");
    let status = http(addr, "GET", "/status", &[], b"").text();
    assert!(status.contains("fephp_executors_worker_mode{engine=\"executors\"} 1"), "{status}");

    std::fs::write(root.join("src/version.php"), "<?php return 'v2' /* changed */;").unwrap();
    wait_until("the watched change to restart the worker", Duration::from_secs(15), || get().starts_with("v2 "));
    assert!(n.error_log().contains("watched files changed: restarting the workers"), "{}", n.error_log());
    assert!(!n.error_log().contains("[error]"), "{}", n.error_log());
}
