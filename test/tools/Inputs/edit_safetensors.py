"""Copies a safetensors file, dropping or transposing named tensors, or
setting a metadata entry (--metadata key=value), for tests of checkpoint
errors. Uses only the standard library."""
import sys

import safetensors_file

src, dst, *args = sys.argv[1:]
drop = {args[i + 1] for i in range(len(args)) if args[i] == "--drop"}
reshape = {args[i + 1] for i in range(len(args)) if args[i] == "--reshape"}
metadata = safetensors_file.read_metadata(src)
for i in range(len(args)):
    if args[i] == "--metadata":
        key, value = args[i + 1].split("=", 1)
        metadata[key] = value
safetensors_file.write(dst, [
    (name, dtype, list(reversed(shape)) if name in reshape else shape, blob)
    for name, dtype, shape, blob in safetensors_file.read(src) if name not in drop], metadata)
