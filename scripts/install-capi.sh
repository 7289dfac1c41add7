#!/usr/bin/env bash
# Installs the C API of fe-php into PREFIX (no root needed):
#   PREFIX/lib/libfephp.so.<version> + the soname link libfephp.so.0 + the dev link libfephp.so
#   PREFIX/lib/libfephp.a
#   PREFIX/include/fephp.h
#   PREFIX/lib/pkgconfig/fephp.pc   (pkg-config --cflags --libs fephp)
# Usage: scripts/install-capi.sh [PREFIX]   (default: $CARGO_TARGET_DIR/capi-install)
# Builds the library first (cargo build --release --lib) unless FEPHP_LIB_DIR names a directory
# that already holds libfephp.so and libfephp.a (tests/capi_c.rs does that).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
prefix="${1:-$target/capi-install}"
mkdir -p "$prefix"
prefix="$(cd "$prefix" && pwd)"

if [ -z "${FEPHP_LIB_DIR:-}" ]; then
  (cd "$root" && cargo build --release --lib)
  FEPHP_LIB_DIR="$target/release"
fi
version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)"
abi="$(sed -n 's/^pub const FEPHP_ABI_VERSION: u32 = \([0-9]*\);/\1/p' "$root/src/capi/mod.rs")"

install -d "$prefix/lib/pkgconfig" "$prefix/include"
install -m 0755 "$FEPHP_LIB_DIR/libfephp.so" "$prefix/lib/libfephp.so.$version"
ln -sfn "libfephp.so.$version" "$prefix/lib/libfephp.so.$abi"
ln -sfn "libfephp.so.$abi" "$prefix/lib/libfephp.so"
install -m 0644 "$FEPHP_LIB_DIR/libfephp.a" "$prefix/lib/libfephp.a"
install -m 0644 "$root/include/fephp.h" "$prefix/include/fephp.h"

# Libs.private: what a static link of libfephp.a needs (rustc --print native-static-libs), plus
# libphp when the library was built with the embedded backend (feature `embed`).
php_libs=""
if nm "$FEPHP_LIB_DIR/libfephp.a" 2>/dev/null | grep ' U php_module_startup$' >/dev/null; then  # no -q: pipefail + SIGPIPE
  php_libs="-L${FEPHP_PHP_LIBDIR:-/usr/lib} -lphp8.2 "
fi
cat > "$prefix/lib/pkgconfig/fephp.pc" <<PC
prefix=$prefix
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: fephp
Description: fe-php: serve PHP (PHP-FPM over FastCGI, or embedded libphp) from a C host
Version: $version
Cflags: -I\${includedir}
Libs: -L\${libdir} -lfephp
Libs.private: ${php_libs}-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
PC
echo "installed fe-php C API $version (ABI $abi) into $prefix"
