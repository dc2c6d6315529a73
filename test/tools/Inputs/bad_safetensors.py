"""Writes a safetensors file that is wrong in one way (for tests of the
loader): `duplicate` names one tensor twice, `overlap` has two tensors
sharing bytes, `huge` a shape whose size overflows 64 bits.

Usage: bad_safetensors.py OUT duplicate|overlap|huge"""
import struct
import sys

out, kind = sys.argv[1:]
entry = '"%s": {"dtype": "F32", "shape": %s, "data_offsets": [%d, %d]}'
if kind == "duplicate":
    entries = [entry % ("a", "[2]", 0, 8), entry % ("a", "[2]", 8, 16)]
elif kind == "overlap":
    entries = [entry % ("a", "[2]", 0, 8), entry % ("b", "[2]", 4, 12)]
elif kind == "huge":
    entries = [entry % ("a", "[4294967296, 4294967296, 4]", 0, 0)]
else:
    sys.exit("unknown kind " + kind)
header = ("{" + ", ".join(entries) + "}").encode()
with open(out, "wb") as f:
    f.write(struct.pack("<Q", len(header)) + header + bytes(16))
