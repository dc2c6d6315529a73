#!/usr/bin/env bash
# One training step (forward + backward + AdamW) of an MoE layer (T = 4096,
# d = 512, 8 SwiGLU experts of width 1024, top-2): moec on CPU against
# PyTorch eager on the same machine and thread count, in one run; and the
# achieved GFLOP/s of the expert GEMMs against this machine's SGEMM peak,
# measured by the benchmark itself. Prints both ratios, and the speedup
# ceiling that peak allows.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MOEC_BUILD_DIR:-$root/build}"
steps="${STEPS:-10}"
threads="${THREADS:-$(nproc)}"
export OMP_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

"$build/bin/moec" "$root/bench/moe_layer.mlir" -o "$tmp/layer.moeb"
# This machine's speed drifts (a shared VM): the two sides alternate for
# ROUNDS rounds and each keeps its fastest round, so a slow spell does not
# land on one side only.
rounds="${ROUNDS:-2}"
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS must be a positive integer" >&2; exit 2; }
ours=() theirs=()
for _ in $(seq "$rounds"); do
  ours+=("$("$build/bench/moe_layer_bench" "$tmp/layer.moeb" --steps "$steps")")
  theirs+=("$(/usr/bin/python3 "$root/bench/moe_layer_torch.py" --steps "$steps" --threads "$threads")")
done
/usr/bin/python3 - "$rounds" "${ours[@]}" "${theirs[@]}" <<'PY'
import json, sys
rounds = int(sys.argv[1])
runs = [json.loads(a) for a in sys.argv[2:]]
ours = min(runs[:rounds], key=lambda r: r["step_seconds"])
theirs = min(runs[rounds:], key=lambda r: r["step_seconds"])
speedup = theirs["step_seconds"] / ours["step_seconds"]
efficiency = ours["expert_gemm_gflops"] / ours["gemm_peak_gflops"]
print(f"GEMM: {ours['gemm']} ({ours['runtime_gemm_peak_gflops']:.1f} GFLOP/s peak); OpenBLAS {ours['blas']} (OPENBLAS_CORETYPE={ours['openblas_coretype'] or 'unset'}) {ours['openblas_peak_gflops']:.1f} GFLOP/s; torch {theirs['torch']} on {theirs['threads']} threads")
print(f"moec step: {ours['step_seconds']*1e3:.1f} ms   PyTorch eager: {theirs['step_seconds']*1e3:.1f} ms   (median step of the fastest of {rounds} alternating rounds)")
print(f"speedup over PyTorch eager: {speedup:.2f}x (target >= 1.5x)")
print(f"expert GEMMs: {ours['expert_gemm_gflops']:.1f} GFLOP/s ({ours['expert_seconds']*1e3:.0f} ms of the step in expert ops) of a {ours['gemm_peak_gflops']:.1f} GFLOP/s SGEMM peak = {100*efficiency:.0f}% (target >= 70%)")
# The expert GEMMs alone, at the measured peak and with nothing else in the
# step, bound how much faster than PyTorch this computation can be here.
ceiling = theirs["step_seconds"] / (ours["expert_gemm_gflop"] / ours["gemm_peak_gflops"])
print(f"ceiling: the step's {ours['expert_gemm_gflop']:.1f} GFLOP of expert GEMMs take {1e3*ours['expert_gemm_gflop']/ours['gemm_peak_gflops']:.0f} ms at the {ours['gemm_peak_gflops']:.1f} GFLOP/s peak, so at that peak this fp32 step cannot run more than {ceiling:.2f}x faster than PyTorch eager here")
print(f"peak memory: moec {ours['peak_rss_bytes']/2**20:.0f} MiB (arena {ours['arena_bytes']/2**20:.0f} MiB)   PyTorch {theirs['peak_rss_bytes']/2**20:.0f} MiB")
PY
