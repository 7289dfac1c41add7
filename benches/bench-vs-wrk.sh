#!/usr/bin/env bash
# Overhead of `fe-php bench` against wrk: both load nginx `return 200` (2 workers) with the same
# connections and threads, alternately, for ROUNDS rounds; prints each pair and the median ratio
# fe-php bench RPS / wrk RPS (target >= 0.80). Needs nginx (built by scripts/build-nginx.sh or
# the system's) and wrk.
#   BENCH_DURATION=5 BENCH_ROUNDS=5 BENCH_CONNECTIONS=64 BENCH_THREADS=2 bash benches/bench-vs-wrk.sh
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
fephp=${FEPHP_BIN:-$target/release/fe-php}
nginx=${NGINX_BIN:-$target/nginx/sbin/nginx}
[ -x "$nginx" ] || nginx=$(command -v nginx || echo /usr/sbin/nginx)
dur=${BENCH_DURATION:-5} rounds=${BENCH_ROUNDS:-5} conns=${BENCH_CONNECTIONS:-64} threads=${BENCH_THREADS:-2}
[ -x "$fephp" ] || (cd "$root" && cargo build --release --bin fe-php >&2)

dir=$(mktemp -d "${TMPDIR:-/tmp}/fephp-bench-vs-wrk.XXXXXX")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
user=""; [ "$(id -u)" = 0 ] && user="user root;"
cat >"$dir/nginx.conf" <<CONF
$user
daemon off;
worker_processes 2;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    server { listen 127.0.0.1:$port; location / { return 200 "Hello, world!\n"; } }
}
CONF
"$nginx" -p "$dir" -c "$dir/nginx.conf" 2>"$dir/stderr" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
url=http://127.0.0.1:$port/

echo "nginx $("$nginx" -v 2>&1 | cut -d/ -f2), -c$conns, $threads threads each, ${dur}s runs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
ratios=()
for r in $(seq "$rounds"); do
    w=$(wrk -t"$threads" -c"$conns" -d"${dur}s" "$url" | awk '/Requests\/sec/ {print $2}')
    f=$("$fephp" bench --url "$url" -c "$conns" -d "$dur" --threads "$threads" --json | python3 -c 'import json,sys; print("%.1f" % json.load(sys.stdin)["rps"])')
    ratio=$(python3 -c "print('%.3f' % ($f / $w))")
    ratios+=("$ratio")
    echo "round $r: wrk $w req/s, fe-php bench $f req/s, ratio $ratio"
done
echo "median ratio fe-php bench / wrk: $(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}')"
