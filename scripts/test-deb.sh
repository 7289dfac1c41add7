#!/usr/bin/env bash
# Tests the Debian package of the module end to end, as root, on Debian's own nginx:
#   1. scripts/build-deb.sh --lintian builds libnginx-mod-http-fephp_<version>_<arch>.deb against
#      nginx-dev (lintian must report no error; explained tags are overrides);
#   2. `apt-get install ./….deb`, then checks the installed layout: the .so in
#      /usr/lib/nginx/modules, the modules-enabled link, the fephp_params conffile, the nginx ABI
#      dependency, and that `/usr/sbin/nginx -t` with Debian's prefix loads the module through
#      /etc/nginx/modules-enabled (nothing listens, the system service is never started or
#      signalled; a running one is reloaded by nginx's own dpkg trigger, as for any module package);
#   3. the whole t/ suite, t/realapp/dokuwiki.sh and t/upstream/failover.sh (t/run.sh) against
#      /usr/sbin/nginx with
#      TEST_NGINX_LOAD_MODULES=/usr/lib/nginx/modules/ngx_http_fephp_module.so and
#      TEST_NGINX_FEPHP_PARAMS=/etc/nginx/fephp_params (private prefix and ports, own php-fpm);
#   4. remove (the link is parked as .removed and the module no longer loads), install again (the
#      link comes back), purge (nothing of the package is left), also on failure or Ctrl-C.
# Refuses to run when the package is already installed (its /etc/nginx/fephp_params may hold
# your changes): `apt-get purge libnginx-mod-http-fephp` first.
# Usage: bash scripts/test-deb.sh [t/ files...]   (default: all of t/ plus t/realapp/dokuwiki.sh)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

pkg=libnginx-mod-http-fephp
so=/usr/lib/nginx/modules/ngx_http_fephp_module.so
link=/etc/nginx/modules-enabled/50-mod-http-fephp.conf
available=/usr/share/nginx/modules-available/mod-http-fephp.conf

die() { echo "test-deb.sh: FAIL: $*" >&2; exit 1; }
installed() { dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; }
# present: installed, or removed with its conffiles left
present() { dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -qv "not-installed"; }

[ "$(id -u)" = 0 ] || die "needs root (apt-get install / purge of $pkg)"
if present; then
    die "$pkg is already on this machine; run \`apt-get purge $pkg\` first"
fi
bash scripts/install-deps.sh

apt_opts=(-o DPkg::Lock::Timeout=600 -y -qq)
export DEBIAN_FRONTEND=noninteractive
apt_log=$(mktemp)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fephp-deb.XXXXXX")
cleanup() {
    if present; then
        apt-get "${apt_opts[@]}" purge "$pkg" >"$apt_log" 2>&1 || cat "$apt_log" >&2
    fi
    rm -rf "$tmp" "$apt_log"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
apt() {
    if ! apt-get "${apt_opts[@]}" "$@" >"$apt_log" 2>&1; then
        cat "$apt_log" >&2
        die "apt-get $*"
    fi
}
# nginx -t of a private config with Debian's prefix (so `load_module modules/…` in the
# modules-enabled file resolves as it does for the system nginx), loading what
# /etc/nginx/modules-enabled enables; never listens.
nginx_t() {
    cat >"$tmp/nginx.conf" <<EOF
include /etc/nginx/modules-enabled/*.conf;
events {}
http { server { listen 127.0.0.1:1; location /x { fephp_pass embedded; } } }
EOF
    /usr/sbin/nginx -t -q -p /usr/share/nginx/ -c "$tmp/nginx.conf" -e "$tmp/error.log" \
        -g "pid $tmp/nginx.pid;" 2>"$tmp/nginx-t.out"
}

t0=$SECONDS
echo "== build-deb.sh --lintian"
deb=$(bash scripts/build-deb.sh --lintian)
echo "$deb ($((SECONDS - t0)) s)"

t1=$SECONDS
echo "== apt-get install ./$(basename "$deb")"
apt install "$deb"
installed || die "$pkg not installed"
[ -f "$so" ] || die "no $so"
[ "$(readlink "$link")" = "$available" ] || die "$link does not point to $available"
grep -qx "load_module modules/ngx_http_fephp_module.so;" "$available" || die "unexpected $available"
grep -qx /etc/nginx/fephp_params /var/lib/dpkg/info/$pkg.conffiles || die "fephp_params is not a conffile"
abi=$(sed -n 's/^nginx:abi=//p' /usr/share/nginx/src/debian/libnginx-mod.abisubstvars)
dpkg-query -W -f='${Depends}' "$pkg" | grep -qw -- "$abi" || die "Depends lacks $abi"
nginx_t || { cat "$tmp/nginx-t.out" >&2; die "nginx -t through $link"; }
echo "installed: $so, $link -> $available; nginx -t loads it ($((SECONDS - t1)) s)"

t2=$SECONDS
echo "== t/run.sh against /usr/sbin/nginx ($(/usr/sbin/nginx -v 2>&1)) + $so"
# What this script's header promises: the whole t/ suite, DokuWiki and the failover test (the
# WordPress/MediaWiki comparisons run against the vendored nginx in t/run.sh's default list).
run_args=("$@")
[ ${#run_args[@]} -gt 0 ] || run_args=(-r t/ t/realapp/dokuwiki.sh t/upstream/failover.sh)
TEST_NGINX_BINARY=/usr/sbin/nginx TEST_NGINX_LOAD_MODULES=$so \
    TEST_NGINX_FEPHP_PARAMS=/etc/nginx/fephp_params bash t/run.sh "${run_args[@]}"
echo "t/run.sh: $((SECONDS - t2)) s"

t3=$SECONDS
echo "== remove, install again, purge"
apt remove "$pkg"
[ -L "$link.removed" ] && [ ! -e "$link" ] || die "remove did not park $link as .removed"
if nginx_t; then die "nginx -t still loads the module after remove"; fi
grep -q 'unknown directive "fephp_pass"' "$tmp/nginx-t.out" || { cat "$tmp/nginx-t.out" >&2; die "unexpected nginx -t error after remove"; }
apt install "$deb"
[ "$(readlink "$link")" = "$available" ] && [ ! -e "$link.removed" ] || die "reinstall did not enable the module again"
apt purge "$pkg"
for f in "$so" "$link" "$link.removed" "$available" /etc/nginx/fephp_params; do
    if [ -e "$f" ] || [ -L "$f" ]; then die "$f left after purge"; fi
done
present && die "$pkg still known to dpkg after purge"
echo "remove/reinstall/purge: ok ($((SECONDS - t3)) s)"
echo "test-deb.sh: ok ($((SECONDS - t0)) s)"
