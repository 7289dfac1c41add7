//! `fe-php bench`: argument errors name the flag; a short run against a REAL `fe-php serve`
//! + php-fpm reports requests, only 200s and ordered percentiles. No timing thresholds.

mod support;

use std::process::{Command, Output};

use support::{free_port, scripts_dir, Fpm, Harness};

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fe-php")).arg("bench").args(args).output().unwrap()
}

fn assert_rejected(args: &[&str], flag: &str) {
    let out = bench(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} should fail");
    assert!(stderr.contains(flag), "{args:?}: error should name {flag}: {stderr}");
}

#[test]
fn bad_arguments_exit_non_zero_naming_the_flag() {
    let url = "http://127.0.0.1:9/x";
    assert_rejected(&["--url", "not a url"], "--url");
    assert_rejected(&["--url", "https://127.0.0.1/"], "--url");
    assert_rejected(&["--url", "ftp://127.0.0.1/"], "--url");
    assert_rejected(&["--url", url, "--duration", "0"], "--duration");
    assert_rejected(&["--url", url, "--duration", "x"], "--duration");
    assert_rejected(&["--url", url, "--concurrency", "0"], "--concurrency");
    assert_rejected(&["--url", url, "--rps", "0"], "--rps");
    assert_rejected(&["--url", url, "--threads", "0"], "--threads");
    assert_rejected(&["--url", url, "--header", "no colon"], "--header");
    assert_rejected(&["--url", url, "--body-file", "/nonexistent/body"], "--body-file");
    assert_rejected(&["--duration", "1"], "--url");
}

#[test]
fn unreachable_target_fails_fast() {
    let url = format!("http://127.0.0.1:{}/", free_port());
    let out = bench(&["--url", &url, "--duration", "1", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--url") && stderr.contains("cannot connect"), "{stderr}");
}

fn run_json(args: &[&str]) -> serde_json::Value {
    let out = bench(args);
    assert!(out.status.success(), "bench failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "no progress line when stderr is not a TTY: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("--json prints one JSON object")
}

fn assert_sane(r: &serde_json::Value) {
    let requests = r["requests"].as_u64().unwrap();
    assert!(requests > 0, "{r}");
    assert_eq!(r["status"].as_object().unwrap().len(), 1, "only 200s: {r}");
    assert_eq!(r["status"]["200"].as_u64(), Some(requests), "{r}");
    assert_eq!(r["error_total"].as_u64(), Some(0), "{r}");
    let l = &r["latency_us"];
    let (p50, p90, p99, p999, max) =
        (l["p50"].as_u64().unwrap(), l["p90"].as_u64().unwrap(), l["p99"].as_u64().unwrap(), l["p99_9"].as_u64().unwrap(), l["max"].as_u64().unwrap());
    assert!(p50 > 0 && p50 <= p90 && p90 <= p99 && p99 <= p999 && p999 <= max, "{r}");
    assert!(r["rps"].as_f64().unwrap() > 0.0, "{r}");
    assert!(r["body_bytes"].as_u64().unwrap() >= requests * "Hello, world!\n".len() as u64, "{r}");
}

#[test]
fn json_run_against_fe_php_serve_and_php_fpm() {
    let fpm = Fpm::start_unix(2);
    let h = Harness::start(&scripts_dir(), &format!("use_fpm = true\nfpm_socket = \"{}\"\nworker_pool_size = 4\n", fpm.address));
    let url = format!("http://{}/hello.php", h.addr);

    let closed = run_json(&["--url", &url, "--duration", "1", "--concurrency", "4", "--json"]);
    assert_eq!(closed["mode"], "closed");
    assert_sane(&closed);

    let open = run_json(&["--url", &url, "--duration", "1", "--concurrency", "2", "--rps", "200", "--runtime", "multi-thread", "--json"]);
    assert_eq!(open["mode"], "open");
    assert_eq!(open["target_rps"], 200);
    assert_sane(&open);

    // POST with a body file and an extra header reaches PHP.
    let body = h.dir.path().join("body.txt");
    std::fs::write(&body, "a=1&b=2").unwrap();
    let post = run_json(&[
        "--url", &format!("http://{}/echo_request.php", h.addr), "--duration", "1", "--concurrency", "1", "--method", "POST",
        "--header", "Content-Type: application/x-www-form-urlencoded", "--body-file", body.to_str().unwrap(), "--json",
    ]);
    assert!(post["requests"].as_u64().unwrap() > 0, "{post}");
    assert_eq!(post["error_total"].as_u64(), Some(0), "{post}");
    assert_eq!(post["status"]["200"], post["requests"], "{post}");
}
