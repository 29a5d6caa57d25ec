#!/usr/bin/env bash
# Starts a throwaway verdaccio on 127.0.0.1:PORT with its storage in DIR, waits until it
# answers, and publishes the package folders given after them. Prints the registry URL.
# Usage: tools/verdaccio/serve.sh DIR PORT [PACKAGE_DIR...]   (stop it: kill "$(cat DIR/pid)")
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="$1"; port="$2"; shift 2
mkdir -p "$dir"
cp "$here/config.yaml" "$dir/config.yaml"
setsid "$here/node_modules/.bin/verdaccio" --config "$dir/config.yaml" --listen "127.0.0.1:$port" \
  >"$dir/verdaccio.log" 2>&1 </dev/null &
echo $! >"$dir/pid"
url="http://127.0.0.1:$port/"
for _ in $(seq 1 100); do curl -sf "${url}-/ping" >/dev/null && break; sleep 0.1; done
curl -sf "${url}-/ping" >/dev/null || { cat "$dir/verdaccio.log" >&2; exit 1; }
for package in "$@"; do
  # Anonymous publishing is allowed; npm wants some token to send.
  (cd "$package" && npm publish --registry "$url" "--//127.0.0.1:$port/:_authToken=test" --loglevel=warn >/dev/null)
done
echo "$url"
