#!/usr/bin/env bash
# Every GPU check and benchmark, in one go, on a GPU machine, over
# ./gpu-bundle (made on the build machine by scripts/gpu-prepare.sh: this
# machine needs no compiler). Each check has a time limit and a failure
# does not stop the others. Prints a short table last; the table
# (table.txt) and every log (logs.tar.gz) go to $OUT, else
# gpu-bundle/results. DEVICE=cuda-emu runs the same checks without a GPU
# (slowly: DEMO_STEPS=2 CHECK_STEPS=2 BENCH_STEPS=1 keeps it short).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bundle="$root/gpu-bundle"
device="${DEVICE:-cuda}"
torch_device=cuda; [ "$device" = cuda ] || torch_device=cpu # PyTorch's side of the benchmarks
out="${OUT:-$bundle/results}"
work="$(mktemp -d)"
mkdir -p "$out" "$out/traces" # traces: for moec calibrate (scripts/gpu-refit.sh)
carried="$root/gpu-carry" # the archive and its decompressor (gpu-prepare.sh)
if [ ! -x "$bundle/bin/moe-run" ] && [ -f "$carried/gpu-bundle.tar.zst" ]; then
  LD_LIBRARY_PATH="$carried" "$carried/zstd" -q -d --long=30 -c "$carried/gpu-bundle.tar.zst" |
    tar -C "$root" -xf -
fi
[ -x "$bundle/bin/moe-run" ] || { echo "gpu-check: no $bundle: run scripts/gpu-prepare.sh on the build machine" >&2; exit 2; }
# The libraries the bundle carries (oneDNN for the cpu device's GEMMs).
export LD_LIBRARY_PATH="$bundle/lib:${LD_LIBRARY_PATH:-}"
export MOEC_CACHE_DIR="$work/cache"
gpu="$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -n 1)"
gpu="${gpu:-no GPU ($device)}"
declare -A result
layers=""
fusions="" # the rows of the fusion table, after its first
cpus=""    # the rows of the CPU host's benchmark, one per thread count
kernels="" # the rows of Nsight Compute's counters, one per plan
# The whole run's budget (seconds, GPU_CHECK_BUDGET): each command's time
# limit is cut to what is left of it, and the later, optional sections are
# skipped, with a note in the table, when less is left than they may take;
# so the table is written before the caller's own limit.
budget="${GPU_CHECK_BUDGET:-540}"
time_for() { [ $((budget - SECONDS)) -ge "$1" ]; }
# Kernel launches of one training step (train_step_adamw) of plan $1.
launches() { "$bundle/bin/moe-inspect" --kernels "$1" | awk '/^function  train_step_adamw/{f=1} f && /launches per run/{print $3; exit}'; }
# SKIP="parity demo ...": sections not to run (parity, parity-bf16,
# cublaslt, parity-fused, demo, nccl, bench, layers, layers-fp32, olmoe, fusion, cpu-host,
# kernels, sanitizer),
# e.g. to spend a second call on the benchmarks alone.
wants() { [[ " ${SKIP:-} " != *" $1 "* ]]; }
limit() {
  local seconds="$1" left=$((budget - SECONDS)); shift
  [ "$left" -lt "$seconds" ] && seconds="$left"
  [ "$seconds" -lt 5 ] && seconds=5
  timeout --kill-after=10 "$seconds" "$@"
}
finish() {
  tar -C "$work" --exclude=cache -czf "$out/logs.tar.gz" . 2>/dev/null
  {
    echo
    echo "gpu-check on $gpu, device $device, $(date -u +%Y-%m-%dT%H:%MZ)"
    for key in smoke unit parity parity-bf16 cublaslt parity-fused demo demo-bf16 demo-gemms repeat graph resume profile nccl bench ${cpus:-} ${layers:-} olmoe olmoe-ops fusion ${fusions:-} cost-model kernels ${kernels:-} sanitizer; do
      [ -n "${result[$key]:-}" ] && printf '%-14s %s\n' "$key" "${result[$key]}"
    done
  } | tee "$out/table.txt"
}
trap finish EXIT
trap 'exit 143' TERM INT # a killed run still writes its table

# 0. One small plan, one step, its whole output: the first thing to read
#    when the device does not work at all.
small="$work/tokens.bin" # in every plan's vocabulary, as compare_devices.py makes it
python3 -c "import struct,sys; open(sys.argv[1],'wb').write(struct.pack('<4000H', *[(i*i+7*i)%64 for i in range(4000)]))" "$small"
first="$(ls "$bundle"/plans/*.moeb | head -n 1)"
if limit 60 "$bundle/bin/moe-run" "$first" --device "$device" --data "$small" --steps 1 \
    >"$work/smoke.txt" 2>&1; then
  result[smoke]="pass ($(basename "$first"), 1 step)"
else
  result[smoke]="FAIL: $(tail -n 2 "$work/smoke.txt" | tr '\n' ' ')"
  cat "$work/smoke.txt"
fi

# 0b. The GPU unit tests (the cuda driver, device, streams, graphs); their
#     binary needs no LLVM, NVRTC from the CUDA toolkit.
if [ -x "$bundle/bin/cuda-runtime-tests" ]; then
  if LD_LIBRARY_PATH="/usr/local/cuda/lib64:/usr/local/cuda/lib:${LD_LIBRARY_PATH:-}" \
      limit 60 "$bundle/bin/cuda-runtime-tests" >"$work/unit.txt" 2>&1; then
    count() { local n; n="$(grep -oE "^\[  $1 *\] [0-9]+" "$work/unit.txt" | grep -oE '[0-9]+$' | head -n 1)"; echo "${n:-0}"; }
    result[unit]="pass ($(count PASSED) passed, $(count SKIPPED) skipped)"
  else
    failed="$(grep -oE '^\[  FAILED  \] [A-Za-z0-9_]+\.[A-Za-z0-9_]+' "$work/unit.txt" | sed 's/.*\] //' | sort -u | tr '\n' ' ')"
    result[unit]="FAIL: ${failed:-$(tail -n 1 "$work/unit.txt")} (unit.txt in the logs)"
    tail -n 20 "$work/unit.txt"
  fi
fi

# 1. fp32 parity and determinism: every plan on the device against the cpu
#    (first-step loss 1e-5, gradients 1e-4 relative L2, 2 more steps 1e-4),
#    and twice on the device, bit for bit.
start=$SECONDS
if ! wants parity; then
  result[parity]="skipped (SKIP)"
elif limit 240 python3 "$root/test/tools/Inputs/compare_devices.py" --repeat "$bundle/bin" \
    "$work/compare" cpu "$device" "$bundle/plans/*.moeb" >"$work/parity.txt" 2>&1; then
  result[parity]="pass: $(tail -n 1 "$work/parity.txt")"
else
  result[parity]="FAIL: $(tail -n 1 "$work/parity.txt")"
  head -c 6000 "$work/parity.txt"
fi
result[parity]+=" ($((SECONDS - start)) s)"

# A device comparison of the plans in gpu-bundle/PLANS against the cpu,
# twice bit for bit on the device, as table row KEY within SECONDS:
# compare PLANS KEY SECONDS [compare_devices.py options].
compare() {
  local plans="$1" key="$2" seconds="$3" start=$SECONDS; shift 3
  [ -d "$bundle/$plans" ] && wants "$key" || return 0
  if limit "$seconds" python3 "$root/test/tools/Inputs/compare_devices.py" --repeat "$@" \
      "$bundle/bin" "$work/compare-$key" cpu "$device" "$bundle/$plans/*.moeb" \
      >"$work/$key.txt" 2>&1; then
    result[$key]="pass: $(tail -n 1 "$work/$key.txt")"
  else
    result[$key]="FAIL: $(tail -n 1 "$work/$key.txt")"
    head -c 3000 "$work/$key.txt"
  fi
  result[$key]+=" ($((SECONDS - start)) s)"
}
# 1b. bf16 products (moec --precision=bf16) against the cpu's, which rounds
#     the operands as the tiles do (oneDNN's bf16 matmul): the first loss
#     within 1e-5, all gradients together within 5e-3 (relative L2).
compare plans-bf16 parity-bf16 180 --precision bf16
# 1c. Dense GEMMs as cuBLASLt calls (moec --gemm=cublaslt), a fixed
#     algorithm per GEMM.
compare plans-cublaslt cublaslt 120 --gemm cublaslt
# 1d. Fusion groups (moec --fusion=all): the cpu runs each group's ops one
#     by one.
compare plans-fused parity-fused 120 --fusion all

# 2. The demo model trains on the device; the loss curve repeats bit for
#    bit, and a resumed run matches an uninterrupted one.
data="$root/models/data/kjv.u16.bin"
if wants demo; then # (not indented: the demo's checks, to the benchmarks)
run() { limit 120 "$bundle/bin/moe-run" "$bundle/demo-kjv.moeb" --device "$device" --data "$data" "$@"; }
start=$SECONDS
if run --steps "${DEMO_STEPS:-200}" --log "$work/demo.jsonl" --save "$work/demo.safetensors" >"$work/demo.txt" 2>&1; then
  result[demo]="$(grep -E "^step [0-9]" "$work/demo.txt" | tail -n 1)"
else
  result[demo]="FAIL: $(tail -n 2 "$work/demo.txt" | tr '\n' ' ')"
fi
result[demo]+=" ($((SECONDS - start)) s)"
# The demo's tokens/s with generated GEMMs and with cuBLASLt's, in both
# precisions (40 steps each).
gemms=""
for variant in "" -cublaslt -bf16 -bf16-cublaslt; do
  plan="$bundle/demo-kjv$variant.moeb"
  [ -f "$plan" ] || continue
  limit 120 "$bundle/bin/moe-run" "$plan" --device "$device" --data "$data" --steps "${GEMM_STEPS:-40}" \
      --log "$work/demo-gemms$variant.jsonl" >/dev/null 2>&1
  r="$(python3 -c "import json,statistics,sys; print(round(statistics.median(json.loads(l)['tokens_per_s'] for l in list(open(sys.argv[1]))[2:] or list(open(sys.argv[1])))))" "$work/demo-gemms$variant.jsonl" 2>/dev/null)"
  gemms+="${variant:-fp32} ${r:-failed} tok/s; "
done
result[demo-gemms]="${gemms% }"
# The same training in bf16 (moec --precision=bf16): its final loss within
# 2% of the fp32 run's.
if [ -f "$bundle/demo-kjv-bf16.moeb" ]; then
  start=$SECONDS
  if limit 120 "$bundle/bin/moe-run" "$bundle/demo-kjv-bf16.moeb" --device "$device" --data "$data" \
      --steps "${DEMO_STEPS:-200}" --log "$work/demo-bf16.jsonl" >"$work/demo-bf16.txt" 2>&1; then
    result[demo-bf16]="$(python3 - "$work/demo.jsonl" "$work/demo-bf16.jsonl" <<'PY' 2>&1
import json, statistics, sys
try:
    fp32, bf16 = ([json.loads(l) for l in open(p)] for p in sys.argv[1:3])
    a, b = fp32[-1]["loss"], bf16[-1]["loss"]
except Exception as e:
    sys.exit(f"FAIL: {e}")
rate = lambda log: round(statistics.median(r["tokens_per_s"] for r in log[2:] or log))
error = abs(b - a) / a
print(f"{'pass' if error <= 0.02 else 'FAIL'}: final loss {b:.4f} vs fp32 {a:.4f} "
      f"({100 * error:.2f}%, limit 2%); {rate(bf16)} tok/s vs {rate(fp32)}")
PY
)"
  else
    result[demo-bf16]="FAIL: $(tail -n 2 "$work/demo-bf16.txt" | tr '\n' ' ')"
  fi
  result[demo-bf16]+=" ($((SECONDS - start)) s)"
fi
strip() { python3 -c "import json,sys; [print(json.dumps({k: v for k, v in json.loads(l).items() if k != 'tokens_per_s'})) for l in open(sys.argv[1])]" "$1"; }
steps="${CHECK_STEPS:-20}"
run --steps "$steps" --log "$work/a.jsonl" >/dev/null 2>&1
run --steps "$steps" --log "$work/b.jsonl" >/dev/null 2>&1
if [ -s "$work/a.jsonl" ] && cmp -s <(strip "$work/a.jsonl") <(strip "$work/b.jsonl"); then
  result[repeat]="pass ($steps steps, identical logs)"
else
  result[repeat]="FAIL (two runs differ or did not run)"
fi
# The same steps launched kernel by kernel: the same losses as the recorded
# graph's replays (a.jsonl), and the time a graph saves.
run --steps "$steps" --log "$work/nograph.jsonl" --no-cuda-graph >/dev/null 2>&1
rate() { python3 -c "import json,statistics,sys; print(round(statistics.median(json.loads(l)['tokens_per_s'] for l in list(open(sys.argv[1]))[2:])))" "$1" 2>/dev/null; }
if [ -s "$work/nograph.jsonl" ] && cmp -s <(strip "$work/a.jsonl") <(strip "$work/nograph.jsonl"); then
  result[graph]="pass (identical losses; demo $(rate "$work/a.jsonl") tok/s replaying a CUDA graph, $(rate "$work/nograph.jsonl") kernel by kernel)"
else
  result[graph]="FAIL (graph and kernel-by-kernel runs differ or did not run)"
fi
half=$((steps / 2))
run --steps "$half" --save "$work/half.safetensors" >/dev/null 2>&1
run --steps $((steps - half)) --resume "$work/half.safetensors" --save "$work/resumed.safetensors" >/dev/null 2>&1
run --steps "$steps" --save "$work/full.safetensors" >/dev/null 2>&1
if [ -s "$work/full.safetensors" ] && cmp -s "$work/resumed.safetensors" "$work/full.safetensors"; then
  result[resume]="pass ($half + $((steps - half)) steps = $steps steps, byte for byte)"
else
  result[resume]="FAIL (the resumed checkpoint differs or is missing)"
fi
rm -f "$work"/*.safetensors
# Where the demo's step goes: ops by total time over 5 traced steps (timed
# by the device's events, each kernel too), the top ones into the table. The traces (fp32
# and bf16; the layers' below) come back in $OUT/traces: `moec calibrate`
# fits the device's figures to them on the build machine
# (scripts/gpu-refit.sh).
run --steps 5 --trace "$work/demo-trace.json" >/dev/null 2>&1
cp "$work/demo-trace.json" "$out/traces/demo-kjv.json" 2>/dev/null
[ -f "$bundle/demo-kjv-bf16.moeb" ] &&
  limit 120 "$bundle/bin/moe-run" "$bundle/demo-kjv-bf16.moeb" --device "$device" --data "$data" \
    --steps 5 --trace "$out/traces/demo-kjv-bf16.json" >/dev/null 2>&1
result[profile]="$(python3 "$root/bench/trace_top.py" "$work/demo-trace.json" demo 2>&1)"
fi # wants demo

# 2b. The nccl channel at world size 1 (one GPU): NCCL loaded at run time,
#     a communicator formed, all-reduce and all-to-all on GPU memory. With
#     one rank these are copies (or nothing): the numbers show the channel
#     runs, not a network's bandwidth (docs/design/sharding.md says what to
#     measure on several GPUs).
if [ -x "$bundle/bin/collective_bench" ] && [ "$device" = cuda ] && wants nccl; then
  nccl="${MOEC_NCCL:-}"
  if [ -z "$nccl" ] && ! ldconfig -p 2>/dev/null | grep -q 'libnccl.so.2'; then
    # PyTorch's wheel brings its own NCCL.
    nccl="$(python3 - <<'PY' 2>/dev/null
import glob, os, site
found = [p for d in site.getsitepackages() for p in glob.glob(os.path.join(d, "nvidia", "**", "libnccl.so.2"), recursive=True)]
print(found[0] if found else "")
PY
)"
  fi
  MOEC_NCCL="$nccl" limit 120 "$bundle/bin/collective_bench" --channel nccl --device cuda \
      --mib 1,64,1024 >"$work/nccl.json" 2>"$work/nccl.err"
  result[nccl]="$(python3 - "$work/nccl.json" "${nccl:-libnccl.so.2}" <<'PY' 2>&1
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except Exception as e:
    sys.exit(f"FAIL: {e}")
big = r["sizes"][-1]
print(f"pass ({sys.argv[2]}, {r['ranks']} rank): {big['mib']} MiB all-reduce {big['all_reduce_s']*1e3:.3f} ms, "
      f"all-to-all {big['all_to_all_s']*1e3:.3f} ms = {big['all_to_all_algbw_gbs']:.0f} GB/s (a device copy at 1 rank)")
PY
)"
  [[ "${result[nccl]}" == FAIL* ]] && result[nccl]+=" $(tail -n 2 "$work/nccl.err" | tr '\n' ' ')"
fi

# 3. One MoE layer's training step (bench/moe_layer.mlir): moec on the
#    device against PyTorch eager on the same GPU, fp32, TF32 off.
if [ -f "$bundle/bench/layer.moeb" ] && wants bench; then
  steps="${BENCH_STEPS:-20}"
  MOEC_PROFILE=1 limit 120 "$bundle/bin/moe_layer_bench" "$bundle/bench/layer.moeb" \
      --steps "$steps" --device "$device" >"$work/bench-moec.json" 2>"$work/bench-moec.err"
  limit 120 python3 "$root/bench/moe_layer_torch.py" --steps "$steps" --device "$torch_device" \
      --threads "$(nproc)" >"$work/bench-torch.json" 2>"$work/bench-torch.err"
  result[bench]="$(python3 - "$work/bench-moec.json" "$work/bench-torch.json" <<'PY' 2>&1
import json, sys
try:
    ours, theirs = (json.load(open(p)) for p in sys.argv[1:3])
except Exception as e:
    sys.exit(f"FAIL: {e}")
print(f"layer step moec {ours['step_seconds']*1e3:.2f} ms vs PyTorch eager {theirs['step_seconds']*1e3:.2f} ms "
      f"= {theirs['step_seconds'] / ours['step_seconds']:.2f}x; expert GEMMs {ours['expert_gemm_gflops']:.0f} GFLOP/s "
      f"({ours['expert_seconds']*1e3:.2f} ms of the step)")
PY
)"
  echo "layer step, ops by time (profiled steps, device events):"
  sort -k2 -rn "$work/bench-moec.err" | head -n 8
  [[ "${result[bench]}" == FAIL* ]] && result[bench]+=" $(tail -n 2 "$work"/bench-*.err | tr '\n' ' ')"
fi

# 3a. The machine's CPU host (the cpu device, no GPU): the layer step at 2
#     threads and at every core, fp32 and bf16, against PyTorch eager on
#     the CPU at the same thread count; expert GEMMs against the sgemm peak
#     the benchmark measures there. (Before the GPU layers, whose budget
#     would otherwise leave it none.)
if [ -f "$bundle/bench/layer-cpu-fp32.moeb" ] && wants cpu-host; then
  for threads in $(printf '%s\n' 2 "$(nproc)" | sort -nu); do
    time_for 90 || break
    for precision in fp32 bf16; do
      OMP_NUM_THREADS="$threads" limit 60 "$bundle/bin/moe_layer_bench" \
          "$bundle/bench/layer-cpu-$precision.moeb" --steps "${CPU_STEPS:-5}" \
          >"$work/cpu-$threads-$precision.json" 2>"$work/cpu-$threads-$precision.err"
    done
    limit 90 python3 "$root/bench/moe_layer_torch.py" --steps "${CPU_STEPS:-5}" --device cpu \
        --threads "$threads" >"$work/cpu-$threads-torch.json" 2>"$work/cpu-$threads-torch.err"
    result[cpu-$threads]="$(python3 - "$work" "$threads" <<'PY' 2>&1
import json, sys
work, threads = sys.argv[1:3]
try:
    fp32, bf16, torch = (json.load(open(f"{work}/cpu-{threads}-{k}.json")) for k in ("fp32", "bf16", "torch"))
except Exception as e:
    sys.exit(f"FAIL: {e}")
print(f"{threads} threads: fp32 {fp32['step_seconds']*1e3:.1f} ms = {torch['step_seconds']/fp32['step_seconds']:.2f}x "
      f"PyTorch eager ({torch['step_seconds']*1e3:.1f} ms), expert GEMMs {100*fp32['expert_gemm_gflops']/fp32['gemm_peak_gflops']:.0f}% "
      f"of {fp32['gemm_peak_gflops']:.0f} GFLOP/s; bf16 {bf16['step_seconds']*1e3:.1f} ms = "
      f"{fp32['step_seconds']/bf16['step_seconds']:.2f}x fp32 ({bf16['device']})")
PY
)"
    cpus+=" cpu-$threads"
  done
fi

# 3b. The issue's layer shapes (gpu-bundle/bench/layers.txt), a few steps
#     each, against PyTorch eager's per-expert loop in fp32.
if [ -f "$bundle/bench/layers.txt" ] && wants layers; then
  while read -r name tokens hidden experts width k; do
    shape=(--tokens "$tokens" --hidden "$hidden" --experts "$experts" --width "$width" --top-k "$k")
    if ! wants layers-fp32; then
      : # SKIP="layers-fp32": the bf16 rows alone
    elif ! time_for 150; then
      result[$name]="skipped: $((budget - SECONDS)) s of the budget left"; layers+=" $name"; continue
    else
      limit 180 "$bundle/bin/moe_layer_bench" "$bundle/bench/$name.moeb" --steps "${BIG_STEPS:-3}" \
          --device "$device" --top-k "$k" --trace "$out/traces/$name.json" \
          >"$work/bench-$name-moec.json" 2>"$work/bench-$name-moec.err"
      limit 180 python3 "$root/bench/moe_layer_torch.py" --steps "${BIG_STEPS:-3}" \
          --device "$torch_device" --threads "$(nproc)" "${shape[@]}" \
          >"$work/bench-$name-torch.json" 2>"$work/bench-$name-torch.err"
      result[$name]="$(python3 - "$work/bench-$name-moec.json" "$work/bench-$name-torch.json" <<'PY' 2>&1
import json, sys
try:
    ours = json.load(open(sys.argv[1]))
except Exception as e:
    sys.exit(f"FAIL (moec): {e}")
line = (f"step moec {ours['step_seconds']*1e3:.1f} ms, expert GEMMs {ours['expert_gemm_gflops']/1e3:.1f} "
        f"TFLOP/s fp32")
try:
    theirs = json.load(open(sys.argv[2]))
    line += (f"; PyTorch eager loop {theirs['step_seconds']*1e3:.1f} ms = "
             f"{theirs['step_seconds'] / ours['step_seconds']:.2f}x")
except Exception as e:
    line += f"; PyTorch failed ({e})"
print(line)
PY
)"
      [[ "${result[$name]}" == FAIL* ]] && result[$name]+=" $(tail -n 1 "$work/bench-$name-moec.err")"
      layers+=" $name"
    fi
    # bf16: moec --precision=bf16 against PyTorch under bf16 autocast, its
    # per-expert loop and torch._grouped_mm, and the bf16 GEMM ceiling.
    [ -f "$bundle/bench/$name-bf16.moeb" ] || continue
    if ! time_for 120; then
      result[$name-bf16]="skipped: $((budget - SECONDS)) s of the budget left"; layers+=" $name-bf16"; continue
    fi
    limit 180 "$bundle/bin/moe_layer_bench" "$bundle/bench/$name-bf16.moeb" --steps "${BIG_STEPS:-3}" \
        --device "$device" --top-k "$k" --trace "$out/traces/$name-bf16.json" \
        >"$work/bench-$name-bf16-moec.json" 2>"$work/bench-$name-bf16-moec.err"
    for impl in loop grouped_mm; do
      limit 180 python3 "$root/bench/moe_layer_torch.py" --steps "${BIG_STEPS:-3}" --dtype bf16 \
          --impl "$impl" --device "$torch_device" --threads "$(nproc)" "${shape[@]}" \
          $([ "$impl" = loop ] && echo --ceiling) \
          >"$work/bench-$name-bf16-$impl.json" 2>"$work/bench-$name-bf16-$impl.err"
    done
    result[$name-bf16]="$(python3 - "$work/bench-$name-bf16-moec.json" "$work/bench-$name-bf16-loop.json" \
        "$work/bench-$name-bf16-grouped_mm.json" "$tokens" "$hidden" "$width" "$k" <<'PY' 2>&1
import json, sys
T, d, F, K = (int(v) for v in sys.argv[4:8])
flop = 18 * T * K * d * F  # expert GEMMs of a step: 3 forward, 6 backward
def load(path):
    try:
        return json.load(open(path))
    except Exception:
        return None
ours, loop, grouped = (load(p) for p in sys.argv[1:4])
if not ours:
    sys.exit("FAIL (moec)")
ceiling = (loop or {}).get("gemm_ceiling_tflops")
rate = flop / ours["step_seconds"] / 1e12
line = f"step moec {ours['step_seconds']*1e3:.1f} ms ({rate:.0f} TFLOP/s in expert GEMMs"
line += f", {100 * rate / ceiling:.0f}% of the bf16 GEMM's {ceiling:.0f})" if ceiling else ")"
for name, theirs in (("loop", loop), ("torch._grouped_mm", grouped)):
    line += (f"; {name} {theirs['step_seconds']*1e3:.1f} ms = {theirs['step_seconds'] / ours['step_seconds']:.2f}x"
             if theirs else f"; {name} failed")
print(line)
PY
)"
    [ -s "$work/bench-$name-bf16-grouped_mm.json" ] || result[$name-bf16]+=" ($(tail -n 1 "$work/bench-$name-bf16-grouped_mm.err"))"
    layers+=" $name-bf16"
    # The same layer on the staged bf16 tile (moec --bf16-tile=staged):
    # what the pipelined one (bf16 operand copies, cp.async) gains.
    [ -f "$bundle/bench/$name-bf16-staged.moeb" ] || continue
    if ! time_for 90; then
      result[$name-bf16-staged]="skipped: $((budget - SECONDS)) s of the budget left"; layers+=" $name-bf16-staged"; continue
    fi
    limit 150 "$bundle/bin/moe_layer_bench" "$bundle/bench/$name-bf16-staged.moeb" --steps "${BIG_STEPS:-3}" \
        --device "$device" --top-k "$k" >"$work/bench-$name-bf16-staged.json" 2>"$work/bench-$name-bf16-staged.err"
    result[$name-bf16-staged]="$(python3 - "$work/bench-$name-bf16-staged.json" "$work/bench-$name-bf16-moec.json" <<'PY' 2>&1
import json, sys
try:
    staged = json.load(open(sys.argv[1]))
except Exception:
    sys.exit("FAIL (moec --bf16-tile=staged)")
try:
    pipelined = json.load(open(sys.argv[2]))
except Exception:
    pipelined = None
line = f"staged tile {staged['step_seconds']*1e3:.1f} ms"
if pipelined:
    line += f"; pipelined {pipelined['step_seconds']*1e3:.1f} ms = {staged['step_seconds'] / pipelined['step_seconds']:.2f}x"
print(line)
PY
)"
    layers+=" $name-bf16-staged"
  done <"$bundle/bench/layers.txt"
fi

# 3c. The whole model: OLMoE-1B-7B's shapes, 4 layers, batch 8 x 2048,
#     AdamW, aux loss on; moec --precision=bf16 against transformers' own
#     model with fused AdamW, bf16 autocast over fp32 weights and pure bf16.
if ! wants olmoe; then
  :
elif [ -f "$bundle/bench/olmoe4-bf16.moeb" ] && [ "$device" = cuda ] && ! time_for 200; then
  result[olmoe]="skipped: $((budget - SECONDS)) s of the budget left (GPU_CHECK_BUDGET=$budget)"
elif [ -f "$bundle/bench/olmoe4-bf16.moeb" ] && [ "$device" = cuda ]; then
  python3 -c "import random,struct,sys; random.seed(0); open(sys.argv[1],'wb').write(struct.pack('<%dH' % (16384*10), *[random.randrange(50304) for _ in range(16384*10)]))" "$work/olmoe-tokens.bin"
  limit 300 "$bundle/bin/moe-run" "$bundle/bench/olmoe4-bf16.moeb" --device cuda --data "$work/olmoe-tokens.bin" \
      --steps "${OLMOE_STEPS:-6}" --log "$work/olmoe-moec.jsonl" >"$work/olmoe-moec.txt" 2>&1
  for setup in autocast bf16; do
    limit 240 python3 "$root/bench/olmoe_torch.py" --setup "$setup" --steps "${OLMOE_STEPS:-6}" \
        >"$work/olmoe-$setup.json" 2>"$work/olmoe-$setup.err"
  done
  result[olmoe]="$(python3 - "$work/olmoe-moec.jsonl" "$work/olmoe-moec.txt" "$work/olmoe-autocast.json" \
      "$work/olmoe-bf16.json" <<'PY' 2>&1
import json, re, statistics, sys
GiB = 2 ** 30
try:
    log = [json.loads(l) for l in open(sys.argv[1])]
    rate = statistics.median(r["tokens_per_s"] for r in (log[2:] or log))
    peak = float(re.search(r"peak device memory ([0-9.]+) MiB", open(sys.argv[2]).read()).group(1)) / 1024
except Exception as e:
    sys.exit(f"FAIL (moec): {e}: {open(sys.argv[2]).read()[-300:]}")
line = f"moec bf16 {rate/1e3:.1f}k tok/s, {peak:.1f} GiB, loss {log[-1]['loss']:.3f}"
best = None
for path in sys.argv[3:5]:
    try:
        theirs = json.load(open(path))
    except Exception:
        line += f"; transformers {path.rsplit('-', 1)[-1][:-5]} failed"
        continue
    line += (f"; transformers {theirs['setup']} {theirs['tokens_per_s']/1e3:.1f}k tok/s, "
             f"{theirs['peak_gpu_bytes']/GiB:.1f} GiB")
    if not best or theirs["tokens_per_s"] > best["tokens_per_s"]:
        best = theirs
if best:
    line += (f"; moec / faster = {rate / best['tokens_per_s']:.2f}x (target 1.3x), memory "
             f"{peak:.1f} vs {best['peak_gpu_bytes']/GiB:.1f} GiB")
print(line)
PY
)"
  for setup in autocast bf16; do
    [ -s "$work/olmoe-$setup.json" ] || result[olmoe]+=" ($setup: $(tail -n 1 "$work/olmoe-$setup.err"))"
  done
  # Where its step goes: 3 steps, each op timed by device events (the
  # trace also comes back for moec calibrate).
  if time_for 150 && limit 90 "$bundle/bin/moe-run" "$bundle/bench/olmoe4-bf16.moeb" --device cuda \
      --data "$work/olmoe-tokens.bin" --steps 3 --trace "$out/traces/olmoe4-bf16.json" >/dev/null 2>&1; then
    result[olmoe-ops]="$(python3 "$root/bench/trace_top.py" "$out/traces/olmoe4-bf16.json" olmoe4-bf16 --top 8 2>&1)"
  fi
fi

# 3d. Fusion strategies: the same work under each --fusion strategy, time
#     and kernel launches per training step (moe-inspect --kernels): the
#     demo (fp32; none and all), the layers (bf16; none, router, dispatch,
#     expert, moe, all; one row each) and OLMoE (bf16; none, moe, all).
# The cost model's prediction for each plan timed here (gpu-prepare.sh,
# clusters/8xH200.yaml, 8xH100-SXM.yaml or 8xB200.yaml by the GPU's name), shown beside
# the measured time and collected in cost-pairs.txt (name, predicted ms,
# measured ms) for the cost-model row.
case "$gpu" in # a GPU without a shipped description gets no predictions
  *H200*) cluster_of_gpu=8xH200 ;;
  *H100*) cluster_of_gpu=8xH100-SXM ;;
  *B200*) cluster_of_gpu=8xB200 ;;
  *) cluster_of_gpu="" ;;
esac
predicted_of() {
  [ -n "$cluster_of_gpu" ] || return 0
  awk -v n="$(basename "$1" .moeb)" '$1 == n && !found {print $2; found = 1}' \
      "$bundle/bench/predicted-$cluster_of_gpu.txt" 2>/dev/null
}
pair() { # plan measured_ms: one line of cost-pairs.txt, and the text for the table
  local p; p="$(predicted_of "$1")"
  [ -n "$p" ] && [ -n "$2" ] || return 0
  echo "$(basename "$1" .moeb) $p $2" >>"$work/cost-pairs.txt"
  printf ', predicted %.1f' "$p"
}
if wants fusion && [ -f "$bundle/demo-kjv-fused.moeb" ]; then
  median_tokens() { python3 -c "import json,statistics,sys; print(round(statistics.median(json.loads(l)['tokens_per_s'] for l in list(open(sys.argv[1]))[2:] or list(open(sys.argv[1])))))" "$1" 2>/dev/null; }
  line=""
  for variant in "" -fused; do
    limit 120 "$bundle/bin/moe-run" "$bundle/demo-kjv$variant.moeb" --device "$device" --data "$data" \
        --steps "${GEMM_STEPS:-40}" --log "$work/demo-fusion$variant.jsonl" >/dev/null 2>&1
    r="$(median_tokens "$work/demo-fusion$variant.jsonl")"
    line+="demo ${variant:--none} ${r:-failed} tok/s ($(launches "$bundle/demo-kjv$variant.moeb") launches); "
  done
  result[fusion]="${line%; }"
  while read -r name tokens hidden experts width k; do
    [ -f "$bundle/bench/$name-bf16-all.moeb" ] && time_for 150 || continue
    line=""
    for strategy in none router dispatch expert moe all; do
      plan="$bundle/bench/$name-bf16-$strategy.moeb"
      [ "$strategy" = none ] && plan="$bundle/bench/$name-bf16.moeb"
      limit 120 "$bundle/bin/moe_layer_bench" "$plan" --steps "${BIG_STEPS:-3}" \
          --device "$device" --top-k "$k" >"$work/fusion-$name-$strategy.json" 2>/dev/null
      ms="$(python3 -c "import json,sys; print(f\"{json.load(open(sys.argv[1]))['step_seconds']*1e3:.1f}\")" "$work/fusion-$name-$strategy.json" 2>/dev/null)"
      line+="$strategy ${ms:-failed} ms ($(launches "$plan")$(pair "$plan" "$ms")); "
    done
    result[fusion-$name]="bf16 ms (launches, predicted ms): ${line%; }"
    fusions+=" fusion-$name"
  done <"$bundle/bench/layers.txt"
  if [ -f "$bundle/bench/olmoe4-bf16-all.moeb" ] && [ "$device" = cuda ] && time_for 240; then
    [ -f "$work/olmoe-tokens.bin" ] || python3 -c "import random,struct,sys; random.seed(0); open(sys.argv[1],'wb').write(struct.pack('<%dH' % (16384*10), *[random.randrange(50304) for _ in range(16384*10)]))" "$work/olmoe-tokens.bin"
    line=""
    for strategy in none moe all; do
      plan="$bundle/bench/olmoe4-bf16-$strategy.moeb"
      [ "$strategy" = none ] && plan="$bundle/bench/olmoe4-bf16.moeb"
      limit 200 "$bundle/bin/moe-run" "$plan" --device cuda --data "$work/olmoe-tokens.bin" \
          --steps "${OLMOE_STEPS:-6}" --log "$work/olmoe-$strategy.jsonl" >/dev/null 2>&1
      r="$(median_tokens "$work/olmoe-$strategy.jsonl")"
      ms=""; [ -n "$r" ] && ms="$(python3 -c "import sys; print(f'{16384 / float(sys.argv[1]) * 1e3:.1f}')" "$r")"
      line+="$strategy ${r:-failed} ($(launches "$plan")$(pair "$plan" "$ms")); "
    done
    result[fusion-olmoe4]="bf16 tok/s (launches, predicted ms per step of 8 x 2048): ${line%; }"
    fusions+=" fusion-olmoe4"
  fi
fi

# The cost model against the step times above: how well it ranks the
# fusion strategies on this GPU, and how far off it is.
if [ -s "$work/cost-pairs.txt" ]; then
  result[cost-model]="$(python3 "$root/bench/cost_compare.py" "$work/cost-pairs.txt" 2>&1) (clusters/$cluster_of_gpu.yaml)"
fi

# 3e. Why the generated kernels take the time they do: Nsight Compute's
#     counters (SM and memory throughput, the tensor pipe, occupancy, warp
#     stall reasons) for every kernel of one training step of each bf16
#     layer, and for OLMoE's expert kernels (one step's). The raw pages come
#     back in $OUT/ncu; bench/ncu_summary.py reads them. ncu leaves the
#     clocks alone (--clock-control none) and replays each kernel once per
#     counter pass, so the step runs many times slower than timed above.
if [ "$device" = cuda ] && command -v ncu >/dev/null && wants kernels; then
  mkdir -p "$out/ncu"
  sections=(--section SpeedOfLight --section Occupancy --section LaunchStats
            --section WarpStateStats --section ComputeWorkloadAnalysis
            --section MemoryWorkloadAnalysis)
  profile_kernels() { # name, then the command and its arguments
    local name="$1"; shift
    if limit 120 ncu --clock-control none "${sections[@]}" --csv --page raw "$@" \
        >"$out/ncu/$name.csv" 2>"$work/ncu-$name.err"; then
      result[kernels-$name]="$(python3 "$root/bench/ncu_summary.py" "$out/ncu/$name.csv" --top 3 2>&1 |
          tr '\n' ' ' | sed 's/  */ /g')"
    else
      result[kernels-$name]="FAIL: $(grep -m 2 -E "ERROR|error" "$work/ncu-$name.err" "$out/ncu/$name.csv" | tr '\n' ' ')"
    fi
    kernels+=" kernels-$name"
  }
  while read -r name tokens hidden experts width k; do
    [ -f "$bundle/bench/$name-bf16.moeb" ] && time_for 130 || continue
    # One step's launches (moe_layer_bench runs train_step_adamw).
    count="$(launches "$bundle/bench/$name-bf16.moeb")"
    profile_kernels "$name-bf16" --launch-count "${count:-60}" "$bundle/bin/moe_layer_bench" \
        "$bundle/bench/$name-bf16.moeb" --steps 1 --device cuda --top-k "$k"
  done <"$bundle/bench/layers.txt"
  if [ -f "$bundle/bench/olmoe4-bf16.moeb" ] && [ -f "$work/olmoe-tokens.bin" ] && time_for 130; then
    # Every expert kernel of one step, forward and backward (its first step
    # launches kernel by kernel).
    count="$("$bundle/bin/moe-inspect" --kernels "$bundle/bench/olmoe4-bf16.moeb" |
        awk '/^function/ {f = ($2 == "train_step_adamw:")} f && $2 ~ /^moe\.grouped_ffn/ {n += $4} END {print n + 0}')"
    profile_kernels olmoe4-bf16 -k regex:grouped_ffn --launch-count "$([ "${count:-0}" -gt 0 ] && echo "$count" || echo 48)" \
        "$bundle/bin/moe-run" "$bundle/bench/olmoe4-bf16.moeb" --device cuda --data "$work/olmoe-tokens.bin" --steps 1
  fi
  [ -n "$kernels" ] || result[kernels]="skipped: $((budget - SECONDS)) s of the budget left"
elif [ "$device" = cuda ] && wants kernels; then
  result[kernels]="skipped: no ncu (Nsight Compute) on this machine"
fi

# 4. Out-of-bounds accesses and races in the generated kernels: one step of
#    each plan under compute-sanitizer (when the machine has it).
if [ "$device" = cuda ] && command -v compute-sanitizer >/dev/null && wants sanitizer && ! time_for 60; then
  result[sanitizer]="skipped: $((budget - SECONDS)) s of the budget left"
elif [ "$device" = cuda ] && command -v compute-sanitizer >/dev/null && wants sanitizer; then
  bad=0 checked=0
  # The tensor-core tiles first (bf16 plans of three kinds of experts), then
  # every fp32 plan, while time is left.
  for plan in "$bundle"/plans-bf16/{tiny-topk,tiny-qwen2-shared,tiny-tsallis-lora}.moeb \
      "$bundle"/plans/*.moeb; do
    [ -f "$plan" ] || continue
    for tool in memcheck racecheck; do
      name="sanitizer-$tool-$(basename "$(dirname "$plan")")-$(basename "$plan" .moeb).txt"
      if ! limit 60 compute-sanitizer --tool "$tool" --error-exitcode 3 "$bundle/bin/moe-run" "$plan" \
          --device cuda --data "$small" --steps 1 >"$work/$name" 2>&1; then
        bad=$((bad + 1)); echo "sanitizer: $name"; grep -m 5 "=========" "$work/$name"
      fi
      checked=$((checked + 1))
    done
    [ $SECONDS -gt "${SANITIZER_UNTIL:-330}" ] || ! time_for 60 && break
  done
  result[sanitizer]="$((checked - bad)) of $checked memcheck/racecheck runs clean"
fi
