#!/usr/bin/env bash
# The README's main command: installs what moec needs, builds it, compiles the
# demo model and trains it on CPU on a real text (byte-level King James
# Bible, public domain), then saves a checkpoint and evaluates it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MOEC_BUILD_DIR:-$root/build}"
out="${MOEC_DEMO_DIR:-$build/demo}"
steps="${MOEC_DEMO_STEPS:-200}"

"$root/scripts/setup.sh"
"$root/scripts/build.sh"
mkdir -p "$out"

echo "== moec: compile models/demo-kjv.yaml"
"$build/bin/moec" "$root/models/demo-kjv.yaml" -o "$out/demo-kjv.moeb"
"$build/bin/moe-inspect" "$out/demo-kjv.moeb" | grep -E "^(model|params|function|memory)"

echo "== moe-run: train $steps steps on the text (log: $out/train.jsonl)"
"$build/bin/moe-run" "$out/demo-kjv.moeb" --data "$root/models/data/kjv.u16.bin" \
  --steps "$steps" --log "$out/train.jsonl" --save "$out/demo-kjv.safetensors" \
  --checkpoint-every 50

echo "== moe-run: evaluate the trained model on another batch of the text"
"$build/bin/moe-run" "$out/demo-kjv.moeb" --eval --data "$root/models/data/kjv.u16.bin" \
  --init "$out/demo-kjv.safetensors" --step 100000
