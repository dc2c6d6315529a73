"""Runs the command of `moec explore`'s first row and checks that
`moec cost` predicts, for the plan it builds, the step time the row shows.

Usage: check_explore_command.py TABLE WORKDIR CLUSTER
"""
import os
import re
import shlex
import subprocess
import sys

table, work, cluster = sys.argv[1:4]
text = open(table).read()
row = re.search(r"^ +1 +([0-9.]+) ", text, re.M)
command = re.search(r"^ +1  (moec .*)$", text, re.M)
if not row or not command:
    sys.exit("no first row and command in the table")
words = shlex.split(command.group(1))
plan = os.path.join(work, "first.moeb")
words[-1] = plan  # -o plan.moeb
subprocess.run(words, check=True)
cost = subprocess.run(["moec", "cost", plan, "--cluster", cluster], check=True,
                      capture_output=True, text=True).stdout
predicted = float(re.search(r"([0-9.]+) ms per run", cost).group(1))
if abs(predicted - float(row.group(1))) > 0.0005 + 1e-6 * predicted:
    sys.exit(f"the table says {row.group(1)} ms, moec cost of its command {predicted} ms")
print(f"the first row's command builds a plan of {predicted:.3f} ms, as the table says")
