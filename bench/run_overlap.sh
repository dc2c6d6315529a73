#!/usr/bin/env bash
# Overlap of expert-parallel communication with compute, on CPU processes:
# one training step of an MoE model (d = 256, 8 SwiGLU experts of width 1024,
# top-2, dropless) on `mpirun -np 2` with --mesh ep=2, compiled with
# --overlap-chunks=1 (the baseline: every collective waited for where it
# stands) and with N = 2 and 4 chunks (collectives issued early, the
# exchanges in chunks). Each variant alternates with the others for ROUNDS
# rounds; prints per variant the median step time, the median time a step
# waited for communication (moe-run's communication_wait_s), and the ratio
# to the baseline. The machine's cores are shared by both ranks and their
# collective threads: the numbers say what overlap buys here, not on a
# cluster.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MOEC_BUILD_DIR:-$root/build}"
steps="${STEPS:-12}"
rounds="${ROUNDS:-3}"
chunks="${CHUNKS:-1 2 4}"
mpirun="${MPIRUN:-mpirun}"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS must be a positive integer" >&2; exit 2; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

/usr/bin/python3 -c "import struct,sys; open(sys.argv[1],'wb').write(struct.pack('<65536H', *[(i*i+7*i)%512 for i in range(65536)]))" "$tmp/tokens.bin"
model=(--set vocab_size=512 --set hidden_size=256 --set num_layers=2
       --set ffn.intermediate_size=512 --set moe.num_experts=8
       --set moe.expert_intermediate_size=1024 --set training.seq_len=128)
for n in $chunks; do
  "$build/bin/moec" "$root/models/tiny-topk.yaml" "${model[@]}" --batch 8 --mesh ep=2 \
    --overlap-chunks="$n" -o "$tmp/chunks$n.moeb"
done
for round in $(seq "$rounds"); do
  for n in $chunks; do
    "$mpirun" --oversubscribe -np 2 "$build/bin/moe-run" "$tmp/chunks$n.moeb" \
      --data "$tmp/tokens.bin" --steps "$steps" --no-shuffle \
      --log "$tmp/chunks$n-$round.jsonl" >/dev/null
  done
done
/usr/bin/python3 - "$tmp" "$rounds" $chunks <<'PY'
import json, statistics, sys
tmp, rounds, chunks = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
rows = {}
for n in chunks:
    steps = []
    for r in range(1, rounds + 1):
        lines = [json.loads(l) for l in open(f"{tmp}/chunks{n}-{r}.jsonl")]
        steps += lines[1:]  # the first step warms up
    tokens = 8 * 128
    seconds = statistics.median(tokens / s["tokens_per_s"] for s in steps)
    wait = statistics.median(s["communication_wait_s"] for s in steps)
    rows[n] = (seconds, wait, steps[-1]["loss"])
base = rows[chunks[0]][0]
print(f"{'overlap-chunks':>14}  {'step ms':>8}  {'comm wait ms':>12}  {'vs ' + chunks[0]:>6}  final loss")
for n, (seconds, wait, loss) in rows.items():
    print(f"{n:>14}  {seconds * 1e3:8.1f}  {wait * 1e3:12.1f}  {base / seconds:6.2f}x  {loss:.6f}")
PY
