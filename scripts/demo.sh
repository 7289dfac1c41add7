#!/usr/bin/env bash
# Installs what is missing (as root), builds fe-php, and serves the bundled example app
# (examples/app) on http://127.0.0.1:8080 until Ctrl-C.
# Usage: bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release --quiet --bin fe-php
echo "fe-php: serving examples/app on http://127.0.0.1:8080 (Ctrl-C to stop)"
exec "$CARGO_TARGET_DIR/release/fe-php" serve --config config.toml
