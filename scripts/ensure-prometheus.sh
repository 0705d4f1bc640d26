#!/usr/bin/env bash
# Finds or fetches Prometheus (with promtool) and Alertmanager from Debian's packages (../shared/K8S.md):
# `apt-get download` and `dpkg -x` unpack them without installing a service. Kept outside the clone
# (CI clones afresh on the same machine).
#
# Usage: scripts/ensure-prometheus.sh [--print-dir] [--check]
#   --print-dir  prints the directory holding bin/promtool, bin/prometheus and bin/alertmanager
#   --check      fetches nothing: exit 1, naming what is missing, unless everything is there
set -euo pipefail

PROMETHEUS_VERSION=2.42.0
ALERTMANAGER_VERSION=0.25.0
dir=${PROMETHEUS_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/qbo-webhooks/prometheus-$PROMETHEUS_VERSION-alertmanager-$ALERTMANAGER_VERSION}

print_dir=false check=false
for arg in "$@"; do
  case $arg in
    --print-dir) print_dir=true ;;
    --check) check=true ;;
    *) echo "usage: scripts/ensure-prometheus.sh [--print-dir] [--check]" >&2; exit 2 ;;
  esac
done

if [ ! -x "$dir/bin/promtool" ] || [ ! -x "$dir/bin/prometheus" ] || [ ! -x "$dir/bin/alertmanager" ]; then
  if $check; then
    echo "prometheus: promtool, prometheus or alertmanager missing in $dir (scripts/ensure-prometheus.sh fetches them)" >&2
    exit 1
  fi
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && apt-get download "prometheus=$PROMETHEUS_VERSION*" "prometheus-alertmanager=$ALERTMANAGER_VERSION*" >/dev/null 2>&1) || {
    echo "prometheus: apt-get download of Debian's prometheus $PROMETHEUS_VERSION and prometheus-alertmanager $ALERTMANAGER_VERSION failed (is Debian's package index reachable? apt-get update)" >&2
    exit 1
  }
  for deb in "$work"/*.deb; do dpkg -x "$deb" "$work/root"; done
  mkdir -p "$dir.tmp/bin"
  cp "$work/root/usr/bin/promtool" "$work/root/usr/bin/prometheus" "$dir.tmp/bin/"
  cp "$work/root/usr/bin/prometheus-alertmanager" "$dir.tmp/bin/alertmanager"
  rm -rf "$dir"
  mv "$dir.tmp" "$dir"
  echo "prometheus: fetched $("$dir/bin/promtool" --version 2>&1 | head -1) and alertmanager into $dir" >&2
fi
if $print_dir; then echo "$dir"; fi
