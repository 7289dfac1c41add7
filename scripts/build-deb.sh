#!/usr/bin/env bash
# Builds the Debian package of the nginx module for Debian's own nginx:
#
#   $CARGO_TARGET_DIR/deb/libnginx-mod-http-fephp_<version>_<arch>.deb   (default CARGO_TARGET_DIR: target)
#
# laid out like Debian's libnginx-mod-* packages:
#   /usr/lib/nginx/modules/ngx_http_fephp_module.so          (stripped)
#   /usr/share/nginx/modules-available/mod-http-fephp.conf   (load_module ...;)
#   /etc/nginx/modules-enabled/50-mod-http-fephp.conf        (symlink made by postinst, parked as
#                                                             .removed by prerm, dropped on purge)
#   /etc/nginx/fephp_params                                  (conffile)
#   Depends: <nginx ABI virtual package, e.g. nginx-abi-1.22.1-7>, libphp8.2-embed, libc6 ...
#
# How: nginx-dev's sources (/usr/share/nginx/src) are copied to $CARGO_TARGET_DIR/deb/nginx-src and
# configured with the flags Debian's nginx was built with (conf_flags; no make needed), once per
# nginx-dev version. The module crate is then built against that tree (NGINX_SOURCE_DIR /
# NGINX_BUILD_DIR, without the `vendored` feature) in its own target dir,
# $CARGO_TARGET_DIR/deb/cargo, so the vendored nginx 1.28 build in $CARGO_TARGET_DIR/release is
# not touched. The package is assembled with dpkg-deb (no debhelper). Cold ≈ 2 min on 2 cores,
# then seconds.
#
# Usage: scripts/build-deb.sh [--lintian]
#   --lintian   also run lintian on the package (its output on stderr; fails on an error tag).
# Env: DEB_VERSION (default <crate version>-1), DEB_MAINTAINER (default: the author of HEAD).
# Prints the path of the .deb on stdout.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
case "$target" in /*) ;; *) target=$root/$target ;; esac
work=$target/deb
run_lintian=false
for a in "$@"; do
    case "$a" in
        --lintian) run_lintian=true ;;
        *) echo "usage: scripts/build-deb.sh [--lintian]" >&2; exit 2 ;;
    esac
done

die() { echo "build-deb.sh: $*" >&2; exit 1; }

# Debian's nginx sources and ABI name come from nginx-dev (it depends on the exact nginx version).
need=(nginx-dev)
$run_lintian && need+=(lintian)
missing=()
for p in "${need[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "missing packages: ${missing[*]} (apt-get install ${missing[*]})"
    echo "build-deb.sh: installing ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -y -qq install \
        --no-install-recommends "${missing[@]}" >/dev/null
fi

src_in=/usr/share/nginx/src
dev_version=$(dpkg-query -W -f='${Version}' nginx-dev)
ngx_version=$(sed -n 's/^#define NGINX_VERSION *"\(.*\)"$/\1/p' "$src_in/src/core/nginx.h")
abi=$(sed -n 's/^nginx:abi=//p' "$src_in/debian/libnginx-mod.abisubstvars")
[ -n "$ngx_version" ] || die "no NGINX_VERSION in $src_in/src/core/nginx.h"
[ -n "$abi" ] || die "no nginx:abi= in $src_in/debian/libnginx-mod.abisubstvars"

# 1. A configured copy of Debian's nginx tree (configure writes objs/ into the tree).
mkdir -p "$work"
src=$work/nginx-src
stamp="nginx-dev $dev_version $(md5sum <"$src_in/conf_flags")"
if [ "$(cat "$src/.fephp-configured" 2>/dev/null)" != "$stamp" ]; then
    echo "build-deb.sh: configuring nginx $ngx_version (nginx-dev $dev_version) in $src" >&2
    rm -rf "$src"
    cp -a "$src_in" "$src"
    if ! (cd "$src" && source ./conf_flags && ./configure "${NGX_CONF_FLAGS[@]}") >"$work/configure.log" 2>&1; then
        tail -20 "$work/configure.log" >&2
        die "nginx configure failed (full log: $work/configure.log)"
    fi
    echo "$stamp" >"$src/.fephp-configured"
fi

# 2. The module, against that tree. No debuginfo: the package ships the stripped object. The C
# shim (embedded PHP SAPI) gets Debian's hardening flags (fortify, stack protector) through CFLAGS.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! CARGO_TARGET_DIR=$work/cargo NGINX_SOURCE_DIR=$src NGINX_BUILD_DIR=$src/objs \
    CARGO_PROFILE_RELEASE_DEBUG=0 \
    CFLAGS="$(dpkg-buildflags --get CFLAGS) $(dpkg-buildflags --get CPPFLAGS)" \
    cargo build --release -p ngx_http_fephp_module --no-default-features >"$log" 2>&1; then
    cat "$log" >&2
    die "cargo build failed"
fi
so=$work/cargo/release/libngx_http_fephp_module.so

# 3. The package tree.
pkg=libnginx-mod-http-fephp
crate_version=$(sed -n 's/^version *= *"\(.*\)"$/\1/p' nginx-module/Cargo.toml | head -1)
version=${DEB_VERSION:-$crate_version-1}
arch=$(dpkg --print-architecture)
maintainer=${DEB_MAINTAINER:-$(git log -1 --format='%an <%ae>')}
commit=$(git rev-parse --short HEAD)
# Reproducible: file times and the changelog date are HEAD's commit time.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}

stage=$work/stage/$pkg
rm -rf "$work/stage"
install -d "$stage/DEBIAN" "$stage/usr/lib/nginx/modules" "$stage/usr/share/nginx/modules-available" \
    "$stage/etc/nginx" "$stage/usr/share/doc/$pkg" "$stage/usr/share/lintian/overrides"
mod=$stage/usr/lib/nginx/modules/ngx_http_fephp_module.so
install -m 0644 "$so" "$mod"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$mod"
install -m 0644 nginx-module/deb/mod-http-fephp.conf "$stage/usr/share/nginx/modules-available/"
install -m 0644 nginx-module/fephp_params "$stage/etc/nginx/fephp_params"
install -m 0644 nginx-module/deb/copyright "$stage/usr/share/doc/$pkg/copyright"
install -m 0644 nginx-module/deb/lintian-overrides "$stage/usr/share/lintian/overrides/$pkg"
cat >"$work/changelog.Debian" <<EOF
$pkg ($version) unstable; urgency=medium

  * Built from fe-php commit $commit against nginx-dev $dev_version
    (nginx $ngx_version, $abi).

 -- $maintainer  $(date -R -u -d "@$SOURCE_DATE_EPOCH")
EOF
gzip -9n <"$work/changelog.Debian" >"$stage/usr/share/doc/$pkg/changelog.Debian.gz"
chmod 0644 "$stage/usr/share/doc/$pkg/changelog.Debian.gz"
for s in postinst prerm postrm; do
    install -m 0755 "nginx-module/deb/$s" "$stage/DEBIAN/$s"
done
echo /etc/nginx/fephp_params >"$stage/DEBIAN/conffiles"

# Shared-library dependencies as dpkg-shlibdeps computes them (libc6, libgcc-s1). libphp8.2-embed
# ships no shlibs/symbols file, so it is named by hand below.
shl=$work/shlibdeps
rm -rf "$shl" && mkdir -p "$shl/debian"
printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$pkg" "$pkg" >"$shl/debian/control"
shlibs=$(cd "$shl" && dpkg-shlibdeps -O --ignore-missing-info -xlibphp8.2-embed "$mod" 2>"$work/shlibdeps.log" \
    | sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || { cat "$work/shlibdeps.log" >&2; die "dpkg-shlibdeps found no dependencies"; }

installed_size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat >"$stage/DEBIAN/control" <<EOF
Package: $pkg
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $installed_size
Depends: $abi, libphp8.2-embed, $shlibs
Recommends: nginx
Section: httpd
Priority: optional
Description: serve PHP from nginx: fephp_pass to PHP-FPM or embedded PHP
 The fephp_pass directive serves PHP scripts through the fe-php engine,
 chosen per location: a keep-alive FastCGI connection pool to PHP-FPM that
 runs on nginx's own event loop, or PHP embedded in the nginx worker
 (libphp, one PHP thread per worker, never on the event loop). fephp_status
 reports each engine's health and counters.
 .
 The module is loaded through /etc/nginx/modules-enabled;
 /etc/nginx/fephp_params is the twin of fastcgi_params.
EOF
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z \
    | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/md5sums" "$stage/DEBIAN/conffiles"
find "$stage" -type d -exec chmod 0755 {} +
find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

deb=$work/${pkg}_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null

if $run_lintian; then
    # Tags explained in nginx-module/deb/lintian-overrides are shipped as overrides (shown as O:).
    lintian --info --display-info --show-overrides "$deb" >&2 || die "lintian reported errors"
fi
echo "$deb"
