"""Rewrites an F32 safetensors file as BF16 or F16 (standard library only),
rounding to nearest even, as a Hugging Face checkpoint would store it."""
import struct
import sys

import safetensors_file


def convert(blob, dtype):
    values = struct.unpack(f"<{len(blob) // 4}f", blob)
    if dtype == "F16":
        return struct.pack(f"<{len(values)}e", *values)
    words = struct.unpack(f"<{len(values)}I", blob)
    rounded = [((w + 0x7FFF + ((w >> 16) & 1)) >> 16) & 0xFFFF for w in words]
    return struct.pack(f"<{len(rounded)}H", *rounded)


src, dst, dtype = sys.argv[1:]
safetensors_file.write(dst, [(name, dtype, shape, convert(blob, dtype))
                             for name, _, shape, blob in safetensors_file.read(src)])
