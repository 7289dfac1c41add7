//! The Go package `go/fephp` (cgo over the C API): installs libfephp into a prefix under the
//! target dir and runs `go test ./...` with PKG_CONFIG_PATH / LD_LIBRARY_PATH pointing at it.
//! The Go tests start their own php-fpm (see go/fephp/engine_test.go). No network: the
//! package has no dependencies (GOPROXY=off, GOFLAGS=-mod=mod, GOCACHE/GOPATH under target).

mod support;

use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn go_package_serves_php_through_the_c_api() {
    let artifacts = support::capi_artifact_dir();
    let prefix = support::install_capi("capi-go-install");

    let go_dir = artifacts.join("go");
    let out = Command::new("go")
        .args(["test", "-count=1", "-v", "./..."])
        .current_dir(root().join("go/fephp"))
        .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig"))
        .env("LD_LIBRARY_PATH", prefix.join("lib"))
        .env("CGO_ENABLED", "1")
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOCACHE", go_dir.join("cache"))
        .env("GOPATH", go_dir.join("path"))
        .output()
        .expect("go must be installed (golang-go, scripts/install-deps.sh)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(out.status.success(), "go test failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("--- PASS: TestHelloWorld"), "{stdout}");
}
