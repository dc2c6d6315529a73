#!/usr/bin/env bash
# Every GPU check, in one go, on a GPU machine, over ./gpu-bundle (made on
# the build machine by scripts/gpu-prepare.sh: this machine needs no
# compiler). Prints a short table last; results go to $OUT (else
# gpu-bundle/results). DEVICE=cuda-emu runs the same checks without a GPU
# (slowly: DEMO_STEPS=2 CHECK_STEPS=2 keeps it short).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bundle="$root/gpu-bundle"
device="${DEVICE:-cuda}"
out="${OUT:-$bundle/results}"
mkdir -p "$out"
[ -x "$bundle/bin/moe-run" ] || { echo "gpu-check: no $bundle: run scripts/gpu-prepare.sh on the build machine" >&2; exit 2; }
export MOEC_CACHE_DIR="$out/cache"
gpu="$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)"
gpu="${gpu:-no GPU ($device)}"
declare -A result

# 1. fp32 parity and determinism: every plan on the device against the cpu
#    (first-step loss 1e-5, gradients 1e-4 relative L2, 2 more steps 1e-4),
#    and twice on the device, bit for bit.
start=$SECONDS
if python3 "$root/test/tools/Inputs/compare_devices.py" --repeat "$bundle/bin" "$out/compare" \
    cpu "$device" "$bundle/plans/*.moeb" >"$out/parity.txt" 2>&1; then
  result[parity]="pass: $(cat "$out/parity.txt")"
else
  result[parity]="FAIL: $(tail -n 3 "$out/parity.txt")"
fi
result[parity_seconds]=$((SECONDS - start))

# 2. The demo model trains on the device; the loss curve repeats bit for
#    bit, and a resumed run matches an uninterrupted one.
data="$root/models/data/kjv.u16.bin"
run() { "$bundle/bin/moe-run" "$bundle/demo-kjv.moeb" --device "$device" --data "$data" "$@"; }
start=$SECONDS
if run --steps "${DEMO_STEPS:-200}" --log "$out/demo.jsonl" --save "$out/demo.safetensors" >"$out/demo.txt" 2>&1; then
  result[demo]="$(tail -n 3 "$out/demo.txt" | head -n 1)"
else
  result[demo]="FAIL: $(tail -n 2 "$out/demo.txt")"
fi
result[demo_seconds]=$((SECONDS - start))
strip() { python3 -c "import json,sys; [print(json.dumps({k: v for k, v in json.loads(l).items() if k != 'tokens_per_s'})) for l in open(sys.argv[1])]" "$1"; }
steps="${CHECK_STEPS:-20}"
run --steps "$steps" --log "$out/a.jsonl" >/dev/null 2>&1
run --steps "$steps" --log "$out/b.jsonl" >/dev/null 2>&1
if cmp -s <(strip "$out/a.jsonl") <(strip "$out/b.jsonl"); then
  result[repeat]="pass ($steps steps, identical logs)"
else
  result[repeat]="FAIL (two runs differ)"
fi
half=$((steps / 2))
run --steps "$half" --save "$out/half.safetensors" >/dev/null 2>&1
run --steps $((steps - half)) --resume "$out/half.safetensors" --save "$out/resumed.safetensors" >/dev/null 2>&1
run --steps "$steps" --save "$out/full.safetensors" >/dev/null 2>&1
if [ -s "$out/full.safetensors" ] && cmp -s "$out/resumed.safetensors" "$out/full.safetensors"; then
  result[resume]="pass ($half + $((steps - half)) steps = $steps steps, byte for byte)"
else
  result[resume]="FAIL (the resumed checkpoint differs)"
fi

echo
echo "gpu-check on $gpu, device $device, $(date -u +%Y-%m-%dT%H:%MZ)"
printf '%-8s %s\n' "parity" "${result[parity]} (${result[parity_seconds]} s)"
printf '%-8s %s\n' "demo" "${result[demo]} (${result[demo_seconds]} s)"
printf '%-8s %s\n' "repeat" "${result[repeat]}"
printf '%-8s %s\n' "resume" "${result[resume]}"
