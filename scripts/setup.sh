#!/usr/bin/env bash
# Installs what vcd-faas needs on Debian 12, idempotently and with visible progress.
# Usage: scripts/setup.sh [--for-tests | --build-only]
set -euo pipefail
cd "$(dirname "$0")/.."

FOR_TESTS=0 BUILD_ONLY=0
case "${1:-}" in
  --for-tests) FOR_TESTS=1 ;;
  # What building a release needs (scripts/build-release.sh): no engine, no gVisor.
  --build-only) BUILD_ONLY=1 ;;
esac

step() { printf '\n==> [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }
have() { command -v "$1" >/dev/null 2>&1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

export PATH="$HOME/.cargo/bin:$PATH"

apt_updated=0
apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  step "Installing Debian packages: ${missing[*]}"
  if [ $apt_updated = 0 ]; then as_root apt-get update -q; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
}

if [ $BUILD_ONLY = 0 ]; then
step "Checking system packages"
apt_install docker.io mmdebstrap ca-certificates
# The cluster tests put engines in network namespaces (ip, nsenter); the MQTT tests start a
# private Mosquitto each (vCD's broker, behind vcd-sim).
[ $FOR_TESTS = 1 ] && apt_install chromium postgresql-client iproute2 util-linux mosquitto

step "Checking the Docker engine"
if ! docker info >/dev/null 2>&1; then
  echo "no Docker engine answers; starting dockerd (log: /var/log/vcd-faas-dockerd.log)"
  # Function containers run with --network none, so the engine needs no bridge or iptables.
  as_root setsid sh -c 'exec dockerd --iptables=false --bridge=none >/var/log/vcd-faas-dockerd.log 2>&1 </dev/null &'
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/vcd-faas-dockerd.log" >&2; exit 1; }
fi
echo "Docker engine $(docker version --format '{{.Server.Version}}' 2>/dev/null) is running"

step "Checking gVisor (Debian's runsc, registered with the engine as runtime \"runsc\" for tenants on gVisor)"
apt_install runsc
if ! docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"'; then
  scripts/register-gvisor.sh
fi
echo "$(runsc --version | head -n1), registered with the engine"
fi

if [ $FOR_TESTS = 1 ]; then
  step "Checking PostgreSQL (tests run every store query on it too)"
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    echo "starting PostgreSQL"
    as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  fi
  pg_isready -h 127.0.0.1 -p 5432
fi

step "Checking the Rust toolchain"
if ! have cargo; then
  echo "cargo is missing: install Rust with rustup first" >&2
  exit 1
fi
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
# No cargo-leptos, no wasm-bindgen-cli: scripts/build-site.sh builds the site with cargo alone.
echo "$(cargo --version), target wasm32-unknown-unknown installed"

step "Checking the code editor bundle (CodeMirror 6 from npm, into public/editor/)"
have npm || apt_install nodejs npm
bundle=public/editor/editor.js
# Rebuilt when missing or older than anything it is made from; scripts/build-site.sh copies public/ into the site.
if [ ! -f "$bundle" ] || [ -n "$(find editor/src editor/package.json editor/package-lock.json -newer "$bundle" | head -n1)" ]; then
  if [ ! -f editor/node_modules/.package-lock.json ] || [ editor/package-lock.json -nt editor/node_modules/.package-lock.json ]; then
    echo "installing the editor's npm packages"
    (cd editor && npm ci --no-audit --no-fund)
  fi
  echo "bundling $bundle"
  (cd editor && npm run --silent build)
fi
echo "editor bundle: $(du -k "$bundle" | cut -f1) KB"

if [ $FOR_TESTS = 1 ]; then
  step "Checking Playwright (end-to-end tests drive Debian's Chromium)"
  if [ ! -d end2end/node_modules/@playwright/test ]; then
    (cd end2end && npm ci --no-audit --no-fund)
  fi
  echo "Playwright $(cd end2end && npx playwright --version)"

  step "Checking verdaccio (the npm registry dependency tests start on 127.0.0.1)"
  if [ ! -x tools/verdaccio/node_modules/.bin/verdaccio ]; then
    (cd tools/verdaccio && npm ci --no-audit --no-fund)
  fi
  echo "verdaccio $(tools/verdaccio/node_modules/.bin/verdaccio --version)"

  step "Checking schemathesis (PyPI; the REST API is fuzzed against its OpenAPI document)"
  if [ ! -x tools/schemathesis/.venv/bin/schemathesis ]; then
    python3 -m venv --help >/dev/null 2>&1 || apt_install python3-venv
    python3 -m venv tools/schemathesis/.venv
    tools/schemathesis/.venv/bin/pip install --quiet "schemathesis==4.32.5"
  fi
  echo "$(tools/schemathesis/.venv/bin/schemathesis --version)"

  step "Checking the real Python wheels a test installs from its own index (requests, from PyPI)"
  if [ ! -f tools/wheels/complete ]; then
    python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
    rm -rf tools/wheels
    python3 -m pip download --quiet --only-binary=:all: --dest tools/wheels "requests==2.32.3"
    touch tools/wheels/complete
  fi
  echo "wheels: $(cd tools/wheels && ls *.whl | tr '\n' ' ')"
fi
