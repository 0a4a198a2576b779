#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests need (idempotent; apt-get needs
# root), then checks formatting and lints and runs every test, interop tests included.
set -euo pipefail
cd "$(dirname "$0")"
export SPORE_SHARED="${SPORE_SHARED:-$(cd .. && pwd)/shared}"
[ -d "$SPORE_SHARED" ] || { echo "error: ../shared not found (set SPORE_SHARED)" >&2; exit 1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

echo "== installing reference peers and tools"
as_root bash "$SPORE_SHARED/peers/install.sh"
# Headless Chromium renders the tracker's web page in its test.
if ! command -v chromium >/dev/null; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest

echo "== formatting and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== tests"
cargo nextest run --workspace --locked --no-fail-fast
cargo test --workspace --locked --doc
