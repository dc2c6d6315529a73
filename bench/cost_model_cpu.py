#!/usr/bin/env python3
"""The cost model against measured step times, on this machine's CPU.

First trains the model on one rank for a few steps with --log: the experts'
token counts it records are the routing the predictions assume
(`--expert-load`; the same data and steps as every measured run). Then, for
world sizes 1, 2 and 4 (MPI ranks of one thread each, on however many cores
there are): calibrates the machine at that world size (`moe-run
--calibrate` under mpirun: what each rank reaches while the others run),
has `moec explore` predict every strategy of a mid-size MoE model (d = 256,
8 SwiGLU experts of 1024, top-2, 2 layers, batch 8 x 128), builds each with
the command explore prints, trains it for a few steps and takes the median
step time after the first. This machine's speed drifts (a shared VM): the
strategies of a world size run in turn for --rounds rounds, and each keeps
its fastest round's median. Prints predicted and measured side by side, the
Spearman correlation of the two rankings and the median relative error,
per world size and over all.

Usage: bench/cost_model_cpu.py [--build DIR] [--steps N] [--rounds N] [--worlds 1 2 4]
"""
import argparse
import json
import os
import shlex
import statistics
import struct
import subprocess
import sys
import tempfile

from cost_compare import median_error, spearman

MODEL = ["--set", "vocab_size=512", "--set", "hidden_size=256", "--set", "num_layers=2",
         "--set", "ffn.intermediate_size=512", "--set", "moe.num_experts=8",
         "--set", "moe.expert_intermediate_size=1024", "--set", "training.seq_len=128"]
BATCH = 8


def ranks(n):
    return ["mpirun", "--oversubscribe", "-np", str(n)] if n > 1 else []


def env():
    e = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
             OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    return e


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--build", default=os.path.join(root, "build"))
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--worlds", type=int, nargs="+", default=[1, 2, 4])
    args = ap.parse_args()
    if args.rounds < 1 or args.steps < 2:
        ap.error("--rounds must be at least 1 and --steps at least 2")
    bin_dir = os.path.join(args.build, "bin")
    moec, moe_run = os.path.join(bin_dir, "moec"), os.path.join(bin_dir, "moe-run")
    model = os.path.join(root, "models", "tiny-topk.yaml")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tokens = os.path.join(tmp, "tokens.bin")
        with open(tokens, "wb") as f:
            f.write(struct.pack("<65536H", *[(i * i + 7 * i) % 512 for i in range(65536)]))
        # The routing of this model on these tokens, from one rank's log.
        load = os.path.join(tmp, "load.jsonl")
        plan = os.path.join(tmp, "plan.moeb")
        subprocess.run([moec, model] + MODEL + ["--batch", str(BATCH), "-o", plan], check=True,
                       capture_output=True)
        subprocess.run([moe_run, plan, "--data", tokens, "--steps", str(args.steps),
                        "--no-shuffle", "--log", load], env=env(), check=True,
                       capture_output=True)
        for world in args.worlds:
            cluster = os.path.join(tmp, f"cpu-{world}.yaml")
            subprocess.run(ranks(world) + [moe_run, "--calibrate", cluster], env=env(),
                           check=True, capture_output=True)
            explored = subprocess.run([moec, "explore", model, "--cluster", cluster, "--world",
                                       str(world), "--batch", str(BATCH), "--expert-load", load,
                                       "--json"] + MODEL,
                                      check=True, capture_output=True, text=True)
            strategies = []
            for s in json.loads(explored.stdout)["strategies"]:
                if "step_seconds" not in s:
                    continue
                words = shlex.split(s["command"])
                plan = os.path.join(tmp, f"plan-{len(strategies)}.moeb")
                words[0], words[-1] = moec, plan
                subprocess.run(words, check=True, capture_output=True)
                strategies.append((s, plan, []))
            for round_ in range(args.rounds):
                # Every other round in reverse, so that a drift does not
                # land on the same strategies each time.
                order = strategies if round_ % 2 == 0 else list(reversed(strategies))
                for s, plan, times in order:
                    log = os.path.join(tmp, "log.jsonl")
                    if os.path.exists(log):
                        os.remove(log)
                    subprocess.run(ranks(world) + [moe_run, plan, "--data", tokens, "--steps",
                                                   str(args.steps), "--no-shuffle", "--log", log],
                                   env=env(), check=True, capture_output=True)
                    with open(log) as f:
                        steps = [json.loads(line) for line in f][1:]
                    times.append(statistics.median(BATCH * 128 / x["tokens_per_s"]
                                                   for x in steps))
            for s, plan, times in strategies:
                measured = min(times)
                rows.append((world, s["name"], s["step_seconds"], measured))
                print(f"world {world}  {s['name']:<44} predicted {s['step_seconds'] * 1e3:9.2f} ms"
                      f"  measured {measured * 1e3:9.2f} ms", file=sys.stderr)
    print("| world | strategy | predicted ms | measured ms | error |")
    print("| --- | --- | ---: | ---: | ---: |")
    for world, name, predicted, measured in rows:
        print(f"| {world} | {name} | {predicted * 1e3:.2f} | {measured * 1e3:.2f} | "
              f"{100 * (predicted - measured) / measured:+.0f}% |")
    print()
    groups = [(f"world {w}", [r for r in rows if r[0] == w]) for w in args.worlds]
    groups.append(("all", rows))
    for label, group in groups:
        if len(group) < 2:
            continue
        predicted, measured = [r[2] for r in group], [r[3] for r in group]
        print(f"{label}: {len(group)} strategies, Spearman {spearman(predicted, measured):.3f}, "
              f"median error {100 * median_error(predicted, measured):.0f}%")


if __name__ == "__main__":
    main()
