"""Embedding tables stored as int8 rows or int4 groups, read by ExecuTorch's quantized embedding kernels.

XNNPACK has no quantized gather, so these run on the `quantized_decomposed::embedding_{byte,4bit}` kernels
(libexecutorch_kernels_quantized on device); the tables are what shrink.
"""

from __future__ import annotations

from typing import Iterable

import torch

from common.errors import BadInput
from harness.export.quantize.select import is_kept

BITS = {"8w": 8, "4w": 4}


class QuantizedEmbedding(torch.nn.Module):
    """nn.Embedding replacement: symmetric int8 per row, or int4 per group of `group_size` columns (packed 2/byte)."""

    def __init__(self, weight: torch.Tensor, bits: int, group_size: int | None):
        super().__init__()
        rows, dim = weight.shape
        self.bits = bits
        group = dim if bits == 8 or not group_size else group_size
        qmax = 2 ** (bits - 1) - 1
        w = weight.detach().float().reshape(rows, dim // group, group)
        scale = (w.abs().amax(dim=-1) / qmax).clamp(min=1e-8)  # [rows, groups]
        q = torch.clamp(torch.round(w / scale.unsqueeze(-1)), -qmax - 1, qmax).to(torch.int8).reshape(rows, dim)
        if bits == 4:  # two values per byte, high nibble first: the layout embedding_4bit unpacks
            u = (q + 8).to(torch.uint8).reshape(rows, dim // 2, 2)
            q = (u[..., 0] << 4) | u[..., 1]
        self.register_buffer("weight", q)
        # output dtype follows the scales, so a later model.half() (recipe fp16) gives half outputs
        self.register_buffer("scales", (scale.squeeze(-1) if scale.shape[1] == 1 else scale).to(weight.dtype))

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        if self.bits == 8:
            return torch.ops.quantized_decomposed.embedding_byte.dtype(
                self.weight, self.scales, None, -128, 127, indices, dtype=self.scales.dtype)
        return torch.ops.quantized_decomposed.embedding_4bit.dtype(
            self.weight, self.scales, None, -8, 7, indices, dtype=self.scales.dtype)


def quantize_embeddings(model: torch.nn.Module, mode: str, group_size: int, keep: Iterable[str] = ()) -> list[str]:
    """Swap every nn.Embedding not kept in float for a QuantizedEmbedding, in place; returns the names swapped."""
    import executorch.exir.passes._quant_patterns_and_replacements  # noqa: F401  registers quantized_decomposed ops

    if mode not in BITS:
        raise BadInput(f"--quant-embedding {mode!r}: expected one of {', '.join(BITS)}")
    bits, keep = BITS[mode], list(keep)
    swapped = []
    for name, mod in list(model.named_modules()):
        if not isinstance(mod, torch.nn.Embedding) or is_kept(name, keep):
            continue
        dim = mod.weight.shape[1]
        group = group_size or dim  # 0: --group-size row, one group per row
        if bits == 4 and (group < 0 or dim % group or group % 2):
            shown = "row" if not group_size else group_size
            raise BadInput(f"--group-size {shown} cannot split the {dim}-wide embedding {name} into "
                           "even int4 groups (it must be even and divide the width)")
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, attr, QuantizedEmbedding(mod.weight, bits, group_size))
        swapped.append(name)
    return swapped
