"""Faster XNNPACK lowering that changes no byte of the program: `faster_lowering()` around to_edge_transform_and_lower
and to_executorch.

Lowering the full int8 MobileBERT took ~220 s here, almost all of it ExecuTorch and torch re-tracing the ~5,900-node
graph under fake tensors, once per pass (about 30 times), plus the bookkeeping around each re-trace. The work removed
here is pure waste, in three kinds, one module each:

- `skips`: re-traces known beforehand to hand the graph back unchanged (idle XNNPACK passes, a decomposition with
  nothing left to decompose) are not run;
- `memo`: fake evaluations of the expensive ops (torchao's quant ops, aten.linear, a delegate call) are reused for
  inputs of the same metadata;
- `bookkeeping`: provenance records are shared instead of deep-copied, generated code is written only when read or
  run and compiled once per distinct source, and the graph signature's input maps are built once per state of the
  signature.

tests/harness/export/test_fast_lowering.py compares program sha256 with and without, for fp32, int8 and int8-static
and for models on which the skippable passes must act; the full int8 MobileBERT program is byte-identical too. Export time per recipe
is in benchmarks/results/quant_table.md; docs/quantization.md#export-time has the breakdown.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Iterator

from harness.export.fast_lowering.bookkeeping import (CompiledCode, DeferredCode, SignatureMaps, cache_signature_maps,
                                                     defer_codegen, reuse_compiled_code, share_provenance)
from harness.export.fast_lowering.memo import MEMO_OPS, Memo, memoize_fake_ops, op_name
from harness.export.fast_lowering.skips import (CAN_ACT, REQUIRES_ALL, REQUIRES_ANY, SKIPPABLE, graph_ops, is_idle,
                                                skip_idle_edge_passes, skip_idle_passes,
                                                skip_settled_decompositions)

__all__ = ["CAN_ACT", "CompiledCode", "DeferredCode", "MEMO_OPS", "Memo", "REQUIRES_ALL", "REQUIRES_ANY",
           "SKIPPABLE", "Savings", "SignatureMaps", "cache_signature_maps", "defer_codegen", "faster_lowering",
           "graph_ops", "is_idle", "memoize_fake_ops", "op_name", "reuse_compiled_code", "share_provenance",
           "skip_idle_edge_passes", "skip_idle_passes", "skip_settled_decompositions"]


@dataclasses.dataclass
class Savings:
    """What one faster_lowering block saved, counted (benchmarks/export_time.py prints it)."""

    memo: Memo
    skipped_decompositions: list
    compiled: CompiledCode
    signature_maps: SignatureMaps
    codegen: DeferredCode

    def summary(self) -> dict[str, int]:
        return {"fake evaluations reused": self.memo.hits, "fake evaluations made": self.memo.misses,
                "decompositions skipped": len(self.skipped_decompositions), "compiles": self.compiled.compiles,
                "distinct sources compiled": self.compiled.distinct,
                "signature maps reused": self.signature_maps.hits, "signature maps built": self.signature_maps.misses,
                "recompiles asked": self.codegen.asked, "recompiles that generated code": self.codegen.generated}


@contextlib.contextmanager
def faster_lowering() -> Iterator[Savings]:
    """Every speed-up above; the program written is byte-identical to ExecuTorch's own lowering."""
    with (skip_idle_passes(), skip_idle_edge_passes(), skip_settled_decompositions() as skipped,
          memoize_fake_ops() as memo, share_provenance(), reuse_compiled_code() as compiled,
          cache_signature_maps() as maps, defer_codegen() as codegen):
        yield Savings(memo, skipped, compiled, maps, codegen)
