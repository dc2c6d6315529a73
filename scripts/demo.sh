#!/usr/bin/env bash
# The README's main command: installs what moec needs, builds it, compiles the
# demo model and evaluates it on CPU on a real text (byte-level King James
# Bible, public domain).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MOEC_BUILD_DIR:-$root/build}"
out="${MOEC_DEMO_DIR:-$build/demo}"

"$root/scripts/setup.sh"
"$root/scripts/build.sh"
mkdir -p "$out"

echo "== moec: compile models/demo-kjv.yaml"
"$build/bin/moec" "$root/models/demo-kjv.yaml" -o "$out/demo-kjv.moeb"
"$build/bin/moe-inspect" "$out/demo-kjv.moeb"

echo "== moe-run: evaluate the freshly initialised model on the text"
"$build/bin/moe-run" "$out/demo-kjv.moeb" --eval --data "$root/models/data/kjv.u16.bin" \
  --save-init "$out/demo-kjv-init.safetensors"
