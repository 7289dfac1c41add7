#!/usr/bin/env bash
# End-to-end test of worker mode (issue 15) with a real framework application: the
# framework-like app of benches/php/framework/ (Debian's Symfony 5.4 components: HttpFoundation,
# Routing, DependencyInjection, EventDispatcher; 300 app classes, a compiled container and 300
# compiled routes), served by one nginx in three modes, one server (port) each:
#   fastcgi   plain nginx fastcgi_pass unix:<php-fpm>, index.php (the reference: boots per request)
#   embedded  fephp_pass embedded, index.php (classic mode in-process: boots per request)
#   worker    fephp_pass executors + fephp_worker worker.php (boots once per executor, then
#             serves every request through fephp_handle_request())
# Checks, for each mode:
#   1. 24 requests over 12 routes with different ids and query strings, interleaved so the worker
#      serves a different request after each one: status and JSON body identical to fastcgi's
#      (a stale $_SERVER / request object in the worker would answer an earlier request's route);
#   2. an unknown route (the app's uncaught ResourceNotFoundException) → 500 in every mode, and the
#      next request is 200 with the right body (in worker mode the executor is replaced: a fresh
#      worker boots, never a half-state);
#   3. worker mode only: the status page says the pool is in worker mode, and the executors
#      took many requests per boot (boot once, serve many): accepted > 3 x (executors + restarts
#      + crashes).
# As root, nginx runs `user www-data;` (executors too, the default executor user) and php-fpm's
# pool runs as www-data. Needs TEST_NGINX_BINARY and TEST_NGINX_LOAD_MODULES (t/run.sh exports
# them), curl, php (CLI), php-fpm8.2 and the php-symfony-{http-foundation,routing,
# dependency-injection,event-dispatcher,config} packages (scripts/install-deps.sh).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

for c in HttpFoundation Routing DependencyInjection EventDispatcher Config; do
    if [ ! -f "/usr/share/php/Symfony/Component/$c/autoload.php" ]; then
        echo "framework.sh: Symfony component $c missing (apt-get install php-symfony-http-foundation php-symfony-routing php-symfony-dependency-injection php-symfony-event-dispatcher php-symfony-config)" >&2
        exit 1
    fi
done
nginx=${TEST_NGINX_BINARY:?}
module=${TEST_NGINX_LOAD_MODULES:?}
fpm_bin=${PHP_FPM:-$(command -v php-fpm8.2 || command -v php-fpm)}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fephp-framework.XXXXXX")
chmod 0755 "$tmp"
nginx_pid= fpm_pid=
cleanup() {
    for pid in $nginx_pid $fpm_pid; do
        kill -QUIT "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    if [ "${KEEP_TMP:-}" = 1 ]; then echo "framework.sh: kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT INT TERM

fail() {
    echo "framework.sh: FAIL: $*" >&2
    echo "--- nginx error.log (tail)" >&2; tail -30 "$tmp/logs/error.log" >&2 2>/dev/null || true
    echo "--- php-fpm log (tail)" >&2; tail -20 "$tmp/php-fpm.log" >&2 2>/dev/null || true
    exit 1
}

free_port() { perl -MIO::Socket::INET -e 'print IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Listen => 1)->sockport'; }

# The application: its code, its generated classes, and its container/routes caches built once
# by the CLI (as a deployment's cache warm-up does), readable by every mode's user.
app=$tmp/app
mkdir -p "$app/var" "$tmp/logs" "$tmp/tmp"
cp "$root"/benches/php/framework/*.php "$app/"
php "$app/generate.php" "$app/var/src"
REQUEST_URI=/api/v1/section1/1 php "$app/index.php" >"$tmp/warmup.out" 2>&1 || true
[ -f "$app/var/cache/Container.php" ] && [ -f "$app/var/cache/routes.php" ] ||
    fail "the application's cache was not built: $(head -c 2000 "$tmp/warmup.out")"
chmod -R a+rX "$app"

user_lines=""
if [ "$(id -u)" = 0 ]; then
    user_lines=$'user = www-data\ngroup = www-data\nlisten.owner = www-data\nlisten.group = www-data'
fi
cat >"$tmp/php-fpm.conf" <<CONF
[global]
pid = $tmp/php-fpm.pid
error_log = $tmp/php-fpm.log
daemonize = no

[framework]
$user_lines
listen = $tmp/php-fpm.sock
listen.mode = 0660
pm = static
pm.max_children = 2
catch_workers_output = yes
CONF
"$fpm_bin" -F -y "$tmp/php-fpm.conf" >"$tmp/php-fpm.out" 2>&1 &
fpm_pid=$!
for _ in $(seq 100); do [ -S "$tmp/php-fpm.sock" ] && break; sleep 0.1; done
[ -S "$tmp/php-fpm.sock" ] || fail "php-fpm did not start: $(cat "$tmp/php-fpm.out")"

modes=(fastcgi embedded worker)
# nginx's own fastcgi_params: next to the built nginx (conf/), or a system nginx's /etc/nginx.
fastcgi_params=$(dirname "$nginx")/../conf/fastcgi_params
[ -f "$fastcgi_params" ] || fastcgi_params=/etc/nginx/fastcgi_params
[ -f "$fastcgi_params" ] || fail "no fastcgi_params next to $nginx or in /etc/nginx"
declare -A port
for m in "${modes[@]}"; do port[$m]=$(free_port); done

server() { # mode, index.php location body, extra locations
    cat <<CONF
    server {
        listen 127.0.0.1:${port[$1]};
        server_name 127.0.0.1;
        root $app;
        location / { try_files \$uri /index.php\$is_args\$args; }
        location = /index.php {
$2
        }
        location ~ \.php$ { return 404; }
$3
    }
CONF
}
{
    echo "load_module $module;"
    if [ "$(id -u)" = 0 ]; then
        echo "daemon off; master_process on; user www-data www-data; worker_processes 2;"
    else
        echo "daemon off; master_process on; worker_processes 2;"
    fi
    echo "error_log $tmp/logs/error.log info; pid $tmp/logs/nginx.pid;"
    echo "events { worker_connections 256; }"
    echo "http {"
    echo "    access_log $tmp/logs/access.log; default_type text/plain;"
    for d in client_body proxy fastcgi uwsgi scgi; do echo "    ${d}_temp_path $tmp/tmp/$d;"; done
    echo "    fephp_executors 2;"
    server fastcgi "            include $fastcgi_params;
            fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
            fastcgi_pass unix:$tmp/php-fpm.sock;" ""
    server embedded "            fephp_pass embedded;" ""
    server worker "            fephp_worker $app/worker.php;
            fephp_pass executors;" "        location = /status { fephp_status; }"
    echo "}"
} >"$tmp/nginx.conf"

"$nginx" -p "$tmp" -c "$tmp/nginx.conf" -t -q >"$tmp/nginx-t.out" 2>&1 || fail "nginx -t: $(cat "$tmp/nginx-t.out")"
"$nginx" -p "$tmp" -c "$tmp/nginx.conf" >"$tmp/nginx.out" 2>&1 &
nginx_pid=$!
for m in "${modes[@]}"; do
    for _ in $(seq 200); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${port[$m]}/api/v1/section1/1")" = 200 ] && break
        kill -0 "$nginx_pid" 2>/dev/null || fail "nginx exited: $(cat "$tmp/nginx.out")"
        sleep 0.1
    done
done

# get MODE NAME PATH: the status and body of GET PATH into $tmp/MODE/NAME.
get() {
    mkdir -p "$tmp/$1"
    local status
    status=$(curl -s -o "$tmp/$1/$2.body" -w '%{http_code}' --max-time 30 "http://127.0.0.1:${port[$1]}$3") || status=000
    echo "$status" >"$tmp/$1/$2.status"
}

# 1. Interleaved routes: each request's answer names its route and id.
paths=()
for i in $(seq 0 11); do
    s=$(( (i * 37) % 300 )); id=$(( i * 11 + 1 ))
    paths+=("/api/v1/section$s/$id" "/api/v1/section$(( (s + 150) % 300 ))/$(( id + 5 ))?q=$i&x[]=a")
done
for m in "${modes[@]}"; do
    n=0
    for p in "${paths[@]}"; do get "$m" "r$n" "$p"; n=$((n + 1)); done
done
n=0
for p in "${paths[@]}"; do
    [ "$(cat "$tmp/fastcgi/r$n.status")" = 200 ] || fail "fastcgi $p: status $(cat "$tmp/fastcgi/r$n.status"), the reference must be 200"
    grep -q "\"route\":\"r" "$tmp/fastcgi/r$n.body" || fail "fastcgi $p: not the app's JSON: $(head -c 300 "$tmp/fastcgi/r$n.body")"
    for m in embedded worker; do
        cmp -s "$tmp/fastcgi/r$n.status" "$tmp/$m/r$n.status" || fail "$m $p: status $(cat "$tmp/$m/r$n.status"), fastcgi $(cat "$tmp/fastcgi/r$n.status")"
        cmp -s "$tmp/fastcgi/r$n.body" "$tmp/$m/r$n.body" ||
            fail "$m $p: body differs from fastcgi's: $(head -c 300 "$tmp/$m/r$n.body") vs $(head -c 300 "$tmp/fastcgi/r$n.body")"
    done
    n=$((n + 1))
done

# 2. An uncaught exception (no such route) costs that request only; the next one is whole.
for m in "${modes[@]}"; do
    get "$m" bad "/api/v1/no-such-route"
    [ "$(cat "$tmp/$m/bad.status")" = 500 ] || fail "$m: an unknown route answered $(cat "$tmp/$m/bad.status"), expected 500 (uncaught exception)"
    get "$m" after "/api/v1/section7/70"
    [ "$(cat "$tmp/$m/after.status")" = 200 ] || fail "$m: the request after the exception answered $(cat "$tmp/$m/after.status")"
done
for m in embedded worker; do
    cmp -s "$tmp/fastcgi/after.body" "$tmp/$m/after.body" || fail "$m: the request after the exception differs from fastcgi's"
done

# 3. Worker mode: the pool says so, and booted fewer times than it served.
get worker status "/status"
metric() { # NAME: the value of the first series of NAME (labels allowed) on the status page
    awk -v n="$1" '$1 == n || index($1, n "{") == 1 { print $2; exit }' "$tmp/worker/status.body"
}
[ "$(metric fephp_executors_worker_mode)" = 1 ] ||
    fail "status page does not show worker mode: $(grep executors_worker_mode "$tmp/worker/status.body" || head -c 1500 "$tmp/worker/status.body")"
accepted=$(metric fephp_executors_accepted_total)
boots=$(( $(metric fephp_executors_restarts_total) + $(metric fephp_executors_crashes_total) + $(metric fephp_executors_total) ))
[ -n "$accepted" ] && [ "$accepted" -gt "$(( boots * 3 ))" ] ||
    fail "worker pool: ${accepted:-?} requests taken for $boots executor boots (a worker must serve many requests per boot)"
grep -q "exited on signal" "$tmp/logs/error.log" && fail "an nginx worker or executor died on a signal"

echo "framework.sh: ok (fastcgi_pass, fephp_pass embedded and worker mode agree on ${#paths[@]} routes; an uncaught exception costs one request in each; the worker pool took $accepted requests for $boots boots)"
