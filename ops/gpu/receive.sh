#!/usr/bin/env bash
# Run on the lent machine by each device call that carries a piece of the bundle (ops/gpu/README.md):
# moves what arrived under ops/gpu/out/ to /tmp/dinostream-kit, where it outlasts the call while the
# machine stays warm, and lists what is there.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
kit_dir="${1:-/tmp/dinostream-kit}"
mkdir -p "$kit_dir"
for p in "$here"/out/bundle.tar.xz.part-* "$here"/out/bundle.sha256; do
  [ -f "$p" ] && cp "$p" "$kit_dir/"
done
ls -l "$kit_dir"
df -h "$kit_dir" | tail -1
