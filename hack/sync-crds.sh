#!/usr/bin/env bash
# Copies the CRDs (crds/, the one source) into the Helm chart (charts/kaci/crds/),
# byte for byte, and removes chart copies whose source is gone.
# tests/unit/test_chart_crds.py fails when the two differ: run this after editing crds/.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/crds"
dst="$root/charts/kaci/crds"
mkdir -p "$dst"
for f in "$dst"/*.yaml; do
  [ -e "$f" ] || continue
  [ -e "$src/$(basename "$f")" ] || { rm -f "$f"; echo "removed $(basename "$f")"; }
done
for f in "$src"/*.yaml; do
  cmp -s "$f" "$dst/$(basename "$f")" || { cp "$f" "$dst/"; echo "copied $(basename "$f")"; }
done
