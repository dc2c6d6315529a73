"""How the device tests compile a model with GPU code (Hugging Face configs
as the parity suite imports them, at a small shape); run as a program, it
compiles models into a folder of plans for a GPU machine without moec:

    cuda_plans.py [--precision bf16] [--gemm cublaslt] [--fusion STRATEGY] TOOLS_DIR OUT_DIR ARCH MODEL_GLOB..."""
import glob
import os
import subprocess
import sys


def compile_command(tools, model, plan, arch="sm_90", precision="fp32", gemm="generated",
                    fusion="none", binaries=True):
    """binaries=False: the kernels' CUDA sources only (moec
    --kernel-binaries=false, no NVRTC), enough for cuda-emu."""
    command = [os.path.join(tools, "moec"), model, "--target=cuda", "--gpu-arch=" + arch,
               "--precision=" + precision, "--gemm=" + gemm, "--fusion=" + fusion, "-o", plan]
    if not binaries:
        command.append("--kernel-binaries=false")
    if model.endswith(".json"):
        command += ["--set", "vocab_size=64", "--set", "training.batch_size=2",
                    "--set", "training.seq_len=8"]
    return command


if __name__ == "__main__":
    arguments = sys.argv[1:]
    options = {"--precision": "fp32", "--gemm": "generated", "--fusion": "none"}
    while arguments[0] in options:
        options[arguments[0]], arguments = arguments[1], arguments[2:]
    precision, gemm, fusion = options["--precision"], options["--gemm"], options["--fusion"]
    tools, out, arch = arguments[:3]
    models = sorted(m for pattern in arguments[3:] for m in glob.glob(pattern))
    for model in models:
        plan = os.path.join(out, os.path.splitext(os.path.basename(model))[0] + ".moeb")
        subprocess.run(compile_command(tools, model, plan, arch, precision, gemm, fusion),
                       check=True, stderr=subprocess.DEVNULL)
    print(f"{len(models)} {precision} plans ({gemm} GEMMs, fusion {fusion}) for {arch} in {out}")
