#!/usr/bin/env python3
"""The ops that take a traced run's time: reads a `moe-run --trace` (or
`moe_layer_bench --trace`) file, where each op (and each kernel it
launched, category "kernel", which this leaves out) was timed by the
device's events, and prints one line: the time per run in ops and the
longest ops, averaged over the runs after the first.

  demo step 9.37 ms in ops: moe.linear_grad 1.23, ... ms

Usage: bench/trace_top.py TRACE.json NAME [--top N]
"""
import argparse
import collections
import json
import sys


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trace")
    parser.add_argument("name")
    parser.add_argument("--top", type=int, default=6)
    args = parser.parse_args()
    try:
        events = json.load(open(args.trace))["traceEvents"]
    except Exception as e:
        sys.exit(f"no trace: {e}")
    # The first run pays for what happens once (the device's events are
    # made then): left out when there are others, as moec cost does.
    runs = sorted({e.get("args", {}).get("step") for e in events if "dur" in e})
    counted = runs[1:] if len(runs) > 1 else runs
    total = collections.Counter()
    for e in events:
        if "dur" in e and e.get("cat") != "kernel" and e.get("args", {}).get("step") in counted:
            total[e["name"]] += e["dur"] / 1e3 / len(counted)  # kernels lie inside their op
    if not total:
        sys.exit(f"no trace: {args.trace} has no timed ops")
    step = sum(total.values())
    top = ", ".join(f"{name} {ms:.2f}" for name, ms in total.most_common(args.top))
    print(f"{args.name} step {step:.2f} ms in ops: {top} ms")


if __name__ == "__main__":
    main()
