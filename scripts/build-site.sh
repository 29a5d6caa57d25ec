#!/usr/bin/env bash
# Builds the portal as `cargo leptos build` did, with cargo alone: the server binary, the app
# for the browser (wasm), then the site in target/site (tools/site: wasm-bindgen as a library,
# the style sheet, public/). Nothing to install but the wasm32-unknown-unknown target.
# Usage: scripts/build-site.sh [--release]
#
# No RUSTFLAGS: [workspace.metadata.leptos] sets disable-erase-components, so cargo-leptos passed
# none either, and the server built here is the one `cargo test` builds. LEPTOS_OUTPUT_NAME,
# which leptos reads at compile time to name the wasm file in the page, comes from
# .cargo/config.toml for every cargo command.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"

RELEASE=0
case "${1:-}" in
  "") ;;
  --release) RELEASE=1 ;;
  *) echo "usage: scripts/build-site.sh [--release]" >&2; exit 2 ;;
esac

if [ $RELEASE = 1 ]; then
  server_args=(--release)
  front_args=(--profile wasm-release)
  front_dir=wasm-release
else
  server_args=()
  front_args=()
  front_dir=debug
fi

# Microseconds since the epoch; seconds since $1 (in microseconds) with one decimal.
now_us() { echo "${EPOCHREALTIME/[.,]/}"; }
since() { local tenths=$(( ($(now_us) - $1) / 100000 )); echo "$((tenths / 10)).$((tenths % 10)) s"; }
total_start=$(now_us)
# step TITLE COMMAND...: prints the step and the command, runs it, prints its time.
step() {
  local title=$1 start
  shift
  printf '\n--> %s\n    %s\n' "$title" "$*"
  start=$(now_us)
  "$@"
  printf -- '--> %s: done in %s\n' "$title" "$(since "$start")"
}

step "Server binary ($TARGET_DIR/$([ $RELEASE = 1 ] && echo release || echo debug)/vcd-faas)" \
  cargo build -p server --bin vcd-faas "${server_args[@]}"
step "App for the browser (wasm32-unknown-unknown, features hydrate)" \
  cargo build -p app --lib --target wasm32-unknown-unknown --no-default-features --features hydrate \
  --target-dir "$TARGET_DIR/front" "${front_args[@]}"
# The site tool is built optimized (once, ~1.5 min on 2 cores): wasm-bindgen on the 22 MB debug
# module then takes ~3 s, not the ~15 s of a debug build of the tool.
step "Site (target/site: wasm-bindgen, style, public/)" \
  cargo run --release -p vcd-faas-site -- \
  --wasm "$TARGET_DIR/front/wasm32-unknown-unknown/$front_dir/app.wasm"

printf '\n--> Portal built in %s\n' "$(since "$total_start")"
