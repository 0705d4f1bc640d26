#!/usr/bin/env bash
# Finds or installs the nats-server that tests, `npm start` and benches run, into .tools/bin.
# Order: the pinned build in .tools/bin; the one cached outside the clone (a fresh clone on the same
# machine, as CI makes, need not build again); a build of the pinned release with Go; a nats-server
# already on PATH; Debian's package (2.9, older than we test against) where Go is missing.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
version=$(tr -d '[:space:]' <"$root/tools/nats-server.version")
bin_dir="$root/.tools/bin"
bin="$bin_dir/nats-server"
mkdir -p "$bin_dir"

cache_dir="${XDG_CACHE_HOME:-$HOME/.cache}/qbo-webhooks/nats-server-v$version"
pinned() { [ -x "$1" ] && "$1" --version 2>/dev/null | grep -q "v$version\$"; }

if pinned "$bin"; then
  exit 0
fi
if pinned "$cache_dir/nats-server"; then
  cp "$cache_dir/nats-server" "$bin"
  exit 0
fi

if command -v go >/dev/null 2>&1; then
  echo "setup: building nats-server v$version with Go (cached in $cache_dir; runs once per machine)" >&2
  mkdir -p "$cache_dir"
  GOBIN="$cache_dir" go install "github.com/nats-io/nats-server/v2@v$version"
  cp "$cache_dir/nats-server" "$bin"
  exit 0
fi

if ! command -v nats-server >/dev/null 2>&1; then
  echo "setup: Go is missing; installing Debian's nats-server (older than the pinned v$version)" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: run as root, or install Go (https://go.dev/dl) so the pinned release can be built" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >/dev/null
fi
found=$(command -v nats-server)
echo "setup: using $found ($("$found" --version)); pinned is v$version" >&2
ln -sf "$found" "$bin"
