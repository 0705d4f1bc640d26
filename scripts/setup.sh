#!/usr/bin/env bash
# Makes a fresh clone runnable, and is quick when it already is: dependencies, nats-server, build.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export TURBO_TELEMETRY_DISABLED=1

# `npm ci`: exactly the locked versions, and a lockfile out of step with package.json is an error
# (run `npm install` to update it) rather than a silent re-resolve.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing dependencies" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi
bash scripts/ensure-nats-server.sh
npx turbo run build --output-logs=errors-only
