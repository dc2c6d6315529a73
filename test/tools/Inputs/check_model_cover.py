"""Checks that the covering models hold every op of all models.

Usage: check_model_cover.py TOOLS --all MODEL... --cover MODEL...

Each model is compiled twice to planned IR (`moec --emit=planned`): with
--fusion=all, and sharded (--mesh dp=2,ep=2 --zero=1 --overlap-chunks=3);
what it holds is the set of op names, fused-group kinds and collective
reductions in that IR. Sanitized test runs sweep only the covering models
(test/CMakeLists.txt), so a model whose plans hold something they lack
must join them: the script names it and what is missing, and fails.
"""
import os
import re
import subprocess
import sys

PATTERN = re.compile(r'(?<![\w."])(?:moe|mesh|tensor)\.[a-z_0-9]+|kind = "[a-z_]+"|reduction = [a-z_<>"]+')


def contents(tools, model):
    extra = []
    if model.endswith(".json"):  # as the parity and sharding suites import them
        extra += ["--set", "vocab_size=64"]
    if os.path.basename(model).startswith("deepseek"):
        extra += ["--substitute", "mla=gqa", "--substitute", "rope_scaling=none"]
    found = set()
    for variant in (["--fusion=all"],
                    ["--mesh", "dp=2,ep=2", "--zero=1", "--batch", "8", "--overlap-chunks=3"]):
        run = subprocess.run([os.path.join(tools, "moec"), model, "--emit=planned"] + variant
                             + extra, capture_output=True, text=True)
        if run.returncode != 0:
            sys.exit(f"{model} {' '.join(variant)}: moec failed:\n{run.stderr}")
        found |= {variant[0] + " " + m for m in PATTERN.findall(run.stdout)}
    return found


tools = sys.argv[1]
split = sys.argv.index("--cover")
every, cover = sys.argv[sys.argv.index("--all") + 1:split], sys.argv[split + 1:]
covered = set()
for model in cover:
    covered |= contents(tools, model)
missing = {}
for model in every:
    if model not in cover:
        lacking = contents(tools, model) - covered
        if lacking:
            missing[model] = sorted(lacking)
for model, lacking in missing.items():
    print(f"{model} holds what no covering model does: {', '.join(lacking)}")
if missing:
    sys.exit("add these models to MOEC_COVERING_MODELS (test/CMakeLists.txt)")
print(f"the {len(cover)} covering models hold every op, fused group and collective of all "
      f"{len(every)} models")
