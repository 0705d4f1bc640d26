#!/usr/bin/env bash
# Makes a fresh clone runnable, and is quick when it already is: dependencies, nats-server, build.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export TURBO_TELEMETRY_DISABLED=1

# `npm install`, not `npm ci`: npm 11 records only this platform's optional binaries (biome, turbo)
# in the lockfile when the registry serves no others, and `npm ci` then refuses the lockfile as out
# of sync. `npm install` still installs the locked versions.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing dependencies" >&2
  npm install --no-audit --no-fund --loglevel=error
fi
bash scripts/ensure-nats-server.sh
npx turbo run build --output-logs=errors-only
