#!/usr/bin/env bash
# Makes a fresh clone runnable, and is quick when it already is: dependencies and nats-server (side
# by side: one waits on the network, the other on Go's compiler), then the build.
#   setup.sh            the whole build (tsc per package, then the programs): what tests and benches use
#   setup.sh --programs only the programs, bundled by esbuild from the sources (scripts/bundle.mjs):
#                       what `npm start` runs, in seconds instead of minutes; types are checked by the first
# Each step says what it does and how long it took; a failing step is named with what to do.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export TURBO_TELEMETRY_DISABLED=1
started=$SECONDS
case "${1:-}" in
  "") build=workspace ;;
  --programs) build=programs ;;
  *) echo "setup: unknown option $1 (usage: setup.sh [--programs])" >&2; exit 2 ;;
esac

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

nats_step() {
  step "nats-server (built once per machine with Go, about 2 minutes; then cached)" \
    "See the message above; scripts/ensure-nats-server.sh needs Go (https://go.dev/dl) or Debian's nats-server package." \
    bash scripts/ensure-nats-server.sh
}
nats_step &
nats=$!

# `npm ci`: exactly the locked versions, and a lockfile out of step with package.json is an error
# (run `npm install` to update it) rather than a silent re-resolve.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  step "installing dependencies (npm ci, about a minute the first time)" \
    "Is the npm registry reachable (npm config get registry)? If package.json changed, run npm install to update package-lock.json." \
    npm ci --no-audit --no-fund --loglevel=error
else
  echo "setup: dependencies: up to date" >&2
fi
wait "$nats" || exit 1

if [ "$build" = programs ]; then
  if node scripts/bundle.mjs --up-to-date; then
    echo "setup: programs: up to date" >&2
  else
    step "bundling the services, the sandbox and the CLI (esbuild)" \
      "A syntax error is shown above; npm run build shows type errors too." \
      node scripts/bundle.mjs
  fi
else
  # One line per package as turbo builds it (or replays it from its cache).
  step "building the workspace (turbo: tsc per package, then the programs)" \
    "A TypeScript error is shown above; npm run build repeats it." \
    npx turbo run build --output-logs=new-only --log-prefix=task
fi
echo "setup: ready in $((SECONDS - started)) s" >&2
