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

results=$(mktemp -d)
printf '\n==> Import circles between modules (there must be none)\n'
cycles=0
python3 scripts/import-cycles.py || cycles=$?
echo "$cycles" >"$results/cycles.status"

printf '\n==> Unit and integration tests\n'
cargo test -p app --features ssr 2>&1 | tee "$results/cargo-app.log"
cargo test -p server 2>&1 | tee "$results/cargo-server.log"

printf '\n==> The editor bundle'"'"'s own tests (its zip reader)\n'
(cd editor && npm test) 2>&1 | tee "$results/editor.log"

printf '\n==> End-to-end tests (Playwright, Chromium)\n'
data_dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export VCD_FAAS_ADMIN_PASSWORD="e2e-admin-$(date +%s)"
# The portal installs dependencies from a registry of the test's own, holding one package.
registry_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
registry=$(tools/verdaccio/serve.sh "$data_dir/registry" "$registry_port" end2end/fixtures/e2e-greet)
VCD_FAAS_DATA_DIR="$data_dir" LEPTOS_SITE_ADDR="127.0.0.1:$port" VCD_FAAS_NPM_REGISTRY="$registry" \
  "$TARGET_DIR/debug/vcd-faas" >"$data_dir/server.log" 2>&1 &
server_pid=$!
cleanup() {
  kill "$server_pid" 2>/dev/null || true
  kill "$(cat "$data_dir/registry/pid" 2>/dev/null)" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  rm -rf "$data_dir" "$results"
}
trap cleanup EXIT
status=$(( cycles == 0 ? 0 : 1 ))
e2e=0
(cd end2end && BASE_URL="http://127.0.0.1:$port" PLAYWRIGHT_JSON_OUTPUT_NAME="$results/e2e.json" \
  npx playwright test --reporter=list,json) || e2e=$?
[ $e2e -eq 0 ] || status=$e2e
if [ $e2e -ne 0 ]; then
  echo "end-to-end tests failed; the portal's log:" >&2
  tail -n 50 "$data_dir/server.log" >&2
fi

# One closing line for the whole run: cargo's and Playwright's counts added up.
python3 - "$results" <<'PY'
import json, pathlib, re, sys
results = pathlib.Path(sys.argv[1])
passed = failed = 0
for log in results.glob("cargo-*.log"):
    for p, f in re.findall(r"test result: \w+\. (\d+) passed; (\d+) failed", log.read_text()):
        passed, failed = passed + int(p), failed + int(f)
editor = (results / "editor.log").read_text()
for key, count in re.findall(r"^# (pass|fail) (\d+)$", editor, re.M):
    if key == "pass":
        passed += int(count)
    else:
        failed += int(count)
# The import-circle check counts as one test.
if (results / "cycles.status").read_text().strip() == "0":
    passed += 1
else:
    failed += 1
e2e = results / "e2e.json"
if e2e.exists():
    stats = json.loads(e2e.read_text())["stats"]
    passed += stats.get("expected", 0)
    failed += stats.get("unexpected", 0) + stats.get("flaky", 0)
else:
    failed += 1
print(f"all: {passed} passed, {failed} failed")
PY
exit $status
