#!/usr/bin/env python3
"""N ranks compute what 1 rank computes.

Compiles MODEL for one rank and for each mesh of `--meshes` (the same
global batch), trains both with each optimizer (`mpirun -np N moe-run` for
the sharded plan), and compares every step's losses, gradient norm and
routing metrics, then the final weights of both checkpoints. On the last
mesh, checkpoints also move between one rank and the mesh both ways
(check_checkpoints). Exits non-zero, naming the
first difference, when they disagree by more than the tolerance.
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile

# Reductions over ranks add the ranks' partial sums in another order than
# one rank adds the whole batch: equal within a few fp32 roundings.
REL_TOL = 1e-6
ABS_TOL = 1e-7
# SGD: per tensor, relative to its largest element (a gradient component
# that sums contributions of opposite sign from the ranks loses its relative
# precision, not the tensor). AdamW divides each moment by its own scale, so
# a gradient that is zero but for rounding (the key projection's bias:
# softmax ignores a shift shared by all keys) moves its weight by up to lr
# per step on either run, in directions set by rounding: its weights agree
# within a share of the distance AdamW can move them (the sum of the steps'
# learning rates). Scale errors (a missing or doubled reduction), to which
# AdamW is blind, show in the gradient norm and in SGD's weights.
SGD_WEIGHT_TOL = 1e-5
ADAMW_STEP_SHARE = 1e-2


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        sys.exit(f"FAILED ({p.returncode}): {' '.join(cmd)}\n{p.stdout}\n{p.stderr}")
    return p


def mpi_env(tmp):
    env = dict(os.environ)
    # CI containers run as root; one thread per rank on a small machine.
    # Each test keeps Open MPI's session directory in its own temporary
    # directory: two mpiruns that start together (ctest -j) both creating
    # /tmp/ompi.<host>.<uid> is a race one of them loses ("mkdir ... File
    # exists", orte_init failed).
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1",
               OMPI_MCA_orte_tmpdir_base=os.path.join(tmp, "ompi"))
    # Sanitizer builds (ASAN_OPTIONS set by CTest): Open MPI never frees
    # what MPI_Init allocates, in stacks too short for a suppression, so
    # these runs leave leak detection to the single-process tests.
    if "ASAN_OPTIONS" in env:
        env["ASAN_OPTIONS"] += ":detect_leaks=0"
    return env


def close(a, b):
    return abs(a - b) <= ABS_TOL + REL_TOL * max(abs(a), abs(b))


def read_log(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        if info["dtype"] == "F32":
            tensors[name] = struct.unpack(f"<{(end - begin) // 4}f", data[begin:end])
    return tensors


def compare_logs(one, many, label):
    if len(one) != len(many):
        sys.exit(f"{label}: {len(one)} steps on one rank, {len(many)} on several")
    worst = 0.0
    for a, b in zip(one, many):
        for key in ("loss", "lm_loss", "aux_loss", "grad_norm"):
            if key in a:
                if not close(a[key], b[key]):
                    sys.exit(f"{label}: step {a['step']} {key}: {a[key]!r} on one rank, "
                             f"{b[key]!r} on several")
                worst = max(worst, abs(a[key] - b[key]) / max(abs(a[key]), 1e-30))
        for la, lb in zip(a["layers"], b["layers"]):
            if not close(la["dropped_fraction"], lb["dropped_fraction"]):
                sys.exit(f"{label}: step {a['step']} layer {la['layer']} dropped_fraction "
                         f"{la['dropped_fraction']!r} on one rank, {lb['dropped_fraction']!r} "
                         "on several")
            if la["expert_tokens"] != lb["expert_tokens"]:
                sys.exit(f"{label}: step {a['step']} layer {la['layer']} expert_tokens "
                         f"{la['expert_tokens']} on one rank, {lb['expert_tokens']} on several")
    return worst


def compare_weights(one, many, label, optimizer, lr_sum):
    a, b = read_safetensors(one), read_safetensors(many)
    if a.keys() != b.keys():
        sys.exit(f"{label}: the checkpoints hold different tensors")
    worst = 0.0
    tol = SGD_WEIGHT_TOL if optimizer == "sgd" else ADAMW_STEP_SHARE
    for name in a:
        if optimizer == "sgd":
            scale = max(max(abs(x) for x in a[name]), 1e-30)
        elif name.endswith((".exp_avg", ".exp_avg_sq")):
            continue  # the moments' scale is the gradients': checked through the weights
        else:
            scale = lr_sum
        for i, (x, y) in enumerate(zip(a[name], b[name])):
            d = abs(x - y) / scale
            if d > tol:
                sys.exit(f"{label}: {name}[{i}] differs: {x!r} vs {y!r} ({d:.1e} of "
                         + ("the tensor's largest element)" if optimizer == "sgd"
                            else "the distance AdamW moves a weight in the run)"))
            worst = max(worst, d)
    return worst


def same_tensors(a, b, label):
    ta, tb = read_safetensors(a), read_safetensors(b)
    if ta.keys() != tb.keys():
        sys.exit(f"{label}: the checkpoints hold different tensors")
    for name in ta:
        if ta[name] != tb[name]:
            sys.exit(f"{label}: {name} is not bit-identical")
    return len(ta)


def check_checkpoints(args, tmp, tokens, one, sharded, mesh, ranks, moe_run):
    """Checkpoints do not depend on the world size: what one side saves, the
    other loads and saves again bit for bit (weights and optimizer state),
    and training resumed on the other side continues the same run."""
    half = args.steps // 2
    mpirun = [args.mpirun, "-np", str(ranks), moe_run, sharded]
    many = f"{ranks} ranks ({mesh})"
    sides = {"1 rank": [moe_run, one], many: mpirun}
    common = ["--data", tokens, "--optimizer", "adamw"]
    full_log = os.path.join(tmp, "ckpt-full.jsonl")
    run([moe_run, one, "--steps", str(args.steps), "--log", full_log] + common,
        env=mpi_env(tmp))
    full = read_log(full_log)
    for src, dst in (("1 rank", many), (many, "1 rank")):
        label = f"{os.path.basename(args.model)} checkpoint {src} -> {dst}"
        saved = os.path.join(tmp, "ckpt-saved.safetensors")
        again = os.path.join(tmp, "ckpt-again.safetensors")
        run(sides[src] + ["--steps", str(half), "--save", saved] + common, env=mpi_env(tmp))
        run(sides[dst] + ["--steps", "0", "--resume", saved, "--save", again] + common,
            env=mpi_env(tmp))
        count = same_tensors(saved, again, label)
        # A new name each time: a resumed run appends to its log.
        log = os.path.join(tmp, f"ckpt-resumed-{mesh}-{src[0]}.jsonl")
        run(sides[dst] + ["--steps", str(args.steps - half), "--resume", saved, "--log", log]
            + common, env=mpi_env(tmp))
        worst = compare_logs(full[half:], read_log(log), label)
        print(f"{label}: {count} tensors saved again bit for bit; resumed steps agree "
              f"(losses within {worst:.1e} relative)")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bin", required=True)
    ap.add_argument("model")
    ap.add_argument("--meshes", nargs="+", default=["dp=2", "dp=4", "ep=2", "dp=2,ep=2"],
                    help="moec --mesh values to compare with one rank")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--mpirun", default="mpirun")
    ap.add_argument("--substitute", action="append", default=[],
                    help="passed to moec (Hugging Face features substituted)")
    ap.add_argument("--set", action="append", default=[], help="passed to moec (key=value)")
    ap.add_argument("--precision", default="fp32",
                    help="passed to moec (bf16: expert rows travel between ranks in bf16)")
    ap.add_argument("--zero", action="store_true",
                    help="compile the sharded plans with --zero=1 (optimizer state sharded)")
    ap.add_argument("--overlap-chunks", type=int, default=1,
                    help="compile the sharded plans with --overlap-chunks=N (the expert "
                         "exchanges in N chunks, collectives issued early)")
    args = ap.parse_args()
    moec, moe_run = os.path.join(args.bin, "moec"), os.path.join(args.bin, "moe-run")
    with tempfile.TemporaryDirectory() as tmp:
        tokens = os.path.join(tmp, "tokens.bin")
        with open(tokens, "wb") as f:
            f.write(struct.pack("<4000H", *[(i * i + 7 * i) % 64 for i in range(4000)]))
        compile_args = [a for s in args.substitute for a in ("--substitute", s)]
        compile_args += [a for s in args.set for a in ("--set", s)]
        compile_args += ["--precision", args.precision]
        one = os.path.join(tmp, "one.moeb")
        run([moec, args.model, "--batch", str(args.batch), "-o", one] + compile_args)
        for mesh in args.meshes:
            ranks = 1
            for axis in mesh.split(","):
                ranks *= int(axis.split("=")[1])
            sharded = os.path.join(tmp, f"{mesh.replace(',', '-').replace('=', '')}.moeb")
            run([moec, args.model, "--batch", str(args.batch), "--mesh", mesh,
                 "-o", sharded] + compile_args + (["--zero=1"] if args.zero else [])
                + [f"--overlap-chunks={args.overlap_chunks}"])
            for optimizer in ("adamw", "sgd"):
                label = f"{os.path.basename(args.model)} {mesh} {optimizer}"
                logs, ckpts = [], []
                for name, cmd in (("one", [moe_run, one]),
                                  ("many", [args.mpirun, "-np", str(ranks), moe_run, sharded])):
                    # One rank's run is the same for every mesh: trained once.
                    key = f"one-{optimizer}" if name == "one" else f"{name}-{ranks}-{optimizer}"
                    log = os.path.join(tmp, key + ".jsonl")
                    ckpt = os.path.join(tmp, key + ".safetensors")
                    if not os.path.exists(log):
                        run(cmd + ["--data", tokens, "--steps", str(args.steps), "--optimizer",
                                   optimizer, "--log", log, "--save", ckpt], env=mpi_env(tmp))
                    logs.append(read_log(log))
                    ckpts.append(ckpt)
                worst = compare_logs(logs[0], logs[1], label)
                lr_sum = sum(step["lr"] for step in logs[0])
                weights = compare_weights(ckpts[0], ckpts[1], label, optimizer, lr_sum)
                unit = ("each tensor's largest" if optimizer == "sgd"
                        else "the distance AdamW moves a weight")
                dropped = max(l["dropped_fraction"] for step in logs[0] for l in step["layers"])
                print(f"{label}: {args.steps} steps agree (losses within {worst:.1e} "
                      f"relative, weights within {weights:.1e} of {unit}; up to "
                      f"{100 * dropped:.1f}% of assignments dropped)")
            # Checkpoints on the last mesh (the one with the most axes): the
            # saved tensors are gathered from every axis it shards.
            if mesh == args.meshes[-1]:
                check_checkpoints(args, tmp, tokens, one, sharded, mesh, ranks, moe_run)


if __name__ == "__main__":
    main()
