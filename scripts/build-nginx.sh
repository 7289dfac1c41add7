#!/usr/bin/env bash
# Builds nginx and the fe-php nginx module, and leaves them at stable paths:
#
#   $CARGO_TARGET_DIR/nginx/sbin/nginx                              (default CARGO_TARGET_DIR: target)
#   $CARGO_TARGET_DIR/nginx/modules/ngx_http_fephp_module.so
#   $CARGO_TARGET_DIR/nginx/conf/fephp_params, mime.types, fastcgi.conf, fastcgi_params
#
# nginx comes from the `nginx-src` crate through ngx's `vendored` feature: `cargo build` of the
# module runs nginx's configure (--with-compat --with-threads ...) and make, so the binary and the
# module always match. Idempotent; quiet when up to date. Prints the two paths on stdout.
#
# Usage: scripts/build-nginx.sh [--print-env]
#   --print-env   print TEST_NGINX_BINARY=... and TEST_NGINX_LOAD_MODULES=... instead.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
case "$target" in /*) ;; *) target=$root/$target ;; esac
export CARGO_TARGET_DIR=$target

log=$(mktemp)
trap 'rm -f "$log"' EXIT
# The whole workspace, so fephp is built with the same features as `cargo test --workspace`
# (building `-p ngx_http_fephp_module` alone would unify fewer features and relink the module
# every time the two alternate).
if ! cargo build --release --workspace >"$log" 2>&1; then
    cat "$log" >&2
    echo "build-nginx.sh: cargo build failed" >&2
    exit 1
fi

objs=$(ls -td "$target"/release/build/nginx-sys-*/out/objs 2>/dev/null | head -1 || true)
if [ -z "$objs" ] || [ ! -x "$objs/nginx" ]; then
    echo "build-nginx.sh: no vendored nginx binary under $target/release/build/nginx-sys-*/out/objs" >&2
    exit 1
fi
so=$target/release/libngx_http_fephp_module.so
prefix=$target/nginx

# install SRC DST: copy only when the content changed (keeps mtimes, stays quiet).
install_if_changed() {
    if ! cmp -s "$1" "$2" 2>/dev/null; then
        mkdir -p "$(dirname "$2")"
        cp -f "$1" "$2.tmp.$$" && mv -f "$2.tmp.$$" "$2"
        echo "build-nginx.sh: updated $2" >&2
    fi
}

install_if_changed "$objs/nginx" "$prefix/sbin/nginx"
install_if_changed "$so" "$prefix/modules/ngx_http_fephp_module.so"
install_if_changed "$root/nginx-module/fephp_params" "$prefix/conf/fephp_params"
src_conf=$(ls -d "$HOME"/.cargo/registry/src/*/nginx-src-*/nginx/conf 2>/dev/null | tail -1 || true)
if [ -n "$src_conf" ] && [ -f "$src_conf/mime.types" ]; then
    # fastcgi.conf / fastcgi_params: what Debian's /etc/nginx ships too (t/realapp's oracle)
    for f in mime.types fastcgi.conf fastcgi_params; do
        install_if_changed "$src_conf/$f" "$prefix/conf/$f"
    done
fi
mkdir -p "$prefix/logs"

if [ "${1:-}" = "--print-env" ]; then
    echo "TEST_NGINX_BINARY=$prefix/sbin/nginx"
    echo "TEST_NGINX_LOAD_MODULES=$prefix/modules/ngx_http_fephp_module.so"
else
    echo "$prefix/sbin/nginx"
    echo "$prefix/modules/ngx_http_fephp_module.so"
fi
