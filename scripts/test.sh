#!/usr/bin/env bash
# Runs every test of vcd-faas: unit and integration tests (real Docker engine, SQLite and
# PostgreSQL), then the Playwright end-to-end suite in Debian's Chromium against a real portal
# (SQLite) and, for the Nodes panel, a small real cluster (a front and a worker node, PostgreSQL).
# Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --for-tests
export PATH="$HOME/.cargo/bin:$PATH"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"

printf '\n==> Building the server\n'
cargo build -p server --bin vcd-faas
# The base images (network and disk, little CPU) are made while the rest compiles.
images_log=$(mktemp)
printf '\n==> Preparing the runtime base images in the background\n'
"$TARGET_DIR/debug/vcd-faas" prepare-images >"$images_log" 2>&1 &
images=$!
printf '\n==> Building the portal\n'
scripts/build-site.sh
if ! wait "$images"; then
  cat "$images_log" >&2
  echo "preparing the runtime base images failed (above)" >&2
  exit 1
fi
cat "$images_log"
rm -f "$images_log"

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
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
data_dir=$(mktemp -d)
server_pid="" front_pid="" node_pid="" cluster_db="" installation=""
pg_admin="${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"

# SIGTERM, then up to 30 s for the process to end (a node drains its containers), then SIGKILL.
stop_process() {
  local pid=$1
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
# The cluster's processes, then whatever its installation left on the engine, then its database.
stop_cluster() {
  stop_process "$node_pid"
  stop_process "$front_pid"
  node_pid="" front_pid=""
  [ -n "$cluster_db" ] || return 0
  if [ -z "$installation" ]; then
    installation=$(psql "${pg_admin%/*}/$cluster_db" -Atqc "SELECT value FROM settings WHERE key = 'installation_id'" 2>/dev/null || true)
  fi
  if [ -n "$installation" ]; then
    local label="label=vcd-faas.installation=$installation" left
    left=$(docker ps -aq --filter "$label" 2>/dev/null || true)
    if [ -n "$left" ]; then
      echo "the cluster left $(echo "$left" | wc -l) container(s) on the engine; removing them" >&2
      docker rm -f $left >/dev/null 2>&1 || true
    fi
    left=$(docker images -q --filter "$label" 2>/dev/null | sort -u || true)
    [ -z "$left" ] || docker rmi -f $left >/dev/null 2>&1 || true
  fi
  psql "$pg_admin" -qc "DROP DATABASE IF EXISTS $cluster_db WITH (FORCE)" >/dev/null 2>&1 || true
  cluster_db=""
}
cleanup() {
  [ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true
  kill "$(cat "$data_dir/registry/pid" 2>/dev/null)" 2>/dev/null || true
  [ -z "$server_pid" ] || wait "$server_pid" 2>/dev/null || true
  stop_cluster
  rm -rf "$data_dir" "$results"
}
trap cleanup EXIT

port=$(free_port)
export VCD_FAAS_ADMIN_PASSWORD="e2e-admin-$(date +%s)"
# The portal installs dependencies from a registry of the test's own, holding one package.
registry_port=$(free_port)
registry=$(tools/verdaccio/serve.sh "$data_dir/registry" "$registry_port" end2end/fixtures/e2e-greet)
VCD_FAAS_DATA_DIR="$data_dir" LEPTOS_SITE_ADDR="127.0.0.1:$port" VCD_FAAS_NPM_REGISTRY="$registry" \
  "$TARGET_DIR/debug/vcd-faas" >"$data_dir/server.log" 2>&1 &
server_pid=$!

# A small cluster for the Nodes panel (end2end/tests/nodes.spec.ts): a front that runs nothing
# itself and one worker node beside the same Docker engine, on a fresh PostgreSQL database of
# their own (so their own installation: they never touch the SQLite portal's containers).
cluster="$data_dir/cluster"
mkdir -p "$cluster/front" "$cluster/node"
cluster_db="vcdfaas_e2e_$(date +%s)_$$"
psql "$pg_admin" -v ON_ERROR_STOP=1 -qc "CREATE DATABASE $cluster_db"
front_port=$(free_port)
node_port=$(free_port)
export CLUSTER_URL="http://127.0.0.1:$front_port" CLUSTER_NODE_NAME=e2e-node \
  CLUSTER_NODE_ADDR="127.0.0.1:$node_port" CLUSTER_NODE_MEMORY_MB=2048 CLUSTER_NODE_CPUS=2
cluster_env=(
  DATABASE_URL="${pg_admin%/*}/$cluster_db"
  VCD_FAAS_SECRET_KEY="$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')"
  VCD_FAAS_CLUSTER_SECRET="$(python3 -c 'import secrets; print(secrets.token_hex(24))')"
)
env "${cluster_env[@]}" VCD_FAAS_LOCAL_WORKER=false VCD_FAAS_DATA_DIR="$cluster/front" \
  LEPTOS_SITE_ADDR="127.0.0.1:$front_port" "$TARGET_DIR/debug/vcd-faas" >"$cluster/front.log" 2>&1 &
front_pid=$!
cluster_logs() {
  for part in front node; do
    echo "--- the cluster $part's log ($cluster/$part.log), last 40 lines:" >&2
    tail -n 40 "$cluster/$part.log" >&2 2>/dev/null || true
  done
}
# One look at the cluster: 0 once the front answers and, for `node`, lists the node as up and
# the node itself answers on its address (it registers before it listens); else why not.
cluster_probe() {
  python3 - "$1" "$CLUSTER_URL" "$CLUSTER_NODE_NAME" "$CLUSTER_NODE_ADDR" <<'PY'
import json, os, sys, urllib.request
what, base, name, addr = sys.argv[1:]
def ask(url, body=None, token=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data, headers), timeout=5) as r:
        return r.read().decode()
try:
    answer = ask(base + "/api/v1/tokens", {"org": "provider", "username": "admin", "password": os.environ["VCD_FAAS_ADMIN_PASSWORD"]})
    nodes = json.loads(ask(base + "/api/v1/nodes", token=json.loads(answer)["token"]))
except Exception as e:
    sys.exit(f"the front at {base} does not answer yet ({e})")
if what == "front":
    sys.exit(0)
state = next((n["state"] for n in nodes if n["name"] == name), None)
if state != "up":
    sys.exit(f"the front lists no node {name} up yet ({[(n['name'], n['state']) for n in nodes]})")
try:
    health = ask(f"http://{addr}/cluster/v1/health")
except Exception as e:
    sys.exit(f"the node does not answer at {addr} yet ({e})")
sys.exit(0 if health == "ok" else f"{addr}/cluster/v1/health answers {health[:80]!r}, not the node's \"ok\"")
PY
}
# Waits until `cluster_probe $1` passes, or a process ended, or 60 s passed; says why on failure.
wait_for_cluster() {
  local what=$1 deadline=$((SECONDS + 60)) why="" pid
  while :; do
    for pid in $front_pid $node_pid; do
      kill -0 "$pid" 2>/dev/null || { echo "the cluster's $([ "$pid" = "$front_pid" ] && echo front || echo node) (pid $pid) exited" >&2; return 1; }
    done
    why=$(cluster_probe "$what" 2>&1) && return 0
    [ $SECONDS -lt $deadline ] || { echo "the cluster's $what is not ready after 60 s: $why" >&2; return 1; }
    sleep 1
  done
}
cluster_up=0
if wait_for_cluster front; then
  # The front made the database's tables (and its installation id): now the node.
  env "${cluster_env[@]}" VCD_FAAS_NODE_NAME="$CLUSTER_NODE_NAME" VCD_FAAS_NODE_ADDR="$CLUSTER_NODE_ADDR" \
    VCD_FAAS_NODE_MEMORY_MB="$CLUSTER_NODE_MEMORY_MB" VCD_FAAS_NODE_CPUS="$CLUSTER_NODE_CPUS" \
    VCD_FAAS_DATA_DIR="$cluster/node" "$TARGET_DIR/debug/vcd-faas" node >"$cluster/node.log" 2>&1 &
  node_pid=$!
  wait_for_cluster node || cluster_up=$?
else
  cluster_up=1
fi
installation=$(psql "${pg_admin%/*}/$cluster_db" -Atqc "SELECT value FROM settings WHERE key = 'installation_id'" 2>/dev/null || true)
if [ $cluster_up -eq 0 ]; then
  echo "cluster: front $CLUSTER_URL, node $CLUSTER_NODE_NAME at $CLUSTER_NODE_ADDR, database $cluster_db"
else
  # The Nodes spec still runs (and fails, saying what it misses); the run fails either way.
  echo "the cluster for the Nodes panel did not come up" >&2
  cluster_logs
fi

status=$(( cycles == 0 && cluster_up == 0 ? 0 : 1 ))
e2e=0
(cd end2end && BASE_URL="http://127.0.0.1:$port" PLAYWRIGHT_JSON_OUTPUT_NAME="$results/e2e.json" \
  npx playwright test --reporter=list,json) || e2e=$?
[ $e2e -eq 0 ] || status=$e2e
if [ $e2e -ne 0 ]; then
  echo "end-to-end tests failed; the portal's log:" >&2
  tail -n 50 "$data_dir/server.log" >&2
  # (Printed above already when the cluster did not come up.)
  [ $cluster_up -ne 0 ] || cluster_logs
fi
stop_cluster

printf '\n==> The REST API against its OpenAPI document (schemathesis, as the provider and as a tenant admin)\n'
fuzz=0
scripts/api-fuzz.sh "http://127.0.0.1:$port" || fuzz=$?
echo "$fuzz" >"$results/fuzz.status"
[ $fuzz -eq 0 ] || status=$fuzz

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
# The schemathesis run counts as one test per caller (it fails as a whole).
if (results / "fuzz.status").read_text().strip() == "0":
    passed += 2
else:
    failed += 2
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
