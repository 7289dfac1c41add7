#!/usr/bin/env bash
# Runs the Test::Nginx suite (t/*.t) against our nginx + ngx_http_fephp_module:
#   1. scripts/build-nginx.sh builds nginx and the module (quiet when up to date) and gives
#      TEST_NGINX_BINARY and TEST_NGINX_LOAD_MODULES; when both are already set (e.g. Debian's
#      /usr/sbin/nginx and the packaged module, scripts/test-deb.sh), nothing is built and they
#      are used as they are (TEST_NGINX_FEPHP_PARAMS too, default nginx-module/fephp_params);
#   2. starts php-fpm8.2 in the foreground (-F) with a generated pool config in a temp dir,
#      listening on a unix socket (mode 0666; -R and user root when run as root), and exports
#      TEST_NGINX_FPM_SOCKET=/that/socket; a second pool of the same master, whose one child
#      exits after every request (pm.max_requests = 1, so it closes kept-alive connections while
#      they sit idle), listens on TEST_NGINX_FPM_RECYCLE_SOCKET, a third pool listens on
#      TCP, TEST_NGINX_FPM_TCP=127.0.0.1:<free port> (TEST_NGINX_CLOSED_TCP is a port nothing
#      listens on, TEST_NGINX_BLACKHOLE_TCP one that accepts and never answers); each pool sets env FEPHP_POOL (tests, recycle, tcp) for the upstream tests; a fourth pool, of one child, listens on TEST_NGINX_FPM_SINGLE_SOCKET;
#   3. runs `prove -r t/` (or the files given as arguments), then stops php-fpm;
#   4. without arguments, then runs the real-application tests t/realapp/dokuwiki.sh,
#      framework.sh (worker mode on a Symfony-components app, issue 15),
#      wordpress.sh and mediawiki.sh (each application through plain fastcgi_pass, the oracle,
#      fephp_pass to php-fpm and fephp_pass embedded; each starts its own php-fpm, WordPress its
#      own MariaDB) and the upstream failover test t/upstream/failover.sh (three php-fpm masters
#      of its own, one killed and restarted under load). A `t/realapp/*.sh` or `t/upstream/*.sh`
#      argument runs that script instead of prove.
# Usage: t/run.sh [prove args / test files... / t/realapp/*.sh / t/upstream/*.sh]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

if [ -z "${TEST_NGINX_BINARY:-}" ] || [ -z "${TEST_NGINX_LOAD_MODULES:-}" ]; then
    while IFS= read -r line; do export "${line?}"; done < <(scripts/build-nginx.sh --print-env)
fi

fpm_bin=${PHP_FPM:-$(command -v php-fpm8.2 || command -v php-fpm || true)}
if [ -z "$fpm_bin" ]; then
    echo "t/run.sh: php-fpm not found (apt-get install php8.2-fpm)" >&2
    exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fephp-t.XXXXXX")
chmod 0755 "$tmp"
fpm_pid=
blackhole_pid=
cleanup() {
    [ -n "$blackhole_pid" ] && kill "$blackhole_pid" 2>/dev/null || true
    if [ -n "$fpm_pid" ] && kill -0 "$fpm_pid" 2>/dev/null; then
        kill -QUIT "$fpm_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$fpm_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$fpm_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

as_root=()
user_lines=""
if [ "$(id -u)" = 0 ]; then
    as_root=(-R)
    user_lines=$'user = root\ngroup = root'
fi
free_port() {
    perl -MIO::Socket::INET -e 'my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1:0") or die "$!\n"; print $s->sockport, "\n"'
}
fpm_tcp_port=$(free_port)
closed_tcp_port=$(free_port)
# A port whose connections are accepted (the kernel's backlog) but never answered: a read timeout.
perl -MIO::Socket::INET -e '$s = IO::Socket::INET->new(Listen => 128, LocalAddr => "127.0.0.1:0") or die "$!\n";
    $| = 1; print $s->sockport, "\n"; close STDOUT; sleep 3600' >"$tmp/blackhole.port" &
blackhole_pid=$!
for _ in $(seq 50); do [ -s "$tmp/blackhole.port" ] && break; sleep 0.1; done

cat >"$tmp/php-fpm.conf" <<CONF
[global]
pid = $tmp/php-fpm.pid
error_log = $tmp/php-fpm.log
daemonize = no

[fephp-tests]
$user_lines
env[FEPHP_POOL] = tests
listen = $tmp/php-fpm.sock
listen.mode = 0666
pm = static
pm.max_children = 4
clear_env = no
catch_workers_output = yes
php_admin_value[max_input_vars] = 10000

[fephp-recycle]
$user_lines
env[FEPHP_POOL] = recycle
listen = $tmp/php-fpm-recycle.sock
listen.mode = 0666
pm = static
pm.max_children = 1
pm.max_requests = 1
clear_env = no

[fephp-tcp]
$user_lines
env[FEPHP_POOL] = tcp
listen = 127.0.0.1:$fpm_tcp_port
pm = static
pm.max_children = 2
clear_env = no

[fephp-single]
$user_lines
listen = $tmp/php-fpm-single.sock
listen.mode = 0666
pm = static
pm.max_children = 1
clear_env = no
CONF

"$fpm_bin" -F "${as_root[@]}" -y "$tmp/php-fpm.conf" >"$tmp/php-fpm.out" 2>&1 &
fpm_pid=$!
for _ in $(seq 100); do
    [ -S "$tmp/php-fpm.sock" ] && [ -S "$tmp/php-fpm-recycle.sock" ] && grep -q "ready to handle connections" "$tmp/php-fpm.log" 2>/dev/null && break
    if ! kill -0 "$fpm_pid" 2>/dev/null; then
        echo "t/run.sh: php-fpm exited:" >&2
        cat "$tmp/php-fpm.out" "$tmp/php-fpm.log" >&2 2>/dev/null || true
        exit 1
    fi
    sleep 0.1
done
[ -S "$tmp/php-fpm.sock" ] && [ -S "$tmp/php-fpm-recycle.sock" ] || { echo "t/run.sh: php-fpm did not listen" >&2; exit 1; }
export TEST_NGINX_FPM_SOCKET=$tmp/php-fpm.sock
export TEST_NGINX_FPM_RECYCLE_SOCKET=$tmp/php-fpm-recycle.sock
export TEST_NGINX_FPM_TCP=127.0.0.1:$fpm_tcp_port
export TEST_NGINX_FPM_SINGLE_SOCKET=$tmp/php-fpm-single.sock
export TEST_NGINX_CLOSED_TCP=127.0.0.1:$closed_tcp_port
export TEST_NGINX_BLACKHOLE_TCP=127.0.0.1:$(cat "$tmp/blackhole.port")
export TEST_NGINX_FEPHP_PARAMS=${TEST_NGINX_FEPHP_PARAMS:-$root/nginx-module/fephp_params}

scripts=() args=()
for a in "$@"; do
    case "$a" in t/realapp/*.sh | t/upstream/*.sh) scripts+=("$a") ;; *) args+=("$a") ;; esac
done
if [ $# -eq 0 ]; then
    args=(-r t/)
    scripts=(t/realapp/dokuwiki.sh t/realapp/wordpress.sh t/realapp/mediawiki.sh t/realapp/framework.sh t/upstream/failover.sh)
fi
if [ ${#args[@]} -gt 0 ]; then
    prove "${args[@]}"
fi
for s in "${scripts[@]}"; do
    echo "== $s"
    bash "$s"
done
