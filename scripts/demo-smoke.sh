#!/usr/bin/env bash
# Starts the README's main command (scripts/demo.sh) on a free port, checks the example app
# (home page, a form POST with its redirect, the session round-trip, the JSON API), then
# stops it with SIGINT like Ctrl-C and checks that nginx exited.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
out=$(mktemp); jar=$(mktemp)
# Build first, so the wait below only covers nginx starting.
bash "$root/scripts/build-nginx.sh" >/dev/null
FEPHP_DEMO_LISTEN=127.0.0.1:$port setsid bash "$root/scripts/demo.sh" >"$out" 2>&1 </dev/null &
pid=$!
cleanup() { kill -INT -- -"$pid" 2>/dev/null || true; rm -f "$out" "$jar"; }
trap cleanup EXIT
url=http://127.0.0.1:$port
fail() {
    echo "demo-smoke: FAIL: $*" >&2
    echo "--- scripts/demo.sh output:" >&2; cat "$out" >&2
    echo "--- nginx error log (tail):" >&2; tail -5 "${CARGO_TARGET_DIR:-$root/target}/demo/logs/error.log" >&2 2>/dev/null || true
    exit 1
}
# Up to 5 minutes: demo.sh runs install-deps and build-nginx.sh again (no-ops after the build
# above, but cargo may wait for the target dir's lock on a busy machine).
up=0
for _ in $(seq 1500); do
    if grep -q "fephp_pass embedded serving" "$out" && curl -fs -o /dev/null "$url/api.php"; then up=1; break; fi
    kill -0 "$pid" 2>/dev/null || fail "scripts/demo.sh exited"
    sleep 0.2
done
[ $up = 1 ] || fail "the demo did not answer on $url within 5 minutes"
curl -fs -c "$jar" -b "$jar" "$url/" | grep -q "visited this page 1 time" || fail "home page"
code=$(curl -s -o /dev/null -w '%{http_code}' -c "$jar" -b "$jar" --data-urlencode "message=smoke <test>" "$url/")
[ "$code" = 303 ] || fail "form POST gave $code, wanted 303"
page=$(curl -fs -c "$jar" -b "$jar" "$url/")
grep -q "visited this page 3 time" <<<"$page" || fail "session counter"
grep -q "<li>smoke &lt;test&gt;</li>" <<<"$page" || fail "posted message"
[ "$(curl -fs "$url/api.php?n=3")" = '{"n":3,"squares":[1,4,9]}' ] || fail "JSON API"
grep -q "fephp_pass embedded serving" "$out" || fail "startup line"
kill -INT -- -"$pid"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "nginx still running after SIGINT"
echo "demo-smoke: ok (home page, form POST + redirect, session, JSON API, clean stop)"
