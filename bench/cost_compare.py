#!/usr/bin/env python3
"""Predicted against measured step times: the Spearman correlation of the
two rankings and the median relative error (bench/cost_model_cpu.py on the
CPU, scripts/gpu-check.sh on the GPU machine).

As a script: reads lines "NAME PREDICTED MEASURED" (any unit, the same for
both) and prints "N plans: Spearman S, median error E%".

Usage: bench/cost_compare.py PAIRS.txt
"""
import statistics
import sys


def spearman(a, b):
    def ranked(xs):
        order = sorted(range(len(xs)), key=lambda i: xs[i])
        r = [0.0] * len(xs)
        i = 0
        while i < len(order):  # ties share their mean rank
            j = i
            while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
                j += 1
            for k in range(i, j + 1):
                r[order[k]] = (i + j) / 2
            i = j + 1
        return r
    ra, rb = ranked(a), ranked(b)
    ma, mb = statistics.mean(ra), statistics.mean(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    var = (sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb)) ** 0.5
    return cov / var if var else float("nan")


def median_error(predicted, measured):
    return statistics.median(abs(p - m) / m for p, m in zip(predicted, measured))


def summary(predicted, measured):
    return (f"{len(predicted)} plans: Spearman {spearman(predicted, measured):.3f}, "
            f"median error {100 * median_error(predicted, measured):.0f}%")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    predicted, measured = [], []
    for number, line in enumerate(open(sys.argv[1]), 1):
        words = line.split()
        if not words:
            continue
        try:
            p, m = float(words[1]), float(words[2])
        except (IndexError, ValueError):
            sys.exit(f"{sys.argv[1]}:{number}: expected NAME PREDICTED MEASURED, got {line.strip()!r}")
        if p > 0 and m > 0:
            predicted.append(p)
            measured.append(m)
    if len(predicted) < 2:
        sys.exit(f"{sys.argv[1]}: fewer than 2 plans with both times")
    print(summary(predicted, measured))


if __name__ == "__main__":
    main()
