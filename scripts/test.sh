#!/usr/bin/env bash
# Runs every test of vcd-faas: unit and integration tests (real Docker engine, SQLite and
# PostgreSQL), then the Playwright end-to-end suite in Debian's Chromium against a real portal.
# Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --for-tests
export PATH="$HOME/.cargo/bin:$PATH"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"

printf '\n==> Building the portal\n'
cargo leptos build

printf '\n==> Preparing the runtime base images\n'
"$TARGET_DIR/debug/vcd-faas" prepare-images

printf '\n==> Unit and integration tests\n'
cargo test -p app --features ssr
cargo test -p server

printf '\n==> End-to-end tests (Playwright, Chromium)\n'
data_dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export VCD_FAAS_ADMIN_PASSWORD="e2e-admin-$(date +%s)"
VCD_FAAS_DATA_DIR="$data_dir" LEPTOS_SITE_ADDR="127.0.0.1:$port" \
  "$TARGET_DIR/debug/vcd-faas" >"$data_dir/server.log" 2>&1 &
server_pid=$!
cleanup() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  rm -rf "$data_dir"
}
trap cleanup EXIT
status=0
(cd end2end && BASE_URL="http://127.0.0.1:$port" npx playwright test) || status=$?
if [ $status -ne 0 ]; then
  echo "end-to-end tests failed; the portal's log:" >&2
  tail -n 50 "$data_dir/server.log" >&2
fi
exit $status
