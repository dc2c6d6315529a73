"""Replaces a byte string in a .moeb plan by another of the same length and
writes the checksum footer again: a forged plan that passes the integrity
check, to test what the runtime does with its contents.

usage: patch_plan.py IN OUT OLD NEW
"""
import sys

FOOTER_SIZE = 16
MAGIC = b"MOEBSUM1"


def checksum(data: bytes) -> int:
    h = 1469598103934665603
    for b in data:
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def main() -> None:
    src, dst, old, new = sys.argv[1], sys.argv[2], sys.argv[3].encode(), sys.argv[4].encode()
    if len(old) != len(new):
        sys.exit("OLD and NEW must have the same length")
    data = open(src, "rb").read()[:-FOOTER_SIZE]
    if data.count(old) != 1:
        sys.exit(f"{old!r} occurs {data.count(old)} times in {src}, not once")
    data = data.replace(old, new)
    footer = checksum(data).to_bytes(8, "little") + MAGIC
    open(dst, "wb").write(data + footer)


if __name__ == "__main__":
    main()
