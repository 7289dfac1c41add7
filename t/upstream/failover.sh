#!/usr/bin/env bash
# fephp_pass to an `upstream` of three PHP-FPM servers (three php-fpm masters a, b, c on TCP,
# 4 children each, weights 1/2/3, max_fails=1 fail_timeout=2s), one nginx with two workers
# (fephp_max_connections 2, so the kept-alive connections never outnumber a server's children):
#   1. distribution: 10,000 GETs (curl --parallel, 8 at a time) all 200, counted per server from
#      each php-fpm's access log: within 2% of 1/6, 2/6, 3/6;
#   2. failover under load: `fe-php bench` (16 connections, 8 s) while server c (its master and
#      children) is killed with SIGKILL after 2 s and started again 3 s later: every request 200
#      (a refused or cut attempt goes to the next server), c is skipped while down (its failed
#      attempts stay far below its share), and c serves again after the restart;
#   3. fephp_status lists the three servers with their state.
# Needs TEST_NGINX_BINARY and TEST_NGINX_LOAD_MODULES (t/run.sh exports them), php-fpm8.2, curl
# and target/release/fe-php (scripts/build-nginx.sh builds it). KEEP_TMP=1 keeps the temp dir.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
nginx=${TEST_NGINX_BINARY:?}
module=${TEST_NGINX_LOAD_MODULES:?}
fpm_bin=${PHP_FPM:-$(command -v php-fpm8.2 || command -v php-fpm)}
bench=${FEPHP_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/fe-php}
if [ ! -x "$bench" ]; then
    echo "failover.sh: SKIPPED: no load generator at $bench (scripts/build-nginx.sh builds it)" >&2
    exit 0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fephp-upstream.XXXXXX")
chmod 0755 "$tmp"
declare -A fpm_pid=()
nginx_pid=
stop() { # PID: QUIT, then KILL its process group
    kill -QUIT "$1" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL -- "-$1" 2>/dev/null || kill -KILL "$1" 2>/dev/null || true
}
cleanup() {
    [ -n "$nginx_pid" ] && stop "$nginx_pid"
    for s in "${!fpm_pid[@]}"; do stop "${fpm_pid[$s]}"; done
    if [ "${KEEP_TMP:-}" = 1 ]; then echo "failover.sh: kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT INT TERM
fail() {
    echo "failover.sh: FAIL: $*" >&2
    echo "--- nginx error.log (tail)" >&2; tail -20 "$tmp/logs/error.log" >&2 2>/dev/null || true
    exit 1
}
free_port() { perl -MIO::Socket::INET -e 'print IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Listen => 1)->sockport'; }

user_lines="" as_root=() nginx_user=""
if [ "$(id -u)" = 0 ]; then
    user_lines=$'user = root\ngroup = root'
    as_root=(-R)
    nginx_user="user root;"
fi
declare -A port=([a]=$(free_port) [b]=$(free_port) [c]=$(free_port))
declare -A weight=([a]=1 [b]=2 [c]=3)
http_port=$(free_port)

start_fpm() { # SERVER: a php-fpm master of its own (own process group, so it can be killed whole)
    local s=$1
    cat >"$tmp/fpm-$s.conf" <<CONF
[global]
pid = $tmp/fpm-$s.pid
error_log = $tmp/fpm-$s.log
daemonize = no

[$s]
$user_lines
listen = 127.0.0.1:${port[$s]}
pm = static
pm.max_children = 4
clear_env = no
env[FEPHP_POOL] = $s
access.log = $tmp/access-$s.log
access.format = "%s %m %r"
CONF
    : >"$tmp/fpm-$s.log"
    setsid "$fpm_bin" -F "${as_root[@]}" -y "$tmp/fpm-$s.conf" >"$tmp/fpm-$s.out" 2>&1 &
    fpm_pid[$s]=$!
    disown "${fpm_pid[$s]}" # no "Killed" job report when it is killed on purpose
    for _ in $(seq 100); do
        grep -q "ready to handle connections" "$tmp/fpm-$s.log" 2>/dev/null && return 0
        kill -0 "${fpm_pid[$s]}" 2>/dev/null || break
        sleep 0.1
    done
    cat "$tmp/fpm-$s.out" "$tmp/fpm-$s.log" >&2
    fail "php-fpm $s did not start"
}
for s in a b c; do start_fpm "$s"; done

mkdir -p "$tmp/html" "$tmp/logs"
echo '<?php echo getenv("FEPHP_POOL"), "\n";' >"$tmp/html/who.php"
cat >"$tmp/nginx.conf" <<CONF
load_module $module;
$nginx_user
daemon off;
master_process on;
worker_processes 2;
error_log $tmp/logs/error.log info;
pid $tmp/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $tmp/body;
    upstream php {
        server 127.0.0.1:${port[a]} weight=1 max_fails=1 fail_timeout=2s;
        server 127.0.0.1:${port[b]} weight=2 max_fails=1 fail_timeout=2s;
        server 127.0.0.1:${port[c]} weight=3 max_fails=1 fail_timeout=2s;
    }
    server {
        listen 127.0.0.1:$http_port;
        root $tmp/html;
        # Each worker keeps at most 2 connections per server: 2 workers x 2 <= 4 children. With
        # more kept-alive connections than children, one worker's idle connections can hold
        # every child while the other worker's fresh connection waits in php-fpm's backlog
        # until fephp_read_timeout (as with nginx's own fastcgi keepalive).
        location ~ \.php\$ { fephp_max_connections 2; fephp_pass php; }
        location = /status { fephp_status; }
    }
}
CONF
"$nginx" -p "$tmp" -c "$tmp/nginx.conf" -e "$tmp/logs/error.log" >"$tmp/nginx.out" 2>&1 &
nginx_pid=$!
for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$http_port/status" && break
    kill -0 "$nginx_pid" 2>/dev/null || { cat "$tmp/nginx.out" >&2; fail "nginx exited"; }
    sleep 0.1
done
url=http://127.0.0.1:$http_port/who.php

count() { grep -c "^200 GET " "$tmp/access-$1.log" 2>/dev/null || true; }
reset_logs() { for s in a b c; do : >"$tmp/access-$s.log"; done; }

# 1. Distribution over weights 1/2/3.
reset_logs
n=10000
codes=$(curl -s --no-progress-meter --parallel --parallel-max 8 -o /dev/null -w '%{http_code}\n' "$url?[1-$n]" | sort | uniq -c | tr -s ' ')
[ "$(echo "$codes" | xargs)" = "$n 200" ] || fail "distribution: statuses: $codes"
total=0 line="distribution of $n requests:"
for _ in $(seq 50); do # php-fpm writes its access log line after the response
    total=$(( $(count a) + $(count b) + $(count c) ))
    [ "$total" -ge "$n" ] && break
    sleep 0.1
done
[ "$total" = "$n" ] || fail "distribution: the access logs count $total requests, not $n"
for s in a b c; do
    got=$(count $s)
    want=$((n * weight[$s] / 6))
    line+=" $s (weight ${weight[$s]}) $got"
    diff=$((got > want ? got - want : want - got))
    [ "$diff" -le $((n / 50)) ] || fail "$line: $s got $got, expected $want ± $((n / 50))"
done
echo "failover.sh: $line"

# 2. Kill c under load, then start it again.
reset_logs
errors_before=$(grep -c "trying the next server" "$tmp/logs/error.log" || true)
"$bench" bench --url "$url" --duration 8 --concurrency 16 --json >"$tmp/bench.json" 2>"$tmp/bench.err" &
bench_pid=$!
sleep 2
kill -KILL -- "-${fpm_pid[c]}"
killed_at=$(date +%s.%N)
for _ in $(seq 50); do kill -0 "${fpm_pid[c]}" 2>/dev/null || break; sleep 0.1; done
sleep 3
start_fpm c
restarted_at=$(date +%s.%N)
wait "$bench_pid" || { cat "$tmp/bench.err" >&2; fail "fe-php bench failed"; }
summary=$(perl -MJSON::PP -0777 -ne '
    my $j = decode_json($_);
    my $st = join(",", map { "$_=$j->{status}{$_}" } sort keys %{$j->{status} // {}});
    my $er = join(",", map { "$_=$j->{errors}{$_}" } grep { $j->{errors}{$_} } sort keys %{$j->{errors} // {}});
    print "requests=$j->{requests} status=[$st] errors=[$er]";
' "$tmp/bench.json" 2>/dev/null) || summary="(unreadable: $(head -c 300 "$tmp/bench.json"))"
echo "failover.sh: under load, c killed for $(awk "BEGIN { printf \"%.1f\", $restarted_at - $killed_at }") s: $summary"
case "$summary" in
    requests=*" status=[200="*"] errors=[]") ;;
    *) fail "under load: a request failed: $summary" ;;
esac
retries=$(( $(grep -c "trying the next server" "$tmp/logs/error.log" || true) - errors_before ))
c_retries=$(grep "trying the next server" "$tmp/logs/error.log" | grep -c "server 127.0.0.1:${port[c]}:" || true)
served=$(( $(count a) + $(count b) + $(count c) ))
echo "failover.sh: attempts retried on another server: $retries (of them to c: $c_retries); served a=$(count a) b=$(count b) c=$(count c)"
# While c is down (3 s of 8) it would get half of the attempts; skipped for fail_timeout, it
# gets one probe per worker every 2 s plus the requests in flight when it died.
[ "$c_retries" -le 40 ] || fail "c was not skipped while down: $c_retries failed attempts"
[ "$(count c)" -gt 0 ] || fail "c served nothing after its restart"

# 3. fephp_status: the three servers, c up again.
sleep 2.1
curl -s -o /dev/null "$url"; curl -s -o /dev/null "$url"
status=$(curl -s "http://127.0.0.1:$http_port/status?json")
for s in a b c; do
    echo "$status" | grep -q "\"server\":\"127.0.0.1:${port[$s]}\",\"state\":\"up\",\"backup\":false,\"weight\":${weight[$s]}," \
        || fail "fephp_status: server $s not listed as up: $status"
done
echo "failover.sh: ok"
