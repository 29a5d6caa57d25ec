#!/usr/bin/env bash
# Runs the vcd-faas portal at http://127.0.0.1:3000 (or LEPTOS_SITE_ADDR) on embedded defaults:
# SQLite under data/, the local Docker engine. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"

started=$SECONDS
elapsed() { printf '%dm%02ds' $(( (SECONDS - started) / 60 )) $(( (SECONDS - started) % 60 )); }

printf '\n==> Building the server (first build: about 4 minutes on 2 cores)\n'
cargo build -p server --bin vcd-faas
printf '==> server built at %s\n' "$(elapsed)"

# The base images come from Debian's mirrors (network and disk, little CPU): made while the
# rest of the portal compiles.
images_log="$TARGET_DIR/prepare-images.log"
printf '\n==> Preparing the runtime base images in the background (first time: 3–4 minutes; log: %s)\n' "$images_log"
"$TARGET_DIR/debug/vcd-faas" prepare-images >"$images_log" 2>&1 &
images=$!

printf '\n==> Building the portal (the app for the browser and the site)\n'
scripts/build-site.sh
printf '==> portal built at %s\n' "$(elapsed)"

printf '\n==> Waiting for the runtime base images\n'
if ! wait "$images"; then
  cat "$images_log" >&2
  echo "preparing the runtime base images failed (above)" >&2
  exit 1
fi
cat "$images_log"
printf '==> base images ready at %s\n' "$(elapsed)"

printf '\n==> Starting vcd-faas (%s after the build began)\n' "$(elapsed)"
exec "$TARGET_DIR/debug/vcd-faas" "$@"
