#!/usr/bin/env bash
# --precision=bf16 on the CPU against fp32, on the same machine and threads,
# in one run:
# 1. the MoE-layer training step (bench/moe_layer.mlir, T = 4096, d = 512,
#    8 SwiGLU experts of width 1024, top-2) compiled both ways; the two
#    alternate for ROUNDS rounds and each keeps its fastest round (this
#    machine's speed drifts). Target: the bf16 step at least 2x faster where
#    the CPU has AMX or AVX512-BF16.
# 2. the demo (models/demo-kjv.yaml) trained DEMO_STEPS steps both ways from
#    the same seed, then evaluated on a batch it did not train on. Target:
#    bf16's evaluation loss within 2% of fp32's.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MOEC_BUILD_DIR:-$root/build}"
steps="${STEPS:-10}"
rounds="${ROUNDS:-2}"
demo_steps="${DEMO_STEPS:-200}"
threads="${THREADS:-$(nproc)}"
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS must be a positive integer" >&2; exit 2; }
[[ "$demo_steps" =~ ^[1-9][0-9]*$ ]] || { echo "DEMO_STEPS must be a positive integer" >&2; exit 2; }
export OMP_NUM_THREADS="$threads"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

for precision in fp32 bf16; do
  "$build/bin/moec" "$root/bench/moe_layer.mlir" --precision="$precision" -o "$tmp/layer-$precision.moeb"
done
fp32=() bf16=()
for _ in $(seq "$rounds"); do
  fp32+=("$("$build/bench/moe_layer_bench" "$tmp/layer-fp32.moeb" --steps "$steps")")
  bf16+=("$("$build/bench/moe_layer_bench" "$tmp/layer-bf16.moeb" --steps "$steps")")
done

data="$root/models/data/kjv.u16.bin"
for precision in fp32 bf16; do
  "$build/bin/moec" "$root/models/demo-kjv.yaml" --precision="$precision" -o "$tmp/demo-$precision.moeb"
  "$build/bin/moe-run" "$tmp/demo-$precision.moeb" --data "$data" --steps "$demo_steps" \
    --log "$tmp/demo-$precision.jsonl" --save "$tmp/demo-$precision.safetensors" > /dev/null
  for batch in 100000 100001 100002 100003; do
    "$build/bin/moe-run" "$tmp/demo-$precision.moeb" --eval --data "$data" --step "$batch" \
      --init "$tmp/demo-$precision.safetensors" --json >> "$tmp/eval-$precision.jsonl"
  done
done

/usr/bin/python3 - "$rounds" "$tmp" "${fp32[@]}" "${bf16[@]}" <<'PY'
import json, sys
rounds, tmp = int(sys.argv[1]), sys.argv[2]
runs = [json.loads(a) for a in sys.argv[3:]]
fp32 = min(runs[:rounds], key=lambda r: r["step_seconds"])
bf16 = min(runs[rounds:], key=lambda r: r["step_seconds"])
speedup = fp32["step_seconds"] / bf16["step_seconds"]
print(f"device: {bf16['device']}")
print(f"MoE layer step: fp32 {fp32['step_seconds']*1e3:.1f} ms   bf16 {bf16['step_seconds']*1e3:.1f} ms   (fastest of {rounds} alternating rounds)")
print(f"bf16 speedup over fp32: {speedup:.2f}x (target >= 2x)")
print(f"expert ops: fp32 {fp32['expert_seconds']*1e3:.0f} ms ({fp32['expert_gemm_gflops']:.0f} GFLOP/s)   bf16 {bf16['expert_seconds']*1e3:.0f} ms ({bf16['expert_gemm_gflops']:.0f} GFLOP/s)")
def last_loss(path):
    return [json.loads(line) for line in open(path)][-1]["loss"]
def mean_eval_loss(path):
    losses = [json.loads(line)["loss"] for line in open(path)]
    return sum(losses) / len(losses)
evals = {p: mean_eval_loss(f"{tmp}/eval-{p}.jsonl") for p in ("fp32", "bf16")}
train = {p: last_loss(f"{tmp}/demo-{p}.jsonl") for p in ("fp32", "bf16")}
gap = (evals["bf16"] - evals["fp32"]) / evals["fp32"]
print(f"demo, {len(open(f'{tmp}/demo-fp32.jsonl').readlines())} steps: last step loss fp32 {train['fp32']:.4f} bf16 {train['bf16']:.4f}; "
      f"evaluation loss (4 unseen batches) fp32 {evals['fp32']:.4f} bf16 {evals['bf16']:.4f} ({100*gap:+.2f}%, target within 2%)")
PY
