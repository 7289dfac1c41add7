//! Compiles the embedded-PHP SAPI shim (`src/php/shim.c`, `src/php/worker.c`) and links libphp, only when the
//! `embed` feature is on. Include paths come from `php-config8.2 --includes` (or `php-config`);
//! the library is Debian's `/usr/lib/libphp8.2.so` (override the directory with `FEPHP_PHP_LIBDIR`).

use std::process::Command;

fn main() {
    capi_soname();
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/php/shim.c");
    println!("cargo:rerun-if-changed=src/php/shim.h");
    println!("cargo:rerun-if-changed=src/php/worker.c");
    println!("cargo:rerun-if-changed=src/php/worker.h");
    println!("cargo:rerun-if-env-changed=FEPHP_PHP_CONFIG");
    println!("cargo:rerun-if-env-changed=FEPHP_PHP_LIBDIR");
    if std::env::var_os("CARGO_FEATURE_EMBED").is_none() {
        return;
    }

    let includes = php_config_includes();
    let mut build = cc::Build::new();
    // PHP is built with _GNU_SOURCE; its headers rely on it (memrchr).
    build.file("src/php/shim.c").file("src/php/worker.c").define("_GNU_SOURCE", None).warnings(true).flag_if_supported("-Wno-unused-parameter");
    for inc in includes.split_whitespace() {
        if let Some(dir) = inc.strip_prefix("-I") {
            build.include(dir);
        }
    }
    build.compile("fephp_shim");

    let libdir = std::env::var("FEPHP_PHP_LIBDIR").unwrap_or_else(|_| "/usr/lib".to_string());
    println!("cargo:rustc-link-search=native={libdir}");
    println!("cargo:rustc-link-lib=dylib=php8.2");
}

/// `--includes` of the first php-config that answers.
fn php_config_includes() -> String {
    let candidates: Vec<String> = match std::env::var("FEPHP_PHP_CONFIG") {
        Ok(p) => vec![p],
        Err(_) => vec!["php-config8.2".into(), "php-config".into()],
    };
    for cmd in &candidates {
        if let Ok(out) = Command::new(cmd).arg("--includes").output() {
            if out.status.success() {
                return String::from_utf8_lossy(&out.stdout).trim().to_string();
            }
        }
    }
    panic!(
        "feature `embed` needs PHP headers: none of {candidates:?} ran \
         (apt-get install php8.2-dev libphp8.2-embed, or set FEPHP_PHP_CONFIG)"
    );
}

/// The C ABI's soname carries its ABI version (`FEPHP_ABI_VERSION` in src/capi/mod.rs), so
/// `libfephp.so.0` can be installed beside a future `libfephp.so.1`.
fn capi_soname() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libfephp.so.0");
}
