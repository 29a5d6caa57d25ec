#!/usr/bin/env bash
# Cluster benchmark: calls/s, p50/p99 and the front's CPU per call through a front with its
# local worker, then forwarded to 1, 2 and 3 worker nodes (each its own dockerd in its own
# network namespace, as in tests/cluster.rs). Settings: BENCH_CLUSTER_SECS (10),
# BENCH_CLUSTER_CLIENTS (16). Needs root (network namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --for-tests
export PATH="$HOME/.cargo/bin:$PATH"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
printf '\n==> Building the server and the cluster test (release)\n'
cargo build --release -p server --bin vcd-faas
"$TARGET_DIR/release/vcd-faas" prepare-images
printf '\n==> Running the cluster benchmark\n'
exec cargo test --release -p server --test cluster bench_forwarded_calls_against_local_ones -- --ignored --nocapture
