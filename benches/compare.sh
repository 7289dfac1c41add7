#!/usr/bin/env bash
# Side-by-side comparison of the ways to serve PHP, on this machine, in one command:
#
#   bash benches/compare.sh
#
# Builds what it needs in release (fe-php; nginx + ngx_http_fephp_module via
# scripts/build-nginx.sh when the module is in the tree), then starts each configuration in
# turn on 127.0.0.1 free ports, runs every workload at every concurrency with wrk, stops what it
# started, and writes RESULTS.md, compare.svg and raw.tsv into $COMPARE_OUT (default benches/).
#
# Configurations, all at the same PHP concurrency N = COMPARE_PHP_PROCS (default 8): php-fpm
# `pm static N`; embedded PHP in nginx runs one PHP thread per worker, so its nginx has
# worker_processes N; fe-php serve embedded runs --workers N. Every other nginx has
# worker_processes 2. PHP reads the distribution's configuration everywhere, as installed
# (Debian: php-fpm /etc/php/8.2/fpm/php.ini + conf.d/, embedded PHP /etc/php/8.2/embed/php.ini
# + conf.d/, the same production php.ini and the same extensions, opcache among them; the
# Configurations table shows opcache's state, probed with benches/php/opcache.php); only
# session.save_path is set, to a directory of the run. PHPRC and PHP_INI_SCAN_DIR are removed
# from the servers' environment.
#   nginx-return200          nginx `return 200` (the ceiling; hello only)
#   nginx-fastcgi-fpm-close  nginx fastcgi_pass unix:... + php-fpm, as Debian ships it (baseline)
#   nginx-fastcgi-fpm        nginx fastcgi_pass to an upstream with keepalive 2 +
#                            fastcgi_keep_conn on (baseline)
#   nginx-fephp-fpm          nginx fephp_pass -> php-fpm
#   nginx-fephp-embedded     nginx fephp_pass embedded (PHP inside the nginx workers)
#   nginx-fephp-executors-socket  the same over the socket transport
#                            (fephp_executor_transport socket; the default is shm)
#   nginx-fephp-executors    nginx fephp_pass executors (N executor processes, one shared
#                            queue; nginx worker_processes 2)
#   serve-fpm                fe-php serve -> php-fpm
#   serve-embedded           fe-php serve, embedded PHP (N worker processes)
# Every ratio is against the BETTER of the two baselines for that metric and row (higher RPS,
# lower p99, lower RSS, lower CPU per request).
# A configuration whose parts are missing (e.g. no nginx module yet) is reported "not available".
#
# Workloads (benches/php/): hello.php, json.php (1000-item json_encode), include50.php (50
# included files), big.php (1 MB response), io.php (usleep 20 ms, then a small answer: waiting
# on a database), mixed (hello.php measured while 4 clients loop on sleep1.php, a 1 s request).
#
# Real applications (what a PHP server spends its time on: a framework's bootstrap, hundreds of
# included files through opcache, database queries, a rendered page of tens of kB):
#   wp-front   WordPress front page, `/` (Debian's `wordpress` + wordpress-theme-twentytwentythree,
#              on MariaDB; through try_files -> /index.php)
#   wp-post    WordPress post page: the installer's "Hello world!" post at its permalink (the
#              installer enables pretty permalinks, /%year%/%monthnum%/%day%/%postname%/, when its
#              loopback probe succeeds; found by following /?p=1; /?p=1 itself otherwise)
#   mw-main    MediaWiki Main_Page, /index.php/Main_Page (Debian's `mediawiki`, SQLite; PATH_INFO)
# Set up once per run, before the rounds, with the real-app tests' installer
# (t/realapp/install.sh) into the run's temp dir: a private MariaDB (mariadb-install-db,
# mariadbd on a unix socket, no TCP) started and stopped by this script; WordPress's config in a
# private copy of /etc/wordpress bind-mounted over it (this script re-executes itself in a private
# mount namespace, `unshare -m`, when a wp-* workload is asked for: the machine's /etc/wordpress
# is never written; without root the wp-* workloads are "not available: needs root"), its
# document root Debian's layout (symlinks into /usr/share/wordpress, wp-content ->
# /var/lib/wordpress/wp-content), installed over HTTP (wp-admin/install.php?step=2) through a
# temporary nginx fastcgi_pass + php-fpm; MediaWiki installed with maintenance/install.php
# --dbtype sqlite, $wgUsePathInfo pinned. Every nginx configuration (not return 200) then serves
# each application from a server of its own (own port, fixed for the run so that the installs'
# URLs hold; root = the app's document root, `disable_symlinks off`, WordPress's try_files,
# MediaWiki's deny rules) with that configuration's PHP handler: plain fastcgi_pass with Debian's
# snippets/fastcgi-php.conf (split_path_info, try_files $fastcgi_script_name =404, PATH_INFO),
# the same with the keep-alive upstream, fephp_pass -> php-fpm, fephp_pass embedded. The
# server sets WORDPRESS_CONFIG (Debian's wp-config.php reads /etc/wordpress/config-NAME.php) or
# MW_CONF (MediaWiki's LocalSettings.php, read through an auto_prepend_file that defines
# MW_CONFIG_FILE; with mw-* asked for, that ini is set in every configuration, for every workload,
# so all stay alike). fe-php serve has one document root: app workloads are "not applicable"
# there. Before measuring, each configuration's page must answer 200 with its marker text (the
# blog's title and the post, the wiki's title and Main Page text), else that row is "failed: why".
# The app runs warm up COMPARE_APP_WARMUP seconds: embedded PHP starts in each nginx worker, so
# each worker compiles the application into its own opcache on its first requests (php-fpm's
# children share their master's). MariaDB's CPU and memory are not counted (the same everywhere).
#
# Cost: for every run, CPU time per request = user + system time of every serving process
# (nginx master and workers, php-fpm master and children, fe-php processes and whatever they
# started; exited children counted through cutime/cstime), read from /proc before and after
# the measured window, divided by the requests the load tool completed. The least noisy figure
# on a shared machine; RESULTS.md puts it next to RPS.
#
# Configurations are alternated in ROUNDS (every configuration once per round) so that drift
# (other load on the machine, thermal) hits all alike; the table shows the median over rounds.
#
# Environment:
#   COMPARE_DURATION=5        seconds per measured run (keep <= 10)
#   COMPARE_WARMUP=1          seconds of unmeasured load before each run (0 = none); then, as
#                             after every run, the requests left in flight finish (the servers'
#                             CPU settles) before the measured window
#   COMPARE_APP_WARMUP=5      the same for wp-* and mw-* (default 0 when COMPARE_WARMUP=0)
#   COMPARE_ROUNDS=3          rounds
#   COMPARE_CONCURRENCY="16 64 256"
#   COMPARE_WORKLOADS="hello json include50 big io mixed wp-front wp-post mw-main"
#   COMPARE_CONFIGS="nginx-return200 nginx-fastcgi-fpm-close nginx-fastcgi-fpm nginx-fephp-fpm nginx-fephp-embedded nginx-fephp-executors serve-fpm serve-embedded"
#   COMPARE_PHP_PROCS=8       PHP concurrency N of every configuration (see above)
#   COMPARE_TOOL=wrk          wrk (default when installed) or fe-php (`fe-php bench --json`)
#   COMPARE_THREADS=2         load generator threads
#   COMPARE_OUT=benches       where RESULTS.md, compare.svg, raw.tsv go
#   COMPARE_REPORT_ONLY=1     only rewrite RESULTS.md and compare.svg from $COMPARE_OUT/raw.tsv
#   COMPARE_BUILD=1           0: build nothing; use FEPHP_BIN, NGINX_BIN, NGINX_MODULE (or what is
#                             already built under CARGO_TARGET_DIR)
# Needs: bash, python3 (standard library only), php-fpm8.2, wrk (or COMPARE_TOOL=fe-php), curl;
# for the applications: wordpress, wordpress-theme-twentytwentythree, mariadb-server, mediawiki,
# php8.2-{mysql,mbstring,intl,xml,sqlite3}, php (CLI), root for WordPress.
# Smoke run: COMPARE_DURATION=1 COMPARE_ROUNDS=1 COMPARE_WARMUP=0 COMPARE_CONCURRENCY=16
#            COMPARE_OUT=/tmp/cmp bash benches/compare.sh
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

DUR=${COMPARE_DURATION:-5}
WARMUP=${COMPARE_WARMUP:-1}
APP_WARMUP=${COMPARE_APP_WARMUP:-}
if [ -z "$APP_WARMUP" ]; then if [ "$WARMUP" = 0 ]; then APP_WARMUP=0; else APP_WARMUP=5; fi; fi
ROUNDS=${COMPARE_ROUNDS:-3}
CONCURRENCY=${COMPARE_CONCURRENCY:-16 64 256}
WORKLOADS=${COMPARE_WORKLOADS:-hello json include50 big io mixed wp-front wp-post mw-main}
CONFIGS=${COMPARE_CONFIGS:-nginx-return200 nginx-fastcgi-fpm-close nginx-fastcgi-fpm nginx-fephp-fpm nginx-fephp-embedded nginx-fephp-executors serve-fpm serve-embedded}
PHP_PROCS=${COMPARE_PHP_PROCS:-8}
THREADS=${COMPARE_THREADS:-2}
OUT=${COMPARE_OUT:-$root/benches}
BUILD=${COMPARE_BUILD:-1}
REPORT_ONLY=${COMPARE_REPORT_ONLY:-0}
[ "$REPORT_ONLY" = 1 ] && BUILD=0
TOOL=${COMPARE_TOOL:-}
if [ -z "$TOOL" ]; then
    if command -v wrk >/dev/null; then TOOL=wrk; else TOOL=fe-php; fi
fi
if [ "$TOOL" = wrk ] && ! command -v wrk >/dev/null; then
    echo "compare.sh: wrk not installed; using fe-php bench" >&2
    TOOL=fe-php
fi

log() { echo "compare.sh: $*" >&2; }

# The real-application installs are the real-app tests' (t/realapp/install.sh).
# shellcheck source=t/realapp/install.sh
source "$root/t/realapp/install.sh"
wants_wp=0 wants_mw=0
for w in $WORKLOADS; do
    case $w in wp-*) wants_wp=1 ;; mw-*) wants_mw=1 ;; esac
done
# WordPress reads its config from /etc/wordpress: ours goes into a private copy bind-mounted over
# it, so run again in a private mount namespace (the mount vanishes with the run).
if [ $wants_wp = 1 ] && [ "$REPORT_ONLY" != 1 ] && [ -z "${FEPHP_COMPARE_NS:-}" ] && ri_can_unshare; then
    FEPHP_COMPARE_NS=1 exec unshare -m --propagation private bash "$root/benches/compare.sh" "$@"
fi

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/fephp-compare.XXXXXX")
started=()     # pids of every server process this script started (masters)
sleepers=()    # pids of the `mixed` workload's slow-request loops
sampler=""

stop_pid() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

stop_all() {
    local pid
    for pid in "${started[@]}"; do stop_pid "$pid"; done
    for pid in "${started[@]}"; do wait "$pid" 2>/dev/null || true; done   # not MariaDB's
    started=()
}

cleanup() {
    for pid in "${sleepers[@]}"; do kill "$pid" 2>/dev/null; done
    [ -n "$sampler" ] && kill "$sampler" 2>/dev/null
    stop_all
    ri_mariadb_stop
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- build / locate the parts
target=${CARGO_TARGET_DIR:-}
if [ -z "$target" ] && [ -n "${FEPHP_BIN:-}" ]; then target=$(dirname "$(dirname "$FEPHP_BIN")"); fi
target=${target:-$root/target}
case "$target" in /*) ;; *) target=$root/$target ;; esac
export CARGO_TARGET_DIR=$target

nginx_note=""
if [ "$BUILD" = 1 ]; then
    log "building fe-php (release)"
    cargo build --release --bin fe-php >&2
    FEPHP_BIN=$target/release/fe-php
    if [ -x scripts/build-nginx.sh ] || [ -f scripts/build-nginx.sh ]; then
        log "building nginx + ngx_http_fephp_module (scripts/build-nginx.sh)"
        if built=$(bash scripts/build-nginx.sh); then
            NGINX_BIN=$(echo "$built" | sed -n 1p)
            NGINX_MODULE=$(echo "$built" | sed -n 2p)
        else
            nginx_note="scripts/build-nginx.sh failed"
        fi
    else
        nginx_note="no nginx module in this tree (scripts/build-nginx.sh missing)"
    fi
fi
FEPHP_BIN=${FEPHP_BIN:-$target/release/fe-php}
if [ -z "${NGINX_BIN:-}" ] && [ -x "$target/nginx/sbin/nginx" ]; then NGINX_BIN=$target/nginx/sbin/nginx; fi
if [ -z "${NGINX_MODULE:-}" ] && [ -f "$target/nginx/modules/ngx_http_fephp_module.so" ]; then
    NGINX_MODULE=$target/nginx/modules/ngx_http_fephp_module.so
fi
if [ -z "${NGINX_BIN:-}" ]; then NGINX_BIN=$(command -v nginx || echo /usr/sbin/nginx); fi
NGINX_MODULE=${NGINX_MODULE:-}
[ -z "$NGINX_MODULE" ] && [ -z "$nginx_note" ] && nginx_note="ngx_http_fephp_module not built"
[ -x "$FEPHP_BIN" ] || [ "$REPORT_ONLY" = 1 ] || { log "no fe-php binary at $FEPHP_BIN"; exit 1; }
PHP_FPM=$(command -v php-fpm8.2 || command -v php-fpm || true)
DOCROOT=$root/benches/php
is_root=0
[ "$(id -u)" = 0 ] && is_root=1

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_http URL SECONDS: true once URL answers 200.
wait_http() {
    local url=$1 limit=$2 i
    for i in $(seq 1 $((limit * 10))); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" 2>/dev/null)" = 200 ] && return 0
        sleep 0.1
    done
    return 1
}

# tree_pids PID...: the pids and all their descendants (read from /proc once).
tree_pids() {
    python3 - "$@" <<'PY'
import os, sys
kids = {}
for d in os.listdir('/proc'):
    if d.isdigit():
        try:
            with open(f'/proc/{d}/stat') as f:
                ppid = int(f.read().rsplit(')', 1)[1].split()[1])
            kids.setdefault(ppid, []).append(int(d))
        except (OSError, IndexError, ValueError):
            pass
todo = [int(p) for p in sys.argv[1:]]
seen = []
while todo:
    p = todo.pop()
    if p not in seen:
        seen.append(p)
        todo.extend(kids.get(p, []))
print(' '.join(map(str, seen)))
PY
}

# tree_cpu_ticks PID...: user + system clock ticks of the pids and all their descendants, live
# and reaped (utime + stime + cutime + cstime), summed now.
tree_cpu_ticks() {
    python3 - "$@" <<'PY'
import os, sys
kids, ticks = {}, {}
for d in os.listdir('/proc'):
    if d.isdigit():
        try:
            with open(f'/proc/{d}/stat') as f:
                fields = f.read().rsplit(')', 1)[1].split()
            kids.setdefault(int(fields[1]), []).append(int(d))
            ticks[int(d)] = sum(int(x) for x in fields[11:15])
        except (OSError, IndexError, ValueError):
            pass
todo, seen, total = [int(p) for p in sys.argv[1:]], set(), 0
while todo:
    p = todo.pop()
    if p not in seen:
        seen.add(p)
        total += ticks.get(p, 0)
        todo.extend(kids.get(p, []))
print(total)
PY
}

# ---------------------------------------------------------------- the servers
start_fpm() {   # -> FPM_SOCK
    local dir=$work/fpm
    mkdir -p "$dir"
    FPM_SOCK=$dir/fpm.sock
    local user=""
    [ $is_root = 1 ] && user=$'user = root\ngroup = root'
    cat >"$dir/php-fpm.conf" <<EOF
[global]
error_log = $dir/fpm.log
daemonize = no
[www]
listen = $FPM_SOCK
listen.backlog = 4096
$user
pm = static
pm.max_children = $PHP_PROCS
pm.max_requests = 0
clear_env = no
php_admin_value[session.save_path] = $dir
${MW_PREPEND:+php_admin_value[auto_prepend_file] = $MW_PREPEND}
EOF
    local extra=()
    [ $is_root = 1 ] && extra=(-R)
    env -u PHPRC -u PHP_INI_SCAN_DIR setsid "$PHP_FPM" -F -y "$dir/php-fpm.conf" "${extra[@]}" >"$dir/stdout.log" 2>&1 &
    started+=($!)
    SERVE_ROOTS+=($!)
    local i
    for i in $(seq 1 100); do [ -S "$FPM_SOCK" ] && return 0; sleep 0.1; done
    log "php-fpm did not start: $(tail -3 "$dir/fpm.log" 2>/dev/null)"
    return 1
}

# app_handler KIND DIR NAME VALUE: the PHP location body of an application server: KIND's pass
# (plain fastcgi_pass with Debian's snippets/fastcgi-php.conf, as t/realapp/lib.sh's oracle)
# and the app's param NAME.
app_handler() {
    local kind=$1 dir=$2 name=$3 value=$4
    case $kind in
        fastcgi|fastcgi-close)
            echo "fastcgi_split_path_info ^(.+?\.php)(/.*)\$;
            try_files \$fastcgi_script_name =404;
            set \$path_info \$fastcgi_path_info;
            fastcgi_param PATH_INFO \$path_info;
            fastcgi_index index.php;
            include $dir/fastcgi_params;"
            if [ "$kind" = fastcgi ]; then echo "            fastcgi_keep_conn on; fastcgi_pass php_fpm;"
            else echo "            fastcgi_pass unix:$FPM_SOCK;"; fi
            echo "            fastcgi_param $name $value;" ;;
        fephp-fpm) echo "fephp_pass unix:$FPM_SOCK; fephp_max_connections $(( (PHP_PROCS + 1) / 2 )); fephp_param $name $value;" ;;
        fephp-embedded) echo "fephp_pass embedded; fephp_param $name $value;" ;;
        fephp-executors|fephp-executors-socket) echo "fephp_pass executors; fephp_param $name $value;" ;;
    esac
}

# app_servers KIND DIR: the WordPress and MediaWiki servers (ports WP_PORT, MW_PORT), when
# installed, with KIND's PHP handler.
app_servers() {
    local kind=$1 dir=$2
    if [ -n "${WP_ROOT:-}" ]; then
        cat <<EOF
    server {
        listen 127.0.0.1:$WP_PORT;
        server_name 127.0.0.1;
        root $WP_ROOT;
        disable_symlinks off;   # nginx's default; Debian's layout is symlinks
        index index.php;
        location / { try_files \$uri \$uri/ /index.php?\$args; }
        location ~ \.php(/|\$) {
            $(app_handler "$kind" "$dir" WORDPRESS_CONFIG fephp-bench)
        }
    }
EOF
    fi
    if [ -n "${MW_CONF:-}" ]; then
        cat <<EOF
    server {
        listen 127.0.0.1:$MW_PORT;
        server_name 127.0.0.1;
        root $ri_mw_docroot;
        disable_symlinks off;
        index index.php;
        location ~ ^/(cache|images/deleted|includes|languages|maintenance|serialized|tests|vendor|config)/ { deny all; }
        location ~ \.php(/|\$) {
            $(app_handler "$kind" "$dir" MW_CONF "$MW_CONF")
        }
        location / { try_files \$uri \$uri/ =404; }
    }
EOF
    fi
}

start_nginx() {   # $1 = kind: return200 | fastcgi | fephp-fpm | fephp-embedded
    local kind=$1 dir=$work/nginx
    mkdir -p "$dir/logs"
    PORT=$(free_port)
    local load="" main_extra="" http_extra="" location="" workers=2
    case $kind in
        return200) location='location / { return 200 "Hello, world!\n"; }' ;;
        fastcgi)
            http_extra="upstream php_fpm { server unix:$FPM_SOCK; keepalive 2; }"
            location="location ~ \\.php\$ {
            fastcgi_keep_conn on;
            fastcgi_pass php_fpm;
            include $dir/fastcgi_params;
        }" ;;
        fastcgi-close)
            location="location ~ \\.php\$ {
            fastcgi_pass unix:$FPM_SOCK;
            include $dir/fastcgi_params;
        }" ;;
        fephp-fpm)
            load="load_module $NGINX_MODULE;"
            location="location ~ \\.php(/|\$) { fephp_pass unix:$FPM_SOCK; fephp_max_connections $(( (PHP_PROCS + 1) / 2 )); }" ;;
        fephp-embedded)
            workers=$PHP_PROCS
            load="load_module $NGINX_MODULE;"
            # The distribution's embed php.ini + conf.d (the default; nginx clears the workers'
            # environment, so no PHPRC / PHP_INI_SCAN_DIR).
            http_extra="fephp_php_ini session.save_path $dir;${MW_PREPEND:+ fephp_php_ini auto_prepend_file $MW_PREPEND;}"
            location="location ~ \\.php(/|\$) { fephp_pass embedded; }" ;;
        fephp-executors|fephp-executors-socket)
            load="load_module $NGINX_MODULE;"
            # Like embedded: the distribution's php.ini; executors exec'd from fe-php (the
            # recommended, memory-isolated setup).
            http_extra="fephp_php_ini session.save_path $dir;${MW_PREPEND:+ fephp_php_ini auto_prepend_file $MW_PREPEND;}
    fephp_executors $PHP_PROCS;
    fephp_executor_binary $FEPHP_BIN;"
            [ "$kind" = fephp-executors-socket ] && http_extra="$http_extra
    fephp_executor_transport socket;"
            location="location ~ \\.php(/|\$) { fephp_pass executors; }" ;;
    esac
    cat >"$dir/fastcgi_params" <<'EOF'
fastcgi_param  SCRIPT_FILENAME    $document_root$fastcgi_script_name;
fastcgi_param  QUERY_STRING       $query_string;
fastcgi_param  REQUEST_METHOD     $request_method;
fastcgi_param  CONTENT_TYPE       $content_type;
fastcgi_param  CONTENT_LENGTH     $content_length;
fastcgi_param  SCRIPT_NAME        $fastcgi_script_name;
fastcgi_param  REQUEST_URI        $request_uri;
fastcgi_param  DOCUMENT_URI       $document_uri;
fastcgi_param  DOCUMENT_ROOT      $document_root;
fastcgi_param  SERVER_PROTOCOL    $server_protocol;
fastcgi_param  REQUEST_SCHEME     $scheme;
fastcgi_param  GATEWAY_INTERFACE  CGI/1.1;
fastcgi_param  SERVER_SOFTWARE    nginx/$nginx_version;
fastcgi_param  REMOTE_ADDR        $remote_addr;
fastcgi_param  REMOTE_PORT        $remote_port;
fastcgi_param  SERVER_ADDR        $server_addr;
fastcgi_param  SERVER_PORT        $server_port;
fastcgi_param  SERVER_NAME        $server_name;
fastcgi_param  REDIRECT_STATUS    200;
EOF
    local apps=""
    [ "$kind" != return200 ] && apps=$(app_servers "$kind" "$dir")
    local user=""
    [ $is_root = 1 ] && user="user root;"
    cat >"$dir/nginx.conf" <<EOF
$load
$user
$main_extra
daemon off;
worker_processes $workers;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    $http_extra
    server {
        listen 127.0.0.1:$PORT;
        root $DOCROOT;
        $location
    }
$apps
}
EOF
    setsid "$NGINX_BIN" -p "$dir" -c "$dir/nginx.conf" >"$dir/logs/stdout.log" 2>&1 &
    started+=($!)
    SERVE_ROOTS+=($!)
}

start_serve() {   # $1 = fpm | embedded
    local kind=$1 dir=$work/serve
    mkdir -p "$dir"
    PORT=$(free_port)
    local php
    if [ "$kind" = fpm ]; then
        php="use_fpm = true
fpm_socket = \"unix:$FPM_SOCK\"
worker_pool_size = $(( (PHP_PROCS + 1) / 2 ))"
    else
        php="use_fpm = false

[php.ini]
session.save_path = \"$dir\"${MW_PREPEND:+
auto_prepend_file = \"$MW_PREPEND\"}"
    fi
    cat >"$dir/config.toml" <<EOF
[server]
listen = "127.0.0.1:$PORT"
document_root = "$DOCROOT"
shutdown_timeout_ms = 2000

[php]
$php
EOF
    local workers=2
    [ "$kind" = embedded ] && workers=$PHP_PROCS
    env -u PHPRC -u PHP_INI_SCAN_DIR setsid "$FEPHP_BIN" serve --config "$dir/config.toml" --workers "$workers" >"$dir/stdout.log" 2>"$dir/serve.log" &
    started+=($!)
    SERVE_ROOTS+=($!)
}

# available CONFIG: empty when it can run here, else the reason.
unavailable() {
    case $1 in
        nginx-return200) [ -x "$NGINX_BIN" ] || echo "no nginx binary" ;;
        nginx-fastcgi-fpm|nginx-fastcgi-fpm-close)
            [ -x "$NGINX_BIN" ] || { echo "no nginx binary"; return; }
            [ -n "$PHP_FPM" ] || echo "php-fpm8.2 not installed" ;;
        nginx-fephp-fpm|nginx-fephp-embedded|nginx-fephp-executors|nginx-fephp-executors-socket)
            [ -n "$NGINX_MODULE" ] || { echo "$nginx_note"; return; }
            [ "$1" != nginx-fephp-fpm ] || [ -n "$PHP_FPM" ] || echo "php-fpm8.2 not installed" ;;
        serve-fpm) [ -n "$PHP_FPM" ] || echo "php-fpm8.2 not installed" ;;
        serve-embedded) ;;
        *) echo "unknown configuration" ;;
    esac
}

# start_config CONFIG -> PORT, SERVE_ROOTS; returns non-zero (and logs) when it does not come up.
start_config() {
    SERVE_ROOTS=()
    rm -rf "$work/nginx" "$work/serve" "$work/fpm"
    case $1 in
        nginx-return200) start_nginx return200 ;;
        nginx-fastcgi-fpm) start_fpm && start_nginx fastcgi ;;
        nginx-fastcgi-fpm-close) start_fpm && start_nginx fastcgi-close ;;
        nginx-fephp-fpm) start_fpm && start_nginx fephp-fpm ;;
        nginx-fephp-embedded) start_nginx fephp-embedded ;;
        nginx-fephp-executors) start_nginx fephp-executors ;;
        nginx-fephp-executors-socket) start_nginx fephp-executors-socket ;;
        serve-fpm) start_fpm && start_serve fpm ;;
        serve-embedded) start_serve embedded ;;
    esac || return 1
    local probe=/hello.php
    [ "$1" = nginx-return200 ] && probe=/
    if ! wait_http "http://127.0.0.1:$PORT$probe" 20; then
        log "$1 did not come up; logs:"
        curl -s -o /dev/null -w "compare.sh: last probe answered %{http_code}\n" --max-time 2 "http://127.0.0.1:$PORT$probe" >&2 || true
        tail -n 20 "$work"/*/logs/error.log "$work"/*/logs/stdout.log "$work"/serve/serve.log "$work"/fpm/fpm.log 2>/dev/null >&2 || true
        return 1
    fi
}

# ---------------------------------------------------------------- the applications
# Installed once per run, before the rounds, with t/realapp/install.sh (the real-app tests'
# installer), into $work/app. Sets WP_ROOT, WP_PORT (WordPress), MW_CONF, MW_PORT, MW_PREPEND
# (MediaWiki) and APP_URL[workload] ("PORT/path"); a workload that cannot be set up gets its
# reason in wstate.
declare -A APP_URL
APP_MARKERS_wp_front="<title>fe-php blog</title>|Hello world!"
APP_MARKERS_wp_post="<title>Hello world! &#8211; fe-php blog</title>|Welcome to WordPress"
APP_MARKERS_mw_main="<title>fe-php wiki</title>|\"wgTitle\":\"Main Page\"|MediaWiki has been installed"
app_pass='fephp-bench-pass-1'

set_wstate() {   # PREFIX STATE: every requested workload PREFIX-*
    local w
    for w in $WORKLOADS; do [[ $w == "$1"-* ]] && wstate[$w]=$2; done
    return 0
}

app_setup() {
    [ $wants_wp = 1 ] || [ $wants_mw = 1 ] || return 0
    local app=$work/app
    mkdir -p "$app"
    chmod 0755 "$work" "$app"   # mariadbd runs as mysql
    if [ $wants_mw = 1 ]; then
        if [ ! -L "$ri_mw_docroot/index.php" ]; then set_wstate mw "not available: mediawiki not installed"
        elif ! command -v php >/dev/null; then set_wstate mw "not available: no php CLI for MediaWiki's installer"
        else
            MW_PORT=$(free_port)
            log "installing MediaWiki (maintenance/install.php, SQLite) in $app/mw"
            if ri_mw_install "$app/mw" "http://127.0.0.1:$MW_PORT" "$app_pass" 2>"$app/mw-install.err"; then
                MW_CONF=$app/mw/LocalSettings.php MW_PREPEND=$app/mw-prepend.php
                ri_mw_prepend "$MW_PREPEND"
                APP_URL[mw-main]=$MW_PORT/index.php/Main_Page
            else
                log "MediaWiki install failed: $(cat "$app/mw-install.err")"
                set_wstate mw "failed: MediaWiki install"
            fi
        fi
    fi
    [ $wants_wp = 1 ] || return 0
    local why=""
    if [ $is_root != 1 ] || [ -z "${FEPHP_COMPARE_NS:-}" ]; then why="not available: needs root"
    elif [ ! -f "$ri_wp/wp-settings.php" ]; then why="not available: wordpress not installed"
    elif ! command -v mariadbd >/dev/null; then why="not available: mariadb-server not installed"
    elif [ -n "$(unavailable nginx-fastcgi-fpm-close)" ]; then
        why="not available: the install needs nginx + php-fpm"
    fi
    [ -z "$why" ] || { set_wstate wp "$why"; return 0; }
    log "installing WordPress (private MariaDB, installer over HTTP) in $app"
    if ! ri_mariadb_start "$app" 2>"$app/wp-install.err" || ! ri_wp_databases "$app_pass" wp_bench 2>>"$app/wp-install.err" ||
        ! ri_wp_etc "$app/etc-wordpress" 2>>"$app/wp-install.err"; then
        log "WordPress setup failed: $(cat "$app/wp-install.err")"
        set_wstate wp "failed: WordPress setup (MariaDB)"
        return 0
    fi
    ri_wp_config "$app/etc-wordpress" fephp-bench wp_bench "$app_pass" "$ri_db_sock"
    ri_wp_docroot "$app/wp-www"
    WP_ROOT=$app/wp-www WP_PORT=$(free_port)
    # The installer, through plain fastcgi_pass + php-fpm (it probes pretty permalinks with
    # loopback requests, which need a second PHP process: pm static N has them).
    local ok=0 post
    if start_config nginx-fastcgi-fpm-close && ri_wp_install "http://127.0.0.1:$WP_PORT" 'fe-php blog' "$app_pass" 2>>"$app/wp-install.err"; then
        # The post's own URL: /?p=1 redirects to its permalink when the installer enabled pretty
        # permalinks (it does when its loopback probe succeeds).
        post=$(curl -s -o /dev/null -L --max-time 30 -w '%{url_effective}' "http://127.0.0.1:$WP_PORT/?p=1")
        post=${post#http://127.0.0.1:$WP_PORT}
        APP_URL[wp-front]=$WP_PORT/ APP_URL[wp-post]=$WP_PORT${post:-/?p=1}
        ok=1
    fi
    stop_all
    if [ $ok = 0 ]; then
        log "WordPress install failed: $(cat "$app/wp-install.err")"
        WP_ROOT=""
        set_wstate wp "failed: WordPress install"
    fi
}

stop_apps() { ri_mariadb_stop; }

# app_check WORKLOAD URL: status 200 and every marker of the workload in the body; else prints
# what is wrong.
app_check() {
    local w=$1 url=$2 var body code m
    var=APP_MARKERS_${w//-/_}
    body=$(curl -s --max-time 60 -w '\n%{http_code}' "$url") || { echo "no answer"; return 1; }
    code=${body##*$'\n'}
    [ "$code" = 200 ] || { echo "HTTP $code, not 200"; return 1; }
    IFS='|' read -ra markers <<<"${!var}"
    for m in "${markers[@]}"; do
        grep -qF -- "$m" <<<"$body" || { echo "HTTP 200 but no \"$m\" in the page"; return 1; }
    done
}

# ---------------------------------------------------------------- measuring
# settle: wait (at most 10 s) until the serving processes stop using CPU. The load tool leaves
# up to `concurrency` requests in flight when a run (warm-up or measured) ends; PHP still runs
# them (a WordPress page takes tens of ms of CPU), and they must not eat into the next measured
# window or its CPU. Costs 0.5 s when the servers are idle.
settle() {
    local a b
    a=$(tree_cpu_ticks "${SERVE_ROOTS[@]}")
    for _ in $(seq 20); do
        sleep 0.5
        b=$(tree_cpu_ticks "${SERVE_ROOTS[@]}")
        [ $((b - a)) -le 2 ] && return 0
        a=$b
    done
}

# RSS sampler: every 0.2 s, the sum of VmRSS (kB) over the pids; writes the max to $1.
start_sampler() {
    local file=$1; shift
    local pids="$*"
    (
        max=0
        while :; do
            sum=0
            for p in $pids; do
                kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || true)
                sum=$((sum + ${kb:-0}))
            done
            if [ $sum -gt $max ]; then max=$sum; echo $max >"$file.tmp" && mv -f "$file.tmp" "$file"; fi
            sleep 0.2
        done
    ) &
    sampler=$!
}

stop_sampler() {
    [ -n "$sampler" ] && kill "$sampler" 2>/dev/null && wait "$sampler" 2>/dev/null || true
    sampler=""
}

# start_sleepers URL: 4 clients looping on URL (the slow requests of the `mixed` workload).
start_sleepers() {
    local i
    for i in 1 2 3 4; do
        (while :; do curl -s -o /dev/null --max-time 30 "$1" || sleep 0.1; done) &
        sleepers+=($!)
    done
    sleep 1.2   # let them reach PHP
}
stop_sleepers() {
    local pid
    for pid in "${sleepers[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${sleepers[@]}"; do wait "$pid" 2>/dev/null || true; done
    sleepers=()
}

# load URL CONC SECONDS -> prints "rps p50_us p99_us errors non2xx requests"
load() {
    local url=$1 conc=$2 secs=$3
    if [ "$TOOL" = wrk ]; then
        wrk -t"$THREADS" -c"$conc" -d"${secs}s" --latency --timeout 10s "$url" | python3 -c '
import re, sys
text = sys.stdin.read()
def us(v):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", v)
    n, u = float(m.group(1)), m.group(2)
    return n * {"us": 1, "ms": 1e3, "s": 1e6, "m": 6e7}[u]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", text, re.M))
err = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", text))
non = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
p50, p99 = us(lat.get("50", "0us")), us(lat.get("99", "0us"))
reqs = int(re.search(r"(\d+) requests in", text).group(1))
print("%.1f %.0f %.0f %d %d %d" % (rps, p50, p99, err, int(non.group(1)) if non else 0, reqs))'
    else
        "$FEPHP_BIN" bench --url "$url" -c "$conc" -d "$secs" --threads "$THREADS" --timeout 10 --json | python3 -c '
import json, sys
r = json.load(sys.stdin)
non = sum(n for s, n in r["status"].items() if not s.startswith(("2", "3")))
l = r["latency_us"]
print("%.1f %d %d %d %d %d" % (r["rps"], l["p50"], l["p99"], r["error_total"], non, r["requests"]))'
    fi
}

# ---------------------------------------------------------------- the report (functions)
machine() {
    echo "- CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') — nproc $(nproc)"
    echo "- Kernel: $(uname -sr); memory $(awk '/MemTotal/ {printf "%.1f GB", $2/1048576}' /proc/meminfo)"
    echo "- nginx: $("$NGINX_BIN" -v 2>&1 | sed 's/^nginx version: //') ($NGINX_BIN)"
    [ -n "$PHP_FPM" ] && echo "- PHP: $("$PHP_FPM" -v 2>/dev/null | head -1)"
    echo "- fe-php: $("$FEPHP_BIN" --version 2>/dev/null) ($(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?'))"
    if [ "$TOOL" = wrk ]; then echo "- Load: wrk ($(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)), -t$THREADS, --latency"
    else echo "- Load: fe-php bench, --threads $THREADS"; fi
    echo "- Runs: ${DUR}s measured (+${WARMUP}s warm-up, ${APP_WARMUP}s for the applications) per workload and concurrency, $ROUNDS round(s), concurrency: $CONCURRENCY"
    echo "- Load average before / after: $load_before / $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
}

# report: RESULTS.md and compare.svg from raw.tsv (runs, then `#config` and `#machine` lines).
report() {
python3 - "$raw" "$OUT" "$CONCURRENCY" "$WORKLOADS" "$PHP_PROCS" <<'PY'
import csv, math, os, re, statistics, sys
from collections import defaultdict

raw, out, concs, workloads, procs = sys.argv[1:6]
concs = [int(c) for c in concs.split()]
workloads = workloads.split()
BASES = ["nginx-fastcgi-fpm-close", "nginx-fastcgi-fpm"]
LABEL = {
    "nginx-return200": "nginx `return 200` (ceiling)",
    "nginx-fastcgi-fpm": "nginx fastcgi_pass + php-fpm, upstream keep-alive",
    "nginx-fastcgi-fpm-close": "nginx fastcgi_pass + php-fpm (Debian's snippet)",
    "nginx-fephp-fpm": "nginx fephp_pass → php-fpm",
    "nginx-fephp-embedded": "nginx fephp_pass embedded",
    "nginx-fephp-executors": "nginx fephp_pass executors",
    "nginx-fephp-executors-socket": "nginx fephp_pass executors, socket transport",
    "serve-fpm": "fe-php serve → php-fpm",
    "serve-embedded": "fe-php serve embedded",
}
WL = {"hello": "hello world", "json": "json_encode 1000 items", "include50": "include 50 files", "big": "1 MB response",
      "io": "io: usleep 20 ms", "mixed": "mixed: hello while 4 sleep(1) requests are in flight",
      "wp-front": "WordPress front page", "wp-post": "WordPress post page", "mw-main": "MediaWiki Main_Page"}
SCRIPT = {"mixed": "hello.php + sleep1.php", "wp-front": "/", "wp-post": "/?p=1's permalink", "mw-main": "/index.php/Main_Page"}
HIGHER_IS_BETTER = {"rps": True, "p50": False, "p99": False, "rss": False, "cpu": False}
lines = open(raw).read().splitlines()
status = [l.split("\t")[1:4] for l in lines if l.startswith("#config\t")]
status = [s + [""] * (3 - len(s)) for s in status]
machine_lines = [l.split("\t", 1)[1] for l in lines if l.startswith("#machine\t")]
configs = [s[0] for s in status]
wstatus = {l.split("\t")[1]: (l.split("\t") + ["", ""])[2:4] for l in lines if l.startswith("#workload\t")}
notes = {(l.split("\t")[1], l.split("\t")[2]): l.split("\t", 3)[3] for l in lines if l.startswith("#note\t")}
for w, (st, url) in wstatus.items():
    if url:
        SCRIPT[w] = url

runs = defaultdict(list)
for r in csv.DictReader((l for l in lines if not l.startswith("#")), delimiter="\t"):
    runs[(r["config"], r["workload"], int(r["concurrency"]))].append(r)

def med(key, field):
    rows = runs.get(key)
    return statistics.median(float(r[field]) for r in rows) if rows else None

def agg(key):
    rows = runs.get(key)
    if not rows:
        return None
    return {
        "rps": med(key, "rps"), "p50": med(key, "p50_us"), "p99": med(key, "p99_us"),
        "rss": max(float(r["peak_rss_kb"] or 0) for r in rows),
        "cpu": med(key, "cpu_us_per_req") if all(r.get("cpu_us_per_req") for r in rows) else None,
        "errors": sum(int(r["errors"]) for r in rows), "non2xx": sum(int(r["non2xx"]) for r in rows),
        "n": len(rows),
    }

def fmt_us(v):
    return f"{v:.0f} µs" if v < 1000 else f"{v / 1000:.2f} ms"

def ratio(a, b):
    return f"{a / b:.2f}×" if a is not None and b else "—"

def best_base(w, c, field):
    """The better of the two nginx + php-fpm baselines for this metric: (value, config)."""
    vals = [(a[field], n) for n in BASES for a in [agg((n, w, c))] if a and a.get(field)]
    if not vals:
        return None, None
    return (max if HIGHER_IS_BETTER[field] else min)(vals)

def short(n):
    return "keep-alive" if n == "nginx-fastcgi-fpm" else "plain"

md = ["# fe-php: side-by-side comparison", "",
      "Generated by `benches/compare.sh` (see its header for the method). Every figure is the median",
      "over rounds. Two nginx + php-fpm baselines run in every comparison: plain `fastcgi_pass unix:`",
      "(as Debian ships it) and an upstream with `keepalive` + `fastcgi_keep_conn on`; each ratio is",
      "against the BETTER of the two for that metric, workload and concurrency (RPS: higher is better;",
      "p99, CPU per request and RSS: lower is better). CPU per request is user + system time of every",
      "serving process (nginx, php-fpm, fe-php and their children) over the measured window, divided by",
      "the requests completed: the figure least disturbed by a shared machine. Peak RSS is the sum of",
      "VmRSS over the serving processes, sampled every 0.2 s. Same PHP concurrency everywhere (see",
      "Configurations). Single figures are noisy here; compare ratios and CPU per request.", "", "## Machine", ""]
md += machine_lines
md += ["", "## Configurations", "", f"PHP concurrency N = {procs} in every configuration: php-fpm `pm static {procs}`; "
       f"`fephp_pass embedded` runs one PHP thread per nginx worker, so its nginx has `worker_processes {procs}`; "
       f"`fe-php serve` embedded `--workers {procs}`. The other nginx configurations run `worker_processes 2`.", "",
       "| configuration | status | opcache |", "|---|---|---|"]
for name, st, opc in status:
    md.append(f"| {LABEL.get(name, name)} | {st} | {opc or '—'} |")

APP_NOTE = ("The application workloads serve a real install (t/realapp/install.sh, as the real-app tests): "
            "Debian's WordPress on a private MariaDB (unix socket) and Debian's MediaWiki on SQLite, from a second "
            "`server` of each nginx configuration with that configuration's PHP handler; every page is checked "
            "(200 and its text) before it is measured. MariaDB's own CPU and memory are not counted "
            "(the same in every configuration).")
app_noted = False
for w in workloads:
    md += ["", f"## {WL.get(w, w)} (`{SCRIPT.get(w, w + '.php')}`)", ""]
    wst = wstatus.get(w, ["ok", ""])[0]
    if w.startswith(("wp-", "mw-")) and not app_noted:
        md += [APP_NOTE, ""]
        app_noted = True
    if wst != "ok":
        md.append(wst)
        continue
    md += ["| configuration | c | RPS | RPS ratio | p50 | p99 | p99 ratio | CPU / request | CPU ratio | peak RSS | RSS ratio | errors / non-2xx |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, st, _ in status:
        if name == "nginx-return200" and w != "hello":
            continue
        if st != "ok" and not any(runs.get((name, w, c)) for c in concs):
            md.append(f"| {LABEL.get(name, name)} | | {st} | | | | | | | | | |")
            continue
        if (name, w) in notes and not any(runs.get((name, w, c)) for c in concs):
            md.append(f"| {LABEL.get(name, name)} | | {notes[(name, w)]} | | | | | | | | | |")
            continue
        for c in concs:
            a = agg((name, w, c))
            if a is None:
                md.append(f"| {LABEL.get(name, name)} | {c} | no result | | | | | | | | | |")
                continue
            if not a["rps"]:
                md.append(f"| {LABEL.get(name, name)} | {c} | no request completed in the window | | | | | | | | | "
                          f"{a['errors']} / {a['non2xx']} |")
                continue
            def rat(field):
                b, by = best_base(w, c, field)
                if name in BASES or b is None or a.get(field) is None:
                    return ratio(a.get(field), b)
                return f"{ratio(a[field], b)} ({short(by)})"
            cpu = ("—" if a.get("cpu") is None else f"{a['cpu']:.1f} µs" if a["cpu"] < 1000 else f"{a['cpu'] / 1000:.1f} ms")
            rps = f"{a['rps']:,.0f}" if a["rps"] >= 100 else f"{a['rps']:.1f}"
            md.append(
                f"| {LABEL.get(name, name)} | {c} | {rps} | {rat('rps')} | {fmt_us(a['p50'])} | "
                f"{fmt_us(a['p99'])} | {rat('p99')} | {cpu} | {rat('cpu')} | {a['rss'] / 1024:.0f} MB | {rat('rss')} | "
                f"{a['errors']} / {a['non2xx']} |")

# Targets (each against the better baseline for that metric)
def target_rows():
    rows = []
    def val(cfg, w, c, field):
        r = agg((cfg, w, c))
        return r and r.get(field)
    for c in concs:
        def check(label, a, b, goal, lower=False):
            if not a or not b:
                rows.append(f"| {label} | {c} | {'≤' if lower else '≥'} {goal:g}× | not measured | |")
                return
            r = a / b
            ok = (r <= goal) if lower else (r >= goal)
            rows.append(f"| {label} | {c} | {'≤' if lower else '≥'} {goal:g}× | {r:.2f}× | {'met' if ok else '**missed**'} |")
        emb, fpm = "nginx-fephp-embedded", "nginx-fephp-fpm"
        check("fephp_pass embedded / best nginx + php-fpm, hello RPS", val(emb, "hello", c, "rps"), best_base("hello", c, "rps")[0], 5)
        check("fephp_pass embedded / best nginx + php-fpm, json RPS", val(emb, "json", c, "rps"), best_base("json", c, "rps")[0], 2)
        check("fephp_pass embedded / best nginx + php-fpm, hello p99", val(emb, "hello", c, "p99"), best_base("hello", c, "p99")[0], 1, lower=True)
        check("fephp_pass embedded / nginx return 200, hello RPS", val(emb, "hello", c, "rps"), val("nginx-return200", "hello", c, "rps"), 0.5)
        check("fephp_pass → php-fpm / best nginx + php-fpm, hello RPS", val(fpm, "hello", c, "rps"), best_base("hello", c, "rps")[0], 1)
        check("fephp_pass → php-fpm / best nginx + php-fpm, hello p99", val(fpm, "hello", c, "p99"), best_base("hello", c, "p99")[0], 1, lower=True)
        ex = "nginx-fephp-executors"
        check("fephp_pass executors / best nginx + php-fpm, io RPS (issue 12)", val(ex, "io", c, "rps"), best_base("io", c, "rps")[0], 0.95)
        check("fephp_pass executors / best nginx + php-fpm, io p99 (issue 12)", val(ex, "io", c, "p99"), best_base("io", c, "p99")[0], 1, lower=True)
        check("fephp_pass executors / best nginx + php-fpm, mixed p99 (issue 12)", val(ex, "mixed", c, "p99"), best_base("mixed", c, "p99")[0], 2, lower=True)
        check("fephp_pass executors / best nginx + php-fpm, mixed RPS (issue 12)", val(ex, "mixed", c, "rps"), best_base("mixed", c, "rps")[0], 1)
        check("fephp_pass executors / fephp_pass embedded, hello RPS (issue 12)", val(ex, "hello", c, "rps"), val(emb, "hello", c, "rps"), 0.9)
        check("fephp_pass executors / fephp_pass embedded, json RPS (issue 12)", val(ex, "json", c, "rps"), val(emb, "json", c, "rps"), 0.9)
    return rows
md += ["", "## Targets", "", "| target | c | goal | measured | |", "|---|---:|---:|---:|---|"] + target_rows()
md += ["", "Chart: [compare.svg](compare.svg) (RPS, p99 and CPU per request per configuration and workload, at the",
       f"concurrency {concs[len(concs) // 2]}). Raw per-run figures: [raw.tsv](raw.tsv)."]
if os.path.exists(f"{out}/ANALYSIS.md"):
    md += ["", "Where the time goes, and what the misses mean: [ANALYSIS.md](ANALYSIS.md)."]
# Sections other benchmarks keep in RESULTS.md (between "<!-- kept: NAME -->" and
# "<!-- /kept: NAME -->", e.g. benches/worker-vs-classic.sh's) survive this rewrite.
kept = []
if os.path.exists(f"{out}/RESULTS.md"):
    kept = re.findall(r"<!-- kept: [^>]*-->.*?<!-- /kept: [^>]*-->", open(f"{out}/RESULTS.md").read(), re.S)
for block in kept:
    md += ["", block]
md.append("")
open(f"{out}/RESULTS.md", "w").write("\n".join(md))

# ---- SVG chart: two rows (RPS, p99) × one panel per workload, one bar per configuration.
c_chart = concs[len(concs) // 2]
colors = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1"]
workloads = [w for w in workloads if any(runs.get((n, w, c_chart)) for n in configs)] or workloads[:1]
ok_configs = [n for n, st, _ in status if any(runs.get((n, w, c_chart)) for w in workloads)]
pw, ph, pad_l, pad_t, gap = 260, 220, 70, 60, 40
W = pad_l + len(workloads) * (pw + gap) + 20
legend_h = 22 * ((len(ok_configs) + 2) // 3)
H = pad_t + 3 * (ph + 70) + legend_h + 20
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<text x="{W / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">fe-php compare: median RPS, p99 and CPU per request, concurrency {c_chart}</text>']
def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
for row, (field, title, unit) in enumerate([("rps", "requests/s (higher is better)", 1), ("p99", "p99 latency, ms, log scale (lower is better)", 1000),
                                               ("cpu", "CPU time per request, µs, all serving processes (lower is better)", 1)]):
    y0 = pad_t + row * (ph + 70)
    svg.append(f'<text x="10" y="{y0 - 8}" font-size="13" font-weight="bold">{title}</text>')
    for i, w in enumerate(workloads):
        x0 = pad_l + i * (pw + gap)
        vals = [(n, agg((n, w, c_chart))) for n in ok_configs]
        vals = [(n, a[field] / unit) for n, a in vals if a and a.get(field) is not None]
        if field != "p99":
            top = max([v for _, v in vals] + [1e-9]) * 1.15
            scale = lambda v: ph * v / top
            ticks = [(top * t / 4, f"{top * t / 4:,.0f}") for t in range(5)]
        else:  # p99 spans decades (a stalled baseline can sit at seconds): log scale
            lo, hi = -1, max(1, math.ceil(math.log10(max([v for _, v in vals] + [1]))))
            scale = lambda v: ph * (math.log10(max(v, 0.1)) - lo) / (hi - lo)
            ticks = [(10 ** d, f"{10 ** d:g}") for d in range(lo, hi + 1)]
        svg.append(f'<rect x="{x0}" y="{y0}" width="{pw}" height="{ph}" fill="none" stroke="#ccc"/>')
        svg.append(f'<text x="{x0 + pw / 2}" y="{y0 + ph + 16}" text-anchor="middle">{esc(WL.get(w, w))}</text>')
        for v, text in ticks:
            y = y0 + ph - scale(v)
            svg.append(f'<line x1="{x0}" x2="{x0 + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
            if i == 0:
                svg.append(f'<text x="{x0 - 4}" y="{y + 4:.1f}" text-anchor="end">{text}</text>')
        bw = pw / max(1, len(ok_configs)) * 0.8
        for j, n in enumerate(ok_configs):
            v = dict(vals).get(n)
            if v is None:
                continue
            h = scale(v)
            x = x0 + pw * 0.1 + j * bw
            svg.append(f'<rect x="{x:.1f}" y="{y0 + ph - h:.1f}" width="{bw * 0.9:.1f}" height="{h:.1f}" fill="{colors[j % len(colors)]}">'
                       f'<title>{esc(LABEL.get(n, n))}: {v:,.1f}</title></rect>')
ly = pad_t + 3 * (ph + 70) - 20
for j, n in enumerate(ok_configs):
    x = pad_l + (j % 3) * 330
    y = ly + (j // 3) * 22
    svg.append(f'<rect x="{x}" y="{y - 10}" width="12" height="12" fill="{colors[j % len(colors)]}"/>')
    svg.append(f'<text x="{x + 18}" y="{y}">{esc(LABEL.get(n, n).replace("`", ""))}</text>')
svg.append("</svg>")
open(f"{out}/compare.svg", "w").write("\n".join(svg))
PY
}

raw=$OUT/raw.tsv
if [ "$REPORT_ONLY" = 1 ]; then
    [ -f "$raw" ] || { log "no $raw to report from"; exit 1; }
    report
    exit 0
fi

# ---------------------------------------------------------------- the rounds
printf 'round\tconfig\tworkload\tconcurrency\trps\tp50_us\tp99_us\tpeak_rss_kb\terrors\tnon2xx\trequests\tcpu_us_per_req\n' >"$raw"
clk_tck=$(getconf CLK_TCK)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A state opcache wstate note

for c in $CONFIGS; do
    why=$(unavailable "$c")
    if [ -n "$why" ]; then state[$c]="not available: $why"; else state[$c]=ok; fi
done
for w in $WORKLOADS; do wstate[$w]=ok; done
app_setup

for round in $(seq 1 "$ROUNDS"); do
    for c in $CONFIGS; do
        [ "${state[$c]}" = ok ] || continue
        log "round $round/$ROUNDS: $c"
        if ! start_config "$c"; then
            state[$c]="failed to start (see compare.sh output)"
            stop_all
            continue
        fi
        pids=$(tree_pids "${SERVE_ROOTS[@]}")
        if [ "$c" != nginx-return200 ] && [ -z "${opcache[$c]:-}" ]; then
            opcache[$c]=$(curl -s --max-time 5 "http://127.0.0.1:$PORT/opcache.php" | tr -d '\n' || true)
        fi
        for w in $WORKLOADS; do
            [ "$c" = nginx-return200 ] && [ "$w" != hello ] && continue
            url=http://127.0.0.1:$PORT/$w.php
            [ "$w" = mixed ] && url=http://127.0.0.1:$PORT/hello.php
            [ "$c" = nginx-return200 ] && url=http://127.0.0.1:$PORT/
            case $w in
                wp-*|mw-*)
                    [ "${wstate[$w]}" = ok ] || continue
                    case $c in serve-*) note[$c/$w]="not applicable (one document root)"; continue ;; esac
                    url=http://127.0.0.1:${APP_URL[$w]}
                    # The real page, or no measurement: status 200 and the page's marker text.
                    if ! why=$(app_check "$w" "$url"); then
                        note[$c/$w]="failed: $why"
                        log "  $w: $why ($url)"
                        continue
                    fi ;;
            esac
            for conc in $CONCURRENCY; do
                [ "$w" = mixed ] && start_sleepers "http://127.0.0.1:$PORT/sleep1.php"
                warm=$WARMUP
                case $w in wp-*|mw-*) warm=$APP_WARMUP ;; esac
                if [ "$warm" != 0 ]; then load "$url" "$conc" "$warm" >/dev/null 2>&1 || true; fi
                settle   # the warm-up's (or the previous run's) requests left in flight finish
                rm -f "$work/rss"
                start_sampler "$work/rss" $pids
                cpu_before=$(tree_cpu_ticks "${SERVE_ROOTS[@]}")
                if result=$(load "$url" "$conc" "$DUR" 2>"$work/load.err"); then
                    cpu_after=$(tree_cpu_ticks "${SERVE_ROOTS[@]}")
                    stop_sampler
                    rss=$(cat "$work/rss" 2>/dev/null || true)
                    rss=${rss:-0}
                    read -r rps p50 p99 errs non reqs <<<"$result"
                    cpu_us=$(awk -v t=$((cpu_after - cpu_before)) -v hz="$clk_tck" -v n="$reqs" 'BEGIN { if (n > 0) printf "%.1f", t * 1e6 / hz / n }')
                    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$c" "$w" "$conc" "$rps" "$p50" "$p99" "$rss" "$errs" "$non" "$reqs" "$cpu_us" >>"$raw"
                    log "  $w c=$conc: $rps req/s, p50 ${p50}us, p99 ${p99}us, rss ${rss} kB, cpu ${cpu_us} us/req, errors $errs, non-2xx $non"
                else
                    stop_sampler
                    log "  $w c=$conc: load tool failed: $(tail -2 "$work/load.err")"
                fi
                [ "$w" = mixed ] && stop_sleepers
            done
        done
        stop_all
    done
done

for c in $CONFIGS; do
    printf '#config\t%s\t%s\t%s\n' "$c" "${state[$c]}" "${opcache[$c]:-}" >>"$raw"
done
for w in $WORKLOADS; do
    u=${APP_URL[$w]:-}
    printf '#workload\t%s\t%s\t%s\n' "$w" "${wstate[$w]}" "${u:+/${u#*/}}" >>"$raw"
done
for k in "${!note[@]}"; do
    printf '#note\t%s\t%s\t%s\n' "${k%%/*}" "${k#*/}" "${note[$k]}" >>"$raw"
done
stop_apps
machine | sed 's/^/#machine\t/' >>"$raw"
report
log "wrote $OUT/RESULTS.md, $OUT/compare.svg, $OUT/raw.tsv"
