//! The C API from C: installs `libfephp` (scripts/install-capi.sh) into a prefix under the
//! target dir, compiles the programs in `tests/c/` against the INSTALLED header and shared
//! library (`pkg-config --cflags --libs fephp`), and runs each one under valgrind against a
//! REAL php-fpm: zero errors, zero definite/indirect leaks.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use support::{scripts_dir, test_php_ini, Fpm};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Installs the C API once per test binary; returns the prefix.
fn prefix() -> &'static Path {
    static PREFIX: OnceLock<PathBuf> = OnceLock::new();
    PREFIX.get_or_init(|| support::install_capi("capi-test-install"))
}

fn pkg_config(args: &[&str]) -> Vec<String> {
    let out = Command::new("pkg-config")
        .args(args)
        .arg("fephp")
        .env("PKG_CONFIG_PATH", prefix().join("lib/pkgconfig"))
        .output()
        .expect("pkg-config must be installed (scripts/install-deps.sh)");
    assert!(out.status.success(), "pkg-config {args:?} fephp: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().split_whitespace().map(str::to_string).collect()
}

/// Compiles `tests/c/<name>.c` + the shared helper against the installed C API into
/// `<prefix>/tests/<out>` (each test its own `out`: tests run in parallel).
fn compile(name: &str, static_link: bool, out: &str) -> PathBuf {
    let out_dir = prefix().join("tests");
    std::fs::create_dir_all(&out_dir).unwrap();
    let exe = out_dir.join(out);
    let c = root().join("tests/c");
    let mut cmd = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()));
    cmd.args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-g", "-O1"])
        .args(pkg_config(&["--cflags"]))
        .arg(c.join(format!("{name}.c")))
        .arg(c.join("common.c"))
        .arg("-o")
        .arg(&exe);
    if static_link {
        let libdir = prefix().join("lib");
        let private = pkg_config(&["--static", "--libs"]);
        cmd.arg(libdir.join("libfephp.a")).args(private.iter().filter(|l| *l != "-lfephp" && !l.contains("capi-test-install")));
    } else {
        cmd.args(pkg_config(&["--libs"]));
    }
    cmd.arg("-lpthread");
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "compiling {name}.c failed:\n{}", String::from_utf8_lossy(&out.stderr));
    exe
}

/// Runs `exe args…` under valgrind (memcheck, full leak check, definite+indirect leaks are
/// errors); panics with the program's output and valgrind's log unless both are clean.
/// Returns the valgrind summary lines.
fn valgrind(exe: &Path, args: &[&str]) -> String {
    let log = exe.with_extension("valgrind.log");
    let out = Command::new("valgrind")
        .args([
            "--leak-check=full",
            "--error-exitcode=1",
            "--errors-for-leak-kinds=definite,indirect",
            "--show-leak-kinds=definite,indirect,possible",
            "--track-fds=no",
        ])
        .arg(format!("--suppressions={}", root().join("tests/c/valgrind.supp").display()))
        .arg(format!("--log-file={}", log.display()))
        .arg(exe)
        .args(args)
        .env("LD_LIBRARY_PATH", prefix().join("lib"))
        // Embedded PHP: malloc instead of the Zend allocator, so valgrind sees PHP's per-request
        // memory (PHP's documented setting for valgrind). No effect on the FPM runs.
        .env("USE_ZEND_ALLOC", "0")
        // Only tests/support/php.ini (the embedded engines name it), no distribution conf.d:
        // the same PHP as the test php-fpm, and no extension's library start-up (libcrypto's
        // OPENSSL_init_ssl through curl) in valgrind's leak report.
        .env("PHP_INI_SCAN_DIR", "")
        .output()
        .expect("valgrind must be installed (scripts/install-deps.sh)");
    let report = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        out.status.success(),
        "{} failed ({}):\nstdout: {}\nstderr: {}\nvalgrind: {report}",
        exe.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let summary: String = report
        .lines()
        .filter(|l| l.contains("ERROR SUMMARY") || l.contains("definitely lost") || l.contains("indirectly lost"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(summary.contains("ERROR SUMMARY: 0 errors"), "{report}");
    println!("{}: {}{}", exe.display(), String::from_utf8_lossy(&out.stdout), summary);
    summary
}

fn run_against_fpm(name: &str) {
    let exe = compile(name, false, name);
    let fpm = Fpm::start_unix(2);
    let scripts = scripts_dir();
    valgrind(&exe, &[&fpm.address, scripts.to_str().unwrap()]);
}

#[test]
fn c_hello_post_headers() {
    run_against_fpm("hello");
}

#[test]
fn c_every_error_path() {
    run_against_fpm("errors");
}

#[test]
fn c_streams_10mb_and_aborts() {
    run_against_fpm("stream");
}

#[test]
fn c_async_completion_and_cancel() {
    run_against_fpm("async");
}

#[test]
fn c_links_the_soname_and_the_static_library() {
    let exe = compile("hello", false, "hello-dynamic-link");
    let dynamic = Command::new("readelf").arg("-d").arg(&exe).output().unwrap();
    let dynamic = String::from_utf8_lossy(&dynamic.stdout);
    assert!(dynamic.contains("[libfephp.so.0]"), "hello does not depend on the soname:\n{dynamic}");

    let exe = compile("hello", true, "hello-static-link");
    let dynamic = Command::new("readelf").arg("-d").arg(&exe).output().unwrap();
    assert!(!String::from_utf8_lossy(&dynamic.stdout).contains("libfephp"), "static hello still needs libfephp.so");
    let fpm = Fpm::start_unix(1);
    let out = Command::new(&exe).args([fpm.address.as_str(), scripts_dir().to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "static hello: {}", String::from_utf8_lossy(&out.stderr));
}

/// The embedded libphp backend (src/php) through the C API.
#[test]
fn c_embedded_hello_and_second_engine_refused() {
    let exe = compile("embedded", false, "embedded");
    let scripts = scripts_dir();
    let ini = test_php_ini();
    valgrind(&exe, &["-", scripts.to_str().unwrap(), ini.to_str().unwrap()]);
}

/// An executor pool (exec'd from the fe-php binary) through the C API, both transports.
#[test]
fn c_executor_pool_engine() {
    let exe = compile("executors", false, "executors");
    let scripts = scripts_dir();
    let ini = test_php_ini();
    let fe_php = Path::new(env!("CARGO_BIN_EXE_fe-php"));
    valgrind(&exe, &[fe_php.to_str().unwrap(), scripts.to_str().unwrap(), ini.to_str().unwrap()]);
}
