"""The tensor file: many examples of a program's inputs (or outputs) in one flat binary file that a
C++ runner reads without any library.

Layout, little-endian:
    magic    b"HTF1"
    u32      N examples
    u32      K tensors per example
    K times: u32 dtype code, u32 ndim, ndim x i64 dims      (same spec for every example)
    N*K raw C-contiguous tensors, example-major (example 0 tensor 0..K-1, example 1 ...)
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

MAGIC = b"HTF1"
DTYPES = {0: np.float32, 1: np.int64, 2: np.int32, 3: np.float16, 4: np.bool_, 5: np.uint8, 6: np.int8, 7: np.float64}
CODES = {np.dtype(v): k for k, v in DTYPES.items()}


class TensorFileError(ValueError):
    pass


def write_tensors(path: Path, examples: list[list[np.ndarray]]) -> None:
    """Write examples (each a list of K arrays of identical dtypes/shapes across examples)."""
    if not examples:
        raise TensorFileError("no examples to write")
    first = [np.ascontiguousarray(a) for a in examples[0]]
    header = bytearray(MAGIC + struct.pack("<II", len(examples), len(first)))
    for a in first:
        if a.dtype not in CODES:
            raise TensorFileError(f"unsupported dtype {a.dtype}")
        header += struct.pack("<II", CODES[a.dtype], a.ndim) + struct.pack(f"<{a.ndim}q", *a.shape)
    tmp = Path(str(path) + ".tmp")
    with open(tmp, "wb") as f:
        f.write(header)
        for i, ex in enumerate(examples):
            if len(ex) != len(first):
                raise TensorFileError(f"example {i} has {len(ex)} tensors, expected {len(first)}")
            for a, ref in zip(ex, first):
                a = np.ascontiguousarray(a, dtype=ref.dtype)
                if a.shape != ref.shape:
                    raise TensorFileError(f"example {i}: shape {a.shape} differs from {ref.shape}")
                f.write(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes())
    tmp.replace(path)


def read_tensors(path: Path) -> list[list[np.ndarray]]:
    data = Path(path).read_bytes()
    if data[:4] != MAGIC:
        raise TensorFileError(f"{path} is not a tensor file (bad magic)")
    try:
        n, k = struct.unpack_from("<II", data, 4)
        off = 12
        specs = []
        for _ in range(k):
            code, ndim = struct.unpack_from("<II", data, off)
            off += 8
            dims = struct.unpack_from(f"<{ndim}q", data, off)
            off += 8 * ndim
            specs.append((np.dtype(DTYPES[code]).newbyteorder("<"), tuple(dims)))
        out = []
        for _ in range(n):
            ex = []
            for dt, shape in specs:
                count = int(np.prod(shape)) if shape else 1
                a = np.frombuffer(data, dtype=dt, count=count, offset=off).reshape(shape)
                off += a.nbytes
                ex.append(a.astype(dt.newbyteorder("="), copy=True))
            out.append(ex)
    except (struct.error, KeyError, ValueError) as e:
        raise TensorFileError(f"{path} is truncated or malformed: {e}") from None
    return out
