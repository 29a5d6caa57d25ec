#!/usr/bin/env bash
# Runs the vcd-faas portal at http://127.0.0.1:3000 (or LEPTOS_SITE_ADDR) on embedded defaults:
# SQLite under data/, the local Docker engine. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"

printf '\n==> Building the portal (first build: about 5 minutes on 2 cores)\n'
scripts/build-site.sh

printf '\n==> Preparing the runtime base images (first time: about a minute each)\n'
"$TARGET_DIR/debug/vcd-faas" prepare-images

printf '\n==> Starting vcd-faas\n'
exec "$TARGET_DIR/debug/vcd-faas" "$@"
