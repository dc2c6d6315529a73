"""Compiles models with `moec --target=cuda` for each architecture given and
checks, through moe-inspect, that every generated kernel has PTX (NVRTC) and a
cubin (ptxas). Usage:
compile_models.py [--precision bf16] [--fusion STRATEGY] TOOLS_DIR OUT_DIR ARCH... -- MODEL_GLOB...
Kernels come from OUT_DIR/cache when an earlier run compiled the same source
for the same architecture."""
import glob
import os
import re
import subprocess
import sys

arguments = sys.argv[1:]
options = {"--precision": "fp32", "--fusion": "none"}
while arguments[0] in options:
    options[arguments[0]], arguments = arguments[1], arguments[2:]
precision, fusion = options["--precision"], options["--fusion"]
tools, out = arguments[0], arguments[1]
split = arguments.index("--")
archs = arguments[2:split]
models = sorted(m for pattern in arguments[split + 1:] for m in glob.glob(pattern))
env = dict(os.environ, MOEC_CACHE_DIR=os.path.join(out, "cache"))
total = 0
for model in models:
    for arch in archs:
        plan = os.path.join(out, "plan.moeb")
        command = [os.path.join(tools, "moec"), model, "--target=cuda", "--gpu-arch=" + arch,
                   "--precision=" + precision, "--fusion=" + fusion, "-o", plan]
        if model.endswith(".json"):  # as the parity suite imports them
            command += ["--set", "vocab_size=64"]
        compiled = subprocess.run(command, env=env, capture_output=True, text=True)
        if compiled.returncode != 0:
            sys.exit(f"{model} {arch}: moec failed:\n{compiled.stderr}")
        summary = subprocess.run([os.path.join(tools, "moe-inspect"), plan],
                                 capture_output=True, text=True, check=True).stdout
        match = re.search(r"target    cuda (\S+): (\d+) generated kernels \(PTX .*; (\d+) with a cubin", summary)
        if not match or match.group(1) != arch or match.group(2) != match.group(3) or match.group(2) == "0":
            sys.exit(f"{model} {arch}: not every kernel has a cubin:\n{summary}")
        total += int(match.group(2))
fused = f" (fusion {fusion})" if fusion != "none" else ""
print(f"compiled {len(models)} {precision}{fused} models for {' '.join(archs)}: {total} kernels, "
      "each with PTX and a cubin")
