"""Copies a safetensors file, dropping or transposing named tensors (for
tests of checkpoint errors). Uses only the standard library."""
import json
import struct
import sys

src, dst, *args = sys.argv[1:]
drop = {args[i + 1] for i in range(len(args)) if args[i] == "--drop"}
reshape = {args[i + 1] for i in range(len(args)) if args[i] == "--reshape"}
data = open(src, "rb").read()
(n,) = struct.unpack("<Q", data[:8])
header = json.loads(data[8:8 + n])
out_header, blobs, offset = {}, [], 0
for name, info in header.items():
    if name == "__metadata__" or name in drop:
        continue
    begin, end = info["data_offsets"]
    blob = data[8 + n + begin:8 + n + end]
    shape = list(reversed(info["shape"])) if name in reshape else info["shape"]
    out_header[name] = {"dtype": info["dtype"], "shape": shape,
                        "data_offsets": [offset, offset + len(blob)]}
    offset += len(blob)
    blobs.append(blob)
text = json.dumps(out_header).encode()
with open(dst, "wb") as f:
    f.write(struct.pack("<Q", len(text)))
    f.write(text)
    for blob in blobs:
        f.write(blob)
