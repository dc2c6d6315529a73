"""Edits numbers inside a .moeb plan in place and writes the checksum footer
again: a forged plan that passes the integrity check, to test that the
runtime checks what a plan means (shapes, attributes), not only its bytes.

usage: forge_plan.py IN OUT EDIT...
  dim:TENSOR:D=VALUE      extent D of the shape of the tensor named TENSOR
  attr:OP:NAME=VALUE      the int attribute NAME of every step (and fusion
                          group member) whose op is OP

Reads the FlatBuffers tables of runtime/schema/plan.fbs directly (field
slots in declaration order; a union takes two). Only values the file
stores can change: an attribute at its default value has no bytes.
"""
import struct
import sys

FOOTER_SIZE = 16
MAGIC = b"MOEBSUM1"

# Field slots (plan.fbs declaration order).
PLAN_TENSORS, PLAN_FUNCTIONS = 5, 7
TENSOR_NAME, TENSOR_SHAPE = 0, 2
FUNCTION_STEPS = 3
STEP_OP, STEP_ATTRS, STEP_MEMBERS = 0, 3, 6
ATTR_NAME, ATTR_VALUE_TYPE, ATTR_VALUE = 0, 1, 2
INT_ATTR = 1  # AttrValue's IntAttr


def checksum(data: bytes) -> int:
    h = 1469598103934665603
    for b in data:
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


class Buffer:
    def __init__(self, data: bytearray):
        self.data = data

    def u32(self, at):
        return struct.unpack_from("<I", self.data, at)[0]

    def field(self, table, slot):
        """The position of a table's field, or None when it is absent."""
        vtable = table - struct.unpack_from("<i", self.data, table)[0]
        size = struct.unpack_from("<H", self.data, vtable)[0]
        if 4 + 2 * slot >= size:
            return None
        offset = struct.unpack_from("<H", self.data, vtable + 4 + 2 * slot)[0]
        return table + offset if offset else None

    def ref(self, table, slot):
        at = self.field(table, slot)
        return None if at is None else at + self.u32(at)

    def vector(self, table, slot):
        at = self.ref(table, slot)
        if at is None:
            return 0, None
        return self.u32(at), at + 4

    def tables(self, table, slot):
        n, start = self.vector(table, slot)
        return [start + 4 * i + self.u32(start + 4 * i) for i in range(n)]

    def string(self, table, slot):
        n, start = self.vector(table, slot)
        return "" if start is None else self.data[start:start + n].decode()


def steps(buf, root):
    for function in buf.tables(root, PLAN_FUNCTIONS):
        for step in buf.tables(function, FUNCTION_STEPS):
            yield step
            yield from buf.tables(step, STEP_MEMBERS)


def forge(buf, root, edit):
    kind, rest = edit.split(":", 1)
    target, value = rest.rsplit("=", 1)
    value = int(value)
    done = 0
    if kind == "dim":
        tensor_name, d = target.rsplit(":", 1)
        for tensor in buf.tables(root, PLAN_TENSORS):
            if buf.string(tensor, TENSOR_NAME) == tensor_name:
                n, start = buf.vector(tensor, TENSOR_SHAPE)
                if int(d) >= n:
                    sys.exit(f"{tensor_name} has rank {n}")
                struct.pack_into("<q", buf.data, start + 8 * int(d), value)
                done += 1
    elif kind == "attr":
        op, name = target.split(":")
        for step in steps(buf, root):
            if buf.string(step, STEP_OP) != op:
                continue
            for attr in buf.tables(step, STEP_ATTRS):
                if buf.string(attr, ATTR_NAME) != name:
                    continue
                type_at = buf.field(attr, ATTR_VALUE_TYPE)
                if type_at is None or buf.data[type_at] != INT_ATTR:
                    sys.exit(f"{op}'s '{name}' is not an int attribute")
                at = buf.field(buf.ref(attr, ATTR_VALUE), 0)
                if at is None:
                    sys.exit(f"{op}'s '{name}' has its default value: no bytes to change")
                struct.pack_into("<q", buf.data, at, value)
                done += 1
    else:
        sys.exit(f"unknown edit {edit!r}")
    if not done:
        sys.exit(f"{edit!r} matched nothing")


def main() -> None:
    src, dst, edits = sys.argv[1], sys.argv[2], sys.argv[3:]
    data = bytearray(open(src, "rb").read()[:-FOOTER_SIZE])
    buf = Buffer(data)
    root = buf.u32(0)
    for edit in edits:
        forge(buf, root, edit)
    footer = checksum(bytes(data)).to_bytes(8, "little") + MAGIC
    open(dst, "wb").write(bytes(data) + footer)


if __name__ == "__main__":
    main()
