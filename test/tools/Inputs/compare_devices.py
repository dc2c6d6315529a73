"""Trains models on two devices from the same plan and compares them: the
first step's loss and gradients (same weights, same batch) within 1e-5
relative and 1e-4 relative L2, and the loss of the later steps within 1e-4
(after updates, routing is discrete: an ulp of difference in a score can
send a token to another expert, which moves the loss by more than rounding). The plan is compiled with
`moec --target=cuda`, so cuda-emu runs its generated kernels (their sources
only, --kernel-binaries=false, unless one of the devices is a GPU).

Usage: compare_devices.py [--repeat] [--data TOKENS] [--precision bf16] [--gemm cublaslt] [--fusion STRATEGY] TOOLS_DIR OUT_DIR DEVICE_A DEVICE_B MODEL_GLOB...
With --repeat, DEVICE_B trains each model a second time and must give the
same bits (losses and gradients): the determinism of the device. --data
trains on that u16 token file instead of a generated one. --precision bf16
compiles the models with bf16 matrix products (moec --precision=bf16), which
both devices run (operands rounded to bf16, sums in fp32), and compares them
at looser gradient tolerances: the sums run in another order, and a value
that lands on the other side of a bf16 rounding boundary in the activations
the plan stores in bf16 moves by half a bf16 ulp (2e-3). --gemm cublaslt compiles dense GEMMs as library calls
(cuBLASLt on a GPU, the host on cuda-emu). --fusion compiles with that
fusion strategy (moec --fusion; numbers must not change with it).
Every model is checked, a failure does not stop the others: one line per
failing model, then the summary; the exit status is 1 if any failed.
A MODEL_GLOB that names .moeb files uses those plans as they are (on a
machine without moec, such as a GPU node), else moec compiles each model."""
import glob
import json
import math
import os
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import safetensors_file  # noqa: E402
from cuda_plans import compile_command  # noqa: E402

LOSS_RTOL, GRAD_RTOL, TRAJECTORY_RTOL, STEPS = 1e-5, 1e-4, 1e-4, 3
# bf16 on both devices (--precision bf16): the first-step loss agrees as in
# fp32, the gradients within 7e-4 (cpu against cuda-emu, 5 models; against an
# fp32 cpu they were 1.1e-2 apart).
BF16_LOSS_RTOL, BF16_GRAD_RTOL, BF16_TRAJECTORY_RTOL = 1e-5, 5e-3, 1e-4

arguments = [a for a in sys.argv[1:] if a != "--repeat"]
repeat = len(arguments) != len(sys.argv) - 1
tokens, precision = None, "fp32"
if "--data" in arguments:
    at = arguments.index("--data")
    tokens = arguments[at + 1]
    del arguments[at:at + 2]
gemm, fusion = "generated", "none"
if "--fusion" in arguments:
    at = arguments.index("--fusion")
    fusion = arguments[at + 1]
    del arguments[at:at + 2]
if "--gemm" in arguments:
    at = arguments.index("--gemm")
    gemm = arguments[at + 1]
    del arguments[at:at + 2]
if "--precision" in arguments:
    at = arguments.index("--precision")
    precision = arguments[at + 1]
    del arguments[at:at + 2]
    if precision == "bf16":
        LOSS_RTOL, GRAD_RTOL, TRAJECTORY_RTOL = BF16_LOSS_RTOL, BF16_GRAD_RTOL, BF16_TRAJECTORY_RTOL
tools, out, device_a, device_b = arguments[:4]
models = sorted(m for pattern in arguments[4:] for m in glob.glob(pattern))
if not models:
    sys.exit("no models match " + " ".join(arguments[4:]))
os.makedirs(out, exist_ok=True)
env = dict(os.environ, MOEC_CACHE_DIR=os.path.join(out, "cache"))


class Mismatch(Exception):
    pass


def run(args):
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise Mismatch(f"failed: {' '.join(args)}\n{done.stderr.strip()}")


def floats(path):
    return {name: struct.unpack(f"<{len(blob) // 4}f", blob)
            for name, dtype, shape, blob in safetensors_file.read(path)}


worst_loss = worst_grad = worst_trajectory = 0.0


def check(model):
    global worst_loss, worst_grad, worst_trajectory
    plan = model
    if not model.endswith(".moeb"):
        plan = os.path.join(out, "plan.moeb")
        # Without a GPU among the devices, the kernels' sources are enough
        # (cuda-emu compiles them itself): no NVRTC.
        run(compile_command(tools, model, plan, precision=precision, gemm=gemm, fusion=fusion,
                            binaries="cuda" in (device_a, device_b)))
    data = tokens or os.path.join(out, "tokens.bin")
    if not tokens:
        with open(data, "wb") as f:
            f.write(struct.pack("<4000H", *[(i * i + 7 * i) % 64 for i in range(4000)]))
    logs, grads = {}, {}
    runs = [device_a, device_b] + ([device_b + ".again"] if repeat else [])
    for name in runs:
        device = name.split(".")[0]
        logs[name] = os.path.join(out, name + ".jsonl")
        grads[name] = os.path.join(out, name + ".grads.safetensors")
        run([os.path.join(tools, "moe-run"), plan, "--device", device, "--data", data,
             "--steps", str(STEPS), "--log", logs[name], "--grads-out", grads[name]])
    if repeat:
        again = [json.loads(line)["loss"] for line in open(logs[device_b + ".again"])]
        first = [json.loads(line)["loss"] for line in open(logs[device_b])]
        if again != first or open(grads[device_b], "rb").read() != open(
                grads[device_b + ".again"], "rb").read():
            raise Mismatch(f"two runs on {device_b} differ: losses {first} and {again}")
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
            raise Mismatch(f"step {step} loss {x} on {device_a}, {y} on {device_b}")
    ga, gb = floats(grads[device_a]), floats(grads[device_b])
    # Per tensor in fp32; in bf16, over all gradients at once: an operand
    # rounded differently can move a token to another expert, which changes
    # the gradients of that expert's weights (and of everything upstream)
    # by more than rounding, though the step as a whole agrees.
    groups = {name: [name] for name in ga} if precision == "fp32" else {"(all)": list(ga)}
    for label, names in groups.items():
        diff = math.sqrt(sum((x - y) ** 2 for n in names for x, y in zip(ga[n], gb[n])))
        norm = math.sqrt(sum(x * x for n in names for x in ga[n]))
        error = diff / max(norm, 1e-12)
        worst_grad = max(worst_grad, error)
        if error > GRAD_RTOL:
            raise Mismatch(f"gradient {label} differs by {error:.2e} (relative L2)")


failures = []
for model in models:
    try:
        check(model)
    except Mismatch as mismatch:
        failures.append(model)
        print(f"{model}: {mismatch}", flush=True)
summary = (f"{device_b}{' (bf16)' if precision == 'bf16' else ''}"
           f"{' (cuBLASLt)' if gemm == 'cublaslt' else ''}"
           f"{f' (fusion {fusion})' if fusion != 'none' else ''} matches {device_a} "
           f"{'(and itself, bit for bit, run twice) ' if repeat else ''}"
           f"(first-step loss within {LOSS_RTOL:g}, worst {worst_loss:.1e}; gradients within "
           f"{GRAD_RTOL:g}, worst {worst_grad:.1e}; {STEPS - 1} more steps within "
           f"{TRAJECTORY_RTOL:g}, worst {worst_trajectory:.1e})")
if failures:
    sys.exit(f"{len(failures)} of {len(models)} models FAIL; the others: {summary}")
print(f"{len(models)} models: {summary}")
