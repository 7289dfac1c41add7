#!/usr/bin/env bash
# Worker mode vs classic mode (issue 15) on a framework-like application built from Debian's
# Symfony 5.4 components (benches/php/framework/: 300 autoloaded classes, a cached DI container
# of 300 services, 300 compiled routes, 40 event listeners, HttpFoundation request/response),
# side by side in one run:
#
#   bash benches/worker-vs-classic.sh
#
# Configurations, all with the same PHP concurrency N = WVC_PHP_PROCS (default 4) and nginx
# worker_processes 2, PHP on the distribution's configuration (opcache on):
#   classic   nginx fephp_pass executors, fephp_executors N: every request runs index.php,
#             which boots the application and handles the request
#   worker    the same plus fephp_worker worker.php: each executor boots once, then serves
#   fpm       nginx fastcgi_pass + php-fpm pm static N, index.php (the usual deployment)
# Each request: GET /api/v1/section42/7 through try_files -> /index.php (a JSON answer of 20
# items, ~1.3 kB). Load: wrk -t2 -cC -dD (WVC_CONCURRENCY, default 64; WVC_DURATION seconds,
# default 5) after a 2 s warm-up; configurations alternate in WVC_ROUNDS rounds (default 2),
# the table gives the median. CPU per request = user + system time of nginx and every
# descendant (supervisor, executors, live and reaped), plus php-fpm's tree for fpm, from /proc,
# over the requests wrk completed. RSS: resident memory of the executors / php-fpm processes
# summed, after the last round.
# WVC_SOAK=SECONDS (default 0: none): afterwards, the worker configuration alone under load for
# that long; the worker pool's executors' RSS (summed) before and after, and the requests served
# (a worker that does not leak keeps its RSS flat).
# Writes its table into RESULTS.md too (WVC_OUT, default benches/; a section compare.sh keeps).
# Needs: wrk, curl, php (CLI), php-fpm8.2, and the Debian packages
# php-symfony-{http-foundation,routing,dependency-injection,event-dispatcher,config}
# (installed with apt-get when missing and run as root).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROCS=${WVC_PHP_PROCS:-4}
CONC=${WVC_CONCURRENCY:-64}
DUR=${WVC_DURATION:-5}
ROUNDS=${WVC_ROUNDS:-2}
URL_PATH=/api/v1/section42/7

pkgs="php-symfony-http-foundation php-symfony-routing php-symfony-dependency-injection php-symfony-event-dispatcher php-symfony-config"
if [ ! -f /usr/share/php/Symfony/Component/Config/autoload.php ] || [ ! -f /usr/share/php/Symfony/Component/Routing/autoload.php ]; then
    if [ "$(id -u)" = 0 ]; then apt-get install -y --no-install-recommends $pkgs >/dev/null; else echo "install: $pkgs" >&2; exit 1; fi
fi
while IFS= read -r line; do export "${line?}"; done < <("$root/scripts/build-nginx.sh" --print-env)
NGINX=$TEST_NGINX_BINARY
MODULE=$TEST_NGINX_LOAD_MODULES
FPM=$(command -v php-fpm8.2 || command -v php-fpm)

work=$(mktemp -d "${TMPDIR:-/tmp}/fephp-wvc.XXXXXX")
chmod 0755 "$work"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 0.5
    rm -rf "$work"
}
trap cleanup EXIT

app=$work/app
mkdir -p "$app/var"
cp "$root"/benches/php/framework/*.php "$app/"
php "$app/generate.php" "$app/var/src"
# The container and routes caches, built once (the executors may run as another user).
REQUEST_URI=$URL_PATH php "$app/index.php" >/dev/null 2>&1 || true
[ -f "$app/var/cache/Container.php" ] || { echo "the application's cache was not built" >&2; exit 1; }
chmod -R a+rX "$app"

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

# rss_kib NAME...: resident memory of the processes with these names (comm), summed.
rss_kib() {
    local total=0 n p
    for n in "$@"; do
        for p in $(pgrep -x "$n" || true); do
            total=$((total + $(awk '/^VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)))
        done
    done
    echo $total
}

# tree_rss_kib PID NAME: resident memory of PID's descendants named NAME, summed.
tree_rss_kib() {
    python3 - "$@" <<'PY'
import os, sys
root, name = int(sys.argv[1]), sys.argv[2]
kids, comm = {}, {}
for d in os.listdir('/proc'):
    if d.isdigit():
        try:
            with open(f'/proc/{d}/stat') as f:
                raw = f.read()
            kids.setdefault(int(raw.rsplit(')', 1)[1].split()[1]), []).append(int(d))
            comm[int(d)] = raw[raw.index('(') + 1:raw.rindex(')')]
        except (OSError, IndexError, ValueError):
            pass
todo, total = [root], 0
while todo:
    p = todo.pop()
    todo.extend(kids.get(p, []))
    if comm.get(p) == name:
        try:
            with open(f'/proc/{p}/status') as f:
                total += next(int(l.split()[1]) for l in f if l.startswith('VmRSS'))
        except (OSError, StopIteration):
            pass
print(total)
PY
}

# start_nginx NAME HTTP-BLOCK-BODY: an nginx with the module, 2 workers, in $work/NAME.
start_nginx() {
    local dir=$work/$1
    mkdir -p "$dir/logs"
    printf '%s\n' "load_module $MODULE;" "daemon off;" "master_process on;" "worker_processes 2;" \
        "error_log $dir/logs/error.log notice;" "pid $dir/logs/nginx.pid;" \
        "events { worker_connections 4096; }" "http {" "    access_log off;" "$2" "}" >"$dir/nginx.conf"
    "$NGINX" -p "$dir" -c "$dir/nginx.conf" >"$dir/logs/stdout.log" 2>&1 &
    pids+=($!)
    echo $! >"$dir/pid"
}

# fephp_server PORT [worker]: the executors configuration, classic or worker mode.
fephp_server() {
    local worker=""
    [ -n "${2:-}" ] && worker="fephp_worker $app/worker.php;"
    printf '%s\n' "fephp_executors $PROCS;" "server {" "    listen 127.0.0.1:$1;" "    root $app;" \
        '    location / { try_files $uri /index.php$is_args$args; }' \
        "    location = /index.php { $worker fephp_pass executors; }" "}"
}

base=$((20000 + RANDOM % 20000))
declare -A port=([classic]=$base [worker]=$((base + 1)) [fpm]=$((base + 2)))
start_nginx classic "$(fephp_server "${port[classic]}")"
start_nginx worker "$(fephp_server "${port[worker]}" worker)"
mkdir -p "$work/fpm"
user=""
[ "$(id -u)" = 0 ] && user=$'user = root\ngroup = root'
printf '%s\n' "[global]" "error_log = $work/fpm/fpm.log" "daemonize = no" "[www]" "listen = $work/fpm/fpm.sock" \
    "listen.backlog = 4096" "listen.mode = 0666" "$user" "pm = static" "pm.max_children = $PROCS" >"$work/fpm/php-fpm.conf"
extra=()
[ "$(id -u)" = 0 ] && extra=(-R)
env -u PHPRC -u PHP_INI_SCAN_DIR "$FPM" -F -y "$work/fpm/php-fpm.conf" "${extra[@]}" >"$work/fpm/stdout.log" 2>&1 &
pids+=($!)
fpm_pid=$!
start_nginx fpm "$(printf '%s\n' "server {" "    listen 127.0.0.1:${port[fpm]};" "    root $app;" \
    '    location / { try_files $uri /index.php$is_args$args; }' "    location = /index.php {" \
    "        include $(dirname "$NGINX")/../conf/fastcgi_params;" \
    '        fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;' \
    "        fastcgi_pass unix:$work/fpm/fpm.sock;" "    }" "}")"

body=""
for c in classic worker fpm; do
    for _ in $(seq 1 100); do
        body=$(curl -s "http://127.0.0.1:${port[$c]}$URL_PATH" || true)
        case "$body" in *'"listeners":40'*) break ;; esac
        sleep 0.2
    done
    case "$body" in
        *'"listeners":40'*) ;;
        *) echo "$c does not answer: ${body:0:300}" >&2; tail -5 "$work/$c/logs/error.log" >&2; exit 1 ;;
    esac
    wrk -t2 -c"$CONC" -d2s "http://127.0.0.1:${port[$c]}$URL_PATH" >/dev/null
done

tick=$(getconf CLK_TCK)
declare -A rps cpu p99
for r in $(seq 1 "$ROUNDS"); do
    for c in classic worker fpm; do
        roots=$(cat "$work/$c/pid")
        [ $c = fpm ] && roots="$roots $fpm_pid"
        before=$(tree_cpu_ticks $roots)
        out=$(wrk -t2 -c"$CONC" -d"${DUR}s" --latency "http://127.0.0.1:${port[$c]}$URL_PATH")
        after=$(tree_cpu_ticks $roots)
        reqs=$(echo "$out" | awk '/requests in/ {print $1}')
        bad=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
        [ -n "$bad" ] && echo "$c: $bad non-2xx answers" >&2
        this_rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
        this_cpu=$(python3 -c "print(round(($after - $before) / $tick / $reqs * 1e6, 1))")
        this_p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
        rps[$c]="${rps[$c]:-} $this_rps"
        cpu[$c]="${cpu[$c]:-} $this_cpu"
        p99[$c]="${p99[$c]:-} $this_p99"
        echo "round $r $c: $this_rps req/s, $this_cpu us CPU/request, p99 $this_p99" >&2
    done
done
median() { python3 -c "import sys, statistics; print(round(statistics.median(float(x) for x in sys.argv[1:]), 1))" "$@"; }
med_ms() {
    python3 -c "
import sys, statistics
def ms(s):
    for k, f in (('us', 1e-3), ('ms', 1.0), ('s', 1000.0)):
        if s.endswith(k):
            return float(s[:-len(k)]) * f
print(round(statistics.median(ms(s) for s in sys.argv[1:]), 2))" "$@"
}
table=$(
    echo "| configuration (c = $CONC, $PROCS PHP processes) | RPS | CPU per request (µs) | p99 (ms) |"
    echo "|---|---|---|---|"
    for c in classic worker fpm; do
        echo "| $c | $(median ${rps[$c]}) | $(median ${cpu[$c]}) | $(med_ms ${p99[$c]}) |"
    done
    echo
    echo "RSS after the rounds: executors of both pools $(rss_kib fephp-executor) KiB, php-fpm $(rss_kib php-fpm8.2) KiB"
)
echo
echo "$table"
# The table also goes into RESULTS.md (WVC_OUT, default benches/), as a section that
# benches/compare.sh keeps when it rewrites the file.
results=${WVC_OUT:-$root/benches}/RESULTS.md
python3 - "$results" "$table" "$(date -u '+%Y-%m-%d %H:%M UTC')" "$ROUNDS" "$DUR" <<'PY'
import os, re, sys
path, table, when, rounds, dur = sys.argv[1:]
block = "\n".join([
    "<!-- kept: worker-vs-classic -->",
    "## Worker mode vs classic (issue 15): `benches/worker-vs-classic.sh`",
    "",
    f"{when}; a framework-like app on Debian's Symfony components (benches/php/framework/), `GET "
    f"/api/v1/section42/7`; classic = `fephp_pass executors` booting the app per request, worker = "
    f"the same pool with `fephp_worker`, fpm = nginx `fastcgi_pass` + php-fpm; medians of {rounds} "
    f"alternated rounds × {dur} s. See ANALYSIS.md (Issue 15) for what limits each.",
    "",
    table,
    "<!-- /kept: worker-vs-classic -->",
])
old = open(path).read() if os.path.exists(path) else "# Benchmark results\n"
pat = re.compile(r"<!-- kept: worker-vs-classic -->.*?<!-- /kept: worker-vs-classic -->", re.S)
new = pat.sub(lambda m: block, old) if pat.search(old) else old.rstrip("\n") + "\n\n" + block + "\n"
open(path, "w").write(new)
PY
echo "wrote $results (worker-vs-classic section)"
soak=${WVC_SOAK:-0}
if [ "$soak" -gt 0 ]; then
    before=$(tree_rss_kib "$(cat "$work/worker/pid")" fephp-executor)
    out=$(wrk -t2 -c"$CONC" -d"${soak}s" "http://127.0.0.1:${port[worker]}$URL_PATH")
    after=$(tree_rss_kib "$(cat "$work/worker/pid")" fephp-executor)
    echo "soak: $(echo "$out" | awk '/requests in/ {print $1}') requests in ${soak} s on the worker pool; its executors' RSS $before KiB before, $after KiB after"
fi
grep -h "\[error\]\|\[alert\]" "$work"/*/logs/error.log | head -5 || true
