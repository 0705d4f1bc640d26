#!/usr/bin/env bash
# Makes a fresh clone runnable, and is quick when it already is: dependencies, nats-server, build.
# Each step says what it does and how long it took; a failing step is named with what to do.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export TURBO_TELEMETRY_DISABLED=1
started=$SECONDS

# step <what> <what to do if it fails> <command...>
step() {
  local what=$1 fix=$2 begun=$SECONDS
  shift 2
  echo "setup: $what ..." >&2
  if ! "$@"; then
    echo "setup: FAILED: $what (after $((SECONDS - begun)) s). $fix" >&2
    exit 1
  fi
  echo "setup: $what: done in $((SECONDS - begun)) s" >&2
}

# `npm ci`: exactly the locked versions, and a lockfile out of step with package.json is an error
# (run `npm install` to update it) rather than a silent re-resolve.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  step "installing dependencies (npm ci, about a minute the first time)" \
    "Is the npm registry reachable (npm config get registry)? If package.json changed, run npm install to update package-lock.json." \
    npm ci --no-audit --no-fund --loglevel=error
else
  echo "setup: dependencies: up to date" >&2
fi
step "nats-server (built once per machine with Go, about 2 minutes; then cached)" \
  "See the message above; scripts/ensure-nats-server.sh needs Go (https://go.dev/dl) or Debian's nats-server package." \
  bash scripts/ensure-nats-server.sh
# One line per package as turbo builds it (or replays it from its cache).
step "building the workspace (turbo, tsc per package)" \
  "A TypeScript error is shown above; npm run build repeats it." \
  npx turbo run build --output-logs=new-only --log-prefix=task
echo "setup: ready in $((SECONDS - started)) s" >&2
