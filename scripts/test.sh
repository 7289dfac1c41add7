#!/usr/bin/env bash
# Runs every test of fe-php against the real parts (php-fpm, libphp, nginx): installs what is
# missing (as root), builds, then runs
#   1. the Rust suites (unit tests, integration tests against a real php-fpm and the real
#      libphp, the C ABI tests under valgrind and the Go test),
#   2. the Test::Nginx suite in t/ against nginx + the module (t/run.sh starts its php-fpm),
#   3. a smoke test of the README's main command (scripts/demo.sh),
#   4. the Debian package (scripts/test-deb.sh): built against nginx-dev, installed with apt-get,
#      t/ run against Debian's /usr/sbin/nginx with the installed module, purged (≈ 1.5 min;
#      ≈ 4 min the first time, when it builds the module against nginx-dev).
# Usage: bash scripts/test.sh
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

bash scripts/install-deps.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
export CARGO_TERM_COLOR=never

echo "== cargo build --release --workspace (libfephp.so/.a, fe-php, the nginx module; nginx installed under target/nginx)"
bash scripts/build-nginx.sh >/dev/null
echo "== cargo test --release --workspace"
cargo test --release --workspace 2>&1 | grep -vE '^test .* \.\.\. ok$|^\s*Compiling |^$'

echo "== Test::Nginx suite (prove -r t/)"
bash t/run.sh

echo "== demo smoke test (scripts/demo.sh)"
bash scripts/demo-smoke.sh

echo "== Debian package (scripts/test-deb.sh)"
bash scripts/test-deb.sh
