"""Checks a `moe-run --trace` file of a generated plan: every kernel event
(category "kernel") lies inside exactly one op event (category "op") of
the same run and step, and carries that op in args.op; prints the counts
and whether each run's op events follow one another without overlapping.

Usage: check_kernel_trace.py TRACE.json
"""
import json
import sys

events = json.load(open(sys.argv[1]))["traceEvents"]
ops = [e for e in events if e["cat"] == "op"]
kernels = [e for e in events if e["cat"] == "kernel"]
slack = 1e-3  # microseconds: the file's times are rounded
outside = 0
for k in kernels:
    holders = [o for o in ops
               if (o["args"]["step"], o["args"]["index"]) == (k["args"]["step"], k["args"]["index"])
               and o["name"] == k["args"]["op"]
               and o["ts"] - slack <= k["ts"] and k["ts"] + k["dur"] <= o["ts"] + o["dur"] + slack]
    outside += len(holders) != 1
ordered = True
for run in {o["args"]["step"] for o in ops}:
    mine = sorted((o for o in ops if o["args"]["step"] == run), key=lambda o: o["args"]["index"])
    ordered &= all(a["ts"] + a["dur"] <= b["ts"] + slack for a, b in zip(mine, mine[1:]))
print(f"{len({o['args']['step'] for o in ops})} runs, {len(ops)} op events, "
      f"{len(kernels)} kernel events, {outside} outside their op, ops in order: {ordered}")
