"""Reads two `moec cost` reports and checks that the second exposes less
collective time than the first (the overlap the plan allows), with at
least as many bytes sent."""
import re
import sys


def figures(path):
    text = open(path).read()
    exposed = float(re.search(r"([0-9.]+) ms of them exposed", text).group(1))
    sent = float(re.search(r"sent ([0-9]+)", text).group(1))
    return exposed, sent


(before, sent_before), (after, sent_after) = figures(sys.argv[1]), figures(sys.argv[2])
if not after < before:
    sys.exit(f"exposed collective time {after} ms is not below {before} ms")
if sent_after < 0.999 * sent_before:  # chunks round their bytes down
    sys.exit(f"{sent_after} bytes sent, fewer than {sent_before}")
print(f"exposed collective time falls from {before:.6f} ms to {after:.6f} ms")
