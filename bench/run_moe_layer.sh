#!/usr/bin/env bash
# One training step (forward + backward + AdamW) of an MoE layer (T = 4096,
# d = 512, 8 SwiGLU experts of width 1024, top-2): moec on CPU against
# PyTorch eager on the same machine and thread count, in one run; and the
# achieved GFLOP/s of the expert GEMMs against this machine's SGEMM peak,
# measured by the benchmark itself. Prints both ratios.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MOEC_BUILD_DIR:-$root/build}"
steps="${STEPS:-10}"
threads="${THREADS:-$(nproc)}"
export OMP_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

"$build/bin/moec" "$root/bench/moe_layer.mlir" -o "$tmp/layer.moeb"
ours="$("$build/bench/moe_layer_bench" "$tmp/layer.moeb" --steps "$steps")"
theirs="$(/usr/bin/python3 "$root/bench/moe_layer_torch.py" --steps "$steps" --threads "$threads")"
/usr/bin/python3 - "$ours" "$theirs" <<'PY'
import json, sys
ours, theirs = json.loads(sys.argv[1]), json.loads(sys.argv[2])
speedup = theirs["step_seconds"] / ours["step_seconds"]
efficiency = ours["expert_gemm_gflops"] / ours["gemm_peak_gflops"]
print(f"BLAS: {ours['blas']} (OPENBLAS_CORETYPE={ours['openblas_coretype'] or 'unset'}), torch {theirs['torch']} on {theirs['threads']} threads")
print(f"moec step (median): {ours['step_seconds']*1e3:.1f} ms   PyTorch eager: {theirs['step_seconds']*1e3:.1f} ms")
print(f"speedup over PyTorch eager: {speedup:.2f}x (target >= 3x)")
print(f"expert GEMMs: {ours['expert_gemm_gflops']:.1f} GFLOP/s ({ours['expert_seconds']*1e3:.0f} ms of the step in expert ops) of a {ours['gemm_peak_gflops']:.1f} GFLOP/s SGEMM peak = {100*efficiency:.0f}% (target >= 70%)")
print(f"peak memory: moec {ours['peak_rss_bytes']/2**20:.0f} MiB (arena {ours['arena_bytes']/2**20:.0f} MiB)   PyTorch {theirs['peak_rss_bytes']/2**20:.0f} MiB")
PY
