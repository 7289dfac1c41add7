//! `fe-php serve` in embedded mode scales by processes: a crashed worker is replaced, and a
//! worker is recycled after `worker_max_requests`; PHP reads the distribution's php.ini and
//! conf.d unless told otherwise. Against the REAL libphp.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use support::{scripts_dir, wait_until, Harness};

fn pid_of_next_request(h: &Harness) -> i32 {
    let r = match std::panic::catch_unwind(|| h.get("/pid.php")) {
        Ok(r) => r,
        Err(_) => panic!("request failed; harness log:\n{}", h.log()),
    };
    assert_eq!(r.status, 200, "{}", h.log());
    r.text().parse().unwrap()
}

#[test]
fn a_segfaulting_worker_is_replaced_and_the_service_lives() {
    let h = Harness::start_with_args(&scripts_dir(), "use_fpm = false\n", &["--workers", "2"]);
    let mut pids = HashSet::new();
    wait_until("both workers to answer", Duration::from_secs(30), || {
        pids.insert(pid_of_next_request(&h));
        pids.len() == 2
    });
    let victim = *pids.iter().next().unwrap();
    // SAFETY: signalling a worker process of the harness we started.
    unsafe { libc::kill(victim, libc::SIGSEGV) };
    wait_until("the supervisor to notice the crash", Duration::from_secs(10), || {
        h.log().contains(&format!("worker process {victim} killed by signal 11"))
    });
    let mut after = HashSet::new();
    wait_until("a replacement worker to serve", Duration::from_secs(30), || {
        after.insert(pid_of_next_request(&h));
        after.len() == 2
    });
    assert!(!after.contains(&victim), "the crashed worker still answers?");
    for _ in 0..10 {
        assert_eq!(h.get("/hello.php").status, 200);
    }
}

#[test]
fn workers_are_recycled_after_max_requests() {
    let h = Harness::start_with_args(&scripts_dir(), "use_fpm = false\nworker_max_requests = 5\n", &["--workers", "1"]);
    let mut pids = HashSet::new();
    for _ in 0..16 {
        pids.insert(pid_of_next_request(&h));
    }
    assert!(pids.len() >= 3, "expected recycling every 5 requests, saw pids {pids:?}\n{}", h.log());
    assert!(h.log().contains("recycling"), "{}", h.log());
}

#[test]
fn embedded_health_and_metrics() {
    let h = Harness::start_with_args(&scripts_dir(), "use_fpm = false\n", &["--workers", "1"]);
    assert_eq!(h.get("/hello.php").text(), "Hello, world!\n");
    let health = h.get("/_health");
    assert_eq!(health.status, 200);
    assert!(health.text().contains("\"backend\":\"embedded\""), "{}", health.text());
    let metrics = h.get("/_metrics").text();
    assert!(metrics.contains("fephp_requests_total{class=\"2xx\"} 1"), "{metrics}");
}

/// `extensions.php` through a harness: "php.ini|mbstring intl mysqli xml|opcache".
fn extensions(h: &Harness) -> String {
    let r = h.get("/extensions.php");
    assert_eq!(r.status, 200, "{}", h.log());
    r.text()
}

#[test]
fn by_default_php_reads_the_distribution_ini_and_its_extensions() {
    let h = Harness::start_with_distribution_ini(&scripts_dir(), "use_fpm = false\n", &["--workers", "1"]);
    let report = extensions(&h);
    let fields: Vec<&str> = report.trim().split('|').collect();
    // Debian's embed SAPI: /etc/php/8.2/embed/php.ini, the directory libphp8.2.so was built with.
    assert!(fields[0].ends_with("/embed/php.ini"), "{report}");
    assert_eq!(fields[1], "mbstring=1 intl=1 mysqli=1 xml=1", "{report}");
    assert_eq!(fields[2], "opcache=1", "{report}");
    assert!(h.log().contains(&format!("php.ini: {};", fields[0])), "{}", h.log());
    // Our SAPI's needs survive the distribution's ini.
    assert_eq!(fields[3], "hard_timeout=0", "{report}");
}

#[test]
fn ini_file_off_reads_no_ini_and_a_named_file_is_read() {
    let h = Harness::start_with_distribution_ini(&scripts_dir(), "use_fpm = false\nini_file = \"off\"\n", &["--workers", "1"]);
    assert_eq!(extensions(&h).trim(), "|mbstring=0 intl=0 mysqli=0 xml=0|opcache=1|hard_timeout=0");
    drop(h);
    let ini = support::test_php_ini();
    let toml = format!("use_fpm = false\nini_file = \"{}\"\n", ini.display());
    let h = Harness::start_with_args(&scripts_dir(), &toml, &["--workers", "1"]);
    assert_eq!(extensions(&h).trim(), format!("{}|mbstring=0 intl=0 mysqli=0 xml=0|opcache=1|hard_timeout=0", ini.display()));
}
