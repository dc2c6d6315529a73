"""Rewrites an F32 safetensors file as BF16 or F16 (standard library only),
rounding to nearest even, as a Hugging Face checkpoint would store it."""
import json
import struct
import sys

src, dst, dtype = sys.argv[1:]
data = open(src, "rb").read()
(n,) = struct.unpack("<Q", data[:8])
header = json.loads(data[8:8 + n])
out_header, blobs, offset = {}, [], 0
for name, info in header.items():
    if name == "__metadata__":
        continue
    begin, end = info["data_offsets"]
    values = struct.unpack(f"<{(end - begin) // 4}f", data[8 + n + begin:8 + n + end])
    if dtype == "F16":
        blob = struct.pack(f"<{len(values)}e", *values)
    else:
        words = struct.unpack(f"<{len(values)}I", struct.pack(f"<{len(values)}f", *values))
        rounded = [((w + 0x7FFF + ((w >> 16) & 1)) >> 16) & 0xFFFF for w in words]
        blob = struct.pack(f"<{len(rounded)}H", *rounded)
    out_header[name] = {"dtype": dtype, "shape": info["shape"],
                        "data_offsets": [offset, offset + len(blob)]}
    offset += len(blob)
    blobs.append(blob)
text = json.dumps(out_header).encode()
with open(dst, "wb") as f:
    f.write(struct.pack("<Q", len(text)))
    f.write(text)
    for blob in blobs:
        f.write(blob)
