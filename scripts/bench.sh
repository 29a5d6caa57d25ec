#!/usr/bin/env bash
# Benchmark: cold and warm calls, throughput at 1/16/64 clients, platform against the engine's
# floor and against direct requests to the same containers. Prints a table and writes
# bench-results.json. Settings: BENCH_COLD_SAMPLES, BENCH_WARM_SAMPLES, BENCH_LOAD_SECS,
# BENCH_SOAK_SECS, BENCH_INSTANCES, BENCH_OUTPUT, BENCH_LANGUAGES (e.g. `python`; default all),
# BENCH_PRESTARTED_MB and BENCH_STEM_CELLS (the paused containers kept ahead of cold starts).
# A tenant on gVisor is measured too when the engine has runsc.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
printf '\n==> Building the server and the benchmark (release)\n'
cargo build --release -p server --bin vcd-faas --bin vcd-faas-bench
"$TARGET_DIR/release/vcd-faas" prepare-images
printf '\n==> Running the benchmark\n'
exec "$TARGET_DIR/release/vcd-faas-bench"
