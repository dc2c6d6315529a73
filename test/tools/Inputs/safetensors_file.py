"""Reads and writes safetensors files with the standard library only (the
test helpers beside it edit checkpoints byte by byte)."""
import json
import struct


def read(path):
    """The tensors of `path` in file order: (name, dtype, shape, raw bytes)."""
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    tensors = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        tensors.append((name, info["dtype"], info["shape"], data[8 + n + begin:8 + n + end]))
    return tensors


def read_metadata(path):
    """The header's __metadata__ (string keys and values), or {}."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(length)).get("__metadata__", {})


def write(path, tensors, metadata=None):
    """Writes (name, dtype, shape, raw bytes) tensors, in order, and the
    header's __metadata__ when given."""
    header, offset = ({"__metadata__": metadata} if metadata else {}), 0
    for name, dtype, shape, blob in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
    text = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for _, _, _, blob in tensors:
            f.write(blob)
