"""What XNNPACK took and what it left on portable kernels, and the gate that refuses a poor lowering."""

from __future__ import annotations

from typing import Any

from executorch.devtools.backend_debug import get_delegation_info

from common.errors import ExportError

# Ops whose presence outside XNNPACK means the heavy math runs on slow portable kernels.
HEAVY_OPS = ("linear", "mm", "bmm", "matmul", "addmm", "softmax", "_softmax", "conv", "convolution", "_int_mm")


def summarize(graph_module) -> dict[str, Any]:
    """Delegation summary of a lowered edge graph: pieces, ops delegated, ops left outside by name."""
    info = get_delegation_info(graph_module)
    outside: dict[str, int] = {}
    delegated: dict[str, int] = {}
    for op, b in info.delegation_by_operator.items():
        if b.non_delegated:
            outside[op] = b.non_delegated
        if b.delegated:
            delegated[op] = b.delegated
    return {
        "backend": "XnnpackBackend",
        "pieces": info.num_delegated_subgraphs,
        "ops_delegated": info.num_delegated_nodes,
        "ops_outside": info.num_non_delegated_nodes,
        "outside_by_op": dict(sorted(outside.items())),
        "delegated_by_op": dict(sorted(delegated.items())),
    }


def heavy_ops_outside(summary: dict[str, Any]) -> dict[str, int]:
    """Heavy ops (matmul, linear, softmax, ...) that stayed on portable kernels."""
    out = {}
    for op, n in summary.get("outside_by_op", {}).items():
        base = op.removeprefix("aten_").removeprefix("aten.").split(".")[0].removesuffix("_default")
        if any(base == h or base.startswith(h + "_") for h in HEAVY_OPS):
            out[op] = n
    return out


def check(summary: dict[str, Any], allow_partial: bool) -> None:
    """Refuse a lowering that leaves heavy math outside XNNPACK, unless the user allowed it."""
    heavy = heavy_ops_outside(summary)
    if heavy and not allow_partial:
        names = ", ".join(f"{k} x{v}" for k, v in heavy.items())
        raise ExportError(
            f"XNNPACK left heavy ops on portable kernels ({names}); the program would be slow. "
            "Pass --allow-partial to export it anyway"
        )
