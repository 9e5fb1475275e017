"""A program's input specs (dtype and shape of each input of a method) read straight from the .pte flatbuffer, in
this process and in milliseconds: the ExecuTorch runtime (program.pte.inspect) costs seconds, too much to
check every manifest before every run. Plain bounds-checked reads of the schema in executorch/schema/program.fbs
(Program.execution_plan -> ExecutionPlan.values/inputs -> EValue(Tensor).scalar_type/sizes): a damaged file is a
ValueError here, never a crash.
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

# executorch ScalarType codes -> numpy/torch dtype names
SCALAR_TYPES = {0: "uint8", 1: "int8", 2: "int16", 3: "int32", 4: "int64", 5: "float16", 6: "float32",
                7: "float64", 11: "bool", 15: "bfloat16"}
# field ids in program.fbs (a union takes two: its type, then its value)
_PROGRAM_EXECUTION_PLAN = 1
_PLAN_NAME, _PLAN_VALUES, _PLAN_INPUTS = 0, 2, 3
_EVALUE_TYPE, _EVALUE_VAL = 0, 1
_KERNEL_TYPE_TENSOR = 5  # a union's type 0 is NONE: Null is 1, Int 2, Bool 3, Double 4, Tensor 5
_TENSOR_SCALAR_TYPE, _TENSOR_SIZES = 0, 2


class _Buffer:
    def __init__(self, data):
        self.data = data

    def _read(self, fmt: str, at: int):
        size = struct.calcsize(fmt)
        if at < 0 or at + size > len(self.data):
            raise ValueError(f"offset {at} is outside the file")
        return struct.unpack_from(fmt, self.data, at)[0]

    def field(self, table: int, fid: int) -> int | None:
        """Where field `fid` of the table at `table` is stored, or None when it is absent (its default)."""
        vtable = table - self._read("<i", table)
        vsize = self._read("<H", vtable)
        if 4 + 2 * fid >= vsize:
            return None
        off = self._read("<H", vtable + 4 + 2 * fid)
        return table + off if off else None

    def ref(self, at: int) -> int:
        return at + self._read("<I", at)

    def vector(self, table: int, fid: int) -> tuple[int, int]:
        """(start, length) of a vector field; (0, 0) when absent."""
        at = self.field(table, fid)
        if at is None:
            return 0, 0
        vec = self.ref(at)
        n = self._read("<I", vec)
        if n > len(self.data):
            raise ValueError("a vector longer than the file")
        return vec + 4, n

    def tables(self, table: int, fid: int) -> list[int]:
        start, n = self.vector(table, fid)
        return [self.ref(start + 4 * i) for i in range(n)]

    def ints(self, table: int, fid: int, fmt: str = "<i") -> list[int]:
        start, n = self.vector(table, fid)
        return [self._read(fmt, start + 4 * i) for i in range(n)]

    def string(self, table: int, fid: int) -> str | None:
        start, n = self.vector(table, fid)
        if not start:
            return None
        if start + n > len(self.data):
            raise ValueError("a string past the end of the file")
        return bytes(self.data[start:start + n]).decode("utf-8", "replace")

    def scalar(self, table: int, fid: int, fmt: str, default: int = 0) -> int:
        at = self.field(table, fid)
        return default if at is None else self._read(fmt, at)


def read_input_specs(path: Path, method: str = "forward") -> list[tuple[str, list[int]]]:
    """[(dtype name, shape)] of each tensor input of `method`, in order; a non-tensor input is ("non-tensor", []).
    A file that is not such a program is a ValueError."""
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if len(data) < 8 or data[4:6] != b"ET":
            raise ValueError("not an ExecuTorch program (no ET header)")
        buf = _Buffer(data)
        root = buf.ref(0)
        plans = {buf.string(p, _PLAN_NAME): p for p in buf.tables(root, _PROGRAM_EXECUTION_PLAN)}
        if method not in plans:
            raise ValueError(f"no method {method!r} (it has {', '.join(map(str, plans)) or 'none'})")
        plan = plans[method]
        values = buf.tables(plan, _PLAN_VALUES)
        specs = []
        for idx in buf.ints(plan, _PLAN_INPUTS):
            if not 0 <= idx < len(values):
                raise ValueError(f"input value {idx} out of range")
            value = values[idx]
            if buf.scalar(value, _EVALUE_TYPE, "<B") != _KERNEL_TYPE_TENSOR:
                specs.append(("non-tensor", []))
                continue
            tensor = buf.ref(buf.field(value, _EVALUE_VAL) or 0)
            code = buf.scalar(tensor, _TENSOR_SCALAR_TYPE, "<b")
            specs.append((SCALAR_TYPES.get(code, f"scalar{code}"), buf.ints(tensor, _TENSOR_SIZES)))
        return specs
