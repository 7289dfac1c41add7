#!/usr/bin/env bash
# Runs every test of fe-php against the real parts (php-fpm, libphp, nginx): installs what is
# missing (as root), builds, runs the Rust suites, then the Test::Nginx suite in t/.
# Usage: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bash scripts/install-deps.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
export CARGO_TERM_COLOR=never

echo "== cargo test (unit + integration against real php-fpm and libphp)"
cargo test --release --workspace --quiet 2>&1
