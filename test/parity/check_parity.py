"""Compiles a model with moec, evaluates one batch with moe-run on CPU, and
checks the result against moe_reference.py on the same weights and batch.

usage: check_parity.py --bin BUILD/bin MODEL [--set k=v]... [--substitute x=y]...

Losses must agree within a relative error of 1e-5 (fp32); per-expert token
counts and dropped fractions exactly.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moe_reference  # noqa: E402

REL_TOL = 1e-5


def run(cmd):
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"FAILED: {' '.join(cmd)}\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("model")
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--substitute", action="append", default=[])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--train", action="store_true",
                    help="also check first-step gradients and 10 AdamW steps")
    args = ap.parse_args()

    cfg = moe_reference.Cfg(args.model, args.set)
    with tempfile.TemporaryDirectory() as tmp:
        plan, weights, data = (os.path.join(tmp, n) for n in ("m.moeb", "w.safetensors", "d.bin"))
        compile_cmd = [os.path.join(args.bin, "moec"), args.model, "-o", plan]
        for s in args.set:
            compile_cmd += ["--set", s]
        for s in args.substitute:
            compile_cmd += ["--substitute", s]
        run(compile_cmd)

        rng = np.random.default_rng(args.seed)
        tokens = rng.integers(0, cfg.vocab, size=4096, dtype=np.uint32)
        dtype = "u16" if cfg.vocab <= 65536 else "u32"
        tokens.astype("<u2" if dtype == "u16" else "<u4").tofile(data)

        result = json.loads(run([os.path.join(args.bin, "moe-run"), plan, "--eval", "--json",
                                 "--data", data, "--data-dtype", dtype, "--no-shuffle",
                                 "--seed", str(args.seed), "--save-init", weights]))

        # Random weights are too tame to exercise routing: perturb them, write
        # them back and evaluate from the file, as a user with real weights would.
        w = moe_reference.load_safetensors(weights)
        gen = torch.Generator().manual_seed(args.seed)
        for name, t in w.items():
            if name.endswith("norm.weight") or "layernorm" in name:
                w[name] = 1 + 0.1 * torch.randn(t.shape, generator=gen)
            elif name.endswith("bias"):
                w[name] = 0.05 * torch.randn(t.shape, generator=gen)
            else:
                w[name] = 0.2 * torch.randn(t.shape, generator=gen)
        write_safetensors(weights, w)
        result = json.loads(run([os.path.join(args.bin, "moe-run"), plan, "--eval", "--json",
                                 "--data", data, "--data-dtype", dtype, "--no-shuffle",
                                 "--init", weights]))

        B, S = batch_shape(plan, args)
        span = len(tokens) - S - 1
        inp = torch.tensor(np.stack([tokens[(b * S) % span:(b * S) % span + S] for b in range(B)]).astype(np.int64))
        tgt = torch.tensor(np.stack([tokens[(b * S) % span + 1:(b * S) % span + S + 1] for b in range(B)]).astype(np.int64))
        with torch.no_grad():
            ref = moe_reference.Reference(cfg, {n: t.double() for n, t in w.items()}).forward(inp, tgt)
        train_failures = []
        if args.train:
            train_failures = check_training(args, cfg, plan, weights, data, dtype, tokens, w, B, S)

    failures = []
    for key, value in ref.items():
        if key == "layers":
            continue
        got = result.get(key)
        if got is None:
            failures.append(f"{key}: missing from moe-run's output")
            continue
        err = abs(got - value) / max(abs(value), 1e-12)
        status = "ok" if err <= REL_TOL or abs(got - value) < 1e-9 else "MISMATCH"
        print(f"{key:22s} moec {got:.8f}  torch {value:.8f}  rel {err:.2e}  {status}")
        if status != "ok":
            failures.append(key)
    for key in result:
        if key not in ref and key not in ("layers", "tokens", "step", "seconds", "peak_rss_bytes",
                                          "peak_device_bytes"):
            failures.append(f"{key}: reported by moe-run but not by the reference")
    ours = {l["layer"]: l for l in result["layers"]}
    for layer in ref["layers"]:
        got = ours.get(layer["layer"])
        same = got is not None and got["expert_tokens"] == layer["expert_tokens"] and \
            abs(got["dropped_fraction"] - layer["dropped_fraction"]) < 1e-6
        print(f"layer {layer['layer']}: tokens {layer['expert_tokens']} dropped "
              f"{layer['dropped_fraction']:.4f}  {'ok' if same else 'MISMATCH ' + str(got)}")
        if not same:
            failures.append(f"layer {layer['layer']} routing")
    if len(ours) != len(ref["layers"]):
        failures.append("different number of MoE layers")
    failures += train_failures
    if failures:
        sys.exit("parity FAILED: " + ", ".join(failures))
    print("parity ok")


GRAD_TOL = 1e-4
STEPS = 10


def batch_at(tokens, step, B, S):
    span = len(tokens) - S - 1
    starts = [((step * B + b) * S) % span for b in range(B)]
    inp = np.stack([tokens[o:o + S] for o in starts]).astype(np.int64)
    tgt = np.stack([tokens[o + 1:o + S + 1] for o in starts]).astype(np.int64)
    return torch.tensor(inp), torch.tensor(tgt)


def lr_at(step, t):
    lr, warmup, total, ratio = t["lr"], t["warmup_steps"], t["total_steps"], t["min_lr_ratio"]
    if step < warmup:
        return lr * (step + 1) / warmup
    if t["kind"] == "constant":
        return lr
    p = min(max((step - warmup) / max(1, total - warmup), 0.0), 1.0)
    if t["kind"] == "cosine":
        return lr * (ratio + (1 - ratio) * 0.5 * (1 + math.cos(math.pi * p)))
    return lr * (1 - (1 - ratio) * p)


def training_seed(path, overrides):
    raw = moe_reference.read_description(path, overrides)
    return int((raw.get("training", {}) or {}).get("seed", 0))


def training_config(path, overrides):
    raw = moe_reference.read_description(path, overrides)
    t = raw.get("training", {}) or {}
    o, s = t.get("optimizer", {}) or {}, t.get("schedule", {}) or {}
    return {"kind": s.get("kind", "cosine"), "lr": float(o.get("lr", 3e-4)),
            "beta1": float(o.get("beta1", 0.9)), "beta2": float(o.get("beta2", 0.95)),
            "eps": float(o.get("eps", 1e-8)), "weight_decay": float(o.get("weight_decay", 0.1)),
            "warmup_steps": s.get("warmup_steps", 0), "total_steps": s.get("total_steps", 1000),
            "min_lr_ratio": float(s.get("min_lr_ratio", 0.1)),
            "grad_clip": float(t.get("grad_clip", 1.0)), "optimizer": o.get("kind", "adamw")}


def check_training(args, cfg, plan, weights, data, dtype, tokens, w, B, S):
    failures = []
    tmp = os.path.dirname(plan)
    grads_path, log_path = os.path.join(tmp, "g.safetensors"), os.path.join(tmp, "log.jsonl")
    run([os.path.join(args.bin, "moe-run"), plan, "--steps", str(STEPS), "--data", data,
         "--data-dtype", dtype, "--no-shuffle", "--init", weights, "--grads-out", grads_path,
         "--log", log_path])
    ours = moe_reference.load_safetensors(grads_path)
    logged = [json.loads(line) for line in open(log_path)]

    params = {name: t.double().requires_grad_(True) for name, t in w.items()}
    trainable = [params[name] for name in ours]
    seed = training_seed(args.model, args.set)
    noise = lambda step: seed * 1000003 + step
    inp, tgt = batch_at(tokens, 0, B, S)
    ref = moe_reference.Reference(cfg, params, noise(0), 0)
    loss = ref.forward_tensor(inp, tgt)
    grads = torch.autograd.grad(loss, trainable, allow_unused=True)
    worst = 0.0
    for (name, mine), theirs in zip(ours.items(), grads):
        theirs = torch.zeros_like(mine) if theirs is None else theirs
        err = float((mine.double() - theirs).norm() / max(float(theirs.norm()), 1e-12))
        worst = max(worst, err)
        if err > GRAD_TOL:
            failures.append(f"gradient of {name} (relative L2 {err:.2e})")
    print(f"gradients: {len(ours)} tensors, worst relative L2 error {worst:.2e}")

    t = training_config(args.model, args.set)
    opt = torch.optim.AdamW(trainable, lr=t["lr"], betas=(t["beta1"], t["beta2"]),
                            eps=t["eps"], weight_decay=t["weight_decay"])
    for step in range(STEPS):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, t)
        inp, tgt = batch_at(tokens, step, B, S)
        opt.zero_grad()
        ref = moe_reference.Reference(cfg, params, noise(step), step)
        loss, metrics = ref._forward(inp, tgt)
        loss.backward()
        if t["grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_(trainable, t["grad_clip"])
        opt.step()
        if cfg.moe and cfg.selection_bias:
            # Auxiliary-loss-free balancing (DeepSeek-V3), part of the step.
            with torch.no_grad():
                for layer in metrics["layers"]:
                    load = torch.tensor(layer["expert_tokens"], dtype=torch.float64)
                    bias = params[ref.n.bias(layer["layer"])]
                    bias += cfg.bias_update_rate * torch.sign(load.mean() - load).float()
        mine = logged[step]["loss"]
        err = abs(mine - float(loss)) / abs(float(loss))
        print(f"step {step}: moec {mine:.8f}  torch {float(loss):.8f}  rel {err:.2e}")
        if err > GRAD_TOL:
            failures.append(f"loss at step {step}")
    return failures


def batch_shape(plan, args):
    out = run([os.path.join(args.bin, "moe-inspect"), plan])
    for line in out.splitlines():
        if line.startswith("training"):
            parts = line.split()
            return int(parts[2]), int(parts[5].rstrip(","))
    sys.exit("cannot read the batch shape from moe-inspect")


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, t in tensors.items():
        data = t.contiguous().float().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for b in blobs:
            f.write(b)


if __name__ == "__main__":
    main()
