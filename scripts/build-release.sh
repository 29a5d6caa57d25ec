#!/usr/bin/env bash
# Builds vcd-faas for production, offline: the optimized server and site (no cargo-leptos, no
# wasm-opt download), packed with a systemd unit and a settings file into
# dist/vcd-faas-<version>-linux-x86_64.tar.gz. Installs only what building needs.
# Usage: scripts/build-release.sh
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
elapsed() { printf '%dm%02ds' $(( (SECONDS - started) / 60 )) $(( (SECONDS - started) % 60 )); }

scripts/setup.sh --build-only
export PATH="$HOME/.cargo/bin:$PATH"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"

printf '\n==> Building the release server and site (first time: 15–25 minutes on 2 cores)\n'
# The release site goes beside the release build, not over the development one in target/site.
site="$TARGET_DIR/site-release"
LEPTOS_SITE_ROOT="$site" scripts/build-site.sh --release

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
name="vcd-faas-$version-linux-$(uname -m)"
stage="dist/$name"
printf '\n==> Packing %s (at %s)\n' "$stage.tar.gz" "$(elapsed)"
rm -rf "$stage"
mkdir -p "$stage/bin"
install -m 0755 "$TARGET_DIR/release/vcd-faas" "$stage/bin/vcd-faas"
cp -r "$site" "$stage/site"
install -m 0644 deploy/vcd-faas.service deploy/vcd-faas.env "$stage/"
tar -C dist -czf "dist/$name.tar.gz" "$name"
printf '==> %s: %s (binary %s, site %s), built in %s\n' "dist/$name.tar.gz" \
  "$(du -h "dist/$name.tar.gz" | cut -f1)" "$(du -h "$stage/bin/vcd-faas" | cut -f1)" "$(du -sh "$stage/site" | cut -f1)" "$(elapsed)"
