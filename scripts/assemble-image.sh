#!/usr/bin/env bash
# The file tree of the image's last stage, assembled into <dest>: each program as one bundled file
# (scripts/bundle.mjs; its npm dependencies inside, so no node_modules), with its source map. The Dockerfile runs this in its build stage and copies <dest> to /app; a test runs it into a
# temp dir and starts every service from there, so what the image holds is what CI proved.
#
# Usage: scripts/assemble-image.sh <dest>   (after npm ci)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest=${1:?usage: scripts/assemble-image.sh <dest>}
mkdir -p "$dest"
node "$root/scripts/bundle.mjs"
node "$root/scripts/bundle.mjs" --list | while read -r program; do
  cp "$program" "$program.map" "$dest/"
done
