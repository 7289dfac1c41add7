#!/usr/bin/env bash
# Regenerates include/fephp.h from src/capi/ with cbindgen (as a library, through
# tests/capi_header.rs: no cbindgen CLI needed). Commit the result.
set -euo pipefail
cd "$(dirname "$0")/.."
FEPHP_BLESS_HEADER=1 cargo test --release --test capi_header -- --test-threads=1 committed_header_matches_the_code
git --no-pager diff --stat -- include/fephp.h || true
