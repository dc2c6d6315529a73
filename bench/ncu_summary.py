#!/usr/bin/env python3
"""Where the generated kernels lose time, from Nsight Compute's counters
(scripts/gpu-check.sh runs `ncu --csv --page raw` over one training step
of a benchmark plan and keeps the file in $OUT/ncu).

Reads the raw page (one row per profiled kernel launch, one column per
metric, a row of units under the header) and prints one line per kernel
entry (launches of the same entry summed), the longest first:

  grouped_ffn_up.up1  x1  41.20 ms  SM 38%  memory 22%  tensor 31%  warps 24%
      128 regs  stalls: long_scoreboard 6.1, barrier 2.3, mio_throttle 1.1

"tensor" is the tensor pipe's busy share, "warps" the achieved occupancy,
and stalls the cycles a warp waits per issued instruction, by reason (the
three largest). Columns missing from the file (another ncu version, a
section left out) are left out of the line.

Usage: bench/ncu_summary.py RAW.csv [--top N]
"""
import argparse
import collections
import csv
import re
import sys

DURATION = "gpu__time_duration.sum"
SHARES = (  # (label, metric): percentages, averaged over launches by duration
    ("SM", "sm__throughput.avg.pct_of_peak_sustained_elapsed"),
    ("memory", "gpu__compute_memory_throughput.avg.pct_of_peak_sustained_elapsed"),
    ("tensor", "sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active"),
    ("warps", "sm__warps_active.avg.pct_of_peak_sustained_active"),
)
REGISTERS = "launch__registers_per_thread"
STALL = re.compile(r"^smsp__average_warps?_issue_stalled_(\w+?)_per_issue_active\.ratio$")


def number(text):
    try:
        return float(text.replace(",", ""))
    except (AttributeError, ValueError):
        return None


def entry_of(kernel):
    """`grouped_ffn_up_1a8e4053236a0c26_up1(...)` -> `grouped_ffn_up.up1`."""
    name = kernel.split("(", 1)[0].strip()
    match = re.match(r"^(.*)_[0-9a-f]{8,16}_(\w+)$", name)
    return f"{match.group(1)}.{match.group(2)}" if match else name


def read(path):
    with open(path, newline="") as f:
        # ncu prints its own lines (==PROF== ...) before the table.
        lines = [l for l in f if l.startswith('"')]
    rows = list(csv.DictReader(lines))
    if not rows or "Kernel Name" not in rows[0]:
        sys.exit(f"{path}: no ncu raw page (a header with 'Kernel Name')")
    # The row under the header gives units (its ID is empty).
    if not rows[0].get("ID", "").strip():
        units, rows = rows[0], rows[1:]
    else:
        units = {}
    return rows, units


def summarise(rows, units):
    # Durations in ms whatever unit ncu chose.
    scale = {"nsecond": 1e-6, "ns": 1e-6, "usecond": 1e-3, "us": 1e-3, "msecond": 1.0,
             "ms": 1.0, "second": 1e3, "s": 1e3}.get(units.get(DURATION, "nsecond"), 1e-6)
    entries = collections.OrderedDict()
    for row in rows:
        ms = number(row.get(DURATION))
        if ms is None:
            continue
        ms *= scale
        e = entries.setdefault(entry_of(row["Kernel Name"]), {
            "launches": 0, "ms": 0.0, "shares": collections.Counter(),
            "stalls": collections.Counter(), "weights": collections.Counter(), "registers": None})
        e["launches"] += 1
        e["ms"] += ms
        for label, metric in SHARES:
            value = number(row.get(metric))
            if value is not None:  # averaged over the launches that have it
                e["shares"][label] += value * ms
                e["weights"][label] += ms
        for metric, text in row.items():
            match = STALL.match(metric or "")
            value = number(text)
            if match and value is not None:
                e["stalls"][match.group(1)] += value * ms
                e["weights"]["stall " + match.group(1)] += ms
        e["registers"] = number(row.get(REGISTERS)) or e["registers"]
    return entries


def line_of(name, e):
    parts = [f"{name}  x{e['launches']}  {e['ms']:.2f} ms"]
    for label, _ in SHARES:
        if label in e["shares"]:
            parts.append(f"{label} {e['shares'][label] / e['weights'][label]:.0f}%")
    text = "  ".join(parts)
    if e["registers"]:
        text += f"\n    {e['registers']:.0f} regs"
    stalls = [(k, v / e["weights"]["stall " + k]) for k, v in e["stalls"].items()
              if k != "selected" and v > 0]
    stalls.sort(key=lambda kv: -kv[1])
    if stalls:
        text += ("  stalls: " if e["registers"] else "\n    stalls: ") + ", ".join(
            f"{k} {v:.1f}" for k, v in stalls[:3])
    return text


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv")
    parser.add_argument("--top", type=int, default=8)
    args = parser.parse_args()
    rows, units = read(args.csv)
    entries = summarise(rows, units)
    if not entries:
        sys.exit(f"{args.csv}: no kernel with a duration ({DURATION})")
    total = sum(e["ms"] for e in entries.values())
    launches = sum(e["launches"] for e in entries.values())
    ordered = sorted(entries.items(), key=lambda kv: -kv[1]["ms"])
    print(f"{launches} launches, {total:.2f} ms in kernels (profiled, one at a time)")
    for name, e in ordered[:args.top]:
        print(line_of(name, e))


if __name__ == "__main__":
    main()
