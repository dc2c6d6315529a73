#!/usr/bin/env python3
"""A moe-run --trace file whose every step takes what `moec cost --steps`
predicts (read on stdin), for RUNS runs: a trace of known times, from
which `moec calibrate` must recover the cluster that predicted them.

Usage: moec cost PLAN --cluster TRUTH.yaml --steps | trace_from_cost.py RUNS > TRACE.json
"""
import json
import re
import sys

runs = int(sys.argv[1])
steps = []
for line in sys.stdin:
    m = re.match(r"\s+step\s+(\d+) (\S+)\s+(compute|queue)\s+start [\d.]+ ms, ([\d.]+) ms", line)
    if m:
        steps.append((int(m.group(1)), m.group(2), float(m.group(4)) * 1e3))  # us
if not steps:
    sys.exit("no steps on stdin (moec cost --steps)")
events, clock = [], 0.0
for run in range(runs):
    for index, op, dur in steps:
        events.append({"name": op, "ph": "X", "ts": clock, "dur": dur, "pid": 1, "tid": 1,
                       "args": {"step": run, "index": index}})
        clock += dur
json.dump({"traceEvents": events, "displayTimeUnit": "ms"}, sys.stdout)
