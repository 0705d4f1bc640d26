#!/usr/bin/env bash
# Finds or fetches Prometheus with promtool (Debian's package, ../shared/K8S.md: `apt-get download` and
# `dpkg -x` unpack it without installing a service) and Alertmanager (built from the Go module proxy:
# Debian's build reads its default notification template from /usr/share, which only installing the
# package puts there; the upstream build carries it inside). Kept outside the clone (CI clones afresh on
# the same machine); the Alertmanager build costs about a minute of CPU once.
#
# Usage: scripts/ensure-prometheus.sh [--print-dir] [--check]
#   --print-dir  prints the directory holding bin/promtool, bin/prometheus and bin/alertmanager
#   --check      fetches nothing: exit 1, naming what is missing, unless everything is there
set -euo pipefail

PROMETHEUS_VERSION=2.42.0
ALERTMANAGER_VERSION=v0.25.0
dir=${PROMETHEUS_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/qbo-webhooks/prometheus-$PROMETHEUS_VERSION-alertmanager-$ALERTMANAGER_VERSION}
bin=$dir/bin
export GOFLAGS=-buildvcs=false GOTOOLCHAIN=local CGO_ENABLED=0

print_dir=false check=false
for arg in "$@"; do
  case $arg in
    --print-dir) print_dir=true ;;
    --check) check=true ;;
    *) echo "usage: scripts/ensure-prometheus.sh [--print-dir] [--check]" >&2; exit 2 ;;
  esac
done

missing=()
{ [ -x "$bin/promtool" ] && [ -x "$bin/prometheus" ]; } || missing+=("prometheus $PROMETHEUS_VERSION")
[ -x "$bin/alertmanager" ] || missing+=("alertmanager $ALERTMANAGER_VERSION")
if [ ${#missing[@]} -gt 0 ] && $check; then
  echo "prometheus: missing in $dir: ${missing[*]} (scripts/ensure-prometheus.sh fetches them)" >&2
  exit 1
fi
mkdir -p "$bin"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ ! -x "$bin/prometheus" ] || [ ! -x "$bin/promtool" ]; then
  (cd "$work" && apt-get download "prometheus=$PROMETHEUS_VERSION*" >/dev/null 2>&1) || {
    echo "prometheus: apt-get download of Debian's prometheus $PROMETHEUS_VERSION failed (is Debian's package index reachable? apt-get update)" >&2
    exit 1
  }
  dpkg -x "$work"/prometheus_*.deb "$work/root"
  cp "$work/root/usr/bin/promtool" "$work/root/usr/bin/prometheus" "$bin/"
  echo "prometheus: fetched $("$bin/promtool" --version 2>&1 | head -1)" >&2
fi
if [ ! -x "$bin/alertmanager" ]; then
  echo "prometheus: building alertmanager $ALERTMANAGER_VERSION (about a minute of CPU, once)" >&2
  GOBIN=$work go install -trimpath -ldflags "-s -w" "github.com/prometheus/alertmanager/cmd/alertmanager@$ALERTMANAGER_VERSION"
  mv "$work/alertmanager" "$bin/alertmanager"
fi
if $print_dir; then echo "$dir"; fi
