"""Trains models on two devices from the same plan and compares them: the
first step's loss and gradients (same weights, same batch) within 1e-5
relative and 1e-4 relative L2, and the loss of the later steps within 1e-4
(after updates, routing is discrete: an ulp of difference in a score can
send a token to another expert, which moves the loss by more than rounding). The plan is compiled with
`moec --target=cuda`, so cuda-emu runs its generated kernels.

Usage: compare_devices.py TOOLS_DIR OUT_DIR DEVICE_A DEVICE_B MODEL_GLOB..."""
import glob
import json
import math
import os
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import safetensors_file  # noqa: E402

LOSS_RTOL, GRAD_RTOL, TRAJECTORY_RTOL, STEPS = 1e-5, 1e-4, 1e-4, 3

tools, out, device_a, device_b = sys.argv[1:5]
models = sorted(m for pattern in sys.argv[5:] for m in glob.glob(pattern))
env = dict(os.environ, MOEC_CACHE_DIR=os.path.join(out, "cache"))


def run(args):
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(args)}\n{done.stderr}")


def floats(path):
    return {name: struct.unpack(f"<{len(blob) // 4}f", blob)
            for name, dtype, shape, blob in safetensors_file.read(path)}


worst_loss = worst_grad = worst_trajectory = 0.0
for model in models:
    plan = os.path.join(out, "plan.moeb")
    command = [os.path.join(tools, "moec"), model, "--target=cuda", "-o", plan]
    if model.endswith(".json"):  # as the parity suite imports them
        command += ["--set", "vocab_size=64", "--set", "training.batch_size=2",
                    "--set", "training.seq_len=8", "--substitute", "mla=gqa",
                    "--substitute", "rope_scaling=none"]
    run(command)
    data = os.path.join(out, "tokens.bin")
    with open(data, "wb") as f:
        f.write(struct.pack("<4000H", *[(i * i + 7 * i) % 64 for i in range(4000)]))
    logs, grads = {}, {}
    for device in (device_a, device_b):
        logs[device] = os.path.join(out, device + ".jsonl")
        grads[device] = os.path.join(out, device + ".grads.safetensors")
        run([os.path.join(tools, "moe-run"), plan, "--device", device, "--data", data,
             "--steps", str(STEPS), "--log", logs[device], "--grads-out", grads[device]])
    a = [json.loads(line)["loss"] for line in open(logs[device_a])]
    b = [json.loads(line)["loss"] for line in open(logs[device_b])]
    for step, (x, y) in enumerate(zip(a, b)):
        error = abs(x - y) / max(abs(x), 1e-12)
        tolerance = LOSS_RTOL if step == 0 else TRAJECTORY_RTOL
        if step == 0:
            worst_loss = max(worst_loss, error)
        else:
            worst_trajectory = max(worst_trajectory, error)
        if error > tolerance:
            sys.exit(f"{model}: step {step} loss {x} on {device_a}, {y} on {device_b}")
    ga, gb = floats(grads[device_a]), floats(grads[device_b])
    for name in ga:
        diff = math.sqrt(sum((x - y) ** 2 for x, y in zip(ga[name], gb[name])))
        norm = math.sqrt(sum(x * x for x in ga[name]))
        error = diff / max(norm, 1e-12)
        worst_grad = max(worst_grad, error)
        if error > GRAD_RTOL:
            sys.exit(f"{model}: gradient {name} differs by {error:.2e} (relative L2)")
print(f"{len(models)} models: {device_b} matches {device_a} "
      f"(first-step loss within {LOSS_RTOL:g}, worst {worst_loss:.1e}; gradients within "
      f"{GRAD_RTOL:g}, worst {worst_grad:.1e}; {STEPS - 1} more steps within "
      f"{TRAJECTORY_RTOL:g}, worst {worst_trajectory:.1e})")
